"""How long produce stops when the partition leader dies: SIGKILL of the leader of an RF=3
partition while a Producer (client library, acks=all) sends one 1 KiB record every
millisecond; three combined node processes on loopback, default settings.

Each trial waits until the partition is fully in sync with its preferred leader, starts the
producer, SIGKILLs the leader and measures, from the kill, until the first record *sent after
the kill* is acknowledged ("resumes"); it also checks that every record acknowledged before
the kill is still readable. The killed node is restarted and the next trial waits for it to
be back in the ISR and leader again. Prints p50/p99/max over the trials.

    .venv/bin/python bench/produce_failover.py [--trials 20]
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

from client.consumer import Consumer  # noqa: E402
from client.producer import Producer, RecordMetadata  # noqa: E402
from tests.cluster.dataplane import (  # noqa: E402
    create_topic,
    wait_for_partition,
    wait_until_ready,
)
from tests.cluster.harness import LocalCluster  # noqa: E402

TOPIC = "failover"
SEND_INTERVAL_S = 0.001
WARM_UP_S = 0.5
TRIAL_DEADLINE_S = 30.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


async def one_trial(
    cluster: LocalCluster, leader_id: int, producer_settings: dict[str, int]
) -> tuple[float, int]:
    """(seconds from the kill to the first acknowledged record sent after it, records
    acknowledged before the kill)."""
    bootstrap = [f"127.0.0.1:{node.rpc_port}" for node in cluster.nodes.values()]
    resumed = asyncio.get_running_loop().create_future()
    killed_at: float | None = None
    acked_before: list[RecordMetadata] = []

    def on_ack(sent_at: float, future: asyncio.Future[RecordMetadata]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        if killed_at is not None and sent_at >= killed_at:
            if not resumed.done():
                resumed.set_result(time.monotonic())
        elif killed_at is None:
            acked_before.append(future.result())

    async with Producer(bootstrap, acks="all", linger_ms=0, **producer_settings) as producer:

        async def send_forever() -> None:
            while True:
                sent_at = time.monotonic()
                future = await producer.send(TOPIC, b"f" * 1024, partition=0)
                future.add_done_callback(lambda f, s=sent_at: on_ack(s, f))
                await asyncio.sleep(SEND_INTERVAL_S)

        sender = asyncio.create_task(send_forever())
        await asyncio.sleep(WARM_UP_S)
        await asyncio.to_thread(cluster.kill, leader_id)
        killed_at = time.monotonic()
        resumed_at = await asyncio.wait_for(resumed, TRIAL_DEADLINE_S)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await producer.flush()
    async with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(TOPIC, 0)])
        offsets = {metadata.offset for metadata in acked_before}
        consumer.seek(TOPIC, 0, min(offsets))
        seen: set[int] = set()
        while not offsets <= seen:
            seen.update(record.offset for record in await consumer.poll(timeout_ms=1000))
    return resumed_at - killed_at, len(acked_before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--retry-backoff-max-ms", type=int, default=None)
    args = parser.parse_args()
    producer_settings = {}
    if args.retry_backoff_max_ms is not None:
        producer_settings["retry_backoff_max_ms"] = args.retry_backoff_max_ms
    with tempfile.TemporaryDirectory(prefix="kraft-bench-") as root:
        cluster = LocalCluster(Path(root))
        try:
            cluster.up()
            wait_until_ready(cluster)
            create_topic(cluster.nodes[1], TOPIC)
            results = []
            for trial in range(args.trials):
                state = wait_for_partition(
                    cluster,
                    TOPIC,
                    lambda s: len(s["isr"]) == 3 and s["leader"] == s["replicas"][0],
                    "the preferred leader in charge, all in sync",
                )
                elapsed, acked = asyncio.run(one_trial(cluster, state["leader"], producer_settings))
                results.append(elapsed)
                print(
                    f"trial {trial + 1}: killed leader {state['leader']}, produce resumed "
                    f"after {elapsed * 1000:.0f} ms ({acked} records acknowledged before, "
                    "all readable)",
                    flush=True,
                )
                cluster.start(state["leader"])
            ms = [value * 1000 for value in results]
            print(
                f"produce resumes after SIGKILL of the partition leader: trials={len(ms)} "
                f"p50={percentile(ms, 0.5):.0f} ms p99={percentile(ms, 0.99):.0f} ms "
                f"max={max(ms):.0f} ms mean={statistics.mean(ms):.0f} ms",
                flush=True,
            )
        finally:
            cluster.close()


if __name__ == "__main__":
    main()
