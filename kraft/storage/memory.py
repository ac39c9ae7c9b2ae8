"""In-memory LogStore, StateStore and SnapshotStore for unit tests and the simulator.

They follow the same contract as the file stores (kraft.storage.segments, .state,
.snapshots), including the errors they raise and how read() counts max_bytes, so a test that
passes against one passes against the other. Nothing is lost on "crash": every method is
durable the moment it returns, as the file versions are after their fsync.
"""

from __future__ import annotations

from kraft.raft.types import ElectionState, Entry, Snapshot
from kraft.storage.batch_format import entry_size_bytes
from kraft.storage.log_rules import check_appendable, check_readable


class MemoryLogStore:
    def __init__(self, start_offset: int = 0) -> None:
        assert start_offset >= 0
        self._start_offset = start_offset
        self._entries: list[Entry] = []  # _entries[i].offset == _start_offset + i
        self._is_closed = False

    def start_offset(self) -> int:
        return self._start_offset

    def end_offset(self) -> int:
        return self._start_offset + len(self._entries)

    def append(self, entries: list[Entry]) -> None:
        assert not self._is_closed, "append on a closed log"
        check_appendable(entries, self.end_offset(), self._last_epoch())
        self._entries.extend(entries)

    def truncate(self, end_offset: int) -> None:
        assert not self._is_closed, "truncate on a closed log"
        assert end_offset >= self._start_offset, (
            f"truncate to {end_offset} below the log start offset {self._start_offset}"
        )
        del self._entries[end_offset - self._start_offset :]

    def delete_before(self, start_offset: int) -> None:
        assert not self._is_closed, "delete_before on a closed log"
        if start_offset <= self._start_offset:
            return
        if start_offset >= self.end_offset():
            self._entries = []
        else:
            del self._entries[: start_offset - self._start_offset]
        self._start_offset = start_offset

    def read(self, start: int, max_bytes: int | None = None) -> list[Entry]:
        check_readable(start, self._start_offset, self.end_offset())
        result: list[Entry] = []
        total_size_bytes = 0
        for entry in self._entries[start - self._start_offset :]:
            size_bytes = entry_size_bytes(entry)
            if result and max_bytes is not None and total_size_bytes + size_bytes > max_bytes:
                break
            result.append(entry)
            total_size_bytes += size_bytes
        return result

    def close(self) -> None:
        self._is_closed = True

    def _last_epoch(self) -> int | None:
        return self._entries[-1].epoch if self._entries else None


class MemoryStateStore:
    def __init__(self, state: ElectionState | None = None) -> None:
        self._state = state

    def read(self) -> ElectionState | None:
        return self._state

    def write(self, state: ElectionState) -> None:
        self._state = state


class MemorySnapshotStore:
    def __init__(self) -> None:
        self._snapshots: list[Snapshot] = []

    def latest(self) -> Snapshot | None:
        if not self._snapshots:
            return None
        return max(self._snapshots, key=lambda snapshot: snapshot.snapshot_id)

    def save(self, snapshot: Snapshot) -> None:
        # Like the file store: older snapshots go, a newer one already held stays.
        self._snapshots = [
            held for held in self._snapshots if held.snapshot_id > snapshot.snapshot_id
        ]
        self._snapshots.append(snapshot)
