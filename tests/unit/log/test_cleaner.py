"""Log compaction (broker/log/cleaner.py) on real partition logs: a pass keeps the latest
record of every key at its offset and drops the older ones, thins batches and leaves one
empty batch for each run of wholly obsolete batches of an epoch, keeps tombstones for
delete.retention.ms, keeps each producer's last batch, never touches what lies at or above
the cleanable end, survives a crash in the middle of its swap, and its output replicates
to a follower as any other batches."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from broker.log import (
    InvalidRecordError,
    LogConfig,
    LogWriteError,
    PartitionLog,
    Record,
    build_batch,
    cleaner,
)
from broker.log.batch import NO_PRODUCER_ID, iter_batches, iter_records
from broker.log.cleaner import (
    DELETE_RETENTION_MS,
    CleaningCancelled,
    CleaningResult,
    clean,
)
from broker.log.compression import CompressionType
from tests.unit.log.helpers import CLOCK_MS, Row, compacted_batches, open_log, rows_of

# about three one-record batches a segment
CONFIG = LogConfig(segment_bytes=256, index_interval_bytes=100)


def keyed(
    *pairs: tuple[str, str | None],
    timestamp_ms: int = CLOCK_MS,
    compression: CompressionType = CompressionType.NONE,
    producer_id: int = NO_PRODUCER_ID,
    base_sequence: int = -1,
) -> bytes:
    records = [
        Record(key.encode(), None if value is None else value.encode(), (), timestamp_ms)
        for key, value in pairs
    ]
    return build_batch(
        records,
        compression=compression,
        producer_id=producer_id,
        producer_epoch=0 if producer_id != NO_PRODUCER_ID else -1,
        base_sequence=base_sequence,
    )


def compacted(rows: list[Row], end: int) -> list[Row]:
    """The model: below `end`, a record survives unless a later one below `end` has its key."""
    latest = {key: offset for offset, key, _ in rows if offset < end and key is not None}
    return [row for row in rows if row[0] >= end or row[1] is None or latest[row[1]] == row[0]]


def run_pass(
    log: PartitionLog, cleanable_end: int | None = None, now_ms: int = CLOCK_MS
) -> CleaningResult | None:
    end = log.log_end_offset if cleanable_end is None else cleanable_end
    plan = log.cleaning_plan(end, now_ms)
    if plan is None:
        return None
    result = clean(plan)
    log.install_cleaned(result)
    return result


def cleaned_end(log: PartitionLog) -> int:
    """Where a full pass ends: the active segment's base."""
    return log.segment_base_offsets()[-1]


def test_a_pass_keeps_the_latest_record_of_each_key_at_its_offset(tmp_path: Path) -> None:
    log = open_log(tmp_path, CONFIG)
    for n in range(30):
        log.append_as_leader(keyed((f"k{n % 4}", f"v{n}")), 0)
    before = rows_of(log)
    end = cleaned_end(log)
    result = run_pass(log)
    assert result is not None and result.records_removed > 0
    assert result.end_offset == end
    assert rows_of(log) == compacted(before, end)
    assert (log.log_start_offset, log.log_end_offset) == (0, 30)
    assert result.bytes_reclaimed > 0
    log.close()
    reopened = open_log(tmp_path, CONFIG)
    assert not reopened.recovery_report.lost_data
    assert rows_of(reopened) == compacted(before, end)
    reopened.close()


def test_a_batch_keeps_its_surviving_records_and_its_offsets(tmp_path: Path) -> None:
    log = open_log(tmp_path, CONFIG)
    log.append_as_leader(keyed(("a", "1"), ("b", "1"), ("c", "1")), 0)  # offsets 0-2
    log.append_as_leader(keyed(("b", "2")), 0)  # 3
    for n in range(6):  # roll past them
        log.append_as_leader(keyed((f"x{n}", "filler" * 10)), 0)
    run_pass(log)
    first = compacted_batches(log)[0]
    assert (first.base_offset, first.last_offset, first.records_count) == (0, 2, 2)
    assert [(r.offset, r.key) for r in iter_records(first)] == [(0, b"a"), (2, b"c")]
    log.close()


