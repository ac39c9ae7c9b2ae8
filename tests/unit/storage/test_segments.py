"""Behaviour of the file LogStore (kraft.storage.segments): append, read, roll, truncate,
delete_before and reopen, one rule per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kraft.raft.types import Entry, EntryKind
from kraft.storage import batch_format
from kraft.storage.batch_format import BATCH_HEADER_SIZE_BYTES, entry_size_bytes
from kraft.storage.errors import EntryTooLargeError, LogWriteError, OffsetOutOfRangeError
from kraft.storage.segments import LOG_START_CHECKPOINT_NAME, FileLogStore, segment_path_for
from tests.unit.storage.helpers import make_entries


def segment_names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob("*.log"))


def test_fresh_log_is_empty_at_offset_zero(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path)
    assert (log.start_offset(), log.end_offset()) == (0, 0)
    assert log.read(0) == []
    assert segment_names(tmp_path) == ["00000000000000000000.log"]


def test_appended_entries_read_back_after_reopen(tmp_path: Path) -> None:
    entries = make_entries(0, 5) + [Entry(5, 2, b"leader", EntryKind.LEADER_CHANGE)]
    log = FileLogStore(tmp_path)
    log.append(entries)
    log.close()
    reopened = FileLogStore(tmp_path)
    assert reopened.read(0) == entries
    assert reopened.end_offset() == 6
    assert reopened.recovery_reports == []


def test_one_append_is_one_batch_and_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = FileLogStore(tmp_path)
    flushes: list[int] = []
    real_flush = os.fdatasync

    def counting_flush(descriptor: int) -> None:
        flushes.append(descriptor)
        real_flush(descriptor)

    monkeypatch.setattr(os, "fdatasync", counting_flush)
    entries = make_entries(0, 1000, data_size_bytes=100)
    log.append(entries)
    assert len(flushes) == 1
    payload_size_bytes = sum(entry_size_bytes(entry) for entry in entries)
    size_bytes = segment_path_for(tmp_path, 0).stat().st_size
    assert size_bytes == BATCH_HEADER_SIZE_BYTES + payload_size_bytes


def test_read_starts_mid_batch_and_respects_max_bytes(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 10))
    log.append(make_entries(10, 10))
    one_entry_bytes = entry_size_bytes(make_entries(0, 1)[0])
    assert [entry.offset for entry in log.read(7, max_bytes=5 * one_entry_bytes)] == [
        7,
        8,
        9,
        10,
        11,
    ]


def test_read_returns_one_entry_even_when_larger_than_max_bytes(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 3, data_size_bytes=1000))
    assert [entry.offset for entry in log.read(1, max_bytes=1)] == [1]


def test_read_outside_the_log_raises_offset_out_of_range(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 3))
    assert log.read(3) == []
    with pytest.raises(OffsetOutOfRangeError):
        log.read(4)
    log.delete_before(2)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(1)


def test_segments_roll_by_size_and_reads_cross_them(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path, segment_max_bytes=1000)
    for start in range(0, 100, 10):
        log.append(make_entries(start, 10, data_size_bytes=20))
    assert len(segment_names(tmp_path)) > 3
    assert [entry.offset for entry in log.read(0)] == list(range(100))
    log.close()
    assert [entry.offset for entry in FileLogStore(tmp_path).read(35)] == list(range(35, 100))


def test_truncate_inside_a_batch_keeps_the_entries_before_the_cut(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 10))
    log.truncate(4)
    assert log.end_offset() == 4
    log.append(make_entries(4, 2, epoch=2))
    log.close()
    reopened = FileLogStore(tmp_path)
    assert [(entry.offset, entry.epoch) for entry in reopened.read(0)] == [
        (0, 1),
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 2),
        (5, 2),
    ]
    assert list(tmp_path.glob("*.tmp")) == []


def test_truncate_removes_later_segments(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path, segment_max_bytes=500)
    for start in range(0, 60, 10):
        log.append(make_entries(start, 10, data_size_bytes=20))
    log.truncate(15)
    assert segment_names(tmp_path)[-1] <= segment_path_for(tmp_path, 15).name
    log.close()
    assert FileLogStore(tmp_path).end_offset() == 15


def test_truncate_at_or_past_the_end_does_nothing(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 3))
    log.truncate(3)
    log.truncate(10)
    assert log.end_offset() == 3


def test_delete_before_inside_a_segment_survives_restart(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 10))
    log.delete_before(4)
    log.close()
    reopened = FileLogStore(tmp_path)
    assert reopened.start_offset() == 4
    assert [entry.offset for entry in reopened.read(4)] == list(range(4, 10))
    assert (tmp_path / LOG_START_CHECKPOINT_NAME).exists()


def test_delete_before_removes_whole_segments_below(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path, segment_max_bytes=500)
    for start in range(0, 60, 10):
        log.append(make_entries(start, 10, data_size_bytes=20))
    before = segment_names(tmp_path)
    log.delete_before(35)
    after = segment_names(tmp_path)
    assert len(after) < len(before)
    assert after[0] <= segment_path_for(tmp_path, 35).name
    assert [entry.offset for entry in log.read(35)] == list(range(35, 60))


def test_delete_before_past_the_end_restarts_the_log_there(tmp_path: Path) -> None:
    """A follower that installs a snapshot past its log end continues from the snapshot."""
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 5))
    log.delete_before(100)
    assert (log.start_offset(), log.end_offset()) == (100, 100)
    log.append(make_entries(100, 2, epoch=3))
    log.close()
    reopened = FileLogStore(tmp_path)
    assert (reopened.start_offset(), reopened.end_offset()) == (100, 102)
    assert segment_names(tmp_path) == [segment_path_for(tmp_path, 100).name]


def test_non_contiguous_append_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 3))
    size_bytes = segment_path_for(tmp_path, 0).stat().st_size
    with pytest.raises(AssertionError):
        log.append(make_entries(4, 2))
    with pytest.raises(AssertionError):
        log.append(make_entries(3, 2, epoch=0))
    assert segment_path_for(tmp_path, 0).stat().st_size == size_bytes
    assert log.end_offset() == 3


def test_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 3))
    size_bytes = segment_path_for(tmp_path, 0).stat().st_size
    real_write = os.write

    def write_half_then_fail(descriptor: int, data: bytes | memoryview) -> int:
        real_write(descriptor, bytes(data)[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", write_half_then_fail)
    with pytest.raises(LogWriteError):
        log.append(make_entries(3, 50))
    monkeypatch.undo()
    assert segment_path_for(tmp_path, 0).stat().st_size == size_bytes
    assert log.end_offset() == 3
    log.append(make_entries(3, 1))
    log.close()
    assert FileLogStore(tmp_path).end_offset() == 4


def test_append_past_the_batch_limit_splits_under_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_format, "MAX_BATCH_PAYLOAD_BYTES", 200)
    log = FileLogStore(tmp_path)
    flushes: list[int] = []
    real_flush = os.fdatasync

    def counting_flush(descriptor: int) -> None:
        flushes.append(descriptor)
        real_flush(descriptor)

    monkeypatch.setattr(os, "fdatasync", counting_flush)
    entries = make_entries(0, 10, data_size_bytes=50)
    log.append(entries)
    assert len(flushes) == 1
    log.close()
    reopened = FileLogStore(tmp_path)
    assert reopened.read(0) == entries
    assert reopened.recovery_reports == []


def test_entry_larger_than_any_batch_is_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_format, "MAX_BATCH_PAYLOAD_BYTES", 200)
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 1))
    size_bytes = segment_path_for(tmp_path, 0).stat().st_size
    with pytest.raises(EntryTooLargeError, match="entry 2 of 300 bytes"):
        log.append(make_entries(1, 1) + make_entries(2, 1, data_size_bytes=300))
    assert segment_path_for(tmp_path, 0).stat().st_size == size_bytes
    assert log.end_offset() == 1
