"""The leader-epoch cache (Kafka's LeaderEpochFileCache, KIP-101 and KIP-279): for each
leader epoch that wrote to the log, the offset of its first record, kept in
`leader-epoch-checkpoint` and rewritten atomically on every change.

Followers ask the leader `end_offset_for(epoch)` (OffsetsForLeaderEpoch) and truncate their
log to the answer, which is how divergent suffixes are found by epoch rather than by high
watermark. Entries rise strictly in epoch and in start offset.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from broker.log.checkpoint import read_checkpoint, write_checkpoint
from broker.log.errors import CorruptLogError

LEADER_EPOCH_CHECKPOINT_NAME = "leader-epoch-checkpoint"
UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class LeaderEpochCache:
    """(epoch, start offset) entries; each change is written before it takes effect."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LEADER_EPOCH_CHECKPOINT_NAME
        self.epochs: list[int] = []
        self.start_offsets: list[int] = []
        entries = read_checkpoint(self.path, 2) or []
        for epoch, start_offset in entries:
            if self.epochs and (epoch <= self.epochs[-1] or start_offset < self.start_offsets[-1]):
                raise CorruptLogError(self.path, f"entry ({epoch}, {start_offset}) goes back")
            self.epochs.append(epoch)
            self.start_offsets.append(start_offset)

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self.epochs, self.start_offsets, strict=True))

    @property
    def latest_epoch(self) -> int | None:
        return self.epochs[-1] if self.epochs else None

    def _persist(self, epochs: list[int], start_offsets: list[int], write: bool = True) -> None:
        if write:
            write_checkpoint(self.path, [*zip(epochs, start_offsets, strict=True)])
        self.epochs = epochs
        self.start_offsets = start_offsets

    def write(self) -> None:
        """Persists the entries; recovery changes them with write=False and calls this once."""
        write_checkpoint(self.path, self.entries())

    def assign(self, epoch: int, start_offset: int, *, write: bool = True) -> None:
        """Records that `epoch` starts at `start_offset`, if it is newer than the latest.
        Entries at or past start_offset (a suffix truncated away) give way, as Kafka's
        maybeTruncateNonMonotonicEntries does."""
        assert epoch >= 0, f"leader epoch {epoch} is negative"
        latest = self.latest_epoch
        if latest is not None and epoch <= latest:
            assert epoch == latest, f"leader epoch goes back from {latest} to {epoch}"
            return
        keep = bisect.bisect_left(self.start_offsets, start_offset)
        self._persist(
            [*self.epochs[:keep], epoch], [*self.start_offsets[:keep], start_offset], write
        )

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) as Kafka's LeaderEpochFileCache.endOffsetFor answers an
        OffsetsForLeaderEpoch request: for the latest epoch, the log end offset; for an older
        one, the largest epoch at or below it and the start offset of the first epoch above
        it; (-1, -1) for an undefined or unknown-newer epoch or an empty cache."""
        if requested_epoch == UNDEFINED_EPOCH or not self.epochs:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested_epoch == self.epochs[-1]:
            return requested_epoch, log_end_offset
        higher = bisect.bisect_right(self.epochs, requested_epoch)
        if higher == len(self.epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if higher == 0:
            # Older than every known epoch: the best answer is where the first one starts.
            return requested_epoch, self.start_offsets[0]
        return self.epochs[higher - 1], self.start_offsets[higher]

    def truncate_from_end(self, end_offset: int, *, write: bool = True) -> None:
        """Drops entries starting at or after end_offset (the log was truncated there)."""
        keep = bisect.bisect_left(self.start_offsets, end_offset)
        if keep < len(self.epochs):
            self._persist(self.epochs[:keep], self.start_offsets[:keep], write)

    def truncate_from_start(self, start_offset: int, *, write: bool = True) -> None:
        """The log start moved to start_offset: entries wholly below it go; the epoch that
        covers start_offset now starts there (Kafka's truncateFromStart)."""
        covering = bisect.bisect_right(self.start_offsets, start_offset) - 1
        if covering < 0 or (covering == 0 and self.start_offsets[0] == start_offset):
            return
        epochs = self.epochs[covering:]
        start_offsets = [start_offset, *self.start_offsets[covering + 1 :]]
        self._persist(epochs, start_offsets, write)

    def clear_and_persist(self) -> None:
        self._persist([], [])