def test_wholly_obsolete_batches_become_one_empty_batch_per_leader_epoch(tmp_path: Path) -> None:
    log = open_log(tmp_path, CONFIG)
    for n in range(5):
        log.append_as_leader(keyed(("k", f"epoch1-{n}")), 1)  # offsets 0-4
    for n in range(4):
        log.append_as_leader(keyed(("k", f"epoch2-{n}")), 2)  # 5-8
    log.append_as_leader(keyed(("k", "last")), 2)  # 9
    for n in range(4):
        log.append_as_leader(keyed((f"other{n}", "x" * 60)), 2)  # 10-13, rolls
    epochs_before = log.leader_epoch_entries()
    ends_before = [log.end_offset_for_epoch(epoch) for epoch in (0, 1, 2)]
    run_pass(log)
    shapes = [
        (batch.base_offset, batch.last_offset, batch.records_count, batch.partition_leader_epoch)
        for batch in compacted_batches(log)
        if batch.base_offset < 10
    ]
    # one empty batch per segment and epoch: 0-4 may span segments, so look at records only
    assert [shape for shape in shapes if shape[2] > 0] == [(9, 9, 1, 2)]
    assert all(shape[3] == 1 for shape in shapes if shape[1] <= 4)
    assert all(shape[3] == 2 for shape in shapes if shape[0] >= 5)
    assert len(shapes) < 10, "runs of obsolete batches were merged"
    assert log.leader_epoch_entries() == epochs_before
    assert [log.end_offset_for_epoch(epoch) for epoch in (0, 1, 2)] == ends_before
    rows = rows_of(log)
    log.close()
    for index in tmp_path.glob("*.index"):  # recovery rebuilds them from the cleaned files
        index.unlink()
    recovered = open_log(tmp_path, CONFIG)
    assert not recovered.recovery_report.lost_data
    assert recovered.recovery_report.rebuilt_indexes
    assert recovered.leader_epoch_entries() == epochs_before
    assert rows_of(recovered) == rows
    recovered.close()


def age_segments(directory: Path, by_ms: int) -> None:
    """Moves every segment file's modification time `by_ms` into the past."""
    for path in directory.glob("*.log"):
        modified_ns = path.stat().st_mtime_ns - by_ms * 1_000_000
        os.utime(path, ns=(modified_ns, modified_ns))


def test_tombstones_stay_for_delete_retention_after_their_segment_was_written(
    tmp_path: Path,
) -> None:
    """A tombstone's clock is its segment's last append (the file's modification time,
    which a rewrite keeps), not the producer's timestamp: a consumer that read the value
    has delete.retention.ms to read the deletion even when the producer's clock is old."""
    log = open_log(tmp_path, CONFIG)
    log.append_as_leader(keyed(("gone", "value")), 0)
    log.append_as_leader(keyed(("gone", None), timestamp_ms=0), 0)  # the tombstone
    log.append_as_leader(keyed(("kept", "value")), 0)
    for n in range(6):
        log.append_as_leader(keyed((f"x{n}", "filler" * 10)), 0)
    end = cleaned_end(log)
    now_ms = time.time_ns() // 1_000_000
    modified = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("*.log")}
    assert run_pass(log, now_ms=now_ms) is not None
    assert [(o, k, v) for o, k, v in rows_of(log) if o < 3] == [
        (1, b"gone", None),
        (2, b"kept", b"value"),
    ]
    assert {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("*.log")} == modified
    age_segments(tmp_path, DELETE_RETENTION_MS + 60_000)
    for n in range(15):  # a new dirty part, larger than the clean one: the next pass runs
        log.append_as_leader(keyed((f"y{n}", "filler" * 10)), 0)
    assert run_pass(log, now_ms=now_ms) is not None
    rows = rows_of(log)
    assert [(o, k) for o, k, _ in rows if o < 3] == [(2, b"kept")]
    assert all(k != b"gone" for _, k, _ in rows)
    assert [o for o, _, _ in rows if 3 <= o < end] == list(range(3, end)), "fillers stay"
    log.close()


@pytest.mark.parametrize(
    "codec",
    [CompressionType.GZIP, CompressionType.SNAPPY, CompressionType.LZ4, CompressionType.ZSTD],
)
def test_a_compressed_batch_is_thinned_and_compressed_again(
    tmp_path: Path, codec: CompressionType
) -> None:
    log = open_log(tmp_path, CONFIG)
    log.append_as_leader(keyed(("a", "1"), ("b", "1"), ("c", "1"), compression=codec), 0)
    log.append_as_leader(keyed(("a", "2"), compression=codec), 0)
    for n in range(6):
        log.append_as_leader(keyed((f"x{n}", "filler" * 10)), 0)
    run_pass(log)
    first = compacted_batches(log)[0]
    assert first.compression == codec
    assert [(r.offset, r.key, r.value) for r in iter_records(first)] == [
        (1, b"b", b"1"),
        (2, b"c", b"1"),
    ]
    log.close()


