"""The cluster through the Kafka wire protocol, measured with confluent-kafka (librdkafka, a C
client, so the client is not the bottleneck), against three combined node processes on
loopback; an RF=3 topic, --record-bytes records (1 KiB by default).

Phases, in this order, each printed as it ends:
- end-to-end latency at a fixed rate (--rate records/s, acks=all, linger.ms=0): the send
  time (wall clock, ns) is in each record's value, a consumer assigned at the end of every
  partition reads it; p50/p99/max from send to receipt, and from send to acknowledgement,
  of the records sent after --warmup-seconds (2) at the same rate.
  First, on a quiet cluster: after the throughput phases the nodes' page cache writes
  gigabytes back to the disk, which would be measured too;
- produce throughput, acks=all: one Producer sends keyless records as fast as its queue
  takes them for --seconds, then flushes; records/s and MB/s of acknowledged records. Once
  with librdkafka's default batching, once with linger.ms=5 and batch.size=1 MiB;
- consume throughput: one Consumer reads every partition from the start to the high
  watermark (assigned; with --group it subscribes in a fresh consumer group instead);
  records/s and MB/s from the first record on, and the time to it (the group's join) apart;
  the consumer uses fetch.queue.backoff.ms=10 (CONSUME_PHASE_CONSUMER), --consumer-config
  sets others;
- idle: nothing sent for --seconds; the CPU the three nodes use while they only keep the
  quorum, the brokers' heartbeats and the replication long polls going (not by default).
Each phase also prints the CPU time the three node processes used during it.

    .venv/bin/python bench/kafka_bench.py [--seconds 10] [--record-bytes 1024] [--rate 1000]
        [--latency-linger-ms 0] [--latency-without-consumer] [--partitions 3] [--group]
        [--phases latency,produce,consume,idle] [--fill-records N] [--partition-fetch-bytes B]
        [--min-insync-replicas N] [--node-config KEY=VALUE ...] [--warmup-seconds 2]
        [--consumer-config KEY=VALUE ...] [--latency-runs 1]

(--phases consume alone first writes --fill-records records, untimed, then reads them.)

Benchmarks never assert: every figure is printed, errors are counted and printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import confluent_kafka
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster.dataplane import (  # noqa: E402
    create_topic,
    wait_for_partition,
    wait_until_ready,
)
from tests.cluster.harness import LocalCluster  # noqa: E402

TOPIC = "kafka-bench"
LATENCY_TOPIC = "kafka-bench-latency"
PHASES = ("latency", "produce", "consume", "idle")
DEFAULT_PHASES = ("latency", "produce", "consume")
# How long a flush or the end of a phase may take before the benchmark gives up on it
DRAIN_DEADLINE_S = 120.0
POLL_TIMEOUT_S = 0.5
CONSUME_BATCH = 10_000
GROUP_JOIN_DEADLINE_S = 30.0
# librdkafka's default linger (5 ms since 1.9) would add itself to every latency sample;
# --latency-linger-ms sets another
LATENCY_LINGER_MS = 0
# Connections, metadata and the consumer's first fetches settle in the first second
WARMUP_S = 2.0
# librdkafka postpones a partition's next fetch by fetch.queue.backoff.ms (1,000 ms) once its
# prefetch queue holds queued.min.messages: the consumer then idles for a second at a time and
# measures its own backoff (95-118 MB/s against 600-900 MB/s with 10 ms, same cluster). The
# consume phase sets 10 ms; --consumer-config fetch.queue.backoff.ms=1000 measures the default.
CONSUME_PHASE_CONSUMER = {"fetch.queue.backoff.ms": "10"}
SECOND_BATCHING = {"linger.ms": 5, "batch.size": 1024 * 1024}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def bootstrap(cluster: LocalCluster) -> str:
    return ",".join(f"127.0.0.1:{node.client_port}" for node in cluster.nodes.values())


class Deliveries:
    """Counts acknowledged and failed records (librdkafka's delivery reports)."""

    def __init__(self) -> None:
        self.acknowledged = 0
        self.failed = 0
        self.first_error: object = None

    def __call__(self, error: object, message: object) -> None:
        if error is None:
            self.acknowledged += 1
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = error


class TimedDeliveries(Deliveries):
    """Also the milliseconds from each send (the ns timestamp in the value) to its
    acknowledgement, for records sent from `measured_from_ns` on (warm-up records are
    counted, not timed)."""

    def __init__(self) -> None:
        super().__init__()
        self.latencies_ms: list[float] = []
        self.measured_from_ns = sys.maxsize  # set when the first measured record is sent

    def __call__(self, error: object, message: Any) -> None:
        super().__call__(error, message)
        if error is None:
            sent_ns = int.from_bytes(message.value()[:8], "big")
            if sent_ns >= self.measured_from_ns:
                self.latencies_ms.append((time.time_ns() - sent_ns) / 1e6)


def produce_throughput(
    cluster: LocalCluster,
    seconds: float,
    record_bytes: int,
    extra: dict[str, Any],
    max_records: int | None = None,
) -> tuple[Deliveries, float]:
    """Sends for `seconds` or until `max_records` are sent, whichever comes first."""
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap(cluster), "acks": "all", **extra}
    )
    value = b"x" * record_bytes
    deliveries = Deliveries()
    produce = producer.produce
    left_to_send = sys.maxsize if max_records is None else max_records
    started = time.perf_counter()
    stop = started + seconds
    while time.perf_counter() < stop and left_to_send > 0:
        for _ in range(min(1000, left_to_send)):
            try:
                produce(TOPIC, value, on_delivery=deliveries)
                left_to_send -= 1
            except BufferError:  # the local queue is full: serve delivery reports, go on
                producer.poll(0.005)
        producer.poll(0)
    left = producer.flush(DRAIN_DEADLINE_S)
    elapsed = time.perf_counter() - started
    if left:
        print(f"  ({left} records still unacknowledged after the flush deadline)")
    return deliveries, elapsed


