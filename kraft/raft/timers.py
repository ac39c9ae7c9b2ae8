"""What each role does when a tick of logical time passes: timeouts and resends.

Timers are ticks at which something fires, set by transitions (with jitter from the
injected rng) and reset by messages; here they are only compared with the clock.
"""

from __future__ import annotations

import math

from kraft.raft import replication, transitions
from kraft.raft.context import Context
from kraft.raft.leader import LeaderState
from kraft.raft.messages import BeginQuorumEpochRequest
from kraft.raft.roles import Candidate, Follower, Leader, Prospective, Resigned, Unattached, Voted


def on_tick(ctx: Context) -> None:
    ctx.now += 1
    state = ctx.role
    if isinstance(state, Unattached):
        _unattached_tick(ctx, state)
    elif isinstance(state, Voted | Resigned) and ctx.now >= state.election_deadline:
        transitions.transition_to_prospective(ctx, "election timeout")
    elif isinstance(state, Prospective) and ctx.now >= state.election_deadline:
        granted = sorted(state.granted)
        transitions.transition_after_lost_pre_vote(
            ctx, f"pre-vote timed out with votes from {granted}"
        )
    elif isinstance(state, Candidate) and ctx.now >= state.election_deadline:
        granted = sorted(state.granted)
        transitions.transition_to_prospective(ctx, f"election timed out with votes from {granted}")
    elif isinstance(state, Follower):
        _follower_tick(ctx, state)
    elif isinstance(state, Leader):
        _leader_tick(ctx, state.state)


def ticks_until_due(ctx: Context) -> int:
    """How many ticks from now until on_tick may next act: the ticks before that one find
    nothing due (each deadline above is compared as `now >= deadline` after the increment),
    so a shell may sleep through them. Messages, proposals and snapshots move deadlines:
    ask again after each. At least 1. The simulator checks every tick against it."""
    state = ctx.role
    if isinstance(state, Unattached):
        due = state.election_deadline if ctx.is_voter else state.next_discovery_tick
    elif isinstance(state, Voted | Resigned | Prospective | Candidate):
        due = state.election_deadline
    elif isinstance(state, Follower):
        if ctx.outstanding_request_id is None:
            return 1  # the next tick sends a fetch
        resend = ctx.request_sent_tick + ctx.config.fetch_request_timeout_ticks
        due = min(state.fetch_deadline, resend)
    elif isinstance(state, Leader):
        due = _leader_due(ctx, state.state)
    else:
        return 1
    return max(1, due - ctx.now)


def _leader_due(ctx: Context, leader: LeaderState) -> int:
    """The first tick at which _leader_tick acts: check-quorum, a BeginQuorumEpoch resend or
    a parked fetch's deadline."""
    timeout = ctx.config.fetch_timeout_ticks
    # check-quorum resigns once fewer than a majority (ourselves included) fetched within
    # `timeout`: voter v counts until tick last_fetch_tick + timeout, so the quorum is lost
    # at the (majority - 1)-th latest of those ends, or at once without that many
    others_needed = ctx.majority - 1
    due = math.inf
    if others_needed > 0:
        heard_until = sorted(
            (
                progress.last_fetch_tick + timeout
                for voter, progress in leader.progress.items()
                if voter in leader.voters
                and voter != leader.node_id
                and progress.last_fetch_tick is not None
            ),
            reverse=True,
        )
        quorum_lost = (
            heard_until[others_needed - 1] if len(heard_until) >= others_needed else ctx.now
        )
        due = max(leader.became_leader_tick + timeout, quorum_lost)
    if leader.begin_quorum_pending:
        due = min(due, leader.next_begin_quorum_tick)
    for parked in leader.parked.values():
        due = min(due, parked.deadline)
    # nothing can come due without an input (which wakes the shell): a single voter
    return ctx.now + timeout if due == math.inf else int(due)


def _unattached_tick(ctx: Context, state: Unattached) -> None:
    if not ctx.is_voter:
        if ctx.now >= state.next_discovery_tick:
            replication.send_discovery_fetch(ctx, state)
    elif ctx.now >= state.election_deadline:
        transitions.transition_to_prospective(ctx, "election timeout")


def _follower_tick(ctx: Context, state: Follower) -> None:
    if ctx.now >= state.fetch_deadline:
        if state.leader_resigned:
            reason = f"leader {state.leader_id} resigned"
        else:
            reason = f"fetch timeout: no answer from leader {state.leader_id}"
        if ctx.is_voter:
            transitions.transition_to_prospective(ctx, reason)
        else:
            transitions.transition_to_unattached(ctx, ctx.epoch, reason)
        return
    outstanding = ctx.outstanding_request_id is not None
    if not outstanding or ctx.now - ctx.request_sent_tick >= ctx.config.fetch_request_timeout_ticks:
        replication.send_fetch(ctx, state)


def _leader_tick(ctx: Context, leader: LeaderState) -> None:
    timeout = ctx.config.fetch_timeout_ticks
    heard = leader.voters_heard_within(ctx.now, timeout)
    if ctx.now - leader.became_leader_tick >= timeout and len(heard) < ctx.majority:
        voters = len(ctx.config.voters)
        transitions.transition_to_resigned(
            ctx, f"check-quorum: fetches from only {heard} of {voters} voters"
        )
        return
    if ctx.now >= leader.next_begin_quorum_tick:
        leader.next_begin_quorum_tick = ctx.now + ctx.config.begin_quorum_resend_ticks
        for voter in sorted(leader.begin_quorum_pending):
            ctx.send(voter, BeginQuorumEpochRequest(ctx.epoch, ctx.node_id))
    replication.answer_parked_fetches(ctx, leader, only_expired=True)