def test_a_producers_last_batch_stays_with_its_sequence(tmp_path: Path) -> None:
    log = open_log(tmp_path, CONFIG)
    log.append_as_leader(keyed(("k", "1"), producer_id=7, base_sequence=0), 0)  # 0
    log.append_as_leader(keyed(("k", "2"), producer_id=7, base_sequence=1), 0)  # 1
    log.append_as_leader(keyed(("k", "3")), 0)  # 2: a plain producer's record wins
    for n in range(6):
        log.append_as_leader(keyed((f"x{n}", "filler" * 10)), 0)
    run_pass(log)
    kept = [b for b in compacted_batches(log) if b.producer_id == 7]
    assert [(b.base_offset, b.records_count, b.base_sequence) for b in kept] == [(1, 0, 1)]
    log.close()


def test_nothing_at_or_above_the_cleanable_end_changes(tmp_path: Path) -> None:
    log = open_log(tmp_path, CONFIG)
    for n in range(30):
        log.append_as_leader(keyed(("k", f"v{n}")), 0)
    bases = log.segment_base_offsets()
    before = rows_of(log)
    high_watermark = bases[3] + 1  # inside the fourth segment: three are cleanable
    result = run_pass(log, cleanable_end=high_watermark)
    assert result is not None and result.end_offset == bases[3]
    after = rows_of(log)
    assert [row for row in after if row[0] >= bases[3]] == [
        row for row in before if row[0] >= bases[3]
    ]
    assert after == compacted(before, bases[3])
    log.close()


def test_a_pass_waits_for_enough_dirty_records(tmp_path: Path) -> None:
    log = open_log(tmp_path, CONFIG)
    for n in range(30):
        log.append_as_leader(keyed((f"k{n}", "v")), 0)  # all keys distinct: nothing goes
    assert run_pass(log) is not None
    assert run_pass(log) is None, "nothing new since the last pass"
    log.append_as_leader(keyed(("k0", "again" * 20)), 0)
    log.append_as_leader(keyed(("k1", "again" * 20)), 0)
    assert run_pass(log) is None, "one new segment against nine cleaned: below the ratio"
    log.close()


