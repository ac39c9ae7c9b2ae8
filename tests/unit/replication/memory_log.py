"""An in-memory partition log of (epoch, payload) records with a leader-epoch cache that
answers end_offset_for_epoch exactly as broker.log's LeaderEpochCache does, and a flushed
offset so a crash can lose the unflushed suffix. The tests' stand-in for PartitionLog."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from broker.replication import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET


@dataclass(frozen=True, slots=True)
class Rec:
    epoch: int
    payload: str


class MemoryLog:
    def __init__(self, records: Sequence[Rec] = ()) -> None:
        self.records: list[Rec] = []
        self.epochs: list[int] = []
        self.start_offsets: list[int] = []
        self.flushed_offset = 0
        # The lowest offset changed since the checker last looked (for incremental checks).
        self.lowest_changed_offset = 0
        for record in records:
            self.append(record)

    @property
    def log_end_offset(self) -> int:
        return len(self.records)

    @property
    def latest_epoch(self) -> int:
        return self.epochs[-1] if self.epochs else UNDEFINED_EPOCH

    def assign_epoch(self, epoch: int) -> None:
        """The leader records where its epoch starts (Kafka's cache.assign on election)."""
        if self.epochs and epoch <= self.epochs[-1]:
            assert epoch == self.epochs[-1], f"epoch {epoch} goes back from {self.epochs[-1]}"
            return
        self.epochs.append(epoch)
        self.start_offsets.append(self.log_end_offset)

    def append(self, record: Rec) -> int:
        assert record.epoch >= self.latest_epoch, "record epoch goes back"
        self.assign_epoch(record.epoch)
        self.records.append(record)
        return len(self.records) - 1

    def append_as_follower(self, offset: int, records: Sequence[Rec]) -> None:
        assert offset == self.log_end_offset, f"append at {offset}, log ends {self.log_end_offset}"
        for record in records:
            self.append(record)

    def truncate_to(self, offset: int) -> None:
        """Drops records and epoch entries at or above offset. Even at the log end the
        epoch entries go (Kafka's UnifiedLog.truncateTo): a former leader may hold an entry
        for an epoch in which it appended nothing."""
        offset = min(offset, self.log_end_offset)
        del self.records[offset:]
        keep = bisect.bisect_left(self.start_offsets, offset)
        del self.epochs[keep:]
        del self.start_offsets[keep:]
        self.flushed_offset = min(self.flushed_offset, offset)
        self.lowest_changed_offset = min(self.lowest_changed_offset, offset)

    def flush(self) -> None:
        self.flushed_offset = self.log_end_offset

    def crash(self, lose_unflushed: bool) -> None:
        if lose_unflushed:
            self.truncate_to(self.flushed_offset)
        # A leader's epoch entry with no record yet is not kept across a crash either.
        while self.start_offsets and self.start_offsets[-1] >= self.log_end_offset:
            self.epochs.pop()
            self.start_offsets.pop()

    def end_offset_for_epoch(self, requested_epoch: int) -> tuple[int, int]:
        """As broker.log.epoch_cache.LeaderEpochCache.end_offset_for."""
        if requested_epoch == UNDEFINED_EPOCH or not self.epochs:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested_epoch == self.epochs[-1]:
            return requested_epoch, self.log_end_offset
        higher = bisect.bisect_right(self.epochs, requested_epoch)
        if higher == len(self.epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if higher == 0:
            return requested_epoch, self.start_offsets[0]
        return self.epochs[higher - 1], self.start_offsets[higher]
