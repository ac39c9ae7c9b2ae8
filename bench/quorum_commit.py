"""Commit throughput and latency of the metadata quorum.

Starts three real voter processes on loopback (fsync on), finds the leader and proposes
100-byte records to it over the rpc listener (the `propose` request the nodes forward to each
other), each proposer waiting for its record to commit before proposing the next:

- closed loop with 1, 16, 256 and 1,000 concurrent proposers: committed records/s and
  p50/p99 commit latency;
- open loop at a fixed rate (500 proposals/s from one proposer): p50/p99/max latency.

    .venv/bin/python bench/quorum_commit.py [--seconds 5] [--proposers 1,16,256,1000] [--rate 500]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kraft.rpc.client import RpcClient  # noqa: E402
from kraft.statemachine.kv import KeyValueStateMachine  # noqa: E402
from tests.cluster.harness import LocalCluster  # noqa: E402

RECORD_BYTES = 100
REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 16


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def kv_record() -> bytes:
    """A put of the demo state machine whose encoding is RECORD_BYTES long."""
    key = "bench"
    value = "v" * RECORD_BYTES
    record = KeyValueStateMachine.encode_put(key, value)
    record = KeyValueStateMachine.encode_put(key, "v" * (2 * RECORD_BYTES - len(record)))
    assert len(record) == RECORD_BYTES, len(record)
    return record


async def propose(client: RpcClient, record: bytes) -> None:
    answer = await client.request({"kind": "propose", "records": [record]}, REQUEST_TIMEOUT_S)
    if "error" in answer:
        raise RuntimeError(answer["error"])


async def closed_loop(host: str, port: int, proposers: int, seconds: float) -> None:
    clients = [RpcClient(host, port, None) for _ in range(min(proposers, MAX_CONNECTIONS))]
    for client in clients:
        await client.connect()
    latencies: list[float] = []
    errors = 0
    record = kv_record()
    stop_at = time.monotonic() + seconds
    measuring_from = time.monotonic() + min(1.0, seconds / 5)  # warm-up excluded

    async def proposer(index: int) -> None:
        nonlocal errors
        client = clients[index % len(clients)]
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                await propose(client, record)
            except (RuntimeError, TimeoutError, OSError):
                errors += 1
                continue
            if started >= measuring_from:
                latencies.append(time.monotonic() - started)

    began = time.monotonic()
    await asyncio.gather(*(proposer(i) for i in range(proposers)))
    measured_s = time.monotonic() - max(measuring_from, began)
    for client in clients:
        await client.close()
    ms = [value * 1000 for value in latencies]
    print(
        f"proposers={proposers:5d} committed={len(ms) / measured_s:9.0f} records/s "
        f"p50={percentile(ms, 0.5):7.2f} ms p99={percentile(ms, 0.99):7.2f} ms errors={errors}",
        flush=True,
    )


async def fixed_rate(host: str, port: int, rate: int, seconds: float) -> None:
    client = RpcClient(host, port, None)
    await client.connect()
    record = kv_record()
    latencies: list[float] = []
    interval = 1.0 / rate
    in_flight: set[asyncio.Task[None]] = set()

    async def one() -> None:
        started = time.monotonic()
        await propose(client, record)
        latencies.append(time.monotonic() - started)

    next_at = time.monotonic()
    stop_at = next_at + seconds
    while next_at < stop_at:
        task = asyncio.create_task(one())
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*in_flight)
    await client.close()
    ms = [value * 1000 for value in latencies[rate // 2 :]]  # half a second of warm-up
    print(
        f"fixed rate {rate}/s from one proposer: p50={percentile(ms, 0.5):.2f} ms "
        f"p99={percentile(ms, 0.99):.2f} ms max={max(ms):.2f} ms (n={len(ms)})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--proposers", default="1,16,256,1000")
    parser.add_argument("--rate", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kraft-bench-") as root:
        cluster = LocalCluster(Path(root))
        try:
            cluster.up()
            leader = cluster.nodes[cluster.wait_for_leader()]
            print(
                f"3 voters on loopback, leader node {leader.node_id}, {RECORD_BYTES}-byte records"
            )
            for proposers in (int(p) for p in args.proposers.split(",")):
                asyncio.run(closed_loop("127.0.0.1", leader.rpc_port, proposers, args.seconds))
            asyncio.run(fixed_rate("127.0.0.1", leader.rpc_port, args.rate, args.seconds))
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
