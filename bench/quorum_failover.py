"""Failover of the metadata quorum: how long after the leader dies does a new leader commit?

Starts three real node processes on loopback, then for each trial: writes through the
leader, kills it (SIGKILL, or SIGTERM for a graceful shutdown), and measures the time until
a write through a surviving node is committed. The killed node is restarted and the cluster
settles before the next trial. Prints p50/p99/max.

    .venv/bin/python bench/quorum_failover.py [--trials 20] [--mode kill|graceful|both]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster.harness import LocalCluster, http_json, wait_for  # noqa: E402

WRITE_TIMEOUT_S = 0.5
TRIAL_DEADLINE_S = 30.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def time_until_commit(
    cluster: LocalCluster, survivors: list[int], old_leader: int, started: float
) -> float:
    """Writes through the survivors in turn until one write commits under a new leader;
    returns the seconds since `started`. (During a graceful shutdown the old leader still
    commits for a few milliseconds: those writes do not count.)"""
    attempt = 0
    give_up_at = started + TRIAL_DEADLINE_S
    while time.monotonic() < give_up_at:
        node = cluster.nodes[survivors[attempt % len(survivors)]]
        attempt += 1
        try:
            code, _ = http_json(
                "PUT", node.http_url + "/v1/kv/failover", {"value": str(attempt)}, WRITE_TIMEOUT_S
            )
        except (OSError, urllib.error.URLError):
            continue
        if code == 200 and new_leader_at(node.http_url, old_leader):
            return time.monotonic() - started
    raise RuntimeError("no commit within the trial deadline")


def new_leader_at(http_url: str, old_leader: int) -> bool:
    try:
        code, status = http_json("GET", http_url + "/v1/quorum/status", None, WRITE_TIMEOUT_S)
    except (OSError, urllib.error.URLError):
        return False
    return code == 200 and status.get("leader_id") not in (None, old_leader)


def run_trials(cluster: LocalCluster, trials: int, graceful: bool) -> list[float]:
    results = []
    for trial in range(trials):
        leader = cluster.wait_for_leader()
        cluster.put("warmup", str(trial))
        survivors = [node_id for node_id in cluster.nodes if node_id != leader]
        started = time.monotonic()
        if graceful:
            cluster.terminate(leader)
        else:
            cluster.kill(leader)
        elapsed = time_until_commit(cluster, survivors, leader, started)
        results.append(elapsed)
        print(
            f"  trial {trial + 1:2d}: leader {leader} {'stopped' if graceful else 'killed'}, "
            f"new leader committed after {elapsed * 1000:.0f} ms",
            flush=True,
        )
        cluster.start(leader)
        wait_for(lambda leader=leader: cluster.status_of(leader), what=f"node {leader} back")
    return results


def report(name: str, results: list[float]) -> None:
    ms = [value * 1000 for value in results]
    print(
        f"{name}: trials={len(ms)} p50={percentile(ms, 0.5):.0f} ms "
        f"p99={percentile(ms, 0.99):.0f} ms max={max(ms):.0f} ms mean={statistics.mean(ms):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--mode", choices=["kill", "graceful", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kraft-bench-") as root:
        cluster = LocalCluster(Path(root))
        try:
            cluster.up()
            if args.mode in ("kill", "both"):
                print("SIGKILL of the leader:")
                report("failover after SIGKILL", run_trials(cluster, args.trials, False))
            if args.mode in ("graceful", "both"):
                print("graceful shutdown (SIGTERM) of the leader:")
                report("failover after graceful shutdown", run_trials(cluster, args.trials, True))
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
