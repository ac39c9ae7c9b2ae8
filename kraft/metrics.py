"""Prometheus metrics of one node's metadata quorum and controller (SPEC §6).

`QuorumMetrics` registers every series on a registry the node owns (never the global default
one, so that several nodes can live in one test process). Two kinds of series:

- Events the shell reports as they happen: commit latency, appends and their fsync time,
  role and leader changes. The shell calls `observe_commit_latency`, `observe_append` and
  `on_role_change`.
- Values read at scrape time from the core's `QuorumStatus` (and from the rpc layer's
  counters, if given): epoch, offsets, leader, role, under both our native `kraft_raft_*`
  names and the names Kafka's JMX-exporter rules give them (`kafka_server_raftmetrics_*`,
  `kafka_controller_kafkacontroller_activecontrollercount`), so Kafka dashboards work.

`ControllerMetrics` adds, read from the metadata image at scrape time, the controller's
series under Kafka's names (`kafka_controller_kafkacontroller_*`,
`kafka_controller_controllerstats_*`) and the metadata lag and applied offset of every node
(`kraft_metadata_*`).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from kraft.controller.image import MetadataImage
from kraft.raft.types import QuorumStatus, Role, RoleChange

# Commit latency on one host is well under a millisecond; across hosts and under fsync it
# reaches hundreds of milliseconds; past 2 s the quorum is in trouble whatever the number.
COMMIT_LATENCY_BUCKETS_SECONDS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
)  # fmt: skip
FSYNC_BUCKETS_SECONDS = COMMIT_LATENCY_BUCKETS_SECONDS

# Kafka's `commit-latency-avg` is an Avg over its default metric samples: 2 windows of 30 s
# (metrics.num.samples, metrics.sample.window.ms). We keep the same window, so the value is
# the average of the commits of the last 30 to 60 seconds, and NaN when there were none.
COMMIT_LATENCY_AVG_SAMPLE_WINDOW_SECONDS = 30.0
COMMIT_LATENCY_AVG_SAMPLES = 2


class CountersByName(Protocol):
    """Counters summed over peers by name, as kraft.rpc.TransportStats gives them."""

    def total(self, name: str) -> int: ...


# What the rpc stats callback returns: a mapping of counter name to value, or an object
# that sums a counter by name (kraft.rpc.TransportStats, not imported to keep metrics free
# of the rpc layer).
RpcStats = Mapping[str, int] | CountersByName

# Names the rpc stats callback must know, and the counters they feed.
RPC_STAT_COUNTERS = {
    "messages_sent": ("kraft_rpc_messages_sent", "Rpc messages handed to the network."),
    "messages_dropped": (
        "kraft_rpc_messages_dropped",
        "Rpc messages dropped (queue full, peer unreachable, encode error).",
    ),
    "reconnects": ("kraft_rpc_reconnects", "Connections to peers opened again after a loss."),
}


class WindowedAverage:
    """Average of the values recorded in the last `samples` windows, as Kafka's SampledStat.

    Memory is bounded: at most `samples` (start, sum, count) triples are kept.
    """

    def __init__(
        self,
        window_seconds: float,
        samples: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert window_seconds > 0, f"window of {window_seconds} s is not positive"
        assert samples >= 1, f"{samples} samples: need at least one"
        self._window_seconds = window_seconds
        self._clock = clock
        # Each sample: [start time, sum, count]; the newest last.
        self._samples: deque[list[float]] = deque(maxlen=samples)

    def record(self, value: float) -> None:
        now = self._clock()
        if not self._samples or now - self._samples[-1][0] >= self._window_seconds:
            self._samples.append([now, 0.0, 0.0])
        sample = self._samples[-1]
        sample[1] += value
        sample[2] += 1

    def value(self) -> float:
        """The average, or NaN when nothing was recorded in the window (as Kafka reports)."""
        now = self._clock()
        oldest_kept = now - self._window_seconds * (self._samples.maxlen or 1)
        total = 0.0
        count = 0.0
        for start, sample_sum, sample_count in self._samples:
            if start >= oldest_kept:
                total += sample_sum
                count += sample_count
        return total / count if count else math.nan


def current_vote(status: QuorumStatus) -> int:
    """Kafka's `current-vote`: the id this node votes for in the current epoch, else -1.

    As Kafka's KafkaRaftMetrics: a leader or candidate has voted for itself, a voted node for
    its candidate; every other state reports -1 (even a follower that voted for its leader).
    """
    if status.role in (Role.LEADER, Role.CANDIDATE):
        return status.node_id
    if status.role is Role.VOTED and status.voted_id is not None:
        return status.voted_id
    return -1


class _StatusCollector:
    """Builds the scrape-time series from the current QuorumStatus and rpc stats."""

    def __init__(
        self,
        status: Callable[[], QuorumStatus],
        rpc_stats: Callable[[], RpcStats] | None,
        commit_latency_avg_seconds: Callable[[], float],
    ) -> None:
        self._status = status
        self._rpc_stats = rpc_stats
        self._commit_latency_avg_seconds = commit_latency_avg_seconds

    def describe(self) -> Iterable[Metric]:
        # Present so registration does not call status() before the node has started.
        return self._families(None, None)

    def collect(self) -> Iterable[Metric]:
        stats = self._rpc_stats() if self._rpc_stats is not None else None
        return self._families(self._status(), stats)

    def _families(self, status: QuorumStatus | None, rpc_stats: RpcStats | None) -> list[Metric]:
        families: list[Metric] = []
        families.extend(self._native_gauges(status))
        families.extend(self._kafka_gauges(status))
        if self._rpc_stats is not None:
            families.extend(self._rpc_counters(rpc_stats))
        return families

    @staticmethod
    def _gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, documentation)
        if value is not None:
            family.add_metric([], value)
        return family

    def _native_gauges(self, status: QuorumStatus | None) -> list[Metric]:
        def value_of(read: Callable[[QuorumStatus], float]) -> float | None:
            return None if status is None else read(status)

        return [
            self._gauge("kraft_raft_epoch", "Current epoch.", value_of(lambda s: s.epoch)),
            self._gauge(
                "kraft_raft_high_watermark",
                "Offset below which the metadata log is committed.",
                value_of(lambda s: s.high_watermark),
            ),
            self._gauge(
                "kraft_raft_log_end_offset",
                "Offset the next metadata log entry will take on this node.",
                value_of(lambda s: s.log_end_offset),
            ),
            self._gauge(
                "kraft_raft_log_start_offset",
                "First offset of the metadata log still held (the rest is in a snapshot).",
                value_of(lambda s: s.log_start_offset),
            ),
            self._gauge(
                "kraft_raft_leader_id",
                "Id of the known leader, -1 when none is known.",
                value_of(lambda s: -1 if s.leader_id is None else s.leader_id),
            ),
            self._gauge(
                "kraft_raft_is_leader",
                "1 when this node is the quorum leader, else 0.",
                value_of(lambda s: 1 if s.role is Role.LEADER else 0),
            ),
        ]

    def _kafka_gauges(self, status: QuorumStatus | None) -> list[Metric]:
        def value_of(read: Callable[[QuorumStatus], float]) -> float | None:
            return None if status is None else read(status)

        prefix = "kafka_server_raftmetrics_"
        average = None if status is None else self._commit_latency_avg_seconds() * 1000.0
        families: list[Metric] = [
            self._gauge(
                prefix + "current_leader",
                "Id of the known leader, -1 when none is known.",
                value_of(lambda s: -1 if s.leader_id is None else s.leader_id),
            ),
            self._gauge(prefix + "current_epoch", "Current epoch.", value_of(lambda s: s.epoch)),
            self._gauge(
                prefix + "current_vote",
                "Id this node voted for in the current epoch, -1 when none.",
                value_of(current_vote),
            ),
            self._gauge(
                prefix + "high_watermark",
                "High watermark of the metadata log.",
                value_of(lambda s: s.high_watermark),
            ),
            self._gauge(
                prefix + "log_end_offset",
                "Log end offset of the metadata log on this node.",
                value_of(lambda s: s.log_end_offset),
            ),
            self._gauge(
                prefix + "commit_latency_avg",
                "Average commit latency in milliseconds over the last 30 to 60 s (NaN if none).",
                average,
            ),
            self._current_state(status),
            self._gauge(
                "kafka_controller_kafkacontroller_activecontrollercount",
                "1 on the active controller (the quorum leader), else 0.",
                value_of(lambda s: 1 if s.role is Role.LEADER else 0),
            ),
        ]
        return families

    @staticmethod
    def _current_state(status: QuorumStatus | None) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "kafka_server_raftmetrics_current_state",
            "1 for the current state of this node in the quorum, 0 for the others.",
            labels=["current_state"],
        )
        if status is not None:
            for role in Role:
                family.add_metric([role.value], 1 if role is status.role else 0)
        return family

    @staticmethod
    def _rpc_counters(rpc_stats: RpcStats | None) -> list[Metric]:
        families: list[Metric] = []
        for key, (name, documentation) in RPC_STAT_COUNTERS.items():
            family = CounterMetricFamily(name, documentation)
            if isinstance(rpc_stats, Mapping):
                family.add_metric([], rpc_stats.get(key, 0))
            elif rpc_stats is not None:
                family.add_metric([], rpc_stats.total(key))
            families.append(family)
        return families


class QuorumMetrics:
    """The metadata quorum's series on `registry`.

    The shell calls:
    - `on_role_change(change)` for every RoleChange a Ready carries;
    - `observe_append(entries, fsync_seconds)` after each append+fsync of the metadata log;
    - `observe_commit_latency(seconds)` when a proposal it made commits (from propose to the
      high watermark passing it).
    Gauges need no calls: they read `status()` (and `rpc_stats()`) at each scrape, from the
    scraping thread or task, so both callables must be cheap and safe to call at any time.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        status: Callable[[], QuorumStatus],
        rpc_stats: Callable[[], RpcStats] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._commit_latency_avg = WindowedAverage(
            COMMIT_LATENCY_AVG_SAMPLE_WINDOW_SECONDS, COMMIT_LATENCY_AVG_SAMPLES, clock
        )
        # Leader of the last (epoch, leader) counted as a leader change.
        self._last_counted_leader: tuple[int, int] | None = None
        self.commit_latency_seconds = Histogram(
            "kraft_raft_commit_latency_seconds",
            "Time from proposing metadata records to their commit.",
            buckets=COMMIT_LATENCY_BUCKETS_SECONDS,
            registry=registry,
        )
        self.leader_changes = Counter(
            "kraft_raft_leader_changes",
            "Times this node learnt of a new leader (a leader of a new epoch).",
            registry=registry,
        )
        self.role_changes = Counter(
            "kraft_raft_role_changes",
            "Role transitions of this node, by the role it took.",
            labelnames=["to_role"],
            registry=registry,
        )
        for role in Role:
            # Every series exists from the start, so rate() sees the first transition.
            self.role_changes.labels(to_role=role.value)
        self.append_entries = Counter(
            "kraft_raft_append_entries",
            "Entries appended to the metadata log of this node.",
            registry=registry,
        )
        self.append_batches = Counter(
            "kraft_raft_append_batches",
            "Appends (each followed by one fsync) to the metadata log of this node.",
            registry=registry,
        )
        self.fsync_seconds = Histogram(
            "kraft_raft_fsync_seconds",
            "Time of each fsync of the metadata log.",
            buckets=FSYNC_BUCKETS_SECONDS,
            registry=registry,
        )
        registry.register(_StatusCollector(status, rpc_stats, self._commit_latency_avg.value))

    def observe_commit_latency(self, seconds: float) -> None:
        assert seconds >= 0, f"negative commit latency {seconds}"
        self.commit_latency_seconds.observe(seconds)
        self._commit_latency_avg.record(seconds)

    def observe_append(self, entries: int, fsync_seconds: float) -> None:
        assert entries >= 0, f"negative entry count {entries}"
        assert fsync_seconds >= 0, f"negative fsync time {fsync_seconds}"
        self.append_entries.inc(entries)
        self.append_batches.inc()
        self.fsync_seconds.observe(fsync_seconds)

    def on_role_change(self, change: RoleChange) -> None:
        """Counts the transition, and a leader change when it names a leader not yet counted.

        A leader change is a (epoch, leader) pair this node had not known: it counts each
        election won, also when the same node wins again in a later epoch, and never counts
        the loss of a leader by itself.
        """
        self.role_changes.labels(to_role=change.to_role.value).inc()
        if change.leader_id is None:
            return
        leader = (change.epoch, change.leader_id)
        if leader != self._last_counted_leader:
            self._last_counted_leader = leader
            self.leader_changes.inc()


