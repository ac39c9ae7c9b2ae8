"""QuorumMetrics: SPEC §6 series, native and under Kafka's JMX-exporter names, parsed back
from the text exposition that `/metrics` serves."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from kraft.metrics import QuorumMetrics, WindowedAverage
from kraft.raft.types import QuorumStatus, Role, RoleChange
from tests.unit.api.fakes import leader_status

NATIVE_GAUGES = {
    "kraft_raft_epoch",
    "kraft_raft_high_watermark",
    "kraft_raft_log_end_offset",
    "kraft_raft_log_start_offset",
    "kraft_raft_leader_id",
    "kraft_raft_is_leader",
}
NATIVE_COUNTERS = {
    "kraft_raft_leader_changes_total",
    "kraft_raft_append_entries_total",
    "kraft_raft_append_batches_total",
    "kraft_rpc_messages_sent_total",
    "kraft_rpc_messages_dropped_total",
    "kraft_rpc_reconnects_total",
}
KAFKA_GAUGES = {
    "kafka_server_raftmetrics_current_leader",
    "kafka_server_raftmetrics_current_epoch",
    "kafka_server_raftmetrics_current_vote",
    "kafka_server_raftmetrics_high_watermark",
    "kafka_server_raftmetrics_log_end_offset",
    "kafka_server_raftmetrics_commit_latency_avg",
    "kafka_controller_kafkacontroller_activecontrollercount",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Node:
    """What a node hands QuorumMetrics: a status it may change, rpc counters."""

    def __init__(self, status: QuorumStatus) -> None:
        self.status = status
        self.rpc = {"messages_sent": 40, "messages_dropped": 2, "reconnects": 1}


def scrape(registry: CollectorRegistry) -> list[Sample]:
    text = generate_latest(registry).decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def make(status: QuorumStatus) -> tuple[Node, QuorumMetrics, CollectorRegistry, Clock]:
    node = Node(status)
    registry = CollectorRegistry()
    clock = Clock()
    metrics = QuorumMetrics(registry, lambda: node.status, lambda: node.rpc, clock=clock)
    return node, metrics, registry, clock


def test_exposition_holds_every_spec_raft_series() -> None:
    _, metrics, registry, _ = make(leader_status())
    metrics.observe_commit_latency(0.002)

    names = {sample.name for sample in scrape(registry)}

    assert names >= NATIVE_GAUGES
    assert names >= NATIVE_COUNTERS
    assert names >= KAFKA_GAUGES
    assert "kafka_server_raftmetrics_current_state" in names
    for histogram in ("kraft_raft_commit_latency_seconds", "kraft_raft_fsync_seconds"):
        assert {histogram + "_bucket", histogram + "_sum", histogram + "_count"} <= names


def test_every_counter_ends_in_total() -> None:
    _, _, registry, _ = make(leader_status())
    text = generate_latest(registry).decode()

    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            counted = [s.name for s in family.samples if not s.name.endswith("_created")]
            assert counted, family.name
            assert all(name.endswith("_total") for name in counted), counted


def test_status_gauges_are_read_at_scrape_time() -> None:
    node, _, registry, _ = make(leader_status())
    node.status = leader_status(
        role=Role.FOLLOWER, epoch=8, leader_id=2, voted_id=2, high_watermark=140,
        log_end_offset=141, log_start_offset=9,
    )  # fmt: skip

    samples = scrape(registry)

    assert value(samples, "kraft_raft_epoch") == 8
    assert value(samples, "kraft_raft_high_watermark") == 140
    assert value(samples, "kraft_raft_log_end_offset") == 141
    assert value(samples, "kraft_raft_log_start_offset") == 9
    assert value(samples, "kraft_raft_leader_id") == 2
    assert value(samples, "kraft_raft_is_leader") == 0
    assert value(samples, "kafka_server_raftmetrics_current_leader") == 2
    assert value(samples, "kafka_server_raftmetrics_current_epoch") == 8
    assert value(samples, "kafka_server_raftmetrics_high_watermark") == 140
    assert value(samples, "kafka_server_raftmetrics_log_end_offset") == 141
    assert value(samples, "kafka_controller_kafkacontroller_activecontrollercount") == 0


def test_leader_reports_itself_as_active_controller() -> None:
    _, _, registry, _ = make(leader_status())

    samples = scrape(registry)

    assert value(samples, "kraft_raft_is_leader") == 1
    assert value(samples, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert value(samples, "kafka_server_raftmetrics_current_vote") == 1


def test_unknown_leader_and_no_vote_are_minus_one() -> None:
    _, _, registry, _ = make(leader_status(role=Role.UNATTACHED, leader_id=None, voted_id=None))

    samples = scrape(registry)

    assert value(samples, "kraft_raft_leader_id") == -1
    assert value(samples, "kafka_server_raftmetrics_current_leader") == -1
    assert value(samples, "kafka_server_raftmetrics_current_vote") == -1


def test_current_vote_of_a_voted_node_is_its_candidate() -> None:
    """Kafka's KafkaRaftMetrics current-vote: the voted id in the Voted state."""
    _, _, registry, _ = make(leader_status(role=Role.VOTED, leader_id=None, voted_id=3))

    assert value(scrape(registry), "kafka_server_raftmetrics_current_vote") == 3


