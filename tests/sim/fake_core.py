"""A stand-in core for a quorum of one voter, used only to test the simulator itself.

It speaks the RaftCore API (Ready, advance, propose, compact) without any networking: it
leads from its first tick, in a new epoch, and commits an entry once its own storage has it
(its majority is itself). This lets the simulator's shell, storage, crash points, state
machine, snapshots, workload and checks be exercised independently of the real core. It
is not a Raft implementation and never runs with more than one node.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from kraft.raft.config import RaftConfig
from kraft.raft.messages import Message
from kraft.raft.types import (
    ElectionState,
    Entry,
    EntryKind,
    NotLeaderError,
    ProposalAck,
    QuorumStatus,
    Ready,
    RestoredState,
    Role,
    Snapshot,
)


class SingleVoterCore:
    def __init__(self, config: RaftConfig, restored: RestoredState, rng: random.Random) -> None:
        assert config.voters == frozenset({config.node_id}), "one voter only"
        self.config = config
        self._epoch = restored.election_state.epoch
        self._role = Role.UNATTACHED
        snapshot_end = 0 if restored.snapshot is None else restored.snapshot.snapshot_id.end_offset
        self._log_start = snapshot_end
        self._log: list[Entry] = list(restored.entries)
        self._persisted_end = self._log_end()
        self._high_watermark = snapshot_end
        self._emitted_end = snapshot_end  # committed entries handed to the shell
        self._unsent_from = self._log_end()  # entries not yet in a Ready
        self._election_state: ElectionState | None = None
        self._snapshot: Snapshot | None = None
        self._tick = 0

    def _log_end(self) -> int:
        return self._log_start + len(self._log)

    @property
    def role(self) -> Role:
        return self._role

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def leader_id(self) -> int | None:
        return self.config.node_id if self._role == Role.LEADER else None

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    def ticks_until_due(self) -> int:
        return 1  # acts at every tick

    def tick(self) -> None:
        self._tick += 1
        if self._role != Role.LEADER:
            self._epoch += 1
            self._role = Role.LEADER
            node_id = self.config.node_id
            self._election_state = ElectionState(self._epoch, node_id, node_id)
            self._append([b""], EntryKind.LEADER_CHANGE)

    def step(self, sender: int, message: Message) -> None:
        raise AssertionError(f"a single voter got a message from {sender}: {message}")

    def propose(self, records: Sequence[bytes]) -> ProposalAck:
        if self._role != Role.LEADER:
            raise NotLeaderError(None, self._epoch)
        base = self._log_end()
        self._append(records, EntryKind.DATA)
        return ProposalAck(self._epoch, base, self._log_end() - 1)

    def _append(self, records: Sequence[bytes], kind: EntryKind) -> None:
        for record in records:
            self._log.append(Entry(self._log_end(), self._epoch, record, kind))

    def resign(self) -> None:
        pass

    def compact(self, snapshot: Snapshot) -> None:
        end = snapshot.snapshot_id.end_offset
        assert end <= self._high_watermark
        self._log = self._log[end - self._log_start :]
        self._log_start = end
        self._snapshot = snapshot

    def has_ready(self) -> bool:
        return (
            self._election_state is not None
            or self._snapshot is not None
            or self._unsent_from < self._log_end()
            or self._emitted_end < self._high_watermark
        )

    def ready(self) -> Ready:
        entries = self._log[max(0, self._unsent_from - self._log_start) :]
        committed = self._log[
            self._emitted_end - self._log_start : self._high_watermark - self._log_start
        ]
        return Ready(
            election_state=self._election_state,
            snapshot=self._snapshot,
            log_start_offset=None if self._snapshot is None else self._log_start,
            entries=entries,
            committed=committed,
            high_watermark=self._high_watermark,
        )

    def advance(self, ready: Ready) -> None:
        self._election_state = None
        self._snapshot = None
        if ready.entries:
            self._persisted_end = ready.entries[-1].offset + 1
            self._unsent_from = self._persisted_end
        if ready.committed:
            self._emitted_end = ready.committed[-1].offset + 1
        if self._role == Role.LEADER:
            self._high_watermark = max(self._high_watermark, self._persisted_end)

    def status(self) -> QuorumStatus:
        return QuorumStatus(
            node_id=self.config.node_id,
            role=self._role,
            epoch=self._epoch,
            leader_id=self.leader_id,
            voted_id=self.leader_id,
            high_watermark=self._high_watermark,
            log_start_offset=self._log_start,
            log_end_offset=self._log_end(),
            voters=tuple(sorted(self.config.voters)),
            tick=self._tick,
            replicas=(),
        )
