"""Prometheus metrics of one node's metadata quorum (SPEC §6).

`QuorumMetrics` registers every series on a registry the node owns (never the global default
one, so that several nodes can live in one test process). Two kinds of series:

- Events the shell reports as they happen: commit latency, appends and their fsync time,
  role and leader changes. The shell calls `observe_commit_latency`, `observe_append` and
  `on_role_change`.
- Values read at scrape time from the core's `QuorumStatus` (and from the rpc layer's
  counters, if given): epoch, offsets, leader, role, under both our native `kraft_raft_*`
  names and the names Kafka's JMX-exporter rules give them (`kafka_server_raftmetrics_*`,
  `kafka_controller_kafkacontroller_activecontrollercount`), so Kafka dashboards work.
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