def test_current_state_is_one_for_the_role_and_zero_for_every_other() -> None:
    _, _, registry, _ = make(leader_status(role=Role.CANDIDATE, leader_id=None))
    samples = scrape(registry)

    states = {
        s.labels["current_state"]: s.value
        for s in samples
        if s.name == "kafka_server_raftmetrics_current_state"
    }

    assert states == {
        "leader": 0, "follower": 0, "candidate": 1, "voted": 0,
        "unattached": 0, "prospective": 0, "resigned": 0, "observer": 0,
    }  # fmt: skip


def test_rpc_stats_are_exported_as_counters() -> None:
    _, _, registry, _ = make(leader_status())

    samples = scrape(registry)

    assert value(samples, "kraft_rpc_messages_sent_total") == 40
    assert value(samples, "kraft_rpc_messages_dropped_total") == 2
    assert value(samples, "kraft_rpc_reconnects_total") == 1


def test_rpc_counters_are_absent_without_an_rpc_stats_callback() -> None:
    registry = CollectorRegistry()
    QuorumMetrics(registry, leader_status)

    names = {sample.name for sample in scrape(registry)}

    assert not any(name.startswith("kraft_rpc_") for name in names)


def test_registration_does_not_read_the_status() -> None:
    """A node registers its metrics before its core runs."""

    def status() -> QuorumStatus:
        raise AssertionError("status read at registration")

    QuorumMetrics(CollectorRegistry(), status)


def test_two_nodes_in_one_process_have_separate_series() -> None:
    _, first, first_registry, _ = make(leader_status())
    _, _, second_registry, _ = make(leader_status(node_id=2, role=Role.FOLLOWER))
    first.observe_append(entries=3, fsync_seconds=0.001)

    assert value(scrape(first_registry), "kraft_raft_append_entries_total") == 3
    assert value(scrape(second_registry), "kraft_raft_append_entries_total") == 0


def test_observe_append_counts_entries_batches_and_fsync_time() -> None:
    _, metrics, registry, _ = make(leader_status())

    metrics.observe_append(entries=5, fsync_seconds=0.004)
    metrics.observe_append(entries=2, fsync_seconds=0.006)
    samples = scrape(registry)

    assert value(samples, "kraft_raft_append_entries_total") == 7
    assert value(samples, "kraft_raft_append_batches_total") == 2
    assert value(samples, "kraft_raft_fsync_seconds_count") == 2
    assert math.isclose(value(samples, "kraft_raft_fsync_seconds_sum"), 0.010)
    assert value(samples, "kraft_raft_fsync_seconds_bucket", le="0.005") == 1


