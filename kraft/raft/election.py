"""Votes, pre-votes (KIP-996) and the BeginQuorumEpoch / EndQuorumEpoch announcements.

Callers (kraft.raft.core) have already refused non-voters and applied the common epoch
check, except for pre-vote requests, which change no state and so skip it: a pre-vote
carries the epoch the sender would campaign in, one above its own.
"""

from __future__ import annotations

from kraft.raft import transitions
from kraft.raft.context import Context
from kraft.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    VoteRequest,
    VoteResponse,
)
from kraft.raft.roles import (
    Candidate,
    Follower,
    Leader,
    Prospective,
    Resigned,
    Unattached,
    Voted,
)


def log_is_up_to_date(ctx: Context, last_epoch: int, log_end_offset: int) -> bool:
    """Raft §5.4.1: the candidate's log is at least as up to date as ours."""
    return (last_epoch, log_end_offset) >= (ctx.log.last_epoch, ctx.log.end_offset)


def leader_seems_alive(ctx: Context) -> bool:
    """We heard from a leader that has not resigned within fetch_timeout_ticks."""
    state = ctx.role
    if isinstance(state, Leader):
        return True
    if isinstance(state, Follower):
        contact = state.last_leader_contact_tick
        recent = contact is not None and ctx.now - contact < ctx.config.fetch_timeout_ticks
        return recent and not state.leader_resigned
    return False


def handle_pre_vote_request(ctx: Context, sender: int, request: VoteRequest) -> None:
    alive = leader_seems_alive(ctx)
    granted = (
        ctx.is_voter
        and request.epoch >= ctx.epoch
        and not isinstance(ctx.role, Resigned)
        and not alive
        and log_is_up_to_date(ctx, request.last_epoch, request.log_end_offset)
    )
    # Name the leader only if we believe it alive: the prospective will follow it.
    leader_id = ctx.leader_id if alive else None
    ctx.send(sender, VoteResponse(ctx.epoch, granted, leader_id, pre_vote=True))


def handle_vote_request(ctx: Context, sender: int, request: VoteRequest) -> None:
    assert request.epoch == ctx.epoch, "the common epoch check runs first"
    candidate = request.candidate_id
    up_to_date = log_is_up_to_date(ctx, request.last_epoch, request.log_end_offset)
    state = ctx.role
    granted = False
    if not ctx.is_voter:
        granted = False
    elif isinstance(state, Voted | Follower):
        granted = state.voted_id == candidate
    elif isinstance(state, Prospective) and state.retained.voted_id is not None:
        granted = state.retained.voted_id == candidate
    elif isinstance(state, Prospective) and state.retained.leader_id is not None:
        granted = False
    elif isinstance(state, Unattached | Prospective) and up_to_date:
        granted = True
        transitions.transition_to_voted(
            ctx, candidate, f"voted for node {candidate} in epoch {ctx.epoch}"
        )
    ctx.send(sender, VoteResponse(ctx.epoch, granted, ctx.leader_id))


def handle_vote_response(ctx: Context, sender: int, response: VoteResponse) -> None:
    assert response.epoch == ctx.epoch, "the common epoch check runs first"
    state = ctx.role
    if response.pre_vote and isinstance(state, Prospective):
        (state.granted if response.granted else state.rejected).add(sender)
        if response.granted:
            transitions.maybe_win_pre_vote(ctx, state)
        elif len(state.rejected) > len(ctx.config.voters) - ctx.majority:
            transitions.transition_after_lost_pre_vote(
                ctx, f"lost pre-vote: rejected by {sorted(state.rejected)}"
            )
    elif not response.pre_vote and isinstance(state, Candidate):
        (state.granted if response.granted else state.rejected).add(sender)
        if response.granted:
            transitions.maybe_win_election(ctx, state)


def handle_begin_quorum_epoch(ctx: Context, sender: int, request: BeginQuorumEpochRequest) -> None:
    assert request.epoch == ctx.epoch, "the common epoch check runs first"
    state = ctx.role
    if isinstance(state, Leader | Resigned):
        assert request.leader_id == ctx.node_id, (
            f"two leaders in epoch {ctx.epoch}: {ctx.node_id} and {request.leader_id}"
        )
    elif isinstance(state, Follower):
        assert request.leader_id == state.leader_id, (
            f"two leaders in epoch {ctx.epoch}: {state.leader_id} and {request.leader_id}"
        )
        state.last_leader_contact_tick = ctx.now
    else:
        transitions.transition_to_follower(
            ctx,
            ctx.epoch,
            request.leader_id,
            f"BeginQuorumEpoch from leader {request.leader_id}",
            last_leader_contact_tick=ctx.now,
        )
    ctx.send(sender, BeginQuorumEpochResponse(ctx.epoch, ctx.leader_id))


def handle_end_quorum_epoch(ctx: Context, sender: int, request: EndQuorumEpochRequest) -> None:
    """Our leader resigned: campaign after a wait proportional to our rank among its
    preferred successors, so that the most caught-up voter usually wins (KIP-595)."""
    assert request.epoch == ctx.epoch, "the common epoch check runs first"
    state = ctx.role
    ctx.send(sender, EndQuorumEpochResponse(ctx.epoch, ctx.leader_id))
    if not ctx.is_voter or not isinstance(state, Follower):
        return
    if state.leader_id != request.leader_id:
        return
    successors = request.preferred_successors
    rank = successors.index(ctx.node_id) if ctx.node_id in successors else len(successors)
    state.leader_resigned = True
    state.fetch_deadline = ctx.now + rank * max(1, ctx.config.election_timeout_ticks // 2)
    if rank == 0:
        transitions.transition_to_prospective(
            ctx, f"leader {request.leader_id} resigned; first preferred successor"
        )
