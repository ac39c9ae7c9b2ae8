"""The mutable state of one Raft core, shared by the modules that handle its inputs.

RaftCore (kraft.raft.core) owns one Context; kraft.raft.transitions, .voting and
.replication are functions over it. Keeping the state in one plain object (rather than
spread over mixins) lets each of those modules stay small and lets mypy see every field.
The Context also accumulates what the next Ready will carry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kraft.raft.config import RaftConfig
from kraft.raft.log import RaftLog
from kraft.raft.roles import RoleState, leader_of, role_of
from kraft.raft.types import ElectionState, Outbound, Role, RoleChange, Snapshot, SnapshotId


@dataclass(slots=True)
class Context:
    config: RaftConfig
    rng: random.Random
    log: RaftLog
    role: RoleState
    high_watermark: int
    snapshot: Snapshot | None  # the latest snapshot this node holds (serves FetchSnapshot)
    now: int = 0
    # Committed entries below this offset were handed to the shell to apply.
    committed_handed_offset: int = 0
    # The shell applied every committed entry below this offset (it called advance).
    applied_offset: int = 0
    persisted_election_state: ElectionState | None = None
    handed_election_state: ElectionState | None = None
    # The fetch client (followers, and observers looking for the leader): one request
    # outstanding at a time, identified by a monotonic id.
    next_request_id: int = 1
    outstanding_request_id: int | None = None
    request_sent_tick: int = 0
    # Observers looking for the leader rotate over the voters.
    last_discovery_voter: int | None = None
    # What the next Ready carries beyond entries and election state.
    outbox: list[Outbound] = field(default_factory=list)
    role_changes: list[RoleChange] = field(default_factory=list)
    pending_snapshot: Snapshot | None = None
    pending_log_start_offset: int | None = None
    pending_truncate_to: int | None = None
    pending_snapshot_to_load: Snapshot | None = None
    wake_parked_fetches: bool = False
    # Older snapshots a replica is still downloading, with the tick of its last chunk: the
    # leader keeps serving them for a fetch timeout after a newer snapshot replaced them, so
    # a download slower than the snapshot interval still completes.
    snapshots_in_download: dict[SnapshotId, tuple[Snapshot, int]] = field(default_factory=dict)

    @property
    def node_id(self) -> int:
        return self.config.node_id

    @property
    def is_voter(self) -> bool:
        return self.config.is_voter

    @property
    def epoch(self) -> int:
        return self.role.epoch

    @property
    def leader_id(self) -> int | None:
        return leader_of(self.role, self.node_id)

    @property
    def current_role(self) -> Role:
        return role_of(self.role, self.is_voter)

    @property
    def majority(self) -> int:
        return len(self.config.voters) // 2 + 1

    def other_voters(self) -> list[int]:
        return sorted(self.config.voters - {self.node_id})

    def send(self, to: int, message: object) -> None:
        assert to != self.node_id, f"node {to} sending {type(message).__name__} to itself"
        self.outbox.append(Outbound(to, message))

    def jitter(self) -> int:
        """Random extra wait in [0, election_timeout_ticks), redrawn on every reset."""
        return self.rng.randrange(self.config.election_timeout_ticks)

    def election_deadline(self) -> int:
        return self.now + self.config.election_timeout_ticks + self.jitter()

    def new_request_id(self) -> int:
        request_id = self.next_request_id
        self.next_request_id += 1
        self.outstanding_request_id = request_id
        self.request_sent_tick = self.now
        return request_id

    def raise_high_watermark(self, value: int) -> bool:
        """Move the high watermark up to `value`; it never moves down. True if it moved."""
        assert value <= self.log.end_offset, (
            f"high watermark {value} beyond log end offset {self.log.end_offset}"
        )
        if value <= self.high_watermark:
            return False
        self.high_watermark = value
        self.wake_parked_fetches = True
        return True

    def truncate_log(self, offset: int) -> None:
        """Drop entries at or above `offset`; committed entries are never dropped."""
        assert offset >= self.high_watermark, (
            f"truncation to {offset} below the high watermark {self.high_watermark}"
        )
        assert role_of(self.role, self.is_voter) is not Role.LEADER, "a leader truncated its log"
        if offset >= self.log.end_offset:
            return
        shell_end = self.log.handed_end_offset
        self.log.truncate_to(offset)
        if offset < shell_end:
            current = self.pending_truncate_to
            self.pending_truncate_to = offset if current is None else min(current, offset)
