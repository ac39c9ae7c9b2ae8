"""Shared builders for the storage tests."""

from __future__ import annotations

from kraft.raft.types import Entry, EntryKind


def make_entries(
    start_offset: int, count: int, epoch: int = 1, data_size_bytes: int = 10
) -> list[Entry]:
    return [
        Entry(offset, epoch, bytes([offset % 251]) * data_size_bytes, EntryKind.DATA)
        for offset in range(start_offset, start_offset + count)
    ]
