"""The replica manager: the I/O shell around broker.log and broker.replication.

It follows the committed metadata: for every partition with a replica on this broker it
opens the log (`<log dir>/<topic>-<partition>`), and in each leader epoch makes the replica
a leader (a PartitionLeaderState) or a follower (a FollowerState fed by a ReplicaFetcher of
that leader). It serves produce, fetch and list-offsets (the native protocol handler and the
HTTP facade call it), sends the ISR changes its leader states ask for to the controller,
ticks them for ISR shrinks, checkpoints high watermarks and applies retention. Each
partition also keeps its idempotent producers' state (Partition.producers): a leader checks
every producer batch against it right before appending it (a retry is answered with its
original offsets, docs/decisions/0007), followers record what they append, and it is
snapshotted with the high watermark checkpoint.

Nothing is done before the broker has caught up with the metadata log: a replica that
replays an old image must not take itself for a leader it no longer is.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from broker.api.facade import LocalPartitionStats
from broker.log import (
    LogConfig,
    LogWriteError,
    PartitionLog,
    PartitionLogError,
    RecordBatchError,
)
from broker.log import config as log_defaults
from broker.log.batch import BATCH_HEADER_SIZE_BYTES, RecordBatch, TimestampType, iter_batches
from broker.log.cleaner import CleaningCancelled, clean
from broker.log.config import MAX_MESSAGE_BYTES
from broker.partitions.errors import log_error_code, replication_error_code
from broker.partitions.partition import (
    CheckpointWritten,
    ParkedFetch,
    Partition,
    partition_directory,
    read_topic_id,
    write_topic_id,
)
from broker.partitions.producer_log import producer_batch_of
from broker.partitions.timestamps import offset_of_max_timestamp
from broker.replication import (
    UNDEFINED_EPOCH,
    Acks,
    AlterPartitionRejection,
    AlterPartitionRequest,
    FollowerState,
    PartitionLeaderState,
    ProduceCompletion,
    ReplicationError,
    TooManyPendingProducesError,
)
from broker.replication.producer_state import DuplicateBatch, ProducerError, RefuseBatch
from kraft.config import LOG_CLEANER_BACKOFF_MS_DEFAULT
from kraft.controller import configs as topic_config
from kraft.controller.configs import CLEANUP_POLICY, DEFAULT_CLEANUP_POLICY, cleanup_policies
from kraft.controller.image import MetadataImage, PartitionRegistration
from kraft.controller.records import (
    ConfigRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RemoveTopicRecord,
)
from kraft.protocol.errors import ErrorCode
from kraft.protocol.native import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP

log = structlog.get_logger(__name__)

# Leader states are ticked this often (ISR shrink checks, alter-partition resends).
TICK_INTERVAL_S = 0.1
HIGH_WATERMARK_CHECKPOINT_INTERVAL_S = 5.0  # Kafka: replica.high.watermark.checkpoint...
RETENTION_CHECK_INTERVAL_S = 30.0  # Kafka's log.retention.check.interval.ms is 5 minutes
ALTER_PARTITION_TIMEOUT_S = 5.0
ALTER_PARTITION_RETRY_S = 0.2
# ListOffsets special timestamps beyond kraft.protocol.native's -1 and -2 (Kafka protocol):
MAX_TIMESTAMP = -3  # KIP-734: the record with the largest timestamp
EARLIEST_LOCAL_TIMESTAMP = -4  # KIP-405: the local log start; here always the log start
# Without a controller lease, an acks=all produce waiting this long is answered NOT_LEADER.
STUCK_PRODUCE_MS = 250

ALTER_PARTITION_REJECTIONS = {
    # controller error type -> what the leader state makes of it (see AlterPartitionRejection)
    "StaleEpochError": AlterPartitionRejection.STALE_EPOCH,
    "NotPartitionLeaderError": AlterPartitionRejection.NOT_LEADER,
    "StaleBrokerEpochError": AlterPartitionRejection.INELIGIBLE_REPLICA,
    "IneligibleReplicaError": AlterPartitionRejection.INELIGIBLE_REPLICA,
}


class BrokerMetricsSink(Protocol):
    """What the manager reports to the broker metrics (broker.metrics.BrokerMetrics)."""

    def observe_produce_latency(self, seconds: float) -> None: ...

    def observe_fetch_latency(self, seconds: float) -> None: ...

    def count_produced(self, topic: str, records: int, size_bytes: int) -> None: ...

    def count_fetched(self, topic: str, size_bytes: int) -> None: ...

    def on_isr_shrink(self) -> None: ...

    def on_isr_expand(self) -> None: ...

    def on_log_cleaned(self, records_removed: int, bytes_reclaimed: int) -> None: ...


@dataclass(frozen=True, slots=True)
class ReplicaSettings:
    """The broker-wide defaults a topic's configs override (SPEC §2)."""

    broker_id: int
    log_dir: Path
    segment_bytes: int
    retention_ms: int
    retention_bytes: int
    flush_interval_messages: int | None
    min_insync_replicas: int
    replica_lag_time_max_ms: int
    cleaner_backoff_ms: int = LOG_CLEANER_BACKOFF_MS_DEFAULT


@dataclass(frozen=True, slots=True)
class ProduceResult:
    error_code: ErrorCode | ProducerError  # the latter only for batches with a producer id
    error_message: str | None = None
    base_offset: int = -1
    log_start_offset: int = -1
    leader_id: int = -1
    leader_epoch: int = -1
    log_append_time_ms: int = -1  # the batch's append time on a LogAppendTime topic


@dataclass(frozen=True, slots=True)
class PartitionFetch:
    topic: str
    partition: int
    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int = -1
    last_fetched_epoch: int = UNDEFINED_EPOCH
    topic_id: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionFetchResult:
    topic: str
    partition: int
    error_code: ErrorCode
    error_message: str | None = None
    high_watermark: int = -1
    log_start_offset: int = -1
    log_end_offset: int = -1
    diverging_epoch: tuple[int, int] | None = None
    records: bytes = b""
    leader_id: int = -1
    leader_epoch: int = -1


