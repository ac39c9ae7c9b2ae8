"""PartitionLog: one partition replica's log, a directory of segments (segment.py) with a
leader-epoch cache (epoch_cache.py), a flush policy, retention and recovery at open.

Appends come in two kinds. A leader appends one producer batch: it is validated (size
against max.message.bytes, frame, CRC, records), given the next offsets and the leader's
epoch by patching 12 bytes before the CRC range (batch.assign_offsets), and written. A
follower appends the leader's batches as they are, which must continue the log exactly.
Either way nothing is written unless every check passed.

The last segment takes appends and rolls when the next batch would pass segment.bytes, when
the batch's timestamp is segment.ms past the segment's first batch, or when its offsets no
longer fit the indexes' int32 relative offsets. A rolled segment is fsynced and the recovery
point (persisted in `recovery-point-offset-checkpoint`) moves to the new segment's base
offset; the active segment is fsynced only by flush(), which the flush policy calls every
flush_interval_messages records (default never: durability comes from replication, as in
Kafka). close() flushes everything and leaves a `.clean-shutdown` marker; see recovery.py for
what open does without it.

Not thread-safe: one owner (the partition's task or storage thread) calls it.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from broker.log.batch import (
    NO_PARTITION_LEADER_EPOCH,
    RECORDS_COUNT_POSITION,
    RecordBatch,
    assign_offsets,
    batch_size_at,
    iter_batches,
    record_spans,
    with_log_append_time,
)
from broker.log.checkpoint import read_single_offset, write_single_offset
from broker.log.cleaner import (
    CLEANER_CHECKPOINT_NAME,
    CleaningPlan,
    CleaningResult,
    CleaningRules,
    PlannedSegment,
    plan,
    remove_cleaning_directory,
)
from broker.log.config import RETENTION_BYTES_UNLIMITED, RETENTION_MS_UNLIMITED, LogConfig
from broker.log.epoch_cache import LeaderEpochCache
from broker.log.errors import (
    CorruptLogError,
    InvalidRecordError,
    LogWriteError,
    MessageTooLargeError,
    OffsetOutOfRangeError,
    UnexpectedAppendOffsetError,
)
from broker.log.index import (
    OFFSET_INDEX_SUFFIX,
    RELATIVE_OFFSET_MAX,
    TIME_INDEX_SUFFIX,
    IndexCorruptError,
)
from broker.log.recovery import RecoveryReport, TruncatedTail, recover_segment
from broker.log.segment import SEGMENT_SUFFIX, Segment, parse_segment_base_offset
from kraft.storage.durable_files import (
    TEMPORARY_SUFFIX,
    fsync_directory,
    remove_file_durably,
    write_file_atomically,
)

CLEAN_SHUTDOWN_MARKER_NAME = ".clean-shutdown"
RECOVERY_POINT_CHECKPOINT_NAME = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT_NAME = "log-start-offset-checkpoint"


RECORDS_COUNT_SLICE = slice(RECORDS_COUNT_POSITION, RECORDS_COUNT_POSITION + 4)
NO_RECORDS = bytes(4)


def _refuse_keyless_records(batch: RecordBatch) -> None:
    """Kafka's LogValidator: a compacted log keeps the latest record of each key, so a
    record without a key has no place in it (the cleaner could never supersede it)."""
    for index, span in enumerate(record_spans(batch)[1]):
        if span.key is None:
            raise InvalidRecordError(
                f"a compacted topic cannot accept a record without a key (record {index} "
                "of the batch has none)"
            )


def _holds_records(data: bytes) -> bool:
    """Whether any batch of a read holds a record (the cleaner leaves empty ones)."""
    return any(batch.records_count for batch in iter_batches(data))


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class PartitionLog:
    """The log of one partition replica in `directory` (created if missing), recovered at
    open; `recovery_report` says what opening found."""

    def __init__(
        self,
        directory: Path,
        config: LogConfig | None = None,
        *,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.config = config if config is not None else LogConfig()
        self.config.validate()
        self.directory = directory
        self._clock_ms = clock_ms
        self._segments: list[Segment] = []
        self._log_start_offset = 0
        self._recovery_point = 0
        self._unflushed_messages = 0
        self._active_created_ms = clock_ms()
        self._is_closed = False
        self._is_failed = False
        self._cleaned_up_to = 0  # the last compaction pass's end (cleaner.py)
        self._cleaning_cancelled = threading.Event()  # set by close(): a pass stops
        try:
            if not directory.exists():
                directory.mkdir(parents=True)
                fsync_directory(directory.parent)
            self.epoch_cache = LeaderEpochCache(directory)
            self.recovery_report = self._open()
        except OSError as error:
            # Opening writes too (recovery, checkpoints): a full disk here is a failed log
            # directory like any other write, not a stray OSError that left a restarted
            # broker running with partitions it never opened (kraft chaos --mixed, seed 201).
            self._close_segments()
            raise LogWriteError(f"opening the log in {directory} failed: {error}") from error
        except BaseException:
            self._close_segments()
            raise

    # -- state -----------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        # read on every produce and fetch: the active segment without the _active check
        return self._segments[-1].next_offset

    @property
    def recovery_point(self) -> int:
        """Every offset below it is on disk (fsynced)."""
        return self._recovery_point

    @property
    def size_bytes(self) -> int:
        return sum(segment.size_bytes for segment in self._segments)

    @property
    def latest_epoch(self) -> int | None:
        return self.epoch_cache.latest_epoch

    def segment_base_offsets(self) -> list[int]:
        return [segment.base_offset for segment in self._segments]

    def leader_epoch_entries(self) -> list[tuple[int, int]]:
        return self.epoch_cache.entries()

    def now_ms(self) -> int:
        """The log's clock, wall time in ms (injected in tests): what segment.ms, retention
        and a LogAppendTime stamp (append_as_leader's log_append_time_ms) go by."""
        return self._clock_ms()

    @property
    def _active(self) -> Segment:
        assert self._segments, "a partition log always has an active segment"
        return self._segments[-1]

    def _check_usable(self) -> None:
        assert not self._is_closed, f"partition log {self.directory} is closed"
        if self._is_failed:
            raise LogWriteError(f"log {self.directory} failed an earlier write; reopen it")

    # -- appends ---------------------------------------------------------------------------

    def append_as_leader(
        self,
        batch_bytes: bytes | bytearray,
        leader_epoch: int,
        log_append_time_ms: int | None = None,
    ) -> tuple[int, int]:
        """Validates one producer batch, assigns it the next offsets and `leader_epoch`, and
        appends it; returns (base offset, last offset). With `log_append_time_ms` (a topic
        whose message.timestamp.type is LogAppendTime) the batch is stamped with that time.
        Raises MessageTooLargeError, CorruptRecordError or InvalidRecordError with nothing
        written."""
        self._check_usable()
        size_bytes = len(batch_bytes)
        if size_bytes > self.config.max_message_bytes:
            raise MessageTooLargeError(size_bytes, self.config.max_message_bytes)
        batch = RecordBatch(batch_bytes)
        if batch_size_at(batch.buffer, 0) != size_bytes:
            raise InvalidRecordError(
                f"a produce carries exactly one record batch; these {size_bytes} bytes "
                f"start with one of {batch_size_at(batch.buffer, 0)}"
            )
        batch.validate()
        if self.config.compacts and not batch.is_control:
            _refuse_keyless_records(batch)
        latest_epoch = self.epoch_cache.latest_epoch
        assert latest_epoch is None or leader_epoch >= latest_epoch, (
            f"leader epoch {leader_epoch} is older than the log's latest {latest_epoch}"
        )
        if log_append_time_ms is not None:
            batch_bytes = with_log_append_time(batch_bytes, log_append_time_ms)
        base_offset = self.log_end_offset
        stored = RecordBatch(assign_offsets(batch_bytes, base_offset, leader_epoch))
        self._append_batch(stored)
        assert self.log_end_offset == stored.next_offset, "the batch ends the log"
        return base_offset, stored.last_offset

    def append_as_follower(self, batches_bytes: bytes | bytearray) -> tuple[int, int]:
        """Appends the leader's batches as they are (offsets and epochs kept); returns (first
        offset, last offset). They must continue the log exactly (UnexpectedAppendOffsetError)
        and their epochs may not go back (InvalidRecordError); every batch is validated before
        any is written (frame, CRC and offsets; not each record, which the leader checked).
        max.message.bytes is not applied: the leader already accepted them."""
        self._check_usable()
        batches = list(iter_batches(batches_bytes))
        if not batches:
            raise InvalidRecordError("follower append holds no record batch")
        expected_offset = self.log_end_offset
        last_epoch = self.epoch_cache.latest_epoch
        for batch in batches:
            batch.validate(check_records=False, compacted=True)  # the leader walked them
            if batch.base_offset != expected_offset:
                raise UnexpectedAppendOffsetError(batch.base_offset, expected_offset)
            epoch = batch.partition_leader_epoch
            if epoch != NO_PARTITION_LEADER_EPOCH:
                if last_epoch is not None and epoch < last_epoch:
                    raise InvalidRecordError(
                        f"batch at offset {batch.base_offset} has leader epoch {epoch}, "
                        f"older than the log's {last_epoch}"
                    )
                last_epoch = epoch
            expected_offset = batch.next_offset
        for batch in batches:
            self._append_batch(batch)
        return batches[0].base_offset, expected_offset - 1

    def _append_batch(self, batch: RecordBatch) -> None:
        epoch = batch.partition_leader_epoch
        latest_epoch = self.epoch_cache.latest_epoch
        assigns_epoch = epoch != NO_PARTITION_LEADER_EPOCH and (
            latest_epoch is None or epoch > latest_epoch
        )
        self._maybe_roll(batch)
        if assigns_epoch:
            try:
                self.epoch_cache.assign(epoch, batch.base_offset)
            except OSError as error:
                raise LogWriteError(
                    f"writing {self.epoch_cache.path} for epoch {epoch} failed: {error}"
                ) from error
        try:
            self._active.append(batch)
        except LogWriteError:
            if assigns_epoch:
                self.epoch_cache.truncate_from_end(batch.base_offset)
            raise
        self._unflushed_messages += batch.records_count
        interval = self.config.flush_interval_messages
        if interval is not None and self._unflushed_messages >= interval:
            self.flush()

    def _maybe_roll(self, batch: RecordBatch) -> None:
        active = self._active
        if active.size_bytes == 0:
            return
        is_full = active.size_bytes + batch.size_bytes > self.config.segment_bytes
        offsets_overflow = batch.last_offset - active.base_offset > RELATIVE_OFFSET_MAX
        first_timestamp = active.first_batch_timestamp
        if first_timestamp is not None and first_timestamp >= 0:
            waited_ms = batch.max_timestamp - first_timestamp
        else:  # no usable record timestamps: fall back on the wall clock, as Kafka does
            waited_ms = self._clock_ms() - self._active_created_ms
        if is_full or offsets_overflow or waited_ms >= self.config.segment_ms:
            self._roll(batch.base_offset)

    def _roll(self, base_offset: int) -> None:
        previous = self._active
        assert base_offset == previous.next_offset, "a new segment continues the log"
        try:
            previous.on_become_inactive()
            previous.flush()
            segment = Segment.create(self.directory, base_offset, self.config.index_interval_bytes)
            fsync_directory(self.directory)
            self._segments.append(segment)
            self._recovery_point = max(self._recovery_point, base_offset)
            self._write_recovery_point()
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(f"rolling a segment in {self.directory} failed: {error}") from error
        self._active_created_ms = self._clock_ms()

    # -- reads -----------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from the one holding `offset`, up to max_bytes but at least one
        batch (as Kafka answers a fetch), from one segment; b"" at the log end.
        OffsetOutOfRangeError outside [log start offset, log end offset].

        Only when what one segment gives holds no record (the empty batches compaction
        leaves) does the read go on into the next segments, within max_bytes: a consumer
        given no record thinks the batch too large for its fetch size (librdkafka doubles
        it, then reports MSG_SIZE_TOO_LARGE)."""
        self._check_usable()
        if not self._log_start_offset <= offset <= self.log_end_offset:
            raise OffsetOutOfRangeError(offset, self._log_start_offset, self.log_end_offset)
        index = bisect.bisect_right(self._segments, offset, key=lambda segment: segment.base_offset)
        following = self._segments[max(index - 1, 0) :]
        for position, segment in enumerate(following):
            data = segment.read(max(offset, segment.base_offset), max_bytes)
            if data:
                if data[RECORDS_COUNT_SLICE] != NO_RECORDS or _holds_records(data):
                    return data
                return self._read_past_empty_batches(data, following[position + 1 :], max_bytes)
        return b""

    def _read_past_empty_batches(
        self, data: bytes, following: list[Segment], max_bytes: int
    ) -> bytes:
        parts = [data]
        size_bytes = len(data)
        for segment in following:
            more = segment.read(segment.base_offset, max_bytes - size_bytes)
            if not more or size_bytes + len(more) > max_bytes:
                break
            parts.append(more)
            size_bytes += len(more)
            if _holds_records(more):
                break
        return b"".join(parts)

    def offset_for_timestamp(self, timestamp_ms: int) -> int | None:
        """The offset of the first record whose timestamp is >= timestamp_ms (Kafka's
        ListOffsets by time), or None if there is none."""
        self._check_usable()
        for segment in self._segments:
            if segment.max_timestamp >= timestamp_ms:
                offset = segment.offset_for_timestamp(timestamp_ms)
                if offset is not None:
                    return max(offset, self._log_start_offset)
        return None

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(epoch, end offset) for an OffsetsForLeaderEpoch request (KIP-101/279): see
        LeaderEpochCache.end_offset_for."""
        return self.epoch_cache.end_offset_for(epoch, self.log_end_offset)

    # -- truncation --------------------------------------------------------------------------

    def truncate_to(self, offset: int) -> None:
        """Drops every batch holding an offset >= `offset`. A batch straddling `offset` is
        dropped whole, as Kafka's LogSegment.truncateTo does (batches are never cut, so the
        log may end below `offset`; a follower then fetches the rest again). Below the first
        segment the log restarts empty at `offset` (Kafka's truncateFullyAndStartAt)."""
        self._check_usable()
        assert offset >= 0, f"truncate to negative offset {offset}"
        if offset >= self.log_end_offset:
            # Kafka's UnifiedLog.truncateTo does this too: a former leader may hold an epoch
            # entry at the log end for an epoch in which it appended nothing; a truncation
            # that removes no batch must still remove that entry, or the follower keeps
            # diverging on it forever (found by the replication simulator).
            self._truncate_epochs_from_end(self.log_end_offset)
            return
        if offset < self._segments[0].base_offset:
            self.truncate_fully_and_start_at(offset)
            return
        try:
            while len(self._segments) > 1 and self._segments[-1].base_offset >= offset:
                self._segments.pop().delete()
            fsync_directory(self.directory)
            self._active.truncate_to(offset)
            self._active.flush()
            self._active_created_ms = self._clock_ms()
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(f"truncating {self.directory} failed: {error}") from error
        assert self.log_end_offset <= offset, f"truncate to {offset} left {self.log_end_offset}"
        self._truncate_epochs_from_end(self.log_end_offset)
        self._recovery_point = min(self._recovery_point, self.log_end_offset)
        self._write_recovery_point()
        self._lower_cleaned_up_to(self.log_end_offset)
        self._unflushed_messages = 0

    def _truncate_epochs_from_end(self, end_offset: int) -> None:
        """The epoch checkpoint is a file too: a failed write (a full disk) is a LogWriteError
        like any other, not a stray OSError (found by `kraft chaos --mixed`)."""
        try:
            self.epoch_cache.truncate_from_end(end_offset)
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(
                f"writing {self.epoch_cache.path} after truncation failed: {error}"
            ) from error

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Drops every segment and restarts the log empty at `offset` (a follower whose log
        does not reach the leader's log start offset)."""
        self._check_usable()
        try:
            self._write_log_start_offset(offset)
            while self._segments:
                self._segments.pop().delete()
            self._segments.append(
                Segment.create(self.directory, offset, self.config.index_interval_bytes)
            )
            fsync_directory(self.directory)
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(f"truncating {self.directory} failed: {error}") from error
        self._log_start_offset = offset
        try:
            self.epoch_cache.clear_and_persist()
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(f"writing {self.epoch_cache.path} failed: {error}") from error
        self._recovery_point = offset
        self._write_recovery_point()
        self._unflushed_messages = 0
        self._lower_cleaned_up_to(offset)

    # -- retention ---------------------------------------------------------------------------

    def delete_old_segments(self, now_ms: int | None = None) -> int:
        """Deletes the oldest whole segments whose newest record is older than retention.ms,
        and those that take the log over retention.bytes; never the active segment, and
        none when the cleanup policy does not delete (LogConfig.retention_deletes). Moves
        the log start offset to the first kept segment; returns how many were deleted."""
        self._check_usable()
        if not self.config.retention_deletes:
            return 0
        now = self._clock_ms() if now_ms is None else now_ms
        candidates = self._segments[:-1]
        count = max(self._expired_count(candidates, now), self._oversize_count(candidates))
        if count == 0:
            return 0
        new_start_offset = self._segments[count].base_offset
        try:
            self._write_log_start_offset(new_start_offset)
            for segment in self._segments[:count]:
                segment.delete()
            fsync_directory(self.directory)
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(f"deleting segments of {self.directory} failed: {error}") from error
        del self._segments[:count]
        self._log_start_offset = new_start_offset
        try:
            self.epoch_cache.truncate_from_start(new_start_offset)
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(f"writing {self.epoch_cache.path} failed: {error}") from error
        return count

    def _expired_count(self, candidates: list[Segment], now_ms: int) -> int:
        retention_ms = self.config.retention_ms
        if retention_ms == RETENTION_MS_UNLIMITED:
            return 0
        count = 0
        for segment in candidates:
            if now_ms - segment.max_timestamp <= retention_ms:
                break
            count += 1
        return count

    def _oversize_count(self, candidates: list[Segment]) -> int:
        retention_bytes = self.config.retention_bytes
        if retention_bytes == RETENTION_BYTES_UNLIMITED:
            return 0
        excess_bytes = self.size_bytes - retention_bytes
        count = 0
        for segment in candidates:
            if excess_bytes - segment.size_bytes < 0:
                break
            excess_bytes -= segment.size_bytes
            count += 1
        return count

    # -- compaction (cleaner.py) -------------------------------------------------------------

    def cleaning_plan(self, cleanable_end: int, now_ms: int | None = None) -> CleaningPlan | None:
        """A compaction pass over the closed segments wholly below `cleanable_end` (the high
        watermark: records not yet committed are never cleaned), when enough of them was
        appended since the last pass (cleaner.plan); for cleaner.clean on a thread, then
        install_cleaned here."""
        self._check_usable()
        segments = [
            PlannedSegment(
                segment.base_offset,
                segment.size_bytes,
                segment.next_offset,
                os.stat(segment.path).st_mtime_ns // 1_000_000,
            )
            for segment in self._segments[:-1]
            if segment.next_offset <= cleanable_end
        ]
        if not segments:
            return None
        return plan(
            self.directory,
            segments,
            self._cleaned_up_to,
            self.config.index_interval_bytes,
            self._clock_ms() if now_ms is None else now_ms,
            self._cleaning_cancelled,
            CleaningRules(
                min_dirty_ratio=self.config.min_cleanable_dirty_ratio,
                min_compaction_lag_ms=self.config.min_compaction_lag_ms,
                max_compaction_lag_ms=self.config.max_compaction_lag_ms,
                delete_retention_ms=self.config.delete_retention_ms,
            ),
        )

    def stop_cleaning(self) -> None:
        """A pass running on another thread stops at its next batch (CleaningCancelled);
        close() does this too. The log's owner calls it before waiting for that thread."""
        self._cleaning_cancelled.set()

    def install_cleaned(self, result: CleaningResult) -> CleaningResult:
        """Swaps in the segments a pass rewrote, each only if it is still the segment that
        was planned (retention or a truncation may have removed or cut it meanwhile), and
        records where the pass ended; returns the result with only the segments swapped in
        (what the pass really removed). The cleaning directory goes either way.

        The swap goes in three steps over all the segments, each ending with one directory
        fsync: the old indexes are unlinked, the cleaned `.log` files renamed over the old
        ones, then their indexes moved in. A crash at any point leaves every segment a whole
        `.log`, old or cleaned (both valid), with its own indexes or missing ones, which the
        next open rebuilds from it; never an index of the other file."""
        self._check_usable()
        cleaning = result.plan.cleaning_directory
        try:
            swaps = [
                (index, self._segments[index])
                for cleaned in result.cleaned
                if (index := self._planned_segment_index(cleaned.planned)) is not None
            ]
            if swaps:
                for _, segment in swaps:
                    segment.offset_index_path.unlink(missing_ok=True)
                    segment.time_index_path.unlink(missing_ok=True)
                fsync_directory(self.directory)
                for _, segment in swaps:
                    # the cleaned file keeps the time of the last append: tombstones' clock
                    modified_ns = os.stat(segment.path).st_mtime_ns
                    os.utime(cleaning / segment.path.name, ns=(modified_ns, modified_ns))
                    os.replace(cleaning / segment.path.name, segment.path)
                fsync_directory(self.directory)
                for _, segment in swaps:
                    for path in (segment.offset_index_path, segment.time_index_path):
                        os.replace(cleaning / path.name, path)
                fsync_directory(self.directory)
                for index, segment in swaps:
                    self._segments[index] = self._reopen_cleaned(segment)
            end_offset = min(result.end_offset, self.log_end_offset)
            if end_offset > self._cleaned_up_to:
                write_single_offset(self.directory / CLEANER_CHECKPOINT_NAME, end_offset)
                self._cleaned_up_to = end_offset
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(
                f"installing cleaned segments in {self.directory} failed: {error}"
            ) from error
        finally:
            remove_cleaning_directory(self.directory)
        swapped = {segment.base_offset for _, segment in swaps}
        installed = [c for c in result.cleaned if c.planned.base_offset in swapped]
        return dataclasses.replace(result, cleaned=tuple(installed))

    def _planned_segment_index(self, planned: PlannedSegment) -> int | None:
        """Where the planned segment is in the log, if it is still there, closed, unchanged."""
        index = bisect.bisect_right(self.segment_base_offsets(), planned.base_offset) - 1
        if index < 0 or index == len(self._segments) - 1:
            return None
        segment = self._segments[index]
        now = (segment.base_offset, segment.size_bytes, segment.next_offset)
        return (
            index if now == (planned.base_offset, planned.size_bytes, planned.next_offset) else None
        )

    def _reopen_cleaned(self, segment: Segment) -> Segment:
        segment.close()
        replacement = Segment.open_existing(
            self.directory, segment.base_offset, self.config.index_interval_bytes
        )
        try:
            replacement.load_trusted()
        except IndexCorruptError as error:  # we just wrote and fsynced them
            replacement.close()
            raise OSError(f"the cleaned {segment.path} does not load: {error}") from error
        replacement.on_become_inactive()
        return replacement

    def _read_cleaner_checkpoint(self) -> int:
        try:
            offset = read_single_offset(self.directory / CLEANER_CHECKPOINT_NAME)
        except CorruptLogError:
            return 0  # only an optimisation: the next pass cleans the whole log again
        return min(offset or 0, self.log_end_offset)

    def _lower_cleaned_up_to(self, log_end_offset: int) -> None:
        """After a truncation, records appended again below the last pass's end are dirty."""
        if self._cleaned_up_to <= log_end_offset:
            return
        self._cleaned_up_to = log_end_offset
        try:
            write_single_offset(self.directory / CLEANER_CHECKPOINT_NAME, log_end_offset)
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(
                f"writing the cleaner checkpoint of {self.directory} failed: {error}"
            ) from error

    # -- flush and close ---------------------------------------------------------------------

    def flush(self) -> None:
        """fsyncs the active segment (older ones were fsynced at roll); the recovery point
        moves to the log end (persisted at the next roll, truncation or close)."""
        self._check_usable()
        try:
            self._active.flush()
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(f"flushing {self._active.path} failed: {error}") from error
        self._recovery_point = self.log_end_offset
        self._unflushed_messages = 0

    def close(self) -> None:
        """Flushes everything, persists the recovery point and leaves the clean-shutdown
        marker so the next open trusts the files; a failed log closes without the marker."""
        if self._is_closed:
            return
        self._cleaning_cancelled.set()
        try:
            if not self._is_failed:
                self._active.on_become_inactive()
                self.flush()
                self._write_recovery_point()
                write_file_atomically(self.directory / CLEAN_SHUTDOWN_MARKER_NAME, b"")
        finally:
            self._is_closed = True
            self._close_segments()

    def abandon(self) -> None:
        """Closes the files without flushing, checkpointing or the clean-shutdown marker,
        leaving them as a crash would (the next open recovers): for a shell giving up on a
        failed disk, and for crash tests."""
        if not self._is_closed:
            self._is_closed = True
            self._cleaning_cancelled.set()
            self._close_segments()

    def _close_segments(self) -> None:
        for segment in self._segments:
            segment.close()

    # -- checkpoints -------------------------------------------------------------------------

    def _write_recovery_point(self) -> None:
        write_single_offset(self.directory / RECOVERY_POINT_CHECKPOINT_NAME, self._recovery_point)

    def _write_log_start_offset(self, offset: int) -> None:
        write_single_offset(self.directory / LOG_START_OFFSET_CHECKPOINT_NAME, offset)

    # -- recovery ----------------------------------------------------------------------------

    def _open(self) -> RecoveryReport:
        for leftover in self.directory.glob(f"*{TEMPORARY_SUFFIX}"):
            leftover.unlink()
        remove_cleaning_directory(self.directory)
        marker = self.directory / CLEAN_SHUTDOWN_MARKER_NAME
        was_clean = marker.exists()
        recovery_point = read_single_offset(self.directory / RECOVERY_POINT_CHECKPOINT_NAME) or 0
        log_start_offset = read_single_offset(self.directory / LOG_START_OFFSET_CHECKPOINT_NAME)
        base_offsets = self._segment_base_offsets_on_disk()
        recovered: list[Path] = []
        rebuilt: list[Path] = []
        tails: list[TruncatedTail] = []
        deleted: list[Path] = []
        for index, base_offset in enumerate(base_offsets):
            segment = Segment.open_existing(
                self.directory, base_offset, self.config.index_interval_bytes
            )
            self._segments.append(segment)
            if index > 0 and base_offset != self._segments[-2].next_offset:
                tails.append(self._gap_tail(segment))
            else:
                next_base = base_offsets[index + 1] if index + 1 < len(base_offsets) else None
                is_flushed = next_base is not None and next_base <= recovery_point
                tail = self._open_segment(segment, was_clean or is_flushed, recovered, rebuilt)
                if tail is None:
                    continue
                tails.append(tail)
            for later in base_offsets[index + 1 :]:
                deleted.append(self._delete_unopened_segment(later))
            break
        self._settle_log_start(log_start_offset)
        self.epoch_cache.truncate_from_end(self.log_end_offset, write=False)
        self.epoch_cache.truncate_from_start(self._log_start_offset, write=False)
        self.epoch_cache.write()
        self._recovery_point = self.log_end_offset
        self._write_recovery_point()
        self._cleaned_up_to = self._read_cleaner_checkpoint()
        if was_clean:
            remove_file_durably(marker)
        return RecoveryReport(
            self.directory,
            was_clean,
            tuple(recovered),
            tuple(rebuilt),
            tuple(tails),
            tuple(deleted),
            self._log_start_offset,
            self.log_end_offset,
        )

    def _segment_base_offsets_on_disk(self) -> list[int]:
        """Base offsets of the `.log` files; index files without a segment are removed."""
        base_offsets = []
        for path in self.directory.iterdir():
            base_offset = parse_segment_base_offset(path)
            if base_offset is not None:
                base_offsets.append(base_offset)
        for suffix in (OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            for path in self.directory.glob(f"*{suffix}"):
                if not path.with_suffix(SEGMENT_SUFFIX).exists():
                    path.unlink()
        return sorted(base_offsets)

    def _open_segment(
        self, segment: Segment, is_trusted: bool, recovered: list[Path], rebuilt: list[Path]
    ) -> TruncatedTail | None:
        if is_trusted:
            try:
                segment.load_trusted()
                return None
            except IndexCorruptError:
                rebuilt.append(segment.offset_index_path)
        elif not recovered:
            # The first untrusted segment (every later one is untrusted too): the epoch
            # entries from its base on are rebuilt from the batches. A trusted segment whose
            # index is rebuilt keeps its entries, and later trusted ones theirs.
            self.epoch_cache.truncate_from_end(segment.base_offset, write=False)
        recovered.append(segment.path)
        return recover_segment(segment, self.epoch_cache)

    def _gap_tail(self, segment: Segment) -> TruncatedTail:
        """A segment that does not start where the previous one ends: dropped whole."""
        previous_end = self._segments[-2].next_offset
        size_bytes = segment.file_size_bytes()
        self._segments.pop().delete()
        fsync_directory(self.directory)
        return TruncatedTail(
            segment.path,
            0,
            size_bytes,
            f"segment starts at offset {segment.base_offset}, the log ends at {previous_end}",
        )

    def _delete_unopened_segment(self, base_offset: int) -> Path:
        segment = Segment.open_existing(self.directory, base_offset, 0)
        segment.delete()
        fsync_directory(self.directory)
        return segment.path

    def _settle_log_start(self, checkpoint_offset: int | None) -> None:
        """The log start is the checkpointed one, but at least the first segment's base; past
        the log end (a crash inside truncate_fully_and_start_at) the log restarts there."""
        if not self._segments:
            start_offset = checkpoint_offset or 0
            segment = Segment.create(self.directory, start_offset, self.config.index_interval_bytes)
            fsync_directory(self.directory)
            self._segments.append(segment)
            self._log_start_offset = start_offset
            return
        start_offset = max(checkpoint_offset or 0, self._segments[0].base_offset)
        if start_offset > self.log_end_offset:
            while self._segments:
                self._segments.pop().delete()
            self._segments.append(
                Segment.create(self.directory, start_offset, self.config.index_interval_bytes)
            )
            fsync_directory(self.directory)
            self.epoch_cache.clear_and_persist()
        while self._segments[0].next_offset <= start_offset and len(self._segments) > 1:
            self._segments.pop(0).delete()
        fsync_directory(self.directory)
        self._log_start_offset = start_offset