def end_to_end_latency(
    cluster: LocalCluster,
    rate: int,
    seconds: float,
    record_bytes: int,
    partitions: int,
    linger_ms: float,
    with_consumer: bool = True,
    warmup_seconds: float = 0.0,
) -> tuple[list[tuple[int, float]], TimedDeliveries]:
    """(send time in ns, milliseconds from the send to the consumer's receipt) for every
    record sent after the warm-up (none without the consumer), and the producer's deliveries
    with their own latencies. The warm-up sends at the same rate first, so connections,
    metadata and the consumer's first fetches are not measured."""
    warmup = int(rate * warmup_seconds)
    total = warmup + int(rate * seconds)
    samples: list[tuple[int, float]] = []
    done = threading.Event()
    reader = None
    if with_consumer:
        reader = LatencyReader(cluster, partitions, total, samples, done)
        reader.start()
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap(cluster), "acks": "all", "linger.ms": linger_ms}
    )
    deliveries = TimedDeliveries()
    padding = b"y" * max(0, record_bytes - 8)
    interval = 1 / rate
    started = time.perf_counter()
    try:
        for n in range(total):
            due = started + n * interval
            wait_until(due, producer)
            sent_ns = time.time_ns()
            if n == warmup:
                deliveries.measured_from_ns = sent_ns
            producer.produce(
                LATENCY_TOPIC, sent_ns.to_bytes(8, "big") + padding, on_delivery=deliveries
            )
            producer.poll(0)
        producer.flush(DRAIN_DEADLINE_S)
        if reader is not None:
            reader.join(DRAIN_DEADLINE_S)
    finally:
        done.set()
        if reader is not None:
            reader.join()
    measured = [(sent, ms) for sent, ms in samples if sent >= deliveries.measured_from_ns]
    return measured, deliveries


class LatencyReader(threading.Thread):
    """A consumer assigned at the end of every partition of the latency topic; appends each
    record's send time (the ns timestamp in its value) and the milliseconds to its receipt."""

    def __init__(
        self,
        cluster: LocalCluster,
        partitions: int,
        total: int,
        samples: list[tuple[int, float]],
        done: threading.Event,
    ) -> None:
        super().__init__(name="latency-consumer")
        self.total = total
        self.samples = samples
        self.done = done
        self.consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": bootstrap(cluster),
                "group.id": "kafka-bench-assign",  # required by the client; no group is used
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 500,
            }
        )
        # start at each partition's high watermark, so every record read is one sent later
        self.consumer.assign(
            [
                confluent_kafka.TopicPartition(
                    LATENCY_TOPIC, p, high_watermark(self.consumer, LATENCY_TOPIC, p)
                )
                for p in range(partitions)
            ]
        )

    def run(self) -> None:
        try:
            give_up_at = time.monotonic() + DRAIN_DEADLINE_S
            while len(self.samples) < self.total and not self.done.is_set():
                if time.monotonic() > give_up_at:
                    break
                # poll, not consume(n): consume waits for n records or its timeout
                message = self.consumer.poll(POLL_TIMEOUT_S)
                received_ns = time.time_ns()
                if message is not None and message.error() is None:
                    sent_ns = int.from_bytes(message.value()[:8], "big")
                    self.samples.append((sent_ns, (received_ns - sent_ns) / 1e6))
        finally:
            self.consumer.close()


