"""Every change of role, in one place (KIP-595 with KIP-996 pre-vote).

Legal transitions and their triggers (E is the current epoch; "voter only" roles are never
entered by an observer, which is only ever Unattached or Follower):

    any            -> Unattached(E' > E)   a message carries a newer epoch and names no leader
    any            -> Follower(E' > E, L)  a message carries a newer epoch and names leader L
    Unattached(E), Voted(E), Prospective(E), Candidate(E)
                   -> Follower(E, L)       BeginQuorumEpoch from L, or a message naming L as
                                           the leader of E
    Unattached(E), Prospective(E) -> Voted(E, C)   granted C's vote (voter only)
    Unattached, Voted, Follower (voter), Candidate, Resigned
                   -> Prospective(E)       election timeout, fetch timeout, EndQuorumEpoch
                                           from our leader, or campaign() (voter only)
    Prospective(E) -> Candidate(E + 1)     a majority granted the pre-vote (voter only)
    Prospective(E) -> Follower(E, L)       a pre-vote rejection names leader L of E
    Prospective(E) -> Follower/Voted/Unattached(E)  pre-vote lost or timed out: back to the
                                           state we had, with a fresh random timer
    Candidate(E)   -> Leader(E)            a majority granted the vote (voter only)
    Follower(E)    -> Unattached(E)        observer's fetch timeout: look for the leader again
    Leader(E)      -> Resigned(E)          check-quorum failed, or resign() (shutdown)

Each transition_to_* asserts that the epoch never goes back, records a RoleChange with a
human reason, and sends what the new role sends first (pre-votes, votes, BeginQuorumEpoch,
EndQuorumEpoch, a fetch).
"""

from __future__ import annotations

from kraft.raft import replication
from kraft.raft.context import Context
from kraft.raft.leader import LeaderState
from kraft.raft.messages import BeginQuorumEpochRequest, EndQuorumEpochRequest, VoteRequest
from kraft.raft.roles import (
    Candidate,
    Follower,
    Leader,
    Prospective,
    Resigned,
    RoleState,
    Unattached,
    Voted,
    election_state_of,
)
from kraft.raft.types import ElectionState, Entry, EntryKind, RoleChange


def _change_role(ctx: Context, new_state: RoleState, reason: str) -> None:
    assert new_state.epoch >= ctx.epoch, (
        f"epoch would go back from {ctx.epoch} to {new_state.epoch} ({reason})"
    )
    old_role = ctx.current_role
    ctx.role = new_state
    # A response to a request of the old role must not be acted on in the new one.
    ctx.outstanding_request_id = None
    ctx.role_changes.append(
        RoleChange(old_role, ctx.current_role, new_state.epoch, ctx.leader_id, reason)
    )


def transition_to_unattached(ctx: Context, epoch: int, reason: str) -> None:
    if epoch == ctx.epoch:
        assert isinstance(ctx.role, Prospective | Follower), (
            f"Unattached in the same epoch {epoch} from {type(ctx.role).__name__}"
        )
    state = Unattached(epoch, election_deadline=ctx.election_deadline())
    _change_role(ctx, state, reason)
    if not ctx.is_voter:
        replication.send_discovery_fetch(ctx, state)


def transition_to_voted(ctx: Context, candidate_id: int, reason: str) -> None:
    assert ctx.is_voter, "an observer never votes"
    assert isinstance(ctx.role, Unattached | Prospective), f"voting from {type(ctx.role).__name__}"
    if isinstance(ctx.role, Prospective):
        assert ctx.role.retained.voted_id is None, "a second vote in one epoch"
    _change_role(ctx, Voted(ctx.epoch, candidate_id, ctx.election_deadline()), reason)


def transition_to_follower(
    ctx: Context,
    epoch: int,
    leader_id: int,
    reason: str,
    last_leader_contact_tick: int | None = None,
) -> None:
    assert leader_id != ctx.node_id, "following ourselves"
    voted_id: int | None = None
    if epoch == ctx.epoch:
        assert not isinstance(ctx.role, Leader | Resigned), (
            f"two leaders in epoch {epoch}: {ctx.node_id} and {leader_id}"
        )
        if isinstance(ctx.role, Follower):
            assert ctx.role.leader_id == leader_id, (
                f"two leaders in epoch {epoch}: {ctx.role.leader_id} and {leader_id}"
            )
        voted_id = election_state_of(ctx.role, ctx.node_id).voted_id if ctx.is_voter else None
    jitter = ctx.jitter() if ctx.is_voter else 0
    state = Follower(
        epoch,
        leader_id,
        voted_id,
        last_leader_contact_tick=last_leader_contact_tick,
        fetch_deadline=ctx.now + ctx.config.fetch_timeout_ticks + jitter,
    )
    _change_role(ctx, state, reason)
    replication.send_fetch(ctx, state)


