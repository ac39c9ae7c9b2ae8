"""Topic creations per second through the HTTP admin API (Confluent REST v3).

Starts three combined node processes on loopback, waits until every broker is registered and
unfenced, then for each concurrency level runs that many creators for a fixed time: each one
POSTs `/v3/clusters/{cid}/topics` (RF=3, 1 partition, a topic name of its own) and waits for
the answer before the next. A create answers once committed on the quorum and applied on the
node that took it. Prints creations/s and p50/p99/max latency per level.

    .venv/bin/python bench/controller_topic_create.py [--seconds 5] [--concurrency 1,8,32]
        [--target all|leader|followers] [--window-seconds S]
        [--session-timeout-ms MS] [--heartbeat-interval-ms MS]

`--target all` spreads the creators over the three nodes (two thirds are forwarded to the
active controller over rpc); `leader` sends everything to the active controller; `followers`
only to the other two. `--window-seconds` also prints the figures per window of a long run
(topics accumulate: does the rate hold?). At the end it counts how often a broker learnt it
had been fenced while it was alive (a session that lapsed under load), from the nodes' logs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster.harness import LocalCluster, http_json, wait_for  # noqa: E402

REQUEST_TIMEOUT_S = 10.0
WARMUP_CREATES = 20


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def has_three_live_brokers(url: str) -> bool:
    code, body = http_json("GET", f"{url}/v1/cluster/health_overview")
    return code == 200 and len(body["all_nodes"]) - len(body["nodes_down"]) == 3


def wait_for_brokers(cluster: LocalCluster) -> None:
    """Every node up, registered and unfenced: an RF=3 create needs three live brokers."""
    for node in cluster.nodes.values():
        wait_for(
            partial(has_three_live_brokers, node.http_url),
            what=f"three live brokers seen by node {node.node_id}",
        )


async def creator(
    session: aiohttp.ClientSession,
    urls: list[str],
    names: itertools.count[int],
    prefix: str,
    stop_at: float,
    latencies: list[tuple[float, float]],
    failures: dict[int, int],
) -> None:
    turn = next(names)
    while time.monotonic() < stop_at:
        url = urls[turn % len(urls)]
        body = {
            "topic_name": f"{prefix}-{next(names)}",
            "partitions_count": 1,
            "replication_factor": 3,
        }
        started = time.monotonic()
        async with session.post(url, json=body) as response:
            await response.read()
            status = response.status
        if status == 201:
            finished = time.monotonic()
            latencies.append((finished, finished - started))
        else:
            failures[status] = failures.get(status, 0) + 1
        turn += 1


async def run_level(
    urls: list[str], concurrency: int, seconds: float, prefix: str
) -> tuple[float, float, list[tuple[float, float]], dict[int, int]]:
    latencies: list[tuple[float, float]] = []  # (finished at, seconds)
    failures: dict[int, int] = {}
    names = itertools.count()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # warm the connections and the controller before measuring
        warm_stop = time.monotonic() + 60
        warm = [0]
        while warm[0] < WARMUP_CREATES and time.monotonic() < warm_stop:
            body = {
                "topic_name": f"{prefix}-warm-{warm[0]}",
                "partitions_count": 1,
                "replication_factor": 3,
            }
            async with session.post(urls[warm[0] % len(urls)], json=body) as response:
                await response.read()
            warm[0] += 1
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(
            *(
                creator(session, urls, names, prefix, stop_at, latencies, failures)
                for _ in range(concurrency)
            )
        )
        elapsed = time.monotonic() - started
    return started, elapsed, latencies, failures


def topic_urls(cluster: LocalCluster, cluster_id: str, target: str) -> list[str]:
    leader = cluster.wait_for_leader()
    if target == "leader":
        ids = [leader]
    elif target == "followers":
        ids = [node_id for node_id in cluster.nodes if node_id != leader]
    else:
        ids = list(cluster.nodes)
    return [f"{cluster.nodes[i].http_url}/v3/clusters/{cluster_id}/topics" for i in ids]


def summary(latencies: list[float], elapsed: float) -> str:
    ms = [value * 1000 for value in latencies]
    if not ms:
        return "no creation succeeded"
    return (
        f"{len(ms) / elapsed:7.1f} creations/s ({len(ms)} in {elapsed:.1f} s) "
        f"p50={percentile(ms, 0.5):.1f} ms p99={percentile(ms, 0.99):.1f} ms "
        f"max={max(ms):.1f} ms"
    )


def print_windows(
    started: float, elapsed: float, latencies: list[tuple[float, float]], window: float
) -> None:
    """The same figures per window of the run: how they change as topics accumulate."""
    for index in range(int(elapsed // window)):
        low, high = started + index * window, started + (index + 1) * window
        inside = [seconds for finished, seconds in latencies if low <= finished < high]
        print(f"    {index * window:5.0f}-{(index + 1) * window:.0f} s: {summary(inside, window)}")


def spurious_fences(cluster: LocalCluster) -> int:
    """Times a live broker was told it is fenced (after its start-up unfencing)."""
    count = 0
    for node in cluster.nodes.values():
        for line in node.log_path.read_text(errors="replace").splitlines():
            if "broker.fencing_changed" not in line and "broker.reregistering" not in line:
                continue
            event = json.loads(line)
            if event["event"] == "broker.reregistering" or event.get("fenced") is True:
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--target", choices=["all", "leader", "followers"], default="all")
    parser.add_argument("--window-seconds", type=float, default=0.0)
    parser.add_argument("--session-timeout-ms", type=int, default=None)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=None)
    args = parser.parse_args()
    levels = [int(value) for value in args.concurrency.split(",")]
    extra: dict[str, str] = {}
    if args.session_timeout_ms is not None:
        extra["broker.session.timeout.ms"] = str(args.session_timeout_ms)
    if args.heartbeat_interval_ms is not None:
        extra["broker.heartbeat.interval.ms"] = str(args.heartbeat_interval_ms)
    with tempfile.TemporaryDirectory(prefix="kraft-bench-") as root:
        cluster = LocalCluster(Path(root), extra_config=extra)
        try:
            cluster.up()
            node = next(iter(cluster.nodes.values()))
            _, clusters = http_json("GET", node.http_url + "/v3/clusters")
            cluster_id = clusters["data"][0]["cluster_id"]
            wait_for_brokers(cluster)
            urls = topic_urls(cluster, cluster_id, args.target)
            print(
                f"target={args.target} ({len(urls)} node(s)), RF=3, 1 partition per topic, "
                f"config overrides: {extra or 'none'}"
            )
            for concurrency in levels:
                started, elapsed, latencies, failures = asyncio.run(
                    run_level(urls, concurrency, args.seconds, f"bench-c{concurrency}")
                )
                print(
                    f"creators={concurrency:3d}: "
                    + summary([seconds for _, seconds in latencies], elapsed)
                    + f" failures={failures or 0}",
                    flush=True,
                )
                if args.window_seconds:
                    print_windows(started, elapsed, latencies, args.window_seconds)
            print(f"live brokers told they were fenced during the run: {spurious_fences(cluster)}")
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
