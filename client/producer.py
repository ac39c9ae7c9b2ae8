"""An asyncio producer for the native data protocol (docs/decisions/0005), with the
behaviour of Kafka's producer:

- `send()` picks the partition (explicit; keyed: Kafka's murmur2; keyless: sticky, see
  client.accumulator.StickyPartitioner), adds the record to that partition's open batch and
  returns a future of its RecordMetadata. It waits only for the topic's metadata (once) and
  for buffer space (backpressure), each at most max_block_ms.
- One sender task drains ready batches (batch_size_bytes or linger_ms, see
  client.accumulator) into one `produce` request per leader broker carrying many partitions.
- At most one batch per partition is in flight, so records of a partition are written in
  the order they were sent, across retries too.
- Retriable errors (ErrorCode.is_retriable) are retried after an exponential backoff from
  retry_backoff_ms, and errors that say the leader moved refresh the metadata first. A
  REQUEST_TIMED_OUT answer or a request without an answer is retried too, although the
  broker may have written the batch: delivery is at-least-once and such a record may appear
  twice in the log (there is no idempotent producer yet).
- delivery_timeout_ms bounds a record's whole life (lingering, retries, backoffs): past it,
  its future fails with DeliveryTimeoutError, carrying the last error.
- MESSAGE_TOO_LARGE for a batch of several records splits it into single-record batches;
  for a single record it fails that record's future, without retry. A record that cannot
  fit max_request_size_bytes fails at once with the same code.
- acks=0 still reads the broker's answer (the leader answers at once), but offsets in
  RecordMetadata are -1, as with Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from broker.log.batch import BATCH_HEADER_SIZE_BYTES, Record
from client.accumulator import (
    Outcome,
    ProducerBatch,
    RecordAccumulator,
    RecordMetadata,
    StickyPartitioner,
    TopicPartition,
    choose_partition,
    produce_outcome,
    record_size_bytes,
    refreshes_metadata,
)
from client.cluster import (
    MAX_BLOCK_MS_DEFAULT,
    REQUEST_TIMEOUT_MS_DEFAULT,
    RETRY_BACKOFF_MAX_MS_DEFAULT,
    RETRY_BACKOFF_MS_DEFAULT,
    Cluster,
    backoff_ms,
    raise_for_request_error,
)
from client.errors import (
    BrokerUnavailableError,
    ClientError,
    ConfigurationError,
    DeliveryTimeoutError,
    KafkaError,
    MalformedResponseError,
    ProducerClosedError,
)
from kraft.protocol.errors import ErrorCode, error_name
from kraft.protocol.native import KIND_PRODUCE, MAX_PARTITIONS_PER_REQUEST, MAX_PRODUCE_TIMEOUT_MS

__all__ = ["Producer", "ProducerConfig", "RecordMetadata", "parse_acks"]

log = structlog.get_logger(__name__)

BATCH_SIZE_BYTES_DEFAULT = 16 * 1024  # Kafka's batch.size
LINGER_MS_DEFAULT = 5  # Kafka's linger.ms (since 3.x)
DELIVERY_TIMEOUT_MS_DEFAULT = 120_000  # Kafka's delivery.timeout.ms
MAX_REQUEST_SIZE_BYTES_DEFAULT = 1024 * 1024  # Kafka's max.request.size
BUFFER_MEMORY_BYTES_DEFAULT = 32 * 1024 * 1024  # Kafka's buffer.memory
# Kafka's max.in.flight.requests.per.connection; per partition it is always 1 here.
MAX_IN_FLIGHT_REQUESTS_PER_BROKER = 5
# The broker answers a produce within its timeout_ms (REQUEST_TIMED_OUT at worst); we wait a
# little longer so that its answer, not our own timeout, tells us what happened.
PRODUCE_ANSWER_SLACK_MS = 1_000
CLOSE_TIMEOUT_MS_DEFAULT = 30_000
# The set of unacknowledged record futures is pruned of completed ones when it reaches this
# size (then twice what remains).
INCOMPLETE_PRUNE_MIN = 4096
ACKS_ALL = -1
VALID_ACKS = (0, 1, ACKS_ALL)


def parse_acks(value: int | str) -> int:
    """0, 1, -1 or "all" (Kafka's spelling) -> 0, 1 or -1; ConfigurationError otherwise."""
    text = str(value).strip().lower()
    if text == "all":
        return ACKS_ALL
    if text in ("0", "1", "-1"):
        return int(text)
    raise ConfigurationError(f"acks {value!r} is not one of 0, 1, all (-1)")


@dataclass(frozen=True, slots=True)
class ProducerConfig:
    """Producer settings, Kafka's names in snake case with the unit in the name."""

    acks: int = ACKS_ALL
    batch_size_bytes: int = BATCH_SIZE_BYTES_DEFAULT
    linger_ms: int = LINGER_MS_DEFAULT
    request_timeout_ms: int = REQUEST_TIMEOUT_MS_DEFAULT
    retry_backoff_ms: int = RETRY_BACKOFF_MS_DEFAULT
    retry_backoff_max_ms: int = RETRY_BACKOFF_MAX_MS_DEFAULT
    delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS_DEFAULT
    max_request_size_bytes: int = MAX_REQUEST_SIZE_BYTES_DEFAULT
    buffer_memory_bytes: int = BUFFER_MEMORY_BYTES_DEFAULT
    max_block_ms: int = MAX_BLOCK_MS_DEFAULT

    def validate(self) -> None:
        """Checks each setting and how they relate; ConfigurationError names the rule."""
        if self.acks not in VALID_ACKS:
            raise ConfigurationError(f"acks {self.acks} is not one of 0, 1, -1 (all)")
        if self.batch_size_bytes <= BATCH_HEADER_SIZE_BYTES:
            raise ConfigurationError(
                f"batch_size_bytes {self.batch_size_bytes} leaves no room for a record after "
                f"the {BATCH_HEADER_SIZE_BYTES}-byte batch header"
            )
        for name in ("linger_ms", "retry_backoff_ms"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} {getattr(self, name)} is negative")
        if not 0 < self.request_timeout_ms <= MAX_PRODUCE_TIMEOUT_MS:
            raise ConfigurationError(
                f"request_timeout_ms {self.request_timeout_ms} is not in "
                f"1..{MAX_PRODUCE_TIMEOUT_MS} (the broker's limit)"
            )
        if self.retry_backoff_max_ms < self.retry_backoff_ms:
            raise ConfigurationError(
                f"retry_backoff_max_ms {self.retry_backoff_max_ms} is below "
                f"retry_backoff_ms {self.retry_backoff_ms}"
            )
        # Kafka's rule: a record must be able to linger and then wait for one answer.
        if self.delivery_timeout_ms < self.linger_ms + self.request_timeout_ms:
            raise ConfigurationError(
                f"delivery_timeout_ms {self.delivery_timeout_ms} is below linger_ms "
                f"{self.linger_ms} + request_timeout_ms {self.request_timeout_ms}"
            )
        if self.max_request_size_bytes > self.buffer_memory_bytes:
            raise ConfigurationError(
                f"max_request_size_bytes {self.max_request_size_bytes} is above "
                f"buffer_memory_bytes {self.buffer_memory_bytes}: such a record could never "
                "be buffered"
            )
        if self.max_block_ms <= 0:
            raise ConfigurationError(f"max_block_ms {self.max_block_ms} must be positive")


class Producer:
    """Use as `async with Producer(["127.0.0.1:9093"]) as producer:` (or call `close()`):

        future = await producer.send("orders", b"value", key=b"customer-1")
        metadata = await future            # RecordMetadata(topic, partition, offset, ...)
        await producer.flush()             # every record sent so far is acknowledged

    `bootstrap_servers` default: $KRAFT_BOOTSTRAP_SERVERS, else the local cluster. Settings
    are ProducerConfig's fields as keyword arguments; `acks` also takes "all". `rng` seeds
    the sticky partitioner and the backoff jitter (tests pass a seeded one).
    """

    def __init__(
        self,
        bootstrap_servers: Sequence[str] | None = None,
        *,
        acks: int | str = ACKS_ALL,
        rng: random.Random | None = None,
        **settings: int,
    ) -> None:
        self.config = ProducerConfig(acks=parse_acks(acks), **settings)
        self.config.validate()
        self._rng = rng or random.Random()
        self._cluster = Cluster(
            bootstrap_servers,
            request_timeout_ms=self.config.request_timeout_ms,
            retry_backoff_ms=self.config.retry_backoff_ms,
            retry_backoff_max_ms=self.config.retry_backoff_max_ms,
            rng=self._rng,
        )
        self._accumulator = RecordAccumulator(self.config.batch_size_bytes, self.config.linger_ms)
        self._partitioner = StickyPartitioner(self._rng)
        self._wakeup = asyncio.Event()  # the sender has something new to look at
        self._space_freed = asyncio.Event()  # a batch completed: send() may have room now
        self._incomplete: set[asyncio.Future[RecordMetadata]] = set()
        self._prune_at = INCOMPLETE_PRUNE_MIN
        self._in_flight_per_broker: dict[int, int] = {}
        self._sender: asyncio.Task[None] | None = None
        self._refresh: asyncio.Task[object] | None = None
        self._closing = False

    async def __aenter__(self) -> Producer:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        """Starts the sender task (send() does it too when needed)."""
        if self._sender is None:
            self._sender = asyncio.create_task(self._run_sender(), name="producer-sender")

    @property
    def cluster(self) -> Cluster:
        return self._cluster

    # --- send ------------------------------------------------------------------------------

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] = (),
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queues a record; returns the future of its RecordMetadata. Raises at once (not
        through the future) ProducerClosedError, KafkaError (unknown topic or partition,
        MESSAGE_TOO_LARGE over max_request_size_bytes, no buffer space within max_block_ms)
        or ClusterUnavailableError."""
        if self._closing:
            raise ProducerClosedError("send() on a closed producer")
        self.start()
        record = Record(
            key,
            value,
            tuple(headers),
            int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
        )
        size_bytes = record_size_bytes(record)
        if size_bytes + BATCH_HEADER_SIZE_BYTES > self.config.max_request_size_bytes:
            raise KafkaError(
                ErrorCode.MESSAGE_TOO_LARGE,
                f"record of about {size_bytes} bytes is larger than "
                f"max_request_size_bytes={self.config.max_request_size_bytes}",
            )
        partition = await self._partition_for(topic, key, partition, size_bytes)
        await self._wait_for_space(size_bytes)
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        self._track(future)
        self._accumulator.append((topic, partition), record, future, self._now_ms())
        self._wakeup.set()
        return future

    def _track(self, future: asyncio.Future[RecordMetadata]) -> None:
        """Keeps the record's future for flush() and close(). Completed futures are pruned
        in bulk when the set has doubled, not by a done-callback per record: on the hot
        path of send() a callback per record costs more than the rest of the bookkeeping."""
        self._incomplete.add(future)
        if len(self._incomplete) >= self._prune_at:
            self._incomplete = {f for f in self._incomplete if not f.done()}
            self._prune_at = max(INCOMPLETE_PRUNE_MIN, 2 * len(self._incomplete))

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] = (),
        timestamp_ms: int | None = None,
    ) -> RecordMetadata:
        """send() and wait for the acknowledgement; raises the record's error."""
        future = await self.send(topic, value, key, partition, headers, timestamp_ms)
        return await future

    async def _partition_for(
        self, topic: str, key: bytes | None, partition: int | None, size_bytes: int
    ) -> int:
        info = self._cluster.metadata.topics.get(topic)
        if info is None or not info.partitions:
            info = await self._cluster.wait_for_topic(topic, self.config.max_block_ms)
        count = len(info.partitions)
        if partition is not None:
            if not 0 <= partition < count:
                raise KafkaError(
                    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                    f"partition {partition} of topic {topic!r} does not exist "
                    f"(it has partitions 0..{count - 1})",
                )
            return partition
        return choose_partition(
            topic,
            key,
            count,
            self._partitioner,
            lambda candidate: self._accumulator.has_room((topic, candidate), size_bytes),
        )

    async def _wait_for_space(self, size_bytes: int) -> None:
        """Backpressure: waits (at most max_block_ms) until the buffered records leave room."""
        limit = self.config.buffer_memory_bytes
        if self._accumulator.buffered_bytes + size_bytes <= limit:
            return  # the common case, without the cost of a timeout scope
        try:
            async with asyncio.timeout(self.config.max_block_ms / 1000):
                while self._accumulator.buffered_bytes + size_bytes > limit:
                    self._space_freed.clear()
                    await self._space_freed.wait()
                    if self._closing:
                        raise ProducerClosedError("the producer closed while send() waited")
        except TimeoutError:
            raise KafkaError(
                ErrorCode.REQUEST_TIMED_OUT,
                f"no room in buffer_memory_bytes={limit} within max_block_ms="
                f"{self.config.max_block_ms}: the cluster takes records slower than they come",
            ) from None

    # --- flush and close --------------------------------------------------------------------

    async def flush(self, timeout_ms: int | None = None) -> None:
        """Sends every buffered record now (ignoring linger_ms) and waits until each sent so
        far is acknowledged or failed (errors stay on the futures). TimeoutError after
        timeout_ms."""
        pending = {future for future in self._incomplete if not future.done()}
        if not pending:
            return
        self._accumulator.flushes_in_progress += 1
        self._wakeup.set()
        try:
            async with asyncio.timeout(None if timeout_ms is None else timeout_ms / 1000):
                await asyncio.wait(pending)
        finally:
            self._accumulator.flushes_in_progress -= 1

    async def close(self, timeout_ms: int = CLOSE_TIMEOUT_MS_DEFAULT) -> None:
        """Sends what is buffered and waits (at most timeout_ms) for the answers; records
        still unacknowledged then fail with ProducerClosedError. Closes the connections."""
        self._closing = True
        self._accumulator.closing = True
        self._wakeup.set()
        self._space_freed.set()
        if self._sender is not None:
            try:
                async with asyncio.timeout(timeout_ms / 1000):
                    await asyncio.shield(self._sender)
            except TimeoutError:
                log.warning("producer.close_timed_out", timeout_ms=timeout_ms)
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)
        error = ProducerClosedError("the producer closed before the record was acknowledged")
        for batch in self._accumulator.abort_all():
            _fail(batch, error)
        for future in list(self._incomplete):
            if not future.done():
                future.set_exception(error)
        await self._cluster.close()

    # --- the sender -------------------------------------------------------------------------

    def _now_ms(self) -> float:
        return asyncio.get_running_loop().time() * 1000

    def _leader_of(self, topic_partition: TopicPartition) -> int | None:
        broker = self._cluster.metadata.leader(*topic_partition)
        return None if broker is None else broker.broker_id

    def _can_send_to(self, broker_id: int) -> bool:
        return self._in_flight_per_broker.get(broker_id, 0) < MAX_IN_FLIGHT_REQUESTS_PER_BROKER

    async def _run_sender(self) -> None:
        """Drains ready batches into requests until closed and nothing is left."""
        async with asyncio.TaskGroup() as requests:
            while not (self._closing and self._accumulator.is_empty):
                self._wakeup.clear()  # before looking, so no wakeup in between is lost
                now_ms = self._now_ms()
                for batch in self._accumulator.expire(now_ms, self.config.delivery_timeout_ms):
                    self._fail_expired(batch)
                drained, leaderless = self._accumulator.drain(
                    now_ms,
                    self._leader_of,
                    self.config.max_request_size_bytes,
                    self._can_send_to,
                )
                # A failed connection or a leader error marked the metadata stale; batches
                # for partitions without a leader need it too.
                if leaderless or self._cluster.is_stale:
                    self._maybe_start_refresh()
                for broker_id, batches in drained.items():
                    for chunk_start in range(0, len(batches), MAX_PARTITIONS_PER_REQUEST):
                        chunk = batches[chunk_start : chunk_start + MAX_PARTITIONS_PER_REQUEST]
                        self._in_flight_per_broker[broker_id] = (
                            self._in_flight_per_broker.get(broker_id, 0) + 1
                        )
                        requests.create_task(self._send_request(broker_id, chunk))
                delay_ms = self._accumulator.next_ready_delay_ms(now_ms, self._leader_of)
                if delay_ms is None and (leaderless or not self._accumulator.is_empty):
                    # Batches wait for a leader (or a retry of a partition that has lost
                    # its leader since): look again after a backoff even if no refresh
                    # completes, so leaders are found and expiry happens on time. Without
                    # this a retried batch of a partition whose leader went away waited
                    # for a wakeup that never came (found by `kraft chaos --mixed`).
                    delay_ms = float(self.config.retry_backoff_ms)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(None if delay_ms is None else delay_ms / 1000):
                        await self._wakeup.wait()

    def _maybe_start_refresh(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            return
        self._refresh = asyncio.create_task(self._refresh_metadata(), name="producer-metadata")

    async def _refresh_metadata(self) -> object:
        try:
            return await self._cluster.refresh()
        except ClientError as error:
            log.info("producer.metadata_refresh_failed", error=str(error))
            return None
        finally:
            self._wakeup.set()

    async def _send_request(self, broker_id: int, batches: list[ProducerBatch]) -> None:
        body = {
            "kind": KIND_PRODUCE,
            "acks": self.config.acks,
            "timeout_ms": self.config.request_timeout_ms,
            "partitions": [
                {"topic": batch.topic, "partition": batch.partition, "records": batch.encode()}
                for batch in batches
            ],
        }
        try:
            answer = await self._cluster.request(
                broker_id, body, self.config.request_timeout_ms + PRODUCE_ANSWER_SLACK_MS
            )
            raise_for_request_error(answer, KIND_PRODUCE)
            results = _partition_results(answer)
        except (BrokerUnavailableError, MalformedResponseError) as error:
            # No usable answer: the batches may or may not be written; retry them all.
            for batch in batches:
                self._handle_result(batch, ErrorCode.REQUEST_TIMED_OUT, str(error), -1)
        except KafkaError as error:  # the request as a whole was refused: a bug on our side
            for batch in batches:
                self._handle_result(batch, error.code, error.message, -1)
        else:
            for batch in batches:
                code, message, base_offset, append_time_ms = results.get(
                    batch.topic_partition,
                    (
                        ErrorCode.UNKNOWN_SERVER_ERROR,
                        "the answer does not list the partition",
                        -1,
                        -1,
                    ),
                )
                self._handle_result(batch, code, message, base_offset, append_time_ms)
        finally:
            self._in_flight_per_broker[broker_id] -= 1
            self._wakeup.set()

    def _handle_result(
        self,
        batch: ProducerBatch,
        code: int,
        message: str | None,
        base_offset: int,
        log_append_time_ms: int = -1,
    ) -> None:
        outcome = produce_outcome(code, len(batch.records))
        now_ms = self._now_ms()
        if outcome is Outcome.RETRY and refreshes_metadata(code):
            self._cluster.invalidate()
        if outcome is Outcome.RETRY or outcome is Outcome.SPLIT:
            batch.last_error = f"{error_name(code)}: {message}"
            if now_ms - batch.created_ms >= self.config.delivery_timeout_ms:
                self._accumulator.complete(batch)
                self._fail_expired(batch)
                return
            delay_ms = 0.0 if outcome is Outcome.SPLIT else self._retry_backoff_ms(batch)
            parts = batch.split() if outcome is Outcome.SPLIT else [batch]
            self._accumulator.reenqueue(parts, now_ms + delay_ms)
            log.info(
                "producer.retry",
                topic=batch.topic,
                partition=batch.partition,
                error=batch.last_error,
                attempt=batch.attempts,
            )
            return
        self._accumulator.complete(batch)
        self._space_freed.set()
        if outcome is Outcome.DONE:
            _acknowledge(batch, base_offset, log_append_time_ms)
        else:
            _fail(batch, KafkaError(code, message))

    def _retry_backoff_ms(self, batch: ProducerBatch) -> float:
        return backoff_ms(
            batch.attempts + 1,
            self.config.retry_backoff_ms,
            self.config.retry_backoff_max_ms,
            self._rng,
        )

    def _fail_expired(self, batch: ProducerBatch) -> None:
        self._space_freed.set()
        reason = f", last error {batch.last_error}" if batch.last_error else ""
        _fail(
            batch,
            DeliveryTimeoutError(
                f"{len(batch.records)} record(s) for {batch.topic}-{batch.partition} not "
                f"acknowledged within delivery_timeout_ms={self.config.delivery_timeout_ms}"
                f"{reason}"
            ),
        )


def _partition_results(
    answer: dict[str, object],
) -> dict[TopicPartition, tuple[int, str | None, int, int]]:
    """(error_code, error_message, base_offset, log_append_time_ms) per partition of a
    produce answer (the append time -1 unless the topic is LogAppendTime)."""
    entries = answer.get("partitions")
    if not isinstance(entries, list):
        raise MalformedResponseError(f"produce answer has partitions {entries!r}, not a list")
    results: dict[TopicPartition, tuple[int, str | None, int, int]] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise MalformedResponseError(f"produce answer partitions[{index}] is not a map")
        topic, partition = entry.get("topic"), entry.get("partition")
        code, base_offset = entry.get("error_code"), entry.get("base_offset", -1)
        if not (isinstance(topic, str) and type(partition) is int and type(code) is int):
            raise MalformedResponseError(f"produce answer partitions[{index}] is {entry!r}")
        message = entry.get("error_message")
        append_time_ms = entry.get("log_append_time_ms", -1)  # absent from older brokers
        results[(topic, partition)] = (
            code,
            message if isinstance(message, str) else None,
            base_offset if type(base_offset) is int else -1,
            append_time_ms if type(append_time_ms) is int else -1,
        )
    return results


def _acknowledge(batch: ProducerBatch, base_offset: int, log_append_time_ms: int = -1) -> None:
    for index, (record, future) in enumerate(zip(batch.records, batch.futures, strict=True)):
        if future.done():
            continue  # the caller cancelled it; the record was written all the same
        offset = base_offset + index if base_offset >= 0 else -1
        timestamp = log_append_time_ms if log_append_time_ms >= 0 else record.timestamp_ms
        future.set_result(RecordMetadata(batch.topic, batch.partition, offset, timestamp))


def _fail(batch: ProducerBatch, error: Exception) -> None:
    for future in batch.futures:
        if not future.done():
            future.set_exception(error)
