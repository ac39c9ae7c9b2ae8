"""An asyncio consumer of assigned partitions for the native data protocol (decision 0005),
with the behaviour of Kafka's consumer without groups:

- `assign()` names the partitions; each starts without a position, which the first poll
  sets by `auto_offset_reset` ('earliest': the log start; 'latest': the high watermark;
  'none': raise), unless `seek`, `seek_to_beginning` or `seek_to_end` set it first.
- `poll()` fetches (replica_id -1: up to the high watermark) from each partition leader, one
  request per leader for all its partitions, parked by the broker up to fetch_max_wait_ms
  (long poll). A fetch outlives the poll that started it: the next poll collects it. Records
  beyond max_records stay buffered for the next poll.
- A fetch returns whole stored batches, so the first batch may start below the fetch offset:
  records below it are skipped (decode_fetched_records). Control batches are skipped too.
  Every batch is checked (CRC-32C, structure) before a record of it is returned; a
  compressed one (gzip, snappy, lz4, zstd) is decompressed, bounded, and its records checked.
- NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, FENCED/UNKNOWN_LEADER_EPOCH and a
  failed connection refresh the metadata and back the partition off (retry_backoff_ms,
  doubling to retry_backoff_max_ms), so the consumer follows leadership changes.
  OFFSET_OUT_OF_RANGE applies auto_offset_reset. Other errors are raised from poll().
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import structlog

from broker.log.batch import CompressionType, RecordBatch, batch_size_at, iter_records
from broker.log.errors import RecordBatchError
from client.accumulator import METADATA_ERRORS
from client.cluster import (
    MAX_BLOCK_MS_DEFAULT,
    REQUEST_TIMEOUT_MS_DEFAULT,
    RETRY_BACKOFF_MAX_MS_DEFAULT,
    RETRY_BACKOFF_MS_DEFAULT,
    Cluster,
    TopicPartition,
    backoff_ms,
    raise_for_request_error,
)
from client.errors import (
    BrokerUnavailableError,
    ClusterUnavailableError,
    ConfigurationError,
    KafkaError,
    MalformedResponseError,
    OffsetOutOfRangeError,
)
from kraft.protocol.errors import ErrorCode
from kraft.protocol.native import (
    CONSUMER_REPLICA_ID,
    EARLIEST_TIMESTAMP,
    KIND_FETCH,
    KIND_LIST_OFFSETS,
    LATEST_TIMESTAMP,
    MAX_FETCH_BYTES,
    MAX_FETCH_WAIT_MS,
)

log = structlog.get_logger(__name__)

FETCH_MAX_WAIT_MS_DEFAULT = 500  # Kafka's fetch.max.wait.ms
FETCH_MIN_BYTES_DEFAULT = 1  # Kafka's fetch.min.bytes: answer as soon as anything is there
# Kafka's fetch.max.bytes is 50 MiB; the native protocol caps an answer at MAX_FETCH_BYTES.
FETCH_MAX_BYTES_DEFAULT = MAX_FETCH_BYTES
MAX_PARTITION_FETCH_BYTES_DEFAULT = 1024 * 1024  # Kafka's max.partition.fetch.bytes
MAX_POLL_RECORDS_DEFAULT = 500  # Kafka's max.poll.records
# Kafka's default.api.timeout.ms: how long seek_to_*, position() and offset lookups try.
DEFAULT_API_TIMEOUT_MS = MAX_BLOCK_MS_DEFAULT
NO_VALUE = -1  # the protocol's "none" for epochs


class OffsetReset(enum.Enum):
    EARLIEST = "earliest"
    LATEST = "latest"
    NONE = "none"


class ConsumerRecord(NamedTuple):
    """One record as poll() returns it (a named tuple: cheap to build by the million)."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # ms since the epoch
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


@dataclass(slots=True)
class _PartitionState:
    position: int | None = None  # the next offset to fetch; None: to be reset
    reset_to: OffsetReset | None = None  # how to set a missing position (None: the default)
    high_watermark: int | None = None
    buffered: deque[ConsumerRecord] = field(default_factory=deque)
    failures: int = 0  # fetch errors in a row, for the backoff
    retry_at_ms: float = 0.0


