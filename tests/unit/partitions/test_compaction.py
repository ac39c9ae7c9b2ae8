"""The replica manager's log cleaner over real partition logs: a topic whose cleanup.policy
lists `compact` is compacted below its high watermark, one whose policy does not is left
alone, and a partition removed while its pass runs loses nothing else and leaves nothing
behind."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from broker.log import PartitionLog
from broker.log.batch import Record, build_batch, iter_batches, iter_records
from broker.log.cleaner import CleaningPlan, CleaningResult, clean
from broker.partitions import manager as manager_module
from broker.partitions.manager import ReplicaManager
from kraft.controller.records import ConfigRecord
from kraft.protocol.errors import ErrorCode
from tests.unit.api.images import ImageBuilder
from tests.unit.partitions.helpers import single_broker_manager

UPDATES = 60  # ten keys, six times each, one-record batches: ~12 segments of 1 KiB


def topic(tmp_path: Path, policy: str) -> tuple[ImageBuilder, ReplicaManager]:
    builder = ImageBuilder()
    builder.broker(1)
    builder.topic("t", [(1,)])
    builder.config("topic", "t", "segment.bytes", "1024")
    builder.config("topic", "t", "cleanup.policy", policy)
    replicas = single_broker_manager(builder, tmp_path)
    replicas._reconcile()
    return builder, replicas


async def update_keys(replicas: ReplicaManager) -> None:
    for n in range(UPDATES):
        batch = build_batch([Record(b"key-%d" % (n % 10), b"value-%d " % n * 8, (), 1_000)])
        result = await replicas.produce("t", 0, batch, 1, 5000)
        assert result.error_code is ErrorCode.NONE, result


def log_of(replicas: ReplicaManager) -> PartitionLog:
    partition = replicas.find("t", 0)
    assert partition is not None
    return partition.log


def keys_below(log: PartitionLog, end: int) -> list[bytes | None]:
    """The keys of the records below `end`, read from the log start as a consumer does."""
    keys: list[bytes | None] = []
    offset = log.log_start_offset
    while offset < end:
        for batch in iter_batches(log.read(offset, 1 << 20)):
            batch.validate(compacted=True)
            keys += [record.key for record in iter_records(batch) if record.offset < end]
            offset = batch.next_offset
    return keys


async def test_a_compacted_topic_keeps_the_latest_record_of_each_key(tmp_path: Path) -> None:
    _, replicas = topic(tmp_path, "compact")
    try:
        await update_keys(replicas)
        log = log_of(replicas)
        end = log.segment_base_offsets()[-1]
        assert len(keys_below(log, end)) == end
        await replicas._clean_compacted_partitions()
        keys = keys_below(log, end)
        assert len(keys) == len(set(keys)) <= 10
        assert log.log_end_offset == UPDATES
    finally:
        await replicas.close()


async def test_a_deleting_topic_is_not_compacted(tmp_path: Path) -> None:
    _, replicas = topic(tmp_path, "delete")
    try:
        await update_keys(replicas)
        log = log_of(replicas)
        end = log.segment_base_offsets()[-1]
        assert log.cleaning_plan(end) is not None, "the log would clean: the manager must not"
        await replicas._clean_compacted_partitions()
        assert len(keys_below(log, end)) == end
    finally:
        await replicas.close()


async def test_a_partition_removed_while_its_pass_runs_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder, replicas = topic(tmp_path, "compact")
    started, go_on = threading.Event(), threading.Event()

    def slow_clean(plan: CleaningPlan) -> CleaningResult:
        started.set()
        assert go_on.wait(10)
        return clean(plan)

    monkeypatch.setattr(manager_module, "clean", slow_clean)
    try:
        await update_keys(replicas)
        directory = log_of(replicas).directory
        passing = asyncio.create_task(
            replicas._clean(("t-id", 0), replicas.partitions[("t-id", 0)])
        )
        assert await asyncio.to_thread(started.wait, 10)
        builder.remove_topic("t")
        replicas.on_metadata_applied([], 0)
        replicas._touched.add(("t-id", 0))
        replicas._reconcile()
        assert ("t-id", 0) not in replicas.partitions
        go_on.set()
        await passing  # no error: the pass saw the log closed and stopped
        assert not directory.exists()
    finally:
        go_on.set()
        await replicas.close()


async def test_the_topics_compaction_configs_reach_its_logs_and_follow_changes(
    tmp_path: Path,
) -> None:
    builder, replicas = topic(tmp_path, "compact")
    try:
        log = log_of(replicas)
        assert (log.config.delete_retention_ms, log.config.min_cleanable_dirty_ratio) == (
            86_400_000,
            0.5,
        ), "Kafka's defaults"
        configs = {
            "segment.ms": "3600000",
            "delete.retention.ms": "1000",
            "min.compaction.lag.ms": "2000",
            "max.compaction.lag.ms": "3000",
            "min.cleanable.dirty.ratio": "0.25",
        }
        records = [ConfigRecord("topic", "t", name, value) for name, value in configs.items()]
        for record in records:
            builder.apply(record)
        replicas.on_metadata_applied(records, 0)
        replicas._reconcile()

        config = log_of(replicas).config
        assert (
            config.segment_ms,
            config.delete_retention_ms,
            config.min_compaction_lag_ms,
            config.max_compaction_lag_ms,
            config.min_cleanable_dirty_ratio,
        ) == (3_600_000, 1000, 2000, 3000, 0.25)
    finally:
        await replicas.close()
