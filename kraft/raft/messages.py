"""The messages voters and observers exchange, after KIP-595 (with KIP-996 pre-vote and the
snapshot fetch of KIP-630).

They are plain values: the core never sees bytes (kraft.rpc.codec turns them into msgpack
frames at the edge). Every request carries the sender's epoch; every response carries the
responder's epoch and the leader it knows, so a receiver can apply the one common epoch check
(stale: ignore; newer: step down) before role-specific handling.

Fetch and FetchSnapshot requests carry a `request_id` the response echoes: a follower acts
only on the answer to its outstanding request, so a duplicated or reordered old answer can
never make it truncate entries it has already acknowledged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kraft.raft.types import Entry, OffsetAndEpoch, SnapshotId


class ErrorCode(enum.IntEnum):
    NONE = 0
    FENCED_LEADER_EPOCH = 1  # the request's epoch is older than the receiver's
    NOT_LEADER = 2  # the receiver is not the leader of the request's epoch
    UNKNOWN_LEADER_EPOCH = 3  # the request's epoch is newer than the receiver knows
    SNAPSHOT_NOT_FOUND = 4  # the requested snapshot is no longer (or not yet) held
    NOT_VOTER = 5  # a non-voter asked for a vote, or a voter sent a voter-only request


@dataclass(frozen=True, slots=True)
class VoteRequest:
    """Candidate (or, with pre_vote, prospective) asks for a vote in `epoch`.

    For a pre-vote, `epoch` is the epoch the sender would campaign in (its own + 1) and the
    receiver changes no state when answering.
    """

    epoch: int
    candidate_id: int
    last_epoch: int  # epoch of the candidate's last log entry (or of its snapshot)
    log_end_offset: int
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class VoteResponse:
    epoch: int
    granted: bool
    leader_id: int | None
    pre_vote: bool = False
    error: ErrorCode = ErrorCode.NONE


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochRequest:
    """The winner of an election announces itself to every voter."""

    epoch: int
    leader_id: int


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochResponse:
    epoch: int
    leader_id: int | None
    error: ErrorCode = ErrorCode.NONE


@dataclass(frozen=True, slots=True)
class EndQuorumEpochRequest:
    """A leader that resigns (shutdown, check-quorum) tells voters to elect a successor now.

    `preferred_successors` lists voters by how caught up they are, best first; a voter
    waits in proportion to its position before campaigning, so the best one usually wins.
    """

    epoch: int
    leader_id: int
    preferred_successors: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EndQuorumEpochResponse:
    epoch: int
    leader_id: int | None
    error: ErrorCode = ErrorCode.NONE


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """A follower or observer pulls entries from `fetch_offset` on.

    `last_fetched_epoch` is the epoch of its entry at fetch_offset-1 (or of its snapshot),
    which lets the leader detect divergence.
    """

    epoch: int
    replica_id: int
    request_id: int
    fetch_offset: int
    last_fetched_epoch: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """Entries, or the point where the follower's log diverges, or the snapshot to fetch."""

    epoch: int
    leader_id: int | None
    request_id: int
    error: ErrorCode
    high_watermark: int
    log_start_offset: int
    entries: tuple[Entry, ...] = ()
    diverging: OffsetAndEpoch | None = None  # truncate to at most this end offset
    snapshot_id: SnapshotId | None = None  # fetch_offset is below log start: load this


@dataclass(frozen=True, slots=True)
class FetchSnapshotRequest:
    epoch: int
    replica_id: int
    request_id: int
    snapshot_id: SnapshotId
    position: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class FetchSnapshotResponse:
    epoch: int
    leader_id: int | None
    request_id: int
    error: ErrorCode
    snapshot_id: SnapshotId
    size: int  # total bytes of the snapshot
    position: int
    chunk: bytes


Message = (
    VoteRequest
    | VoteResponse
    | BeginQuorumEpochRequest
    | BeginQuorumEpochResponse
    | EndQuorumEpochRequest
    | EndQuorumEpochResponse
    | FetchRequest
    | FetchResponse
    | FetchSnapshotRequest
    | FetchSnapshotResponse
)

# The wire tag of each message type. Tags are part of the protocol: never reuse or renumber.
MESSAGE_TYPES: dict[int, type] = {
    1: VoteRequest,
    2: VoteResponse,
    3: BeginQuorumEpochRequest,
    4: BeginQuorumEpochResponse,
    5: EndQuorumEpochRequest,
    6: EndQuorumEpochResponse,
    7: FetchRequest,
    8: FetchResponse,
    9: FetchSnapshotRequest,
    10: FetchSnapshotResponse,
}