def wait_until(due: float, producer: Any) -> None:
    """Serves delivery reports until `due` (perf_counter). librdkafka's poll takes whole
    milliseconds (poll(0.0004) returns at once): the last fraction is slept, not spun, so
    the benchmark does not burn a core the brokers need."""
    while (delay := due - time.perf_counter()) > 0:
        if delay >= 0.001:
            producer.poll(int(delay * 1000) / 1000)
        else:
            time.sleep(delay)


def high_watermark(consumer: Any, topic: str, partition: int) -> int:
    tp = confluent_kafka.TopicPartition(topic, partition)
    return int(consumer.get_watermark_offsets(tp, timeout=30)[1])


@dataclasses.dataclass(frozen=True)
class ConsumeRun:
    records: int
    size_bytes: int
    elapsed_s: float  # from the subscription (or assignment) to the last record
    joined_s: float  # from the subscription to the first record: the group's join, 1st fetch


def consume_throughput(
    cluster: LocalCluster,
    partitions: int,
    group: bool,
    partition_fetch_bytes: int | None,
    consumer_config: dict[str, str],
) -> ConsumeRun:
    settings: dict[str, Any] = {
        "bootstrap.servers": bootstrap(cluster),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # without a group the client still wants an id; no group request is sent for it
        "group.id": f"kafka-bench-{uuid.uuid4().hex[:8]}" if group else "kafka-bench-assign",
    }
    if partition_fetch_bytes is not None:
        settings["max.partition.fetch.bytes"] = partition_fetch_bytes
    settings.update({**CONSUME_PHASE_CONSUMER, **consumer_config})
    consumer = confluent_kafka.Consumer(settings)
    try:
        total = sum(high_watermark(consumer, TOPIC, p) for p in range(partitions))
        if group:
            consumer.subscribe([TOPIC])
        else:
            consumer.assign(
                [
                    confluent_kafka.TopicPartition(TOPIC, p, confluent_kafka.OFFSET_BEGINNING)
                    for p in range(partitions)
                ]
            )
        records = size = 0
        first_error = None
        started = time.perf_counter()
        first_record_at = None
        give_up_at = time.monotonic() + DRAIN_DEADLINE_S
        join_by = time.monotonic() + GROUP_JOIN_DEADLINE_S
        while records < total and time.monotonic() < give_up_at:
            for message in consumer.consume(CONSUME_BATCH, POLL_TIMEOUT_S):
                if message.error() is None:
                    if first_record_at is None:
                        first_record_at = time.perf_counter()
                    records += 1
                    size += len(message.value())
                elif first_error is None:
                    first_error = message.error()
            if group and not records and time.monotonic() > join_by and not consumer.assignment():
                print(
                    f"  no partition assigned to the group within {GROUP_JOIN_DEADLINE_S:.0f} s "
                    f"(does the cluster serve consumer groups?); first error: {first_error}"
                )
                break
        finished = time.perf_counter()
    finally:
        consumer.close()
    if first_error is not None:
        print(f"  the consumer reported errors; the first: {first_error}")
    joined = (first_record_at or finished) - started
    return ConsumeRun(records, size, finished - started, joined)


def rate_line(name: str, records: int, record_bytes: int, elapsed: float) -> str:
    return (
        f"{name}: {records / elapsed:,.0f} records/s, "
        f"{records * record_bytes / elapsed / 1e6:.1f} MB/s "
        f"({records:,} records in {elapsed:.1f} s)"
    )


