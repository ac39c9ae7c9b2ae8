"""The on-disk format of one batch of the metadata log, and its checks.

Every `LogStore.append(entries)` becomes one batch (or a few, past MAX_BATCH_PAYLOAD_BYTES),
written with one write and one fsync. Layout, big-endian:

    magic        4 bytes   b"KRLB"
    version      uint8     1
    crc          uint32    zlib.crc32 of everything after it: the rest of the header and the
                           payload (the `crc32c` package is not installed; zlib's CRC-32 is in
                           the standard library and runs at memory speed)
    base_offset  int64     offset of the first entry
    count        uint32    number of entries, at least 1
    payload_len  uint32    bytes of payload that follow
    payload      count x (offset int64, epoch int64, kind uint8, data_len uint32, data bytes)

Each entry repeats its offset so that a reader checks contiguity in a second place. The
functions here are pure: they take bytes and return entries or raise BatchFormatError, and the
segment code decides whether a bad batch is a torn tail or corruption.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from kraft.raft.types import Entry, EntryKind
from kraft.storage.errors import EntryTooLargeError

BATCH_MAGIC = b"KRLB"
BATCH_FORMAT_VERSION = 1
# magic, version, crc, base_offset, count, payload_length
BATCH_HEADER = struct.Struct(">4sBIqII")
BATCH_HEADER_SIZE_BYTES = BATCH_HEADER.size
# The CRC covers the header from base_offset on, so a flipped bit there is caught too.
CRC_COVERED_HEADER_START = 9
# offset, epoch, kind, data_length
ENTRY_HEADER = struct.Struct(">qqBI")
ENTRY_HEADER_SIZE_BYTES = ENTRY_HEADER.size
# A batch payload larger than this is never written, so a header claiming more is corrupt.
# An append larger than this is split into several batches under one fsync.
MAX_BATCH_PAYLOAD_BYTES = 64 * 1024 * 1024
_VALID_KINDS = frozenset(int(kind) for kind in EntryKind)


class BatchFormatError(Exception):
    """A batch failed a check; `reason` says which. Internal: segments.py turns it into a
    truncated tail (RecoveryReport) or a CorruptLogError."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BatchHeader:
    base_offset: int
    count: int
    payload_size_bytes: int
    crc: int

    @property
    def total_size_bytes(self) -> int:
        return BATCH_HEADER_SIZE_BYTES + self.payload_size_bytes

    @property
    def end_offset(self) -> int:
        return self.base_offset + self.count


def entry_size_bytes(entry: Entry) -> int:
    """What an entry costs against a read's max_bytes: its stored size in a payload."""
    return ENTRY_HEADER_SIZE_BYTES + len(entry.data)


def encode_payload(entries: Sequence[Entry]) -> bytes:
    pack = ENTRY_HEADER.pack
    parts: list[bytes] = []
    append = parts.append
    for entry in entries:
        append(pack(entry.offset, entry.epoch, entry.kind, len(entry.data)))
        append(entry.data)
    return b"".join(parts)


def encode_batch(entries: Sequence[Entry]) -> bytes:
    """One batch holding `entries` (contiguous, non-empty), header and payload."""
    assert entries, "a batch holds at least one entry"
    payload = encode_payload(entries)
    assert len(payload) <= MAX_BATCH_PAYLOAD_BYTES, "callers split appends into batches"
    covered_header = struct.pack(">qII", entries[0].offset, len(entries), len(payload))
    crc = zlib.crc32(payload, zlib.crc32(covered_header))
    prefix = struct.pack(">4sBI", BATCH_MAGIC, BATCH_FORMAT_VERSION, crc)
    return b"".join((prefix, covered_header, payload))


def split_into_batches(entries: Sequence[Entry]) -> list[Sequence[Entry]]:
    """Groups entries so that no batch payload passes MAX_BATCH_PAYLOAD_BYTES; usually one.
    Raises EntryTooLargeError, before anything is written, for an entry that fits no batch."""
    groups: list[Sequence[Entry]] = []
    group_start = 0
    group_size_bytes = 0
    for index, entry in enumerate(entries):
        size_bytes = ENTRY_HEADER_SIZE_BYTES + len(entry.data)
        if size_bytes > MAX_BATCH_PAYLOAD_BYTES:
            raise EntryTooLargeError(
                f"entry {entry.offset} of {len(entry.data)} bytes is larger than a batch "
                f"may be ({MAX_BATCH_PAYLOAD_BYTES} bytes)"
            )
        if group_size_bytes + size_bytes > MAX_BATCH_PAYLOAD_BYTES and index > group_start:
            groups.append(entries[group_start:index])
            group_start = index
            group_size_bytes = 0
        group_size_bytes += size_bytes
    if group_start < len(entries):
        groups.append(entries[group_start:])
    return groups


