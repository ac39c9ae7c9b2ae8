"""The data plane as the HTTP routes see it (broker.api.facade.DataPlaneFacade): produce and
consume on any node. The node serves a partition it leads itself and forwards the request
to the partition's leader over the native protocol otherwise, as Confluent's REST proxy and
Redpanda's HTTP proxy do.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from broker.api.facade import ConsumedRecord, FetchOutcome, OutgoingRecord, RecordOutcome
from broker.log.batch import Record, build_batch, iter_batches, iter_records
from broker.log.errors import RecordBatchError
from broker.partitions.manager import PartitionFetch, ReplicaManager
from broker.replication.producer_state import ProducerError
from kraft.controller.image import MetadataImage
from kraft.protocol.errors import ErrorCode
from kraft.protocol.native import CONSUMER_REPLICA_ID, KIND_FETCH, KIND_PRODUCE
from kraft.protocol.partitioner import partition_for_key

# A forwarded or local request meeting NOT_LEADER (leadership moving) is tried again after
# this pause, while the caller's timeout allows.
LEADER_RETRY_BACKOFF_S = 0.1
FORWARD_SLACK_S = 2.0  # a forwarded request may take its own timeout plus this

_RETRY_CODES = frozenset(
    {
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
    }
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class DataPlane:
    def __init__(
        self,
        manager: ReplicaManager,
        image: Callable[[], MetadataImage],
        request_broker: Callable[[int, dict[str, Any], float], Awaitable[dict[str, Any]]],
    ) -> None:
        self._manager = manager
        self._image = image
        self._request_broker = request_broker
        self._round_robin = itertools.count()

    # -- produce -----------------------------------------------------------------------------

    async def produce_records(
        self, topic: str, records: Sequence[OutgoingRecord], acks: int, timeout_ms: int
    ) -> list[RecordOutcome]:
        topic_image = self._image().topic(topic)
        stamp = now_ms()
        if topic_image is None:
            return [
                RecordOutcome(
                    -1, -1, stamp, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {topic!r}"
                )
                for _ in records
            ]
        count = len(topic_image.partitions)
        chosen: list[int] = []
        for record in records:
            if record.partition is not None:
                chosen.append(record.partition)
            elif record.key is not None:
                chosen.append(partition_for_key(record.key, count))
            else:
                chosen.append(next(self._round_robin) % count)
        groups: dict[int, list[int]] = {}
        for index, partition in enumerate(chosen):
            groups.setdefault(partition, []).append(index)
        outcomes: list[RecordOutcome | None] = [None] * len(records)

        async def produce_group(partition: int, indexes: list[int]) -> None:
            timestamps = [
                stamp if records[i].timestamp_ms is None else int(records[i].timestamp_ms or 0)
                for i in indexes
            ]
            if partition not in topic_image.partitions:
                for i, timestamp in zip(indexes, timestamps, strict=True):
                    outcomes[i] = RecordOutcome(
                        partition,
                        -1,
                        timestamp,
                        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                        f"topic {topic!r} has no partition {partition}",
                    )
                return
            batch = build_batch(
                [
                    Record(records[i].key, records[i].value, records[i].headers, timestamp)
                    for i, timestamp in zip(indexes, timestamps, strict=True)
                ]
            )
            code, message, base_offset, append_time_ms = await self._produce_batch(
                topic, partition, batch, acks, timeout_ms
            )
            for position, (i, timestamp) in enumerate(zip(indexes, timestamps, strict=True)):
                offset = (
                    base_offset + position if code is ErrorCode.NONE and base_offset >= 0 else -1
                )
                stored_timestamp = append_time_ms if append_time_ms >= 0 else timestamp
                outcomes[i] = RecordOutcome(partition, offset, stored_timestamp, code, message)

        await asyncio.gather(*(produce_group(p, indexes) for p, indexes in groups.items()))
        assert all(outcome is not None for outcome in outcomes), "every record has an outcome"
        return [outcome for outcome in outcomes if outcome is not None]

    async def _produce_batch(
        self, topic: str, partition: int, batch: bytes, acks: int, timeout_ms: int
    ) -> tuple[ErrorCode, str | None, int, int]:
        """(code, message, base offset, append time on a LogAppendTime topic else -1)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while True:
            leader, _ = self._manager.leader_hint(topic, partition)
            remaining_ms = max(0, int((deadline - loop.time()) * 1000))
            if leader == self._manager.broker_id:
                result = await self._manager.produce(topic, partition, batch, acks, remaining_ms)
                code, message, base_offset, append_time_ms = (
                    _native_code(result.error_code),
                    result.error_message,
                    result.base_offset,
                    result.log_append_time_ms,
                )
            elif leader < 0:
                code, message, base_offset, append_time_ms = (
                    ErrorCode.LEADER_NOT_AVAILABLE,
                    f"partition {partition} of {topic!r} has no leader right now",
                    -1,
                    -1,
                )
            else:
                code, message, base_offset, append_time_ms = await self._forward_produce(
                    leader, topic, partition, batch, acks, remaining_ms
                )
            if code not in _RETRY_CODES or loop.time() + LEADER_RETRY_BACKOFF_S >= deadline:
                return code, message, base_offset, append_time_ms
            await asyncio.sleep(LEADER_RETRY_BACKOFF_S)

    async def _forward_produce(
        self, leader: int, topic: str, partition: int, batch: bytes, acks: int, timeout_ms: int
    ) -> tuple[ErrorCode, str | None, int, int]:
        body = {
            "kind": KIND_PRODUCE,
            "acks": acks,
            "timeout_ms": timeout_ms,
            "partitions": [{"topic": topic, "partition": partition, "records": batch}],
        }
        try:
            answer = await self._request_broker(leader, body, timeout_ms / 1000 + FORWARD_SLACK_S)
            item = answer["partitions"][0]
            return (
                ErrorCode(int(item["error_code"])),
                item.get("error_message"),
                int(item["base_offset"]),
                int(item.get("log_append_time_ms", -1)),  # absent from older brokers
            )
        except TimeoutError:
            return ErrorCode.REQUEST_TIMED_OUT, f"leader {leader} did not answer in time", -1, -1
        except (KeyError, IndexError, TypeError, ValueError) as error:
            message = f"leader {leader} answered oddly: {error!r}"
            return ErrorCode.UNKNOWN_SERVER_ERROR, message, -1, -1
        except Exception as error:  # noqa: BLE001 - unreachable leader: retriable
            message = f"leader {leader} unreachable: {error}"
            return ErrorCode.NOT_LEADER_OR_FOLLOWER, message, -1, -1

    # -- consume -----------------------------------------------------------------------------

    async def fetch_records(
        self, topic: str, partition: int, offset: int, max_bytes: int, max_wait_ms: int
    ) -> FetchOutcome:
        leader, _ = self._manager.leader_hint(topic, partition)
        request = PartitionFetch(topic, partition, offset, max_bytes)
        if leader == self._manager.broker_id or leader < 0:
            [result] = await self._manager.fetch(
                CONSUMER_REPLICA_ID, -1, [request], max_wait_ms, 1, max_bytes
            )
            code, message = result.error_code, result.error_message
            high_watermark, log_start, data = (
                result.high_watermark,
                result.log_start_offset,
                result.records,
            )
        else:
            body = {
                "kind": KIND_FETCH,
                "replica_id": CONSUMER_REPLICA_ID,
                "max_wait_ms": max_wait_ms,
                "min_bytes": 1,
                "max_bytes": max_bytes,
                "partitions": [
                    {
                        "topic": topic,
                        "partition": partition,
                        "fetch_offset": offset,
                        "partition_max_bytes": max_bytes,
                    }
                ],
            }
            try:
                answer = await self._request_broker(
                    leader, body, max_wait_ms / 1000 + FORWARD_SLACK_S
                )
                item = answer["partitions"][0]
            except Exception as error:  # noqa: BLE001 - unreachable leader: retriable
                return FetchOutcome(
                    int(ErrorCode.NOT_LEADER_OR_FOLLOWER), f"leader {leader}: {error}", -1, -1
                )
            code = ErrorCode(int(item["error_code"]))
            message = item.get("error_message")
            high_watermark = int(item["high_watermark"])
            log_start = int(item["log_start_offset"])
            data = item.get("records") or b""
        if code is not ErrorCode.NONE:
            return FetchOutcome(int(code), message, high_watermark, log_start)
        try:
            consumed = decode_records(data, offset, max_bytes)
        except RecordBatchError as error:
            return FetchOutcome(
                int(ErrorCode.CORRUPT_MESSAGE), str(error), high_watermark, log_start
            )
        return FetchOutcome(0, None, high_watermark, log_start, consumed)


def decode_records(data: bytes, from_offset: int, max_bytes: int) -> tuple[ConsumedRecord, ...]:
    """The records of whole batches from `from_offset` on (a read starts at the batch that
    holds it), stopping after about max_bytes of keys and values (at least one record)."""
    records: list[ConsumedRecord] = []
    size = 0
    for batch in iter_batches(data):
        if batch.is_control:
            continue
        for record in iter_records(batch):
            if record.offset < from_offset:
                continue
            size += len(record.key or b"") + len(record.value or b"")
            if records and size > max_bytes:
                return tuple(records)
            records.append(
                ConsumedRecord(
                    record.offset, record.timestamp_ms, record.key, record.value, record.headers
                )
            )
    return tuple(records)


def _native_code(code: ErrorCode | ProducerError) -> ErrorCode:
    """Producer-state refusals concern batches with a producer id, which the HTTP routes
    never build; should one come back, it is reported as the server error it would be."""
    return code if isinstance(code, ErrorCode) else ErrorCode.UNKNOWN_SERVER_ERROR