def decode_fetched_records(
    topic: str, partition: int, data: bytes, fetch_offset: int
) -> tuple[list[ConsumerRecord], int]:
    """The records at or after fetch_offset in a fetch answer's bytes, and the offset to
    fetch next (past the last whole batch; fetch_offset when there is none).

    A trailing partial batch is left for the next fetch. Raises KafkaError(CORRUPT_MESSAGE)
    for a batch that fails its checks, and KafkaError(MESSAGE_TOO_LARGE) when the answer
    holds no whole batch at all (the first one is larger than the fetch allowed).
    """
    view = memoryview(data)
    records: list[ConsumerRecord] = []
    next_offset = fetch_offset
    position = 0
    while position < len(view):
        try:
            size_bytes = batch_size_at(view, position, require_whole=False)
        except RecordBatchError:
            break  # not even a whole length prefix: a partial batch
        if position + size_bytes > len(view):
            break
        batch = RecordBatch(view[position : position + size_bytes])
        position += size_bytes
        try:
            # iter_records walks a compressed batch's records itself: decompress once
            batch.validate(check_records=batch.compression == CompressionType.NONE, compacted=True)
            if batch.next_offset <= fetch_offset:
                continue  # wholly below the fetch offset
            if not batch.is_control:
                records += [
                    ConsumerRecord(
                        topic, partition, r.offset, r.timestamp_ms, r.key, r.value, r.headers
                    )
                    for r in iter_records(batch)
                    if r.offset >= fetch_offset
                ]
        except RecordBatchError as error:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"{topic}-{partition}: {error}") from error
        next_offset = max(next_offset, batch.next_offset)
    if position == 0 and view:
        raise KafkaError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"{topic}-{partition} at offset {fetch_offset}: the fetch answer holds "
            f"{len(view)} bytes and no whole batch; raise max_partition_fetch_bytes",
        )
    return records, next_offset


def _int_field(entry: dict[str, Any], name: str, where: str) -> int:
    value = entry.get(name)
    if type(value) is not int:
        raise MalformedResponseError(f"{where}.{name} is {value!r}, not an int")
    return value


