"""BrokerMetrics: SPEC §6 series of the data plane, native and under Kafka's JMX-exporter
names, parsed back from the text exposition that `/metrics` serves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from broker.api.facade import LocalPartitionStats
from broker.metrics import BrokerMetrics
from tests.unit.api.conftest import MakeClient
from tests.unit.api.fakes import FakeNode


def stats(
    topic: str,
    partition: int,
    *,
    is_leader: bool = True,
    isr_size: int = 3,
    replication_factor: int = 3,
    min_insync_replicas: int = 2,
) -> LocalPartitionStats:
    return LocalPartitionStats(
        topic=topic,
        partition=partition,
        is_leader=is_leader,
        leader_epoch=4,
        high_watermark=100 + partition,
        log_start_offset=10 + partition,
        log_end_offset=110 + partition,
        size_bytes=5000 + partition,
        replication_factor=replication_factor,
        isr_size=isr_size,
        min_insync_replicas=min_insync_replicas,
    )


class Broker:
    """What a broker hands BrokerMetrics: replicas it may change between scrapes."""

    def __init__(self, partitions: Sequence[LocalPartitionStats] = ()) -> None:
        self.partitions = list(partitions)
        self.reads = 0

    def partition_stats(self) -> Sequence[LocalPartitionStats]:
        self.reads += 1
        return self.partitions


def scrape(registry: CollectorRegistry) -> list[Sample]:
    text = generate_latest(registry).decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    matching = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(matching) == 1, (name, labels, matching)
    return matching[0]


def names(samples: list[Sample]) -> set[str]:
    return {sample.name for sample in samples}


def test_registering_reads_no_partition_stats_before_the_broker_has_started() -> None:
    broker = Broker()

    BrokerMetrics(CollectorRegistry(), broker.partition_stats)

    assert broker.reads == 0


def test_per_partition_gauges_come_from_partition_stats_at_scrape_time() -> None:
    """SPEC §6: kraft_partition_high_watermark{topic,partition} and log end offset."""
    broker = Broker([stats("orders", 0)])
    registry = CollectorRegistry()
    BrokerMetrics(registry, broker.partition_stats)
    broker.partitions.append(stats("audit.log", 3, is_leader=False))

    samples = scrape(registry)

    assert value(samples, "kraft_partition_high_watermark", topic="orders", partition="0") == 100
    assert value(samples, "kraft_partition_log_end_offset", topic="audit.log", partition="3") == 113
    assert value(samples, "kraft_partition_log_start_offset", topic="orders", partition="0") == 10
    assert value(samples, "kraft_partition_size_bytes", topic="audit.log", partition="3") == 5003
    assert value(samples, "kraft_partition_in_sync_replicas", topic="orders", partition="0") == 3
    assert value(samples, "kraft_partition_is_leader", topic="audit.log", partition="3") == 0


def test_replica_manager_counts_follow_kafka() -> None:
    """Kafka's ReplicaManager gauges: under-replication and under-min-ISR are counted by the
    leader only; partitioncount counts every replica."""
    broker = Broker(
        [
            stats("orders", 0),  # healthy leader
            stats("orders", 1, isr_size=2),  # under-replicated, not under min ISR
            stats("orders", 2, isr_size=1),  # under-replicated and under min ISR
            stats("orders", 3, isr_size=1, is_leader=False),  # a follower: not counted
            stats("solo", 0, isr_size=1, replication_factor=1, min_insync_replicas=1),
        ]
    )
    registry = CollectorRegistry()
    BrokerMetrics(registry, broker.partition_stats)

    samples = scrape(registry)

    prefix = "kafka_server_replicamanager_"
    assert value(samples, prefix + "underreplicatedpartitions") == 2
    assert value(samples, prefix + "underminisrpartitioncount") == 1
    assert value(samples, prefix + "leadercount") == 4
    assert value(samples, prefix + "partitioncount") == 5


def test_a_broker_without_replicas_reports_zero_counts_and_no_partition_series() -> None:
    registry = CollectorRegistry()
    BrokerMetrics(registry, Broker().partition_stats)

    samples = scrape(registry)

    assert value(samples, "kafka_server_replicamanager_partitioncount") == 0
    assert value(samples, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert not any(sample.name.startswith("kraft_partition_") for sample in samples)


def test_broker_topic_counters_give_all_topics_and_per_topic_series() -> None:
    """As Kafka's JMX exporter: the all-topics series (no topic label; Prometheus reads an
    empty label as none) and one per topic."""
    registry = CollectorRegistry()
    metrics = BrokerMetrics(registry, Broker().partition_stats)

    metrics.count_produced("orders", records=3, size_bytes=300)
    metrics.count_produced("audit.log", records=1, size_bytes=50)
    metrics.count_produced("orders", records=2, size_bytes=200)
    metrics.count_fetched("orders", size_bytes=120)
    samples = scrape(registry)

    prefix = "kafka_server_brokertopicmetrics_"
    assert value(samples, prefix + "bytesin_total", topic="") == 550
    assert value(samples, prefix + "bytesin_total", topic="orders") == 500
    assert value(samples, prefix + "messagesin_total", topic="") == 6
    assert value(samples, prefix + "messagesin_total", topic="audit.log") == 1
    assert value(samples, prefix + "bytesout_total", topic="") == 120
    assert value(samples, prefix + "bytesout_total", topic="audit.log") == 0


def test_all_topics_series_exist_before_any_traffic() -> None:
    """So that rate() sees the first produce."""
    registry = CollectorRegistry()
    BrokerMetrics(registry, Broker().partition_stats)

    samples = scrape(registry)

    for name in ("bytesin_total", "bytesout_total", "messagesin_total"):
        assert value(samples, "kafka_server_brokertopicmetrics_" + name, topic="") == 0


def test_isr_changes_are_counted() -> None:
    registry = CollectorRegistry()
    metrics = BrokerMetrics(registry, Broker().partition_stats)

    metrics.on_isr_shrink()
    metrics.on_isr_shrink()
    metrics.on_isr_expand()
    samples = scrape(registry)

    assert value(samples, "kafka_server_replicamanager_isrshrinks_total") == 2
    assert value(samples, "kafka_server_replicamanager_isrexpands_total") == 1


def test_log_cleaner_passes_are_counted() -> None:
    registry = CollectorRegistry()
    metrics = BrokerMetrics(registry, Broker().partition_stats)

    metrics.on_log_cleaned(records_removed=30, bytes_reclaimed=4096)
    metrics.on_log_cleaned(records_removed=0, bytes_reclaimed=-12)  # a recompressed batch grew
    samples = scrape(registry)

    assert value(samples, "kraft_log_cleaner_passes_total") == 2
    assert value(samples, "kraft_log_cleaner_records_removed_total") == 30
    assert value(samples, "kraft_log_cleaner_reclaimed_bytes_total") == 4096


def test_latencies_are_histograms_from_sub_millisecond_to_seconds() -> None:
    """SPEC §6: kraft_produce_latency_seconds and kraft_fetch_latency_seconds."""
    registry = CollectorRegistry()
    metrics = BrokerMetrics(registry, Broker().partition_stats)

    metrics.observe_produce_latency(0.0003)
    metrics.observe_produce_latency(2.0)
    metrics.observe_fetch_latency(0.5)
    samples = scrape(registry)

    produce = "kraft_produce_latency_seconds"
    assert value(samples, produce + "_count") == 2
    assert value(samples, produce + "_sum") == pytest.approx(2.0003)
    assert value(samples, produce + "_bucket", le="0.0005") == 1
    assert value(samples, produce + "_bucket", le="2.5") == 2
    assert value(samples, "kraft_fetch_latency_seconds_bucket", le="0.25") == 0
    assert value(samples, "kraft_fetch_latency_seconds_bucket", le="0.5") == 1


def test_negative_amounts_are_programmer_errors() -> None:
    metrics = BrokerMetrics(CollectorRegistry(), Broker().partition_stats)

    with pytest.raises(AssertionError):
        metrics.observe_produce_latency(-1.0)
    with pytest.raises(AssertionError):
        metrics.count_produced("orders", records=-1, size_bytes=0)
    with pytest.raises(AssertionError):
        metrics.count_fetched("", size_bytes=1)


async def test_metrics_route_serves_the_broker_series(
    make_client: MakeClient, node: FakeNode
) -> None:
    registry = CollectorRegistry()
    metrics = BrokerMetrics(registry, Broker([stats("orders", 0, isr_size=1)]).partition_stats)
    metrics.count_produced("orders", records=1, size_bytes=10)
    client: TestClient[Any, Any] = await make_client(node, registry=registry)

    response = await client.get("/metrics")

    text = await response.text()
    assert response.status == 200
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert value(samples, "kafka_server_replicamanager_underminisrpartitioncount") == 1
    assert names(samples) >= {
        "kraft_produce_latency_seconds_count",
        "kraft_fetch_latency_seconds_count",
        "kraft_partition_high_watermark",
        "kraft_partition_log_end_offset",
        "kafka_server_replicamanager_underreplicatedpartitions",
        "kafka_server_replicamanager_leadercount",
        "kafka_server_replicamanager_isrshrinks_total",
        "kafka_server_replicamanager_isrexpands_total",
        "kafka_server_brokertopicmetrics_bytesin_total",
        "kafka_server_brokertopicmetrics_bytesout_total",
        "kafka_server_brokertopicmetrics_messagesin_total",
    }