@dataclass(frozen=True, slots=True)
class OffsetLookup:
    error_code: ErrorCode
    error_message: str | None = None
    offset: int = -1
    timestamp_ms: int = -1
    leader_id: int = -1
    leader_epoch: int = -1


@dataclass(frozen=True, slots=True)
class EpochEndOffset:
    """An OffsetsForLeaderEpoch answer for one partition: the largest epoch at or below the
    one asked about and where it ended (-1, -1: undefined)."""

    error_code: ErrorCode
    error_message: str | None = None
    leader_epoch: int = UNDEFINED_EPOCH
    end_offset: int = -1


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class ReplicaManager:
    def __init__(
        self,
        settings: ReplicaSettings,
        *,
        image: Callable[[], MetadataImage],
        metadata_caught_up: Callable[[], bool],
        broker_epoch: Callable[[], int | None],
        ask_controller: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
        request_broker: Callable[[int, dict[str, Any], float], Awaitable[dict[str, Any]]],
        metrics: BrokerMetricsSink | None = None,
        has_controller_lease: Callable[[], bool] = lambda: True,
        on_storage_failure: Callable[[PartitionLogError], None] | None = None,
    ) -> None:
        from broker.partitions.fetcher import ReplicaFetchers  # fetcher imports this module

        self.settings = settings
        self.broker_id = settings.broker_id
        self._image = image
        self._metadata_caught_up = metadata_caught_up
        self.broker_epoch = broker_epoch
        self._ask_controller = ask_controller
        self.request_broker = request_broker
        self.metrics = metrics
        self._has_controller_lease = has_controller_lease
        self._on_storage_failure = on_storage_failure
        self._lease_lost_logged = False
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._by_name: dict[tuple[str, int], Partition] = {}
        self._touched: set[tuple[str, int]] = set()
        self._touched_topics: set[str] = set()  # names of topics whose configs changed
        self._reconciled_image: MetadataImage | None = None
        self._reconcile_scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self.fetchers = ReplicaFetchers(self)
        self._closed = False
        # checkpoint files (high watermarks, producer snapshots) are written here, off the
        # event loop, one partition after another
        self._files = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-checkpoints")
        # compaction passes (broker/log/cleaner.py) read and write whole segments: one
        # partition after another on a thread of their own, off the event loop
        self._cleaner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-cleaner")

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        self._loops = [
            asyncio.create_task(self._every(TICK_INTERVAL_S, self._tick), name="replica-tick"),
            asyncio.create_task(self._checkpoint_loop(), name="hw-checkpoint"),
            asyncio.create_task(
                self._every(RETENTION_CHECK_INTERVAL_S, self._apply_retention), name="retention"
            ),
            asyncio.create_task(self._cleaner_loop(), name="log-cleaner"),
        ]

    async def close(self) -> None:
        self._closed = True
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)
        await self.fetchers.close()
        # a checkpoint being written finishes first; the ones below are the last
        await asyncio.get_running_loop().run_in_executor(None, self._files.shutdown)
        for partition in self.partitions.values():
            partition.log.stop_cleaning()
        await asyncio.get_running_loop().run_in_executor(None, self._cleaner.shutdown)
        for partition in list(self.partitions.values()):
            self._resign(partition, reason="broker stopping")
            partition.checkpoint_high_watermark()
            partition.snapshot_producer_state()
            with contextlib.suppress(PartitionLogError, OSError):
                partition.log.close()
        self.partitions.clear()
        self._by_name.clear()

    async def _every(self, interval_s: float, action: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                action()
            except Exception:  # a bug in one round must not stop the loop for good
                log.exception("replicas.loop_failed", action=action.__name__)

    # -- metadata ----------------------------------------------------------------------------

    def on_metadata_applied(self, records: list[MetadataRecord], offset: int) -> None:
        """A MetadataStateMachine listener: notes the partitions the records touch and
        reconciles them soon (once per loop iteration, however many records came)."""
        del offset
        for record in records:
            if isinstance(record, PartitionRecord | PartitionChangeRecord):
                self._touched.add((record.topic_id, record.partition_id))
            elif isinstance(record, RemoveTopicRecord):
                self._touched.update(key for key in self.partitions if key[0] == record.topic_id)
            elif isinstance(record, ConfigRecord) and record.resource_type == "topic":
                self._touched_topics.add(record.resource_name)
        self._schedule_reconcile()

    def _schedule_reconcile(self) -> None:
        if self._reconcile_scheduled or self._closed:
            return
        self._reconcile_scheduled = True
        asyncio.get_running_loop().call_soon(self._reconcile)

    def _reconcile(self) -> None:
        self._reconcile_scheduled = False
        if self._closed or not self._metadata_caught_up():
            return  # the tick tries again
        image = self._image()
        if image is not self._reconciled_image:
            # first time, or the image was replaced by a snapshot: look at everything
            self._touched.update(self.partitions)
            for topic in image.topics_by_id.values():
                for partition in topic.partitions.values():
                    if self.broker_id in partition.replicas:
                        self._touched.add((topic.topic_id, partition.partition_id))
            if self._reconciled_image is None:
                self._delete_stray_directories(image)
            self._reconciled_image = image
        for topic_name in self._touched_topics:
            changed = image.topic(topic_name)
            if changed is not None:
                self._touched.update(key for key in self.partitions if key[0] == changed.topic_id)
        touched, self._touched, self._touched_topics = self._touched, set(), set()
        for key in sorted(touched):
            try:
                self._reconcile_partition(image, key)
            except PartitionLogError as error:
                log.error(
                    "partition.open_failed", topic_id=key[0], partition=key[1], reason=str(error)
                )
                self.storage_failed(error)
            except OSError as error:  # a write outside the log itself (a snapshot file)
                log.error(
                    "partition.open_failed", topic_id=key[0], partition=key[1], reason=str(error)
                )
                self.storage_failed(LogWriteError(f"opening partition {key}: {error}"))

    def _reconcile_partition(self, image: MetadataImage, key: tuple[str, int]) -> None:
        topic_id, partition_id = key
        topic = image.topics_by_id.get(topic_id)
        registration = None if topic is None else topic.partitions.get(partition_id)
        partition = self.partitions.get(key)
        if topic is None or registration is None or self.broker_id not in registration.replicas:
            if partition is not None:
                self._remove_partition(partition)
            return
        if partition is None:
            partition = self._open_partition(topic.name, topic_id, partition_id)
        configs = image.configs("topic", topic.name)
        partition.min_insync_replicas = int(
            configs.get("min.insync.replicas", self.settings.min_insync_replicas)
        )
        if partition.leader is not None:
            partition.leader.set_min_insync_replicas(partition.min_insync_replicas)
        partition.log.config = self._log_config(configs)
        self._apply_registration(partition, registration)

    def _log_config(self, configs: Any) -> LogConfig:
        settings = self.settings
        max_message_bytes = int(configs.get("max.message.bytes", MAX_MESSAGE_BYTES))
        policies = cleanup_policies(configs.get(CLEANUP_POLICY, DEFAULT_CLEANUP_POLICY))
        return LogConfig(
            segment_bytes=int(configs.get("segment.bytes", settings.segment_bytes)),
            retention_ms=int(configs.get("retention.ms", settings.retention_ms)),
            retention_bytes=int(configs.get("retention.bytes", settings.retention_bytes)),
            flush_interval_messages=settings.flush_interval_messages,
            # the batch header is the smallest batch there is
            max_message_bytes=max(max_message_bytes, BATCH_HEADER_SIZE_BYTES),
            # retention.ms and retention.bytes apply only with `delete` (Kafka's LogConfig)
            retention_deletes="delete" in policies,
            compacts="compact" in policies,
            segment_ms=int(configs.get(topic_config.SEGMENT_MS, log_defaults.SEGMENT_MS)),
            delete_retention_ms=int(
                configs.get(topic_config.DELETE_RETENTION_MS, log_defaults.DELETE_RETENTION_MS)
            ),
            min_compaction_lag_ms=int(
                configs.get(topic_config.MIN_COMPACTION_LAG_MS, log_defaults.MIN_COMPACTION_LAG_MS)
            ),
            max_compaction_lag_ms=int(
                configs.get(topic_config.MAX_COMPACTION_LAG_MS, log_defaults.MAX_COMPACTION_LAG_MS)
            ),
            min_cleanable_dirty_ratio=float(
                configs.get(
                    topic_config.MIN_CLEANABLE_DIRTY_RATIO,
                    log_defaults.MIN_CLEANABLE_DIRTY_RATIO,
                )
            ),
            log_append_time=configs.get(topic_config.MESSAGE_TIMESTAMP_TYPE)
            == topic_config.LOG_APPEND_TIME,
        )

    def _open_partition(self, topic: str, topic_id: str, partition_id: int) -> Partition:
        directory = partition_directory(self.settings.log_dir, topic, partition_id)
        stored_topic_id = read_topic_id(directory) if directory.exists() else None
        if stored_topic_id is not None and stored_topic_id != topic_id:
            # a topic of the same name was deleted while we were away and created again
            log.warning("partition.stale_directory_deleted", directory=str(directory))
            shutil.rmtree(directory)
        partition_log = PartitionLog(
            directory, LogConfig(segment_bytes=self.settings.segment_bytes)
        )
        write_topic_id(directory, topic_id)
        report = partition_log.recovery_report
        if report.lost_data:
            log.warning(
                "partition.torn_tail_truncated", partition=directory.name, detail=str(report)
            )
        partition = Partition(topic, topic_id, partition_id, partition_log)
        partition.reload_producer_state()
        self.partitions[(topic_id, partition_id)] = partition
        self._by_name[(topic, partition_id)] = partition
        log.info(
            "partition.opened",
            partition=partition.name,
            log_start_offset=partition_log.log_start_offset,
            log_end_offset=partition_log.log_end_offset,
        )
        return partition

    def _remove_partition(self, partition: Partition) -> None:
        """The topic was deleted or the replica moved away: the data goes."""
        self._resign(partition, reason="replica removed")
        del self.partitions[(partition.topic_id, partition.partition_id)]
        self._by_name.pop((partition.topic, partition.partition_id), None)
        partition.discard_pending_checkpoints()
        partition.log.abandon()
        shutil.rmtree(partition.log.directory, ignore_errors=True)
        log.info("partition.deleted", partition=partition.name)

    def _delete_stray_directories(self, image: MetadataImage) -> None:
        """Directories of partitions deleted (or moved away) while this broker was down."""
        for directory in sorted(self.settings.log_dir.iterdir()):
            topic_id = read_topic_id(directory) if directory.is_dir() else None
            if topic_id is None:
                continue
            name, _, number = directory.name.rpartition("-")
            topic = image.topics_by_id.get(topic_id)
            keep = (
                topic is not None
                and topic.name == name
                and number.isdigit()
                and int(number) in topic.partitions
                and self.broker_id in topic.partitions[int(number)].replicas
            )
            if not keep:
                log.info("partition.stray_directory_deleted", directory=str(directory))
                shutil.rmtree(directory, ignore_errors=True)

    def _apply_registration(
        self, partition: Partition, registration: PartitionRegistration
    ) -> None:
        previous = partition.registration
        if previous is not None and registration.partition_epoch < previous.partition_epoch:
            return
        partition.registration = registration
        leader = partition.leader
        if leader is not None:
            still_leading = leader.on_partition_changed(registration)
            if previous is not None and still_leading:
                self._count_isr_change(previous, registration)
            self._drain(partition)
            if still_leading:
                return
            self._resign(partition, reason=f"leader epoch {registration.leader_epoch} elsewhere")
        if registration.leader == self.broker_id:
            self._become_leader(partition, registration)
        elif registration.leader >= 0:
            follower = partition.follower
            if (
                follower is None
                or follower.leader_epoch != registration.leader_epoch
                or follower.leader_id != registration.leader
            ):
                self._become_follower(partition, registration)
        elif partition.follower is not None:
            partition.drop_roles()
            log.info("partition.offline", partition=partition.name)

    def _count_isr_change(
        self, before: PartitionRegistration, after: PartitionRegistration
    ) -> None:
        if self.metrics is None or before.isr == after.isr:
            return
        if len(after.isr) < len(before.isr):
            self.metrics.on_isr_shrink()
        elif len(after.isr) > len(before.isr):
            self.metrics.on_isr_expand()
        log.info(
            "partition.isr_changed",
            topic_id=after.topic_id,
            partition=after.partition_id,
            isr=list(after.isr),
            previous_isr=list(before.isr),
        )

    def _become_leader(self, partition: Partition, registration: PartitionRegistration) -> None:
        high_watermark = partition.high_watermark
        partition.drop_roles()
        log_ = partition.log
        if partition.latest_epoch > registration.leader_epoch:
            log.error(
                "partition.epoch_from_the_future",
                partition=partition.name,
                log_epoch=partition.latest_epoch,
                leader_epoch=registration.leader_epoch,
            )
            return
        # the new epoch starts at our log end (Kafka's leaderEpochStartOffset)
        log_.epoch_cache.assign(registration.leader_epoch, log_.log_end_offset)
        partition.leader = PartitionLeaderState(
            self.broker_id,
            registration,
            log_.log_end_offset,
            min(high_watermark, log_.log_end_offset),
            monotonic_ms(),
            self.settings.replica_lag_time_max_ms,
            partition.min_insync_replicas,
        )
        partition.wake_fetches()
        log.info(
            "partition.became_leader",
            partition=partition.name,
            leader_epoch=registration.leader_epoch,
            isr=list(registration.isr),
            log_end_offset=log_.log_end_offset,
            high_watermark=partition.high_watermark,
        )

    def _become_follower(self, partition: Partition, registration: PartitionRegistration) -> None:
        high_watermark = partition.high_watermark
        partition.drop_roles()
        partition.wake_fetches()
        if partition.latest_epoch > registration.leader_epoch:
            log.error(
                "partition.epoch_from_the_future",
                partition=partition.name,
                log_epoch=partition.latest_epoch,
                leader_epoch=registration.leader_epoch,
            )
            return
        broker_epoch = self.broker_epoch()
        partition.follower = FollowerState(
            self.broker_id,
            registration.leader,
            registration.leader_epoch,
            partition.log.log_end_offset,
            partition.latest_epoch,
            min(high_watermark, partition.log.log_end_offset),
            broker_epoch=-1 if broker_epoch is None else broker_epoch,
        )
        self.fetchers.follow(registration.leader)
        log.info(
            "partition.became_follower",
            partition=partition.name,
            leader=registration.leader,
            leader_epoch=registration.leader_epoch,
            log_end_offset=partition.log.log_end_offset,
        )

    def _resign(self, partition: Partition, reason: str) -> None:
        leader = partition.leader
        if leader is not None:
            leader.resign()  # answers every waiting produce NOT_LEADER
            self._drain(partition)
            log.info("partition.resigned", partition=partition.name, reason=reason)
        for waiter in partition.produce_waiters.values():
            if not waiter.done():
                waiter.set_result(ProduceCompletion(-1, -1, ReplicationError.NOT_LEADER))
        partition.produce_waiters.clear()
        partition.produce_started_ms.clear()
        partition.drop_roles()
        partition.wake_fetches()

    def storage_failed(self, error: PartitionLogError) -> None:
        """A write to the log directory failed (disk full, I/O error): with its only log
        directory unusable the broker stops, as Kafka halts a broker whose log directories
        have all failed; the node's shutdown hands its leaderships over. Other errors (a
        corrupt batch from a client) do not count."""
        if isinstance(error, LogWriteError) and self._on_storage_failure is not None:
            self._on_storage_failure(error)

    def partitions_following(self, leader_id: int) -> list[Partition]:
        return [
            partition
            for partition in self.partitions.values()
            if partition.follower is not None and partition.follower.leader_id == leader_id
        ]

    # -- the leader's outputs ---------------------------------------------------------------

    def _drain(self, partition: Partition) -> None:
        """Answers completed produces, wakes parked consumer fetches when the high
        watermark moved, and sends the ISR change the leader state asks for."""
        leader = partition.leader
        if leader is None:
            return
        if not leader.resigned and leader.high_watermark != partition.last_woken_high_watermark:
            # consumers first, then producers, as Kafka's checkAndCompleteAll: the tasks run
            # in the order woken, and a record's end-to-end time ends at its consumer
            partition.last_woken_high_watermark = leader.high_watermark
            partition.wake_fetches(replicas=False)
        for completion in leader.completed_produces():
            partition.produce_started_ms.pop(completion.produce_id, None)
            waiter = partition.produce_waiters.pop(completion.produce_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(completion)
        if leader.resigned:
            return
        request = leader.take_alter_partition()
        if request is not None:
            self._spawn(self._alter_partition(partition, leader, request))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _alter_partition(
        self, partition: Partition, leader: PartitionLeaderState, request: AlterPartitionRequest
    ) -> None:
        """Sends an ISR change to the controller until it answers, while it still matters."""
        body = {
            "kind": "alter_partition",
            "broker_id": self.broker_id,
            "broker_epoch": self.broker_epoch(),
            "topic_id": request.topic_id,
            "partition_id": request.partition_id,
            "leader_epoch": request.leader_epoch,
            "partition_epoch": request.partition_epoch,
            "new_isr": list(request.new_isr),
            "new_isr_broker_epochs": list(request.new_isr_broker_epochs),
        }
        log.info(
            "partition.isr_change_requested",
            partition=partition.name,
            new_isr=list(request.new_isr),
            isr=list(leader.committed_isr),
        )
        while partition.leader is leader and leader.in_flight_alter_partition == request:
            if body["broker_epoch"] is None:
                body["broker_epoch"] = self.broker_epoch()
            try:
                async with asyncio.timeout(ALTER_PARTITION_TIMEOUT_S):
                    answer = await self._ask_controller(body)
            except Exception as error:  # noqa: BLE001 - any failure to reach it: try again
                log.debug(
                    "partition.isr_change_retry", partition=partition.name, reason=repr(error)
                )
                await asyncio.sleep(ALTER_PARTITION_RETRY_S)
                continue
            if "error_code" not in answer:
                return  # accepted: the committed metadata will show it
            rejection = ALTER_PARTITION_REJECTIONS.get(
                str(answer.get("error_type")), AlterPartitionRejection.INVALID_REQUEST
            )
            log.info(
                "partition.isr_change_rejected",
                partition=partition.name,
                reason=str(answer.get("message")),
                rejection=rejection.value,
            )
            if partition.leader is leader and not leader.resigned:
                leader.on_alter_partition_rejected(request, rejection)
                self._drain(partition)
            return

    def _tick(self) -> None:
        if self._touched or self._reconciled_image is None or self._touched_topics:
            self._reconcile()
        now_ms = monotonic_ms()
        lease = self._has_controller_lease()
        if not lease and not self._lease_lost_logged:
            log.warning("broker.controller_lease_lost", leaders=self._count_leaders())
        self._lease_lost_logged = not lease
        for partition in self.partitions.values():
            leader = partition.leader
            if leader is None:
                continue
            leader.tick(now_ms)
            self._drain(partition)
            if not lease:
                self._answer_stuck_produces_not_leader(partition, leader, now_ms)

    def _count_leaders(self) -> int:
        return sum(1 for partition in self.partitions.values() if partition.leader is not None)

    def _answer_stuck_produces_not_leader(
        self, partition: Partition, leader: PartitionLeaderState, now_ms: int
    ) -> None:
        """Without a controller lease (no heartbeat answered for a session timeout) this
        broker has most likely been fenced and its leaderships moved: acks=all produces that
        have waited STUCK_PRODUCE_MS here are answered NOT_LEADER_OR_FOLLOWER now rather
        than at their timeout, so producers look the new leader up. New writes are still
        taken: when only the controller's answers are lost (a one-way cut) this broker is
        still the leader and its followers still replicate, so they complete at once.
        A record answered this way may still be kept (at-least-once)."""
        for produce_id, waiter in list(partition.produce_waiters.items()):
            started = partition.produce_started_ms.get(produce_id, now_ms)
            if now_ms - started < STUCK_PRODUCE_MS:
                continue
            leader.cancel_produce(produce_id)
            del partition.produce_waiters[produce_id]
            partition.produce_started_ms.pop(produce_id, None)
            if not waiter.done():
                waiter.set_result(ProduceCompletion(produce_id, -1, ReplicationError.NOT_LEADER))

    async def _checkpoint_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(HIGH_WATERMARK_CHECKPOINT_INTERVAL_S)
            jobs = [
                (partition, job)
                for partition in self.partitions.values()
                if (job := partition.checkpoint_job()) is not None
            ]
            try:
                written = await loop.run_in_executor(
                    self._files, _run_checkpoint_jobs, [job for _, job in jobs]
                )
            except Exception:  # a bug in one round must not stop the loop for good
                log.exception("replicas.loop_failed", action="checkpoint")
                continue
            for (partition, _), result in zip(jobs, written, strict=True):
                partition.checkpoint_written(result)

    async def _cleaner_loop(self) -> None:
        """Compacts the partitions whose cleanup.policy lists `compact`: every
        log.cleaner.backoff.ms, each one with enough new records below its high watermark
        (broker/log/cleaner.py), one after another."""
        while True:
            await asyncio.sleep(self.settings.cleaner_backoff_ms / 1000)
            await self._clean_compacted_partitions()

    async def _clean_compacted_partitions(self) -> None:
        for key, partition in list(self.partitions.items()):
            if self.partitions.get(key) is partition and partition.log.config.compacts:
                try:
                    await self._clean(key, partition)
                except Exception:  # a bug in one pass must not stop the loop for good
                    log.exception("replicas.loop_failed", action="clean")

    async def _clean(self, key: tuple[str, int], partition: Partition) -> None:
        try:
            plan = partition.log.cleaning_plan(partition.high_watermark)
        except PartitionLogError:
            return  # a failed log: its failure was reported when it happened
        if plan is None:
            return
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._cleaner, clean, plan)
        except CleaningCancelled:
            return
        except (OSError, RecordBatchError) as error:
            log.warning("partition.cleaning_failed", partition=partition.name, reason=str(error))
            return
        if self.partitions.get(key) is not partition or self._closed:
            return  # removed meanwhile; its directory went with the cleaning files
        try:
            installed = partition.log.install_cleaned(result)
        except PartitionLogError as error:
            log.error("partition.cleaning_failed", partition=partition.name, reason=str(error))
            self.storage_failed(error)
            return
        if self.metrics is not None:
            self.metrics.on_log_cleaned(installed.records_removed, installed.bytes_reclaimed)
        log.info(
            "partition.compacted",
            partition=partition.name,
            segments=len(plan.segments),
            segments_rewritten=len(installed.cleaned),
            skipped_as_changed=len(result.cleaned) - len(installed.cleaned),
            records_removed=installed.records_removed,
            bytes_reclaimed=installed.bytes_reclaimed,
            keys=result.keys_mapped,
            cleaned_up_to=result.end_offset,
            seconds=round(time.monotonic() - started, 3),
        )

    def _apply_retention(self) -> None:
        for partition in list(self.partitions.values()):
            try:
                deleted = partition.log.delete_old_segments()
            except PartitionLogError as error:
                log.error("partition.retention_failed", partition=partition.name, reason=str(error))
                self.storage_failed(error)
                continue
            if deleted:
                partition.producers_lost_head()
                log.info(
                    "partition.segments_deleted",
                    partition=partition.name,
                    segments=deleted,
                    log_start_offset=partition.log.log_start_offset,
                )

    # -- lookups -----------------------------------------------------------------------------

    def find(self, topic: str, partition_id: int) -> Partition | None:
        return self._by_name.get((topic, partition_id))

    def leader_hint(self, topic: str, partition_id: int) -> tuple[int, int]:
        """(leader id, leader epoch) of a partition as this broker's image has it."""
        topic_image = self._image().topic(topic)
        if topic_image is None:
            return -1, -1
        registration = topic_image.partitions.get(partition_id)
        if registration is None:
            return -1, -1
        return registration.leader, registration.leader_epoch

    def _unknown_or_not_leader(self, topic: str, partition_id: int) -> tuple[ErrorCode, str]:
        topic_image = self._image().topic(topic)
        if topic_image is None or partition_id not in topic_image.partitions:
            return (
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                f"this broker knows no partition {partition_id} of topic {topic!r}",
            )
        leader, _ = self.leader_hint(topic, partition_id)
        return (
            ErrorCode.NOT_LEADER_OR_FOLLOWER,
            f"broker {self.broker_id} does not lead {topic}-{partition_id} (leader: {leader})",
        )

    # -- produce -----------------------------------------------------------------------------

    async def produce(
        self, topic: str, partition_id: int, records: bytes, acks: int, timeout_ms: int
    ) -> ProduceResult:
        started = time.perf_counter()
        partition = self.find(topic, partition_id)
        leader = None if partition is None else partition.leader
        if partition is None or leader is None:
            code, message = self._unknown_or_not_leader(topic, partition_id)
            return self._produce_error(topic, partition_id, code, message)
        acks_value = Acks(acks)
        error = leader.check_produce(acks_value, partition.min_insync_replicas)
        if error is not ReplicationError.NONE:
            return self._produce_error(
                topic,
                partition_id,
                replication_error_code(error),
                f"the ISR {list(leader.committed_isr)} of {partition.name} is smaller than "
                f"min.insync.replicas={partition.min_insync_replicas}",
            )
        try:
            appended = self._append_as_leader(partition, leader, records)
        except PartitionLogError as error_:
            self.storage_failed(error_)
            return self._produce_error(topic, partition_id, log_error_code(error_), str(error_))
        if isinstance(appended, RefuseBatch):
            return self._produce_error(topic, partition_id, appended.error, appended.message)
        base_offset, last_offset, log_append_time_ms = appended
        try:
            produce_id = leader.register_pending_produce(
                last_offset, acks_value, partition.min_insync_replicas
            )
        except TooManyPendingProducesError as error_:
            return self._produce_error(
                topic, partition_id, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, str(error_)
            )
        if produce_id is None:  # acks=0
            self._drain(partition)  # the high watermark moves at once when the ISR is us
            return ProduceResult(
                ErrorCode.NONE,
                log_start_offset=partition.log.log_start_offset,
                log_append_time_ms=log_append_time_ms,
            )
        waiter: asyncio.Future[ProduceCompletion] = asyncio.get_running_loop().create_future()
        partition.produce_waiters[produce_id] = waiter
        partition.produce_started_ms[produce_id] = monotonic_ms()
        self._drain(partition)
        # One timer that fails the waiter, awaited directly: wait_for(shield(...)) chained
        # three callbacks, each a turn of the event loop, between the high watermark move
        # and this task running again.
        timer = asyncio.get_running_loop().call_later(timeout_ms / 1000, _time_out_produce, waiter)
        try:
            completion = await waiter
        except TimeoutError:
            partition.produce_waiters.pop(produce_id, None)
            partition.produce_started_ms.pop(produce_id, None)
            if partition.leader is leader:
                leader.cancel_produce(produce_id)
            return self._produce_error(
                topic,
                partition_id,
                ErrorCode.REQUEST_TIMED_OUT,
                f"the ISR did not replicate offset {last_offset} within {timeout_ms} ms",
            )
        finally:
            timer.cancel()
        if completion.error is not ReplicationError.NONE:
            return self._produce_error(
                topic,
                partition_id,
                replication_error_code(completion.error),
                f"leadership of {partition.name} moved before offset {last_offset} was "
                "replicated; the record may or may not be kept",
            )
        if self.metrics is not None:
            self.metrics.observe_produce_latency(time.perf_counter() - started)
        return ProduceResult(
            ErrorCode.NONE,
            base_offset=base_offset,
            log_start_offset=partition.log.log_start_offset,
            leader_id=self.broker_id,
            leader_epoch=leader.leader_epoch,
            log_append_time_ms=log_append_time_ms,
        )

    def _append_as_leader(
        self, partition: Partition, leader: PartitionLeaderState, records: bytes
    ) -> tuple[int, int, int] | RefuseBatch:
        """Appends a produced batch after the producer-state check, or finds the batch it
        retries: (base offset, last offset, append time on a LogAppendTime topic else -1)
        either way. Runs without an await, so pipelined produces are checked and appended
        in arrival order (broker/kafka/data.py)."""
        fields = producer_batch_of(records)
        verdict = None if fields is None else partition.producers.check(fields)
        if isinstance(verdict, RefuseBatch):
            return verdict
        log_append_time = partition.log.config.log_append_time
        if isinstance(verdict, DuplicateBatch):
            # a retry must still be a valid batch (Kafka validates before the state check)
            RecordBatch(records).validate()
            original = verdict.original
            append_time_ms = (
                self._append_time_of(partition, original.first_offset) if log_append_time else -1
            )
            return original.first_offset, original.last_offset, append_time_ms
        append_time_ms = partition.log.now_ms() if log_append_time else -1
        base_offset, last_offset = partition.log.append_as_leader(
            records, leader.leader_epoch, append_time_ms if log_append_time else None
        )
        if fields is not None:
            partition.producers.on_append(fields, base_offset, last_offset)
        leader.on_local_append(partition.log.log_end_offset)
        partition.wake_fetches(consumers=False)
        if self.metrics is not None:
            self.metrics.count_produced(
                partition.topic, last_offset - base_offset + 1, len(records)
            )
        return base_offset, last_offset, append_time_ms

    @staticmethod
    def _append_time_of(partition: Partition, offset: int) -> int:
        """The append time of the stored batch holding `offset` (what a retried batch is
        answered with), -1 when it is gone or not stamped."""
        try:
            stored = next(iter_batches(partition.log.read(offset, BATCH_HEADER_SIZE_BYTES)), None)
        except PartitionLogError:
            return -1
        if stored is None or stored.timestamp_type is not TimestampType.LOG_APPEND_TIME:
            return -1
        return stored.max_timestamp

    def _produce_error(
        self, topic: str, partition_id: int, code: ErrorCode | ProducerError, message: str
    ) -> ProduceResult:
        leader_id, leader_epoch = self.leader_hint(topic, partition_id)
        return ProduceResult(code, message, leader_id=leader_id, leader_epoch=leader_epoch)

    # -- fetch -------------------------------------------------------------------------------

    async def fetch(
        self,
        replica_id: int,
        replica_epoch: int,
        requests: Sequence[PartitionFetch],
        max_wait_ms: int,
        min_bytes: int,
        max_bytes: int,
    ) -> list[PartitionFetchResult]:
        """Reads every requested partition; while fewer than min_bytes are available and no
        partition has an error, parks until an append or a high watermark move, at most
        max_wait_ms (Kafka's DelayedFetch)."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_ms / 1000
        results = self._read_all(replica_id, replica_epoch, requests, max_bytes)
        while True:
            available = sum(len(result.records) for result in results)
            has_error = any(result.error_code is not ErrorCode.NONE for result in results)
            if available >= min_bytes or has_error or loop.time() >= deadline or self._closed:
                break
            woken = await self._park(replica_id, requests, deadline)
            if woken is None:  # the time ran out: the last answer, with what is known now
                results = self._read_all(replica_id, replica_epoch, requests, max_bytes)
                break
            # only the partitions that changed are read again (a follower fetching many
            # idle partitions pays for one per record, not for all of them)
            for index in woken:
                budget = max_bytes - (available - len(results[index].records))
                results[index] = self._read_partition(
                    replica_id,
                    replica_epoch,
                    requests[index],
                    max(0, min(budget, requests[index].max_bytes)),
                    monotonic_ms(),
                )
                available = sum(len(result.records) for result in results)
        if replica_id < 0 and self.metrics is not None:
            self.metrics.observe_fetch_latency(time.perf_counter() - started)
            for result in results:
                if result.records:
                    self.metrics.count_fetched(result.topic, len(result.records))
        return results

    async def _park(
        self, replica_id: int, requests: Sequence[PartitionFetch], deadline: float
    ) -> list[int] | None:
        """Waits until one of the requested partitions changes the way this fetch cares
        about (see Partition.park_fetch) or `deadline` (loop time) passes; the indexes of
        the requests whose partition changed, or None when the time ran out."""
        parked = ParkedFetch()
        partitions = []
        for index, request in enumerate(requests):
            partition = self.find(request.topic, request.partition)
            if partition is not None:
                partition.park_fetch(parked, index, for_replica=replica_id >= 0)
                partitions.append(partition)
        if not partitions:
            return None
        timer = asyncio.get_running_loop().call_at(deadline, parked.wake)
        try:
            await parked.future
        finally:
            timer.cancel()
            for partition in partitions:
                partition.unpark_fetch(parked)
        return sorted(set(parked.woken)) or None

    def _read_all(
        self,
        replica_id: int,
        replica_epoch: int,
        requests: Sequence[PartitionFetch],
        max_bytes: int,
    ) -> list[PartitionFetchResult]:
        budget = max_bytes
        results = []
        now_ms = monotonic_ms()
        for request in requests:
            result = self._read_partition(
                replica_id, replica_epoch, request, max(0, min(budget, request.max_bytes)), now_ms
            )
            budget -= len(result.records)
            results.append(result)
        return results

    def _read_partition(
        self,
        replica_id: int,
        replica_epoch: int,
        request: PartitionFetch,
        max_bytes: int,
        now_ms: int,
    ) -> PartitionFetchResult:
        topic, partition_id = request.topic, request.partition
        partition = self.find(topic, partition_id)
        if partition is not None and request.topic_id not in (None, partition.topic_id):
            partition = None  # the topic was deleted and created again under that name
        leader = None if partition is None else partition.leader
        if partition is None or leader is None:
            code, message = self._unknown_or_not_leader(topic, partition_id)
            leader_id, leader_epoch = self.leader_hint(topic, partition_id)
            return PartitionFetchResult(
                topic, partition_id, code, message, leader_id=leader_id, leader_epoch=leader_epoch
            )
        partition_log = partition.log
        if replica_id >= 0:
            answer = leader.on_fetch(
                replica_id,
                request.fetch_offset,
                request.last_fetched_epoch,
                partition_log.log_end_offset,
                now_ms,
                current_leader_epoch=request.current_leader_epoch,
                end_offset_for_epoch=partition_log.end_offset_for_epoch,
                leader_log_start_offset=partition_log.log_start_offset,
                replica_epoch=replica_epoch,
            )
            self._drain(partition)
            records = b""
            if answer.has_records and max_bytes > 0:
                records = partition_log.read(request.fetch_offset, max_bytes)
            diverging = answer.diverging_epoch
            return PartitionFetchResult(
                topic,
                partition_id,
                replication_error_code(answer.error),
                None if answer.error is ReplicationError.NONE else answer.error.value,
                high_watermark=answer.high_watermark,
                log_end_offset=answer.log_end_offset,
                diverging_epoch=None
                if diverging is None
                else (diverging.epoch, diverging.end_offset),
                records=records,
                leader_id=self.broker_id,
                leader_epoch=leader.leader_epoch,
                log_start_offset=partition_log.log_start_offset,
            )
        return self._read_for_consumer(partition, leader, request, max_bytes)

    def _read_for_consumer(
        self,
        partition: Partition,
        leader: PartitionLeaderState,
        request: PartitionFetch,
        max_bytes: int,
    ) -> PartitionFetchResult:
        topic, partition_id = request.topic, request.partition
        partition_log = partition.log
        high_watermark = leader.high_watermark
        end = partition_log.log_end_offset
        epoch = request.current_leader_epoch
        code, message = ErrorCode.NONE, None
        if epoch >= 0 and epoch < leader.leader_epoch:
            code, message = ErrorCode.FENCED_LEADER_EPOCH, f"leader epoch {epoch} is old"
        elif epoch > leader.leader_epoch:
            code, message = ErrorCode.UNKNOWN_LEADER_EPOCH, f"leader epoch {epoch} is unknown here"
        elif not partition_log.log_start_offset <= request.fetch_offset <= end:
            code = ErrorCode.OFFSET_OUT_OF_RANGE
            message = (
                f"offset {request.fetch_offset} is outside [{partition_log.log_start_offset}, "
                f"{end}] of {partition.name}"
            )
        records = b""
        if code is ErrorCode.NONE and request.fetch_offset < high_watermark and max_bytes > 0:
            records = batches_below(
                partition_log.read(request.fetch_offset, max_bytes), high_watermark
            )
        return PartitionFetchResult(
            topic,
            partition_id,
            code,
            message,
            high_watermark=high_watermark,
            log_end_offset=end,
            records=records,
            leader_id=self.broker_id,
            leader_epoch=leader.leader_epoch,
            log_start_offset=partition_log.log_start_offset,
        )

    # -- list offsets ------------------------------------------------------------------------

    def list_offset(self, topic: str, partition_id: int, timestamp_ms: int) -> OffsetLookup:
        partition = self.find(topic, partition_id)
        leader = None if partition is None else partition.leader
        if partition is None or leader is None:
            code, message = self._unknown_or_not_leader(topic, partition_id)
            leader_id, leader_epoch = self.leader_hint(topic, partition_id)
            return OffsetLookup(code, message, leader_id=leader_id, leader_epoch=leader_epoch)
        found_timestamp_ms = timestamp_ms
        if timestamp_ms in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            offset: int | None = partition.log.log_start_offset  # no tiered storage
        elif timestamp_ms == LATEST_TIMESTAMP:
            offset = leader.high_watermark
        elif timestamp_ms == MAX_TIMESTAMP:
            found = offset_of_max_timestamp(
                partition.log.offset_for_timestamp, leader.high_watermark
            )
            offset, found_timestamp_ms = (None, -1) if found is None else found
        else:
            offset = partition.log.offset_for_timestamp(timestamp_ms)
            if offset is not None and offset >= leader.high_watermark:
                offset = None  # consumers see nothing at or past the high watermark
        if offset is None or (timestamp_ms < 0 and timestamp_ms != MAX_TIMESTAMP):
            found_timestamp_ms = -1  # Kafka's answer for earliest and latest
        return OffsetLookup(
            ErrorCode.NONE,
            None,
            offset=-1 if offset is None else offset,
            timestamp_ms=found_timestamp_ms,
            leader_id=self.broker_id,
            leader_epoch=leader.leader_epoch,
        )

    # -- leader epochs -----------------------------------------------------------------------

    def end_offset_for_epoch(
        self, topic: str, partition_id: int, current_leader_epoch: int, leader_epoch: int
    ) -> EpochEndOffset:
        """A consumer's OffsetsForLeaderEpoch lookup (KIP-320), answered by the leader only,
        with the current leader epoch checked as a consumer's fetch checks it; the epoch
        cache lookup is the one followers truncate by (PartitionLog.end_offset_for_epoch)."""
        partition = self.find(topic, partition_id)
        leader = None if partition is None else partition.leader
        if partition is None or leader is None:
            return EpochEndOffset(*self._unknown_or_not_leader(topic, partition_id))
        fenced = None
        if 0 <= current_leader_epoch < leader.leader_epoch:
            fenced = ErrorCode.FENCED_LEADER_EPOCH, f"leader epoch {current_leader_epoch} is old"
        elif current_leader_epoch > leader.leader_epoch:
            fenced = (
                ErrorCode.UNKNOWN_LEADER_EPOCH,
                f"leader epoch {current_leader_epoch} is unknown here",
            )
        if fenced is not None:
            return EpochEndOffset(*fenced)
        found_epoch, end_offset = partition.log.end_offset_for_epoch(leader_epoch)
        return EpochEndOffset(ErrorCode.NONE, leader_epoch=found_epoch, end_offset=end_offset)

    # -- views -------------------------------------------------------------------------------

    def stats(self) -> list[LocalPartitionStats]:
        stats = []
        for partition in self.partitions.values():
            registration = partition.registration
            if registration is None:
                continue
            stats.append(
                LocalPartitionStats(
                    topic=partition.topic,
                    partition=partition.partition_id,
                    is_leader=partition.leader is not None,
                    leader_epoch=registration.leader_epoch,
                    high_watermark=partition.high_watermark,
                    log_start_offset=partition.log.log_start_offset,
                    log_end_offset=partition.log.log_end_offset,
                    size_bytes=partition.log.size_bytes,
                    replication_factor=len(registration.replicas),
                    isr_size=len(registration.isr),
                    min_insync_replicas=partition.min_insync_replicas,
                )
            )
        return stats

    def iter_partitions(self) -> Iterable[Partition]:
        return self.partitions.values()


def batches_below(data: bytes, high_watermark: int) -> bytes:
    """The prefix of `data` (whole batches) whose batches end below high_watermark: what a
    consumer may see. Only batch headers are read."""
    end = 0
    view = memoryview(data)
    while end < len(data):
        batch = RecordBatch.at(view, end)  # a read returns whole stored batches
        if batch.last_offset >= high_watermark:
            break
        end += batch.size_bytes
    return data if end == len(data) else bytes(view[:end])


def _run_checkpoint_jobs(jobs: list[Callable[[], CheckpointWritten]]) -> list[CheckpointWritten]:
    return [job() for job in jobs]


def _time_out_produce(waiter: asyncio.Future[ProduceCompletion]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
