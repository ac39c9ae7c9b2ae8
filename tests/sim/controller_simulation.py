"""The controller mode of the simulator: the real QuorumController over the real Raft cores.

Every node applies the committed metadata log to a real MetadataStateMachine
(tests/sim/controller_statemachine.py); snapshots and their loads go through its
snapshot()/restore(). A node that leads the quorum runs a controller shell modelled on
kraft.controller.service.ControllerService:
- once it may activate (ACTIVATION_RULES below), it builds a QuorumController over a copy of
  its committed image, and builds a new one after any change of epoch;
- it decides a batch of queued requests against the working image, proposes the encoded
  records of the whole batch in one core.propose, and decides nothing else until that
  proposal is resolved: committed at its last offset in its epoch (the requests are
  answered), committed there from another epoch or skipped by a snapshot (lost), or not
  committed within the commit timeout (lost, although its entries may still commit); a
  lost proposal, like a failed propose, throws the working controller away;
- every CONTROLLER_TICK_EVERY_TICKS it queues a tick when its queue is empty.
The clients (tests/sim/controller_workload.py) send their requests to the node they believe
leads; simulated time is `tick * TICK_MS` milliseconds.

Invariants, after every event: those of the quorum (tests/sim/checker.py), those of the
committed metadata history (tests/sim/controller_checker.py: every node's image equals the
image replayed from the committed log at its applied end; leaders within ISRs, ISRs within
replicas and never empty; one leader per leader epoch; epochs never go back), and, at every
decision, that the controller refuses what the workload's oracle says it must refuse. At the
end, after healing, every node's image equals the reference image of the whole log.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import structlog.testing

from kraft.controller.controller import ControllerSettings, QuorumController
from kraft.controller.errors import ControllerError, NotControllerError
from kraft.controller.image import MetadataImage
from kraft.controller.records import NO_LEADER, MetadataRecord
from kraft.controller.serde import decode_entry, encode_batch
from kraft.controller.service import ControllerService
from kraft.raft.types import Entry, NotLeaderError, ProposalTooLargeError, Role, Snapshot
from tests.sim.checker import InvariantViolation
from tests.sim.controller_checker import ReferenceReplay, check_partition, touched_partition
from tests.sim.controller_statemachine import MetadataReplica
from tests.sim.controller_workload import (
    ControllerWorkload,
    Request,
    choose_workload_settings,
)
from tests.sim.node import SimNode
from tests.sim.simulation import RunResult, Simulation, SimulationFailure
from tests.sim.statemachine import ValueList
from tests.sim.workload import Proposal

TICK_MS = 10  # simulated milliseconds per tick
CONTROLLER_TICK_EVERY_TICKS = 10  # service.CONTROLLER_TICK_INTERVAL_S = 0.1 s
SERVICE_COMMIT_TIMEOUT_TICKS = 1000  # service.COMMIT_TIMEOUT_S = 10 s
MAX_OPERATIONS_PER_BATCH = 50
MAX_QUEUED_REQUESTS = 200

# When a leader may build its working controller from its committed image:
# - "service": the real ControllerService._active_controller decides (over a view of the
#   simulated node): once the leader has applied up to its high watermark (not 0);
# - "epoch_committed": once it has applied an entry of its own epoch (its LEADER_CHANGE is
#   committed, so every entry of earlier epochs that will ever commit is in its image);
# - "log_applied": once it has applied its whole log (its LEADER_CHANGE and every proposal
#   of its own, including one that timed out, is committed and applied).
# The batch runs "log_applied"; see tests/sim/known_failures.py for what the others do.
ACTIVATION_RULES = ("service", "epoch_committed", "log_applied")
DEFAULT_ACTIVATION_RULE = "log_applied"


@dataclass(slots=True)
class PendingProposal:
    epoch: int
    base_offset: int
    last_offset: int
    deadline_tick: int
    decided: list[tuple[Request, object]]


@dataclass(slots=True)
class ControllerShell:
    """The controller side of one node incarnation (ControllerService)."""

    controller: QuorumController | None = None
    controller_epoch: int = -1
    queue: list[Request] = field(default_factory=list)
    pending: PendingProposal | None = None
    service: ControllerService | None = None  # the "service" activation rule only


class _RuntimeView:
    """What ControllerService._active_controller reads of its QuorumRuntime."""

    def __init__(self, node: ControllerNode) -> None:
        self._node = node

    def status(self) -> Any:
        return self._node.live_core().status()

    @property
    def role(self) -> Role:
        return self._node.live_core().role

    @property
    def applied_end_offset(self) -> int:
        return self._node.metadata().applied_end


class ControllerNode(SimNode):
    shell: ControllerShell

    def new_state_machine(self, snapshot: Snapshot | None) -> ValueList:
        return MetadataReplica(snapshot)

    def start(self) -> None:
        super().start()
        self.shell = ControllerShell()

    def metadata(self) -> MetadataReplica:
        state_machine = self.live_state_machine()
        assert isinstance(state_machine, MetadataReplica)
        return state_machine


@dataclass(slots=True)
class ControllerRunResult(RunResult):
    activation: str = DEFAULT_ACTIVATION_RULE
    brokers: int = 0
    records_committed: int = 0
    leader_epochs: int = 0
    controller_activations: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def choose_controller_settings(rng: random.Random) -> ControllerSettings:
    return ControllerSettings(
        default_partitions=rng.randint(1, 3),
        default_replication_factor=rng.randint(1, 3),
        min_insync_replicas=1,
        unclean_leader_election_enable=rng.random() < 0.2,
        broker_session_timeout_ms=rng.randint(15, 100) * TICK_MS,
    )


class ControllerSimulation(Simulation):
    node_type = ControllerNode

    def __init__(
        self,
        seed: int,
        trace: Callable[[str], None] | None = None,
        activation: str = DEFAULT_ACTIVATION_RULE,
    ) -> None:
        assert activation in ACTIVATION_RULES, f"unknown activation rule {activation!r}"
        super().__init__(seed, trace)
        self.activation = activation
        self.settings = choose_controller_settings(self.rng)
        self.commit_timeout_ticks = (
            SERVICE_COMMIT_TIMEOUT_TICKS if self.rng.random() < 0.75 else self.rng.randint(20, 150)
        )
        self.clients = ControllerWorkload(
            random.Random(self.rng.getrandbits(64)), choose_workload_settings(self.rng)
        )
        self.topic_ids = random.Random(self.rng.getrandbits(64))
        self.reference = ReferenceReplay()
        self.activations = 0
        self.counts: Counter[str] = Counter()
        # (epoch, offset) -> (proposed entry data, last offset of its decision)
        self.proposed: dict[tuple[int, int], tuple[bytes, int]] = {}

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> ControllerRunResult:
        self._emit(
            f"controller mode: activation {self.activation}, {self.settings}, commit timeout "
            f"{self.commit_timeout_ticks} ticks, {self.clients.settings}"
        )
        base = super().run()
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(RunResult)}
        counts = Counter(self.clients.counts)
        counts.update(self.counts)
        return ControllerRunResult(
            **fields,
            activation=self.activation,
            brokers=len(self.clients.brokers),
            records_committed=self.reference.records_replayed,
            leader_epochs=len(self.reference.leader_of),
            controller_activations=self.activations,
            counts=dict(sorted(counts.items())),
        )

    def _step_tick(self, propose: bool) -> None:
        super()._step_tick(propose=False)  # the value clients stay quiet in this mode
        if propose:
            self._clients_send()
        self._run_controllers(queue_ticks=propose)

    def _node(self, node_id: int) -> ControllerNode:
        node = self.nodes[node_id]
        assert isinstance(node, ControllerNode)
        return node

    def _up(self) -> list[ControllerNode]:
        return [self._node(n) for n in sorted(self.nodes) if self.nodes[n].is_up]

    # -- clients ----------------------------------------------------------------------------

    def _clients_send(self) -> None:
        up = self._up()
        if not up:
            return
        viewer = self.rng.choice(up)
        view = viewer.metadata().image
        requests = self.clients.requests(self.now, view, lifecycle=self.faults_on)
        if not requests:
            return
        target = self.clients.leader_guess
        if target is None or not self.nodes[target].is_up:
            target = self.rng.choice(up).node_id
        node = self._node(target)
        describe = ("requests", target, "; ".join(r.describe for r in requests))
        self._event(describe, target, lambda: self._submit(node, requests))

    def _submit(self, node: ControllerNode, requests: list[Request]) -> None:
        core = node.live_core()
        if core.role is not Role.LEADER:
            self.clients.leader_guess = core.leader_id
            self.clients.on_lost(requests, "not the controller")
            return
        self.clients.leader_guess = node.node_id
        room = MAX_QUEUED_REQUESTS - len(node.shell.queue)
        node.shell.queue.extend(requests[:room])
        self.clients.on_lost(requests[room:], "queue full")

    # -- controller shells ------------------------------------------------------------------

    def _run_controllers(self, queue_ticks: bool) -> None:
        for node in self._up():
            if not node.is_up:  # crashed by an earlier event of this loop
                continue
            shell = node.shell
            if shell.pending is not None and self.now >= shell.pending.deadline_tick:
                time_out = functools.partial(self._time_out, node)
                self._event(("commit timeout", node.node_id), node.node_id, time_out)
            if not node.is_up:
                continue
            core = node.live_core()
            due = self.now % CONTROLLER_TICK_EVERY_TICKS == 0
            if queue_ticks and due and core.role is Role.LEADER and not shell.queue:
                shell.queue.append(_tick_request())
            if shell.queue and shell.pending is None:
                describe = ("controller batch", node.node_id, len(shell.queue))
                self._event(describe, node.node_id, functools.partial(self._process, node))

    def _time_out(self, node: ControllerNode) -> None:
        pending = node.shell.pending
        if pending is None:
            return
        self._emit(
            f"  node {node.node_id}: proposal {pending.base_offset}..{pending.last_offset} "
            "timed out; its entries may still commit"
        )
        self._lose(node, "commit timeout")

    def _lose(self, node: ControllerNode, why: str) -> None:
        pending = node.shell.pending
        assert pending is not None
        node.shell.pending = None
        node.shell.controller = None
        self.counts[f"proposals lost ({why})"] += 1
        self.clients.on_lost([request for request, _ in pending.decided], why)

    def _active_controller(self, node: ControllerNode) -> QuorumController | None:
        """ControllerService._active_controller; None where it raises NotControllerError."""
        core = node.live_core()
        shell = node.shell
        if self.activation == "service":
            return self._service_controller(node)
        if core.role is not Role.LEADER:
            shell.controller = None
            return None
        if shell.controller is None or shell.controller_epoch != core.epoch:
            replica = node.metadata()
            ready = replica.last_applied_epoch == core.epoch
            if self.activation == "log_applied":
                ready = ready and replica.applied_end == core.status().log_end_offset
            if not ready:
                return None
            shell.controller = QuorumController(
                replica.image.copy(), self.settings, self._new_topic_id
            )
            shell.controller_epoch = core.epoch
            self._activated(node, core.epoch)
        return shell.controller

    def _service_controller(self, node: ControllerNode) -> QuorumController | None:
        """The real ControllerService decides when to (re)build the working controller."""
        shell = node.shell
        if shell.service is None:
            shell.service = ControllerService(
                cast(Any, _RuntimeView(node)),
                node.metadata().machine,
                self.settings,
                self._new_topic_id,
                clock_ms=lambda: self.now * TICK_MS,
            )
        service = shell.service
        if shell.controller is None:
            service._controller = None  # a lost proposal threw it away
        before = service._controller
        with structlog.testing.capture_logs():  # its log lines would flood the output
            try:
                controller = service._active_controller(self.now * TICK_MS)
            except NotControllerError:
                shell.controller = None
                return None
        shell.controller = controller
        if controller is not before:
            self._activated(node, service._controller_epoch)
        return controller

    def _activated(self, node: ControllerNode, epoch: int) -> None:
        self.activations += 1
        self._emit(
            f"  node {node.node_id}: controller activated in epoch {epoch} at applied end "
            f"{node.metadata().applied_end}"
        )

    def _new_topic_id(self) -> str:
        return base64.urlsafe_b64encode(self.topic_ids.randbytes(16)).decode().rstrip("=")

    def _process(self, node: ControllerNode) -> None:
        """ControllerService._process: decide a batch, propose its records at once."""
        shell = node.shell
        batch = shell.queue[:MAX_OPERATIONS_PER_BATCH]
        del shell.queue[:MAX_OPERATIONS_PER_BATCH]
        records: list[MetadataRecord] = []
        decided: list[tuple[Request, object]] = []
        decision_sizes: list[int] = []
        now_ms = self.now * TICK_MS
        for request in batch:
            controller = self._active_controller(node)
            if controller is None:
                self.clients.on_lost([request], "not active")
                continue
            reason = None if request.must_refuse is None else request.must_refuse(controller)
            elections = controller.leader_elections, controller.unclean_leader_elections
            try:
                result = request.operation(controller, now_ms)
            except ControllerError as error:
                self.clients.on_refused(request, error)
                self._emit(f"  refused {request.describe}: {error}")
                continue
            if reason is not None:
                raise InvariantViolation(
                    f"node {node.node_id}'s controller accepted '{request.describe}', which it "
                    f"must refuse: {reason}"
                )
            self.clients.on_accepted(request)
            self.counts["leader elections decided"] += controller.leader_elections - elections[0]
            self.counts["unclean elections decided"] += (
                controller.unclean_leader_elections - elections[1]
            )
            if request.kind == "tick" and isinstance(result.response, tuple):
                self.counts["brokers fenced at a tick"] += len(result.response)
            _check_working_image(controller.image, result.records, node.node_id)
            records.extend(result.records)
            decided.append((request, result.response))
            if result.records:
                decision_sizes.append(len(result.records))
        if not records:
            for request, response in decided:
                self.clients.on_committed(request, response)
            return
        self._propose_decisions(node, records, decided, decision_sizes)

    def _propose_decisions(
        self,
        node: ControllerNode,
        records: list[MetadataRecord],
        decided: list[tuple[Request, object]],
        decision_sizes: list[int],
    ) -> None:
        # as ControllerService does: the whole batch in one entry, so it commits whole
        encoded = (encode_batch(records),)
        core = node.live_core()
        try:
            ack = core.propose(list(encoded))
        except (NotLeaderError, ProposalTooLargeError) as error:
            node.shell.controller = None
            self.counts[f"proposals refused ({type(error).__name__})"] += 1
            self.clients.on_lost([request for request, _ in decided], "propose failed")
            return
        self.counts["proposals"] += 1
        assert ack.base_offset == ack.last_offset, "one entry per batch of decisions"
        self.proposed[(ack.epoch, ack.base_offset)] = (encoded[0], ack.base_offset)
        node.shell.pending = PendingProposal(
            ack.epoch,
            ack.base_offset,
            ack.last_offset,
            self.now + self.commit_timeout_ticks,
            decided,
        )
        self.workload.on_proposed(Proposal(node.node_id, node.incarnation, encoded, ack, self.now))
        self._emit(
            f"  node {node.node_id} proposed {len(records)} records at {ack}: "
            + "; ".join(type(record).__name__ for record in records[:8])
        )
        node.drain()

    # -- hooks the shells call --------------------------------------------------------------

    def on_commit(self, node_id: int, entry: Entry) -> None:
        super().on_commit(node_id, entry)
        self._advance_reference()
        node = self._node(node_id)
        replica = node.metadata()
        self.reference.check_node_image(node_id, replica.image, replica.applied_end, "applied")
        pending = node.shell.pending
        if pending is None or entry.offset != pending.last_offset:
            return
        if entry.epoch != pending.epoch:
            self._lose(node, "another epoch committed its offset")
            return
        node.shell.pending = None
        self.counts["proposals committed"] += 1
        for request, response in pending.decided:
            self.clients.on_committed(request, response)

    def on_snapshot_loaded(self, node_id: int, snapshot: Snapshot) -> None:
        # Simulation.on_snapshot_loaded, but the snapshot holds an image, not values: it
        # must restore the image replayed from the committed log below its end.
        end = snapshot.snapshot_id.end_offset
        last = self.checker.committed.get(end - 1)
        if last is not None and last.epoch != snapshot.snapshot_id.epoch:
            raise InvariantViolation(
                f"node {node_id} loaded snapshot {snapshot.snapshot_id} but the committed entry "
                f"at {end - 1} has epoch {last.epoch}"
            )
        self.snapshots_loaded += 1
        self.workload.on_snapshot_loaded(node_id, end)
        self._emit(f"  node {node_id} loaded snapshot {snapshot.snapshot_id}")
        self._advance_reference()
        node = self._node(node_id)
        replica = node.metadata()
        self.reference.check_node_image(
            node_id, replica.image, replica.applied_end, "loaded a snapshot"
        )
        pending = node.shell.pending
        if pending is not None and pending.last_offset < snapshot.snapshot_id.end_offset:
            self._lose(node, "replaced by a snapshot")

    def _start(self, node_id: int) -> None:
        """A restarted node restores its image from its durable snapshot (restore()), which
        must be the committed log's image at the snapshot's end; then it applies on."""
        node = self._node(node_id)
        snapshot = node.storage.durable.snapshot
        super()._start(node_id)
        if snapshot is not None and node.is_up:
            self.counts["restarts from a snapshot"] += 1
        if node.is_up:
            replica = node.metadata()
            self._advance_reference()
            self.reference.check_node_image(
                node_id, replica.image, replica.applied_end, "restarted"
            )

    def _crash(self, node_id: int, how: str) -> None:
        node = self._node(node_id)
        if node.is_up and node.shell.pending is not None:
            self._lose(node, "node crashed")
        super()._crash(node_id, how)

    def _advance_reference(self) -> None:
        start = self.reference.end
        self.reference.advance(self.checker.committed, self.checker.committed_end)
        for offset in range(max(start, 1), self.reference.end):
            self._check_decision_atomic(offset)
        for offset in range(start, self.reference.end):
            self._maybe_check_decision_end(offset)

    def _maybe_check_decision_end(self, offset: int) -> None:
        """Once a whole decision is committed, every partition is led by a registered broker
        that is neither fenced nor shutting down, or by nobody: a decision that fences a
        broker or registers a new incarnation moves its leaderships in the same decision."""
        entry = self.checker.committed[offset]
        proposed = self.proposed.get((entry.epoch, offset))
        if proposed is None or proposed[0] != entry.data or proposed[1] != offset:
            return
        image = self.reference.images[offset + 1]
        live = frozenset(image.live_brokers())
        for topic_id in sorted(image.topics_by_id):
            topic = image.topics_by_id[topic_id]
            for partition_id in sorted(topic.partitions):
                leader = topic.partitions[partition_id].leader
                if leader != NO_LEADER and leader not in live:
                    raise InvariantViolation(
                        f"partition {topic_id}/{partition_id} of {topic.name!r} is led by broker "
                        f"{leader}, which is not live ({image.brokers.get(leader)}), after the "
                        f"decision that ends at committed offset {offset}"
                    )

    def _check_decision_atomic(self, offset: int) -> None:
        """The records of one controller decision commit all or none: the entry after a
        committed record that is not its decision's last must be the decision's next."""
        previous = self.checker.committed[offset - 1]
        proposed = self.proposed.get((previous.epoch, offset - 1))
        if proposed is None or proposed[0] != previous.data or proposed[1] == offset - 1:
            return
        entry = self.checker.committed[offset]
        expected = self.proposed.get((previous.epoch, offset))
        if entry.epoch == previous.epoch and expected is not None and expected[0] == entry.data:
            return
        record = decode_entry(previous.data)[0]
        raise InvariantViolation(
            f"a controller decision committed in part: its record at offset {offset - 1} "
            f"(epoch {previous.epoch}, {type(record).__name__}) is committed, but offset "
            f"{offset} holds an entry of epoch {entry.epoch} ({entry.kind.name}) instead of its "
            f"next record (the decision ends at offset {proposed[1]})"
        )

    def _failure(self, fact: str) -> SimulationFailure:
        return ControllerSimulationFailure(super()._failure(fact), self.activation)

    # -- end of run -------------------------------------------------------------------------

    def _check_final_state(self) -> None:
        leader = self._leader()
        assert leader is not None
        applied_end = leader.live_state_machine().applied_end
        self._advance_reference()
        for node in self._up():
            replica = node.metadata()
            if replica.applied_end != applied_end:
                raise self._failure(
                    f"node {node.node_id} converged to offset {replica.applied_end}, the leader "
                    f"to {applied_end}"
                )
            try:
                self.reference.check_node_image(
                    node.node_id, replica.image, applied_end, "converged"
                )
            except InvariantViolation as violation:
                raise self._failure(str(violation)) from violation
        for proposal in self.workload.acknowledged:
            committed = self.checker.committed.get(proposal.ack.last_offset)
            if committed is None or committed.epoch != proposal.ack.epoch:
                raise self._failure(
                    f"acknowledged proposal at {proposal.ack} is not in the final committed log"
                )


class ControllerSimulationFailure(SimulationFailure):
    """A SimulationFailure whose replay command runs the controller mode."""

    def __init__(self, failure: SimulationFailure, activation: str) -> None:
        lines = str(failure).splitlines()[:-1]
        option = "" if activation == DEFAULT_ACTIVATION_RULE else f" --activation {activation}"
        lines.append(
            f"replay: pytest tests/sim/test_controller_seeds.py --seed={failure.seed} "
            f"--sim-trace   (or: python -m tests.sim.soak --controller --seed "
            f"{failure.seed} --trace{option})"
        )
        AssertionError.__init__(self, "\n".join(lines))
        self.seed = failure.seed
        self.event = failure.event
        self.tick = failure.tick
        self.fact = failure.fact


def _tick_request() -> Request:
    return Request("tick", lambda controller, now_ms: controller.tick(now_ms), "tick")


def _check_working_image(image: MetadataImage, records: list[MetadataRecord], node_id: int) -> None:
    """Invariant 2 on the working image, for the partitions a decision touched."""
    for record in records:
        key = touched_partition(record)
        if key is None:
            continue
        partition = image.partition(*key)
        if partition is not None:  # None: the topic went in the same decision
            check_partition(partition, f"in node {node_id}'s working image")


def run_controller_seed(
    seed: int,
    trace: Callable[[str], None] | None = None,
    activation: str = DEFAULT_ACTIVATION_RULE,
) -> ControllerRunResult:
    """Runs one seed in controller mode; raises SimulationFailure, naming the seed."""
    return ControllerSimulation(seed, trace, activation).run()
