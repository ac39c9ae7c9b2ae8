"""Typed errors of the storage layer.

Operating errors (a corrupt file, an unformatted directory, a full disk) raise one of these so
the node shell can log a precise message and stop or retry; programmer errors (non-contiguous
offsets, epochs going back) are asserts instead (STYLE.md §4).
"""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    """Base of every storage error; the message names the file or directory involved."""


class CorruptLogError(StorageError):
    """Committed data of the log is damaged somewhere other than its torn tail."""

    def __init__(self, path: Path, position: int, reason: str) -> None:
        super().__init__(f"corrupt log segment {path} at byte {position}: {reason}")
        self.path = path
        self.position = position
        self.reason = reason


class CorruptStateError(StorageError):
    """The quorum-state file exists but cannot be parsed or fails its checks."""


class CorruptSnapshotError(StorageError):
    """A snapshot file fails its CRC or structure checks."""


class LogWriteError(StorageError):
    """An append or truncate failed at the operating-system level (disk full, I/O error)."""


class EntryTooLargeError(StorageError):
    """One entry is larger than a batch may ever be (MAX_BATCH_PAYLOAD_BYTES)."""


class OffsetOutOfRangeError(StorageError):
    """A read asked for an offset outside [start_offset, end_offset]."""

    def __init__(self, offset: int, start_offset: int, end_offset: int) -> None:
        super().__init__(f"offset {offset} is outside the log [{start_offset}, {end_offset}]")
        self.offset = offset
        self.start_offset = start_offset
        self.end_offset = end_offset
