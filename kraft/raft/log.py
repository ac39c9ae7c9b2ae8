"""The core's in-memory view of the replicated log.

It holds the entries since the last snapshot, the log start offset (the snapshot's end
offset), the epoch of the entry just below the log start, and an epoch cache (the offset at
which each epoch starts) that answers "where does epoch E end here?", the question leaders
and followers ask to find where their logs diverge (KIP-101, KIP-595).

It also tracks two boundaries for the shell: entries below `handed_end_offset` were given
to the shell in a Ready, and entries below `persisted_end_offset` are durable (the shell
called advance). A leader counts only its persisted end offset towards the high watermark.
"""

from __future__ import annotations

import bisect

from kraft.raft.types import Entry, OffsetAndEpoch, SnapshotId

# Bytes counted for an entry beyond its data when capping a read (offset, epoch, kind).
ENTRY_OVERHEAD_BYTES = 16


class RaftLog:
    def __init__(self, snapshot_id: SnapshotId | None, entries: list[Entry]) -> None:
        self.start_offset = snapshot_id.end_offset if snapshot_id else 0
        # Epoch of the entry at start_offset - 1 (that of the snapshot), 0 for an empty log.
        self.start_epoch = snapshot_id.epoch if snapshot_id else 0
        self._entries: list[Entry] = []
        # (epoch, offset of its first entry) for epochs of entries held, epochs increasing.
        self._epoch_starts: list[tuple[int, int]] = []
        for entry in entries:
            self.append(entry)
        # What a node restores from storage is durable by definition.
        self.persisted_end_offset = self.end_offset
        self.handed_end_offset = self.end_offset

    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self._entries)

    @property
    def last_epoch(self) -> int:
        """Epoch of the entry at end_offset - 1, or of the snapshot if no entry is held."""
        return self._entries[-1].epoch if self._entries else self.start_epoch

    def epoch_at(self, offset: int) -> int:
        """Epoch of the entry at `offset`; offset start_offset - 1 is the snapshot's."""
        assert self.start_offset - 1 <= offset < self.end_offset, (
            f"offset {offset} outside [{self.start_offset - 1}, {self.end_offset})"
        )
        if offset == self.start_offset - 1:
            return self.start_epoch
        return self._entries[offset - self.start_offset].epoch

    def entry(self, offset: int) -> Entry:
        assert self.start_offset <= offset < self.end_offset, f"offset {offset} not held"
        return self._entries[offset - self.start_offset]

    def entries_between(self, start: int, end: int) -> list[Entry]:
        assert self.start_offset <= start <= end <= self.end_offset, (
            f"range [{start}, {end}) outside [{self.start_offset}, {self.end_offset})"
        )
        return self._entries[start - self.start_offset : end - self.start_offset]

    def append(self, entry: Entry) -> None:
        assert entry.offset == self.end_offset, (
            f"entry offset {entry.offset} is not the log end offset {self.end_offset}"
        )
        assert entry.epoch >= self.last_epoch, (
            f"entry epoch {entry.epoch} below the last epoch {self.last_epoch}"
        )
        if not self._epoch_starts or self._epoch_starts[-1][0] != entry.epoch:
            self._epoch_starts.append((entry.epoch, entry.offset))
        self._entries.append(entry)

    def truncate_to(self, offset: int) -> None:
        """Drop every entry at or above `offset`."""
        assert self.start_offset <= offset <= self.end_offset, (
            f"truncation to {offset} outside [{self.start_offset}, {self.end_offset}]"
        )
        del self._entries[offset - self.start_offset :]
        while self._epoch_starts and self._epoch_starts[-1][1] >= offset:
            self._epoch_starts.pop()
        self.persisted_end_offset = min(self.persisted_end_offset, offset)
        self.handed_end_offset = min(self.handed_end_offset, offset)

    def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch:
        """End offset of the largest epoch <= `epoch` held here, with that epoch.

        This is Kafka's leader-epoch-cache lookup: for the last epoch it is the log end
        offset; for an older one the start of the next epoch; for an epoch older than every
        entry held it is the log start offset with the snapshot's epoch.
        """
        if epoch == self.last_epoch:
            return OffsetAndEpoch(self.end_offset, epoch)
        index = bisect.bisect_right(self._epoch_starts, (epoch, self.end_offset + 1))
        if index == 0:
            return OffsetAndEpoch(self.start_offset, self.start_epoch)
        floor_epoch = self._epoch_starts[index - 1][0]
        if index < len(self._epoch_starts):
            return OffsetAndEpoch(self._epoch_starts[index][1], floor_epoch)
        return OffsetAndEpoch(self.end_offset, floor_epoch)

    def read(self, offset: int, max_bytes: int) -> tuple[Entry, ...]:
        """Entries from `offset`, at most `max_bytes` of them but always at least one."""
        assert offset >= self.start_offset, f"read at {offset} below log start"
        taken: list[Entry] = []
        size = 0
        # By index, not a slice: a slice would copy the whole tail of the log on every read.
        for index in range(offset - self.start_offset, len(self._entries)):
            entry = self._entries[index]
            size += len(entry.data) + ENTRY_OVERHEAD_BYTES
            if taken and size > max_bytes:
                break
            taken.append(entry)
        return tuple(taken)

    def take_unhanded(self) -> list[Entry]:
        """Entries the shell has not been given yet; they count as given from now on."""
        taken = self.entries_between(self.handed_end_offset, self.end_offset)
        self.handed_end_offset = self.end_offset
        return taken

    def mark_persisted(self, end_offset: int) -> None:
        # An entry truncated after it was handed out is not durable in its new form.
        self.persisted_end_offset = max(
            self.persisted_end_offset, min(end_offset, self.handed_end_offset)
        )

    def compact(self, snapshot_id: SnapshotId) -> None:
        """Drop entries below the snapshot's end offset, which becomes the log start."""
        end = snapshot_id.end_offset
        assert self.start_offset <= end <= self.end_offset, (
            f"snapshot end {end} outside [{self.start_offset}, {self.end_offset}]"
        )
        assert self.epoch_at(end - 1) == snapshot_id.epoch, (
            f"snapshot epoch {snapshot_id.epoch} is not that of offset {end - 1}"
        )
        del self._entries[: end - self.start_offset]
        self.start_offset = end
        self.start_epoch = snapshot_id.epoch
        self._epoch_starts = []
        for entry in self._entries:
            if not self._epoch_starts or self._epoch_starts[-1][0] != entry.epoch:
                self._epoch_starts.append((entry.epoch, entry.offset))

    def reset_to_snapshot(self, snapshot_id: SnapshotId) -> None:
        """Install a fetched snapshot: the log becomes empty and starts at its end offset."""
        self._entries = []
        self._epoch_starts = []
        self.start_offset = snapshot_id.end_offset
        self.start_epoch = snapshot_id.epoch
        self.persisted_end_offset = self.start_offset
        self.handed_end_offset = self.start_offset
