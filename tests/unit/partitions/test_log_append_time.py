"""message.timestamp.type, as Kafka: a LogAppendTime topic's leader stamps every produced
batch with the time it appends it and answers the produce with that time (a retried
idempotent batch with the original's); a CreateTime topic keeps the producer's
timestamps."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from broker.api.facade import OutgoingRecord
from broker.log.batch import Record, build_batch, iter_batches, iter_records
from broker.partitions.dataplane import DataPlane
from broker.partitions.manager import ReplicaManager
from kraft.protocol.errors import ErrorCode
from tests.unit.api.images import ImageBuilder
from tests.unit.partitions.helpers import single_broker_manager

PRODUCER_TIMESTAMP_MS = 1_000  # far older than any append time


def topic(tmp_path: Path, timestamp_type: str | None) -> ReplicaManager:
    builder = ImageBuilder()
    builder.broker(1)
    builder.topic("t", [(1,)])
    if timestamp_type is not None:
        builder.config("topic", "t", "message.timestamp.type", timestamp_type)
    replicas = single_broker_manager(builder, tmp_path)
    replicas._reconcile()
    return replicas


def batch(producer_id: int = -1, sequence: int = -1) -> bytes:
    records = [Record(b"k%d" % n, b"v", (), PRODUCER_TIMESTAMP_MS + n) for n in range(2)]
    epoch = 0 if producer_id >= 0 else -1
    return build_batch(
        records, producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence
    )


def stored_timestamps(replicas: ReplicaManager) -> list[int]:
    partition = replicas.find("t", 0)
    assert partition is not None
    data = partition.log.read(0, 1 << 20)
    return [r.timestamp_ms for b in iter_batches(data) for r in iter_records(b)]


async def test_a_log_append_time_topic_stamps_batches_with_their_append_time(
    tmp_path: Path,
) -> None:
    replicas = topic(tmp_path, "LogAppendTime")
    try:
        before_ms = time.time_ns() // 1_000_000
        result = await replicas.produce("t", 0, batch(), 1, 5000)
        after_ms = time.time_ns() // 1_000_000

        assert result.error_code is ErrorCode.NONE
        assert before_ms <= result.log_append_time_ms <= after_ms
        assert stored_timestamps(replicas) == [result.log_append_time_ms] * 2
    finally:
        await replicas.close()


async def test_a_retried_idempotent_batch_gets_the_original_append_time(tmp_path: Path) -> None:
    replicas = topic(tmp_path, "LogAppendTime")
    try:
        first = await replicas.produce("t", 0, batch(producer_id=7, sequence=0), -1, 5000)
        retried = await replicas.produce("t", 0, batch(producer_id=7, sequence=0), -1, 5000)

        assert (retried.base_offset, retried.log_append_time_ms) == (
            first.base_offset,
            first.log_append_time_ms,
        )
        assert first.log_append_time_ms > PRODUCER_TIMESTAMP_MS
        assert len(stored_timestamps(replicas)) == 2, "the retry wrote nothing"
    finally:
        await replicas.close()


async def test_a_create_time_topic_keeps_the_producers_timestamps(tmp_path: Path) -> None:
    for timestamp_type in (None, "CreateTime"):
        log_dir = tmp_path / str(timestamp_type)
        log_dir.mkdir()
        replicas = topic(log_dir, timestamp_type)
        try:
            result = await replicas.produce("t", 0, batch(), 1, 5000)

            assert result.log_append_time_ms == -1
            assert stored_timestamps(replicas) == [PRODUCER_TIMESTAMP_MS, PRODUCER_TIMESTAMP_MS + 1]
        finally:
            await replicas.close()


async def test_the_http_produce_path_reports_the_append_time_here_and_from_a_leader(
    tmp_path: Path,
) -> None:
    """The data plane behind HTTP produce: each record's outcome carries the append time,
    whether this broker leads the partition or forwards the batch to the leader."""
    builder = ImageBuilder()
    builder.broker(1)
    builder.broker(2)
    builder.topic("here", [(1,)])
    builder.topic("there", [(2,)])
    for name in ("here", "there"):
        builder.config("topic", name, "message.timestamp.type", "LogAppendTime")
    replicas = single_broker_manager(builder, tmp_path)
    replicas._reconcile()

    async def leader_2(broker: int, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        assert broker == 2
        return {
            "partitions": [
                {"error_code": 0, "base_offset": 7, "log_append_time_ms": 1_700_000_000_000}
            ]
        }

    plane = DataPlane(replicas, lambda: builder.image, leader_2)
    record = OutgoingRecord(b"v", timestamp_ms=PRODUCER_TIMESTAMP_MS)
    try:
        (here,) = await plane.produce_records("here", [record], 1, 5000)
        (there,) = await plane.produce_records("there", [record], 1, 5000)
    finally:
        await replicas.close()

    assert here.error_code == 0 and here.timestamp_ms > PRODUCER_TIMESTAMP_MS
    assert (there.offset, there.timestamp_ms) == (7, 1_700_000_000_000)
