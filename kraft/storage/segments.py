"""The file-backed LogStore of the metadata log directory: segment files, their in-memory
batch index, and recovery at open.

A segment file is named by the offset of its first entry (`00000000000000000000.log`) and
holds batches (kraft.storage.batch_format) back to back. Each append writes its entries as
one batch with one write and one fdatasync (group commit); the last segment takes appends and
a new one is rolled once it would pass `segment_max_bytes`. An index of every batch's base
offset and file position, built at open, lets read() seek straight to an offset.

The log start offset (moved by delete_before after a snapshot) lives in a small checkpoint
file replaced atomically, so it survives restart even when it falls inside a segment.

Recovery at open checks the CRC and structure of every batch. A bad batch in the last segment
with no intact batch after it is a torn tail of an append that never returned: it is cut away
and described in a RecoveryReport for the shell to log. Any other damage is committed data
gone bad and raises CorruptLogError naming the file and position.
"""

from __future__ import annotations

import bisect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from kraft.raft.types import Entry
from kraft.storage.batch_format import (
    BATCH_HEADER_SIZE_BYTES,
    BATCH_MAGIC,
    BatchFormatError,
    DecodedEntries,
    encode_batch,
    read_batch,
    split_into_batches,
)
from kraft.storage.durable_files import (
    TEMPORARY_SUFFIX,
    flush_file_data,
    fsync_directory,
    temporary_path_for,
    write_all,
    write_file_atomically,
)
from kraft.storage.errors import CorruptLogError, LogWriteError
from kraft.storage.log_rules import check_appendable, check_readable

SEGMENT_MAX_BYTES = 8 * 1024 * 1024
SEGMENT_SUFFIX = ".log"
SEGMENT_NAME_DIGITS = 20
LOG_START_CHECKPOINT_NAME = "log-start-offset.checkpoint"
LOG_START_CHECKPOINT_VERSION = 1
# A from_offset past every batch: the decode checks each entry and builds none (recovery).
CHECK_WITHOUT_BUILDING = 2**63


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """A torn tail cut away at open: which segment, from which byte, how many bytes, why."""

    segment_path: Path
    position: int
    dropped_size_bytes: int
    reason: str

    def describe(self) -> str:
        return (
            f"truncated torn tail of {self.segment_path} at byte {self.position}: "
            f"dropped {self.dropped_size_bytes} bytes ({self.reason})"
        )


def segment_path_for(directory: Path, base_offset: int) -> Path:
    return directory / f"{base_offset:0{SEGMENT_NAME_DIGITS}d}{SEGMENT_SUFFIX}"


def parse_segment_base_offset(path: Path) -> int | None:
    """The base offset a segment file name carries, or None if it is not a segment name."""
    stem = path.name[: -len(SEGMENT_SUFFIX)]
    if not path.name.endswith(SEGMENT_SUFFIX) or len(stem) != SEGMENT_NAME_DIGITS:
        return None
    return int(stem) if stem.isdigit() else None


