"""PartitionLog behaviour: appends as leader and follower, reads through the index, the
leader-epoch cache (KIP-101/279), truncation, retention, rolling, the flush policy and
max.message.bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broker.log import (
    CorruptRecordError,
    InvalidRecordError,
    LogConfig,
    MessageTooLargeError,
    OffsetOutOfRangeError,
    PartitionLog,
    RecordBatch,
    UnexpectedAppendOffsetError,
    assign_offsets,
    iter_batches,
)
from broker.log.epoch_cache import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
from tests.unit.log.helpers import (
    CLOCK_MS,
    SMALL_CONFIG,
    make_batch,
    open_log,
    read_all,
    segment_files,
)


def directory_sizes(directory: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in sorted(directory.iterdir())}


def test_leader_append_assigns_offsets_and_epoch(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    assert log.append_as_leader(make_batch(3), leader_epoch=1) == (0, 2)
    assert log.append_as_leader(make_batch(2), leader_epoch=1) == (3, 4)
    [first, second] = read_all(log)
    assert (first[0], first[1], second[0], second[1]) == (0, 2, 3, 4)
    assert RecordBatch(second[2]).partition_leader_epoch == 1
    assert log.log_end_offset == 5
    log.close()


def test_stored_bytes_are_the_producer_bytes_but_offset_and_epoch(tmp_path: Path) -> None:
    """SPEC §7: batches are stored byte for byte, so a fetch can serve them untouched."""
    log = open_log(tmp_path)
    log.append_as_leader(make_batch(1), 0)
    batch = make_batch(4, tag=9)
    log.append_as_leader(batch, 3)
    assert log.read(1, 1 << 20) == assign_offsets(batch, 1, 3)
    log.close()


@pytest.mark.parametrize(
    ("mangle", "error"),
    [
        (lambda data: data[:-1], CorruptRecordError),
        (lambda data: data[:30], CorruptRecordError),
        (lambda data: data[:-1] + bytes([data[-1] ^ 1]), CorruptRecordError),
        (lambda data: data[:16] + b"\x01" + data[17:], CorruptRecordError),
        (lambda data: data + data, InvalidRecordError),
    ],
    ids=["torn", "header-only", "bad-crc", "wrong-magic", "two-batches"],
)
def test_bad_batches_are_rejected_with_nothing_written(
    tmp_path: Path, mangle: object, error: type[Exception]
) -> None:
    log = open_log(tmp_path)
    log.append_as_leader(make_batch(2), 0)
    before = directory_sizes(tmp_path)
    with pytest.raises(error):
        log.append_as_leader(mangle(make_batch(2)), 0)  # type: ignore[operator]
    assert directory_sizes(tmp_path) == before
    assert log.log_end_offset == 2
    assert log.leader_epoch_entries() == [(0, 0)]
    log.close()


def test_batch_over_max_message_bytes_is_refused(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(max_message_bytes=500))
    with pytest.raises(MessageTooLargeError, match="max.message.bytes=500"):
        log.append_as_leader(make_batch(1, value_size_bytes=600), 0)
    assert log.log_end_offset == 0
    assert log.append_as_leader(make_batch(1, value_size_bytes=300), 0) == (0, 0)
    log.close()


def test_read_outside_the_log_is_out_of_range(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append_as_leader(make_batch(2), 0)
    assert log.read(2, 100) == b""
    for offset in (-1, 3):
        with pytest.raises(OffsetOutOfRangeError, match=f"offset {offset} is outside"):
            log.read(offset, 100)
    log.close()


def test_read_returns_whole_batches_up_to_max_bytes_but_at_least_one(tmp_path: Path) -> None:
    """Kafka's fetch returns the first batch even when it is larger than max_bytes."""
    log = open_log(tmp_path, LogConfig())
    for _ in range(5):
        log.append_as_leader(make_batch(2, value_size_bytes=100), 0)
    size = len(log.read(0, 1))
    assert [b.base_offset for b in iter_batches(log.read(3, 1))] == [2]
    assert [b.base_offset for b in iter_batches(log.read(0, 2 * size))] == [0, 2]
    assert [b.base_offset for b in iter_batches(log.read(0, 2 * size + 10))] == [0, 2]
    assert [b.base_offset for b in iter_batches(log.read(4, 10_000))] == [4, 6, 8]
    log.close()


