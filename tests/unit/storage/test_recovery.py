"""Recovery of the file LogStore at open (kraft.storage.segments): a torn or corrupt tail of
the last segment is cut away and reported; damage anywhere else raises CorruptLogError."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kraft.storage.batch_format import BATCH_HEADER_SIZE_BYTES
from kraft.storage.errors import CorruptLogError
from kraft.storage.segments import (
    LOG_START_CHECKPOINT_NAME,
    FileLogStore,
    segment_path_for,
)
from tests.unit.storage.helpers import make_entries


def write_two_batches(directory: Path) -> tuple[Path, int]:
    """A segment with batches [0, 5) and [5, 8); returns its path and where batch 2 starts."""
    log = FileLogStore(directory)
    log.append(make_entries(0, 5))
    path = segment_path_for(directory, 0)
    second_batch_position = path.stat().st_size
    log.append(make_entries(5, 3, epoch=2))
    log.close()
    return path, second_batch_position


def flip_bit(path: Path, position: int, bit: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[position] ^= 1 << bit
    path.write_bytes(bytes(raw))


def test_torn_tail_at_every_byte_of_the_last_batch_is_cut_and_reported(tmp_path: Path) -> None:
    path, second_batch_position = write_two_batches(tmp_path)
    full = path.read_bytes()
    for cut_position in range(second_batch_position, len(full)):
        path.write_bytes(full[:cut_position])
        log = FileLogStore(tmp_path)
        assert log.end_offset() == 5, f"cut at {cut_position}"
        assert log.read(0) == make_entries(0, 5)
        dropped_size_bytes = cut_position - second_batch_position
        if dropped_size_bytes == 0:
            assert log.recovery_reports == []
        else:
            [report] = log.recovery_reports
            assert (report.segment_path, report.position) == (path, second_batch_position)
            assert report.dropped_size_bytes == dropped_size_bytes
            assert str(path) in report.describe()
        log.close()
        assert path.stat().st_size == second_batch_position
        assert FileLogStore(tmp_path).recovery_reports == []


def test_flipped_bits_in_the_last_batch_are_cut_and_reported(tmp_path: Path) -> None:
    path, second_batch_position = write_two_batches(tmp_path)
    full = path.read_bytes()
    for position in range(second_batch_position, len(full)):
        for bit in (0, 7):
            path.write_bytes(full)
            flip_bit(path, position, bit)
            log = FileLogStore(tmp_path)
            assert log.end_offset() == 5, f"flip of bit {bit} at {position}"
            [report] = log.recovery_reports
            assert report.position == second_batch_position
            assert report.dropped_size_bytes == len(full) - second_batch_position
            log.close()


def test_crc_mismatch_is_named_in_the_report(tmp_path: Path) -> None:
    path, _ = write_two_batches(tmp_path)
    flip_bit(path, path.stat().st_size - 1, 3)
    [report] = FileLogStore(tmp_path).recovery_reports
    assert "CRC mismatch" in report.reason


def test_zero_filled_tail_is_cut(tmp_path: Path) -> None:
    """Some file systems show a crashed append as zeros past the old end of file."""
    path, _ = write_two_batches(tmp_path)
    size_bytes = path.stat().st_size
    with path.open("ab") as file:
        file.write(b"\0" * 4096)
    log = FileLogStore(tmp_path)
    assert log.end_offset() == 8
    assert log.recovery_reports[0].position == size_bytes


def test_corruption_before_an_intact_batch_raises_corrupt_log_error(tmp_path: Path) -> None:
    path, _ = write_two_batches(tmp_path)
    flip_bit(path, BATCH_HEADER_SIZE_BYTES + 3, 0)
    with pytest.raises(CorruptLogError) as raised:
        FileLogStore(tmp_path)
    assert raised.value.path == path
    assert raised.value.position == 0
    assert str(path) in str(raised.value)
    assert "intact batch follows" in str(raised.value)


def test_corruption_in_an_earlier_segment_raises_even_at_its_tail(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path, segment_max_bytes=300)
    for start in range(0, 40, 5):
        log.append(make_entries(start, 5))
    log.close()
    first_segment = segment_path_for(tmp_path, 0)
    size_bytes = first_segment.stat().st_size
    flip_bit(first_segment, size_bytes - 1, 0)
    with pytest.raises(CorruptLogError) as raised:
        FileLogStore(tmp_path, segment_max_bytes=300)
    assert raised.value.path == first_segment
    first_segment.write_bytes(first_segment.read_bytes()[: size_bytes - 10])
    with pytest.raises(CorruptLogError):
        FileLogStore(tmp_path, segment_max_bytes=300)


def test_missing_segment_in_the_middle_raises(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path, segment_max_bytes=300)
    for start in range(0, 60, 5):
        log.append(make_entries(start, 5))
    log.close()
    segments = sorted(tmp_path.glob("*.log"))
    assert len(segments) >= 3
    segments[1].unlink()
    with pytest.raises(CorruptLogError, match="previous one ends"):
        FileLogStore(tmp_path)


def test_read_checks_the_crc_again(tmp_path: Path) -> None:
    path, _ = write_two_batches(tmp_path)
    log = FileLogStore(tmp_path)
    flip_bit(path, BATCH_HEADER_SIZE_BYTES + 3, 0)
    with pytest.raises(CorruptLogError):
        log.read(0)


def test_leftover_temporary_files_are_removed_at_open(tmp_path: Path) -> None:
    write_two_batches(tmp_path)
    (tmp_path / "00000000000000000000.log.tmp").write_bytes(b"half a rewrite")
    (tmp_path / f"{LOG_START_CHECKPOINT_NAME}.tmp").write_bytes(b"{")
    (tmp_path / "quorum-state").write_bytes(b"{}")  # another store's file stays
    log = FileLogStore(tmp_path)
    assert log.end_offset() == 8
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "00000000000000000000.log",
        "quorum-state",
    ]


def test_open_finishes_a_delete_before_interrupted_after_its_checkpoint(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path, segment_max_bytes=300)
    for start in range(0, 60, 5):
        log.append(make_entries(start, 5))
    log.close()
    checkpoint = {"version": 1, "log_start_offset": 42}
    (tmp_path / LOG_START_CHECKPOINT_NAME).write_text(json.dumps(checkpoint))
    reopened = FileLogStore(tmp_path, segment_max_bytes=300)
    assert (reopened.start_offset(), reopened.end_offset()) == (42, 60)
    first_segment = min(tmp_path.glob("*.log"))
    assert first_segment.name <= segment_path_for(tmp_path, 42).name
    assert reopened.read(42) == make_entries(42, 18)


def test_corrupt_checkpoint_raises(tmp_path: Path) -> None:
    write_two_batches(tmp_path)
    (tmp_path / LOG_START_CHECKPOINT_NAME).write_text("{not json")
    with pytest.raises(CorruptLogError, match=LOG_START_CHECKPOINT_NAME):
        FileLogStore(tmp_path)


def test_empty_last_segment_left_by_a_crashed_roll_is_used(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 4))
    log.close()
    segment_path_for(tmp_path, 4).touch()
    reopened = FileLogStore(tmp_path)
    assert reopened.end_offset() == 4
    reopened.append(make_entries(4, 2))
    reopened.close()
    assert FileLogStore(tmp_path).read(0) == make_entries(0, 6)


def test_torn_first_batch_of_a_fresh_log_leaves_it_empty(tmp_path: Path) -> None:
    log = FileLogStore(tmp_path)
    log.append(make_entries(0, 4))
    log.close()
    path = segment_path_for(tmp_path, 0)
    os.truncate(path, 7)
    reopened = FileLogStore(tmp_path)
    assert (reopened.start_offset(), reopened.end_offset()) == (0, 0)
    assert "partial header" in reopened.recovery_reports[0].reason
