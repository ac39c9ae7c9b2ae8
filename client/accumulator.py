"""The producer's pure decisions: where a record goes, how records gather into batches, when a
batch is ready to send, and what an answer for a batch means (done, retry, split, fail).

Nothing here does I/O or reads a clock: times are milliseconds passed in by the caller
(client.producer), so every decision can be tested step by step.

Batching follows Kafka's RecordAccumulator: per partition a queue of batches; a record joins
the last batch while that one has room for it within batch_size_bytes (a record larger than
that gets a batch of its own); a partition's first batch is ready once it is full, once it
is linger_ms old, while a flush or close is in progress, or when it is a retry whose backoff
has passed. At most one batch per partition is in flight (max.in.flight 1 per partition), so
a retried batch goes back to the head of its queue and records keep their order.

Sizes are upper bounds: each record is counted with the largest varints its fields may need
(RECORD_OVERHEAD_MAX_BYTES), so a batch never exceeds batch_size_bytes on the wire.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from broker.log.batch import BATCH_HEADER_SIZE_BYTES, Record, build_batch
from kraft.protocol.errors import ErrorCode
from kraft.protocol.partitioner import partition_for_key

TopicPartition = tuple[str, int]

# The most bytes a record's framing can take besides its key, value and headers: length
# varint 5, attributes 1, timestamp delta varlong 10, offset delta 5, key and value lengths
# 5 each, header count 5.
RECORD_OVERHEAD_MAX_BYTES = 36
# Per header: key length and value length varints, 5 bytes each.
HEADER_OVERHEAD_MAX_BYTES = 10

# Errors after which the client's idea of the partition leader is probably wrong: Kafka's
# InvalidMetadataException family. The sender asks for new metadata before retrying.
METADATA_ERRORS = frozenset(
    {
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        ErrorCode.KAFKA_STORAGE_ERROR,
    }
)


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    """Where an acknowledged record landed. offset is -1 with acks=0 (nobody told us)."""

    topic: str
    partition: int
    offset: int
    # ms since the epoch: the record's CreateTime, or on a topic whose
    # message.timestamp.type is LogAppendTime the time the leader appended it
    timestamp: int


def record_size_bytes(record: Record) -> int:
    """An upper bound of the record's size inside a batch (see RECORD_OVERHEAD_MAX_BYTES)."""
    size = RECORD_OVERHEAD_MAX_BYTES + len(record.key or b"") + len(record.value or b"")
    for header_key, header_value in record.headers:
        size += HEADER_OVERHEAD_MAX_BYTES + len(header_key.encode()) + len(header_value or b"")
    return size


# --- Partition choice ---------------------------------------------------------------------


