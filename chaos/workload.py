"""The load of a chaos run, recorded: producers writing unique values with acks=all (one
operation at a time each, so every invoke has one completion), one consumer per topic
polling every partition from the start, and admin operations (create and delete topics)
racing the faults. Every operation goes into the Recorder with its outcome:

- ok: done (a send's offset is known);
- fail: certainly not done (the broker refused before writing, e.g. MESSAGE_TOO_LARGE);
- info: unknown (timed out, connection lost, delivery timeout after retries): the record
  may or may not be in the log.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any

import structlog

from chaos.history import Fault, Op, OpFunction, OpType
from client.admin import AdminClient, AdminError
from client.consumer import Consumer
from client.errors import ClientError, DeliveryTimeoutError, KafkaError
from client.producer import Producer
from kraft.protocol.errors import ErrorCode

# Producer settings for a chaos run: retries for a while (a fault lasts seconds), then the
# outcome is recorded as unknown.
DELIVERY_TIMEOUT_MS = 15_000
REQUEST_TIMEOUT_MS = 3_000
KAFKA_CLOSE_TIMEOUT_S = 5.0
POLL_TIMEOUT_MS = 500
ADMIN_INTERVAL_S = 2.0
ADMIN_TIMEOUT_S = 10.0

log = structlog.get_logger()

# Kafka errors that say the record was certainly not appended.
_CERTAINLY_NOT_WRITTEN = frozenset(
    {
        ErrorCode.MESSAGE_TOO_LARGE,
        ErrorCode.INVALID_RECORD,
        ErrorCode.CORRUPT_MESSAGE,
        ErrorCode.INVALID_REQUIRED_ACKS,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    }
)


@dataclass(frozen=True, slots=True)
class WorkloadSettings:
    topics: tuple[str, ...] = ("chaos-0", "chaos-1", "chaos-2")
    partitions: int = 2
    producers: int = 6
    # producers speaking the Kafka protocol (kafka-python, when installed) to the client
    # listeners, beside the native ones
    kafka_producers: int = 1
    send_pause_s: float = 0.002  # between one producer's sends
    admin: bool = True


class Recorder:
    """Collects the history; times are seconds since the run started (monotonic)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.entries: list[Op | Fault] = []
        self._op_ids = itertools.count()

    def now(self) -> float:
        return time.monotonic() - self.started

    def invoke(self, process: str, f: OpFunction, **fields: Any) -> int:
        op_id = next(self._op_ids)
        self.entries.append(Op(op_id, process, "invoke", f, self.now(), **fields))
        return op_id

    def complete(
        self, op_id: int, process: str, type_: OpType, f: OpFunction, **fields: Any
    ) -> None:
        assert type_ != "invoke", "a completion is ok, fail or info"
        self.entries.append(Op(op_id, process, type_, f, self.now(), **fields))

    def fault(self, name: str, targets: list[int], start_s: float, detail: str = "") -> Fault:
        fault = Fault(name, targets, start_s, self.now(), detail)
        self.entries.append(fault)
        return fault


