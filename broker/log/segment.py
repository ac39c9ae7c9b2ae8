"""One segment of a partition log: a `.log` file of record batches named by its base offset,
its two sparse indexes, and what the log keeps in memory about it.

The active segment remembers the exact position of every batch appended or scanned since it
was opened (`tail_offsets` / `tail_positions`, bounded by TAIL_BATCHES_MAX), so a read near
the log end finds its batch boundaries in memory and costs one os.pread. Reads further back
go through the offset index to a batch at or below the target, walk batch headers from there
(at most about index.interval.bytes), then read the batches.

A segment trusts its caller: PartitionLog validates batches before they reach append(), and
recovery (scan_batches) validates them before they are counted.
"""

from __future__ import annotations

import bisect
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from broker.log.batch import (
    BATCH_HEADER_SIZE_BYTES,
    LAST_OFFSET_DELTA_POSITION,
    LOG_OVERHEAD_BYTES,
    CompressionType,
    RecordBatch,
    batch_size_at,
    iter_records,
)
from broker.log.errors import CorruptRecordError, LogWriteError
from broker.log.index import (
    OFFSET_INDEX_SUFFIX,
    TIME_INDEX_SUFFIX,
    IndexCorruptError,
    OffsetIndex,
    TimeIndex,
)
from kraft.storage.durable_files import flush_file_data, write_all

SEGMENT_SUFFIX = ".log"
SEGMENT_NAME_DIGITS = 20
# Batches whose positions the active segment keeps in memory; the older half is dropped
# when it fills, so memory stays bounded on a long-lived segment of small batches.
TAIL_BATCHES_MAX = 65536
# Bytes read at once while walking batch headers or scanning a segment in recovery.
SCAN_CHUNK_BYTES = 4 * 1024 * 1024
NO_TIMESTAMP = -1


def segment_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:0{SEGMENT_NAME_DIGITS}d}{suffix}"


def parse_segment_base_offset(path: Path) -> int | None:
    """The base offset a `.log` file name carries, or None if it is not a segment name."""
    if not path.name.endswith(SEGMENT_SUFFIX):
        return None
    stem = path.name[: -len(SEGMENT_SUFFIX)]
    if len(stem) != SEGMENT_NAME_DIGITS or not stem.isdigit():
        return None
    return int(stem)


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """What the log needs of a batch header to place it."""

    position: int
    base_offset: int
    last_offset: int
    size_bytes: int