def test_read_far_back_goes_through_the_index(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig(index_interval_bytes=300))
    for tag in range(200):
        log.append_as_leader(make_batch(2, tag=tag), 0)
    log.close()
    log = open_log(tmp_path, LogConfig(index_interval_bytes=300))  # the tail is forgotten
    for offset in (0, 1, 77, 200, 399):
        [batch, *_] = iter_batches(log.read(offset, 1))
        assert batch.base_offset <= offset <= batch.last_offset
    log.close()


def test_hot_tail_read_touches_the_disk_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(tmp_path, LogConfig())
    for tag in range(100):
        log.append_as_leader(make_batch(3, tag=tag), 0)
    calls: list[int] = []
    real_pread = os.pread

    def counting_pread(descriptor: int, size: int, position: int) -> bytes:
        calls.append(size)
        return real_pread(descriptor, size, position)

    monkeypatch.setattr(os, "pread", counting_pread)
    data = log.read(250, 1000)
    assert len(calls) == 1
    assert [b.base_offset for b in iter_batches(data)][0] == 249
    log.close()


def test_follower_append_keeps_offsets_and_epochs(tmp_path: Path) -> None:
    leader = open_log(tmp_path / "leader")
    follower = open_log(tmp_path / "follower")
    leader.append_as_leader(make_batch(2), 1)
    leader.append_as_leader(make_batch(3), 4)
    assert follower.append_as_follower(leader.read(0, 1 << 20)) == (0, 4)
    assert read_all(follower) == read_all(leader)
    assert follower.leader_epoch_entries() == [(1, 0), (4, 2)]
    leader.close()
    follower.close()


