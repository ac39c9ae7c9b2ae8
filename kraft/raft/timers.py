"""What each role does when a tick of logical time passes: timeouts and resends.

Timers are ticks at which something fires, set by transitions (with jitter from the
injected rng) and reset by messages; here they are only compared with the clock.
"""

from __future__ import annotations

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