async def produce_loop(
    process: str,
    bootstrap: list[str],
    settings: WorkloadSettings,
    recorder: Recorder,
    stop: asyncio.Event,
    offset: int,
) -> None:
    async with Producer(
        bootstrap,
        acks="all",
        linger_ms=0,
        delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    ) as producer:
        for n in itertools.count():
            if stop.is_set():
                return
            topic = settings.topics[(n + offset) % len(settings.topics)]
            partition = (n // len(settings.topics)) % settings.partitions
            value = f"{process}-{n}"
            op_id = recorder.invoke(process, "send", topic=topic, partition=partition, value=value)
            fields: dict[str, Any] = {"topic": topic, "partition": partition, "value": value}
            try:
                metadata = await producer.send_and_wait(topic, value.encode(), partition=partition)
            except DeliveryTimeoutError as error:
                recorder.complete(op_id, process, "info", "send", error=str(error), **fields)
            except KafkaError as error:
                outcome: OpType = "fail" if error.code in _CERTAINLY_NOT_WRITTEN else "info"
                recorder.complete(op_id, process, outcome, "send", error=str(error), **fields)
            except (ClientError, OSError, TimeoutError) as error:
                recorder.complete(op_id, process, "info", "send", error=repr(error), **fields)
            else:
                recorder.complete(op_id, process, "ok", "send", offset=metadata.offset, **fields)
            await asyncio.sleep(settings.send_pause_s)


async def kafka_produce_loop(
    process: str,
    client_addresses: list[str],
    settings: WorkloadSettings,
    recorder: Recorder,
    stop: asyncio.Event,
    offset: int,
) -> None:
    """Like produce_loop, through an unmodified Kafka client (kafka-python, synchronous: each
    send runs in a thread). Any failure is recorded as unknown (info)."""
    from kafka import KafkaProducer  # optional: kafka-python is a development dependency

    producer = await asyncio.to_thread(
        KafkaProducer,
        bootstrap_servers=client_addresses,
        acks="all",
        enable_idempotence=True,  # kafka-python's default: the checker counts its duplicates
        retries=5,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        linger_ms=0,
    )
    try:
        for n in itertools.count():
            if stop.is_set():
                return
            topic = settings.topics[(n + offset) % len(settings.topics)]
            partition = (n // len(settings.topics)) % settings.partitions
            value = f"{process}-{n}"
            op_id = recorder.invoke(process, "send", topic=topic, partition=partition, value=value)
            fields: dict[str, Any] = {"topic": topic, "partition": partition, "value": value}
            try:
                future = await asyncio.to_thread(
                    producer.send, topic, value=value.encode(), partition=partition
                )
                metadata = await asyncio.to_thread(future.get, DELIVERY_TIMEOUT_MS / 1000)
            except Exception as error:  # noqa: BLE001 - the outcome is unknown
                recorder.complete(op_id, process, "info", "send", error=repr(error), **fields)
            else:
                recorder.complete(op_id, process, "ok", "send", offset=metadata.offset, **fields)
            await asyncio.sleep(settings.send_pause_s)
    finally:
        await asyncio.to_thread(_close_kafka_producer, producer)


def _close_kafka_producer(producer: Any) -> None:
    """kafka-python's close() raises when a send in flight (its outcome recorded as unknown)
    cannot be flushed in time, e.g. at the end of a run with a fault still active: that must
    not fail the run (kraft chaos --mixed, seed 201)."""
    from kafka.errors import KafkaError as KafkaPythonError

    try:
        producer.close(timeout=KAFKA_CLOSE_TIMEOUT_S)
    except KafkaPythonError as error:
        log.warning("workload.kafka_producer_close_failed", reason=repr(error))
        # close() flushes first and raises again while the batch is pending: stop its
        # sender thread the way close() would have after the flush
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()


def kafka_client_available() -> bool:
    try:
        import kafka  # noqa: F401
    except ImportError:
        return False
    return True


async def consume_loop(
    process: str,
    topic: str,
    bootstrap: list[str],
    settings: WorkloadSettings,
    recorder: Recorder,
    stop: asyncio.Event,
) -> None:
    async with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, p) for p in range(settings.partitions)])
        for p in range(settings.partitions):
            consumer.seek(topic, p, 0)
        while not stop.is_set():
            op_id = recorder.invoke(process, "poll", topic=topic)
            try:
                records = await consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            except (ClientError, OSError, TimeoutError) as error:
                recorder.complete(op_id, process, "fail", "poll", topic=topic, error=repr(error))
                await asyncio.sleep(0.1)
                continue
            recorder.complete(
                op_id,
                process,
                "ok",
                "poll",
                topic=topic,
                records=[
                    [r.partition, r.offset, (r.value or b"").decode("utf-8", "replace")]
                    for r in records
                ],
            )


async def admin_loop(http_urls: list[str], recorder: Recorder, stop: asyncio.Event) -> None:
    """Creates and deletes small topics while the faults run."""
    admin = AdminClient(http_urls, timeout_s=ADMIN_TIMEOUT_S)
    process = "admin"
    for n in itertools.count():
        if stop.is_set():
            return
        topic = f"churn-{n}"
        functions: tuple[OpFunction, ...] = ("create_topic", "delete_topic")
        for function in functions:
            op_id = recorder.invoke(process, function, topic=topic)
            try:
                if function == "create_topic":
                    await asyncio.to_thread(admin.create_topic, topic, 1, 3, {})
                else:
                    await asyncio.to_thread(admin.delete_topic, topic)
            except AdminError as error:
                # 4xx: refused, not done; 5xx or no answer: unknown
                outcome: OpType = "fail" if 400 <= error.http_status < 500 else "info"
                recorder.complete(op_id, process, outcome, function, topic=topic, error=str(error))
            except Exception as error:  # noqa: BLE001 - any other failure: outcome unknown
                recorder.complete(op_id, process, "info", function, topic=topic, error=repr(error))
            else:
                recorder.complete(op_id, process, "ok", function, topic=topic)
            try:
                await asyncio.wait_for(stop.wait(), ADMIN_INTERVAL_S)
                return
            except TimeoutError:
                pass


async def run_workload(
    bootstrap: list[str],
    http_urls: list[str],
    settings: WorkloadSettings,
    recorder: Recorder,
    stop: asyncio.Event,
    client_addresses: list[str] | None = None,
) -> None:
    tasks = [
        produce_loop(f"producer-{i}", bootstrap, settings, recorder, stop, i)
        for i in range(settings.producers)
    ]
    if client_addresses and settings.kafka_producers and kafka_client_available():
        tasks += [
            kafka_produce_loop(f"kafka-producer-{i}", client_addresses, settings, recorder, stop, i)
            for i in range(settings.kafka_producers)
        ]
    tasks += [
        consume_loop(f"consumer-{topic}", topic, bootstrap, settings, recorder, stop)
        for topic in settings.topics
    ]
    if settings.admin:
        tasks.append(admin_loop(http_urls, recorder, stop))
    await asyncio.gather(*tasks)