def parse_header(data: bytes | memoryview, position: int) -> BatchHeader:
    """Reads the header at `position` and checks what can be checked without the payload."""
    available_bytes = len(data) - position
    if available_bytes < BATCH_HEADER_SIZE_BYTES:
        raise BatchFormatError(
            f"partial header: {available_bytes} of {BATCH_HEADER_SIZE_BYTES} bytes"
        )
    magic, version, crc, base_offset, count, payload_size_bytes = BATCH_HEADER.unpack_from(
        data, position
    )
    if magic != BATCH_MAGIC:
        raise BatchFormatError(f"bad magic {bytes(magic)!r}")
    if version != BATCH_FORMAT_VERSION:
        raise BatchFormatError(f"unsupported batch version {version}")
    if payload_size_bytes > MAX_BATCH_PAYLOAD_BYTES:
        raise BatchFormatError(
            f"payload length {payload_size_bytes} exceeds {MAX_BATCH_PAYLOAD_BYTES}"
        )
    return BatchHeader(base_offset, count, payload_size_bytes, crc)


def check_crc(data: bytes | memoryview, position: int, header: BatchHeader) -> None:
    covered_start = position + CRC_COVERED_HEADER_START
    covered_end = position + header.total_size_bytes
    actual_crc = zlib.crc32(memoryview(data)[covered_start:covered_end])
    if actual_crc != header.crc:
        raise BatchFormatError(
            f"CRC mismatch: stored {header.crc:#010x}, actual {actual_crc:#010x}"
        )


@dataclass(slots=True)
class DecodedEntries:
    """What a decode of one batch took out of it."""

    entries: list[Entry]
    size_bytes: int  # entry_size_bytes summed over `entries`
    is_cut_short: bool  # stopped at max_bytes before the batch's last entry
    first_epoch: int  # epoch of the batch's first entry
    last_epoch: int  # epoch of the batch's last entry (meaningless when cut short)


def decode_payload(
    payload: bytes | memoryview,
    header: BatchHeader,
    *,
    from_offset: int = 0,
    max_bytes: int | None = None,
    at_least_one: bool = True,
) -> DecodedEntries:
    """The entries from `from_offset` on of a CRC-checked payload, checking its structure:
    exactly `count` entries, offsets contiguous from base_offset, epochs non-decreasing, known
    kinds, no spare bytes. Entries below from_offset are checked but not built (recovery
    passes the batch's end offset to check a batch without building anything). With
    max_bytes, stops before the entry that would take the total past it, though it returns
    one entry anyway when at_least_one is set."""
    entries: list[Entry] = []
    taken_size_bytes = 0
    unpack_from = ENTRY_HEADER.unpack_from
    position = 0
    end = len(payload)
    expected_offset = header.base_offset
    first_epoch = previous_epoch = -1
    for _ in range(header.count):
        if end - position < ENTRY_HEADER_SIZE_BYTES:
            raise BatchFormatError(f"payload ends inside entry {expected_offset}")
        offset, epoch, kind, data_size_bytes = unpack_from(payload, position)
        position += ENTRY_HEADER_SIZE_BYTES
        if offset != expected_offset:
            raise BatchFormatError(f"entry offset {offset}, expected {expected_offset}")
        if epoch < previous_epoch:
            raise BatchFormatError(f"epoch goes back from {previous_epoch} to {epoch}")
        if kind not in _VALID_KINDS:
            raise BatchFormatError(f"unknown entry kind {kind} at offset {offset}")
        if end - position < data_size_bytes:
            raise BatchFormatError(f"payload ends inside the data of entry {offset}")
        if first_epoch < 0:
            first_epoch = epoch
        if offset >= from_offset:
            size_bytes = ENTRY_HEADER_SIZE_BYTES + data_size_bytes
            is_over_budget = max_bytes is not None and taken_size_bytes + size_bytes > max_bytes
            if is_over_budget and (entries or not at_least_one):
                return DecodedEntries(entries, taken_size_bytes, True, first_epoch, epoch)
            data = bytes(payload[position : position + data_size_bytes])
            entries.append(Entry(offset, epoch, data, EntryKind(kind)))
            taken_size_bytes += size_bytes
        position += data_size_bytes
        expected_offset += 1
        previous_epoch = epoch
    if position != end:
        raise BatchFormatError(f"{end - position} spare bytes after {header.count} entries")
    return DecodedEntries(entries, taken_size_bytes, False, first_epoch, previous_epoch)


def read_batch(
    data: bytes | memoryview,
    position: int,
    expected_base_offset: int | None = None,
    *,
    from_offset: int = 0,
    max_bytes: int | None = None,
    at_least_one: bool = True,
) -> tuple[BatchHeader, DecodedEntries]:
    """Parses and checks the batch at `position` of `data` (CRC, header, structure), and
    decodes its entries as decode_payload does; raises BatchFormatError."""
    header = parse_header(data, position)
    available_bytes = len(data) - position - BATCH_HEADER_SIZE_BYTES
    if available_bytes < header.payload_size_bytes:
        raise BatchFormatError(
            f"short payload: {available_bytes} of {header.payload_size_bytes} bytes"
        )
    check_crc(data, position, header)
    if header.count < 1:
        raise BatchFormatError("batch of zero entries")
    if expected_base_offset is not None and header.base_offset != expected_base_offset:
        raise BatchFormatError(f"base offset {header.base_offset}, expected {expected_base_offset}")
    payload_start = position + BATCH_HEADER_SIZE_BYTES
    payload = memoryview(data)[payload_start : payload_start + header.payload_size_bytes]
    decoded = decode_payload(
        payload, header, from_offset=from_offset, max_bytes=max_bytes, at_least_one=at_least_one
    )
    return header, decoded