class StickyPartitioner:
    """Kafka's default partitioner for records without a key (KIP-480, sticky): every
    keyless record of a topic goes to the same partition until that partition's open batch
    has no room for it (full, or already sent), then to the next partition in round-robin
    order. Batches stay large under low load and the load spreads evenly over time. The
    first partition of each topic is drawn from the injected random."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._current: dict[str, int] = {}

    def partition(self, topic: str, partition_count: int, has_room: Callable[[int], bool]) -> int:
        assert partition_count > 0, f"topic {topic} has {partition_count} partitions"
        current = self._current.get(topic)
        if current is not None and current < partition_count and has_room(current):
            return current
        if current is None:
            chosen = self._rng.randrange(partition_count)
        else:
            chosen = (current + 1) % partition_count
        self._current[topic] = chosen
        return chosen


def choose_partition(
    topic: str,
    key: bytes | None,
    partition_count: int,
    sticky: StickyPartitioner,
    has_room: Callable[[int], bool],
) -> int:
    """Keyed: Kafka's murmur2 partition, so a key lands where a Java producer puts it.
    Keyless: the sticky partition."""
    if key is not None:
        return partition_for_key(key, partition_count)
    return sticky.partition(topic, partition_count, has_room)


# --- Batches ------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class ProducerBatch:
    """Records for one partition that travel in one record batch, and their futures."""

    topic: str
    partition: int
    created_ms: float
    records: list[Record] = field(default_factory=list)
    futures: list[asyncio.Future[RecordMetadata]] = field(default_factory=list)
    size_bytes: int = BATCH_HEADER_SIZE_BYTES
    attempts: int = 0  # sends that ended without an answer we could act on as final
    retry_at_ms: float = 0.0
    last_error: str | None = None

    @property
    def topic_partition(self) -> TopicPartition:
        return (self.topic, self.partition)

    def has_room(self, size_bytes: int, batch_size_bytes: int) -> bool:
        if self.attempts:
            return False  # sent once already: its bytes are fixed, new records go behind it
        return not self.records or self.size_bytes + size_bytes <= batch_size_bytes

    def add(self, record: Record, size_bytes: int, future: asyncio.Future[RecordMetadata]) -> None:
        self.records.append(record)
        self.futures.append(future)
        self.size_bytes += size_bytes

    def encode(self) -> bytes:
        """The record batch as the broker takes it: offsets from 0, no producer id."""
        return build_batch(self.records)

    def split(self) -> list[ProducerBatch]:
        """One batch per record, keeping creation time, attempts and order (Kafka splits a
        batch the broker found too large, so that only the oversized record fails)."""
        return [
            ProducerBatch(
                self.topic,
                self.partition,
                self.created_ms,
                [record],
                [future],
                BATCH_HEADER_SIZE_BYTES + record_size_bytes(record),
                self.attempts,
                self.retry_at_ms,
                self.last_error,
            )
            for record, future in zip(self.records, self.futures, strict=True)
        ]


class RecordAccumulator:
    """Per-partition queues of batches, and which partitions have a batch in flight."""

    def __init__(self, batch_size_bytes: int, linger_ms: int) -> None:
        assert batch_size_bytes > BATCH_HEADER_SIZE_BYTES, "a batch must have room for a record"
        self.batch_size_bytes = batch_size_bytes
        self.linger_ms = linger_ms
        self._queues: dict[TopicPartition, deque[ProducerBatch]] = {}
        self._in_flight: set[TopicPartition] = set()
        self.buffered_bytes = 0  # every batch not yet completed, in flight included
        self.flushes_in_progress = 0
        self.closing = False

    def __iter__(self) -> Iterator[ProducerBatch]:
        """The queued batches (not those in flight)."""
        for queue in self._queues.values():
            yield from queue

    @property
    def is_empty(self) -> bool:
        """No batch queued and none in flight."""
        return not self._in_flight and not any(self._queues.values())

    def in_flight(self, topic_partition: TopicPartition) -> bool:
        return topic_partition in self._in_flight

    def has_room(self, topic_partition: TopicPartition, size_bytes: int) -> bool:
        """Whether the partition has an open (last, queued) batch the record fits in."""
        queue = self._queues.get(topic_partition)
        if not queue:
            return False
        return queue[-1].has_room(size_bytes, self.batch_size_bytes)

    def append(
        self,
        topic_partition: TopicPartition,
        record: Record,
        future: asyncio.Future[RecordMetadata],
        now_ms: float,
    ) -> bool:
        """Adds the record to the partition's last batch, or to a new one when it does not
        fit; returns True when a new batch was started (the previous one is then full)."""
        size_bytes = record_size_bytes(record)
        queue = self._queues.setdefault(topic_partition, deque())
        started = not queue or not queue[-1].has_room(size_bytes, self.batch_size_bytes)
        if started:
            queue.append(ProducerBatch(*topic_partition, now_ms))
        queue[-1].add(record, size_bytes, future)
        self.buffered_bytes += size_bytes
        return started

    def _is_ready(self, queue: deque[ProducerBatch], now_ms: float) -> bool:
        head = queue[0]
        if head.attempts:
            return now_ms >= head.retry_at_ms  # a retry goes once its backoff has passed
        return (
            len(queue) > 1  # a later batch exists: this one is full
            or head.size_bytes >= self.batch_size_bytes
            or now_ms - head.created_ms >= self.linger_ms
            or self.flushes_in_progress > 0
            or self.closing
        )

    def drain(
        self,
        now_ms: float,
        leader_of: Callable[[TopicPartition], int | None],
        max_request_bytes: int,
        can_send_to: Callable[[int], bool] = lambda broker_id: True,
    ) -> tuple[dict[int, list[ProducerBatch]], set[TopicPartition]]:
        """Takes the ready head batch of every partition with nothing in flight, grouped by
        leader broker, at most max_request_bytes per broker (a single larger batch still
        goes alone: the broker answers MESSAGE_TOO_LARGE). Returns them and the ready
        partitions whose leader is unknown (the caller refreshes metadata)."""
        requests: dict[int, list[ProducerBatch]] = {}
        request_bytes: dict[int, int] = {}
        leaderless: set[TopicPartition] = set()
        for topic_partition, queue in self._queues.items():
            if not queue or topic_partition in self._in_flight or not self._is_ready(queue, now_ms):
                continue
            leader = leader_of(topic_partition)
            if leader is None:
                leaderless.add(topic_partition)
                continue
            if not can_send_to(leader):
                continue
            size_bytes = queue[0].size_bytes
            taken = request_bytes.get(leader, 0)
            if taken and taken + size_bytes > max_request_bytes:
                continue  # the next request to that broker takes it
            requests.setdefault(leader, []).append(queue.popleft())
            request_bytes[leader] = taken + size_bytes
            self._in_flight.add(topic_partition)
        return requests, leaderless

    def next_ready_delay_ms(
        self, now_ms: float, leader_of: Callable[[TopicPartition], int | None]
    ) -> float | None:
        """How long until some partition with a known leader and nothing in flight has a
        ready batch (0: now); None when nothing is waiting for time to pass."""
        delays = []
        for topic_partition, queue in self._queues.items():
            if (
                not queue
                or topic_partition in self._in_flight
                or leader_of(topic_partition) is None
            ):
                continue
            if self._is_ready(queue, now_ms):
                return 0.0
            head = queue[0]
            ready_at = head.retry_at_ms if head.attempts else head.created_ms + self.linger_ms
            delays.append(ready_at - now_ms)
        return max(0.0, min(delays)) if delays else None

    def complete(self, batch: ProducerBatch) -> None:
        """The batch is done (acknowledged or failed): its partition may send again."""
        self._in_flight.discard(batch.topic_partition)
        self.buffered_bytes -= batch.size_bytes - BATCH_HEADER_SIZE_BYTES
        assert self.buffered_bytes >= 0, f"buffered bytes went negative: {self.buffered_bytes}"

    def reenqueue(self, batches: list[ProducerBatch], retry_at_ms: float) -> None:
        """Puts batches of one partition (in order) back at the head of its queue, to be sent
        again at retry_at_ms, before anything queued after them."""
        assert batches, "nothing to re-enqueue"
        topic_partition = batches[0].topic_partition
        queue = self._queues.setdefault(topic_partition, deque())
        for batch in reversed(batches):
            assert batch.topic_partition == topic_partition, "one partition at a time"
            batch.attempts += 1
            batch.retry_at_ms = retry_at_ms
            queue.appendleft(batch)
        self._in_flight.discard(topic_partition)

    def expire(self, now_ms: float, delivery_timeout_ms: int) -> list[ProducerBatch]:
        """Removes and returns the queued batches older than delivery_timeout_ms (their
        bytes are released); batches in flight wait for their answer."""
        expired = []
        for queue in self._queues.values():
            keep = [batch for batch in queue if now_ms - batch.created_ms < delivery_timeout_ms]
            if len(keep) == len(queue):
                continue
            expired += [batch for batch in queue if batch not in keep]
            queue.clear()
            queue.extend(keep)
        for batch in expired:
            self.buffered_bytes -= batch.size_bytes - BATCH_HEADER_SIZE_BYTES
        return expired

    def abort_all(self) -> list[ProducerBatch]:
        """Removes and returns every queued batch (close gave up on them)."""
        batches = [batch for queue in self._queues.values() for batch in queue]
        self._queues.clear()
        for batch in batches:
            self.buffered_bytes -= batch.size_bytes - BATCH_HEADER_SIZE_BYTES
        return batches


# --- What an answer means -----------------------------------------------------------------


class Outcome(enum.Enum):
    DONE = "done"  # acknowledged: complete the futures with offsets
    RETRY = "retry"  # send the batch again after a backoff
    SPLIT = "split"  # too large as a whole: send its records one per batch
    FAIL = "fail"  # complete the futures with the error


def produce_outcome(error_code: int, record_count: int) -> Outcome:
    """Kafka's producer rules: retriable errors are retried (REQUEST_TIMED_OUT included, so
    a write whose outcome is unknown may land twice: at-least-once); MESSAGE_TOO_LARGE for a
    batch of several records splits it, for a single record fails that record; any other
    error fails the batch. An unknown code is fatal, as in Kafka."""
    if error_code == ErrorCode.NONE:
        return Outcome.DONE
    if error_code == ErrorCode.MESSAGE_TOO_LARGE:
        return Outcome.SPLIT if record_count > 1 else Outcome.FAIL
    try:
        retriable = ErrorCode(error_code).is_retriable
    except ValueError:
        return Outcome.FAIL
    return Outcome.RETRY if retriable else Outcome.FAIL


def refreshes_metadata(error_code: int) -> bool:
    """Whether the error says our leader for the partition is probably out of date."""
    return error_code in METADATA_ERRORS