def transition_to_prospective(ctx: Context, reason: str) -> None:
    assert ctx.is_voter, "an observer never campaigns"
    old = ctx.role
    assert not isinstance(old, Leader | Prospective), f"pre-vote from {type(old).__name__}"
    retained = election_state_of(old, ctx.node_id)
    if retained.leader_id == ctx.node_id:  # a Resigned leader
        retained = ElectionState(retained.epoch, voted_id=retained.voted_id)
    last_contact = old.last_leader_contact_tick if isinstance(old, Follower) else None
    state = Prospective(
        ctx.epoch,
        retained,
        last_contact,
        election_deadline=ctx.now + ctx.config.election_timeout_ticks,
        granted={ctx.node_id},
        leader_resigned=isinstance(old, Follower) and old.leader_resigned,
    )
    _change_role(ctx, state, reason)
    for voter in ctx.other_voters():
        request = VoteRequest(
            ctx.epoch + 1, ctx.node_id, ctx.log.last_epoch, ctx.log.end_offset, pre_vote=True
        )
        ctx.send(voter, request)
    maybe_win_pre_vote(ctx, state)


def maybe_win_pre_vote(ctx: Context, state: Prospective) -> None:
    if len(state.granted) >= ctx.majority:
        transition_to_candidate(ctx, f"won pre-vote with votes from {sorted(state.granted)}")


def transition_after_lost_pre_vote(ctx: Context, reason: str) -> None:
    """Back to the state held before the pre-vote, with a fresh random timer."""
    state = ctx.role
    assert isinstance(state, Prospective), f"lost a pre-vote as {type(state).__name__}"
    retained = state.retained
    if retained.leader_id is not None:
        transition_to_follower(
            ctx, ctx.epoch, retained.leader_id, reason, state.last_leader_contact_tick
        )
        # If that leader answers, its answers push the deadline to the fetch timeout;
        # if not, we try the pre-vote again after the usual random backoff.
        follower = ctx.role
        assert isinstance(follower, Follower)
        follower.leader_resigned = state.leader_resigned
        if state.leader_resigned:
            # The leader is gone on purpose; the voter that said no has just not heard yet.
            retry_ticks = 1 + ctx.rng.randrange(max(1, ctx.config.election_timeout_ticks // 4))
            follower.fetch_deadline = ctx.now + retry_ticks
        else:
            follower.fetch_deadline = ctx.election_deadline()
    elif retained.voted_id is not None:
        deadline = ctx.election_deadline()
        _change_role(ctx, Voted(ctx.epoch, retained.voted_id, deadline), reason)
    else:
        transition_to_unattached(ctx, ctx.epoch, reason)


def transition_to_candidate(ctx: Context, reason: str) -> None:
    assert isinstance(ctx.role, Prospective), f"candidate from {type(ctx.role).__name__}"
    epoch = ctx.epoch + 1
    state = Candidate(epoch, ctx.election_deadline(), granted={ctx.node_id})
    _change_role(ctx, state, reason)
    for voter in ctx.other_voters():
        ctx.send(voter, VoteRequest(epoch, ctx.node_id, ctx.log.last_epoch, ctx.log.end_offset))
    maybe_win_election(ctx, state)


def maybe_win_election(ctx: Context, state: Candidate) -> None:
    if len(state.granted) >= ctx.majority:
        transition_to_leader(ctx, f"won election with votes from {sorted(state.granted)}")


def transition_to_leader(ctx: Context, reason: str) -> None:
    assert isinstance(ctx.role, Candidate), f"leader from {type(ctx.role).__name__}"
    epoch = ctx.epoch
    leader_change_offset = ctx.log.end_offset
    others = ctx.other_voters()
    leader_state = LeaderState(
        node_id=ctx.node_id,
        voters=ctx.config.voters,
        became_leader_tick=ctx.now,
        leader_change_offset=leader_change_offset,
        next_begin_quorum_tick=ctx.now + ctx.config.begin_quorum_resend_ticks,
        begin_quorum_pending=set(others),
    )
    _change_role(ctx, Leader(epoch, leader_state), reason)
    data = f"leader {ctx.node_id} voters {sorted(ctx.config.voters)}".encode()
    ctx.log.append(Entry(leader_change_offset, epoch, data, EntryKind.LEADER_CHANGE))
    for voter in others:
        ctx.send(voter, BeginQuorumEpochRequest(epoch, ctx.node_id))


def transition_to_resigned(ctx: Context, reason: str) -> None:
    state = ctx.role
    assert isinstance(state, Leader), f"resigning as {type(state).__name__}"
    successors = state.state.preferred_successors()
    _change_role(ctx, Resigned(ctx.epoch, ctx.election_deadline(), successors), reason)
    for voter in successors:
        ctx.send(voter, EndQuorumEpochRequest(ctx.epoch, ctx.node_id, successors))


def step_down(ctx: Context, epoch: int, leader_id: int | None, reason: str) -> None:
    """A message carried a newer epoch: follow its leader if it names one."""
    assert epoch > ctx.epoch, f"step down to epoch {epoch} from {ctx.epoch}"
    if leader_id is not None and leader_id != ctx.node_id:
        transition_to_follower(ctx, epoch, leader_id, reason)
    else:
        transition_to_unattached(ctx, epoch, reason)
