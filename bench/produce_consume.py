"""Produce and consume throughput and produce latency of the data plane, through the native
client library (client.producer / client.consumer), against three combined node processes
on loopback; an RF=3 topic, 1 KiB records.

Phases, each printed as it ends:
- produce throughput with acks=1, then acks=all: one Producer sends as fast as its buffer
  allows for --seconds (keyless records, sticky partitioning over --partitions partitions);
  records/s and MB/s of acknowledged records;
- produce latency at a fixed rate (--rate records/s, acks=all, one record per send, no
  linger): p50/p99/max from send to acknowledgement;
- consume throughput: one Consumer reads every partition from the start to the high
  watermark; records/s and MB/s.

    .venv/bin/python bench/produce_consume.py [--seconds 10] [--partitions 3] [--rate 1000]
        [--batch-kib 256] [--raw]

--raw adds a phase that bypasses the Producer: produce requests of --batch-kib batches
built once, four in flight, to one partition leader: what the brokers take when the client
costs nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker.log.batch import Record, build_batch  # noqa: E402
from client.consumer import Consumer  # noqa: E402
from client.producer import Producer, RecordMetadata  # noqa: E402
from kraft.rpc.client import RpcClient  # noqa: E402
from tests.cluster.dataplane import (  # noqa: E402
    create_topic,
    wait_for_partition,
    wait_until_ready,
)
from tests.cluster.harness import LocalCluster  # noqa: E402

RECORD_BYTES = 1024
TOPIC = "bench"
RAW_IN_FLIGHT = 4


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def bootstrap(cluster: LocalCluster) -> list[str]:
    return [f"127.0.0.1:{node.rpc_port}" for node in cluster.nodes.values()]


async def produce_throughput(
    cluster: LocalCluster, acks: str, seconds: float, batch_bytes: int
) -> tuple[int, float]:
    value = b"x" * RECORD_BYTES
    acknowledged = 0

    def count(future: asyncio.Future[RecordMetadata]) -> None:
        nonlocal acknowledged
        if not future.exception():
            acknowledged += 1

    async with Producer(
        bootstrap(cluster),
        acks=acks,
        linger_ms=5,
        batch_size_bytes=batch_bytes,
        max_request_size_bytes=4 * batch_bytes,
    ) as producer:
        started = time.perf_counter()
        stop = started + seconds
        while time.perf_counter() < stop:
            future = await producer.send(TOPIC, value)
            future.add_done_callback(count)
        await producer.flush()
        elapsed = time.perf_counter() - started
    return acknowledged, elapsed


async def produce_latency(cluster: LocalCluster, rate: int, seconds: float) -> list[float]:
    value = b"y" * RECORD_BYTES
    latencies: list[float] = []
    async with Producer(bootstrap(cluster), acks="all", linger_ms=0) as producer:
        interval = 1 / rate
        started = time.perf_counter()
        pending: list[asyncio.Task[None]] = []

        async def one() -> None:
            sent = time.perf_counter()
            future = await producer.send(TOPIC, value)
            await future
            latencies.append(time.perf_counter() - sent)

        for n in range(int(rate * seconds)):
            due = started + n * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one()))
        await asyncio.gather(*pending)
    return latencies


async def consume_throughput(cluster: LocalCluster, partitions: int) -> tuple[int, int, float]:
    async with Consumer(
        bootstrap(cluster), auto_offset_reset="earliest", max_poll_records=100_000
    ) as consumer:
        assigned = [(TOPIC, p) for p in range(partitions)]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning(assigned)
        total = sum(ends.values())
        records = size = 0
        started = time.perf_counter()
        while records < total:
            for record in await consumer.poll(timeout_ms=1000):
                records += 1
                size += len(record.value or b"")
        elapsed = time.perf_counter() - started
    return records, size, elapsed


async def raw_produce(
    cluster: LocalCluster, leader_id: int, seconds: float, batch_kib: int
) -> tuple[int, float]:
    leader = cluster.nodes[leader_id]
    records = [Record(None, b"z" * RECORD_BYTES, (), time.time_ns() // 1_000_000)] * batch_kib
    batch = build_batch(records)
    client = RpcClient("127.0.0.1", leader.rpc_port, None)
    sent = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal sent
        while time.perf_counter() < stop:
            answer = await client.request(
                {
                    "kind": "produce",
                    "acks": -1,
                    "timeout_ms": 10_000,
                    "partitions": [{"topic": TOPIC, "partition": 0, "records": batch}],
                },
                20,
            )
            assert answer["partitions"][0]["error_code"] == 0, answer
            sent += len(records)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(RAW_IN_FLIGHT)))
    elapsed = time.perf_counter() - started
    await client.close()
    return sent, elapsed


def rate_line(name: str, records: int, elapsed: float) -> str:
    return (
        f"{name}: {records / elapsed:,.0f} records/s, "
        f"{records * RECORD_BYTES / elapsed / 1e6:.1f} MB/s "
        f"({records:,} records in {elapsed:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--batch-kib", type=int, default=256)
    parser.add_argument("--raw", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kraft-bench-") as root:
        cluster = LocalCluster(Path(root))
        try:
            cluster.up()
            wait_until_ready(cluster)
            create_topic(cluster.nodes[1], TOPIC, partitions=args.partitions)
            for partition in range(args.partitions):
                wait_for_partition(
                    cluster,
                    TOPIC,
                    lambda s: len(s["isr"]) == 3,
                    "an in-sync topic",
                    partition=partition,
                )
            batch_bytes = args.batch_kib * 1024
            print(f"RF=3, {args.partitions} partitions, {RECORD_BYTES}-byte records", flush=True)
            for acks in ("1", "all"):
                records, elapsed = asyncio.run(
                    produce_throughput(cluster, acks, args.seconds, batch_bytes)
                )
                print(rate_line(f"produce acks={acks}", records, elapsed), flush=True)
            if args.raw:
                state = wait_for_partition(cluster, TOPIC, lambda s: s["leader"] >= 0, "a leader")
                records, elapsed = asyncio.run(
                    raw_produce(cluster, state["leader"], args.seconds, args.batch_kib)
                )
                print(rate_line("raw produce acks=all (no client)", records, elapsed), flush=True)
            latencies = asyncio.run(produce_latency(cluster, args.rate, args.seconds))
            ms = [value * 1000 for value in latencies]
            print(
                f"produce latency acks=all at {args.rate} records/s: p50 "
                f"{percentile(ms, 0.5):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
                f"max {max(ms):.2f} ms, mean {statistics.mean(ms):.2f} ms ({len(ms)} records)",
                flush=True,
            )
            records, size, elapsed = asyncio.run(consume_throughput(cluster, args.partitions))
            print(
                f"consume: {records / elapsed:,.0f} records/s, {size / elapsed / 1e6:.1f} MB/s "
                f"({records:,} records in {elapsed:.1f} s)",
                flush=True,
            )
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
