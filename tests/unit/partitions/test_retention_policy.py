"""Retention follows the topic's cleanup.policy, as Kafka's LogConfig.delete: retention.ms
and retention.bytes delete old segments only when the policy lists `delete`. A topic that
is `compact` alone (__consumer_offsets; Kafka Connect's and Schema Registry's topics) keeps
its records whatever their age or size, and a policy changed at run time takes effect on
the next retention round."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from broker.log import PartitionLog
from broker.log.batch import Record, build_batch
from broker.partitions.manager import ReplicaManager
from kraft.controller.records import ConfigRecord
from kraft.protocol.errors import ErrorCode
from tests.unit.api.images import ImageBuilder
from tests.unit.partitions.helpers import single_broker_manager

LONG_AGO_MS = 1_000  # a record timestamp far older than any retention.ms below
WEEK_MS = 7 * 24 * 3600 * 1000

TopicWith = Callable[..., AbstractAsyncContextManager[tuple[ImageBuilder, ReplicaManager]]]


@pytest.fixture
def topic_with(tmp_path: Path) -> TopicWith:
    """A one-partition topic "t" on broker 1 with 1 KiB segments and the given configs
    (None: not set), served by a real ReplicaManager (broker default retention: 7 days)."""

    @asynccontextmanager
    async def make(
        **configs: str | None,
    ) -> AsyncIterator[tuple[ImageBuilder, ReplicaManager]]:
        builder = ImageBuilder()
        builder.broker(1)
        builder.topic("t", [(1,)])
        builder.config("topic", "t", "segment.bytes", "1024")
        for name, value in configs.items():
            if value is not None:
                builder.config("topic", "t", name.replace("_", "."), value)
        replicas = single_broker_manager(builder, tmp_path, retention_ms=WEEK_MS)
        replicas._reconcile()
        try:
            yield builder, replicas
        finally:
            await replicas.close()

    return make


def log_of(replicas: ReplicaManager) -> PartitionLog:
    partition = replicas.find("t", 0)
    assert partition is not None
    return partition.log


def set_config(builder: ImageBuilder, replicas: ReplicaManager, name: str, value: str) -> None:
    record = ConfigRecord("topic", "t", name, value)
    builder.apply(record)
    replicas.on_metadata_applied([record], 0)
    replicas._reconcile()


async def fill_segments(replicas: ReplicaManager, batches: int) -> None:
    """`batches` old one-record batches of ~600 bytes: with segment.bytes=1024, one a segment."""
    for n in range(batches):
        batch = build_batch([Record(b"k%d" % n, b"v" * 600, (), LONG_AGO_MS)])
        result = await replicas.produce("t", 0, batch, 1, 5000)
        assert result.error_code is ErrorCode.NONE, result


@pytest.mark.parametrize(
    ("policy", "deletes"),
    [(None, True), ("delete", True), ("compact", False), ("compact,delete", True)],
)
async def test_old_segments_are_deleted_only_when_the_policy_lists_delete(
    topic_with: TopicWith, policy: str | None, deletes: bool
) -> None:
    async with topic_with(retention_ms="60000", cleanup_policy=policy) as (_, replicas):
        await fill_segments(replicas, 5)
        log = log_of(replicas)
        assert len(log.segment_base_offsets()) == 5
        replicas._apply_retention()
        if deletes:
            assert log.segment_base_offsets() == [4]  # all but the active segment
            assert log.log_start_offset == 4
        else:
            assert log.segment_base_offsets() == [0, 1, 2, 3, 4]
            assert log.log_start_offset == 0


async def test_retention_bytes_spares_a_compacted_topic_too(topic_with: TopicWith) -> None:
    configs = {"retention_ms": "-1", "retention_bytes": "1024", "cleanup_policy": "compact"}
    async with topic_with(**configs) as (_, replicas):
        await fill_segments(replicas, 4)
        replicas._apply_retention()
        assert log_of(replicas).log_start_offset == 0


async def test_a_policy_changed_at_run_time_applies_at_the_next_round(
    topic_with: TopicWith,
) -> None:
    async with topic_with(retention_ms="60000", cleanup_policy="compact") as (builder, replicas):
        await fill_segments(replicas, 3)
        log = log_of(replicas)
        replicas._apply_retention()
        assert log.log_start_offset == 0
        set_config(builder, replicas, "cleanup.policy", "compact,delete")
        replicas._apply_retention()
        assert log.log_start_offset == 2
        set_config(builder, replicas, "cleanup.policy", "compact")
        await fill_segments(replicas, 2)
        replicas._apply_retention()
        assert log.log_start_offset == 2