@dataclass(slots=True)
class _Segment:
    """One open segment file and the index of its batches (positions ascending)."""

    path: Path
    base_offset: int
    descriptor: int
    size_bytes: int = 0
    batch_base_offsets: list[int] = field(default_factory=list)
    batch_positions: list[int] = field(default_factory=list)
    end_offset: int = 0

    def batch_index_for(self, offset: int) -> int:
        assert self.batch_base_offsets, f"no batch in empty segment {self.path}"
        index = bisect.bisect_right(self.batch_base_offsets, offset) - 1
        assert index >= 0, f"offset {offset} is below segment {self.path}"
        return index

    def batch_end_position(self, index: int) -> int:
        is_last_batch = index + 1 == len(self.batch_positions)
        return self.size_bytes if is_last_batch else self.batch_positions[index + 1]

    def read_batch_entries(
        self,
        index: int,
        *,
        from_offset: int = 0,
        max_bytes: int | None = None,
        at_least_one: bool = True,
    ) -> DecodedEntries:
        """Entries of batch `index` (see decode_payload), CRC and structure checked again on
        the way out."""
        position = self.batch_positions[index]
        size_bytes = self.batch_end_position(index) - position
        data = os.pread(self.descriptor, size_bytes, position)
        try:
            if len(data) != size_bytes:
                raise BatchFormatError(f"read {len(data)} of {size_bytes} bytes")
            _, decoded = read_batch(
                data,
                0,
                self.batch_base_offsets[index],
                from_offset=from_offset,
                max_bytes=max_bytes,
                at_least_one=at_least_one,
            )
        except BatchFormatError as error:
            raise CorruptLogError(self.path, position, error.reason) from error
        return decoded

    def record_batch(self, base_offset: int, count: int, size_bytes: int) -> None:
        assert base_offset == self.end_offset, "batches of a segment are contiguous"
        self.batch_base_offsets.append(base_offset)
        self.batch_positions.append(self.size_bytes)
        self.size_bytes += size_bytes
        self.end_offset = base_offset + count

    def forget_batches_from(self, index: int) -> None:
        """Drops batches index.. from the index; the caller has cut the file there."""
        if index < len(self.batch_positions):
            self.size_bytes = self.batch_positions[index]
            self.end_offset = self.batch_base_offsets[index]
            del self.batch_positions[index:]
            del self.batch_base_offsets[index:]


@dataclass(slots=True)
class _ScanResult:
    """What recovery learned of one segment's bytes."""

    batch_base_offsets: list[int] = field(default_factory=list)
    batch_positions: list[int] = field(default_factory=list)
    batch_counts: list[int] = field(default_factory=list)
    valid_size_bytes: int = 0
    last_epoch: int | None = None
    failure_reason: str | None = None  # set when a bad batch starts at valid_size_bytes


def scan_segment(data: bytes, base_offset: int, previous_epoch: int | None) -> _ScanResult:
    """Checks every batch of a segment's bytes in order and stops at the first bad one."""
    result = _ScanResult(last_epoch=previous_epoch)
    position = 0
    expected_offset = base_offset
    while position < len(data):
        try:
            header, decoded = read_batch(
                data, position, expected_offset, from_offset=CHECK_WITHOUT_BUILDING
            )
            if result.last_epoch is not None and decoded.first_epoch < result.last_epoch:
                raise BatchFormatError(
                    f"epoch goes back from {result.last_epoch} to {decoded.first_epoch}"
                )
        except BatchFormatError as error:
            result.failure_reason = error.reason
            break
        result.batch_base_offsets.append(header.base_offset)
        result.batch_positions.append(position)
        result.batch_counts.append(header.count)
        result.last_epoch = decoded.last_epoch
        position += header.total_size_bytes
        expected_offset = header.end_offset
        result.valid_size_bytes = position
    return result


def find_intact_batch_after(data: bytes, position: int) -> int | None:
    """The position of a CRC-valid batch starting after `position`, if there is one: a bad
    batch followed by a good one is damage in the middle, not a torn tail."""
    candidate = data.find(BATCH_MAGIC, position + 1)
    while candidate != -1:
        try:
            read_batch(data, candidate, from_offset=CHECK_WITHOUT_BUILDING)
            return candidate
        except BatchFormatError:
            candidate = data.find(BATCH_MAGIC, candidate + 1)
    return None


