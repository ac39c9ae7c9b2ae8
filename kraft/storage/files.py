"""The file-backed stores under one roof, as kraft.storage.interfaces names them: the
segmented LogStore, the quorum-state StateStore and the SnapshotStore, plus the recovery
report and the errors a shell needs to handle.
"""

from __future__ import annotations

from kraft.storage.errors import (
    CorruptLogError,
    CorruptSnapshotError,
    CorruptStateError,
    LogWriteError,
    StorageError,
)
from kraft.storage.segments import SEGMENT_MAX_BYTES, FileLogStore, RecoveryReport
from kraft.storage.snapshots import FileSnapshotStore
from kraft.storage.state import FileStateStore

__all__ = [
    "SEGMENT_MAX_BYTES",
    "CorruptLogError",
    "CorruptSnapshotError",
    "CorruptStateError",
    "FileLogStore",
    "FileSnapshotStore",
    "FileStateStore",
    "LogWriteError",
    "RecoveryReport",
    "StorageError",
]
