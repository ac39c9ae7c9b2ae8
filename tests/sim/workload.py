"""Clients of the simulated quorum: they propose unique values and track every outcome.

A client proposes to the node it believes leads (the last hint of a NotLeaderError, or a
random live node). The ProposalAck says where the values went; the proposal is
acknowledged when the proposer's node commits the entry at `ack.last_offset` with
`ack.epoch`, and failed when it commits another entry there. A proposal whose node crashed
or skipped the offset (by loading a snapshot) has an unknown outcome, as for a real client
whose connection broke.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kraft.raft.types import Entry, ProposalAck


@dataclass(frozen=True, slots=True)
class Proposal:
    node_id: int
    incarnation: int
    records: tuple[bytes, ...]
    ack: ProposalAck
    proposed_at_tick: int


@dataclass(slots=True)
class WorkloadStats:
    proposed: int = 0
    rejected_not_leader: int = 0
    rejected_other: int = 0
    acknowledged: int = 0
    failed: int = 0
    unknown: int = 0


@dataclass(slots=True)
class Workload:
    seed: int
    leader_guess: int | None = None
    next_value: int = 0
    pending: dict[int, dict[int, Proposal]] = field(default_factory=dict)  # node -> last offset
    acknowledged: list[Proposal] = field(default_factory=list)
    stats: WorkloadStats = field(default_factory=WorkloadStats)

    def new_records(self, count: int) -> tuple[bytes, ...]:
        records = []
        for _ in range(count):
            records.append(f"s{self.seed}-v{self.next_value}".encode())
            self.next_value += 1
        return tuple(records)

    def on_proposed(self, proposal: Proposal) -> None:
        ack = proposal.ack
        assert ack.last_offset - ack.base_offset + 1 == len(proposal.records), (
            f"ProposalAck {ack} does not span the {len(proposal.records)} records proposed"
        )
        self.stats.proposed += 1
        by_offset = self.pending.setdefault(proposal.node_id, {})
        if ack.last_offset in by_offset:
            # The node appended there before, lost its leadership and that uncommitted
            # entry, and leads again: the older proposal cannot commit any more.
            self.stats.failed += 1
        by_offset[ack.last_offset] = proposal

    def on_node_crashed(self, node_id: int) -> None:
        self.stats.unknown += len(self.pending.pop(node_id, {}))

    def on_commit(self, node_id: int, entry: Entry) -> Proposal | None:
        """The proposal this commit acknowledges, if any (failed ones are dropped)."""
        by_offset = self.pending.get(node_id)
        if not by_offset:
            return None
        proposal = by_offset.pop(entry.offset, None)
        if proposal is None:
            return None
        if entry.epoch != proposal.ack.epoch:
            self.stats.failed += 1
            return None
        self.stats.acknowledged += 1
        self.acknowledged.append(proposal)
        return proposal

    def on_snapshot_loaded(self, node_id: int, end_offset: int) -> None:
        by_offset = self.pending.get(node_id, {})
        for offset in sorted(by_offset):
            if offset < end_offset:
                del by_offset[offset]
                self.stats.unknown += 1