def _answer_entries(answer: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    raise_for_request_error(answer, kind)
    entries = answer.get("partitions")
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise MalformedResponseError(f"{kind} answer has partitions {entries!r}")
    for index, entry in enumerate(entries):
        if not isinstance(entry.get("topic"), str):
            raise MalformedResponseError(f"{kind} answer partitions[{index}] has no topic")
        _int_field(entry, "partition", f"{kind}.partitions[{index}]")
        _int_field(entry, "error_code", f"{kind}.partitions[{index}]")
    return entries


class Consumer:
    """Use as `async with Consumer(["127.0.0.1:9093"], auto_offset_reset="earliest") as c:`

        c.assign([("orders", 0), ("orders", 1)])
        records = await c.poll(timeout_ms=1000)

    Settings (Kafka's names in snake case): fetch_max_wait_ms, fetch_min_bytes,
    fetch_max_bytes, max_partition_fetch_bytes, max_poll_records, request_timeout_ms,
    retry_backoff_ms, retry_backoff_max_ms.
    """

    def __init__(
        self,
        bootstrap_servers: Sequence[str] | None = None,
        *,
        auto_offset_reset: str = OffsetReset.LATEST.value,
        fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS_DEFAULT,
        fetch_min_bytes: int = FETCH_MIN_BYTES_DEFAULT,
        fetch_max_bytes: int = FETCH_MAX_BYTES_DEFAULT,
        max_partition_fetch_bytes: int = MAX_PARTITION_FETCH_BYTES_DEFAULT,
        max_poll_records: int = MAX_POLL_RECORDS_DEFAULT,
        request_timeout_ms: int = REQUEST_TIMEOUT_MS_DEFAULT,
        retry_backoff_ms: int = RETRY_BACKOFF_MS_DEFAULT,
        retry_backoff_max_ms: int = RETRY_BACKOFF_MAX_MS_DEFAULT,
        rng: random.Random | None = None,
    ) -> None:
        try:
            self.auto_offset_reset = OffsetReset(auto_offset_reset)
        except ValueError:
            raise ConfigurationError(
                f"auto_offset_reset {auto_offset_reset!r} is not earliest, latest or none"
            ) from None
        _check_fetch_settings(
            fetch_max_wait_ms, fetch_max_bytes, max_partition_fetch_bytes, request_timeout_ms
        )
        if max_poll_records < 1:
            raise ConfigurationError(f"max_poll_records {max_poll_records} must be 1 or more")
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_min_bytes = fetch_min_bytes
        self.fetch_max_bytes = fetch_max_bytes
        self.max_partition_fetch_bytes = max_partition_fetch_bytes
        self.max_poll_records = max_poll_records
        self.request_timeout_ms = request_timeout_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.retry_backoff_max_ms = retry_backoff_max_ms
        self._rng = rng or random.Random()
        self._cluster = Cluster(
            bootstrap_servers,
            request_timeout_ms=request_timeout_ms,
            retry_backoff_ms=retry_backoff_ms,
            retry_backoff_max_ms=retry_backoff_max_ms,
            rng=self._rng,
        )
        self._states: dict[TopicPartition, _PartitionState] = {}
        # At most one fetch in flight per leader broker; its partitions with their offsets.
        self._fetches: dict[int, asyncio.Task[dict[str, Any] | Exception]] = {}
        self._fetch_offsets: dict[int, dict[TopicPartition, int]] = {}
        self._pending_error: Exception | None = None  # raised by the next poll

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def cluster(self) -> Cluster:
        return self._cluster

    # --- assignment and positions ------------------------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Consumes exactly these partitions from now on; positions of partitions kept stay."""
        wanted = list(dict.fromkeys((topic, int(partition)) for topic, partition in partitions))
        self._states = {tp: self._states.get(tp) or _PartitionState() for tp in wanted}
        self._cluster.add_topics(sorted({topic for topic, _ in wanted}))

    def assignment(self) -> list[TopicPartition]:
        return list(self._states)

    def _state(self, topic: str, partition: int) -> _PartitionState:
        state = self._states.get((topic, partition))
        if state is None:
            raise ConfigurationError(f"partition {topic}-{partition} is not assigned")
        return state

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """The next poll returns records from `offset` on (an out-of-range offset meets
        auto_offset_reset at the next fetch)."""
        if offset < 0:
            raise ConfigurationError(f"offset {offset} of {topic}-{partition} is negative")
        state = self._state(topic, partition)
        state.position = offset
        state.buffered.clear()
        state.failures, state.retry_at_ms = 0, 0.0

    async def seek_to_beginning(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Moves to the log start offset (list_offsets -2) of each, default all assigned."""
        await self._seek_to(partitions, OffsetReset.EARLIEST)

    async def seek_to_end(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Moves to the high watermark (list_offsets -1) of each, default all assigned."""
        await self._seek_to(partitions, OffsetReset.LATEST)

    async def _seek_to(self, partitions: Iterable[TopicPartition] | None, to: OffsetReset) -> None:
        chosen = list(self._states) if partitions is None else list(partitions)
        for topic, partition in chosen:
            self._state(topic, partition)  # assigned, or ConfigurationError
        timestamp = EARLIEST_TIMESTAMP if to is OffsetReset.EARLIEST else LATEST_TIMESTAMP
        offsets = await self.offsets_for(chosen, timestamp)
        for (topic, partition), offset in offsets.items():
            self.seek(topic, partition, offset)

    async def position(self, topic: str, partition: int) -> int:
        """The offset of the next record poll() returns for the partition (set by
        auto_offset_reset first if needed)."""
        state = self._state(topic, partition)
        if state.position is None:
            await self._reset_positions([(topic, partition)])
        assert state.position is not None, "a reset sets the position or raises"
        # state.position is where the next fetch starts; records fetched but not yet
        # returned come before it.
        return state.buffered[0].offset if state.buffered else state.position

    def high_watermark(self, topic: str, partition: int) -> int | None:
        """The partition's high watermark in the last fetch answer; None before one."""
        return self._state(topic, partition).high_watermark

    async def partitions_for(self, topic: str) -> list[int]:
        """The topic's partition numbers (waits for its metadata, at most max_block_ms)."""
        info = await self._cluster.wait_for_topic(topic)
        return [partition.partition for partition in info.partitions]

    async def beginning_offsets(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return await self.offsets_for(list(partitions), EARLIEST_TIMESTAMP)

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The high watermark of each partition, now (list_offsets -1)."""
        return await self.offsets_for(list(partitions), LATEST_TIMESTAMP)

    async def _reset_positions(self, partitions: list[TopicPartition]) -> None:
        by_policy: dict[OffsetReset, list[TopicPartition]] = {}
        for tp in partitions:
            policy = self._states[tp].reset_to or self.auto_offset_reset
            if policy is OffsetReset.NONE:
                raise OffsetOutOfRangeError(
                    *tp, NO_VALUE, "the partition has no position and auto_offset_reset is 'none'"
                )
            by_policy.setdefault(policy, []).append(tp)
        for policy, chosen in by_policy.items():
            await self._seek_to(chosen, policy)
            for tp in chosen:
                self._states[tp].reset_to = None

    # --- list_offsets ----------------------------------------------------------------------

    async def offsets_for(
        self,
        partitions: Sequence[TopicPartition],
        timestamp: int,
        timeout_ms: int = DEFAULT_API_TIMEOUT_MS,
    ) -> dict[TopicPartition, int]:
        """list_offsets for each partition at its leader (-2 earliest, -1 latest, else the
        first offset at or after a time), retrying retriable errors with backoff."""
        self._cluster.add_topics(sorted({topic for topic, _ in partitions}))
        found: dict[TopicPartition, int] = {}
        last_problem: Exception | None = None
        failures = 0
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                while len(found) < len(set(partitions)):
                    if failures:
                        delay = backoff_ms(
                            failures, self.retry_backoff_ms, self.retry_backoff_max_ms, self._rng
                        )
                        await asyncio.sleep(delay / 1000)
                    missing = [tp for tp in dict.fromkeys(partitions) if tp not in found]
                    problem = await self._list_offsets_round(missing, timestamp, found)
                    if problem is not None:
                        last_problem = problem
                        failures += 1
        except TimeoutError:
            if last_problem is not None:
                raise last_problem from None
            raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, "list_offsets took too long") from None
        return found

    async def _list_offsets_round(
        self, missing: list[TopicPartition], timestamp: int, found: dict[TopicPartition, int]
    ) -> Exception | None:
        """One list_offsets request per leader; fills `found`; returns a retriable problem
        (None when all answered). Raises non-retriable errors."""
        try:
            metadata = await self._cluster.maybe_refresh()
        except ClusterUnavailableError as error:
            return error
        by_leader: dict[int, list[TopicPartition]] = {}
        problem: Exception | None = None
        for topic, partition in missing:
            leader = metadata.leader(topic, partition)
            if leader is None:
                self._cluster.invalidate()
                problem = KafkaError(
                    ErrorCode.LEADER_NOT_AVAILABLE, f"no leader known for {topic}-{partition}"
                )
                continue
            by_leader.setdefault(leader.broker_id, []).append((topic, partition))
        for broker_id, chosen in by_leader.items():
            body = {
                "kind": KIND_LIST_OFFSETS,
                "partitions": [
                    {"topic": topic, "partition": partition, "timestamp": timestamp}
                    for topic, partition in chosen
                ],
            }
            try:
                answer = await self._cluster.request(broker_id, body, self.request_timeout_ms)
                entries = _answer_entries(answer, KIND_LIST_OFFSETS)
            except (BrokerUnavailableError, MalformedResponseError) as error:
                problem = error
                continue
            for entry in entries:
                tp = (entry["topic"], entry["partition"])
                code = entry["error_code"]
                if tp not in chosen:
                    continue
                if code == ErrorCode.NONE:
                    found[tp] = _int_field(entry, "offset", KIND_LIST_OFFSETS)
                    continue
                refused = KafkaError(code, entry.get("error_message"))
                if not refused.retriable:
                    raise refused
                if code in METADATA_ERRORS:
                    self._cluster.invalidate()
                problem = refused
        return problem

    # --- poll ------------------------------------------------------------------------------

    async def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> list[ConsumerRecord]:
        """Up to max_records (default max_poll_records) records of the assigned partitions,
        waiting at most timeout_ms for some; [] when none came. Raises what the fetches met
        that retrying cannot fix (KafkaError, OffsetOutOfRangeError with 'none')."""
        limit = max_records or self.max_poll_records
        records = self._take_buffered(limit)
        if records or not self._states:
            return records
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_ms / 1000):
                while True:
                    await self._prepare()
                    self._start_fetches()
                    await self._wait_for_fetches()
                    self._collect_fetches()
                    records = self._take_buffered(limit)
                    if records:
                        return records
        self._collect_fetches()  # a fetch may have finished just as the time ran out
        return self._take_buffered(limit)

    def _take_buffered(self, limit: int) -> list[ConsumerRecord]:
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        records: list[ConsumerRecord] = []
        for state in self._states.values():
            while state.buffered and len(records) < limit:
                records.append(state.buffered.popleft())
        return records

    async def _prepare(self) -> None:
        """Fresh metadata when it is stale, and a position for every partition."""
        try:
            await self._cluster.maybe_refresh()
        except ClusterUnavailableError as error:
            log.info("consumer.metadata_refresh_failed", error=str(error))
        without = [tp for tp, state in self._states.items() if state.position is None]
        if without:
            await self._reset_positions(without)

    def _start_fetches(self) -> None:
        now_ms = asyncio.get_running_loop().time() * 1000
        metadata = self._cluster.metadata
        fetching = {tp for offsets in self._fetch_offsets.values() for tp in offsets}
        plans: dict[int, list[dict[str, Any]]] = {}
        for tp, state in self._states.items():
            if state.position is None or state.buffered or tp in fetching:
                continue
            if now_ms < state.retry_at_ms:
                continue
            info = metadata.partition(*tp)
            leader = metadata.leader(*tp)
            if info is None or leader is None:
                self._cluster.invalidate()
                self._back_off(state, now_ms)
                continue
            if leader.broker_id in self._fetches:
                continue  # one fetch per broker at a time; the next one takes it
            plans.setdefault(leader.broker_id, []).append(
                {
                    "topic": tp[0],
                    "topic_id": None,
                    "partition": tp[1],
                    "fetch_offset": state.position,
                    "partition_max_bytes": self.max_partition_fetch_bytes,
                    "current_leader_epoch": info.leader_epoch,
                    "last_fetched_epoch": NO_VALUE,
                }
            )
        for broker_id, partitions in plans.items():
            self._fetch_offsets[broker_id] = {
                (entry["topic"], entry["partition"]): entry["fetch_offset"] for entry in partitions
            }
            self._fetches[broker_id] = asyncio.create_task(
                self._fetch(broker_id, partitions), name=f"fetch-{broker_id}"
            )

    async def _fetch(
        self, broker_id: int, partitions: list[dict[str, Any]]
    ) -> dict[str, Any] | Exception:
        body = {
            "kind": KIND_FETCH,
            "replica_id": CONSUMER_REPLICA_ID,
            "replica_epoch": NO_VALUE,
            "max_wait_ms": self.fetch_max_wait_ms,
            "min_bytes": self.fetch_min_bytes,
            "max_bytes": self.fetch_max_bytes,
            "partitions": partitions,
        }
        try:
            return await self._cluster.request(broker_id, body, self.request_timeout_ms)
        except BrokerUnavailableError as error:
            return error

    async def _wait_for_fetches(self) -> None:
        if self._fetches:
            await asyncio.wait(self._fetches.values(), return_when=asyncio.FIRST_COMPLETED)
            return
        # Nothing could be fetched (partitions backing off, leaders unknown): wait for the
        # earliest backoff to end.
        now_ms = asyncio.get_running_loop().time() * 1000
        waits = [state.retry_at_ms - now_ms for state in self._states.values()]
        delay_ms = min([wait for wait in waits if wait > 0], default=self.retry_backoff_ms)
        await asyncio.sleep(delay_ms / 1000)

    def _collect_fetches(self) -> None:
        for broker_id, task in list(self._fetches.items()):
            if not task.done():
                continue
            del self._fetches[broker_id]
            offsets = self._fetch_offsets.pop(broker_id)
            outcome = task.result()
            try:
                if isinstance(outcome, Exception):
                    raise outcome
                entries = _answer_entries(outcome, KIND_FETCH)
            except (BrokerUnavailableError, MalformedResponseError) as error:
                log.info("consumer.fetch_failed", broker_id=broker_id, error=str(error))
                now_ms = asyncio.get_running_loop().time() * 1000
                for tp in offsets:
                    if tp in self._states:
                        self._back_off(self._states[tp], now_ms)
                continue
            except KafkaError as error:
                self._pending_error = error
                continue
            for entry in entries:
                self._handle_partition(entry, offsets)

    def _handle_partition(self, entry: dict[str, Any], offsets: dict[TopicPartition, int]) -> None:
        tp = (entry["topic"], entry["partition"])
        state = self._states.get(tp)
        fetch_offset = offsets.get(tp)
        if state is None or fetch_offset is None or state.position != fetch_offset:
            return  # unassigned or moved (seek) since the fetch left: the answer is stale
        code = entry["error_code"]
        if code == ErrorCode.NONE:
            high_watermark = entry.get("high_watermark")
            if type(high_watermark) is int:
                state.high_watermark = high_watermark
            data = entry.get("records") or b""
            try:
                records, next_offset = decode_fetched_records(*tp, bytes(data), fetch_offset)
            except KafkaError as error:
                self._pending_error = error
                return
            state.buffered.extend(records)
            state.position = next_offset
            state.failures, state.retry_at_ms = 0, 0.0
            return
        now_ms = asyncio.get_running_loop().time() * 1000
        if code == ErrorCode.OFFSET_OUT_OF_RANGE:
            if self.auto_offset_reset is OffsetReset.NONE:
                self._pending_error = OffsetOutOfRangeError(
                    *tp, fetch_offset, entry.get("error_message")
                )
                return
            log.info("consumer.offset_reset", topic=tp[0], partition=tp[1], offset=fetch_offset)
            state.position = None  # the next poll resets it by auto_offset_reset
            return
        refused = KafkaError(code, entry.get("error_message"))
        if not refused.retriable:
            self._pending_error = refused
            return
        if code in METADATA_ERRORS:
            self._cluster.invalidate()
        self._back_off(state, now_ms)

    def _back_off(self, state: _PartitionState, now_ms: float) -> None:
        state.failures += 1
        delay = backoff_ms(
            state.failures, self.retry_backoff_ms, self.retry_backoff_max_ms, self._rng
        )
        state.retry_at_ms = now_ms + delay

    async def close(self) -> None:
        """Cancels fetches in flight and closes the connections."""
        tasks = list(self._fetches.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._fetches.clear()
        self._fetch_offsets.clear()
        await self._cluster.close()


def _check_fetch_settings(
    fetch_max_wait_ms: int,
    fetch_max_bytes: int,
    max_partition_fetch_bytes: int,
    request_timeout_ms: int,
) -> None:
    if not 0 <= fetch_max_wait_ms <= MAX_FETCH_WAIT_MS:
        raise ConfigurationError(
            f"fetch_max_wait_ms {fetch_max_wait_ms} is not in 0..{MAX_FETCH_WAIT_MS} "
            "(the broker's limit)"
        )
    if request_timeout_ms <= fetch_max_wait_ms:
        raise ConfigurationError(
            f"request_timeout_ms {request_timeout_ms} must be above fetch_max_wait_ms "
            f"{fetch_max_wait_ms}: a parked fetch would time out"
        )
    if not 0 < fetch_max_bytes <= MAX_FETCH_BYTES:
        raise ConfigurationError(
            f"fetch_max_bytes {fetch_max_bytes} is not in 1..{MAX_FETCH_BYTES} "
            "(an answer must fit an rpc frame)"
        )
    if not 0 < max_partition_fetch_bytes <= fetch_max_bytes:
        raise ConfigurationError(
            f"max_partition_fetch_bytes {max_partition_fetch_bytes} is not in "
            f"1..fetch_max_bytes ({fetch_max_bytes})"
        )
