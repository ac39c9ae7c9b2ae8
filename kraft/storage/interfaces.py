"""The small storage interfaces the quorum shell persists through (STYLE.md §2).

Each has an in-memory version for tests and the simulator (kraft.storage.memory) and a
file-backed one (kraft.storage.files). A method returns only once its effect is durable
(fsync), unless its docstring says otherwise.
"""

from __future__ import annotations

from typing import Protocol

from kraft.raft.types import ElectionState, Entry, Snapshot


class LogStore(Protocol):
    def start_offset(self) -> int:
        """The offset of the first entry held (entries below it were snapshotted away)."""
        ...

    def end_offset(self) -> int:
        """One past the last entry held."""
        ...

    def append(self, entries: list[Entry]) -> None:
        """Appends contiguous entries starting at end_offset() and fsyncs them, once for the
        whole list (group commit)."""
        ...

    def truncate(self, end_offset: int) -> None:
        """Drops every entry with offset >= end_offset, durably."""
        ...

    def delete_before(self, start_offset: int) -> None:
        """Drops whole segments below start_offset (after a snapshot); may keep a few more."""
        ...

    def read(self, start: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries from `start` on, at least one when any exist, capped by max_bytes."""
        ...

    def close(self) -> None: ...


class StateStore(Protocol):
    def read(self) -> ElectionState | None:
        """The last election state written, or None on fresh storage."""
        ...

    def write(self, state: ElectionState) -> None:
        """Replaces the state atomically (temporary file, fsync, rename, fsync directory)."""
        ...


class SnapshotStore(Protocol):
    def latest(self) -> Snapshot | None: ...

    def save(self, snapshot: Snapshot) -> None:
        """Writes atomically, then deletes older snapshots."""
        ...