def test_follower_append_must_continue_the_log(tmp_path: Path) -> None:
    follower = open_log(tmp_path)
    follower.append_as_follower(assign_offsets(make_batch(2), 0, 1))
    before = directory_sizes(tmp_path)
    with pytest.raises(UnexpectedAppendOffsetError, match="starts at offset 5"):
        follower.append_as_follower(assign_offsets(make_batch(1), 5, 1))
    good = assign_offsets(make_batch(1), 2, 1)
    corrupt = bytearray(assign_offsets(make_batch(1), 3, 1))
    corrupt[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        follower.append_as_follower(good + bytes(corrupt))  # nothing of the good one either
    with pytest.raises(InvalidRecordError, match="leader epoch 0, older"):
        follower.append_as_follower(assign_offsets(make_batch(1), 2, 0))
    assert directory_sizes(tmp_path) == before
    follower.close()


def test_end_offset_for_epoch_follows_kafka(tmp_path: Path) -> None:
    """KIP-101/KIP-279: OffsetsForLeaderEpoch answers (largest epoch <= requested, start
    offset of the next epoch), the log end for the latest epoch, (-1, -1) when unknown."""
    log = open_log(tmp_path)
    assert log.end_offset_for_epoch(0) == (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
    for epoch, count in ((1, 3), (1, 2), (3, 4), (6, 1)):
        log.append_as_leader(make_batch(count), epoch)
    assert log.leader_epoch_entries() == [(1, 0), (3, 5), (6, 9)]
    assert log.end_offset_for_epoch(6) == (6, 10)
    assert log.end_offset_for_epoch(3) == (3, 9)
    assert log.end_offset_for_epoch(4) == (3, 9)
    assert log.end_offset_for_epoch(1) == (1, 5)
    assert log.end_offset_for_epoch(2) == (1, 5)
    assert log.end_offset_for_epoch(0) == (0, 0)
    assert log.end_offset_for_epoch(7) == (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
    assert log.end_offset_for_epoch(-1) == (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
    log.close()
    reopened = open_log(tmp_path)
    assert reopened.leader_epoch_entries() == [(1, 0), (3, 5), (6, 9)]
    reopened.close()


def test_truncate_at_the_log_end_drops_an_epoch_entry_that_has_no_batches(
    tmp_path: Path,
) -> None:
    """Kafka's UnifiedLog.truncateTo: a former leader that recorded the start of its epoch
    but appended nothing in it must lose that entry even when no batch is truncated, or it
    keeps answering that epoch to OffsetsForLeaderEpoch."""
    log = open_log(tmp_path)
    log.append_as_leader(make_batch(3), 1)
    log.epoch_cache.assign(2, log.log_end_offset)  # became leader of epoch 2, wrote nothing
    assert log.leader_epoch_entries() == [(1, 0), (2, 3)]
    log.truncate_to(log.log_end_offset)
    assert log.leader_epoch_entries() == [(1, 0)]
    assert log.end_offset_for_epoch(1) == (1, 3)
    log.close()


def test_truncate_drops_a_straddling_batch_whole(tmp_path: Path) -> None:
    """Kafka's LogSegment.truncateTo: batches are never cut, so truncating into the middle
    of one drops it and the log ends at its base offset."""
    log = open_log(tmp_path)
    log.append_as_leader(make_batch(3), 1)
    log.append_as_leader(make_batch(3), 2)
    log.append_as_leader(make_batch(3), 3)
    log.truncate_to(4)
    assert log.log_end_offset == 3
    assert log.leader_epoch_entries() == [(1, 0)]
    assert log.end_offset_for_epoch(1) == (1, 3)
    log.truncate_to(3)
    assert log.log_end_offset == 3
    assert log.append_as_leader(make_batch(1), 5) == (3, 3)
    assert [entry[:2] for entry in read_all(log)] == [(0, 2), (3, 3)]
    log.close()


def test_truncate_across_segments_deletes_later_segments(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    for tag in range(40):
        log.append_as_leader(make_batch(2, value_size_bytes=50, tag=tag), tag // 10)
    assert len(segment_files(tmp_path)) > 3
    log.truncate_to(21)
    assert log.log_end_offset == 20
    assert len(segment_files(tmp_path)) == len(log.segment_base_offsets())
    assert log.leader_epoch_entries() == [(0, 0)]  # epoch 1 began at offset 20
    log.close()
    reopened = open_log(tmp_path)
    assert reopened.log_end_offset == 20
    assert not reopened.recovery_report.lost_data
    reopened.close()


def test_segments_roll_by_size_and_never_split_a_batch(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    for tag in range(30):
        log.append_as_leader(make_batch(3, value_size_bytes=40, tag=tag), 0)
    bases = log.segment_base_offsets()
    assert len(bases) > 2
    for path in segment_files(tmp_path)[:-1]:
        assert path.stat().st_size <= SMALL_CONFIG.segment_bytes
    assert all(base % 3 == 0 for base in bases)
    assert [entry[:2] for entry in read_all(log)] == [(i, i + 2) for i in range(0, 90, 3)]
    log.close()


def test_segments_roll_by_time(tmp_path: Path) -> None:
    config = LogConfig(segment_ms=1000)
    log = open_log(tmp_path, config)
    log.append_as_leader(make_batch(1, timestamp_ms=CLOCK_MS), 0)
    log.append_as_leader(make_batch(1, timestamp_ms=CLOCK_MS + 999), 0)
    log.append_as_leader(make_batch(1, timestamp_ms=CLOCK_MS + 1000), 0)
    assert log.segment_base_offsets() == [0, 2]
    log.close()


def test_retention_by_time_deletes_old_whole_segments_never_the_active(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=1024, retention_ms=10_000, index_interval_bytes=100)
    log = open_log(tmp_path, config)
    for tag in range(20):
        batch = make_batch(2, value_size_bytes=60, timestamp_ms=CLOCK_MS + tag * 1000, tag=tag)
        log.append_as_leader(batch, tag // 5)
    bases = log.segment_base_offsets()
    assert log.delete_old_segments(CLOCK_MS) == 0
    far_future = CLOCK_MS + 10**9
    deleted = log.delete_old_segments(far_future)
    assert deleted == len(bases) - 1
    assert log.segment_base_offsets() == [bases[-1]]
    assert log.log_start_offset == bases[-1]
    assert log.leader_epoch_entries()[0][1] == bases[-1]
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 100)
    log.close()
    reopened = PartitionLog(tmp_path, config)
    assert reopened.log_start_offset == bases[-1]
    reopened.close()


def test_retention_by_time_uses_each_segments_newest_record(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=1024, retention_ms=10_000)
    log = open_log(tmp_path, config)
    for tag in range(20):
        timestamp = CLOCK_MS + tag * 1000
        log.append_as_leader(make_batch(2, value_size_bytes=60, timestamp_ms=timestamp), 0)
    first_segment_end = log.segment_base_offsets()[1]
    newest_in_first = CLOCK_MS + (first_segment_end // 2 - 1) * 1000 + 1
    assert log.delete_old_segments(newest_in_first + 10_000) == 0
    assert log.delete_old_segments(newest_in_first + 10_001) == 1
    log.close()


def test_retention_by_size_deletes_while_the_rest_still_holds_retention_bytes(
    tmp_path: Path,
) -> None:
    """Kafka's retention.bytes rule: delete the oldest segment while the log would still
    hold at least retention.bytes without it, so it never drops below the limit."""
    config = LogConfig(segment_bytes=1024, retention_bytes=2500, retention_ms=-1)
    log = open_log(tmp_path, config)
    for tag in range(30):
        log.append_as_leader(make_batch(2, value_size_bytes=60, tag=tag), 0)
    total = log.size_bytes
    deleted = log.delete_old_segments(CLOCK_MS)
    assert deleted > 0
    assert log.size_bytes >= 2500
    first_size = (tmp_path / f"{log.segment_base_offsets()[0]:020d}.log").stat().st_size
    assert log.size_bytes - first_size < 2500
    assert log.size_bytes < total
    assert log.log_start_offset == log.segment_base_offsets()[0]
    log.close()


def test_retention_deletes_nothing_when_the_cleanup_policy_does_not_delete(
    tmp_path: Path,
) -> None:
    """cleanup.policy=compact alone: neither retention.ms nor retention.bytes delete."""
    config = LogConfig(
        segment_bytes=1024, retention_ms=10_000, retention_bytes=1024, retention_deletes=False
    )
    log = open_log(tmp_path, config)
    for tag in range(20):
        log.append_as_leader(make_batch(2, value_size_bytes=60, tag=tag), 0)
    bases = log.segment_base_offsets()
    assert len(bases) > 2
    assert log.delete_old_segments(CLOCK_MS + 10**9) == 0
    assert log.segment_base_offsets() == bases
    assert log.log_start_offset == 0
    log.close()


def test_offset_for_timestamp_finds_the_first_record_at_or_after(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    for tag in range(40):
        log.append_as_leader(make_batch(2, timestamp_ms=CLOCK_MS + tag * 10, tag=tag), 0)
    assert log.offset_for_timestamp(CLOCK_MS) == 0
    assert log.offset_for_timestamp(CLOCK_MS + 1) == 1
    assert log.offset_for_timestamp(CLOCK_MS + 2) == 2
    assert log.offset_for_timestamp(CLOCK_MS + 155) == 32
    assert log.offset_for_timestamp(CLOCK_MS + 391) == 79
    assert log.offset_for_timestamp(CLOCK_MS + 392) is None
    log.close()


def test_flush_policy_fsyncs_every_n_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(tmp_path, LogConfig(flush_interval_messages=5))
    for _ in range(4):
        log.append_as_leader(make_batch(1), 0)
    assert log.recovery_point == 0
    log.append_as_leader(make_batch(1), 0)
    assert log.recovery_point == 5
    log.append_as_leader(make_batch(7), 0)
    assert log.recovery_point == 12
    log.close()


def test_default_flush_policy_relies_on_replication(tmp_path: Path) -> None:
    log = open_log(tmp_path, LogConfig())
    for _ in range(100):
        log.append_as_leader(make_batch(1), 0)
    assert log.recovery_point == 0
    log.flush()
    assert log.recovery_point == 100
    log.close()


def test_config_validate_names_the_setting() -> None:
    with pytest.raises(ValueError, match="segment.bytes=10"):
        LogConfig(segment_bytes=10).validate()
    with pytest.raises(ValueError, match="flush.messages=0"):
        LogConfig(flush_interval_messages=0).validate()
