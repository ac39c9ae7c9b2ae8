"""The values of the classic group protocol: states, settings, members, requests and
answers, and what the offsets topic stores of a group (snapshots, committed offsets). Plain
data; the transitions are in state.py."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

UNKNOWN_MEMBER_ID = ""
NO_GENERATION = -1  # the generation of a commit from outside group management
NO_REQUEST = -1


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


LEGAL_TRANSITIONS: dict[GroupState, frozenset[GroupState]] = {
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE, GroupState.DEAD}),
    GroupState.PREPARING_REBALANCE: frozenset(
        {GroupState.COMPLETING_REBALANCE, GroupState.EMPTY, GroupState.DEAD}
    ),
    GroupState.COMPLETING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.PREPARING_REBALANCE, GroupState.DEAD}
    ),
    GroupState.STABLE: frozenset({GroupState.PREPARING_REBALANCE, GroupState.DEAD}),
    GroupState.DEAD: frozenset(),
}


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """Broker settings with Kafka's names: group.initial.rebalance.delay.ms,
    group.min.session.timeout.ms, group.max.session.timeout.ms."""

    initial_rebalance_delay_ms: int
    min_session_timeout_ms: int
    max_session_timeout_ms: int

    def __post_init__(self) -> None:
        assert self.initial_rebalance_delay_ms >= 0, self.initial_rebalance_delay_ms
        assert 0 < self.min_session_timeout_ms <= self.max_session_timeout_ms, self


@dataclass(frozen=True, slots=True)
class JoinRequest:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]  # (name, metadata), most preferred first
    # v4+: an unknown member first gets MEMBER_ID_REQUIRED with its id (KIP-394)
    require_known_member_id: bool
    new_member_id: str  # the id this member gets if it has none (the shell makes it unique)


@dataclass(frozen=True, slots=True)
class JoinAnswer:
    member_id: str
    error: ErrorCode
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    # (member id, group instance id, metadata for the chosen protocol): for the leader only
    members: tuple[tuple[str, str | None, bytes], ...] = ()
    # JoinGroup v9: a static leader back in a Stable group keeps the current assignment
    skip_assignment: bool = False


@dataclass(frozen=True, slots=True)
class SyncAnswer:
    member_id: str
    error: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


Answer = JoinAnswer | SyncAnswer


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    assignment: bytes = b""
    join_request: int = NO_REQUEST  # the JoinGroup waiting for the join phase to end
    sync_request: int = NO_REQUEST  # the SyncGroup waiting for the leader's assignment
    heartbeat_deadline_ms: int = 0

    @property
    def awaiting_join(self) -> bool:
        return self.join_request != NO_REQUEST

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_request != NO_REQUEST

    def metadata(self, protocol: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        raise AssertionError(f"member {self.member_id} does not support protocol {protocol!r}")

    def vote(self, candidates: set[str]) -> str:
        """Its most preferred protocol among those every member supports."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise AssertionError(f"member {self.member_id} supports none of {sorted(candidates)}")


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    """A member as the offsets topic stores it (GroupMetadataValue's MemberMetadata)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes  # metadata of the chosen protocol
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    """What the offsets topic stores of a group (GroupMetadataValue)."""

    group_id: str
    protocol_type: str | None
    generation_id: int
    protocol_name: str | None
    leader: str | None
    state_timestamp_ms: int
    members: tuple[MemberSnapshot, ...]


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int