def in_sync_topic(
    cluster: LocalCluster, name: str, partitions: int, min_insync_replicas: int | None
) -> list[int]:
    """Creates the topic and waits until every partition is fully in sync; their leaders."""
    configs = {}
    if min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(min_insync_replicas)
    create_topic(cluster.nodes[1], name, partitions=partitions, configs=configs)
    leaders = [
        wait_for_partition(
            cluster, name, lambda s: len(s["isr"]) == 3, "an in-sync topic", partition=partition
        )["leader"]
        for partition in range(partitions)
    ]
    return leaders


def broker_cpu_seconds(cluster: LocalCluster, system_only: bool = False) -> float:
    """User and system CPU the node processes used so far (Linux /proc; 0 elsewhere); with
    system_only, the system (kernel) part alone."""
    total_ticks = 0
    for node in cluster.nodes.values():
        if node.process is None:
            continue
        try:
            fields = Path(f"/proc/{node.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        # utime, stime (fields 14, 15 of stat)
        total_ticks += (0 if system_only else int(fields[11])) + int(fields[12])
    return total_ticks / os.sysconf("SC_CLK_TCK")


ISR_SHRINKS = "kafka_server_replicamanager_isrshrinks_total"
ISR_EXPANDS = "kafka_server_replicamanager_isrexpands_total"


def isr_changes(cluster: LocalCluster) -> tuple[int, int]:
    """ISR shrinks and expands so far, summed over the nodes (their /metrics)."""
    shrinks = expands = 0
    for node in cluster.running():
        with urllib.request.urlopen(node.http_url + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == ISR_SHRINKS:
                shrinks += int(float(value))
            elif name == ISR_EXPANDS:
                expands += int(float(value))
    return shrinks, expands


def isr_line(before: tuple[int, int], after: tuple[int, int]) -> str:
    shrinks, expands = after[0] - before[0], after[1] - before[1]
    if not shrinks and not expands:
        return "  ISR: all three replicas in sync throughout"
    return (
        f"  ISR: {shrinks} shrinks, {expands} expands during the phase (a follower not caught "
        "up for replica.lag.time.max.ms left the ISR; meanwhile acks=all waited for fewer "
        "replicas, or was refused below min.insync.replicas and retried)"
    )


def cpu_line(cpu_seconds: float, records: int, elapsed: float) -> str:
    if cpu_seconds <= 0 or records <= 0:
        return "  (brokers' CPU not measured)"
    return (
        f"  brokers' CPU: {cpu_seconds:.1f} s in {elapsed:.1f} s (of {os.cpu_count()} cores), "
        f"{cpu_seconds / records * 1e6:.0f} us per record"
    )


def run_phases(cluster: LocalCluster, args: argparse.Namespace, phases: set[str]) -> None:
    # latency first, on a quiet cluster (see the module docstring)
    if "latency" in phases:
        latency_phase(cluster, args)
    if "produce" in phases:
        produce_phase(cluster, args)
    if "consume" in phases:
        if "produce" not in phases:  # something to read: --fill-records, not timed
            filled, _ = produce_throughput(
                cluster, DRAIN_DEADLINE_S, args.record_bytes, {}, args.fill_records
            )
            print(f"(wrote {filled.acknowledged:,} records to read)", flush=True)
        consume_phase(cluster, args)
    if "idle" in phases:
        idle_phase(cluster, args)


def idle_phase(cluster: LocalCluster, args: argparse.Namespace) -> None:
    cpu_before, started = broker_cpu_seconds(cluster), time.perf_counter()
    time.sleep(args.seconds)  # a fixed time is what is measured here, not a wait
    elapsed = time.perf_counter() - started
    cpu = broker_cpu_seconds(cluster) - cpu_before
    print(
        f"idle: brokers' CPU {cpu * 1000 / elapsed:.1f} ms a second over {elapsed:.1f} s "
        f"({cpu / elapsed / (os.cpu_count() or 1) * 100:.1f} % of {os.cpu_count()} cores)",
        flush=True,
    )


def client_cpu_seconds() -> float:
    """User and system CPU of this process (librdkafka's threads included)."""
    times = os.times()
    return times.user + times.system


def latency_phase(cluster: LocalCluster, args: argparse.Namespace) -> None:
    """--latency-runs runs one after the other on the same cluster; with more than one, the
    median and range of their p50 and p99 at the end (on a shared VM one run's p99 can be
    twice the next one's: compare medians)."""
    figures = [latency_run(cluster, args) for _ in range(args.latency_runs)]
    measured = [pair for pair in figures if pair is not None]
    if len(measured) > 1:
        p50s = sorted(p50 for p50, _ in measured)
        p99s = sorted(p99 for _, p99 in measured)
        print(
            f"over {len(measured)} runs: p50 median {statistics.median(p50s):.2f} ms "
            f"({p50s[0]:.2f}-{p50s[-1]:.2f}), p99 median {statistics.median(p99s):.2f} ms "
            f"({p99s[0]:.2f}-{p99s[-1]:.2f})",
            flush=True,
        )


def latency_run(cluster: LocalCluster, args: argparse.Namespace) -> tuple[float, float] | None:
    """One latency measurement, printed; its (p50, p99) end to end, None without them."""
    figures = None
    cpu_before = broker_cpu_seconds(cluster)
    system_before = broker_cpu_seconds(cluster, system_only=True)
    client_before = client_cpu_seconds()
    started = time.perf_counter()
    samples, deliveries = end_to_end_latency(
        cluster,
        args.rate,
        args.seconds,
        args.record_bytes,
        args.partitions,
        args.latency_linger_ms,
        with_consumer=not args.latency_without_consumer,
        warmup_seconds=args.warmup_seconds,
    )
    cpu = broker_cpu_seconds(cluster) - cpu_before
    elapsed = time.perf_counter() - started
    name = (
        f"end-to-end latency acks=all at {args.rate} records/s, linger.ms="
        f"{args.latency_linger_ms:g}"
    )
    if args.latency_without_consumer:
        print(f"{name}: no consumer (--latency-without-consumer)", flush=True)
    elif samples:
        latencies = [ms for _, ms in samples]
        figures = (percentile(latencies, 0.5), percentile(latencies, 0.99))
        print(f"{name}: {latency_figures(latencies)} ({len(latencies):,} records)", flush=True)
        print(f"  slowest second: {slowest_second(samples)}", flush=True)
    else:
        print(f"{name}: no record was received", flush=True)
    if deliveries.latencies_ms:
        print(f"  send to acknowledgement: {latency_figures(deliveries.latencies_ms)}", flush=True)
    system = broker_cpu_seconds(cluster, system_only=True) - system_before
    print(cpu_line(cpu, deliveries.acknowledged, elapsed), flush=True)
    print(
        f"  of which in the kernel: {system:.1f} s; the clients' CPU (this process): "
        f"{client_cpu_seconds() - client_before:.1f} s",
        flush=True,
    )
    report_failures(deliveries)
    return figures


def slowest_second(samples: list[tuple[int, float]]) -> str:
    """Where the outliers are: the second of the run whose p99 is the worst."""
    first = min(sent for sent, _ in samples)
    by_second: dict[int, list[float]] = {}
    for sent, ms in samples:
        by_second.setdefault((sent - first) // 1_000_000_000, []).append(ms)
    second, worst = max(by_second.items(), key=lambda item: percentile(item[1], 0.99))
    return f"second {second}: {latency_figures(worst)}"


def latency_figures(milliseconds: list[float]) -> str:
    return (
        f"p50 {percentile(milliseconds, 0.5):.2f} ms, p99 {percentile(milliseconds, 0.99):.2f} "
        f"ms, max {max(milliseconds):.2f} ms, mean {statistics.mean(milliseconds):.2f} ms"
    )


def produce_phase(cluster: LocalCluster, args: argparse.Namespace) -> None:
    runs: list[tuple[str, dict[str, Any]]] = [
        ("produce acks=all, librdkafka's default batching", {}),
        ("produce acks=all, linger.ms=5 batch.size=1MiB", SECOND_BATCHING),
    ]
    for name, extra in runs:
        cpu_before, isr_before = broker_cpu_seconds(cluster), isr_changes(cluster)
        deliveries, elapsed = produce_throughput(cluster, args.seconds, args.record_bytes, extra)
        cpu = broker_cpu_seconds(cluster) - cpu_before
        print(rate_line(name, deliveries.acknowledged, args.record_bytes, elapsed), flush=True)
        print(cpu_line(cpu, deliveries.acknowledged, elapsed), flush=True)
        print(isr_line(isr_before, isr_changes(cluster)), flush=True)
        report_failures(deliveries)


def consume_phase(cluster: LocalCluster, args: argparse.Namespace) -> None:
    cpu_before = broker_cpu_seconds(cluster)
    consumer_config = dict(item.split("=", 1) for item in args.consumer_config)
    run = consume_throughput(
        cluster, args.partitions, args.group, args.partition_fetch_bytes, consumer_config
    )
    cpu = broker_cpu_seconds(cluster) - cpu_before
    how = "subscribed in a consumer group" if args.group else "assigned"
    settings = {**CONSUME_PHASE_CONSUMER, **consumer_config}
    how += ", " + ", ".join(f"{key}={value}" for key, value in settings.items())
    # as kafka-consumer-perf-test: the fetch rate leaves out the time to the first record
    # (for a group: the join, with group.initial.rebalance.delay.ms), which is printed apart
    fetching = max(run.elapsed_s - run.joined_s, 1e-9)
    print(
        f"consume ({how}): {run.records / fetching:,.0f} records/s, "
        f"{run.size_bytes / fetching / 1e6:.1f} MB/s ({run.records:,} records in "
        f"{fetching:.1f} s after {run.joined_s:.2f} s to the first record; "
        f"{run.size_bytes / run.elapsed_s / 1e6:.1f} MB/s counting that)",
        flush=True,
    )
    print(cpu_line(cpu, run.records, run.elapsed_s), flush=True)


def report_failures(deliveries: Deliveries) -> None:
    if deliveries.failed:
        print(f"  {deliveries.failed:,} records failed; first error: {deliveries.first_error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--record-bytes", type=int, default=1024)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument(
        "--min-insync-replicas",
        type=int,
        help="the topics' min.insync.replicas (the cluster's default: 1); 3 makes every "
        "acks=all record wait for all three replicas even when a follower lags",
    )
    parser.add_argument(
        "--node-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a node configuration key for all three nodes (repeatable)",
    )
    parser.add_argument("--latency-linger-ms", type=float, default=LATENCY_LINGER_MS)
    parser.add_argument(
        "--latency-runs",
        type=int,
        default=1,
        help="latency measurements one after the other; more than one prints their medians",
    )
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=WARMUP_S,
        help="seconds sent at --rate before the latency is measured",
    )
    parser.add_argument(
        "--latency-without-consumer",
        action="store_true",
        help="only the producer's send-to-acknowledgement latency, as bench/produce_consume.py "
        "measures it",
    )
    parser.add_argument("--group", action="store_true", help="consume in a consumer group")
    parser.add_argument(
        "--phases", default=",".join(DEFAULT_PHASES), help=f"comma-separated, of {PHASES}"
    )
    parser.add_argument(
        "--partition-fetch-bytes",
        type=int,
        help="the consumer's max.partition.fetch.bytes (librdkafka's default: 1 MiB)",
    )
    parser.add_argument(
        "--consumer-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a librdkafka setting for the consume phase's consumer (repeatable)",
    )
    parser.add_argument(
        "--fill-records",
        type=int,
        default=1_000_000,
        help="records written before the consume phase when the produce phase is skipped",
    )
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    unknown = phases - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; choose from {', '.join(PHASES)}")
    if any("=" not in item for item in [*args.node_config, *args.consumer_config]):
        parser.error("--node-config and --consumer-config take KEY=VALUE")
    if args.latency_runs < 1:
        parser.error("--latency-runs must be at least 1")
    if args.record_bytes < 8:
        parser.error("--record-bytes must be at least 8 (the latency timestamp)")
    # the harness's own rpc requests would log every connection they close
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="kraft-kafka-bench-") as root:
        overrides = dict(item.split("=", 1) for item in args.node_config)
        cluster = LocalCluster(Path(root), extra_config=overrides)
        try:
            cluster.up()
            wait_until_ready(cluster)
            leaders = {
                name: in_sync_topic(cluster, name, args.partitions, args.min_insync_replicas)
                for name in (TOPIC, LATENCY_TOPIC)
            }
            pids = ", ".join(
                f"node {n.node_id} pid {n.process.pid}"
                for n in cluster.nodes.values()
                if n.process is not None
            )
            print(
                f"RF=3, {args.partitions} partitions, {args.record_bytes}-byte records, "
                f"confluent-kafka {confluent_kafka.__version__}, librdkafka "
                f"{confluent_kafka.libversion()[0]} ({pids}); partition leaders: "
                + "; ".join(f"{name} {leaders[name]}" for name in leaders),
                flush=True,
            )
            run_phases(cluster, args, phases)
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
