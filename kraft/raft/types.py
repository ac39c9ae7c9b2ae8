"""Values shared by the pure Raft core and the shells that drive it.

The core (kraft.raft.core) never performs I/O. Everything it wants done leaves it in one
`Ready` value; the shell persists, sends and applies what a Ready holds, then calls
`RaftCore.advance(ready)`. These types are that contract, so they carry no behaviour
beyond small invariant checks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class EntryKind(enum.IntEnum):
    """What an entry of the metadata log carries."""

    DATA = 0  # an opaque record proposed by the state machine
    LEADER_CHANGE = 1  # control record a new leader appends to commit earlier epochs


@dataclass(frozen=True, slots=True)
class Entry:
    """One record of the replicated log at `offset`, appended by the leader of `epoch`."""

    offset: int
    epoch: int
    data: bytes
    kind: EntryKind = EntryKind.DATA

    def __post_init__(self) -> None:
        assert self.offset >= 0, f"negative offset {self.offset}"
        assert self.epoch >= 0, f"negative epoch {self.epoch}"


@dataclass(frozen=True, slots=True, order=True)
class SnapshotId:
    """A snapshot covers every offset below `end_offset`; `epoch` is that of end_offset-1."""

    end_offset: int
    epoch: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    snapshot_id: SnapshotId
    data: bytes


@dataclass(frozen=True, slots=True)
class ElectionState:
    """What a node must persist (fsync) before it acts on it: KIP-595's quorum-state."""

    epoch: int
    voted_id: int | None = None
    leader_id: int | None = None


@dataclass(frozen=True, slots=True)
class OffsetAndEpoch:
    offset: int
    epoch: int


class Role(enum.Enum):
    """Roles of KIP-595 and KIP-996; `value` is the name Kafka's metrics use."""

    UNATTACHED = "unattached"
    VOTED = "voted"
    PROSPECTIVE = "prospective"  # pre-vote (KIP-996)
    CANDIDATE = "candidate"
    LEADER = "leader"
    FOLLOWER = "follower"
    RESIGNED = "resigned"
    OBSERVER = "observer"  # a non-voter; reported as such whatever it is following


@dataclass(frozen=True, slots=True)
class RoleChange:
    """Emitted on every transition so the shell can log and count it."""

    from_role: Role
    to_role: Role
    epoch: int
    leader_id: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Outbound:
    to: int
    message: object  # one of kraft.raft.messages.MESSAGE_TYPES


@dataclass(slots=True)
class Ready:
    """Everything the core asks of its shell, in the order the shell must do it.

    1. persist `election_state` (atomically, fsync) if set;
    2. persist `snapshot` if set (atomically), then drop log entries below `log_start_offset`;
    3. truncate the log to `truncate_to` (drop entries with offset >= it) if set;
    4. append `entries` and fsync;
    5. send `messages` (only now: they may rely on 1-4);
    6. reset the state machine to `snapshot_to_load` if set, then apply `committed` in order;
    7. call `core.advance(ready)`.
    """

    election_state: ElectionState | None = None
    snapshot: Snapshot | None = None
    log_start_offset: int | None = None
    truncate_to: int | None = None
    entries: list[Entry] = field(default_factory=list)
    messages: list[Outbound] = field(default_factory=list)
    snapshot_to_load: Snapshot | None = None
    committed: list[Entry] = field(default_factory=list)
    high_watermark: int = 0
    role_changes: list[RoleChange] = field(default_factory=list)

    def is_empty(self) -> bool:
        return (
            self.election_state is None
            and self.snapshot is None
            and self.log_start_offset is None
            and self.truncate_to is None
            and not self.entries
            and not self.messages
            and self.snapshot_to_load is None
            and not self.committed
            and not self.role_changes
        )


@dataclass(frozen=True, slots=True)
class RestoredState:
    """What a node reads back from its storage at start."""

    election_state: ElectionState
    snapshot: Snapshot | None
    entries: list[Entry]  # contiguous, starting at the snapshot's end offset (or 0)


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """One row of `kraft quorum describe --replication`, in ticks of the core's clock."""

    node_id: int
    is_voter: bool
    log_end_offset: int
    last_fetch_tick: int | None
    last_caught_up_tick: int | None


@dataclass(frozen=True, slots=True)
class QuorumStatus:
    node_id: int
    role: Role
    epoch: int
    leader_id: int | None
    voted_id: int | None
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    voters: tuple[int, ...]
    tick: int
    replicas: tuple[ReplicaStatus, ...]  # known only on the leader; empty elsewhere


class NotLeaderError(Exception):
    """A proposal reached a node that is not the leader; `leader_id` is the hint, if known."""

    def __init__(self, leader_id: int | None, epoch: int) -> None:
        super().__init__(f"not the leader (leader is {leader_id}, epoch {epoch})")
        self.leader_id = leader_id
        self.epoch = epoch


class ProposalTooLargeError(Exception):
    """A proposal exceeded a named limit (records per proposal, or pending entries)."""


@dataclass(frozen=True, slots=True)
class ProposalAck:
    """Where a proposal was appended. It is committed once the high watermark passes
    `last_offset` and the committed entry at `last_offset` still has this `epoch`."""

    epoch: int
    base_offset: int
    last_offset: int
