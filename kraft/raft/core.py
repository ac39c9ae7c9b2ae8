"""The pure Raft core of the metadata quorum (KIP-595, KIP-996 pre-vote, KIP-630 snapshots).

API CONTRACT (the shells in kraft.quorum and tests/sim are written against it):

    core = RaftCore(config: RaftConfig, restored: RestoredState, rng: random.Random)
    core.tick()                              # one tick of logical time passed
    core.step(sender: int, message)          # a message of kraft.raft.messages arrived
    core.propose(records: Sequence[bytes]) -> ProposalAck   # leader only, else NotLeaderError
    core.resign()                            # graceful shutdown: a leader sends EndQuorumEpoch
    core.compact(snapshot: Snapshot)         # the state machine snapshotted offsets < end_offset
                                             # (end_offset <= high watermark); log start moves
    core.has_ready() -> bool
    core.ready() -> Ready                    # what to persist, send and apply (kraft.raft.types)
    core.advance(ready)                      # the shell did everything `ready` asked
    core.status() -> QuorumStatus
    core.role, core.epoch, core.leader_id, core.high_watermark   (read-only properties)

Additions beyond the contract:

    core.campaign()         # a voter starts a pre-vote now, as if its election timer fired
    core.voted_id, core.log_start_offset, core.log_end_offset   (read-only properties)

The first Ready after a restart carries the restored snapshot as `snapshot_to_load`, so a
shell that applies Readies in order rebuilds its state machine without a special case.

The core itself only dispatches: kraft.raft.epoch_check applies the one common epoch check
to every message (stale: ignore, or answer with our epoch and leader; newer: step down),
then the message goes to kraft.raft.election or kraft.raft.replication.
kraft.raft.transitions owns every change of role; kraft.raft.timers what a tick does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from kraft.raft import election, epoch_check, replication, timers, transitions
from kraft.raft.config import MAX_RECORDS_PER_PROPOSAL, RaftConfig
from kraft.raft.context import Context
from kraft.raft.log import RaftLog
from kraft.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    Message,
    VoteRequest,
    VoteResponse,
)
from kraft.raft.roles import (
    Follower,
    Leader,
    Resigned,
    RoleState,
    Unattached,
    Voted,
    election_state_of,
)
from kraft.raft.types import (
    ElectionState,
    Entry,
    NotLeaderError,
    ProposalAck,
    ProposalTooLargeError,
    QuorumStatus,
    Ready,
    ReplicaStatus,
    RestoredState,
    Role,
    Snapshot,
)

REQUEST_ID_SPACE = 1 << 31


class RaftCore:
    def __init__(self, config: RaftConfig, restored: RestoredState, rng: random.Random) -> None:
        config.validate()
        snapshot = restored.snapshot
        entries, stale_from = _without_stale_suffix(restored)
        log = RaftLog(snapshot.snapshot_id if snapshot else None, entries)
        start = log.start_offset
        election_state = restored.election_state
        placeholder = Unattached(election_state.epoch, election_deadline=0)
        self._ctx = Context(
            config=config,
            rng=rng,
            log=log,
            role=placeholder,
            high_watermark=start,
            snapshot=snapshot,
            committed_handed_offset=start,
            applied_offset=start,
            persisted_election_state=election_state,
            handed_election_state=election_state,
            pending_snapshot_to_load=snapshot,
            pending_truncate_to=stale_from,
        )
        # Request ids start at a random point so that the answer to a request of an
        # earlier incarnation of this node (delayed in the network across a restart) is
        # never taken for the answer to a request of this one.
        self._ctx.next_request_id = rng.randrange(1, REQUEST_ID_SPACE)
        self._last_ready_high_watermark = start
        self._ctx.role = self._restored_role()
        self._start_restored_role()

    # ------------------------------------------------------------------ read-only views

    @property
    def role(self) -> Role:
        return self._ctx.current_role

    @property
    def epoch(self) -> int:
        return self._ctx.epoch

    @property
    def leader_id(self) -> int | None:
        return self._ctx.leader_id

    @property
    def voted_id(self) -> int | None:
        return election_state_of(self._ctx.role, self._ctx.node_id).voted_id

    @property
    def high_watermark(self) -> int:
        return self._ctx.high_watermark

    @property
    def log_start_offset(self) -> int:
        return self._ctx.log.start_offset

    @property
    def log_end_offset(self) -> int:
        return self._ctx.log.end_offset

    def read_index(self) -> int | None:
        """On a leader that has committed an entry of its own epoch, its high watermark;
        None elsewhere. Committing the epoch's LEADER_CHANGE entry commits everything any
        earlier leader committed, so a node that has applied up to the read index has seen
        every write acknowledged before it was asked (Raft thesis §6.4). A deposed leader
        that does not know it yet answers until check-quorum makes it resign."""
        ctx = self._ctx
        if not isinstance(ctx.role, Leader):
            return None
        if ctx.high_watermark <= ctx.role.state.leader_change_offset:
            return None
        return ctx.high_watermark

    def status(self) -> QuorumStatus:
        ctx = self._ctx
        replicas: tuple[ReplicaStatus, ...] = ()
        if isinstance(ctx.role, Leader):
            replicas = ctx.role.state.replica_statuses(ctx.log.persisted_end_offset, ctx.now)
        return QuorumStatus(
            node_id=ctx.node_id,
            role=ctx.current_role,
            epoch=ctx.epoch,
            leader_id=ctx.leader_id,
            voted_id=self.voted_id,
            high_watermark=ctx.high_watermark,
            log_start_offset=ctx.log.start_offset,
            log_end_offset=ctx.log.end_offset,
            voters=tuple(sorted(ctx.config.voters)),
            tick=ctx.now,
            replicas=replicas,
        )

    # ------------------------------------------------------------------------- inputs

    def tick(self) -> None:
        timers.on_tick(self._ctx)

    def ticks_until_due(self) -> int:
        """Ticks until one may do something (see timers.ticks_until_due): a shell may let
        the ticks before it pass unsent and tick them all when it wakes."""
        return timers.ticks_until_due(self._ctx)

    def campaign(self) -> None:
        """Start a pre-vote now, as if the election timer fired (voters that are not leader)."""
        ctx = self._ctx
        assert ctx.is_voter, f"observer {ctx.node_id} cannot campaign"
        if isinstance(ctx.role, Leader) or ctx.current_role is Role.PROSPECTIVE:
            return
        transitions.transition_to_prospective(ctx, "campaign requested")

    def step(self, sender: int, message: Message) -> None:
        ctx = self._ctx
        if epoch_check.admit(ctx, sender, message):
            self._dispatch(sender, message)

    def propose(self, records: Sequence[bytes]) -> ProposalAck:
        ctx = self._ctx
        if not isinstance(ctx.role, Leader):
            raise NotLeaderError(ctx.leader_id, ctx.epoch)
        assert records, "a proposal needs at least one record"
        if len(records) > MAX_RECORDS_PER_PROPOSAL:
            raise ProposalTooLargeError(
                f"proposal of {len(records)} records is more than "
                f"MAX_RECORDS_PER_PROPOSAL={MAX_RECORDS_PER_PROPOSAL}"
            )
        uncommitted = ctx.log.end_offset - ctx.high_watermark + len(records)
        if uncommitted > ctx.config.max_uncommitted_entries:
            raise ProposalTooLargeError(
                f"{uncommitted} entries would be uncommitted, more than "
                f"max_uncommitted_entries={ctx.config.max_uncommitted_entries}"
            )
        base = ctx.log.end_offset
        for index, record in enumerate(records):
            ctx.log.append(Entry(base + index, ctx.epoch, bytes(record)))
        ctx.wake_parked_fetches = True
        return ProposalAck(ctx.epoch, base, ctx.log.end_offset - 1)

    def resign(self) -> None:
        """Graceful shutdown: a leader hands over at once; other roles have nothing to do."""
        if isinstance(self._ctx.role, Leader):
            transitions.transition_to_resigned(self._ctx, "shutdown")

    def compact(self, snapshot: Snapshot) -> None:
        ctx = self._ctx
        end = snapshot.snapshot_id.end_offset
        assert end <= ctx.high_watermark, (
            f"snapshot end {end} beyond the high watermark {ctx.high_watermark}"
        )
        assert end <= ctx.applied_offset, (
            f"snapshot end {end} beyond the applied offset {ctx.applied_offset}"
        )
        if end <= ctx.log.start_offset:
            return
        ctx.log.compact(snapshot.snapshot_id)
        ctx.snapshot = snapshot
        ctx.pending_snapshot = snapshot
        ctx.pending_log_start_offset = end

    # ------------------------------------------------------------------------ outputs

    def has_ready(self) -> bool:
        ctx = self._ctx
        parked = isinstance(ctx.role, Leader) and bool(ctx.role.state.parked)
        return (
            self._election_state_changed()
            or ctx.pending_snapshot is not None
            or ctx.pending_log_start_offset is not None
            or ctx.pending_truncate_to is not None
            or ctx.log.handed_end_offset < ctx.log.end_offset
            or bool(ctx.outbox)
            or ctx.pending_snapshot_to_load is not None
            or ctx.committed_handed_offset < ctx.high_watermark
            or bool(ctx.role_changes)
            or (ctx.wake_parked_fetches and parked)
        )

    def ready(self) -> Ready:
        ctx = self._ctx
        if isinstance(ctx.role, Leader) and ctx.wake_parked_fetches:
            replication.answer_parked_fetches(ctx, ctx.role.state, only_expired=False)
        ctx.wake_parked_fetches = False
        ready = Ready(high_watermark=ctx.high_watermark)
        if self._election_state_changed():
            ready.election_state = election_state_of(ctx.role, ctx.node_id)
            _check_election_state_change(ctx.handed_election_state, ready.election_state)
            ctx.handed_election_state = ready.election_state
        ready.snapshot, ctx.pending_snapshot = ctx.pending_snapshot, None
        ready.log_start_offset, ctx.pending_log_start_offset = ctx.pending_log_start_offset, None
        ready.truncate_to, ctx.pending_truncate_to = ctx.pending_truncate_to, None
        ready.entries = ctx.log.take_unhanded()
        ready.messages, ctx.outbox = ctx.outbox, []
        ready.snapshot_to_load, ctx.pending_snapshot_to_load = ctx.pending_snapshot_to_load, None
        ready.committed = ctx.log.entries_between(ctx.committed_handed_offset, ctx.high_watermark)
        ctx.committed_handed_offset = ctx.high_watermark
        ready.role_changes, ctx.role_changes = ctx.role_changes, []
        assert ready.high_watermark >= self._last_ready_high_watermark, (
            f"high watermark went back from {self._last_ready_high_watermark} "
            f"to {ready.high_watermark}"
        )
        self._last_ready_high_watermark = ready.high_watermark
        return ready

    def advance(self, ready: Ready) -> None:
        ctx = self._ctx
        if ready.election_state is not None:
            ctx.persisted_election_state = ready.election_state
        if ready.entries:
            ctx.log.mark_persisted(ready.entries[-1].offset + 1)
        if ready.snapshot_to_load is not None:
            end = ready.snapshot_to_load.snapshot_id.end_offset
            ctx.applied_offset = max(ctx.applied_offset, end)
        if ready.committed:
            ctx.applied_offset = max(ctx.applied_offset, ready.committed[-1].offset + 1)
        if isinstance(ctx.role, Leader):
            replication.maybe_advance_high_watermark(ctx, ctx.role.state)

    # ------------------------------------------------------------------------ helpers

    def _election_state_changed(self) -> bool:
        ctx = self._ctx
        return election_state_of(ctx.role, ctx.node_id) != ctx.handed_election_state

    def _restored_role(self) -> RoleState:
        """The role a node starts in, from the election state it persisted."""
        ctx = self._ctx
        election_state = ctx.handed_election_state
        assert election_state is not None
        epoch, leader_id = election_state.epoch, election_state.leader_id
        if leader_id == ctx.node_id:
            assert ctx.is_voter, f"observer {ctx.node_id} persisted itself as leader"
            return Resigned(epoch, ctx.election_deadline(), tuple(ctx.other_voters()))
        if leader_id is not None:
            voted_id = election_state.voted_id if ctx.is_voter else None
            deadline = ctx.now + ctx.config.fetch_timeout_ticks + ctx.jitter()
            return Follower(epoch, leader_id, voted_id, None, deadline)
        if election_state.voted_id is not None and ctx.is_voter:
            return Voted(epoch, election_state.voted_id, ctx.election_deadline())
        return Unattached(epoch, ctx.election_deadline())

    def _start_restored_role(self) -> None:
        ctx = self._ctx
        state = ctx.role
        if isinstance(state, Follower):
            replication.send_fetch(ctx, state)
        elif isinstance(state, Unattached) and not ctx.is_voter:
            replication.send_discovery_fetch(ctx, state)
        if ctx.config.voters == frozenset({ctx.node_id}) and not isinstance(state, Leader):
            transitions.transition_to_prospective(ctx, "single-voter quorum")

    def _dispatch(self, sender: int, message: Message) -> None:
        ctx = self._ctx
        match message:
            case VoteRequest():
                election.handle_vote_request(ctx, sender, message)
            case VoteResponse():
                if sender in ctx.config.voters:
                    election.handle_vote_response(ctx, sender, message)
            case BeginQuorumEpochRequest():
                election.handle_begin_quorum_epoch(ctx, sender, message)
            case EndQuorumEpochRequest():
                election.handle_end_quorum_epoch(ctx, sender, message)
            case FetchRequest():
                replication.handle_fetch_request(ctx, sender, message)
            case FetchResponse():
                replication.handle_fetch_response(ctx, sender, message)
            case FetchSnapshotRequest():
                replication.handle_fetch_snapshot_request(ctx, sender, message)
            case FetchSnapshotResponse():
                replication.handle_fetch_snapshot_response(ctx, sender, message)
            case BeginQuorumEpochResponse() | EndQuorumEpochResponse():
                pass  # the leader learns who follows from their fetches


def _check_election_state_change(old: ElectionState | None, new: ElectionState) -> None:
    """What is persisted never goes back an epoch nor changes a vote within one."""
    if old is None:
        return
    assert new.epoch >= old.epoch, f"persisted epoch would go back from {old.epoch} to {new.epoch}"
    if new.epoch == old.epoch and old.voted_id is not None:
        assert new.voted_id == old.voted_id, (
            f"second vote in epoch {new.epoch}: {old.voted_id} then {new.voted_id}"
        )


def _without_stale_suffix(restored: RestoredState) -> tuple[list[Entry], int | None]:
    """The restored entries up to the first one of an older epoch than the snapshot's, and
    the offset to truncate the stored log to (None when nothing is stale).

    A crash between saving an installed snapshot (Ready step 2) and truncating the log above
    it (step 3) leaves entries of the replaced history above the snapshot; epochs never go
    down along a log, so they cannot be ours any more (simulator seed 20998)."""
    snapshot = restored.snapshot
    if snapshot is None:
        return restored.entries, None
    for index, entry in enumerate(restored.entries):
        if entry.epoch < snapshot.snapshot_id.epoch:
            return restored.entries[:index], entry.offset
    return restored.entries, None