class Segment:
    """A segment file with its indexes; `next_offset` is one past its last record."""

    def __init__(self, directory: Path, base_offset: int, index_interval_bytes: int) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.path = directory / segment_file_name(base_offset, SEGMENT_SUFFIX)
        self.offset_index_path = directory / segment_file_name(base_offset, OFFSET_INDEX_SUFFIX)
        self.time_index_path = directory / segment_file_name(base_offset, TIME_INDEX_SUFFIX)
        self.descriptor = -1
        self.size_bytes = 0
        self.next_offset = base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = base_offset
        self.first_batch_timestamp: int | None = None
        self.bytes_since_index_entry = 0
        self.tail_offsets = array("q")
        self.tail_positions = array("q")
        self.offset_index: OffsetIndex
        self.time_index: TimeIndex

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, base_offset: int, index_interval_bytes: int) -> Segment:
        """A new empty segment; fails if its file exists."""
        segment = cls(directory, base_offset, index_interval_bytes)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL
        segment.descriptor = os.open(segment.path, flags, 0o644)
        segment._open_indexes(fresh=True)
        return segment

    @classmethod
    def open_existing(cls, directory: Path, base_offset: int, index_interval_bytes: int) -> Segment:
        """Opens the file only; the caller then calls load_trusted() or start_recovery()."""
        segment = cls(directory, base_offset, index_interval_bytes)
        segment.descriptor = os.open(segment.path, os.O_RDWR | os.O_APPEND)
        return segment

    def _open_indexes(self, *, fresh: bool) -> None:
        self._close_indexes()
        self.offset_index = OffsetIndex(self.offset_index_path, self.base_offset, truncate=fresh)
        self.time_index = TimeIndex(self.time_index_path, self.base_offset, truncate=fresh)

    def file_size_bytes(self) -> int:
        return os.fstat(self.descriptor).st_size

    def load_trusted(self) -> None:
        """Loads the indexes of a segment known to be intact (flushed, or closed cleanly) and
        walks the headers after the last index entry for its end. Raises IndexCorruptError
        (the caller recovers the segment instead) if an index is missing or malformed."""
        if not self.offset_index_path.exists() or not self.time_index_path.exists():
            raise IndexCorruptError(f"index files of {self.path} are missing")
        self._open_indexes(fresh=False)
        file_size_bytes = self.file_size_bytes()
        self.offset_index.load(file_size_bytes)
        self.time_index.load()
        indexed_offset, position = self.offset_index.last_entry()
        self.size_bytes = position
        self.next_offset = indexed_offset
        if self.time_index.timestamps:
            self.max_timestamp = self.time_index.timestamps[-1]
            self.offset_of_max_timestamp = self.time_index.offsets[-1]
        try:
            for batch in self.walk_batches(position, file_size_bytes):
                if batch.base_offset != self.next_offset:
                    raise IndexCorruptError(f"{self.path} batches are not contiguous")
                self._remember(batch, self.size_bytes)
                self.bytes_since_index_entry += batch.size_bytes
                self.size_bytes += batch.size_bytes
                self.next_offset = batch.next_offset
        except CorruptRecordError as error:
            raise IndexCorruptError(f"{self.path}: {error}") from error
        if self.size_bytes != file_size_bytes:
            raise IndexCorruptError(f"{self.path} does not end on a batch boundary")
        if self.time_index.offsets and self.time_index.offsets[-1] >= self.next_offset:
            raise IndexCorruptError(f"{self.time_index_path} points past its segment")
        if self.size_bytes:
            first = os.pread(self.descriptor, BATCH_HEADER_SIZE_BYTES, 0)
            self.first_batch_timestamp = RecordBatch(first).max_timestamp

    def start_recovery(self) -> None:
        """Drops the index files and in-memory state: recovery re-adds every batch."""
        self._open_indexes(fresh=True)
        self.size_bytes = 0
        self.next_offset = self.base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = self.base_offset
        self.first_batch_timestamp = None
        self.bytes_since_index_entry = 0
        self.tail_offsets = array("q")
        self.tail_positions = array("q")

    def cut_file(self, size_bytes: int) -> None:
        """Recovery cuts a torn or corrupt tail off the file, durably."""
        os.ftruncate(self.descriptor, size_bytes)
        os.fsync(self.descriptor)

    def _remember(self, batch: RecordBatch, position: int) -> None:
        """Bookkeeping of one batch placed at `position` (no index entries)."""
        if batch.max_timestamp > self.max_timestamp:
            self.max_timestamp = batch.max_timestamp
            self.offset_of_max_timestamp = batch.base_offset
        if self.first_batch_timestamp is None:
            self.first_batch_timestamp = batch.max_timestamp
        if len(self.tail_offsets) >= TAIL_BATCHES_MAX:
            del self.tail_offsets[: TAIL_BATCHES_MAX // 2]
            del self.tail_positions[: TAIL_BATCHES_MAX // 2]
        self.tail_offsets.append(batch.base_offset)
        self.tail_positions.append(position)

    # -- appending -------------------------------------------------------------------------

    def append(self, batch: RecordBatch) -> None:
        """Writes one validated batch (offsets assigned) at the end of the segment. Nothing
        stays of a failed write: the file is cut back and LogWriteError raised."""
        assert batch.base_offset == self.next_offset, (
            f"batch at {batch.base_offset} does not continue segment ending at {self.next_offset}"
        )
        position = self.size_bytes
        try:
            write_all(self.descriptor, batch.buffer)
        except OSError as error:
            self._undo_write(position, error)
        self.add_batch(batch, position)

    def add_batch(self, batch: RecordBatch, position: int) -> None:
        """Counts a batch now on disk at `position` (append, or recovery's scan)."""
        assert position == self.size_bytes, "batches are added in file order"
        if self.bytes_since_index_entry > self.index_interval_bytes:
            self.offset_index.append(batch.base_offset, position)
            self._remember(batch, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_index_entry = 0
        else:
            self._remember(batch, position)
        self.bytes_since_index_entry += batch.size_bytes
        self.size_bytes += batch.size_bytes
        self.next_offset = batch.next_offset

    def _undo_write(self, position: int, error: OSError) -> None:
        try:
            os.ftruncate(self.descriptor, position)
        except OSError as truncate_error:
            raise LogWriteError(
                f"append to {self.path} failed ({error}) and cutting it back to byte "
                f"{position} failed too ({truncate_error}); reopen the log to recover"
            ) from error
        raise LogWriteError(f"append to {self.path} failed: {error}") from error

    def on_become_inactive(self) -> None:
        """A newer segment takes appends: index this one's max timestamp (as Kafka does at
        roll, so retention and timestamp lookups see it after restart) and drop its tail."""
        if self.max_timestamp != NO_TIMESTAMP:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self.tail_offsets = array("q")
        self.tail_positions = array("q")

    # -- reading ---------------------------------------------------------------------------

    def walk_batches(self, position: int, end: int) -> Iterator[RecordBatch]:
        """Batch views from `position` to `end`, read in chunks; frames only (the size of
        each batch fits), CorruptRecordError at the first that does not."""
        while position < end:
            chunk = os.pread(self.descriptor, min(SCAN_CHUNK_BYTES, end - position), position)
            offset_in_chunk = 0
            while offset_in_chunk < len(chunk):
                try:
                    size_bytes = batch_size_at(chunk, offset_in_chunk)
                except CorruptRecordError:
                    if len(chunk) < end - position:
                        break  # the batch crosses the chunk end: read on from its start
                    raise
                yield RecordBatch(memoryview(chunk)[offset_in_chunk : offset_in_chunk + size_bytes])
                offset_in_chunk += size_bytes
            if offset_in_chunk == 0:
                # One batch larger than a chunk: read exactly it.
                size_bytes = self._batch_size_on_disk(position)
                if position + size_bytes > end:
                    raise CorruptRecordError(
                        f"batch at byte {position} of {self.path} runs past the segment end"
                    )
                yield RecordBatch(os.pread(self.descriptor, size_bytes, position))
                offset_in_chunk = size_bytes
            position += offset_in_chunk

    def _batch_size_on_disk(self, position: int) -> int:
        prefix = os.pread(self.descriptor, LOG_OVERHEAD_BYTES, position)
        return batch_size_at(prefix, 0, require_whole=False)

    def _headers_from(self, position: int) -> Iterator[BatchHeader]:
        for batch in self.walk_batches(position, self.size_bytes):
            yield BatchHeader(position, batch.base_offset, batch.last_offset, batch.size_bytes)
            position += batch.size_bytes

    def locate(self, offset: int) -> int:
        """The position of the batch holding `offset` (base <= offset <= last), or the segment
        size if `offset` is past its last batch."""
        assert offset >= self.base_offset, f"offset {offset} is below segment {self.path}"
        if offset >= self.next_offset:
            return self.size_bytes
        if self.tail_offsets and offset >= self.tail_offsets[0]:
            index = bisect.bisect_right(self.tail_offsets, offset) - 1
            return self.tail_positions[index]
        _, position = self.offset_index.lookup(offset)
        for header in self._headers_from(position):
            if header.last_offset >= offset:
                return header.position
        raise AssertionError(f"offset {offset} below {self.next_offset} not found in {self.path}")

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from the one holding `offset`, at most max_bytes of them but at
        least one; b"" when `offset` is at or past the segment's end."""
        position = self.locate(offset)
        if position >= self.size_bytes:
            return b""
        if self.tail_positions and position >= self.tail_positions[0]:
            end = self._tail_read_end(position, max_bytes)
            data = os.pread(self.descriptor, end - position, position)
            assert len(data) == end - position, f"short read of {self.path} at {position}"
            return data
        return self._read_cold(position, max_bytes)

    def _tail_read_end(self, position: int, max_bytes: int) -> int:
        """The end of the read from a batch boundary in the tail, from memory alone."""
        limit = position + max_bytes
        if self.size_bytes <= limit:
            return self.size_bytes
        index = bisect.bisect_right(self.tail_positions, limit) - 1
        if self.tail_positions[index] > position:
            return self.tail_positions[index]
        following = bisect.bisect_right(self.tail_positions, position)
        has_following = following < len(self.tail_positions)
        return self.tail_positions[following] if has_following else self.size_bytes

    def _read_cold(self, position: int, max_bytes: int) -> bytes:
        want = min(max(max_bytes, BATCH_HEADER_SIZE_BYTES), self.size_bytes - position)
        data = os.pread(self.descriptor, want, position)
        end = 0
        while end + LOG_OVERHEAD_BYTES <= len(data):
            try:
                size_bytes = batch_size_at(data, end)
            except CorruptRecordError:
                break  # the next batch does not fit in what was read
            end += size_bytes
        if end == 0:  # the first batch alone is larger than max_bytes: return it whole
            size_bytes = self._batch_size_on_disk(position)
            data = os.pread(self.descriptor, size_bytes, position)
            assert len(data) == size_bytes, f"short read of {self.path} at {position}"
            return data
        return data[:end]

    def offset_for_timestamp(self, timestamp: int) -> int | None:
        """The offset of the first record with a timestamp >= `timestamp` (for a compressed
        batch: its base offset), or None if the segment has none."""
        if self.max_timestamp < timestamp or self.size_bytes == 0:
            return None
        position = self.locate(self.time_index.lookup(timestamp))
        for batch in self.walk_batches(position, self.size_bytes):
            if batch.max_timestamp < timestamp:
                continue
            if batch.compression != CompressionType.NONE:
                return batch.base_offset
            for record in iter_records(batch):
                if record.timestamp_ms >= timestamp:
                    return record.offset
        return None

    def last_offset_delta_at(self, position: int) -> int:
        data = os.pread(self.descriptor, LAST_OFFSET_DELTA_POSITION + 4, position)
        return int.from_bytes(data[LAST_OFFSET_DELTA_POSITION:], "big", signed=True)

    # -- truncation, flush, close -----------------------------------------------------------

    def truncate_to(self, offset: int) -> int:
        """Drops every batch holding an offset >= `offset`, so a batch straddling it goes
        whole (as Kafka's LogSegment.truncateTo). Returns the new next offset."""
        position = self.locate(max(offset, self.base_offset))
        if position >= self.size_bytes:
            return self.next_offset
        prefix = os.pread(self.descriptor, LOG_OVERHEAD_BYTES, position)
        cut_offset = RecordBatch(prefix).base_offset
        os.ftruncate(self.descriptor, position)
        self._reload_after_cut(position, cut_offset)
        return self.next_offset

    def _reload_after_cut(self, position: int, cut_offset: int) -> None:
        """Rebuilds the in-memory state after the file was cut at `position`, where the
        batch starting at `cut_offset` began."""
        self.offset_index.truncate_to(cut_offset)
        self.time_index.truncate_to(cut_offset)
        indexed_offset, indexed_position = self.offset_index.last_entry()
        self.size_bytes = indexed_position
        self.next_offset = indexed_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = self.base_offset
        self.first_batch_timestamp = None
        if self.time_index.timestamps:
            self.max_timestamp = self.time_index.timestamps[-1]
            self.offset_of_max_timestamp = self.time_index.offsets[-1]
        self.tail_offsets = array("q")
        self.tail_positions = array("q")
        self.bytes_since_index_entry = 0
        for batch in self.walk_batches(indexed_position, position):
            self._remember(batch, self.size_bytes)
            self.bytes_since_index_entry += batch.size_bytes
            self.size_bytes += batch.size_bytes
            self.next_offset = batch.next_offset
        if position > 0:
            first = os.pread(self.descriptor, BATCH_HEADER_SIZE_BYTES, 0)
            self.first_batch_timestamp = RecordBatch(first).max_timestamp
        assert self.size_bytes == position, f"{self.path} cut off a batch boundary"

    def flush(self) -> None:
        flush_file_data(self.descriptor)
        self.offset_index.flush()
        self.time_index.flush()

    def close(self) -> None:
        self._close_indexes()
        os.close(self.descriptor)

    def _close_indexes(self) -> None:
        # A segment opened for recovery may fail before its indexes exist.
        if hasattr(self, "offset_index"):
            self.offset_index.close()
            del self.offset_index
        if hasattr(self, "time_index"):
            self.time_index.close()
            del self.time_index

    def delete(self) -> None:
        """Closes and unlinks the segment and its indexes (the caller fsyncs the directory)."""
        self.close()
        for path in (self.path, self.offset_index_path, self.time_index_path):
            path.unlink(missing_ok=True)
