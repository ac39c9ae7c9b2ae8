"""The one common epoch check every message passes before role-specific handling
(KIP-595; STYLE.md §1).

- Votes and BeginQuorumEpoch from non-voters are refused with NOT_VOTER.
- A message of an older epoch is not acted on: a response is ignored, a request is
  answered with an error that carries our epoch and leader, so its sender learns them.
- A message of a newer epoch makes us step down to it: Follower if it names the leader
  of that epoch, Unattached otherwise.
- A response naming the leader of our own epoch ends our search for it.

Pre-vote requests (KIP-996) change no state and so skip the epoch check, except that a
sender already in a newer epoch than ours moves us to it (see `admit`).
"""

from __future__ import annotations

from kraft.raft import election, replication, transitions
from kraft.raft.context import Context
from kraft.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    ErrorCode,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    Message,
    VoteRequest,
    VoteResponse,
)
from kraft.raft.roles import Leader, Resigned

RESPONSES = (
    VoteResponse,
    BeginQuorumEpochResponse,
    EndQuorumEpochResponse,
    FetchResponse,
    FetchSnapshotResponse,
)


def admit(ctx: Context, sender: int, message: Message) -> bool:
    """Apply the common checks; True if the message, now of our epoch, should be handled."""
    if isinstance(message, VoteRequest | BeginQuorumEpochRequest) and not _from_voter(
        ctx, sender, message
    ):
        return False
    if isinstance(message, VoteRequest) and message.pre_vote:
        # A sender already in a newer epoch than ours (it was a candidate there) would
        # ignore our answers as stale forever, and stay stuck there if its log is behind.
        if message.epoch - 1 > ctx.epoch:
            reason = f"pre-vote from node {sender} already in epoch {message.epoch - 1}"
            transitions.step_down(ctx, message.epoch - 1, None, reason)
        election.handle_pre_vote_request(ctx, sender, message)
        return False
    if message.epoch < ctx.epoch:
        _answer_stale(ctx, sender, message)
        return False
    if message.epoch > ctx.epoch:
        if isinstance(message, FetchRequest):
            # Whoever fetches in a newer epoch knows a leader we do not: we step down,
            # and tell it we are not the leader it looks for.
            transitions.step_down(ctx, message.epoch, None, f"fetch from node {sender}")
            replication.answer_fetch_with_error(
                ctx, sender, message, ErrorCode.UNKNOWN_LEADER_EPOCH
            )
            return False
        reason = f"higher epoch {message.epoch} from node {sender}"
        transitions.step_down(ctx, message.epoch, _leader_hint(message), reason)
    _maybe_learn_leader(ctx, sender, message)
    return True


def _from_voter(ctx: Context, sender: int, message: VoteRequest | BeginQuorumEpochRequest) -> bool:
    """Votes and BeginQuorumEpoch come only from voters; refuse the others."""
    if sender in ctx.config.voters:
        return True
    not_voter = ErrorCode.NOT_VOTER
    if isinstance(message, VoteRequest):
        ctx.send(sender, VoteResponse(ctx.epoch, False, ctx.leader_id, message.pre_vote, not_voter))
    else:
        ctx.send(sender, BeginQuorumEpochResponse(ctx.epoch, ctx.leader_id, not_voter))
    return False


def _answer_stale(ctx: Context, sender: int, message: Message) -> None:
    """A message from an older epoch: ignore a response, tell a requester our epoch."""
    fenced = ErrorCode.FENCED_LEADER_EPOCH
    leader = ctx.leader_id
    if isinstance(message, VoteRequest):
        ctx.send(sender, VoteResponse(ctx.epoch, False, leader))
    elif isinstance(message, BeginQuorumEpochRequest):
        ctx.send(sender, BeginQuorumEpochResponse(ctx.epoch, leader, fenced))
    elif isinstance(message, EndQuorumEpochRequest):
        ctx.send(sender, EndQuorumEpochResponse(ctx.epoch, leader, fenced))
    elif isinstance(message, FetchRequest):
        replication.answer_fetch_with_error(ctx, sender, message, fenced)
    elif isinstance(message, FetchSnapshotRequest):
        response = FetchSnapshotResponse(
            ctx.epoch, leader, message.request_id, fenced, message.snapshot_id, 0, 0, b""
        )
        ctx.send(sender, response)


def _leader_hint(message: Message) -> int | None:
    """The leader of the message's epoch, if the message names one."""
    if isinstance(message, BeginQuorumEpochRequest | EndQuorumEpochRequest):
        return message.leader_id
    if isinstance(message, RESPONSES):
        return message.leader_id
    return None


def _maybe_learn_leader(ctx: Context, sender: int, message: Message) -> None:
    """A response naming the leader of our epoch ends a search for it."""
    if not isinstance(message, RESPONSES) or message.leader_id is None:
        return
    if isinstance(message, VoteResponse) and message.granted:
        return  # a voter that grants does not vouch for a leader
    if message.leader_id == ctx.node_id or ctx.leader_id is not None:
        return
    if isinstance(ctx.role, Resigned | Leader):
        return
    transitions.transition_to_follower(
        ctx,
        ctx.epoch,
        message.leader_id,
        f"node {sender} named leader {message.leader_id} of epoch {ctx.epoch}",
    )
