"""Followers pull: one ReplicaFetcher task per leader broker fetches, in one request, every
partition this broker follows on that leader (Kafka's ReplicaFetcherThread), hands each
answer to the partition's FollowerState and does what it asks (append, truncate).

Appended batches also update the partition's producer state, and a truncation that removed
batches rebuilds it (producer_log.py), so a follower that becomes leader holds it.

A fetch that reaches the leader's log end is parked there (long poll) until new records
arrive, so a follower's next fetch follows the leader's append within a round trip; that
next fetch is also what tells the leader the records are replicated (the high watermark,
acks=all).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import structlog

from broker.log import PartitionLogError, iter_batches
from broker.partitions.fetch_sessions import (
    NO_SESSION_ID,
    FetchPosition,
    FollowerFetchSession,
    PartitionKey,
)
from broker.partitions.producer_log import producer_batch
from broker.replication import (
    AppendRecords,
    EpochEndOffset,
    FetchAnswer,
    FetchRequest,
    FollowerState,
    IgnoreAnswer,
    ReplicationError,
    TruncateFullyAndStartAt,
    TruncateTo,
)
from kraft.protocol.errors import ErrorCode, error_name
from kraft.protocol.native import KIND_FETCH

if TYPE_CHECKING:
    from broker.partitions.manager import ReplicaManager
    from broker.partitions.partition import Partition

log = structlog.get_logger(__name__)

# Kafka's replica.fetch.wait.max.ms / replica.fetch.max.bytes / replica.fetch.response.max.bytes
FOLLOWER_FETCH_MAX_WAIT_MS = 500
# Kafka's is 1 MiB; a Python fetch round trip is slower, and at 1 MiB the followers of a
# partition taking ~40 MB/s fell behind and left the ISR (bench/kafka_bench.py: 5 shrinks in
# 10 s at 1 MiB, 1 at 4 MiB, acks=all with min.insync.replicas=3).
FOLLOWER_PARTITION_MAX_BYTES = 4 * 1024 * 1024
FOLLOWER_FETCH_MAX_BYTES = 8 * 1024 * 1024
# The answer may take max wait plus this before the fetch counts as lost.
FETCH_TIMEOUT_SLACK_S = 2.0
# After an error (leader unreachable, not the leader yet, epoch mismatch) wait this long.
FETCH_ERROR_BACKOFF_S = 0.05
# A fetcher without partitions to fetch stops after this long.
IDLE_FETCHER_EXIT_S = 5.0

_SESSION_ERRORS = frozenset(
    (ErrorCode.FETCH_SESSION_ID_NOT_FOUND.value, ErrorCode.INVALID_FETCH_SESSION_EPOCH.value)
)
# by their wire value (a dict lookup: converting every answer's int to the enum cost more)
_ANSWERED_BY_THE_CORE = {
    code.value: code for code in (ErrorCode.NONE, ErrorCode.OFFSET_OUT_OF_RANGE)
}


class ReplicaFetchers:
    """The fetcher tasks of one broker, one per leader it follows."""

    def __init__(self, manager: ReplicaManager) -> None:
        self._manager = manager
        self._fetchers: dict[int, ReplicaFetcher] = {}

    def follow(self, leader_id: int) -> None:
        """Makes sure a fetcher for leader_id runs and looks at its partitions now."""
        fetcher = self._fetchers.get(leader_id)
        if fetcher is None or fetcher.finished:
            fetcher = ReplicaFetcher(self._manager, leader_id)
            self._fetchers[leader_id] = fetcher
        fetcher.wake()

    async def close(self) -> None:
        fetchers, self._fetchers = list(self._fetchers.values()), {}
        await asyncio.gather(*(fetcher.close() for fetcher in fetchers))


class ReplicaFetcher:
    def __init__(self, manager: ReplicaManager, leader_id: int) -> None:
        self._manager = manager
        self.leader_id = leader_id
        self._wake = asyncio.Event()
        self._session = FollowerFetchSession()  # KIP-227: broker/partitions/fetch_sessions.py
        self._task = asyncio.create_task(self._run(), name=f"replica-fetcher-{leader_id}")

    @property
    def finished(self) -> bool:
        return self._task.done()

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        log.info("fetcher.started", leader=self.leader_id)
        idle_since = time.monotonic()
        while True:
            followed = self._manager.partitions_following(self.leader_id)
            if not followed:
                if time.monotonic() - idle_since >= IDLE_FETCHER_EXIT_S:
                    log.info("fetcher.stopped", leader=self.leader_id)
                    return
                await self._sleep(IDLE_FETCHER_EXIT_S)
                continue
            idle_since = time.monotonic()
            self._wake.clear()
            try:
                had_error = await self._fetch_once(followed)
            except Exception:
                log.exception("fetcher.round_failed", leader=self.leader_id)
                had_error = True
            if had_error:
                await self._sleep(FETCH_ERROR_BACKOFF_S)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _fetch_once(self, followed: list[Partition]) -> bool:
        """One fetch round trip for every followed partition; True when it went wrong."""
        manager = self._manager
        plans: dict[PartitionKey, tuple[Partition, FollowerState, FetchRequest]] = {}
        positions: dict[PartitionKey, FetchPosition] = {}
        for partition in followed:
            follower = partition.follower
            assert follower is not None
            request = follower.next_fetch()
            key = (partition.topic, partition.partition_id)
            plans[key] = (partition, follower, request)
            positions[key] = (
                partition.topic_id,
                request.fetch_offset,
                request.current_leader_epoch,
                request.last_fetched_epoch,
            )
        session = self._session.plan(positions)
        broker_epoch = manager.broker_epoch()
        body: dict[str, Any] = {
            "kind": KIND_FETCH,
            "replica_id": manager.broker_id,
            "replica_epoch": -1 if broker_epoch is None else broker_epoch,
            "max_wait_ms": FOLLOWER_FETCH_MAX_WAIT_MS,
            "min_bytes": 1,
            "max_bytes": FOLLOWER_FETCH_MAX_BYTES,
            "session_id": session.session_id,
            "session_epoch": session.epoch,
            "partitions": [_partition_entry(key, positions[key]) for key in session.listed],
        }
        if session.forgotten:
            body["forgotten"] = [
                {"topic": topic, "partition": partition_id}
                for topic, partition_id in session.forgotten
            ]
        timeout_s = FOLLOWER_FETCH_MAX_WAIT_MS / 1000 + FETCH_TIMEOUT_SLACK_S
        try:
            answer = await manager.request_broker(self.leader_id, body, timeout_s)
        except Exception as error:  # noqa: BLE001 - unreachable, timed out, refused: retry
            log.debug("fetcher.fetch_failed", leader=self.leader_id, reason=repr(error))
            self._fail(plans.values())
            return True
        answers = answer.get("partitions")
        error_code = answer.get("error_code", ErrorCode.NONE.value)
        if not isinstance(answers, list) or error_code != ErrorCode.NONE.value:
            # the next request is a full one: after FETCH_SESSION_ID_NOT_FOUND or
            # INVALID_FETCH_SESSION_EPOCH (the leader restarted or dropped the session) that
            # is all it takes; anything else is a leader we do not understand
            session_error = type(error_code) is int and error_code in _SESSION_ERRORS
            (log.info if session_error else log.warning)(
                "fetcher.session_reset" if session_error else "fetcher.bad_answer",
                leader=self.leader_id,
                error=error_name(error_code) if type(error_code) is int else repr(error_code),
                answer=str(answer)[:200],
            )
            self._fail(plans.values())
            return True
        session_id = answer.get("session_id", NO_SESSION_ID)
        self._session.on_answer(session_id if type(session_id) is int else NO_SESSION_ID)
        had_error = False
        answered: set[PartitionKey] = set()
        for item in answers:
            if not isinstance(item, dict):
                continue
            topic, partition_id = item.get("topic"), item.get("partition")
            if not isinstance(topic, str) or type(partition_id) is not int:
                continue
            plan = plans.get((topic, partition_id))
            if plan is None:
                continue
            answered.add((topic, partition_id))
            partition, follower, request = plan
            if partition.follower is not follower:
                continue  # the role changed while the fetch was out: its state is gone
            had_error |= not self._handle(partition, follower, request, item)
        if session.is_full:
            # a full request is answered for every partition: one left out failed
            for key, (partition, follower, _) in plans.items():
                if key not in answered and partition.follower is follower:
                    follower.on_fetch_failed()
                    had_error = True
        # in a session, a partition left out has nothing new: its fetch stays as it was
        return had_error

    def _fail(self, plans: Iterable[tuple[Partition, FollowerState, FetchRequest]]) -> None:
        self._session.reset()
        for partition, follower, _ in plans:
            if partition.follower is follower:
                follower.on_fetch_failed()

    def _handle(
        self,
        partition: Partition,
        follower: FollowerState,
        request: FetchRequest,
        item: dict[str, Any],
    ) -> bool:
        """Applies one partition's answer; False when it was an error."""
        code = _ANSWERED_BY_THE_CORE.get(item["error_code"])
        if code is None:
            # not the leader (yet), epochs differ, unknown partition: the metadata will say
            # who leads; ask again after a backoff
            follower.on_fetch_failed()
            return False
        diverging = item.get("diverging_epoch")
        answer = FetchAnswer(
            leader_epoch=request.current_leader_epoch,
            fetch_offset=request.fetch_offset,
            last_fetched_epoch=request.last_fetched_epoch,
            error=ReplicationError.NONE
            if code is ErrorCode.NONE
            else ReplicationError.OFFSET_OUT_OF_RANGE,
            high_watermark=int(item["high_watermark"]),
            log_start_offset=int(item["log_start_offset"]),
            log_end_offset=int(item["log_end_offset"]),
            diverging_epoch=None
            if diverging is None
            else EpochEndOffset(int(diverging[0]), int(diverging[1])),
        )
        partition_log = partition.log
        action = follower.on_fetch_answer(answer, partition_log.end_offset_for_epoch)
        if isinstance(action, IgnoreAnswer):
            return not action.backoff
        try:
            if isinstance(action, AppendRecords):
                records = item.get("records") or b""
                if records:
                    partition_log.append_as_follower(records)
                    _record_producers(partition, records)
            elif isinstance(action, TruncateTo):
                log.info(
                    "partition.truncated",
                    partition=partition.name,
                    offset=action.offset,
                    log_end_offset=partition_log.log_end_offset,
                )
                end_before = partition_log.log_end_offset
                partition_log.truncate_to(action.offset)
                if partition_log.log_end_offset != end_before:  # batches went: roll back
                    partition.producers_truncated()
            else:
                assert isinstance(action, TruncateFullyAndStartAt)
                log.info("partition.restarted_at", partition=partition.name, offset=action.offset)
                partition_log.truncate_fully_and_start_at(action.offset)
                partition.producers_truncated()
        except PartitionLogError as error:
            log.error(
                "partition.follower_write_failed", partition=partition.name, reason=str(error)
            )
            self._manager.storage_failed(error)
            follower.on_fetch_failed()
            return False
        follower.on_log_changed(partition_log.log_end_offset, partition.latest_epoch)
        return True


def _partition_entry(key: PartitionKey, position: FetchPosition) -> dict[str, Any]:
    topic_id, fetch_offset, current_leader_epoch, last_fetched_epoch = position
    return {
        "topic": key[0],
        "topic_id": topic_id,
        "partition": key[1],
        "fetch_offset": fetch_offset,
        "partition_max_bytes": FOLLOWER_PARTITION_MAX_BYTES,
        "current_leader_epoch": current_leader_epoch,
        "last_fetched_epoch": last_fetched_epoch,
    }


def _record_producers(partition: Partition, records: bytes) -> None:
    """A follower keeps the producer state too, from the batches as its leader stored them,
    so that it has it when it becomes leader."""
    for batch in iter_batches(records):
        fields = producer_batch(batch)
        if fields is not None:
            partition.producers.on_append(fields, batch.base_offset, batch.last_offset)
