"""Consumer-group metrics in kafka_exporter's names, for the groups this broker coordinates:

  kafka_consumergroup_current_offset{consumergroup,topic,partition}  committed offset
  kafka_consumergroup_lag{consumergroup,topic,partition}             log end offset - committed
  kafka_consumergroup_lag_sum{consumergroup,topic}                   lag summed over partitions
  kafka_consumergroup_members{consumergroup}                         members of the group

Every group has one coordinator, so summing over the brokers' /metrics counts each group once
(kafka_exporter is one process that asks the whole cluster; here each broker reports its
own). Log end offsets (high watermarks) live on the partition leaders, so a task refreshes a
snapshot every REFRESH_INTERVAL_S over the Kafka protocol and a scrape reads the snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from broker.kafka.groups.coordinator import GroupCoordinator
from broker.kafka.groups.inspect import GroupInspector, InspectError

log = structlog.get_logger(__name__)

REFRESH_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class GroupSample:
    group_id: str
    members: int
    # (topic, partition) -> (committed offset, log end offset or -1 when unknown)
    offsets: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)


def families(samples: Iterable[GroupSample]) -> list[Metric]:
    current = GaugeMetricFamily(
        "kafka_consumergroup_current_offset",
        "Committed offset of a consumer group in a partition",
        labels=["consumergroup", "topic", "partition"],
    )
    lag = GaugeMetricFamily(
        "kafka_consumergroup_lag",
        "Log end offset minus the committed offset of a consumer group in a partition",
        labels=["consumergroup", "topic", "partition"],
    )
    lag_sum = GaugeMetricFamily(
        "kafka_consumergroup_lag_sum",
        "Lag of a consumer group summed over the partitions of a topic",
        labels=["consumergroup", "topic"],
    )
    members = GaugeMetricFamily(
        "kafka_consumergroup_members", "Members of a consumer group", labels=["consumergroup"]
    )
    for sample in samples:
        members.add_metric([sample.group_id], sample.members)
        sums: dict[str, int] = {}
        for (topic, partition), (committed, end) in sorted(sample.offsets.items()):
            current.add_metric([sample.group_id, topic, str(partition)], committed)
            if end >= 0:
                partition_lag = max(0, end - committed)
                lag.add_metric([sample.group_id, topic, str(partition)], partition_lag)
                sums[topic] = sums.get(topic, 0) + partition_lag
        for topic, total in sorted(sums.items()):
            lag_sum.add_metric([sample.group_id, topic], total)
    return [current, lag, lag_sum, members]


class _Collector:
    def __init__(self) -> None:
        self.samples: list[GroupSample] = []

    def collect(self) -> Iterable[Metric]:
        return families(self.samples)

    def describe(self) -> Iterable[Metric]:
        return families([])


class GroupMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        coordinator: GroupCoordinator,
        inspector: GroupInspector,
        refresh_interval_s: float = REFRESH_INTERVAL_S,
    ) -> None:
        assert refresh_interval_s > 0, refresh_interval_s
        self._coordinator = coordinator
        self._inspector = inspector
        self._interval_s = refresh_interval_s
        self._collector = _Collector()
        registry.register(self._collector)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        assert self._task is None, "start() once"
        self._task = asyncio.create_task(self._run(), name="group-metrics")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.refresh()

    async def refresh(self) -> None:
        groups = [
            (g.group_id, len(g.members), dict(g.offsets)) for g in self._coordinator.local_groups()
        ]
        keys = sorted({key for _, _, offsets in groups for key in offsets})
        try:
            ends = await self._inspector.log_end_offsets(keys)
        except InspectError as error:
            log.info("groups.metrics_without_log_end_offsets", reason=str(error))
            ends = {}
        self._collector.samples = [
            GroupSample(
                group_id,
                members,
                {key: (committed.offset, ends.get(key, -1)) for key, committed in offsets.items()},
            )
            for group_id, members, offsets in groups
        ]