def test_commit_latency_histogram_spans_a_tenth_of_a_millisecond_to_two_seconds() -> None:
    _, metrics, registry, _ = make(leader_status())

    metrics.observe_commit_latency(0.00005)
    metrics.observe_commit_latency(1.5)
    samples = scrape(registry)

    assert value(samples, "kraft_raft_commit_latency_seconds_bucket", le="0.0001") == 1
    assert value(samples, "kraft_raft_commit_latency_seconds_bucket", le="1.0") == 1
    assert value(samples, "kraft_raft_commit_latency_seconds_bucket", le="2.0") == 2
    assert value(samples, "kraft_raft_commit_latency_seconds_count") == 2


def test_commit_latency_avg_is_milliseconds_over_the_recent_window() -> None:
    _, metrics, registry, clock = make(leader_status())
    assert math.isnan(value(scrape(registry), "kafka_server_raftmetrics_commit_latency_avg"))

    metrics.observe_commit_latency(0.010)
    clock.now += 31
    metrics.observe_commit_latency(0.020)

    assert math.isclose(value(scrape(registry), "kafka_server_raftmetrics_commit_latency_avg"), 15)
    clock.now += 31  # the first sample has left the 60 s window
    assert math.isclose(value(scrape(registry), "kafka_server_raftmetrics_commit_latency_avg"), 20)
    clock.now += 60
    assert math.isnan(value(scrape(registry), "kafka_server_raftmetrics_commit_latency_avg"))


def test_windowed_average_keeps_a_bounded_number_of_samples() -> None:
    clock = Clock()
    average = WindowedAverage(window_seconds=1.0, samples=2, clock=clock)

    for step in range(100):
        average.record(float(step))
        clock.now += 0.5

    # Samples are the last two windows: values 96, 97 (window from t=48) and 98, 99.
    assert math.isclose(average.value(), (96 + 97 + 98 + 99) / 4)


def change(to_role: Role, epoch: int, leader_id: int | None) -> RoleChange:
    return RoleChange(Role.UNATTACHED, to_role, epoch, leader_id, reason="test")


def test_role_changes_are_counted_by_the_role_taken() -> None:
    _, metrics, registry, _ = make(leader_status())

    metrics.on_role_change(change(Role.CANDIDATE, 3, None))
    metrics.on_role_change(change(Role.LEADER, 3, 1))
    metrics.on_role_change(change(Role.CANDIDATE, 4, None))
    samples = scrape(registry)

    assert value(samples, "kraft_raft_role_changes_total", to_role="candidate") == 2
    assert value(samples, "kraft_raft_role_changes_total", to_role="leader") == 1
    assert value(samples, "kraft_raft_role_changes_total", to_role="follower") == 0


def test_leader_changes_count_each_new_leader_not_its_loss() -> None:
    _, metrics, registry, _ = make(leader_status())

    metrics.on_role_change(change(Role.FOLLOWER, 3, 2))  # learns leader 2: one
    metrics.on_role_change(change(Role.OBSERVER, 3, 2))  # same leader, same epoch
    metrics.on_role_change(change(Role.UNATTACHED, 4, None))  # leader lost: not a change
    metrics.on_role_change(change(Role.FOLLOWER, 4, 3))  # leader 3: two
    metrics.on_role_change(change(Role.UNATTACHED, 5, None))
    metrics.on_role_change(change(Role.FOLLOWER, 5, 3))  # 3 re-elected in epoch 5: three

    assert value(scrape(registry), "kraft_raft_leader_changes_total") == 3


def test_rpc_stats_may_be_counters_summed_by_name() -> None:
    """kraft.rpc.TransportStats sums each counter over peers with total(name)."""

    class PerPeer:
        def total(self, name: str) -> int:
            return {"messages_sent": 7, "messages_dropped": 1, "reconnects": 0}[name]

    registry = CollectorRegistry()
    QuorumMetrics(registry, leader_status, PerPeer)
    samples = scrape(registry)

    assert value(samples, "kraft_rpc_messages_sent_total") == 7
    assert value(samples, "kraft_rpc_messages_dropped_total") == 1
    assert value(samples, "kraft_rpc_reconnects_total") == 0
