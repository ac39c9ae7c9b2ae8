"""Faults drawn from a seed and carried out on a running cluster, one at a time with quiet
periods between them (a fault, then its healing, then time for the cluster to recover), so
that each fault's unavailability can be measured on its own.

Kinds (`FAULT_KINDS`):
- kill: SIGKILL a node (the active controller, a partition leader, or any), restart it later;
- pause: SIGSTOP a node, SIGCONT it later;
- partition: cut a node off from the others (the controller, a partition leader, or any:
  with three nodes the minority side is one node), both directions;
- one_way: a node's messages to one peer are dropped, the answers flow;
- bridge: two nodes cannot talk to each other, both still talk to the third (Jepsen's
  bridge);
- slow: every link delayed (tens to hundreds of ms, with jitter);
- lossy: every link resets connections now and then;
- rolling_restart: every node in turn stopped with SIGTERM and started again, waiting for it
  to be ready;
- wipe: SIGKILL a node, delete its partition data for good (SPEC §7: the permanent loss of
  one replica), start it again;
- full_disk: fill a node's data disk (a small tmpfs of its own; needs root, else skipped
  with a message): the node stops on the failed write, as Kafka halts a broker whose log
  directories failed; the disk is freed and the node started again.

Every fault is recorded as a window in the history, with its targets.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from chaos.cluster import ChaosCluster
from chaos.proxy import ProxyProcess
from chaos.workload import Recorder

log = structlog.get_logger(__name__)

FAULT_KINDS = (
    "kill",
    "pause",
    "partition",
    "one_way",
    "bridge",
    "slow",
    "lossy",
    "rolling_restart",
    "wipe",
    "full_disk",
)
NETWORK_FAULTS = frozenset({"partition", "one_way", "bridge", "slow", "lossy"})
MIXED_STAGGER_SECONDS = (1.0, 3.0)  # mixed: between the starts of successive faults
MIXED_NETWORK_GAP_S = 0.5
FAULT_SECONDS = (2.0, 6.0)  # how long a fault lasts, drawn uniformly
QUIET_SECONDS = (3.0, 6.0)  # time to recover between faults
READY_TIMEOUT_S = 30.0
# A wipe waits at most this long for every partition to be fully in sync (else skipped).
WIPE_SYNC_WAIT_S = 20.0
SLOW_DELAY_MS = (20.0, 150.0)
LOSS_PROBABILITY = (0.01, 0.05)


@dataclass(frozen=True, slots=True)
class PlannedFault:
    at_s: float  # when it starts, from the start of the run
    kind: str
    duration_s: float
    target: str  # "controller", "leader" or "any": resolved when the fault starts
    choice: float  # a draw in [0, 1) that picks among candidates, so targets are seeded too


def plan(
    seed: int, duration_s: float, kinds: Sequence[str], *, mixed: bool = False
) -> list[PlannedFault]:
    """The faults of a run: the same seed and kinds give the same plan. Alone (default),
    each fault is followed by a quiet period; `mixed`, the next one starts 1-3 s after the
    last began, so they overlap — except that network faults never overlap each other (a
    heal undoes the whole network) and faults on one node take turns (Nemesis)."""
    unknown = set(kinds) - set(FAULT_KINDS)
    assert not unknown, f"unknown fault kinds {sorted(unknown)}"
    rng = random.Random(seed)
    faults = []
    at = rng.uniform(*QUIET_SECONDS)
    network_free_at = 0.0
    while kinds and at < duration_s:
        kind = rng.choice(list(kinds))
        length = rng.uniform(*FAULT_SECONDS)
        start = at
        if mixed and kind in NETWORK_FAULTS:
            start = max(at, network_free_at)
            network_free_at = start + length + MIXED_NETWORK_GAP_S
        faults.append(
            PlannedFault(
                start, kind, length, rng.choice(("controller", "leader", "any")), rng.random()
            )
        )
        at += rng.uniform(*MIXED_STAGGER_SECONDS) if mixed else length + rng.uniform(*QUIET_SECONDS)
    return sorted(faults, key=lambda fault: fault.at_s)


class Nemesis:
    def __init__(
        self,
        cluster: ChaosCluster,
        proxies: ProxyProcess,
        recorder: Recorder,
        topics: Sequence[str],
        seed: int,
        disk_problem: str | None = None,
    ) -> None:
        self.cluster = cluster
        self.proxies = proxies
        self.recorder = recorder
        self.topics = tuple(topics)
        self.topic = self.topics[0]  # whose partition leader a "leader" target means
        self.rng = random.Random(seed ^ 0x5EED)
        self.node_ids = sorted(cluster.nodes)
        self.disk_problem = disk_problem  # why full_disk cannot run here, if it cannot
        # Faults on one node take turns (a kill's restart must not race a wipe).
        self.node_locks = {node_id: asyncio.Lock() for node_id in self.node_ids}
        self.data_loss_turn = asyncio.Lock()  # one wiped replica at a time (see _wipe)

    async def run(
        self, faults: list[PlannedFault], stop: asyncio.Event, *, mixed: bool = False
    ) -> None:
        if mixed:
            await self._run_overlapping(faults, stop)
            return
        for fault in faults:
            delay = fault.at_s - self.recorder.now()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return
                except TimeoutError:
                    pass
            if stop.is_set():
                return
            await self.inject(fault)

    async def _run_overlapping(self, faults: list[PlannedFault], stop: asyncio.Event) -> None:
        tasks = []
        for fault in faults:
            delay = fault.at_s - self.recorder.now()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            if stop.is_set():
                break
            tasks.append(asyncio.create_task(self.inject(fault)))
        await asyncio.gather(*tasks)

    async def heal_all(self) -> None:
        """Ends every fault: links healed, paused nodes resumed, stopped nodes started."""
        await asyncio.to_thread(self.proxies.heal)
        for node_id in self.node_ids:
            node = self.cluster.nodes[node_id]
            if node.paused:
                self.cluster.resume(node_id)
            if not node.is_running():
                self.cluster.start(node_id)

    # -- one fault ---------------------------------------------------------------------------

    async def inject(self, fault: PlannedFault) -> None:
        if fault.kind == "full_disk" and self.disk_problem is not None:
            print(f"full_disk skipped: {self.disk_problem}", file=sys.stderr, flush=True)
            return
        target = await asyncio.to_thread(self._resolve, fault)
        nodes = [target]
        if fault.kind in ("kill", "pause"):
            # several at once, up to a minority of the nodes
            extra = self.rng.randrange(len(self.node_ids) // 2)
            others = [n for n in self.node_ids if n != target]
            nodes += self.rng.sample(others, extra)
        if fault.kind == "rolling_restart":
            locks = list(self.node_ids)  # it restarts every node: nothing else on them meanwhile
        else:
            locks = [] if fault.kind in NETWORK_FAULTS else nodes
        for node_id in sorted(locks):
            await self.node_locks[node_id].acquire()
        try:
            await self._inject(fault, target, nodes)
        finally:
            for node_id in locks:
                self.node_locks[node_id].release()

    async def _inject(self, fault: PlannedFault, target: int, nodes: list[int]) -> None:
        start = self.recorder.now()
        targets, detail = list(nodes), ""
        log.info("nemesis.fault", kind=fault.kind, targets=nodes, duration_s=fault.duration_s)
        try:
            if fault.kind == "kill":
                for node_id in nodes:
                    await asyncio.to_thread(self.cluster.kill, node_id)
                await asyncio.sleep(fault.duration_s)
                for node_id in nodes:
                    await asyncio.to_thread(self.cluster.start, node_id)
            elif fault.kind == "pause":
                for node_id in nodes:
                    self.cluster.pause(node_id)
                await asyncio.sleep(fault.duration_s)
                for node_id in nodes:
                    self.cluster.resume(node_id)
            elif fault.kind == "wipe":
                detail = await self._wipe(fault, target)
            elif fault.kind == "rolling_restart":
                targets = await self._rolling_restart()
            elif fault.kind == "full_disk":
                ballast = await asyncio.to_thread(self.cluster.fill_disk, target)
                detail = f"data disk full ({ballast >> 20} MiB of ballast)"
                await asyncio.sleep(fault.duration_s)
                await asyncio.to_thread(self.cluster.free_disk, target)
                if not self.cluster.nodes[target].is_running():
                    self.cluster.kill(target)  # reap it (it stopped on the failed write)
                    await asyncio.to_thread(self.cluster.start, target)
            else:
                targets, detail = await self._network_fault(fault, target)
        finally:
            self.recorder.fault(fault.kind, targets, start, detail)

    async def _wipe(self, fault: PlannedFault, target: int) -> str:
        """The permanent loss of one replica's data. The guarantee is for one lost replica at
        a time (SPEC §7), so wipes take turns, each waits until every partition is fully in
        sync before it strikes, and holds the turn until they are in sync again."""
        async with self.data_loss_turn:
            if not await self._wait_fully_in_sync():
                print(
                    f"wipe at {fault.at_s:.0f}s skipped: the partitions were not fully in "
                    f"sync within {WIPE_SYNC_WAIT_S:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
                return "skipped: partitions not fully in sync"
            await asyncio.to_thread(self.cluster.kill, target)
            await asyncio.to_thread(self.cluster.wipe_data, target)
            await asyncio.sleep(fault.duration_s)
            await asyncio.to_thread(self.cluster.start, target)
            repaired = await self._wait_fully_in_sync()
            return "" if repaired else "the replica had not caught up when the turn ended"

    async def _wait_fully_in_sync(self) -> bool:
        return await asyncio.to_thread(
            self.cluster.wait_until,
            lambda: self.cluster.fully_in_sync(list(self.topics)),
            WIPE_SYNC_WAIT_S,
        )

    async def _network_fault(self, fault: PlannedFault, target: int) -> tuple[list[int], str]:
        others = [n for n in self.node_ids if n != target]
        if fault.kind == "partition":
            await asyncio.to_thread(self.proxies.isolate, target)
            targets, detail = [target], f"node {target} cut off from {others}"
        elif fault.kind == "one_way":
            peer = others[int(fault.choice * len(others)) % len(others)]
            await asyncio.to_thread(self.proxies.one_way, target, peer)
            targets, detail = [target, peer], f"{target} -> {peer} dropped"
        elif fault.kind == "bridge":
            a, b = others[0], others[-1]
            await asyncio.to_thread(self.proxies.bridge, [a], target, [b])
            targets, detail = [target], f"{a} and {b} meet only through {target}"
        elif fault.kind == "slow":
            delay = self.rng.uniform(*SLOW_DELAY_MS)
            await asyncio.to_thread(self.proxies.slow, None, delay, delay / 2)
            targets, detail = list(self.node_ids), f"every link delayed {delay:.0f} ms"
        else:
            assert fault.kind == "lossy", fault.kind
            probability = self.rng.uniform(*LOSS_PROBABILITY)
            await asyncio.to_thread(self.proxies.lossy, None, probability)
            targets, detail = list(self.node_ids), f"resets with p={probability:.3f} per chunk"
        await asyncio.sleep(fault.duration_s)
        await asyncio.to_thread(self.proxies.heal)
        return targets, detail

    async def _rolling_restart(self) -> list[int]:
        for node_id in self.node_ids:
            await asyncio.to_thread(self.cluster.terminate, node_id)
            self.cluster.start(node_id)
            node = self.cluster.nodes[node_id]
            await asyncio.to_thread(
                self.cluster.wait_until,
                lambda node=node: (
                    (node.get_json("/v1/status/ready") or {}).get("status") == "ready"
                ),
                READY_TIMEOUT_S,
            )
        return list(self.node_ids)

    def _resolve(self, fault: PlannedFault) -> int:
        """The node a fault hits, chosen when it starts."""
        if fault.target == "controller":
            controller = self.cluster.controller_id()
            if controller is not None:
                return controller
        if fault.target == "leader":
            leader = self._partition_leader()
            if leader is not None:
                return leader
        return self.node_ids[int(fault.choice * len(self.node_ids)) % len(self.node_ids)]

    def _partition_leader(self) -> int | None:
        """The leader of one of the topic's partitions, as a running node reports it."""
        base = f"/v3/clusters/{self.cluster.cluster_id}/topics/{self.topic}/partitions"
        for node in self.cluster.running():
            partitions = node.get_json(base)
            if partitions is None:
                continue
            leaders = []
            for partition in partitions.get("data", []):
                replicas = node.get_json(f"{base}/{partition['partition_id']}/replicas")
                for replica in (replicas or {}).get("data", []):
                    if replica.get("is_leader"):
                        leaders.append(int(replica["broker_id"]))
            if leaders:
                return leaders[int(self.rng.random() * len(leaders)) % len(leaders)]
        return None