# --- the controller (SPEC §6) ------------------------------------------------------------------

# Names of Kafka's JMX-exporter rules for the controller's MBeans.
KAFKA_CONTROLLER_PREFIX = "kafka_controller_kafkacontroller_"
KAFKA_CONTROLLER_STATS_PREFIX = "kafka_controller_controllerstats_"
# What the counters callback must name, and the Kafka counter each feeds.
CONTROLLER_COUNTERS = {
    "leader_elections": (
        KAFKA_CONTROLLER_STATS_PREFIX + "leaderelections",
        "Partition leader elections decided by this node as active controller.",
    ),
    "unclean_leader_elections": (
        KAFKA_CONTROLLER_STATS_PREFIX + "uncleanleaderelections",
        "Partition leaders elected from outside the ISR by this node as active controller.",
    ),
}


def preferred_replica_imbalance(image: MetadataImage) -> int:
    """Partitions led by a replica other than their preferred (first) one, as Kafka's
    PreferredReplicaImbalanceCount; a partition without a leader is offline, not imbalanced."""
    return sum(
        1
        for topic in image.topics_by_id.values()
        for partition in topic.partitions.values()
        if partition.has_leader and partition.leader != partition.preferred_leader
    )


class _ControllerCollector:
    """Builds the controller's series from the image at each scrape."""

    def __init__(
        self,
        image: Callable[[], MetadataImage],
        is_active: Callable[[], bool],
        metadata_lag: Callable[[], int],
        counters: Callable[[], Mapping[str, int]] | None,
    ) -> None:
        self._image = image
        self._is_active = is_active
        self._metadata_lag = metadata_lag
        self._counters = counters

    def describe(self) -> Iterable[Metric]:
        # Present so registration does not read the image before the node has started.
        return self._families(None, False, None, {})

    def collect(self) -> Iterable[Metric]:
        active = self._is_active()
        counters = self._counters() if self._counters is not None and active else {}
        return self._families(self._image(), active, self._metadata_lag(), counters)

    def _families(
        self,
        image: MetadataImage | None,
        active: bool,
        lag: int | None,
        counters: Mapping[str, int],
    ) -> list[Metric]:
        gauge = _StatusCollector._gauge
        families: list[Metric] = [
            gauge(
                "kraft_metadata_lag_records",
                "Committed metadata records this node has not applied yet.",
                lag,
            ),
            gauge(
                "kraft_metadata_applied_offset",
                "Offset of the last metadata record applied to this node's image.",
                None if image is None else image.applied_offset,
            ),
        ]
        families.extend(self._global_gauges(image, active))
        for key, (name, documentation) in CONTROLLER_COUNTERS.items():
            family = CounterMetricFamily(name, documentation)
            if image is not None:
                family.add_metric([], counters.get(key, 0))
            families.append(family)
        return families

    @staticmethod
    def _global_gauges(image: MetadataImage | None, active: bool) -> list[Metric]:
        """Cluster-wide counts: the active controller reports them, every other node 0, as
        Kafka does, so that a sum over nodes is the cluster's value."""

        def value_of(read: Callable[[MetadataImage], int]) -> int | None:
            if image is None:
                return None
            return read(image) if active else 0

        gauge = _StatusCollector._gauge
        prefix = KAFKA_CONTROLLER_PREFIX
        return [
            gauge(
                prefix + "offlinepartitionscount",
                "Partitions without a leader (active controller only, else 0).",
                value_of(lambda i: len(i.offline_partitions())),
            ),
            gauge(
                prefix + "fencedbrokercount",
                "Registered brokers that are fenced (active controller only, else 0).",
                value_of(lambda i: len(i.fenced_brokers())),
            ),
            gauge(
                prefix + "activebrokercount",
                "Registered brokers that are not fenced (active controller only, else 0).",
                value_of(lambda i: sum(1 for b in i.brokers.values() if not b.fenced)),
            ),
            gauge(
                prefix + "globaltopiccount",
                "Topics in the cluster (active controller only, else 0).",
                value_of(lambda i: len(i.topics_by_id)),
            ),
            gauge(
                prefix + "globalpartitioncount",
                "Partitions in the cluster (active controller only, else 0).",
                value_of(lambda i: i.partition_count()),
            ),
            gauge(
                prefix + "preferredreplicaimbalancecount",
                "Partitions not led by their preferred replica (active controller only, else 0).",
                value_of(preferred_replica_imbalance),
            ),
        ]


class ControllerMetrics:
    """The controller's series on `registry`, all computed at scrape time.

    - `image()`: this node's metadata image (read only);
    - `is_active()`: True on the active controller (the quorum leader);
    - `metadata_lag()`: committed metadata records not applied here yet;
    - `counters()`: the active controller's election counters by name ("leader_elections",
      "unclean_leader_elections"); read only while `is_active()`, else reported as 0.

    `kafka_controller_kafkacontroller_activecontrollercount` is QuorumMetrics's; this class
    does not export it again. All callables must be cheap and safe to call at any time.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        image: Callable[[], MetadataImage],
        is_active: Callable[[], bool],
        metadata_lag: Callable[[], int],
        counters: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        registry.register(_ControllerCollector(image, is_active, metadata_lag, counters))
