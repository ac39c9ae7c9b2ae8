"""A deterministic discrete-event simulation of a kraft metadata quorum (STYLE.md §3).

One run = one seed: a single `random.Random(seed)` draws the cluster shape, the core
settings, the fault mix, every network delay and drop, every crash point and every
election jitter (each core gets its own Random seeded from it). The clock is a tick counter;
there is no thread, no wall clock and no global random, and every dict or set is walked in
sorted order, so a seed replays exactly.

A run has three phases:
1. faults: clients propose while the network drops, duplicates, delays and partitions, and
   nodes crash (between or in the middle of Ready processing), restart and slow down;
2. liveness: everything heals; a leader must be elected and commit a new proposal within
   LIVENESS_BOUND_TICKS; then, with clients still proposing, every node must catch up with
   what was committed (CATCH_UP_BOUND_TICKS);
3. convergence: proposals stop; every node, observers included, must apply the same
   committed log within CONVERGENCE_BOUND_TICKS.
The invariants (tests/sim/checker.py) are checked after every event of every phase.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kraft.raft.config import RaftConfig
from kraft.raft.types import (
    Entry,
    NotLeaderError,
    ProposalTooLargeError,
    Ready,
    Role,
    Snapshot,
)
from tests.sim.checker import InvariantChecker, InvariantViolation
from tests.sim.faults import FaultPlan, choose_plan
from tests.sim.network import NetworkSettings, SimNetwork
from tests.sim.node import CoreFactory, NodeCrashed, SimNode, real_core_factory
from tests.sim.workload import Proposal, Workload

# Phase lengths and bounds, in ticks of the simulated clock.
FAULT_PHASE_MIN_TICKS = 200
FAULT_PHASE_MAX_TICKS = 1000
# After healing, a leader must be elected and must commit a proposal made after the heal
# within this many ticks (a few election rounds at the largest timeouts drawn below), plus
# the time a majority may need to catch up (see catch_up_allowance_ticks).
LIVENESS_BOUND_TICKS = 600
# Then, with clients still proposing, every node must apply everything committed so far
# within this many ticks plus twice its catch-up allowance.
CATCH_UP_BOUND_TICKS = 600
# After the workload stops, every node must have applied the whole committed log within
# this many ticks plus its catch-up allowance.
CONVERGENCE_BOUND_TICKS = 400
# Bytes an entry takes in a fetch beyond its data (kraft.raft.log.ENTRY_OVERHEAD_BYTES).
ENTRY_OVERHEAD_BYTES = 16
# Hard stop for any run, whatever its phases do: a loop that runs away fails loudly here.
MAX_EVENTS_PER_RUN = 400_000
RECENT_EVENTS_KEPT = 40

Describe = tuple[object, ...]


class SimulationFailure(AssertionError):
    """A run broke an invariant or a bound; the message says how to replay it."""

    def __init__(self, seed: int, event: int, tick: int, fact: str, recent: list[str]) -> None:
        self.seed = seed
        self.event = event
        self.tick = tick
        self.fact = fact
        lines = [
            f"simulation seed {seed} failed at event {event} (tick {tick}): {fact}",
            "last events:",
            *(f"  {line}" for line in recent),
            f"replay: pytest tests/sim --seed={seed} --sim-trace",
        ]
        super().__init__("\n".join(lines))


@dataclass(frozen=True, slots=True)
class ClusterShape:
    voters: tuple[int, ...]
    observers: tuple[int, ...]
    snapshot_every_entries: int  # 0: never snapshot
    base_max_delay_ticks: int
    propose_every_ticks: int
    fault_phase_ticks: int
    leader_sends_first: bool  # the shell of kraft.quorum.runtime (see tests/sim/node.py)

    @property
    def nodes(self) -> tuple[int, ...]:
        return self.voters + self.observers


@dataclass(slots=True)
class RunResult:
    seed: int
    profile: str
    voters: int
    observers: int
    ticks: int
    events: int
    proposed: int
    acknowledged: int
    committed_offsets: int
    crashes: int
    crashes_inside_ready: int
    snapshots_loaded: int
    truncations: int
    final_epoch: int
    messages_sent: int


def choose_config(rng: random.Random, node_id: int, voters: tuple[int, ...]) -> RaftConfig:
    """Core settings for this run; small timeouts keep runs short."""
    # Fetch and chunk sizes go down to a few entries, so that capped reads and chunked
    # snapshot transfers happen, but not so low that catching up outlasts a run.
    fetch_max_wait = rng.randint(2, 5)
    config = RaftConfig(
        node_id=node_id,
        voters=frozenset(voters),
        fetch_timeout_ticks=rng.randint(12, 24),
        election_timeout_ticks=rng.randint(5, 12),
        fetch_max_wait_ticks=fetch_max_wait,
        fetch_request_timeout_ticks=fetch_max_wait + rng.randint(6, 12),
        begin_quorum_resend_ticks=rng.randint(3, 8),
        fetch_max_bytes=rng.choice([1024, 4096, 1024 * 1024]),
        snapshot_chunk_max_bytes=rng.choice([1024, 8192, 1024 * 1024]),
        # Sometimes small enough that the leader pushes back on proposals.
        max_uncommitted_entries=rng.choice([30, 200_000, 200_000]),
    )
    config.validate()
    return config


def choose_shape(rng: random.Random, node_counts: tuple[int, int] | None) -> ClusterShape:
    """The cluster of this run; `node_counts` (voters, observers) overrides the draw."""
    voter_count = rng.choice([1, 3, 3, 3, 3, 5, 5])
    observer_count = rng.choice([0, 0, 0, 1, 2])
    if node_counts is not None:
        voter_count, observer_count = node_counts
    voters = tuple(range(1, voter_count + 1))
    observers = tuple(range(voter_count + 1, voter_count + observer_count + 1))
    return ClusterShape(
        voters=voters,
        observers=observers,
        snapshot_every_entries=rng.choice([0, 10, 25, 60]),
        base_max_delay_ticks=rng.randint(1, 3),
        propose_every_ticks=rng.randint(2, 8),
        fault_phase_ticks=rng.randint(FAULT_PHASE_MIN_TICKS, FAULT_PHASE_MAX_TICKS),
        leader_sends_first=rng.random() < 0.5,
    )


@dataclass(order=True, slots=True)
class Timer:
    at_tick: int
    sequence: int
    action: str = field(compare=False)
    node_id: int = field(compare=False)


class Simulation:
    # The shell of each node; the controller mode (tests/sim/controller_simulation.py)
    # gives its nodes a metadata state machine.
    node_type: type[SimNode] = SimNode

    def __init__(
        self,
        seed: int,
        trace: Callable[[str], None] | None = None,
        core_factory: CoreFactory | None = None,
        node_counts: tuple[int, int] | None = None,
        shape: ClusterShape | None = None,
        plan: FaultPlan | None = None,
        config_overrides: dict[str, int] | None = None,
    ) -> None:
        """`shape`, `plan` and `config_overrides` (RaftConfig fields) replace what the seed
        would draw; scripted scenarios (tests/sim/test_scenarios.py) use them."""
        self.seed = seed
        self.rng = random.Random(seed)
        self.trace = trace
        self.shape = shape if shape is not None else choose_shape(self.rng, node_counts)
        self.plan: FaultPlan = (
            plan if plan is not None else choose_plan(self.rng, self.shape.base_max_delay_ticks)
        )
        self.now = 0
        self.event_number = 0
        self.recent: deque[tuple[int, int, Describe]] = deque(maxlen=RECENT_EVENTS_KEPT)
        self.network = SimNetwork(self.rng)
        self.checker = InvariantChecker(list(self.shape.voters))
        self.workload = Workload(seed)
        self.timers: list[Timer] = []
        self.timer_sequence = 0
        self.crashes = 0
        self.crashes_inside_ready = 0
        self.snapshots_loaded = 0
        self.truncations = 0
        self.faults_on = True
        self.heal_tick: int | None = None
        self.liveness_proven_at: int | None = None
        factory = core_factory if core_factory is not None else real_core_factory()
        self.nodes: dict[int, SimNode] = {}
        for node_id in self.shape.nodes:
            config = choose_config(self.rng, node_id, self.shape.voters)
            if config_overrides:
                config = dataclasses.replace(config, **config_overrides)  # type: ignore[arg-type]
                config.validate()
            self.nodes[node_id] = self.node_type(
                config,
                self.rng,
                self,
                self.shape.snapshot_every_entries,
                factory,
                self.shape.leader_sends_first,
            )
        self._set_network_faults(on=True)
        self.next_partition_tick = self._next_gap(self.plan.partition_every_ticks)
        self.next_crash_tick = self._next_gap(self.plan.crash_every_ticks)
        self.next_slow_tick = self._next_gap(self.plan.slow_every_ticks)

    # -- running --------------------------------------------------------------------------

    def run(self) -> RunResult:
        self._emit(
            f"seed {self.seed}: profile {self.plan.profile}, voters {list(self.shape.voters)}, "
            f"observers {list(self.shape.observers)}, {self.shape}, {self.plan}"
        )
        try:
            self.start_all()
            self._run_phases()
        except SimulationFailure:
            raise
        except Exception as error:  # a core assertion or a contract error: report the seed
            fact = f"{type(error).__name__}: {error}"
            raise self._failure(fact) from error
        return self._result()

    # -- scripted scenarios ---------------------------------------------------------------

    def start_all(self) -> None:
        for node_id in sorted(self.nodes):
            self._event(("start", node_id), node_id, functools.partial(self._start, node_id))

    def crash_node(self, node_id: int) -> None:
        """Crashes a node between events; it stays down until restart_node."""
        self._event(("crash", node_id), node_id, lambda: self._crash(node_id, "scripted"))
        self.timers = [t for t in self.timers if t.node_id != node_id]
        heapq.heapify(self.timers)

    def restart_node(self, node_id: int) -> None:
        self._event(("restart", node_id), node_id, lambda: self._start(node_id))

    def run_ticks(self, count: int, propose: bool) -> None:
        """Advances the clock, checking every invariant after every event."""
        try:
            for _ in range(count):
                self._step_tick(propose)
        except SimulationFailure:
            raise
        except Exception as error:  # a core assertion or a contract error: report the seed
            raise self._failure(f"{type(error).__name__}: {error}") from error

    def _run_phases(self) -> None:
        fault_end = self.shape.fault_phase_ticks
        while self.now < fault_end:
            self._step_tick(propose=True)
        self._heal()
        allowance = self._catch_up_allowance_ticks()
        deadline = self.now + LIVENESS_BOUND_TICKS + allowance
        while self.liveness_proven_at is None:
            if self.now >= deadline:
                raise self._failure(
                    f"no leader committed a new proposal within LIVENESS_BOUND_TICKS "
                    f"({LIVENESS_BOUND_TICKS}) + {allowance} catch-up ticks after healing at "
                    f"tick {self.heal_tick}; {self._roles()}"
                )
            self._step_tick(propose=True)
        self._catch_up_under_load()
        allowance = self._catch_up_allowance_ticks()
        deadline = self.now + CONVERGENCE_BOUND_TICKS + allowance
        while not self._converged():
            if self.now >= deadline:
                raise self._failure(
                    f"nodes did not converge within CONVERGENCE_BOUND_TICKS "
                    f"({CONVERGENCE_BOUND_TICKS}) + {allowance} catch-up ticks after the "
                    f"workload stopped; {self._roles()}"
                )
            self._step_tick(propose=False)
        self._check_final_state()

    def _catch_up_under_load(self) -> None:
        """With clients still proposing, every node (observers too) must apply everything
        committed so far: a lagging replica catches up under a load the quorum sustains."""
        target = self.checker.committed_end
        allowance = self._catch_up_allowance_ticks()
        deadline = self.now + CATCH_UP_BOUND_TICKS + 2 * allowance
        while True:
            behind = [
                node_id
                for node_id in sorted(self.nodes)
                if self.nodes[node_id].live_state_machine().applied_end < target
            ]
            if not behind:
                return
            if self.now >= deadline:
                raise self._failure(
                    f"nodes {behind} did not apply the committed log up to offset {target} "
                    f"within CATCH_UP_BOUND_TICKS ({CATCH_UP_BOUND_TICKS}) + {2 * allowance} "
                    f"catch-up ticks while clients kept proposing; {self._roles()}"
                )
            self._step_tick(propose=True)

    def _catch_up_allowance_ticks(self) -> int:
        """Time for the most lagging node to fetch the whole log, or a snapshot of it, at
        the smallest fetch and chunk sizes of the run, one round trip per request."""
        log_bytes = sum(
            len(entry.data) + ENTRY_OVERHEAD_BYTES for entry in self.checker.committed.values()
        )
        log_end = max(
            (n.live_core().status().log_end_offset for n in self.nodes.values() if n.is_up),
            default=0,
        )
        log_bytes += (log_end - self.checker.committed_end) * 32  # uncommitted, estimated
        smallest_fetch = min(n.config.fetch_max_bytes for n in self.nodes.values())
        smallest_chunk = min(n.config.snapshot_chunk_max_bytes for n in self.nodes.values())
        transfers = log_bytes // smallest_fetch + log_bytes // smallest_chunk + 2
        round_trip_ticks = 2 * self.shape.base_max_delay_ticks + 2
        return transfers * round_trip_ticks

    def _step_tick(self, propose: bool) -> None:
        """One tick of simulated time: timers, faults, a client, messages, node ticks."""
        self.now += 1
        while self.timers and self.timers[0].at_tick <= self.now:
            timer = heapq.heappop(self.timers)
            self._fire_timer(timer)
        if self.faults_on:
            self._maybe_inject_faults()
        if propose and self.now % self.shape.propose_every_ticks == 0:
            self._client_proposes()
        while True:
            item = self.network.next_due(self.now)
            if item is None:
                break
            node = self.nodes[item.destination]
            if not node.is_up:
                continue
            self._event(
                ("deliver", item.source, item.destination, item.message),
                item.destination,
                functools.partial(node.deliver, item.source, item.message),
            )
        for node_id in sorted(self.nodes):
            node = self.nodes[node_id]
            if node.is_up and (self.now + node.tick_phase) % node.tick_period == 0:
                self._event(("tick", node_id), node_id, node.tick)

    def _event(self, describe: Describe, node_id: int, action: Callable[[], object]) -> None:
        """Runs one event, handles a crash that went off inside it, checks invariants."""
        self.event_number += 1
        if self.event_number > MAX_EVENTS_PER_RUN:
            raise self._failure(f"more than MAX_EVENTS_PER_RUN ({MAX_EVENTS_PER_RUN}) events")
        self.recent.append((self.event_number, self.now, describe))
        if self.trace is not None:
            self._emit(self._format(self.event_number, self.now, describe))
        try:
            action()
        except NodeCrashed as crash:
            self.crashes_inside_ready += 1
            self._crash(node_id, f"inside Ready processing, {crash.point}")
        except InvariantViolation as violation:
            raise self._failure(str(violation)) from violation
        self._check_invariants()

    def _check_invariants(self) -> None:
        try:
            for node_id in sorted(self.nodes):
                node = self.nodes[node_id]
                core = node.core
                if core is None:
                    continue
                self.checker.check_node(
                    node_id,
                    core.role,
                    core.epoch,
                    core.high_watermark,
                    node.storage.durable_epoch(),
                )
        except InvariantViolation as violation:
            raise self._failure(str(violation)) from violation

    # -- node life cycle ------------------------------------------------------------------

    def _start(self, node_id: int) -> None:
        node = self.nodes[node_id]
        node.start()
        core = node.live_core()
        snapshot = node.storage.durable.snapshot
        self.checker.on_start(
            node_id,
            core.epoch,
            node.storage.durable_epoch(),
            core.high_watermark,
            0 if snapshot is None else snapshot.snapshot_id.end_offset,
        )
        node.drain()

    def _crash(self, node_id: int, how: str) -> None:
        node = self.nodes[node_id]
        if not node.is_up:
            return
        kept = node.crash()
        self.crashes += 1
        self.workload.on_node_crashed(node_id)
        self._emit(f"  node {node_id} crashed {how}; {kept} unsynced writes survived")
        if self.faults_on:
            down_ticks = self.rng.randint(1, self.plan.max_down_ticks)
            self._add_timer(self.now + down_ticks, "restart", node_id)

    def _resign(self, node: SimNode) -> None:
        node.live_core().resign()
        node.drain()

    def _add_timer(self, at_tick: int, action: str, node_id: int) -> None:
        self.timer_sequence += 1
        heapq.heappush(self.timers, Timer(at_tick, self.timer_sequence, action, node_id))

    def _fire_timer(self, timer: Timer) -> None:
        node = self.nodes[timer.node_id]
        if timer.action == "restart":
            if not node.is_up:
                self._event(
                    ("restart", timer.node_id), timer.node_id, lambda: self._start(node.node_id)
                )
        elif timer.action == "shutdown":
            if node.is_up:
                node_id = timer.node_id
                self._event(
                    ("shutdown", node_id), node_id, lambda: self._crash(node_id, "shut down")
                )
        elif timer.action == "unslow":
            self._set_slow(timer.node_id, period=1, extra_delay=0)
        else:
            raise AssertionError(f"unknown timer action {timer.action}")

    # -- faults ---------------------------------------------------------------------------

    def _next_gap(self, mean_ticks: int | None) -> int | None:
        if mean_ticks is None:
            return None
        return self.now + self.rng.randint(1, 2 * mean_ticks)

    def _set_network_faults(self, on: bool) -> None:
        if on:
            self.network.settings = NetworkSettings(
                drop_probability=self.plan.drop_probability,
                duplicate_probability=self.plan.duplicate_probability,
                min_delay_ticks=1,
                max_delay_ticks=self.plan.max_delay_ticks,
                long_delay_probability=self.plan.long_delay_probability,
            )
        else:
            self.network.settings = NetworkSettings(
                min_delay_ticks=1, max_delay_ticks=self.shape.base_max_delay_ticks
            )

    def _maybe_inject_faults(self) -> None:
        if self.next_partition_tick is not None and self.now >= self.next_partition_tick:
            self._change_partition()
            self.next_partition_tick = self._next_gap(self.plan.partition_every_ticks)
        if self.next_crash_tick is not None and self.now >= self.next_crash_tick:
            self._inject_crash()
            self.next_crash_tick = self._next_gap(self.plan.crash_every_ticks)
        if self.next_slow_tick is not None and self.now >= self.next_slow_tick:
            self._inject_slowness()
            self.next_slow_tick = self._next_gap(self.plan.slow_every_ticks)

    def _change_partition(self) -> None:
        nodes = sorted(self.nodes)
        slow_delays = dict(self.network.slow_extra_delay_ticks)
        self.network.heal()
        self.network.slow_extra_delay_ticks = slow_delays
        kind = self.rng.choice(["heal", "split", "isolate", "one_way", "bridge"])
        if kind == "split" and len(nodes) > 1:
            shuffled = list(nodes)
            self.rng.shuffle(shuffled)
            cut = self.rng.randint(1, len(nodes) - 1)
            side_a, side_b = sorted(shuffled[:cut]), sorted(shuffled[cut:])
            self.network.partition(side_a, side_b)
            detail = f"split {side_a} | {side_b}"
        elif kind == "isolate":
            alone = self.rng.choice(nodes)
            self.network.partition([alone], [n for n in nodes if n != alone])
            detail = f"isolate {alone}"
        elif kind == "one_way" and len(nodes) > 1:
            links = []
            for _ in range(self.rng.randint(1, len(nodes))):
                source, destination = self.rng.sample(nodes, 2)
                self.network.block_one_way(source, destination)
                links.append(f"{source}->{destination}")
            detail = f"one-way cut {', '.join(links)}"
        elif kind == "bridge" and len(nodes) > 2:
            bridge_node = self.rng.choice(nodes)
            self.network.bridge(nodes, bridge_node)
            detail = f"bridge through {bridge_node}"
        else:
            detail = "healed"
        self._event(("network", detail), 0, lambda: None)

    def _inject_crash(self) -> None:
        up = [node_id for node_id in sorted(self.nodes) if self.nodes[node_id].is_up]
        if not up:
            return
        node_id = self.rng.choice(up)
        mode = self.rng.random()
        if mode < 0.2:
            # Graceful shutdown: the node resigns (a leader sends EndQuorumEpoch), keeps
            # running for a few ticks, then stops.
            node = self.nodes[node_id]
            self._event(("resign", node_id), node_id, lambda: self._resign(node))
            self._add_timer(self.now + self.rng.randint(1, 10), "shutdown", node_id)
        elif mode < 0.6:
            self._event(("crash", node_id), node_id, lambda: self._crash(node_id, "between events"))
        else:
            crash_points = self.rng.randint(1, 12)
            self.nodes[node_id].arm_crash(crash_points)
            self._emit(f"  node {node_id} will crash at its {crash_points}th crash point")

    def _inject_slowness(self) -> None:
        node_id = self.rng.choice(sorted(self.nodes))
        period = self.rng.randint(2, 6)
        extra_delay = self.rng.randint(0, 8)
        self._set_slow(node_id, period, extra_delay)
        self._add_timer(self.now + self.rng.randint(10, 150), "unslow", node_id)

    def _set_slow(self, node_id: int, period: int, extra_delay: int) -> None:
        node = self.nodes[node_id]
        node.tick_period = period
        node.tick_phase = self.rng.randint(0, period - 1)
        if extra_delay:
            self.network.slow_extra_delay_ticks[node_id] = extra_delay
        else:
            self.network.slow_extra_delay_ticks.pop(node_id, None)
        self._emit(f"  node {node_id} ticks every {period}, +{extra_delay} delay to it")

    def _heal(self) -> None:
        """Ends the fault phase: network healed, every node up and at full speed."""
        self.faults_on = False
        self.heal_tick = self.now
        self.network.heal()
        self._set_network_faults(on=False)
        self.timers = [t for t in self.timers if t.action not in ("restart", "shutdown")]
        heapq.heapify(self.timers)
        for node_id in sorted(self.nodes):
            node = self.nodes[node_id]
            node.crash_countdown = None
            self._set_slow(node_id, period=1, extra_delay=0)
            if not node.is_up:
                self._event(("restart", node_id), node_id, functools.partial(self._start, node_id))
        self._event(("network", "healed for good"), 0, lambda: None)

    # -- clients --------------------------------------------------------------------------

    def _client_proposes(self) -> None:
        up = [node_id for node_id in sorted(self.nodes) if self.nodes[node_id].is_up]
        if not up:
            return
        target = self.workload.leader_guess
        if target is None or target not in up:
            target = self.rng.choice(up)
        records = self.workload.new_records(self.rng.randint(1, 3))
        self._event(("propose", target, records), target, lambda: self._propose(target, records))

    def _propose(self, node_id: int, records: tuple[bytes, ...]) -> None:
        node = self.nodes[node_id]
        try:
            ack = node.live_core().propose(list(records))
        except NotLeaderError as error:
            self.workload.stats.rejected_not_leader += 1
            self.workload.leader_guess = error.leader_id
            return
        except ProposalTooLargeError:
            self.workload.stats.rejected_other += 1
            return
        core = node.live_core()
        if core.role is not Role.LEADER or ack.epoch != core.epoch:
            raise InvariantViolation(
                f"node {node_id} accepted a proposal as {core.role.value} of epoch "
                f"{core.epoch} with {ack}"
            )
        self.workload.leader_guess = node_id
        self.workload.on_proposed(Proposal(node_id, node.incarnation, records, ack, self.now))
        self._emit(f"  node {node_id} accepted {records} as {ack}")
        node.drain()

    # -- hooks the shells call (tests.sim.node.ShellHooks) --------------------------------

    def send(self, source: int, destination: int, message: object) -> None:
        self.checker.on_send(source, destination, message, self.nodes[source].storage)
        if destination not in self.nodes:
            raise InvariantViolation(f"node {source} sent to unknown node {destination}")
        self.network.send(self.now, source, destination, message)
        if self.trace is not None:
            text = f"  send {source}->{destination} {message!r}"
            self._emit(text if len(text) <= 300 else text[:297] + "...")

    def on_commit(self, node_id: int, entry: Entry) -> None:
        self.checker.on_commit(node_id, entry)
        proposal = self.workload.on_commit(node_id, entry)
        if proposal is None:
            return
        storages = {voter: self.nodes[voter].storage for voter in self.shape.voters}
        self.checker.on_acknowledged(
            node_id, proposal.ack.epoch, proposal.ack.base_offset, proposal.records, storages
        )
        self._emit(f"  acknowledged {proposal.records} at {proposal.ack}")
        if (
            self.heal_tick is not None
            and self.liveness_proven_at is None
            and proposal.proposed_at_tick >= self.heal_tick
        ):
            self.liveness_proven_at = self.now

    def on_snapshot_loaded(self, node_id: int, snapshot: Snapshot) -> None:
        self.checker.on_snapshot_loaded(node_id, snapshot)
        self.snapshots_loaded += 1
        self.workload.on_snapshot_loaded(node_id, snapshot.snapshot_id.end_offset)
        self._emit(f"  node {node_id} loaded snapshot {snapshot.snapshot_id}")

    def on_ready(self, node_id: int, ready: Ready) -> None:
        if ready.truncate_to is not None:
            self.truncations += 1
        if ready.committed and ready.committed[-1].offset >= ready.high_watermark:
            raise InvariantViolation(
                f"node {node_id} handed out committed offset {ready.committed[-1].offset} "
                f"with high watermark {ready.high_watermark}"
            )
        if self.trace is None:
            return
        for change in ready.role_changes:
            self._emit(
                f"  node {node_id}: {change.from_role.value} -> {change.to_role.value} "
                f"in epoch {change.epoch} (leader {change.leader_id}): {change.reason}"
            )
        parts = []
        if ready.election_state is not None:
            parts.append(f"persist {ready.election_state}")
        if ready.snapshot is not None:
            parts.append(f"snapshot {ready.snapshot.snapshot_id}")
        if ready.log_start_offset is not None:
            parts.append(f"log start {ready.log_start_offset}")
        if ready.truncate_to is not None:
            parts.append(f"truncate to {ready.truncate_to}")
        if ready.entries:
            parts.append(f"append {ready.entries[0].offset}..{ready.entries[-1].offset}")
        if ready.messages:
            parts.append(f"send {len(ready.messages)}")
        if ready.snapshot_to_load is not None:
            parts.append(f"load {ready.snapshot_to_load.snapshot_id}")
        if ready.committed:
            parts.append(f"apply {ready.committed[0].offset}..{ready.committed[-1].offset}")
        if parts:
            self._emit(f"  node {node_id} ready: {'; '.join(parts)}")

    # -- end of run -----------------------------------------------------------------------

    def _leader(self) -> SimNode | None:
        for node_id in sorted(self.nodes):
            core = self.nodes[node_id].core
            if core is not None and core.role == Role.LEADER:
                return self.nodes[node_id]
        return None

    def _converged(self) -> bool:
        leader = self._leader()
        if leader is None:
            return False
        log_end = leader.live_core().status().log_end_offset
        for node_id in sorted(self.nodes):
            node = self.nodes[node_id]
            if node.state_machine is None or node.state_machine.applied_end != log_end:
                return False
        return True

    def _check_final_state(self) -> None:
        leader = self._leader()
        assert leader is not None
        applied_end = leader.live_state_machine().applied_end
        expected = self.checker.expected_values(applied_end)
        if expected is None:
            raise self._failure(f"the committed log has a gap below {applied_end}")
        for node_id in sorted(self.nodes):
            values = self.nodes[node_id].live_state_machine().values
            if values != expected:
                raise self._failure(
                    f"node {node_id} converged to {len(values)} values, the committed log "
                    f"holds {len(expected)}"
                )
        for proposal in self.workload.acknowledged:
            if proposal.ack.last_offset >= applied_end:
                raise self._failure(
                    f"acknowledged proposal {proposal.records} at {proposal.ack} is not in the "
                    f"final committed log, which ends at {applied_end}"
                )
            committed = self.checker.committed[proposal.ack.last_offset]
            if committed.epoch != proposal.ack.epoch:
                raise self._failure(
                    f"acknowledged proposal {proposal.records} at {proposal.ack} ended up with "
                    f"epoch {committed.epoch}"
                )

    def _result(self) -> RunResult:
        stats = self.workload.stats
        return RunResult(
            seed=self.seed,
            profile=self.plan.profile,
            voters=len(self.shape.voters),
            observers=len(self.shape.observers),
            ticks=self.now,
            events=self.event_number,
            proposed=stats.proposed,
            acknowledged=stats.acknowledged,
            committed_offsets=self.checker.committed_end,
            crashes=self.crashes,
            crashes_inside_ready=self.crashes_inside_ready,
            snapshots_loaded=self.snapshots_loaded,
            truncations=self.truncations,
            final_epoch=max(self.checker.last_epoch.values(), default=0),
            messages_sent=self.network.sent,
        )

    # -- reporting ------------------------------------------------------------------------

    def _roles(self) -> str:
        parts = []
        for node_id in sorted(self.nodes):
            core = self.nodes[node_id].core
            if core is None:
                parts.append(f"{node_id}: down")
            else:
                parts.append(
                    f"{node_id}: {core.role.value} epoch {core.epoch} leader {core.leader_id} "
                    f"hw {core.high_watermark}"
                )
        return "roles " + ", ".join(parts)

    def _failure(self, fact: str) -> SimulationFailure:
        recent = [self._format(number, tick, describe) for number, tick, describe in self.recent]
        return SimulationFailure(self.seed, self.event_number, self.now, fact, recent)

    @staticmethod
    def _format(number: int, tick: int, describe: Describe) -> str:
        kind = describe[0]
        if kind == "deliver":
            _, source, destination, message = describe
            text = f"deliver {source}->{destination} {message!r}"
        else:
            text = " ".join(str(part) for part in describe)
        if len(text) > 300:
            text = text[:297] + "..."
        return f"#{number} t={tick} {text}"

    def _emit(self, line: str) -> None:
        if self.trace is not None:
            self.trace(line)


def run_seed(
    seed: int,
    trace: Callable[[str], None] | None = None,
    core_factory: CoreFactory | None = None,
    node_counts: tuple[int, int] | None = None,
) -> RunResult:
    """Runs one seed; raises SimulationFailure, naming the seed, if anything breaks."""
    return Simulation(seed, trace, core_factory, node_counts).run()
