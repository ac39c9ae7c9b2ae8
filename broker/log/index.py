"""The two sparse indexes of a segment, Kafka's `.index` and `.timeindex`.

Offset index: entries of (relative offset int32, position int32), 8 bytes each, big-endian;
an entry says that the batch starting at base offset `segment base + relative offset` starts
at byte `position` of the segment file. (Kafka indexes a batch's last offset instead; indexing
the base offset makes every entry an exact batch start, which the read path relies on.)

Time index: entries of (timestamp int64, relative offset int32), 12 bytes each: the largest
timestamp seen in the segment up to and including the batch at that offset.

Both are sparse: the segment adds an entry once `index.interval.bytes` have been appended
since the last one. Entries live in memory (arrays, bisected on lookup) and are appended to
their file as they are added; the files are only trusted after a clean shutdown, otherwise
recovery rebuilds them from the segment (see log.py), so they are fsynced on flush and close
only. Loading checks their shape and order; a file that fails raises IndexCorruptError and
the caller rebuilds it.
"""

from __future__ import annotations

import bisect
import os
import struct
from array import array
from pathlib import Path

from kraft.storage.durable_files import write_all

OFFSET_INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
OFFSET_INDEX_ENTRY_SIZE_BYTES = 8
TIME_INDEX_ENTRY_SIZE_BYTES = 12
RELATIVE_OFFSET_MAX = 2**31 - 1

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")


class IndexCorruptError(Exception):
    """An index file does not have the shape or order of an index; rebuild it."""


class _IndexFile:
    """An append-only file descriptor shared by both index kinds."""

    def __init__(self, path: Path, *, truncate: bool) -> None:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | (os.O_TRUNC if truncate else 0)
        self.path = path
        self.descriptor = os.open(path, flags, 0o644)

    def append(self, data: bytes) -> None:
        write_all(self.descriptor, data)

    def cut_to(self, size_bytes: int) -> None:
        os.ftruncate(self.descriptor, size_bytes)

    def flush(self) -> None:
        os.fsync(self.descriptor)

    def close(self) -> None:
        os.close(self.descriptor)


class OffsetIndex:
    """Base offsets of sparse batches -> their positions in the segment file."""

    def __init__(self, path: Path, base_offset: int, *, truncate: bool = False) -> None:
        self.base_offset = base_offset
        self.offsets = array("q")
        self.positions = array("q")
        self._file = _IndexFile(path, truncate=truncate)

    @property
    def path(self) -> Path:
        return self._file.path

    def load(self, segment_size_bytes: int) -> None:
        """Reads the file into memory; IndexCorruptError unless offsets and positions rise
        strictly and every position lies inside the segment."""
        data = os.pread(self._file.descriptor, os.fstat(self._file.descriptor).st_size, 0)
        if len(data) % OFFSET_INDEX_ENTRY_SIZE_BYTES:
            raise IndexCorruptError(f"{self.path} has {len(data)} bytes, not whole entries")
        previous_relative, previous_position = -1, -1
        for relative_offset, position in _OFFSET_ENTRY.iter_unpack(data):
            if relative_offset <= previous_relative or position <= previous_position:
                raise IndexCorruptError(f"{self.path} entries do not rise")
            if position >= segment_size_bytes:
                raise IndexCorruptError(
                    f"{self.path} points at byte {position}, past the segment's "
                    f"{segment_size_bytes} bytes"
                )
            self.offsets.append(self.base_offset + relative_offset)
            self.positions.append(position)
            previous_relative, previous_position = relative_offset, position

    def append(self, offset: int, position: int) -> None:
        relative_offset = offset - self.base_offset
        assert 0 <= relative_offset <= RELATIVE_OFFSET_MAX, f"offset {offset} not relative"
        assert not self.offsets or offset > self.offsets[-1], "index offsets rise"
        assert not self.positions or position > self.positions[-1], "index positions rise"
        self._file.append(_OFFSET_ENTRY.pack(relative_offset, position))
        self.offsets.append(offset)
        self.positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """(base offset, position) of the last indexed batch at or below `offset`, or the
        segment start (base offset, 0) when there is none."""
        index = bisect.bisect_right(self.offsets, offset) - 1
        if index < 0:
            return self.base_offset, 0
        return self.offsets[index], self.positions[index]

    def last_entry(self) -> tuple[int, int]:
        """(base offset, position) of the last indexed batch, or (base offset, 0)."""
        if not self.offsets:
            return self.base_offset, 0
        return self.offsets[-1], self.positions[-1]

    def truncate_to(self, offset: int) -> None:
        """Drops entries at or above `offset`."""
        keep = bisect.bisect_left(self.offsets, offset)
        del self.offsets[keep:]
        del self.positions[keep:]
        self._file.cut_to(keep * OFFSET_INDEX_ENTRY_SIZE_BYTES)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TimeIndex:
    """Rising max timestamps -> the offset of the batch where each was reached."""

    def __init__(self, path: Path, base_offset: int, *, truncate: bool = False) -> None:
        self.base_offset = base_offset
        self.timestamps = array("q")
        self.offsets = array("q")
        self._file = _IndexFile(path, truncate=truncate)

    @property
    def path(self) -> Path:
        return self._file.path

    @property
    def last_timestamp(self) -> int | None:
        return self.timestamps[-1] if self.timestamps else None

    def load(self) -> None:
        data = os.pread(self._file.descriptor, os.fstat(self._file.descriptor).st_size, 0)
        if len(data) % TIME_INDEX_ENTRY_SIZE_BYTES:
            raise IndexCorruptError(f"{self.path} has {len(data)} bytes, not whole entries")
        for timestamp, relative_offset in _TIME_ENTRY.iter_unpack(data):
            if relative_offset < 0:
                raise IndexCorruptError(f"{self.path} has relative offset {relative_offset}")
            if self.timestamps and (
                timestamp <= self.timestamps[-1]
                or self.base_offset + relative_offset < self.offsets[-1]
            ):
                raise IndexCorruptError(f"{self.path} entries do not rise")
            self.timestamps.append(timestamp)
            self.offsets.append(self.base_offset + relative_offset)

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Adds (timestamp, offset) if the timestamp passes the last entry's."""
        if self.timestamps and timestamp <= self.timestamps[-1]:
            return
        relative_offset = offset - self.base_offset
        assert 0 <= relative_offset <= RELATIVE_OFFSET_MAX, f"offset {offset} not relative"
        self._file.append(_TIME_ENTRY.pack(timestamp, relative_offset))
        self.timestamps.append(timestamp)
        self.offsets.append(offset)

    def lookup(self, timestamp: int) -> int:
        """An offset at or below the first record with a timestamp >= `timestamp`: the offset
        of the last entry below it (all records up to there are older), else the base."""
        index = bisect.bisect_left(self.timestamps, timestamp) - 1
        return self.offsets[index] if index >= 0 else self.base_offset

    def truncate_to(self, offset: int) -> None:
        keep = bisect.bisect_left(self.offsets, offset)
        del self.timestamps[keep:]
        del self.offsets[keep:]
        self._file.cut_to(keep * TIME_INDEX_ENTRY_SIZE_BYTES)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