def test_delete_retention_ms_of_the_topic_sets_how_long_tombstones_stay(tmp_path: Path) -> None:
    log = open_log(tmp_path, dataclasses.replace(CONFIG, delete_retention_ms=60_000))
    log.append_as_leader(keyed(("gone", "value")), 0)
    log.append_as_leader(keyed(("gone", None)), 0)
    for n in range(6):
        log.append_as_leader(keyed((f"x{n}", "filler" * 10)), 0)
    age_segments(tmp_path, 120_000)

    assert run_pass(log, now_ms=time.time_ns() // 1_000_000) is not None

    assert all(k != b"gone" for _, k, _ in rows_of(log)), "two minutes past one: gone"
    log.close()


def test_min_compaction_lag_keeps_recent_segments_out_of_a_pass(tmp_path: Path) -> None:
    """min.compaction.lag.ms: a segment is cleaned only that long after its last append,
    so a consumer has that long to read every update; the older segments are cleaned."""
    log = open_log(tmp_path, dataclasses.replace(CONFIG, min_compaction_lag_ms=60_000))
    for n in range(12):
        log.append_as_leader(keyed(("k", f"old{n}")), 0)
    age_segments(tmp_path, 120_000)
    for n in range(12):
        log.append_as_leader(keyed(("k", f"new{n}")), 0)
    before = rows_of(log)
    # the segment of the first new record was appended to just now, and every one after it
    old_end = max(base for base in log.segment_base_offsets() if base <= 12)
    now_ms = time.time_ns() // 1_000_000

    result = run_pass(log, now_ms=now_ms)

    assert result is not None and result.end_offset == old_end
    assert rows_of(log) == compacted(before, old_end)
    recent = [row for row in before if row[0] >= old_end]
    assert len(recent) >= 12 and [row for row in rows_of(log) if row[0] >= old_end] == recent
    age_segments(tmp_path, 120_000)
    assert run_pass(log, now_ms=now_ms) is not None
    assert len(rows_of(log)) == 1 + (log.log_end_offset - cleaned_end(log))
    log.close()


def test_min_cleanable_dirty_ratio_of_the_topic_decides_when_a_pass_runs(
    tmp_path: Path,
) -> None:
    log = open_log(tmp_path, dataclasses.replace(CONFIG, min_cleanable_dirty_ratio=0.01))
    for n in range(30):
        log.append_as_leader(keyed((f"k{n}", "v")), 0)
    assert run_pass(log) is not None
    log.append_as_leader(keyed(("k0", "again" * 20)), 0)
    log.append_as_leader(keyed(("k1", "again" * 20)), 0)

    assert run_pass(log) is not None, "one new segment against nine is above 1 %"
    log.close()


def test_max_compaction_lag_cleans_an_old_dirty_segment_below_the_ratio(
    tmp_path: Path,
) -> None:
    """max.compaction.lag.ms: a segment last appended to that long ago is cleaned however
    little of the log is dirty (for deletions that must happen by a deadline)."""
    config = dataclasses.replace(CONFIG, max_compaction_lag_ms=60_000)
    log = open_log(tmp_path, config)
    for n in range(30):
        log.append_as_leader(keyed((f"k{n}", "v")), 0)
    assert run_pass(log) is not None
    log.append_as_leader(keyed(("k0", "again" * 20)), 0)
    log.append_as_leader(keyed(("k1", "again" * 20)), 0)
    now_ms = time.time_ns() // 1_000_000
    assert run_pass(log, now_ms=now_ms) is None, "below the ratio, not yet overdue"

    age_segments(tmp_path, 120_000)

    assert run_pass(log, now_ms=now_ms) is not None
    assert [v for _, k, v in rows_of(log) if k == b"k0"] == [b"again" * 20]
    log.close()


def test_a_cleaned_log_replicates_to_a_follower(tmp_path: Path) -> None:
    leader = open_log(tmp_path / "leader", CONFIG)
    for n in range(40):
        leader.append_as_leader(keyed((f"k{n % 3}", f"v{n}")), n // 10)
    run_pass(leader)
    follower = open_log(tmp_path / "follower", CONFIG)
    while follower.log_end_offset < leader.log_end_offset:
        follower.append_as_follower(leader.read(follower.log_end_offset, 300))
    assert rows_of(follower) == rows_of(leader)
    assert follower.leader_epoch_entries() == leader.leader_epoch_entries()
    leader.close()
    follower.close()


@pytest.mark.parametrize("failing_replace", ["first log", "last log", "first index", "last index"])
def test_a_crash_inside_the_swap_leaves_old_or_cleaned_segments_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_replace: str
) -> None:
    """The swap renames every cleaned .log, then every index; whichever rename fails (a
    crash there), the reopened log holds every offset, old or cleaned, and loses nothing."""
    log = open_log(tmp_path, CONFIG)
    for n in range(30):
        log.append_as_leader(keyed((f"k{n % 4}", f"v{n}")), 0)
    before = rows_of(log)
    end = cleaned_end(log)
    plan = log.cleaning_plan(log.log_end_offset, CLOCK_MS)
    assert plan is not None
    result = clean(plan)
    swapped = len(result.cleaned)
    assert swapped > 2
    failing_call = {
        "first log": 1,
        "last log": swapped,
        "first index": swapped + 1,
        "last index": 3 * swapped,
    }[failing_replace]
    calls = 0
    real_replace = os.replace

    def replace(source: object, target: object) -> None:
        nonlocal calls
        calls += 1
        if calls == failing_call:
            raise OSError("the machine stops here")
        real_replace(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(LogWriteError):
        log.install_cleaned(result)
    monkeypatch.undo()
    log.abandon()
    reopened = open_log(tmp_path, CONFIG)
    assert not reopened.recovery_report.lost_data
    rows = rows_of(reopened)
    assert {offset for offset, _, _ in compacted(before, end)} <= {o for o, _, _ in rows}
    assert [row for row in rows if row in before] == rows, "no record that was not written"
    assert rows_of(reopened)[-1] == before[-1]
    assert not (tmp_path / ".cleaning").exists()
    reopened.close()


def test_closing_the_log_stops_a_pass(tmp_path: Path) -> None:
    log = open_log(tmp_path, CONFIG)
    for n in range(30):
        log.append_as_leader(keyed((f"k{n % 4}", f"v{n}")), 0)
    plan = log.cleaning_plan(log.log_end_offset, CLOCK_MS)
    assert plan is not None
    log.close()
    with pytest.raises(CleaningCancelled):
        clean(plan)


def test_a_read_goes_past_segments_left_with_empty_batches_only(tmp_path: Path) -> None:
    """A consumer given no record at all takes the batch for too large (librdkafka doubles
    its fetch size, then reports MSG_SIZE_TOO_LARGE): a read of empty batches goes on to
    the next segments, within its max_bytes."""
    log = open_log(tmp_path, CONFIG)
    for n in range(12):
        log.append_as_leader(keyed(("k", f"v{n}")), 0)  # four segments of "k"
    for n in range(6):
        log.append_as_leader(keyed((f"x{n}", "filler" * 10)), 0)
    run_pass(log)
    first_record = min(offset for offset, _, _ in rows_of(log))
    assert first_record > 6, "the first segments hold no record any more"
    data = log.read(0, 1 << 20)
    batches = list(iter_batches(data))
    assert batches[-1].records_count > 0, "the read reached a record"
    assert all(batch.records_count == 0 for batch in batches[:-1])
    assert len(log.read(0, len(batches[0].buffer))) == len(batches[0].buffer), "within max_bytes"
    log.close()


def test_a_pass_hands_the_gil_over_after_each_work_slice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass runs on a thread beside the event loop: it sleeps (which releases the GIL at
    once) whenever it has worked CLEANER_WORK_SLICE_S, or the loop would wait up to the
    interpreter's 5 ms switch interval at every wake-up. Measured by a fake clock."""
    log = open_log(tmp_path, CONFIG)
    for n in range(30):
        log.append_as_leader(keyed((f"k{n % 4}", f"v{n}")), 0)
    clock = [0.0]
    worked_since_sleep: list[float] = []
    last_sleep = [0.0]

    def perf_counter() -> float:
        clock[0] += cleaner.CLEANER_WORK_SLICE_S / 3  # every look at the clock: a third
        return clock[0]

    def sleep(seconds: float) -> None:
        assert seconds > 0
        worked_since_sleep.append(clock[0] - last_sleep[0])
        last_sleep[0] = clock[0]

    monkeypatch.setattr(cleaner.time, "perf_counter", perf_counter)
    monkeypatch.setattr(cleaner.time, "sleep", sleep)
    plan = log.cleaning_plan(log.log_end_offset, CLOCK_MS)
    assert plan is not None
    log.install_cleaned(clean(plan))
    assert len(worked_since_sleep) > 10
    assert max(worked_since_sleep) <= 2 * cleaner.CLEANER_WORK_SLICE_S
    log.close()


@pytest.mark.parametrize("codec", [CompressionType.NONE, CompressionType.GZIP])
def test_a_compacted_log_refuses_a_record_without_a_key(
    tmp_path: Path, codec: CompressionType
) -> None:
    """Kafka's LogValidator: the cleaner could never supersede it. Nothing is written."""
    log = open_log(tmp_path, LogConfig(segment_bytes=256, compacts=True))
    keyless = build_batch(
        [Record(b"k", b"v", (), CLOCK_MS), Record(None, b"v", (), CLOCK_MS)], compression=codec
    )
    with pytest.raises(InvalidRecordError, match="without a key"):
        log.append_as_leader(keyless, 0)
    assert log.log_end_offset == 0
    assert log.append_as_leader(keyed(("k", "v"), compression=codec), 0) == (0, 0)
    log.close()
    plain = open_log(tmp_path / "plain", LogConfig(segment_bytes=256))
    assert plain.append_as_leader(keyless, 0) == (0, 1), "a topic that deletes takes them"
    plain.close()


def test_a_segment_truncated_during_the_pass_is_left_as_it_is(tmp_path: Path) -> None:
    """A follower truncated below a planned segment while the pass ran: that segment and
    the later ones are not swapped in, and the pass reports only what it installed."""
    log = open_log(tmp_path, CONFIG)
    for n in range(30):
        log.append_as_leader(keyed((f"k{n % 4}", f"v{n}")), 0)
    plan = log.cleaning_plan(log.log_end_offset, CLOCK_MS)
    assert plan is not None
    result = clean(plan)
    cut = result.cleaned[2].planned.base_offset + 1  # inside the third rewritten segment
    log.truncate_to(cut)
    before = rows_of(log)
    installed = log.install_cleaned(result)
    assert [c.planned for c in installed.cleaned] == [c.planned for c in result.cleaned[:2]]
    assert installed.records_removed == sum(c.records_removed for c in result.cleaned[:2])
    rows = rows_of(log)
    assert [row for row in rows if row[0] >= result.cleaned[2].planned.base_offset] == [
        row for row in before if row[0] >= result.cleaned[2].planned.base_offset
    ]
    log.close()
