"""The group coordinator of a broker: the asyncio shell around the pure ClassicGroup machines.

A group lives on the leader of its partition of `__consumer_offsets` (offsets_topic). The
ReplicaManager has no leadership callback, so a watcher polls the metadata image every
LEADERSHIP_POLL_INTERVAL_S: for each offsets partition this broker now leads (in a new
leader epoch) it loads the groups by reading the partition from its start up to the log end
it had when loading began (everything a previous leader acknowledged lies below it); for
each it no longer leads it unloads them, and their waiting members hear NOT_COORDINATOR. The
same loop ticks every loaded group (session expiry, the end of a join phase, the sync
deadline), so timers have that resolution.

Writes (commits, the leader's assignment, an emptied group) go through the ReplicaManager
with acks=all and are applied, or answered, only once acknowledged: a commit that was
answered survives the loss of the coordinator.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from kio.schema.errors import ErrorCode as KafkaError

from broker.api.facade import NoLeaderError
from broker.kafka.cluster import client_endpoint
from broker.kafka.groups.model import (
    Answer,
    CommittedOffset,
    GroupSettings,
    GroupSnapshot,
    GroupState,
    JoinAnswer,
    JoinRequest,
    SyncAnswer,
)
from broker.kafka.groups.offsets_topic import (
    OFFSETS_TOPIC,
    PartitionContents,
    offsets_topic_shape,
    partition_for,
)
from broker.kafka.groups.records import (
    OffsetsRecordError,
    group_key,
    group_value,
    offset_key,
    offset_value,
)
from broker.kafka.groups.state import ClassicGroup
from broker.kafka.services import AdminOperations, DataOperations
from broker.log.batch import Record, build_batch, iter_batches, iter_records
from broker.log.errors import CorruptRecordError, InvalidRecordError
from broker.partitions.manager import PartitionFetch
from broker.replication.producer_state import ProducerError
from kraft.controller.errors import ControllerError, TopicExistsError
from kraft.controller.image import MetadataImage
from kraft.protocol.errors import ErrorCode
from kraft.protocol.native import CONSUMER_REPLICA_ID, EARLIEST_TIMESTAMP

log = structlog.get_logger(__name__)

LEADERSHIP_POLL_INTERVAL_S = 0.1  # also the resolution of group timers
OFFSET_COMMIT_TIMEOUT_MS = 5_000  # Kafka's offsets.commit.timeout.ms
LOAD_FETCH_MAX_BYTES = 4 * 1024 * 1024
LOAD_FETCH_WAIT_MS = 500
LOAD_RETRY_S = 0.2
TOPIC_CREATION_TIMEOUT_S = 25.0  # the gateway bounds its calls to 10 s forward + 10 s apply


# Kafka's offsets.retention.minutes (7 days) and offsets.retention.check.interval.ms.
OFFSETS_RETENTION_MS = 7 * 24 * 60 * 60 * 1000
OFFSETS_RETENTION_CHECK_INTERVAL_MS = 10 * 60 * 1000


@dataclass(frozen=True, slots=True)
class CoordinatorSettings:
    offsets_topic_partitions: int  # offsets.topic.num.partitions
    offsets_topic_replication_factor: int  # offsets.topic.replication.factor
    group: GroupSettings
    offsets_retention_ms: int = OFFSETS_RETENTION_MS  # offsets.retention.minutes
    offsets_retention_check_interval_ms: int = OFFSETS_RETENTION_CHECK_INTERVAL_MS

    def __post_init__(self) -> None:
        assert self.offsets_topic_partitions >= 1, self.offsets_topic_partitions
        assert self.offsets_topic_replication_factor >= 1, self.offsets_topic_replication_factor
        assert self.offsets_retention_ms > 0, self.offsets_retention_ms
        assert self.offsets_retention_check_interval_ms > 0


class CoordinatorError(Exception):
    """This broker cannot serve the group now; `error` is Kafka's code for the client."""

    def __init__(self, error: KafkaError, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


class _Status(enum.Enum):
    LOADING = "loading"
    LOADED = "loaded"


@dataclass(slots=True)
class _OffsetsPartition:
    partition_id: int
    topic_id: str
    leader_epoch: int
    status: _Status = _Status.LOADING
    groups: dict[str, ClassicGroup] = field(default_factory=dict)
    load_task: asyncio.Task[None] | None = None


@dataclass(frozen=True, slots=True)
class CoordinatorAddress:
    error: KafkaError
    message: str | None
    node_id: int = -1
    host: str = ""
    port: int = -1


@dataclass(frozen=True, slots=True)
class GroupOverview:
    group_id: str
    protocol_type: str
    state: str


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


# A member id must fit the offsets topic's int16-length strings whatever the client id.
MEMBER_ID_CLIENT_PREFIX_MAX_CHARS = 1024


def new_member_id(client_id: str) -> str:
    """Kafka's member ids: the client id, a dash and a random UUID (the client id cut to
    MEMBER_ID_CLIENT_PREFIX_MAX_CHARS)."""
    return f"{client_id[:MEMBER_ID_CLIENT_PREFIX_MAX_CHARS]}-{uuid.uuid4()}"


class GroupCoordinator:
    def __init__(
        self,
        node_id: int,
        settings: CoordinatorSettings,
        *,
        data: DataOperations,
        admin: AdminOperations,
        image: Callable[[], MetadataImage],
        clock_ms: Callable[[], int] = monotonic_ms,
        wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        member_id_factory: Callable[[str], str] = new_member_id,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.node_id = node_id
        self.settings = settings
        self._data = data
        self._admin = admin
        self._image = image
        self._clock_ms = clock_ms
        self._wall_clock_ms = wall_clock_ms
        self._new_member_id = member_id_factory
        self._on_fatal = on_fatal
        self._partitions: dict[int, _OffsetsPartition] = {}
        self._waiting: dict[int, asyncio.Future[Answer]] = {}
        self._next_request_id = 0
        self._creating: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        # offset expiry (KIP-211): since when (wall clock) each loaded group has been empty,
        # as seen here; a group loaded empty counts from its loading (a later expiry, never
        # an earlier one)
        self._empty_since_ms: dict[str, int] = {}
        self._expiring: set[str] = set()
        self._next_expiry_check_ms = clock_ms() + settings.offsets_retention_check_interval_ms

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        assert self._loop_task is None, "start() once"
        self._loop_task = asyncio.create_task(self._run(), name="group-coordinator")
        self._loop_task.add_done_callback(self._report_crash)

    async def close(self) -> None:
        tasks = [t for t in (self._loop_task, self._creating) if t is not None]
        tasks += [p.load_task for p in self._partitions.values() if p.load_task is not None]
        tasks += list(self._tasks)
        for partition_id in list(self._partitions):
            self._unload(partition_id)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop_task = None

    async def _run(self) -> None:
        while True:
            self.reconcile()
            self.tick()
            await asyncio.sleep(LEADERSHIP_POLL_INTERVAL_S)

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._report_crash)
        return task

    def _report_crash(self, task: asyncio.Task[Any]) -> None:
        """A task of the coordinator that died of an error (a broken invariant): groups
        would hang unanswered, so the node is told to stop (STYLE §4: programmer errors
        crash the node)."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        assert error is not None
        log.critical("groups.task_crashed", task=task.get_name(), reason=repr(error))
        if self._on_fatal is not None:
            self._on_fatal(error)

    # -- leadership ------------------------------------------------------------------------------

    def _led_partitions(self, image: MetadataImage) -> dict[int, tuple[str, int]]:
        """partition -> (topic id, leader epoch) of each offsets partition this broker leads."""
        topic = image.topic(OFFSETS_TOPIC)
        if topic is None:
            return {}
        return {
            partition_id: (topic.topic_id, registration.leader_epoch)
            for partition_id, registration in topic.partitions.items()
            if registration.has_leader and registration.leader == self.node_id
        }

    def reconcile(self) -> None:
        """Loads the partitions this broker has come to lead and unloads the others."""
        led = self._led_partitions(self._image())
        for partition_id, state in list(self._partitions.items()):
            if led.get(partition_id) != (state.topic_id, state.leader_epoch):
                self._unload(partition_id)
        for partition_id, (topic_id, leader_epoch) in led.items():
            if partition_id not in self._partitions:
                state = _OffsetsPartition(partition_id, topic_id, leader_epoch)
                self._partitions[partition_id] = state
                state.load_task = asyncio.create_task(
                    self._load(state), name=f"load-{OFFSETS_TOPIC}-{partition_id}"
                )
                state.load_task.add_done_callback(self._report_crash)
                log.info("groups.loading", partition=partition_id, leader_epoch=leader_epoch)

    def _unload(self, partition_id: int) -> None:
        state = self._partitions.pop(partition_id)
        if state.load_task is not None and not state.load_task.done():
            state.load_task.cancel()
        now_ms = self._clock_ms()
        for group in state.groups.values():
            group.unload(now_ms)
            self._deliver(group)
        log.info("groups.unloaded", partition=partition_id, groups=len(state.groups))

    async def _load(self, state: _OffsetsPartition) -> None:
        while True:
            try:
                contents = await self._read_partition(state.partition_id)
            except (CorruptRecordError, InvalidRecordError, OffsetsRecordError) as error:
                # a record this broker cannot read: keep refusing (LOAD_IN_PROGRESS) and say why
                log.error("groups.load_failed", partition=state.partition_id, reason=str(error))
                await asyncio.sleep(LOAD_RETRY_S * 10)
                continue
            if contents is not None:
                break
            await asyncio.sleep(LOAD_RETRY_S)
        now_ms = self._clock_ms()
        for group_id in contents.group_ids():
            state.groups[group_id] = ClassicGroup.loaded(
                group_id,
                self.settings.group,
                contents.groups.get(group_id),
                contents.offsets.get(group_id, {}),
                now_ms,
            )
        state.status = _Status.LOADED
        log.info("groups.loaded", partition=state.partition_id, groups=len(state.groups))

    async def _read_partition(self, partition_id: int) -> PartitionContents | None:
        """Every record of one offsets partition up to the log end it had when this began,
        or None when it cannot be read now (leadership not taken up yet, or moved)."""
        start = self._data.list_offset(OFFSETS_TOPIC, partition_id, EARLIEST_TIMESTAMP)
        if start.error_code is not ErrorCode.NONE:
            return None
        offset, end = start.offset, None
        contents = PartitionContents()
        while end is None or offset < end:
            fetch = PartitionFetch(OFFSETS_TOPIC, partition_id, offset, LOAD_FETCH_MAX_BYTES)
            # the first read returns at once (it learns the log end); later ones wait for
            # the high watermark to reach it
            min_bytes = 0 if end is None else 1
            (result,) = await self._data.fetch(
                CONSUMER_REPLICA_ID,
                -1,
                [fetch],
                LOAD_FETCH_WAIT_MS,
                min_bytes,
                LOAD_FETCH_MAX_BYTES,
            )
            if result.error_code is not ErrorCode.NONE:
                return None
            if end is None:
                end = result.log_end_offset
            for batch in iter_batches(result.records):
                if not batch.is_control:
                    for record in iter_records(batch):
                        contents.apply(record.key, record.value)
                offset = batch.next_offset
        return contents

    # -- where a group lives ---------------------------------------------------------------------

    def _group_partition(self, group_id: str) -> int:
        topic = self._image().topic(OFFSETS_TOPIC)
        count = self.settings.offsets_topic_partitions if topic is None else len(topic.partitions)
        return partition_for(group_id, count)

    def _loaded_partition(self, group_id: str) -> _OffsetsPartition:
        """The loaded partition of a group this broker coordinates; CoordinatorError with
        NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS otherwise."""
        partition_id = self._group_partition(group_id)
        state = self._partitions.get(partition_id)
        if state is None:
            if partition_id in self._led_partitions(self._image()):
                raise CoordinatorError(
                    KafkaError.coordinator_load_in_progress,
                    f"{OFFSETS_TOPIC}-{partition_id} is about to be loaded here",
                )
            raise CoordinatorError(
                KafkaError.not_coordinator,
                f"broker {self.node_id} does not lead {OFFSETS_TOPIC}-{partition_id}, which "
                f"holds group {group_id!r}",
            )
        if state.status is _Status.LOADING:
            raise CoordinatorError(
                KafkaError.coordinator_load_in_progress,
                f"{OFFSETS_TOPIC}-{partition_id} is being loaded",
            )
        return state

    def _group(self, group_id: str, create: bool) -> tuple[_OffsetsPartition, ClassicGroup | None]:
        state = self._loaded_partition(group_id)
        group = state.groups.get(group_id)
        if group is None and create:
            group = ClassicGroup(group_id, self.settings.group)
            state.groups[group_id] = group
        return state, group

    # -- FindCoordinator -------------------------------------------------------------------------

    async def find_coordinator(self, group_id: str) -> CoordinatorAddress:
        image = self._image()
        if image.topic(OFFSETS_TOPIC) is None:
            refusal = await self._ensure_offsets_topic()
            if refusal is not None:
                return refusal
            image = self._image()
        topic = image.topic(OFFSETS_TOPIC)
        if topic is None:
            return CoordinatorAddress(
                KafkaError.coordinator_not_available, f"{OFFSETS_TOPIC} is not created yet"
            )
        partition_id = partition_for(group_id, len(topic.partitions))
        registration = topic.partitions[partition_id]
        endpoint = client_endpoint(image, registration.leader) if registration.has_leader else None
        if endpoint is None:
            return CoordinatorAddress(
                KafkaError.coordinator_not_available,
                f"{OFFSETS_TOPIC}-{partition_id} has no leader with a client listener now",
            )
        return CoordinatorAddress(KafkaError.none, None, registration.leader, *endpoint)

    async def _ensure_offsets_topic(self) -> CoordinatorAddress | None:
        if self._creating is None or self._creating.done():
            self._creating = asyncio.create_task(self._create_offsets_topic())
        try:
            await asyncio.wait_for(asyncio.shield(self._creating), TOPIC_CREATION_TIMEOUT_S)
        except TimeoutError:
            message = f"creating {OFFSETS_TOPIC} took longer than {TOPIC_CREATION_TIMEOUT_S} s"
        except ControllerError as error:
            message = f"creating {OFFSETS_TOPIC} failed: {error.message}"
        except NoLeaderError as error:
            message = f"creating {OFFSETS_TOPIC} failed: no active controller ({error})"
        else:
            return None
        log.warning("groups.offsets_topic_not_created", reason=message)
        return CoordinatorAddress(KafkaError.coordinator_not_available, message)

    async def _create_offsets_topic(self) -> None:
        settings = self.settings
        shape = offsets_topic_shape(
            settings.offsets_topic_partitions,
            settings.offsets_topic_replication_factor,
            max(1, len(self._image().brokers)),
        )
        with contextlib.suppress(TopicExistsError):
            await self._admin.create_topic(
                OFFSETS_TOPIC, shape.partitions, shape.replication_factor, shape.configs
            )
            log.info(
                "groups.offsets_topic_created",
                partitions=shape.partitions,
                replication_factor=shape.replication_factor,
                configs=shape.configs,
            )

    # -- answers ---------------------------------------------------------------------------------

    def _request_id(self) -> tuple[int, asyncio.Future[Answer]]:
        self._next_request_id += 1
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[self._next_request_id] = future
        return self._next_request_id, future

    def _deliver(self, group: ClassicGroup) -> None:
        """Hands the group's answers to the requests waiting for them and starts its writes."""
        for request_id, answer in group.take_answers():
            future = self._waiting.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result(answer)
        for snapshot in group.take_writes():
            self._spawn(self._store_group(group, snapshot))

    async def _await_answer(self, request_id: int, future: asyncio.Future[Answer]) -> Answer:
        try:
            return await future
        finally:
            self._waiting.pop(request_id, None)

    def tick(self) -> None:
        now_ms = self._clock_ms()
        for state in list(self._partitions.values()):
            for group in list(state.groups.values()):
                group.tick(now_ms)
                self._deliver(group)
                _maybe_forget(state, group)
        if now_ms >= self._next_expiry_check_ms:
            self._next_expiry_check_ms = now_ms + self.settings.offsets_retention_check_interval_ms
            self.expire_offsets()

    # -- offset expiry ---------------------------------------------------------------------------

    def expire_offsets(self) -> None:
        """Kafka's offset expiry (offsets.retention.minutes, KIP-211), over the loaded groups:
        a consumer group's offsets go once it has been empty for the retention; those of a
        group that never joined (commits from outside group management) each go once the
        retention passed since its commit; a group with members keeps them all. A group
        left empty with no offsets is deleted. Tombstones are written with acks=all."""
        wall_ms = self._wall_clock_ms()
        retention_ms = self.settings.offsets_retention_ms
        loaded = {group_id for state in self._partitions.values() for group_id in state.groups}
        for group_id in set(self._empty_since_ms) - loaded:  # unloaded or forgotten meanwhile
            del self._empty_since_ms[group_id]
        for state in list(self._partitions.values()):
            if state.status is not _Status.LOADED:
                continue
            for group in list(state.groups.values()):
                group_id = group.group_id
                if not group.is_empty or group.pending_members:
                    self._empty_since_ms.pop(group_id, None)
                    continue
                empty_since_ms = self._empty_since_ms.setdefault(group_id, wall_ms)
                if group_id in self._expiring:
                    continue
                if group.protocol_type is None:  # never joined: only its offsets are stored
                    expired = {
                        partition: committed
                        for partition, committed in group.offsets.items()
                        if committed.commit_timestamp_ms + retention_ms <= wall_ms
                    }
                    remove_group = False  # forgotten by the tick once it holds nothing
                elif empty_since_ms + retention_ms <= wall_ms:
                    expired, remove_group = dict(group.offsets), True
                else:
                    continue
                if expired or remove_group:
                    self._expiring.add(group_id)
                    self._spawn(self._expire(state, group, expired, remove_group))

    async def _expire(
        self,
        state: _OffsetsPartition,
        group: ClassicGroup,
        expired: dict[tuple[str, int], CommittedOffset],
        remove_group: bool,
    ) -> None:
        group_id = group.group_id
        try:
            if expired and not await self._write_offset_expiry(state, group, expired):
                return
            if not remove_group:
                return
            still_idle = group.is_empty and not group.pending_members and not group.offsets
            if not still_idle or state.groups.get(group_id) is not group:
                return
            tombstone = Record(group_key(group_id), None, (), self._wall_clock_ms())
            error, message = await self._append(state.partition_id, [tombstone])
            if error is not KafkaError.none:
                log.warning(
                    "groups.expiry_failed", group=group_id, error=error.name, reason=message
                )
                return
            if group.is_empty and not group.offsets and state.groups.get(group_id) is group:
                group.delete(self._clock_ms())
                state.groups.pop(group_id, None)
                self._empty_since_ms.pop(group_id, None)
                log.info("groups.expired", group=group_id)
        finally:
            self._expiring.discard(group_id)

    async def _write_offset_expiry(
        self,
        state: _OffsetsPartition,
        group: ClassicGroup,
        expired: dict[tuple[str, int], CommittedOffset],
    ) -> bool:
        """Writes the tombstones, then forgets the offsets. A commit of one of them that
        came in meanwhile may have been written before the tombstone: it is written again,
        so the log's last word is the commit the group now holds."""
        group_id = group.group_id
        wall_ms = self._wall_clock_ms()
        tombstones = [Record(offset_key(group_id, t, p), None, (), wall_ms) for t, p in expired]
        error, message = await self._append(state.partition_id, tombstones)
        if error is not KafkaError.none:
            log.warning("groups.expiry_failed", group=group_id, error=error.name, reason=message)
            return False
        recommitted = {}
        for partition, committed in expired.items():
            current = group.offsets.get(partition)
            if current is committed:
                del group.offsets[partition]
            elif current is not None:
                recommitted[partition] = current
        log.info("groups.offsets_expired", group=group_id, partitions=len(expired))
        if recommitted:
            records = [
                Record(offset_key(group_id, t, p), offset_value(c), (), self._wall_clock_ms())
                for (t, p), c in recommitted.items()
            ]
            await self._append(state.partition_id, records)
            return False
        return True

    # -- persistence -----------------------------------------------------------------------------

    async def _append(
        self, partition_id: int, records: list[Record]
    ) -> tuple[KafkaError, str | None]:
        batch = build_batch(records)
        result = await self._data.produce(
            OFFSETS_TOPIC, partition_id, batch, -1, OFFSET_COMMIT_TIMEOUT_MS
        )
        return _write_error(result.error_code), result.error_message

    async def _store_group(self, group: ClassicGroup, snapshot: GroupSnapshot) -> None:
        partition_id = self._group_partition(group.group_id)
        record = Record(group_key(group.group_id), group_value(snapshot), (), self._wall_clock_ms())
        error, message = await self._append(partition_id, [record])
        if error is not KafkaError.none:
            log.warning(
                "groups.store_failed", group=group.group_id, error=error.name, reason=message
            )
        group.on_group_stored(snapshot.generation_id, error, self._clock_ms())
        self._deliver(group)

    # -- the group APIs --------------------------------------------------------------------------

    async def join(self, group_id: str, request: JoinRequest) -> JoinAnswer:
        state, group = self._group(group_id, create=request.member_id == "")
        if group is None:
            return JoinAnswer(request.member_id, KafkaError.unknown_member_id)
        request_id, future = self._request_id()
        group.join(request_id, request, self._clock_ms())
        self._deliver(group)
        _maybe_forget(state, group)
        answer = await self._await_answer(request_id, future)
        assert isinstance(answer, JoinAnswer), answer
        return answer

    def fresh_member_id(self, client_id: str) -> str:
        return self._new_member_id(client_id)

    async def sync(
        self,
        group_id: str,
        member_id: str,
        generation_id: int,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
        instance_id: str | None = None,
    ) -> SyncAnswer:
        _, group = self._group(group_id, create=False)
        if group is None:
            return SyncAnswer(member_id, KafkaError.unknown_member_id)
        request_id, future = self._request_id()
        group.sync(
            request_id,
            member_id,
            generation_id,
            protocol_type,
            protocol_name,
            assignments,
            self._clock_ms(),
            instance_id,
        )
        self._deliver(group)
        answer = await self._await_answer(request_id, future)
        assert isinstance(answer, SyncAnswer), answer
        return answer

    def heartbeat(
        self, group_id: str, member_id: str, generation_id: int, instance_id: str | None = None
    ) -> KafkaError:
        """Kafka's handleHeartbeat: while the group's partition is still loading the answer
        is NONE, blindly (aiokafka, for one, treats COORDINATOR_LOAD_IN_PROGRESS on a
        heartbeat as fatal and its consumer dies when the coordinator moves)."""
        try:
            _, group = self._group(group_id, create=False)
        except CoordinatorError as refusal:
            if refusal.error is KafkaError.coordinator_load_in_progress:
                return KafkaError.none
            raise
        if group is None:
            return KafkaError.unknown_member_id
        error = group.heartbeat(member_id, generation_id, self._clock_ms(), instance_id)
        self._deliver(group)
        return error

    def leave(self, group_id: str, members: list[tuple[str, str | None]]) -> list[KafkaError]:
        """members: (member id, group instance id or None)."""
        _, group = self._group(group_id, create=False)
        if group is None:
            return [KafkaError.unknown_member_id for _ in members]
        errors = group.leave(members, self._clock_ms())
        self._deliver(group)
        return errors

    async def commit(
        self,
        group_id: str,
        member_id: str,
        generation_id: int,
        offsets: dict[tuple[str, int], CommittedOffset],
        instance_id: str | None = None,
    ) -> KafkaError:
        """One code for the whole commit: stored (acks=all) or not at all."""
        state, group = self._group(group_id, create=generation_id < 0)
        if group is None:
            # a generation of a group this coordinator does not know (Kafka answers the same)
            return KafkaError.illegal_generation
        error = group.check_commit(member_id, generation_id, self._clock_ms(), instance_id)
        self._deliver(group)
        if error is not KafkaError.none or not offsets:
            return error
        now_ms = self._wall_clock_ms()
        # stamped by the clock offset expiry reads (offsets.retention.minutes)
        offsets = {
            partition: dataclasses.replace(committed, commit_timestamp_ms=now_ms)
            for partition, committed in offsets.items()
        }
        records = [
            Record(offset_key(group_id, topic, partition), offset_value(committed), (), now_ms)
            for (topic, partition), committed in offsets.items()
        ]
        error, message = await self._append(state.partition_id, records)
        if error is KafkaError.none:
            group.apply_commits(offsets)
            # a group with nothing stored may have been forgotten while the write was out
            current = state.groups.setdefault(group_id, group)
            if current is not group:
                current.apply_commits(offsets)
        else:
            log.warning("groups.commit_failed", group=group_id, error=error.name, reason=message)
        return error

    async def delete_group(self, group_id: str) -> KafkaError:
        """DeleteGroups of one group: an empty group is dropped and tombstones for its
        metadata and every committed offset are written (acks=all), so a successor does not
        load it again."""
        state, group = self._group(group_id, create=False)
        if group is None:
            return KafkaError.group_id_not_found
        error = group.delete(self._clock_ms())
        if error is not KafkaError.none:
            return error
        state.groups.pop(group_id, None)
        tombstones = [Record(group_key(group_id), None, (), self._wall_clock_ms())]
        tombstones += [
            Record(offset_key(group_id, topic, partition), None, (), self._wall_clock_ms())
            for topic, partition in sorted(group.offsets)
        ]
        error, message = await self._append(state.partition_id, tombstones)
        if error is not KafkaError.none:
            log.warning("groups.delete_failed", group=group_id, error=error.name, reason=message)
        return error

    async def delete_offsets(
        self, group_id: str, partitions: list[tuple[str, int]]
    ) -> tuple[KafkaError, dict[tuple[str, int], KafkaError]]:
        """OffsetDelete: the group's error and each partition's. The offsets of partitions
        no member consumes go (tombstones written with acks=all, then forgotten); those of
        subscribed topics stay, answered GROUP_SUBSCRIBED_TO_TOPIC."""
        state, group = self._group(group_id, create=False)
        if group is None:
            return KafkaError.group_id_not_found, {}
        error, subscribed = group.check_offset_delete({topic for topic, _ in partitions})
        if error is not KafkaError.none:
            return error, {}
        errors = {
            partition: KafkaError.group_subscribed_to_topic
            if partition[0] in subscribed
            else KafkaError.none
            for partition in partitions
        }
        deleted = [p for p in partitions if errors[p] is KafkaError.none and p in group.offsets]
        if not deleted:
            return KafkaError.none, errors
        now_ms = self._wall_clock_ms()
        tombstones = [Record(offset_key(group_id, t, p), None, (), now_ms) for t, p in deleted]
        error, message = await self._append(state.partition_id, tombstones)
        if error is not KafkaError.none:
            log.warning(
                "groups.offset_delete_failed", group=group_id, error=error.name, reason=message
            )
            return error, {}
        group.forget_offsets(deleted)
        log.info("groups.offsets_deleted", group=group_id, partitions=len(deleted))
        return KafkaError.none, errors

    def committed_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]] | None
    ) -> dict[tuple[str, int], CommittedOffset]:
        """The committed offsets of the given partitions (all when None); a partition without
        one is missing from the answer."""
        _, group = self._group(group_id, create=False)
        if group is None:
            return {}
        if partitions is None:
            return dict(group.offsets)
        return {p: group.offsets[p] for p in partitions if p in group.offsets}

    def describe(self, group_id: str) -> ClassicGroup | None:
        _, group = self._group(group_id, create=False)
        return group

    def list_groups(self) -> list[GroupOverview]:
        return [
            GroupOverview(group.group_id, group.protocol_type or "", group.state.value)
            for state in self._partitions.values()
            if state.status is _Status.LOADED
            for group in state.groups.values()
            if group.state is not GroupState.DEAD
        ]

    def local_groups(self) -> list[ClassicGroup]:
        """The live groups this broker coordinates now (for metrics); not to be changed."""
        return [
            group
            for state in self._partitions.values()
            if state.status is _Status.LOADED
            for group in state.groups.values()
            if group.state is not GroupState.DEAD
        ]

    @property
    def loading(self) -> bool:
        return any(state.status is _Status.LOADING for state in self._partitions.values())


def _maybe_forget(state: _OffsetsPartition, group: ClassicGroup) -> None:
    """Drops a group that holds nothing (a refused first join, expired pending members):
    nothing was stored for it, so nothing is lost."""
    if (
        group.state is GroupState.EMPTY
        and group.generation_id == 0
        and not group.members
        and not group.pending_members
        and not group.offsets
    ):
        state.groups.pop(group.group_id, None)


def _write_error(code: ErrorCode | ProducerError) -> KafkaError:
    """Kafka's mapping of a failed append to the offsets topic onto what a group member can
    act on (GroupMetadataManager): find the coordinator again, or retry. (A ProducerError
    answers only batches with a producer id, which the coordinator never writes.)"""
    if code is ErrorCode.NONE:
        return KafkaError.none
    if code in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.KAFKA_STORAGE_ERROR):
        return KafkaError.not_coordinator
    if code in (
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode.REQUEST_TIMED_OUT,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
    ):
        return KafkaError.coordinator_not_available
    if code in (ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE):
        return KafkaError.invalid_commit_offset_size
    return KafkaError.unknown_server_error
