"""Failover of the quorum controller: admin writes after the active controller dies, and
partition leadership after a broker dies.

Starts three combined (broker,controller) node processes on loopback and runs two kinds of
trials, each timed from the SIGKILL:

- controller: SIGKILL the active controller (the quorum leader), then create a topic through
  the surviving nodes in turn (a fresh name per attempt, 0.5 s per request, 10 ms between
  failed attempts) until one create answers 201. The killed node was a broker too: the
  trial also times, as the broker trials do, until the partitions it led of a fresh RF=3
  topic have new leaders (the new controller fences it one session timeout after it takes
  over, since it starts every broker's session afresh).
- broker: create a fresh RF=3 topic with 6 partitions (placement gives every broker some
  leaderships), SIGKILL a broker that leads some of them and is not the controller, then poll
  the third node (neither the controller nor the victim) until every partition the victim
  led has a leader that was in its ISR before the kill and is in its ISR now. A fresh topic
  per trial because a fenced broker leaves the ISRs and, until brokers replicate data, is
  never added back, so it cannot lead the old topic's partitions again.

The killed node is restarted and the cluster waits for it (registered, unfenced, one agreed
quorum leader) before the next trial. Prints p50/p99/max per kind of trial.

    .venv/bin/python bench/controller_failover.py [--trials 20] [--mode controller|broker|both]
        [--session-timeout-ms 3000] [--heartbeat-interval-ms 500]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import sys
import tempfile
import time
import urllib.error
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster.harness import LocalCluster, http_json, wait_for  # noqa: E402

REQUEST_TIMEOUT_S = 0.5
RETRY_PAUSE_S = 0.01
POLL_INTERVAL_S = 0.01
TRIAL_DEADLINE_S = 30.0
PARTITIONS = 6

_names = itertools.count()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def report(name: str, results: list[float]) -> None:
    ms = [value * 1000 for value in results]
    print(
        f"{name}: trials={len(ms)} p50={percentile(ms, 0.5):.0f} ms "
        f"p99={percentile(ms, 0.99):.0f} ms max={max(ms):.0f} ms "
        f"mean={statistics.mean(ms):.0f} ms",
        flush=True,
    )


def cluster_id_of(cluster: LocalCluster) -> str:
    node = next(iter(cluster.nodes.values()))
    _, body = http_json("GET", node.http_url + "/v3/clusters")
    return str(body["data"][0]["cluster_id"])


def topics_url(cluster: LocalCluster, node_id: int, cluster_id: str) -> str:
    return f"{cluster.nodes[node_id].http_url}/v3/clusters/{cluster_id}/topics"


def settle(cluster: LocalCluster) -> int:
    """Waits until every node agrees on a leader and sees three live brokers; the leader."""

    def all_live() -> bool:
        for node in cluster.running():
            code, health = node.get("/v1/cluster/health_overview")
            if code != 200 or len(health["all_nodes"]) != 3 or health["nodes_down"]:
                return False
        return True

    wait_for(all_live, deadline_s=60, what="three live brokers seen by every node")
    return cluster.wait_for_leader()


# --- (a) SIGKILL of the active controller ----------------------------------------------------


def time_until_admin_write(
    cluster: LocalCluster, cluster_id: str, survivors: list[int], started: float
) -> tuple[float, int]:
    """Creates topics through the survivors in turn until one create answers 201; (seconds
    since `started`, attempts)."""
    give_up_at = started + TRIAL_DEADLINE_S
    for attempt in itertools.count(1):
        if time.monotonic() >= give_up_at:
            break
        url = topics_url(cluster, survivors[attempt % len(survivors)], cluster_id)
        body = {
            "topic_name": f"after-kill-{next(_names)}",
            "partitions_count": 1,
            "replication_factor": 2,
        }
        try:
            code, _ = http_json("POST", url, body, REQUEST_TIMEOUT_S)
        except (OSError, urllib.error.URLError):
            code = 0
        if code == 201:
            return time.monotonic() - started, attempt
        time.sleep(RETRY_PAUSE_S)
    raise RuntimeError("no admin write succeeded within the trial deadline")


def run_controller_trials(
    cluster: LocalCluster, cluster_id: str, trials: int
) -> tuple[list[float], list[float]]:
    """(seconds to the first admin write, seconds until the partitions the killed controller
    led as a broker have new leaders) per trial."""
    writes, leaderships = [], []
    for trial in range(trials):
        controller = settle(cluster)
        survivors = [node_id for node_id in cluster.nodes if node_id != controller]
        topic = fresh_topic(cluster, cluster_id, controller)
        url = f"{topics_url(cluster, survivors[0], cluster_id)}/{topic}"
        before = wait_for(partial(topic_seen, url), what=f"topic {topic} on {survivors[0]}")
        assert any(leader == controller for leader, _ in before.values()), before
        started = time.monotonic()
        cluster.kill(controller)
        elapsed, attempts = time_until_admin_write(cluster, cluster_id, survivors, started)
        writes.append(elapsed)
        moved = wait_until_moved(url, controller, before, started)
        leaderships.append(moved)
        print(
            f"  trial {trial + 1:2d}: controller {controller} killed, admin write ok after "
            f"{elapsed * 1000:.0f} ms ({attempts} attempts); its partitions led again after "
            f"{moved * 1000:.0f} ms (seen by node {survivors[0]})",
            flush=True,
        )
        cluster.start(controller)
    return writes, leaderships


# --- (b) SIGKILL of a broker that leads partitions --------------------------------------------


def replicas_of(url: str, partition_id: int) -> list[dict[str, Any]]:
    code, body = http_json("GET", f"{url}/partitions/{partition_id}/replicas", None, 1.0)
    if code != 200:
        return []
    return list(body["data"])


def leaders_and_isrs(url: str) -> dict[int, tuple[int | None, frozenset[int]]]:
    answer = {}
    for partition_id in range(PARTITIONS):
        replicas = replicas_of(url, partition_id)
        leader = next((r["broker_id"] for r in replicas if r["is_leader"]), None)
        isr = frozenset(r["broker_id"] for r in replicas if r["is_in_sync"])
        answer[partition_id] = (leader, isr)
    return answer


def topic_seen(url: str) -> dict[int, tuple[int | None, frozenset[int]]] | None:
    """Leader and ISR of every partition, once every partition has a leader."""
    seen = leaders_and_isrs(url)
    return seen if all(leader is not None for leader, _ in seen.values()) else None


def fresh_topic(cluster: LocalCluster, cluster_id: str, via: int) -> str:
    name = f"failover-{next(_names)}"
    body = {"topic_name": name, "partitions_count": PARTITIONS, "replication_factor": 3}
    code, answer = http_json("POST", topics_url(cluster, via, cluster_id), body)
    assert code == 201, answer
    return name


def moved_from(url: str, victim: int, before: dict[int, tuple[int | None, frozenset[int]]]) -> bool:
    """Every partition the victim led has a leader from its old ISR, in its ISR now."""
    for partition_id, (leader, isr) in before.items():
        if leader != victim:
            continue
        replicas = replicas_of(url, partition_id)
        now = next((r for r in replicas if r["is_leader"]), None)
        if now is None or now["broker_id"] == victim or now["broker_id"] not in isr:
            return False
        if not now["is_in_sync"]:
            return False
    return True


def wait_until_moved(
    url: str, victim: int, before: dict[int, tuple[int | None, frozenset[int]]], started: float
) -> float:
    """Polls until every partition `victim` led has moved (moved_from); seconds since
    `started`."""
    give_up_at = started + TRIAL_DEADLINE_S
    while not moved_from(url, victim, before):
        if time.monotonic() >= give_up_at:
            raise RuntimeError(f"partitions at {url} still led by broker {victim}")
        time.sleep(POLL_INTERVAL_S)
    return time.monotonic() - started


def run_broker_trials(cluster: LocalCluster, cluster_id: str, trials: int) -> list[float]:
    results = []
    for trial in range(trials):
        controller = settle(cluster)
        topic = fresh_topic(cluster, cluster_id, controller)
        brokers = [node_id for node_id in cluster.nodes if node_id != controller]
        victim = brokers[trial % 2]
        observer = next(b for b in brokers if b != victim)
        url = f"{topics_url(cluster, observer, cluster_id)}/{topic}"
        before = wait_for(partial(topic_seen, url), what=f"topic {topic} on node {observer}")
        led = sorted(p for p, (leader, _) in before.items() if leader == victim)
        assert led, f"broker {victim} leads no partition of {topic}: {before}"
        started = time.monotonic()
        cluster.kill(victim)
        elapsed = wait_until_moved(url, victim, before, started)
        results.append(elapsed)
        print(
            f"  trial {trial + 1:2d}: broker {victim} killed (controller {controller}), "
            f"its {len(led)} partitions led again after {elapsed * 1000:.0f} ms (seen by "
            f"node {observer})",
            flush=True,
        )
        cluster.start(victim)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--mode", choices=["controller", "broker", "both"], default="both")
    parser.add_argument("--session-timeout-ms", type=int, default=None)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=None)
    args = parser.parse_args()
    extra: dict[str, str] = {}
    if args.session_timeout_ms is not None:
        extra["broker.session.timeout.ms"] = str(args.session_timeout_ms)
    if args.heartbeat_interval_ms is not None:
        extra["broker.heartbeat.interval.ms"] = str(args.heartbeat_interval_ms)
    print(f"config overrides: {extra or 'none (defaults: session 1000 ms, heartbeat 200 ms)'}")
    with tempfile.TemporaryDirectory(prefix="kraft-bench-") as root:
        cluster = LocalCluster(Path(root), extra_config=extra)
        try:
            cluster.up()
            cluster_id = cluster_id_of(cluster)
            if args.mode in ("controller", "both"):
                print("SIGKILL of the active controller -> first admin write (topic create):")
                writes, leaderships = run_controller_trials(cluster, cluster_id, args.trials)
                report("admin write after controller SIGKILL", writes)
                report("partition leadership of the killed controller (a broker too)", leaderships)
            if args.mode in ("broker", "both"):
                print("SIGKILL of a partition-leading broker -> all its partitions led again:")
                results = run_broker_trials(cluster, cluster_id, args.trials)
                report("partition leadership after broker SIGKILL", results)
        finally:
            with contextlib.suppress(Exception):
                cluster.close()


if __name__ == "__main__":
    main()
