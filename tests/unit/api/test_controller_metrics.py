"""ControllerMetrics: the controller's series of SPEC §6 under Kafka's JMX-exporter names, read
from the metadata image at scrape time. Cluster-wide counts come from the active controller
only (0 elsewhere, so sums over nodes are right, as in Kafka); metadata lag from every node."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kraft.controller.image import MetadataImage
from kraft.metrics import ControllerMetrics, QuorumMetrics
from tests.unit.api.fakes import leader_status
from tests.unit.api.images import ImageBuilder, sample_builder
from tests.unit.api.test_metrics import scrape, value

PREFIX = "kafka_controller_kafkacontroller_"
GLOBAL_GAUGES = [
    PREFIX + "offlinepartitionscount",
    PREFIX + "fencedbrokercount",
    PREFIX + "activebrokercount",
    PREFIX + "globaltopiccount",
    PREFIX + "globalpartitioncount",
    PREFIX + "preferredreplicaimbalancecount",
]
COUNTERS = [
    "kafka_controller_controllerstats_leaderelections_total",
    "kafka_controller_controllerstats_uncleanleaderelections_total",
]


@dataclass
class Node:
    builder: ImageBuilder = field(default_factory=sample_builder)
    active: bool = True
    lag: int = 0
    counters: dict[str, int] = field(
        default_factory=lambda: {"leader_elections": 7, "unclean_leader_elections": 2}
    )

    def image(self) -> MetadataImage:
        return self.builder.image


def make(node: Node) -> CollectorRegistry:
    registry = CollectorRegistry()
    ControllerMetrics(
        registry, node.image, lambda: node.active, lambda: node.lag, lambda: node.counters
    )
    return registry


def test_the_active_controller_reports_the_clusters_counts() -> None:
    samples = scrape(make(Node()))

    # sample_builder: brokers 1, 2 live and 3 fenced; "orders" (3 partitions) and
    # "audit.log" (1 partition, leaderless).
    assert value(samples, PREFIX + "offlinepartitionscount") == 1
    assert value(samples, PREFIX + "fencedbrokercount") == 1
    assert value(samples, PREFIX + "activebrokercount") == 2
    assert value(samples, PREFIX + "globaltopiccount") == 2
    assert value(samples, PREFIX + "globalpartitioncount") == 4
    assert value(samples, PREFIX + "preferredreplicaimbalancecount") == 0
    assert value(samples, COUNTERS[0]) == 7
    assert value(samples, COUNTERS[1]) == 2


def test_other_nodes_report_zero_for_cluster_wide_series() -> None:
    samples = scrape(make(Node(active=False)))

    for name in GLOBAL_GAUGES + COUNTERS:
        assert value(samples, name) == 0, name


def test_a_partition_led_by_another_than_its_first_replica_is_imbalanced() -> None:
    builder = sample_builder()
    builder.topic("events", [(1, 2), (2, 1)], leaders={0: 2})

    samples = scrape(make(Node(builder=builder)))

    assert value(samples, PREFIX + "preferredreplicaimbalancecount") == 1


@pytest.mark.parametrize("active", [True, False])
def test_metadata_lag_and_applied_offset_are_reported_on_every_node(active: bool) -> None:
    node = Node(active=active, lag=5)

    samples = scrape(make(node))

    assert value(samples, "kraft_metadata_lag_records") == 5
    assert value(samples, "kraft_metadata_applied_offset") == node.image().applied_offset


def test_values_are_read_at_scrape_time() -> None:
    node = Node()
    registry = make(node)
    node.builder.topic("events", [(1,)])
    node.lag = 3

    samples = scrape(registry)

    assert value(samples, PREFIX + "globaltopiccount") == 3
    assert value(samples, "kraft_metadata_lag_records") == 3


def test_registration_reads_nothing_and_counters_are_optional() -> None:
    def unreadable() -> MetadataImage:
        raise AssertionError("read at registration")

    registry = CollectorRegistry()
    ControllerMetrics(registry, unreadable, lambda: True, lambda: 0)

    assert registry is not None


def test_with_quorum_metrics_activecontrollercount_is_exported_once() -> None:
    node = Node()
    registry = make(node)
    QuorumMetrics(registry, leader_status)

    text = generate_latest(registry).decode()

    names = [family.name for family in text_string_to_metric_families(text)]
    assert names.count(PREFIX + "activecontrollercount") == 1
    assert len(names) == len(set(names))