class FileLogStore:
    """LogStore over segment files in `directory` (created if missing); recovers at open.

    `recovery_reports` lists the torn tails cut away at open, for the shell to log. Not
    thread-safe: one owner (the shell's storage thread) calls it.
    """

    def __init__(self, directory: Path, *, segment_max_bytes: int = SEGMENT_MAX_BYTES) -> None:
        assert segment_max_bytes > BATCH_HEADER_SIZE_BYTES, "segments must hold a batch"
        self._directory = directory
        self._segment_max_bytes = segment_max_bytes
        self._segments: list[_Segment] = []
        self._start_offset = 0
        self._last_epoch: int | None = None
        self._is_closed = False
        self._is_failed = False  # an I/O error left the files in an unknown state
        self.recovery_reports: list[RecoveryReport] = []
        if not directory.exists():
            directory.mkdir(parents=True)
            fsync_directory(directory.parent)
        try:
            self._recover()
        except BaseException:
            self.close()  # the descriptors of the segments opened before the error
            raise

    # -- LogStore -------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    def start_offset(self) -> int:
        return self._start_offset

    def end_offset(self) -> int:
        return self._active_segment.end_offset

    def append(self, entries: list[Entry]) -> None:
        self._check_usable()
        if not entries:
            return
        check_appendable(entries, self.end_offset(), self._last_epoch)
        groups = split_into_batches(entries)
        batches = [encode_batch(group) for group in groups]
        data = batches[0] if len(batches) == 1 else b"".join(batches)
        self._maybe_roll(len(data))
        segment = self._active_segment
        position = segment.size_bytes
        try:
            write_all(segment.descriptor, data)
            flush_file_data(segment.descriptor)
        except OSError as error:
            self._undo_partial_append(segment, position, error)
        for group, batch in zip(groups, batches, strict=True):
            segment.record_batch(group[0].offset, len(group), len(batch))
        self._last_epoch = entries[-1].epoch

    def truncate(self, end_offset: int) -> None:
        self._check_usable()
        assert end_offset >= self._start_offset, (
            f"truncate to {end_offset} below the log start offset {self._start_offset}"
        )
        if end_offset >= self.end_offset():
            return
        try:
            while len(self._segments) > 1 and self._segments[-1].base_offset >= end_offset:
                self._remove_segment(self._segments.pop())
            self._truncate_segment(self._active_segment, end_offset)
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(f"truncate of {self._directory} failed: {error}") from error
        self._last_epoch = self._read_last_epoch()

    def delete_before(self, start_offset: int) -> None:
        self._check_usable()
        if start_offset <= self._start_offset:
            return
        try:
            self._write_log_start_checkpoint(start_offset)
            self._start_offset = start_offset
            self._remove_segments_below(start_offset)
        except OSError as error:
            self._is_failed = True
            raise LogWriteError(f"delete_before in {self._directory} failed: {error}") from error

    def read(self, start: int, max_bytes: int | None = None) -> list[Entry]:
        self._check_usable()
        check_readable(start, self._start_offset, self.end_offset())
        result: list[Entry] = []
        if start == self.end_offset():
            return result
        total_size_bytes = 0
        segment_index = (
            bisect.bisect_right(self._segments, start, key=lambda segment: segment.base_offset) - 1
        )
        batch_index = self._segments[segment_index].batch_index_for(start)
        for segment in self._segments[segment_index:]:
            for index in range(batch_index, len(segment.batch_positions)):
                decoded = segment.read_batch_entries(
                    index,
                    from_offset=start,
                    max_bytes=None if max_bytes is None else max_bytes - total_size_bytes,
                    at_least_one=not result,
                )
                result.extend(decoded.entries)
                total_size_bytes += decoded.size_bytes
                if decoded.is_cut_short:
                    return result
            batch_index = 0
        return result

    def close(self) -> None:
        if self._is_closed:
            return
        self._is_closed = True
        for segment in self._segments:
            os.close(segment.descriptor)

    # -- appends and truncation -----------------------------------------------------------

    @property
    def _active_segment(self) -> _Segment:
        assert self._segments, "the log always has an active segment"
        return self._segments[-1]

    def _check_usable(self) -> None:
        assert not self._is_closed, f"log {self._directory} is closed"
        if self._is_failed:
            raise LogWriteError(
                f"log {self._directory} failed an earlier write; reopen it to recover"
            )

    def _maybe_roll(self, append_size_bytes: int) -> None:
        active = self._active_segment
        if active.size_bytes == 0:
            return
        if active.size_bytes + append_size_bytes <= self._segment_max_bytes:
            return
        try:
            self._segments.append(self._create_segment(active.end_offset))
        except OSError as error:
            raise LogWriteError(
                f"rolling a segment in {self._directory} failed: {error}"
            ) from error

    def _create_segment(self, base_offset: int) -> _Segment:
        path = segment_path_for(self._directory, base_offset)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL
        descriptor = os.open(path, flags, 0o644)
        fsync_directory(self._directory)
        return _Segment(path, base_offset, descriptor, end_offset=base_offset)

    def _undo_partial_append(self, segment: _Segment, position: int, error: OSError) -> None:
        """Cuts a failed append back off so that nothing of it stays; raises LogWriteError."""
        try:
            os.ftruncate(segment.descriptor, position)
            flush_file_data(segment.descriptor)
        except OSError:
            self._is_failed = True
        raise LogWriteError(f"append to {segment.path} failed: {error}") from error

    def _remove_segment(self, segment: _Segment) -> None:
        os.close(segment.descriptor)
        segment.path.unlink()
        # One directory fsync per removal keeps the survivors a contiguous run of segments
        # whatever subset of the unlinks a crash keeps.
        fsync_directory(self._directory)

    def _truncate_segment(self, segment: _Segment, end_offset: int) -> None:
        if end_offset >= segment.end_offset:
            return
        if end_offset <= segment.base_offset:
            os.ftruncate(segment.descriptor, 0)
            flush_file_data(segment.descriptor)
            segment.forget_batches_from(0)
            return
        index = segment.batch_index_for(end_offset)
        if segment.batch_base_offsets[index] == end_offset:
            os.ftruncate(segment.descriptor, segment.batch_positions[index])
            flush_file_data(segment.descriptor)
            segment.forget_batches_from(index)
            return
        self._rewrite_cut_batch(segment, index, end_offset)

    def _rewrite_cut_batch(self, segment: _Segment, index: int, end_offset: int) -> None:
        """The cut falls inside batch `index`: its kept entries may be committed, so the
        segment is rewritten beside the original and renamed over it, never cut in place
        (a crash between a cut and a re-append would lose them). Truncation is rare (a
        follower dropping a divergent suffix), so copying one segment is affordable."""
        kept_count = end_offset - segment.batch_base_offsets[index]
        kept = segment.read_batch_entries(index).entries[:kept_count]
        assert kept, "a cut at a batch boundary takes the ftruncate path"
        position = segment.batch_positions[index]
        prefix = os.pread(segment.descriptor, position, 0)
        assert len(prefix) == position, f"short read of {segment.path}"
        batch = encode_batch(kept)
        temporary_path = temporary_path_for(segment.path)
        descriptor = os.open(temporary_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(descriptor, prefix)
            write_all(descriptor, batch)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary_path, segment.path)
        fsync_directory(self._directory)
        os.close(segment.descriptor)
        segment.descriptor = os.open(segment.path, os.O_RDWR | os.O_APPEND)
        segment.forget_batches_from(index)
        segment.record_batch(kept[0].offset, len(kept), len(batch))

    def _read_last_epoch(self) -> int | None:
        for segment in reversed(self._segments):
            if segment.batch_positions:
                last_index = len(segment.batch_positions) - 1
                return segment.read_batch_entries(last_index).last_epoch
        return None

    # -- log start offset -----------------------------------------------------------------

    @property
    def _checkpoint_path(self) -> Path:
        return self._directory / LOG_START_CHECKPOINT_NAME

    def _write_log_start_checkpoint(self, start_offset: int) -> None:
        content = {"version": LOG_START_CHECKPOINT_VERSION, "log_start_offset": start_offset}
        write_file_atomically(self._checkpoint_path, json.dumps(content).encode())

    def _read_log_start_checkpoint(self) -> int | None:
        path = self._checkpoint_path
        if not path.exists():
            return None
        try:
            content = json.loads(path.read_bytes())
            version = content["version"]
            start_offset = content["log_start_offset"]
        except (ValueError, KeyError, TypeError) as error:
            raise CorruptLogError(path, 0, f"unreadable checkpoint: {error}") from error
        if version != LOG_START_CHECKPOINT_VERSION:
            raise CorruptLogError(path, 0, f"unsupported checkpoint version {version!r}")
        if not isinstance(start_offset, int) or start_offset < 0:
            raise CorruptLogError(path, 0, f"bad log start offset {start_offset!r}")
        return start_offset

    def _remove_segments_below(self, start_offset: int) -> None:
        """Removes every segment whose entries all lie below start_offset; when that is all
        of them, the log restarts empty at start_offset (a follower installed a snapshot
        past its log end)."""
        if start_offset >= self.end_offset():
            while self._segments:
                self._remove_segment(self._segments.pop())
            self._segments.append(self._create_segment(start_offset))
            self._last_epoch = None
            return
        while self._segments[0].end_offset <= start_offset:
            self._remove_segment(self._segments.pop(0))

    # -- recovery -------------------------------------------------------------------------

    def _recover(self) -> None:
        # A segment rewrite or checkpoint that never got renamed is not data. Other stores
        # may share the directory, so only our own temporaries go.
        leftovers = [*self._directory.glob(f"*{SEGMENT_SUFFIX}{TEMPORARY_SUFFIX}")]
        leftovers.append(temporary_path_for(self._checkpoint_path))
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        checkpoint_start_offset = self._read_log_start_checkpoint()
        paths = self._segment_paths()
        previous_epoch: int | None = None
        expected_base_offset: int | None = None
        for index, (base_offset, path) in enumerate(paths):
            if expected_base_offset is not None and base_offset != expected_base_offset:
                raise CorruptLogError(
                    path,
                    0,
                    f"segment starts at offset {base_offset}, "
                    f"but the previous one ends at {expected_base_offset}",
                )
            is_last = index == len(paths) - 1
            segment = self._open_segment(path, base_offset, previous_epoch, is_last)
            self._segments.append(segment)
            previous_epoch = self._last_epoch
            expected_base_offset = segment.end_offset
        self._start_offset = checkpoint_start_offset or 0
        if self._segments:
            self._start_offset = max(self._start_offset, self._segments[0].base_offset)
            self._remove_segments_below(self._start_offset)
        else:
            self._segments.append(self._create_segment(self._start_offset))

    def _segment_paths(self) -> list[tuple[int, Path]]:
        found: list[tuple[int, Path]] = []
        for path in self._directory.iterdir():
            base_offset = parse_segment_base_offset(path)
            if base_offset is not None:
                found.append((base_offset, path))
        return sorted(found)

    def _open_segment(
        self, path: Path, base_offset: int, previous_epoch: int | None, is_last: bool
    ) -> _Segment:
        data = path.read_bytes()
        scan = scan_segment(data, base_offset, previous_epoch)
        if scan.failure_reason is not None:
            position = scan.valid_size_bytes
            if not is_last:
                raise CorruptLogError(path, position, scan.failure_reason)
            intact_position = find_intact_batch_after(data, position)
            if intact_position is not None:
                raise CorruptLogError(
                    path,
                    position,
                    f"{scan.failure_reason}, yet an intact batch follows at byte {intact_position}",
                )
            self._cut_torn_tail(path, position, len(data) - position, scan.failure_reason)
        descriptor = os.open(path, os.O_RDWR | os.O_APPEND)
        segment = _Segment(path, base_offset, descriptor, end_offset=base_offset)
        end_positions = [*scan.batch_positions[1:], scan.valid_size_bytes]
        if not scan.batch_positions:
            end_positions = []
        for batch_base_offset, count, end_position in zip(
            scan.batch_base_offsets, scan.batch_counts, end_positions, strict=True
        ):
            segment.record_batch(batch_base_offset, count, end_position - segment.size_bytes)
        self._last_epoch = scan.last_epoch
        return segment

    def _cut_torn_tail(
        self, path: Path, position: int, dropped_size_bytes: int, reason: str
    ) -> None:
        descriptor = os.open(path, os.O_RDWR)
        try:
            os.ftruncate(descriptor, position)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        self.recovery_reports.append(RecoveryReport(path, position, dropped_size_bytes, reason))
