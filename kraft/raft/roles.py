"""The roles a node can be in, as types (KIP-595, with KIP-996's Prospective).

Each role holds only what matters while the node is in it: timers (as the tick at which
they fire), votes collected, the leader followed. kraft.raft.transitions is the only code
that creates them. An observer (a node that is not a voter) is only ever Unattached or
Follower, and is reported as Role.OBSERVER.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kraft.raft.leader import LeaderState
from kraft.raft.types import ElectionState, Role, SnapshotId


@dataclass(slots=True)
class Unattached:
    """No leader known and no vote cast in `epoch`."""

    epoch: int
    election_deadline: int  # voters start a pre-vote at this tick
    next_discovery_tick: int = 0  # observers ask another voter for the leader at this tick


@dataclass(slots=True)
class Voted:
    """Voted for `voted_id` in `epoch`; no leader known yet."""

    epoch: int
    voted_id: int
    election_deadline: int


@dataclass(slots=True)
class Prospective:
    """Asking voters whether they would vote for us in epoch + 1 (KIP-996 pre-vote).

    Nothing persisted changes: `retained` is the election state we had (the leader we
    followed, the vote we cast), restored if the pre-vote fails.
    """

    epoch: int
    retained: ElectionState
    last_leader_contact_tick: int | None
    election_deadline: int
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    # We campaign because our leader resigned (EndQuorumEpoch): if this pre-vote fails (a
    # voter had not heard of the resignation yet), retry soon rather than after a timeout.
    leader_resigned: bool = False


@dataclass(slots=True)
class Candidate:
    """Voted for ourselves in `epoch`; collecting votes."""

    epoch: int
    election_deadline: int
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)


@dataclass(slots=True)
class Leader:
    epoch: int
    state: LeaderState


@dataclass(slots=True)
class SnapshotDownload:
    """A snapshot being fetched chunk by chunk from the leader (KIP-630)."""

    snapshot_id: SnapshotId
    data: bytearray = field(default_factory=bytearray)


@dataclass(slots=True)
class Follower:
    """Fetching from `leader_id` in `epoch` (voters and observers alike)."""

    epoch: int
    leader_id: int
    voted_id: int | None
    last_leader_contact_tick: int | None
    fetch_deadline: int  # no valid FetchResponse by this tick: the leader is presumed dead
    leader_resigned: bool = False  # got EndQuorumEpoch: grant pre-votes from now on
    download: SnapshotDownload | None = None


@dataclass(slots=True)
class Resigned:
    """Was leader of `epoch` and gave it up (shutdown or check-quorum); never votes in it."""

    epoch: int
    election_deadline: int
    preferred_successors: tuple[int, ...]


RoleState = Unattached | Voted | Prospective | Candidate | Leader | Follower | Resigned


def role_of(state: RoleState, is_voter: bool) -> Role:
    if not is_voter:
        return Role.OBSERVER
    match state:
        case Unattached():
            return Role.UNATTACHED
        case Voted():
            return Role.VOTED
        case Prospective():
            return Role.PROSPECTIVE
        case Candidate():
            return Role.CANDIDATE
        case Leader():
            return Role.LEADER
        case Follower():
            return Role.FOLLOWER
        case Resigned():
            return Role.RESIGNED


def election_state_of(state: RoleState, node_id: int) -> ElectionState:
    """What must be durable while the node is in `state`."""
    match state:
        case Unattached():
            return ElectionState(state.epoch)
        case Voted():
            return ElectionState(state.epoch, voted_id=state.voted_id)
        case Prospective():
            return state.retained
        case Candidate():
            return ElectionState(state.epoch, voted_id=node_id)
        case Leader() | Resigned():
            return ElectionState(state.epoch, voted_id=node_id, leader_id=node_id)
        case Follower():
            return ElectionState(state.epoch, voted_id=state.voted_id, leader_id=state.leader_id)


def leader_of(state: RoleState, node_id: int) -> int | None:
    """The leader of the current epoch, as far as this node knows."""
    match state:
        case Follower():
            return state.leader_id
        case Leader():
            return node_id
        case _:
            # A Prospective no longer trusts the leader it had, and a Resigned leader must
            # not be followed: neither names a leader.
            return None
