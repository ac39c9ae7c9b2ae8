"""The shell of one simulated node: it drives a real RaftCore the way kraft.quorum does.

After every input (tick, message, proposal, compaction) the shell drains the core's Ready
values and handles each in the order the Ready contract gives: persist the election state,
the snapshot (then drop entries below the log start), truncate, append, fsync; only then
send; then load a snapshot and apply committed entries to the state machine; then advance.
In some runs a leader sends before it persists, as kraft.quorum.runtime does (see _handle).

A crash can be armed with a countdown of "crash points" (one between every two steps of
the list above, one after each message sent). When it reaches zero the shell stops in the
middle of the Ready: writes not yet synced may be lost, later messages are never sent, the
core is thrown away. The simulation then restarts the node from its durable storage.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from kraft.raft.config import RaftConfig
from kraft.raft.messages import Message
from kraft.raft.types import (
    Entry,
    ProposalAck,
    QuorumStatus,
    Ready,
    RestoredState,
    Role,
    Snapshot,
)
from tests.sim.statemachine import ValueList
from tests.sim.storage import SimStorage


class NodeCrashed(Exception):
    """An armed crash went off inside the shell; `point` names where."""

    def __init__(self, point: str) -> None:
        super().__init__(point)
        self.point = point


class CoreLike(Protocol):
    """The API of kraft.raft.core.RaftCore that the shell uses."""

    def tick(self) -> None: ...

    def ticks_until_due(self) -> int: ...

    def step(self, sender: int, message: Message) -> None: ...

    def propose(self, records: Sequence[bytes]) -> ProposalAck: ...

    def resign(self) -> None: ...

    def compact(self, snapshot: Snapshot) -> None: ...

    def has_ready(self) -> bool: ...

    def ready(self) -> Ready: ...

    def advance(self, ready: Ready) -> None: ...

    def status(self) -> QuorumStatus: ...

    @property
    def role(self) -> Role: ...

    @property
    def epoch(self) -> int: ...

    @property
    def leader_id(self) -> int | None: ...

    @property
    def high_watermark(self) -> int: ...


CoreFactory = Callable[[RaftConfig, RestoredState, random.Random], CoreLike]


def real_core_factory() -> CoreFactory:
    """kraft.raft.core.RaftCore, imported only when a simulation runs."""
    from kraft.raft.core import RaftCore

    return RaftCore


class ShellHooks(Protocol):
    def send(self, source: int, destination: int, message: object) -> None: ...

    def on_commit(self, node_id: int, entry: Entry) -> None: ...

    def on_snapshot_loaded(self, node_id: int, snapshot: Snapshot) -> None: ...

    def on_ready(self, node_id: int, ready: Ready) -> None: ...


class SimNode:
    def __init__(
        self,
        config: RaftConfig,
        rng: random.Random,
        hooks: ShellHooks,
        snapshot_every_entries: int,
        core_factory: CoreFactory,
        leader_sends_first: bool = False,
    ) -> None:
        self.node_id = config.node_id
        self.config = config
        self.rng = rng
        self.hooks = hooks
        self.snapshot_every_entries = snapshot_every_entries
        self.core_factory = core_factory
        self.leader_sends_first = leader_sends_first
        self.storage = SimStorage()
        self.core: CoreLike | None = None
        self.state_machine: ValueList | None = None
        self.incarnation = 0
        self.crash_countdown: int | None = None
        self.tick_period = 1  # > 1 while the node is slow
        self.tick_phase = 0

    @property
    def is_up(self) -> bool:
        return self.core is not None

    def live_core(self) -> CoreLike:
        assert self.core is not None, f"node {self.node_id} is down"
        return self.core

    def live_state_machine(self) -> ValueList:
        assert self.state_machine is not None, f"node {self.node_id} is down"
        return self.state_machine

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        assert self.core is None, f"node {self.node_id} is already up"
        restored = self.storage.restored()
        core_rng = random.Random(self.rng.getrandbits(64))
        self.core = self.core_factory(self.config, restored, core_rng)
        self.state_machine = self.new_state_machine(restored.snapshot)
        self.incarnation += 1
        self.crash_countdown = None

    def new_state_machine(self, snapshot: Snapshot | None) -> ValueList:
        """The state machine a (re)started node applies to; the controller mode of the
        simulation (tests/sim/controller_simulation.py) replaces it."""
        return ValueList(snapshot)

    def crash(self) -> int:
        """Loses the core, the state machine and unsynced writes; returns how many pending
        writes survived."""
        self.core = None
        self.state_machine = None
        self.crash_countdown = None
        return self.storage.crash(self.rng)

    def arm_crash(self, crash_points: int) -> None:
        self.crash_countdown = crash_points

    def _crash_point(self, point: str) -> None:
        if self.crash_countdown is None:
            return
        self.crash_countdown -= 1
        if self.crash_countdown <= 0:
            raise NodeCrashed(point)

    # -- inputs ---------------------------------------------------------------------------

    def tick(self) -> None:
        core = self.live_core()
        quiet = core.ticks_until_due()
        core.tick()
        # the runtime sleeps through the ticks the core says are not due yet: each of them
        # must change nothing (no message, no role or election-state change)
        assert quiet == 1 or not core.has_ready(), (
            f"node {self.node_id}: a tick acted {quiet - 1} ticks before ticks_until_due said"
        )
        self.drain()

    def deliver(self, source: int, message: object) -> None:
        self.live_core().step(source, cast(Message, message))
        self.drain()

    def propose(self, records: Sequence[bytes]) -> ProposalAck:
        ack = self.live_core().propose(records)
        self.drain()
        return ack

    # -- the Ready loop -------------------------------------------------------------------

    def drain(self) -> None:
        core = self.live_core()
        while core.has_ready():
            self._crash_point("before ready")
            ready = core.ready()
            self.hooks.on_ready(self.node_id, ready)
            self._handle(core, ready)
            snapshot = self.live_state_machine().maybe_snapshot(self.snapshot_every_entries)
            if snapshot is not None:
                core.compact(snapshot)

    def _handle(self, core: CoreLike, ready: Ready) -> None:
        # kraft.quorum.runtime lets a leader send before it persists (Raft thesis §10.2.1)
        # when the Ready changes no election state, truncates nothing and installs no
        # snapshot; runs with leader_sends_first model that shell.
        send_first = (
            self.leader_sends_first
            and core.role is Role.LEADER
            and ready.election_state is None
            and ready.truncate_to is None
            and ready.snapshot is None
        )
        if send_first:
            self._send(ready)
        self._persist(ready)
        self.storage.sync()
        self._crash_point("after fsync")
        if not send_first:
            self._send(ready)
        self._apply(ready)
        self._crash_point("after apply, before advance")
        core.advance(ready)

    def _send(self, ready: Ready) -> None:
        for outbound in ready.messages:
            self.hooks.send(self.node_id, outbound.to, outbound.message)
            self._crash_point(f"after sending to {outbound.to}")

    def _persist(self, ready: Ready) -> None:
        storage = self.storage
        if ready.election_state is not None:
            storage.write_election_state(ready.election_state)
            self._crash_point("after election state write")
        if ready.snapshot is not None:
            storage.save_snapshot(ready.snapshot)
            self._crash_point("after snapshot write")
        if ready.log_start_offset is not None:
            storage.delete_before(ready.log_start_offset)
            self._crash_point("after delete below log start")
        if ready.truncate_to is not None:
            storage.truncate(ready.truncate_to)
            self._crash_point("after truncate")
        if ready.entries:
            storage.append(ready.entries)
            self._crash_point("after append, before fsync")

    def _apply(self, ready: Ready) -> None:
        state_machine = self.live_state_machine()
        if ready.snapshot_to_load is not None:
            state_machine.load(ready.snapshot_to_load)
            self.hooks.on_snapshot_loaded(self.node_id, ready.snapshot_to_load)
        for entry in ready.committed:
            state_machine.apply(entry)
            self.hooks.on_commit(self.node_id, entry)
