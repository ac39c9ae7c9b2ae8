"""What a leader tracks about its replicas: their progress, the high watermark it implies,
the fetches it holds back until there is something to answer, and check-quorum.

Pure bookkeeping: kraft.raft.replication decides when to call it and what to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kraft.raft.messages import FetchRequest
from kraft.raft.types import ReplicaStatus


@dataclass(slots=True)
class ReplicaProgress:
    node_id: int
    is_voter: bool
    log_end_offset: int = 0  # as proven by its last valid fetch in this epoch
    last_fetch_tick: int | None = None
    last_caught_up_tick: int | None = None
    # The high watermark our last answer told it: a fetch is parked only if it has
    # nothing to learn, neither entries nor a newer high watermark.
    high_watermark_sent: int = -1

    def status(self) -> ReplicaStatus:
        return ReplicaStatus(
            node_id=self.node_id,
            is_voter=self.is_voter,
            log_end_offset=self.log_end_offset,
            last_fetch_tick=self.last_fetch_tick,
            last_caught_up_tick=self.last_caught_up_tick,
        )


@dataclass(frozen=True, slots=True)
class ParkedFetch:
    """A caught-up replica's fetch, answered when there is news or at `deadline`."""

    request: FetchRequest
    deadline: int


@dataclass(slots=True)
class LeaderState:
    node_id: int
    voters: frozenset[int]
    became_leader_tick: int
    # Offset of the LEADER_CHANGE entry this leader appended: the high watermark moves only
    # once it passes it, so entries of older epochs are committed only with one of ours.
    leader_change_offset: int
    next_begin_quorum_tick: int
    begin_quorum_pending: set[int] = field(default_factory=set)
    progress: dict[int, ReplicaProgress] = field(default_factory=dict)
    parked: dict[int, ParkedFetch] = field(default_factory=dict)

    def replica(self, node_id: int) -> ReplicaProgress:
        if node_id not in self.progress:
            self.progress[node_id] = ReplicaProgress(node_id, is_voter=node_id in self.voters)
        return self.progress[node_id]

    def record_fetch_attempt(self, node_id: int, now: int) -> None:
        """Any fetch proves the replica is alive and knows this epoch."""
        self.replica(node_id).last_fetch_tick = now
        self.begin_quorum_pending.discard(node_id)

    def record_valid_fetch(
        self, node_id: int, fetch_offset: int, leader_end: int, now: int
    ) -> None:
        """A fetch whose offset matches our log proves the replica holds [0, fetch_offset)."""
        progress = self.replica(node_id)
        progress.log_end_offset = fetch_offset
        if fetch_offset >= leader_end:
            progress.last_caught_up_tick = now

    def quorum_high_watermark(self, own_persisted_end: int) -> int | None:
        """The largest offset a majority of voters hold, if it covers our LEADER_CHANGE."""
        ends = [own_persisted_end] + [
            self.progress[voter].log_end_offset if voter in self.progress else 0
            for voter in sorted(self.voters)
            if voter != self.node_id
        ]
        ends.sort(reverse=True)
        majority_end = ends[len(self.voters) // 2]
        if majority_end <= self.leader_change_offset:
            return None
        return majority_end

    def voters_heard_within(self, now: int, window_ticks: int) -> list[int]:
        """Voters (counting ourselves) that fetched in the last `window_ticks` ticks."""
        heard = [self.node_id]
        for voter in sorted(self.voters - {self.node_id}):
            last = self.progress[voter].last_fetch_tick if voter in self.progress else None
            if last is not None and now - last < window_ticks:
                heard.append(voter)
        return sorted(heard)

    def preferred_successors(self) -> tuple[int, ...]:
        """Other voters, most caught up first (ties by node id), for EndQuorumEpoch."""
        others = sorted(self.voters - {self.node_id})
        return tuple(
            sorted(
                others,
                key=lambda voter: (
                    -(self.progress[voter].log_end_offset if voter in self.progress else 0),
                    voter,
                ),
            )
        )

    def replica_statuses(self, own_end: int, now: int) -> tuple[ReplicaStatus, ...]:
        own = ReplicaStatus(self.node_id, self.node_id in self.voters, own_end, now, now)
        others = [self.progress[node].status() for node in sorted(self.progress)]
        return (own, *others)
