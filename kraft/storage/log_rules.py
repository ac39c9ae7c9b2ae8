"""The rules every LogStore enforces in the same way, file-backed or in memory: what an
append may hold and which offsets a read may start at.
"""

from __future__ import annotations

from kraft.raft.types import Entry
from kraft.storage.errors import OffsetOutOfRangeError


def check_appendable(entries: list[Entry], end_offset: int, last_epoch: int | None) -> None:
    """Asserts the append invariants shared by every LogStore: offsets contiguous from the
    log end offset, epochs never going back (within the list and against the log)."""
    expected_offset = end_offset
    previous_epoch = -1 if last_epoch is None else last_epoch
    for entry in entries:
        assert entry.offset == expected_offset, (
            f"entry offset {entry.offset}, expected {expected_offset}"
        )
        assert entry.epoch >= previous_epoch, (
            f"entry {entry.offset} has epoch {entry.epoch}, below {previous_epoch}"
        )
        expected_offset += 1
        previous_epoch = entry.epoch


def check_readable(start: int, start_offset: int, end_offset: int) -> None:
    """A read may start anywhere in [start_offset, end_offset]; at end_offset it is empty."""
    if start < start_offset or start > end_offset:
        raise OffsetOutOfRangeError(start, start_offset, end_offset)
