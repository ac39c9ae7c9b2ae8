"""Recovery at open (Kafka's LogLoader): torn and corrupt tails are cut and reported,
missing or malformed indexes rebuilt, the clean-shutdown marker decides what is trusted,
and the leader-epoch cache is rebuilt above the cut."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from broker.log import LogConfig, LogWriteError, PartitionLog
from broker.log.checkpoint import write_single_offset
from broker.log.log import (
    CLEAN_SHUTDOWN_MARKER_NAME,
    LOG_START_OFFSET_CHECKPOINT_NAME,
    RECOVERY_POINT_CHECKPOINT_NAME,
)
from kraft.storage import durable_files
from tests.unit.log.helpers import CLOCK_MS, make_batch, open_log, read_all, segment_files

ONE_SEGMENT_CONFIG = LogConfig(index_interval_bytes=200)


def build_log(directory: Path, batches: int, config: LogConfig = ONE_SEGMENT_CONFIG) -> list:
    """A log of `batches` two-record batches in epochs 0, 1, 2, ... (three batches each),
    left as a crash would leave it; returns its batches."""
    log = open_log(directory, config)
    for tag in range(batches):
        log.append_as_leader(make_batch(2, tag=tag, timestamp_ms=CLOCK_MS + tag), tag // 3)
    content = read_all(log)
    log.abandon()
    return content


def test_torn_tail_at_every_byte_of_the_last_batch_is_cut_and_reported(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    content = build_log(reference, 6)
    [segment] = segment_files(reference)
    data = segment.read_bytes()
    last_start = len(data) - len(content[-1][2])
    for keep in range(last_start, len(data)):
        directory = tmp_path / f"torn-{keep}"
        directory.mkdir()
        (directory / segment.name).write_bytes(data[:keep])
        log = open_log(directory, ONE_SEGMENT_CONFIG)
        report = log.recovery_report
        assert log.log_end_offset == 10, f"torn at byte {keep}"
        assert read_all(log) == content[:-1]
        if keep == last_start:
            assert report.truncated_tails == ()
        else:
            [tail] = report.truncated_tails
            assert (tail.position, tail.dropped_size_bytes) == (last_start, keep - last_start)
        if keep % 10 == 0:
            assert log.append_as_leader(make_batch(1), 5) == (10, 10)
        log.abandon()


def test_torn_tail_inside_earlier_batches_keeps_every_whole_batch(tmp_path: Path) -> None:
    content = build_log(tmp_path / "reference", 6)
    [segment] = segment_files(tmp_path / "reference")
    data = segment.read_bytes()
    for keep in range(0, len(data), 37):
        directory = tmp_path / f"torn-{keep}"
        directory.mkdir()
        (directory / segment.name).write_bytes(data[:keep])
        log = open_log(directory, ONE_SEGMENT_CONFIG)
        whole = [entry for entry in content if data.find(entry[2]) + len(entry[2]) <= keep]
        assert read_all(log) == whole
        assert log.leader_epoch_entries() == [
            (epoch, epoch * 6) for epoch in range(2) if epoch * 6 < log.log_end_offset
        ]
        log.close()


def test_corrupt_tail_is_cut_with_the_reason(tmp_path: Path) -> None:
    content = build_log(tmp_path, 6)
    [segment] = segment_files(tmp_path)
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0x10
    segment.write_bytes(bytes(data))
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    [tail] = log.recovery_report.truncated_tails
    assert "CRC" in tail.reason
    assert read_all(log) == content[:-1]
    assert log.recovery_report.lost_data
    log.close()


def test_corrupt_base_offset_ends_the_log_there(tmp_path: Path) -> None:
    """baseOffset is outside the CRC; recovery checks that each batch continues the last."""
    content = build_log(tmp_path, 6)
    [segment] = segment_files(tmp_path)
    data = bytearray(segment.read_bytes())
    third = len(content[0][2]) + len(content[1][2])
    data[third + 7] ^= 0x01
    segment.write_bytes(bytes(data))
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    [tail] = log.recovery_report.truncated_tails
    assert "does not follow" in tail.reason
    assert read_all(log) == content[:2]
    log.close()


def test_missing_indexes_are_rebuilt_after_clean_shutdown(tmp_path: Path) -> None:
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    for tag in range(30):
        log.append_as_leader(make_batch(2, tag=tag, timestamp_ms=CLOCK_MS + tag), 0)
    content = read_all(log)
    log.close()
    [index] = tmp_path.glob("*.index")
    [time_index] = tmp_path.glob("*.timeindex")
    index_bytes, time_index_bytes = index.read_bytes(), time_index.read_bytes()
    assert index_bytes
    index.unlink()
    time_index.unlink()
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    assert log.recovery_report.was_clean_shutdown
    assert log.recovery_report.rebuilt_indexes == (index,)
    assert index.read_bytes() == index_bytes
    assert read_all(log, max_bytes=1) == content
    assert log.offset_for_timestamp(CLOCK_MS + 17) == 33  # batch 16: offsets 32, 33
    log.close()
    assert time_index.read_bytes() == time_index_bytes


@pytest.mark.parametrize("garbage", [b"\x00" * 7, b"\xff" * 16, b"\x00\x00\x00\x05" * 4])
def test_malformed_index_is_rebuilt(tmp_path: Path, garbage: bytes) -> None:
    build_log(tmp_path, 20)
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    content = read_all(log)
    log.close()
    [index] = tmp_path.glob("*.index")
    index.write_bytes(garbage)
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    assert log.recovery_report.rebuilt_indexes == (index,)
    assert read_all(log, max_bytes=1) == content
    log.close()


def test_clean_shutdown_trusts_segments_and_its_absence_forces_recovery(tmp_path: Path) -> None:
    build_log(tmp_path, 6)
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    assert log.recovery_report.recovered_segments  # the crash of build_log
    log.close()
    marker = tmp_path / CLEAN_SHUTDOWN_MARKER_NAME
    assert marker.exists()
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    assert log.recovery_report.was_clean_shutdown
    assert log.recovery_report.recovered_segments == ()
    assert not marker.exists()  # a crash from now on is recovered
    log.close()
    marker.unlink()
    [segment] = segment_files(tmp_path)
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    assert not log.recovery_report.was_clean_shutdown
    assert log.recovery_report.recovered_segments == (segment,)
    assert log.log_end_offset == 10
    log.close()


def test_rolled_segments_below_the_recovery_point_are_trusted(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=1024, index_interval_bytes=100)
    content = build_log(tmp_path, 30, config)
    files = segment_files(tmp_path)
    log = open_log(tmp_path, config)
    assert log.recovery_report.recovered_segments == (files[-1],)
    assert read_all(log) == content
    log.close()


def test_without_a_recovery_point_every_segment_is_checked_and_later_ones_dropped(
    tmp_path: Path,
) -> None:
    """Damage in an unflushed segment ends the log there: the later segments go too."""
    config = LogConfig(segment_bytes=1024, index_interval_bytes=100)
    content = build_log(tmp_path, 30, config)
    (tmp_path / RECOVERY_POINT_CHECKPOINT_NAME).unlink()
    files = segment_files(tmp_path)
    second = files[1]
    data = bytearray(second.read_bytes())
    data[100] ^= 0x01
    second.write_bytes(bytes(data))
    log = open_log(tmp_path, config)
    report = log.recovery_report
    [tail] = report.truncated_tails
    assert tail.segment_path == second
    assert report.deleted_segments == tuple(files[2:])
    assert segment_files(tmp_path) == files[:2]
    kept = read_all(log)
    assert kept == content[: len(kept)]
    assert log.log_end_offset == kept[-1][1] + 1
    assert all(start < log.log_end_offset for _, start in log.leader_epoch_entries())
    log.close()


def test_epoch_cache_is_rebuilt_from_batches_above_the_cut(tmp_path: Path) -> None:
    build_log(tmp_path, 9)
    (tmp_path / "leader-epoch-checkpoint").unlink()
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    assert log.leader_epoch_entries() == [(0, 0), (1, 6), (2, 12)]
    log.close()


def test_epoch_entries_past_a_torn_tail_are_dropped(tmp_path: Path) -> None:
    content = build_log(tmp_path, 7)  # epoch 2 starts with the last batch, at offset 12
    [segment] = segment_files(tmp_path)
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - len(content[-1][2]) + 20])
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    assert log.log_end_offset == 12
    assert log.leader_epoch_entries() == [(0, 0), (1, 6)]
    assert log.end_offset_for_epoch(1) == (1, 12)
    log.close()


def test_reopen_of_a_fresh_directory_reports_nothing_lost(tmp_path: Path) -> None:
    log = PartitionLog(tmp_path / "new")
    assert (log.log_start_offset, log.log_end_offset) == (0, 0)
    assert not log.recovery_report.lost_data
    log.close()


def test_rebuilding_an_early_index_keeps_the_epochs_of_later_segments(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=1024, index_interval_bytes=100)
    log = open_log(tmp_path, config)
    for tag in range(30):
        log.append_as_leader(make_batch(2, tag=tag), tag // 6)
    entries = log.leader_epoch_entries()
    content = read_all(log)
    log.close()
    first_index = sorted(tmp_path.glob("*.index"))[0]
    first_index.unlink()
    log = open_log(tmp_path, config)
    assert log.recovery_report.rebuilt_indexes == (first_index,)
    assert log.leader_epoch_entries() == entries
    assert read_all(log, max_bytes=1) == content
    log.close()


@pytest.mark.parametrize("clean", [True, False])
def test_batch_larger_than_a_scan_chunk_is_recovered_and_read(tmp_path: Path, clean: bool) -> None:
    config = LogConfig(max_message_bytes=6 * 1024 * 1024)
    log = open_log(tmp_path, config)
    log.append_as_leader(make_batch(1), 0)
    log.append_as_leader(make_batch(5, value_size_bytes=1024 * 1024), 0)
    log.append_as_leader(make_batch(1), 0)
    content = read_all(log)
    if clean:
        log.close()
    else:
        log.abandon()
    log = open_log(tmp_path, config)
    assert log.log_end_offset == 7
    assert read_all(log, max_bytes=1) == content
    assert not log.recovery_report.lost_data
    log.close()


def test_crash_between_log_start_checkpoint_and_segment_deletion(tmp_path: Path) -> None:
    """Retention writes the new log start first, then unlinks: a crash in between leaves
    segments below the log start, which the next open deletes."""
    config = LogConfig(segment_bytes=1024, index_interval_bytes=100)
    content = build_log(tmp_path, 30, config)
    files = segment_files(tmp_path)
    second_base = int(files[1].name[:20])
    write_single_offset(tmp_path / LOG_START_OFFSET_CHECKPOINT_NAME, second_base)
    log = open_log(tmp_path, config)
    assert log.log_start_offset == second_base
    assert segment_files(tmp_path) == files[1:]
    assert read_all(log) == [entry for entry in content if entry[0] >= second_base]
    log.close()


def test_truncate_fully_restarts_the_log_and_survives_reopen(tmp_path: Path) -> None:
    build_log(tmp_path, 6)
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    log.truncate_fully_and_start_at(500)
    assert (log.log_start_offset, log.log_end_offset) == (500, 500)
    assert log.leader_epoch_entries() == []
    assert log.append_as_leader(make_batch(2), 4) == (500, 501)
    log.abandon()
    log = open_log(tmp_path, ONE_SEGMENT_CONFIG)
    assert (log.log_start_offset, log.log_end_offset) == (500, 502)
    assert log.leader_epoch_entries() == [(4, 500)]
    log.close()


def test_a_full_disk_while_opening_is_a_log_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening writes (checkpoints): ENOSPC there must reach the broker as a failed log
    directory, which stops it, not as a stray OSError (kraft chaos --mixed, seed 201: a
    broker restarted onto a full disk kept running with partitions it never opened)."""
    log = open_log(tmp_path / "p-0")
    log.append_as_leader(make_batch(3), leader_epoch=0)
    log.close()

    def disk_full(descriptor: int, data: memoryview | bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(durable_files, "write_all", disk_full)

    with pytest.raises(LogWriteError, match="No space left on device"):
        open_log(tmp_path / "p-0")
