"""One chaos run (`kraft chaos`): start a cluster behind proxies, create the topics, run the
workload while the nemesis injects faults drawn from the seed, heal everything, let the
cluster settle, read the final state, check the history and write the report.

Everything of the run goes under `out/`: history.jsonl, final.json, report.md,
timeline.png, and cluster/ (each node's data and log; removed after a run without
anomalies unless `keep_data`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from broker.log.batch import iter_batches, iter_records
from chaos.checker import Verdict, check
from chaos.cluster import ChaosCluster, metadata_view
from chaos.history import FinalState, ReplicaState, write_final_state, write_history
from chaos.nemesis import FAULT_KINDS, Nemesis, plan
from chaos.proxy import ProxyProcess
from chaos.report import unavailability, write_report
from chaos.workload import Recorder, WorkloadSettings, run_workload
from client.admin import AdminClient
from client.consumer import Consumer

log = structlog.get_logger(__name__)

READY_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 60.0
FINAL_READ_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    seed: int
    duration_s: float
    out_dir: Path
    faults: tuple[str, ...] = FAULT_KINDS
    nodes: int = 3
    workload: WorkloadSettings = field(default_factory=WorkloadSettings)
    keep_data: bool = False
    mixed: bool = False  # faults overlap (chaos.nemesis.plan)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_chaos(config: ChaosConfig) -> Verdict:
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    cluster = ChaosCluster(out / "cluster", config.nodes)
    proxies = ProxyProcess(cluster.rpc_ports(), config.seed, stderr_path=out / "proxy.log")
    verdict: Verdict | None = None
    try:
        proxies.start()
        cluster.proxy_ports = {
            (src, dst): port
            for src, targets in proxies.port_map.items()
            for dst, port in targets.items()
        }
        disk_problem = (
            cluster.mount_data_disks() if "full_disk" in config.faults else "not asked for"
        )
        if "full_disk" in config.faults and disk_problem is not None:
            progress(f"seed {config.seed}: full_disk faults will be skipped: {disk_problem}")
        progress(f"seed {config.seed}: starting {config.nodes} nodes under {out}")
        cluster.up()
        _wait_ready(cluster)
        admin = AdminClient([node.http_url for node in cluster.nodes.values()], timeout_s=30)
        for topic in config.workload.topics:
            admin.create_topic(topic, config.workload.partitions, 3, {"min.insync.replicas": "2"})
        _settle(cluster, config.workload)
        recorder = Recorder()
        faults = plan(config.seed, config.duration_s, config.faults, mixed=config.mixed)
        progress(
            f"seed {config.seed}: {len(faults)} faults over {config.duration_s:.0f} s: "
            + ", ".join(f"{f.kind}@{f.at_s:.0f}s" for f in faults)
        )
        asyncio.run(_load_and_faults(config, cluster, proxies, recorder, faults, disk_problem))
        progress(f"seed {config.seed}: healed; waiting for the cluster to settle")
        settled = _settle(cluster, config.workload)
        final = asyncio.run(_final_state(cluster, config.workload))
        history = recorder.entries
        write_history(out / "history.jsonl", history)
        write_final_state(out / "final.json", final)
        verdict = check(history, final)
        if not settled:
            verdict.anomalies.setdefault("not_settled", []).append(
                f"the cluster did not settle within {SETTLE_TIMEOUT_S:.0f} s after healing"
            )
            verdict.valid = False
        report = write_report(
            out,
            seed=config.seed,
            history=history,
            final=final,
            verdict=verdict,
            config={
                "seed": config.seed,
                "duration_s": config.duration_s,
                "faults": list(config.faults),
                "nodes": config.nodes,
                "mixed": config.mixed,
                "topics": list(config.workload.topics),
                "partitions": config.workload.partitions,
                "producers": config.workload.producers,
            },
        )
        windows = unavailability(history)
        summary = ", ".join(
            f"{kind} max {max(values):.2f} s" for kind, values in sorted(windows.items())
        )
        progress(
            f"seed {config.seed}: {'VALID' if verdict.valid else 'ANOMALIES'} "
            f"({verdict.stats.get('sends_acknowledged', '?')} acknowledged sends; "
            f"unavailability: {summary or 'none measured'}); report: {report}"
        )
        return verdict
    finally:
        cluster.close()
        proxies.close()
        if verdict is not None and verdict.valid and not config.keep_data:
            shutil.rmtree(out / "cluster", ignore_errors=True)


async def _load_and_faults(
    config: ChaosConfig,
    cluster: ChaosCluster,
    proxies: ProxyProcess,
    recorder: Recorder,
    faults: list[Any],
    disk_problem: str | None,
) -> None:
    stop = asyncio.Event()
    bootstrap = [node.rpc_address for node in cluster.nodes.values()]
    http_urls = [node.http_url for node in cluster.nodes.values()]
    nemesis = Nemesis(cluster, proxies, recorder, config.workload.topics, config.seed, disk_problem)
    client_addresses = [f"127.0.0.1:{node.client_port}" for node in cluster.nodes.values()]
    workload = asyncio.create_task(
        run_workload(bootstrap, http_urls, config.workload, recorder, stop, client_addresses)
    )
    faults_task = asyncio.create_task(nemesis.run(faults, stop, mixed=config.mixed))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(faults_task), config.duration_s)
    stop.set()
    await faults_task  # a fault under way finishes (and heals) first
    await nemesis.heal_all()
    await workload


def _wait_ready(cluster: ChaosCluster) -> None:
    def ready() -> bool:
        for node in cluster.nodes.values():
            if not node.is_running():
                tail = node.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"node {node.node_id} exited at start:\n{tail}")
        return all(
            (node.get_json("/v1/status/ready") or {}).get("status") == "ready"
            for node in cluster.nodes.values()
        )

    if not cluster.wait_until(ready, READY_TIMEOUT_S):
        raise RuntimeError(f"the cluster was not ready within {READY_TIMEOUT_S:.0f} s")


def _settle(cluster: ChaosCluster, workload: WorkloadSettings) -> bool:
    """Waits until every node is ready, agrees on the metadata of the run's topics, and
    every partition has a leader and all its replicas in sync."""
    topics = list(workload.topics)

    def settled() -> bool:
        views = [metadata_view(node.rpc_port, topics) for node in cluster.nodes.values()]
        if any(view is None for view in views) or any(view != views[0] for view in views):
            return False
        first = views[0]
        assert first is not None
        return all(
            len(first.get(topic, {})) == workload.partitions
            and all(
                p["leader"] >= 0 and len(p["isr"]) == len(p["replicas"])
                for p in first[topic].values()
            )
            for topic in topics
        )

    return cluster.wait_until(settled, SETTLE_TIMEOUT_S)


async def _final_state(cluster: ChaosCluster, workload: WorkloadSettings) -> FinalState:
    final = FinalState()
    topics = list(workload.topics)
    bootstrap = [node.rpc_address for node in cluster.nodes.values()]
    high_watermarks: dict[tuple[str, int], int] = {}
    async with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        assigned = [(topic, p) for topic in topics for p in range(workload.partitions)]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        for (topic, partition), end in ends.items():
            high_watermarks[(topic, partition)] = end
            consumer.seek(topic, partition, 0)
        reads: dict[str, dict[int, list[list[Any]]]] = {t: {} for t in topics}
        remaining = {key for key, end in ends.items() if end > 0}
        give_up_at = time.monotonic() + FINAL_READ_TIMEOUT_S
        while remaining and time.monotonic() < give_up_at:
            for record in await consumer.poll(timeout_ms=1000):
                key = (record.topic, record.partition)
                if record.offset < ends[key]:
                    reads[record.topic].setdefault(record.partition, []).append(
                        [record.offset, (record.value or b"").decode("utf-8", "replace")]
                    )
                if record.offset >= ends[key] - 1:
                    remaining.discard(key)
        for topic, partition in ends:
            reads[topic].setdefault(partition, [])
        final.final_reads = reads
    for node in cluster.nodes.values():
        view = await asyncio.to_thread(metadata_view, node.rpc_port, topics)
        final.metadata[node.node_id] = view if view is not None else {}
        for topic in topics:
            for partition in range(workload.partitions):
                records = replica_records(node.data_dir / f"{topic}-{partition}")
                final.replicas.append(
                    ReplicaState(
                        node_id=node.node_id,
                        topic=topic,
                        partition=partition,
                        high_watermark=high_watermarks.get((topic, partition), 0),
                        log_end_offset=records[-1][0] + 1 if records else 0,
                        records=records,
                    )
                )
    return final


def replica_records(directory: Path) -> list[list[Any]]:
    """[[offset, value], ...] of a replica, read from its segment files."""
    records: list[list[Any]] = []
    for segment in sorted(directory.glob("*.log")):
        for batch in iter_batches(segment.read_bytes()):
            for record in iter_records(batch):
                records.append([record.offset, (record.value or b"").decode("utf-8", "replace")])
    return records
