"""Prometheus metrics of one broker's data plane (SPEC §6).

`BrokerMetrics` registers every series on a registry the node owns (never the global default
one, so that several nodes can live in one test process), in the style of kraft/metrics.py:

- Events the broker shell reports as they happen: produce and fetch latency
  (`kraft_produce_latency_seconds`, `kraft_fetch_latency_seconds`), records and bytes
  produced and bytes fetched by consumers (Kafka's `kafka_server_brokertopicmetrics_*`), ISR
  shrinks and expansions (`kafka_server_replicamanager_isr{shrinks,expands}_total`).
- Values read at scrape time from `partition_stats()`, the replicas this broker holds: per
  partition `kraft_partition_*{topic,partition}`, and the counts of Kafka's ReplicaManager
  under the names its JMX-exporter rules give them (`kafka_server_replicamanager_*`), so Kafka
  dashboards and alerts work unchanged.

The broker-topic counters come as Kafka's JMX exporter gives them: one series per topic with
a `topic` label, and the all-topics series without it. In one metric family the all-topics
series carries `topic=""`, which Prometheus treats as no label at all. Topics are few (each
one a few series), so the label keeps cardinality sane; a deleted topic's series stay until
the process restarts, as Kafka's do until its meters expire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from broker.api.facade import LocalPartitionStats

# A produce on one host takes well under a millisecond to append; acks=all adds a follower
# fetch round trip and fsync (milliseconds to hundreds of them); a fetch may long-poll for up
# to its max wait (seconds). Past 10 s a client has long timed out whatever the number.
LATENCY_BUCKETS_SECONDS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

KAFKA_REPLICA_MANAGER_PREFIX = "kafka_server_replicamanager_"
KAFKA_BROKER_TOPIC_PREFIX = "kafka_server_brokertopicmetrics_"
# The `topic` value of the all-topics series: empty, which Prometheus reads as no label.
ALL_TOPICS = ""


@dataclass(slots=True)
class _TopicTraffic:
    bytes_in: int = 0
    messages_in: int = 0
    bytes_out: int = 0


def under_replicated(stats: LocalPartitionStats) -> bool:
    """Kafka's UnderReplicated: a partition this broker leads whose ISR is smaller than its
    replica set (only the leader reports it, so a sum over brokers counts each once)."""
    return stats.is_leader and stats.isr_size < stats.replication_factor


def under_min_isr(stats: LocalPartitionStats) -> bool:
    """Kafka's UnderMinIsr: a led partition whose ISR is below min.insync.replicas, which
    refuses acks=all writes (NOT_ENOUGH_REPLICAS)."""
    return stats.is_leader and stats.isr_size < stats.min_insync_replicas


class _BrokerCollector:
    """Builds the scrape-time series from partition_stats() and the traffic counts."""

    def __init__(
        self,
        partition_stats: Callable[[], Sequence[LocalPartitionStats]],
        traffic: dict[str, _TopicTraffic],
    ) -> None:
        self._partition_stats = partition_stats
        self._traffic = traffic

    def describe(self) -> Iterable[Metric]:
        # Present so registration does not call partition_stats() before the broker started.
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        return self._families(self._partition_stats())

    def _families(self, stats: Sequence[LocalPartitionStats] | None) -> list[Metric]:
        families = self._partition_gauges(stats)
        families.extend(self._replica_manager_gauges(stats))
        families.extend(self._topic_counters())
        return families

    @staticmethod
    def _partition_gauges(stats: Sequence[LocalPartitionStats] | None) -> list[Metric]:
        readings: list[tuple[str, str, Callable[[LocalPartitionStats], float]]] = [
            (
                "kraft_partition_high_watermark",
                "Offset below which the partition's records are committed (consumers read "
                "up to it).",
                lambda s: s.high_watermark,
            ),
            (
                "kraft_partition_log_end_offset",
                "Offset the next record appended to this replica will take.",
                lambda s: s.log_end_offset,
            ),
            (
                "kraft_partition_log_start_offset",
                "First offset this replica still holds (older ones were removed by retention).",
                lambda s: s.log_start_offset,
            ),
            (
                "kraft_partition_size_bytes",
                "Bytes of this replica's log segments.",
                lambda s: s.size_bytes,
            ),
            (
                "kraft_partition_in_sync_replicas",
                "Size of the partition's ISR as this replica knows it.",
                lambda s: s.isr_size,
            ),
            (
                "kraft_partition_is_leader",
                "1 when this broker leads the partition, else 0.",
                lambda s: 1 if s.is_leader else 0,
            ),
        ]
        families: list[Metric] = []
        for name, documentation, read in readings:
            family = GaugeMetricFamily(name, documentation, labels=["topic", "partition"])
            for partition in stats or ():
                family.add_metric([partition.topic, str(partition.partition)], read(partition))
            families.append(family)
        return families

    @staticmethod
    def _replica_manager_gauges(stats: Sequence[LocalPartitionStats] | None) -> list[Metric]:
        def gauge(name: str, documentation: str, count: Callable[[], int]) -> Metric:
            family = GaugeMetricFamily(KAFKA_REPLICA_MANAGER_PREFIX + name, documentation)
            if stats is not None:
                family.add_metric([], count())
            return family

        partitions = stats or ()
        return [
            gauge(
                "underreplicatedpartitions",
                "Partitions this broker leads whose ISR is smaller than their replica set.",
                lambda: sum(1 for s in partitions if under_replicated(s)),
            ),
            gauge(
                "underminisrpartitioncount",
                "Partitions this broker leads whose ISR is below min.insync.replicas.",
                lambda: sum(1 for s in partitions if under_min_isr(s)),
            ),
            gauge(
                "leadercount",
                "Partitions this broker leads.",
                lambda: sum(1 for s in partitions if s.is_leader),
            ),
            gauge(
                "partitioncount",
                "Partition replicas on this broker, led or followed.",
                lambda: len(partitions),
            ),
        ]

    def _topic_counters(self) -> list[Metric]:
        readings: list[tuple[str, str, Callable[[_TopicTraffic], int]]] = [
            (
                "bytesin",
                "Bytes of records produced to partitions this broker leads (replication excluded).",
                lambda t: t.bytes_in,
            ),
            (
                "messagesin",
                "Records produced to partitions this broker leads.",
                lambda t: t.messages_in,
            ),
            (
                "bytesout",
                "Bytes of records fetched by consumers (replication excluded).",
                lambda t: t.bytes_out,
            ),
        ]
        families: list[Metric] = []
        for name, documentation, read in readings:
            family = CounterMetricFamily(
                KAFKA_BROKER_TOPIC_PREFIX + name, documentation, labels=["topic"]
            )
            family.add_metric([ALL_TOPICS], sum(read(t) for t in self._traffic.values()))
            for topic in sorted(self._traffic):
                family.add_metric([topic], read(self._traffic[topic]))
            families.append(family)
        return families


class BrokerMetrics:
    """The broker's data-plane series on `registry`.

    The shell calls:
    - `observe_produce_latency(seconds)` per produce request it serves as partition leader
      (from receipt to the answer, acks wait included);
    - `observe_fetch_latency(seconds)` per fetch request it serves (its wait included);
    - `count_produced(topic, records, size_bytes)` for records appended as leader from a
      produce (not from replication);
    - `count_fetched(topic, size_bytes)` for records returned to a consumer (not to a
      follower);
    - `on_isr_shrink()` / `on_isr_expand()` when an ISR change this broker asked for as leader
      is committed;
    - `on_log_cleaned(records_removed, bytes_reclaimed)` after each compaction pass.
    Gauges need no calls: they read `partition_stats()` at each scrape, so it must be cheap
    and safe to call at any time. Calls and scrapes run on the node's event loop.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        partition_stats: Callable[[], Sequence[LocalPartitionStats]],
    ) -> None:
        self._traffic: dict[str, _TopicTraffic] = {}
        self.produce_latency_seconds = Histogram(
            "kraft_produce_latency_seconds",
            "Time to serve a produce request as partition leader, the acks wait included.",
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=registry,
        )
        self.fetch_latency_seconds = Histogram(
            "kraft_fetch_latency_seconds",
            "Time to serve a fetch request, its wait for records included.",
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=registry,
        )
        self.isr_shrinks = Counter(
            KAFKA_REPLICA_MANAGER_PREFIX + "isrshrinks",
            "ISR shrinks of partitions this broker leads.",
            registry=registry,
        )
        self.isr_expands = Counter(
            KAFKA_REPLICA_MANAGER_PREFIX + "isrexpands",
            "ISR expansions of partitions this broker leads.",
            registry=registry,
        )
        self.cleaner_records_removed = Counter(
            "kraft_log_cleaner_records_removed",
            "Records the log cleaner removed from compacted partitions (a later record has "
            "their key, or they are tombstones past delete.retention.ms).",
            registry=registry,
        )
        self.cleaner_bytes_reclaimed = Counter(
            "kraft_log_cleaner_reclaimed_bytes",
            "Bytes of segment files the log cleaner's passes freed.",
            registry=registry,
        )
        self.cleaner_passes = Counter(
            "kraft_log_cleaner_passes",
            "Compaction passes the log cleaner completed.",
            registry=registry,
        )
        registry.register(_BrokerCollector(partition_stats, self._traffic))

    def observe_produce_latency(self, seconds: float) -> None:
        assert seconds >= 0, f"negative produce latency {seconds}"
        self.produce_latency_seconds.observe(seconds)

    def observe_fetch_latency(self, seconds: float) -> None:
        assert seconds >= 0, f"negative fetch latency {seconds}"
        self.fetch_latency_seconds.observe(seconds)

    def _topic(self, topic: str) -> _TopicTraffic:
        assert topic, "a topic name is never empty (the all-topics series uses '')"
        traffic = self._traffic.get(topic)
        if traffic is None:
            traffic = self._traffic[topic] = _TopicTraffic()
        return traffic

    def count_produced(self, topic: str, records: int, size_bytes: int) -> None:
        assert records >= 0, f"negative record count {records}"
        assert size_bytes >= 0, f"negative size {size_bytes}"
        traffic = self._topic(topic)
        traffic.messages_in += records
        traffic.bytes_in += size_bytes

    def count_fetched(self, topic: str, size_bytes: int) -> None:
        assert size_bytes >= 0, f"negative size {size_bytes}"
        self._topic(topic).bytes_out += size_bytes

    def on_isr_shrink(self) -> None:
        self.isr_shrinks.inc()

    def on_isr_expand(self) -> None:
        self.isr_expands.inc()

    def on_log_cleaned(self, records_removed: int, bytes_reclaimed: int) -> None:
        assert records_removed >= 0, f"negative records removed {records_removed}"
        self.cleaner_passes.inc()
        self.cleaner_records_removed.inc(records_removed)
        # a pass may grow a segment by a few bytes (a thinned compressed batch)
        self.cleaner_bytes_reclaimed.inc(max(0, bytes_reclaimed))
