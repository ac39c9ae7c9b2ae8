"""Kafka record batches, magic v2, byte for byte (DefaultRecordBatch / DefaultRecord of the
Kafka clients), so stored bytes can be served to a Kafka-protocol fetch untouched.

Batch header, big-endian, 61 bytes:

    0  baseOffset int64            8  batchLength int32 (bytes after this field)
    12 partitionLeaderEpoch int32  16 magic int8 = 2
    17 crc uint32: CRC-32C of every byte from attributes to the end of the batch
    21 attributes int16 (bits 0-2 compression, 3 timestampType, 4 isTransactional,
       5 isControl, 6 hasDeleteHorizonMs)
    23 lastOffsetDelta int32       27 baseTimestamp int64     35 maxTimestamp int64
    43 producerId int64            51 producerEpoch int16     53 baseSequence int32
    57 recordsCount int32          61 records

Each record: length varint (bytes after it), attributes int8, timestampDelta varlong,
offsetDelta varint, keyLength varint (-1: null key), key, valueLength varint (-1: null),
value, headersCount varint, then per header keyLength varint, key (UTF-8), valueLength
varint (-1: null), value. Varints are zigzag-encoded, as protobuf's sint32/sint64.

baseOffset, batchLength and partitionLeaderEpoch lie before the CRC range, which is why a
leader can assign offsets and its epoch by patching 12 bytes without recomputing the CRC
(`assign_offsets`). Compressed batches are stored and served as they come; only
`validate_content` (the leader's check of a produced batch) and `iter_records` (whoever reads
records) decompress them, through broker.log.compression, which bounds the inflated size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import crc32c

from broker.log.compression import CompressionType, compress, compression_type, decompress
from broker.log.errors import CorruptRecordError, InvalidRecordError

MAGIC_V2 = 2
BATCH_HEADER_SIZE_BYTES = 61
# baseOffset + batchLength: the bytes not counted by batchLength.
LOG_OVERHEAD_BYTES = 12
# Bytes of the header after the batchLength field: the smallest legal batchLength.
BATCH_LENGTH_MIN = BATCH_HEADER_SIZE_BYTES - LOG_OVERHEAD_BYTES
BATCH_LENGTH_MAX = 2**31 - 1
RECORDS_COUNT_MAX = 2**31 - 1

BASE_OFFSET_POSITION = 0
BATCH_LENGTH_POSITION = 8
PARTITION_LEADER_EPOCH_POSITION = 12
MAGIC_POSITION = 16
CRC_POSITION = 17
ATTRIBUTES_POSITION = 21
LAST_OFFSET_DELTA_POSITION = 23
BASE_TIMESTAMP_POSITION = 27
MAX_TIMESTAMP_POSITION = 35
PRODUCER_ID_POSITION = 43
PRODUCER_EPOCH_POSITION = 51
BASE_SEQUENCE_POSITION = 53
RECORDS_COUNT_POSITION = 57
CRC_START_POSITION = ATTRIBUTES_POSITION

COMPRESSION_CODEC_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_FLAG_MASK = 0x10
CONTROL_FLAG_MASK = 0x20
DELETE_HORIZON_FLAG_MASK = 0x40

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
NO_TIMESTAMP = -1

VARINT_MAX_BYTES = 5
VARLONG_MAX_BYTES = 10

_HEADER = struct.Struct(">qiibIhiqqqhii")
_OFFSET_LENGTH_EPOCH = struct.Struct(">qii")
_INT32 = struct.Struct(">i")
_INT16 = struct.Struct(">h")
_INT64 = struct.Struct(">q")
_UINT32 = struct.Struct(">I")
assert _HEADER.size == BATCH_HEADER_SIZE_BYTES


class TimestampType(IntEnum):
    """Attribute bit 3: who set the timestamps."""

    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


@dataclass(frozen=True, slots=True)
class Record:
    """One record to put in a batch: header keys are strings, values may be null (None)."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int = 0


class DecodedRecord(NamedTuple):
    """One record read back from a batch, with its absolute offset and timestamp. A named
    tuple rather than a frozen dataclass: consumers decode millions of these, and a tuple
    is built several times faster."""

    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


# -- varints -------------------------------------------------------------------------------


def zigzag_encode(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def zigzag_decode(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def encode_varint(value: int, out: bytearray) -> None:
    """Appends `value` zigzag-encoded as a varint (7 bits a byte, low bits first)."""
    unsigned = zigzag_encode(value) & 0xFFFFFFFFFFFFFFFF
    while unsigned >= 0x80:
        out.append((unsigned & 0x7F) | 0x80)
        unsigned >>= 7
    out.append(unsigned)


def decode_varint(
    buffer: bytes | memoryview, position: int, end: int, max_bytes: int = VARINT_MAX_BYTES
) -> tuple[int, int]:
    """Reads a zigzag varint at `position` (not past `end`); returns (value, next position)."""
    result = 0
    shift = 0
    for index in range(position, min(end, position + max_bytes)):
        byte = buffer[index]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return zigzag_decode(result), index + 1
        shift += 7
    if end - position < max_bytes:
        raise InvalidRecordError(f"varint at byte {position} runs past the record end {end}")
    raise InvalidRecordError(f"varint at byte {position} is longer than {max_bytes} bytes")


# -- the batch view ------------------------------------------------------------------------


class RecordBatch:
    """A read-only view over the bytes of one batch (a memoryview, no copy). Properties read
    the header fields; `validate()` checks frame, CRC and records before anyone trusts them.

    The header is unpacked once, when the view is made: an append reads its fields a dozen
    times over (offsets, epoch, timestamps for the segment and the index), and one struct
    call beats one per field. The bytes must not change under the view: `assign_offsets`
    returns new bytes, and the log makes a new view of them."""

    __slots__ = ("buffer", "_header")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        if len(view) < LOG_OVERHEAD_BYTES:
            raise CorruptRecordError(
                f"record batch of {len(view)} bytes is shorter than its "
                f"{LOG_OVERHEAD_BYTES}-byte offset and length prefix"
            )
        self.buffer = view
        header: tuple[int, ...]
        if len(view) >= BATCH_HEADER_SIZE_BYTES:
            header = _HEADER.unpack_from(view)
        else:
            # too short to be a batch (validate_frame says so); the fields it lacks read 0
            header = _HEADER.unpack(bytes(view) + bytes(BATCH_HEADER_SIZE_BYTES - len(view)))
        self._header = header

    @classmethod
    def at(cls, data: bytes | bytearray | memoryview, position: int) -> RecordBatch:
        """The batch that starts at `position` of a run of batches; its extent comes from its
        batchLength, which must fit in `data` (else CorruptRecordError)."""
        view = memoryview(data)
        size_bytes = batch_size_at(view, position)
        return cls(view[position : position + size_bytes])

    @property
    def base_offset(self) -> int:
        return self._header[0]

    @property
    def batch_length(self) -> int:
        return self._header[1]

    @property
    def size_bytes(self) -> int:
        return len(self.buffer)

    @property
    def partition_leader_epoch(self) -> int:
        return self._header[2]

    @property
    def magic(self) -> int:
        return self._header[3]

    @property
    def crc(self) -> int:
        return self._header[4]

    @property
    def attributes(self) -> int:
        return self._header[5]

    @property
    def compression(self) -> int:
        """The raw codec bits (a CompressionType value unless a newer client sent another)."""
        return self._header[5] & COMPRESSION_CODEC_MASK

    @property
    def timestamp_type(self) -> TimestampType:
        is_log_append = self._header[5] & TIMESTAMP_TYPE_MASK
        return TimestampType.LOG_APPEND_TIME if is_log_append else TimestampType.CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self._header[5] & TRANSACTIONAL_FLAG_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self._header[5] & CONTROL_FLAG_MASK)

    @property
    def last_offset_delta(self) -> int:
        return self._header[6]

    @property
    def last_offset(self) -> int:
        header = self._header
        return header[0] + header[6]

    @property
    def next_offset(self) -> int:
        header = self._header
        return header[0] + header[6] + 1

    @property
    def base_timestamp(self) -> int:
        return self._header[7]

    @property
    def max_timestamp(self) -> int:
        return self._header[8]

    @property
    def producer_id(self) -> int:
        return self._header[9]

    @property
    def producer_epoch(self) -> int:
        return self._header[10]

    @property
    def base_sequence(self) -> int:
        return self._header[11]

    @property
    def records_count(self) -> int:
        return self._header[12]

    def compute_crc(self) -> int:
        return int(crc32c.crc32c(self.buffer[CRC_START_POSITION:]))

    def validate(self, *, check_records: bool = True, compacted: bool = False) -> None:
        """Checks, in this order, naming the first fact that fails: the frame (lengths and
        magic) and the CRC (CorruptRecordError), then the offsets and, for uncompressed
        batches with check_records, every record's structure (InvalidRecordError).

        A follower passes check_records=False, as Kafka's followers do: its leader walked
        the records when it accepted the batch, and the CRC shows the bytes are the same.

        A producer's batch holds the offset deltas 0, 1, ..., lastOffsetDelta. A batch read
        from a log (a follower's append, recovery, a consumer) passes compacted=True: the
        log cleaner (broker/log/cleaner.py) may have removed records, so it may hold fewer,
        even none, and its records' deltas may skip; they still rise within
        [0, lastOffsetDelta], so the batch keeps its offsets."""
        self.validate_frame()
        stored_crc = self.crc
        computed_crc = self.compute_crc()
        if stored_crc != computed_crc:
            raise CorruptRecordError(
                f"record batch at offset {self.base_offset} fails its CRC: stored "
                f"{stored_crc:#010x}, computed {computed_crc:#010x}"
            )
        if compacted:
            self._validate_compacted_content(check_records)
        else:
            self.validate_content(check_records=check_records)

    def validate_frame(self) -> None:
        size_bytes = len(self.buffer)
        if size_bytes < BATCH_HEADER_SIZE_BYTES:
            raise CorruptRecordError(
                f"record batch of {size_bytes} bytes is shorter than the "
                f"{BATCH_HEADER_SIZE_BYTES}-byte v2 header"
            )
        batch_length = self.batch_length
        if batch_length < BATCH_LENGTH_MIN:
            raise CorruptRecordError(
                f"batchLength {batch_length} is below the {BATCH_LENGTH_MIN} bytes of a header"
            )
        if batch_length + LOG_OVERHEAD_BYTES != size_bytes:
            raise CorruptRecordError(
                f"batchLength {batch_length} says the batch has "
                f"{batch_length + LOG_OVERHEAD_BYTES} bytes, but it has {size_bytes}"
            )
        if self.magic != MAGIC_V2:
            raise CorruptRecordError(
                f"record batch magic is {self.magic}; only magic {MAGIC_V2} is supported"
            )

    def validate_content(self, *, check_records: bool = True) -> None:
        count = self.records_count
        if count <= 0:
            raise InvalidRecordError(f"record batch has records count {count}; it must be > 0")
        last_offset_delta = self.last_offset_delta
        # No compaction here: every batch holds exactly the offsets base..last.
        if last_offset_delta != count - 1:
            raise InvalidRecordError(
                f"lastOffsetDelta {last_offset_delta} does not match records count {count}"
            )
        codec = compression_type(self.compression)  # 5-7: UnsupportedCompressionError
        if not check_records:
            return
        if codec is CompressionType.NONE:
            walk_records(self.buffer, count)
        else:
            _walk_section(self.records_section(), 0, count)

    def _validate_compacted_content(self, check_records: bool) -> None:
        count, last_offset_delta = self.records_count, self.last_offset_delta
        if last_offset_delta < 0 or not 0 <= count <= last_offset_delta + 1:
            raise InvalidRecordError(
                f"record batch has records count {count} and lastOffsetDelta "
                f"{last_offset_delta}: it cannot hold that many offsets"
            )
        codec = compression_type(self.compression)  # 5-7: UnsupportedCompressionError
        if not check_records:
            return
        if codec is CompressionType.NONE:
            _walk_compacted_section(bytes(self.buffer), BATCH_HEADER_SIZE_BYTES, self)
        else:
            _walk_compacted_section(self.records_section(), 0, self)

    def records_section(self) -> bytes:
        """The records after the header, decompressed if need be (CorruptRecordError,
        UnsupportedCompressionError, DecompressedSizeError)."""
        codec = compression_type(self.compression)
        section = self.buffer[BATCH_HEADER_SIZE_BYTES:]
        if codec is CompressionType.NONE:
            return bytes(section)
        return decompress(codec, section)


def batch_size_at(
    buffer: bytes | bytearray | memoryview, position: int, *, require_whole: bool = True
) -> int:
    """The total size of the batch starting at `position`, from its batchLength; raises
    CorruptRecordError when the prefix or (if require_whole) the batch does not fit in
    `buffer`."""
    available = len(buffer) - position
    if available < LOG_OVERHEAD_BYTES:
        raise CorruptRecordError(
            f"only {available} bytes at byte {position}, fewer than a batch's "
            f"{LOG_OVERHEAD_BYTES}-byte offset and length prefix"
        )
    batch_length = int(_INT32.unpack_from(buffer, position + BATCH_LENGTH_POSITION)[0])
    if batch_length < BATCH_LENGTH_MIN:
        raise CorruptRecordError(
            f"batchLength {batch_length} at byte {position} is below the "
            f"{BATCH_LENGTH_MIN} bytes of a header"
        )
    size_bytes = batch_length + LOG_OVERHEAD_BYTES
    if require_whole and size_bytes > available:
        raise CorruptRecordError(
            f"batch at byte {position} claims {size_bytes} bytes, only {available} remain"
        )
    return size_bytes


def iter_batches(data: bytes | bytearray | memoryview) -> Iterator[RecordBatch]:
    """The batches of a run of batches back to back (a fetch response, a segment's bytes).
    Frames only: call validate() on each before trusting it."""
    view = memoryview(data)
    position = 0
    while position < len(view):
        batch = RecordBatch.at(view, position)
        position += batch.size_bytes
        yield batch


# -- records -------------------------------------------------------------------------------


def walk_records(buffer: memoryview, count: int) -> None:
    """Checks that the records section holds exactly `count` well-formed records with offset
    deltas 0, 1, ..., each ending where its length says; InvalidRecordError otherwise.

    This runs on the leader for every produced batch, so it is written for speed: the bytes
    are indexed as `bytes` and varints of one or two bytes (nearly all of them) are read
    without the general decoder."""
    _walk_section(bytes(buffer), BATCH_HEADER_SIZE_BYTES, count)


def _walk_section(data: bytes, position: int, count: int) -> None:
    """walk_records over the records that start at `position` of `data` and fill the rest
    (the batch's bytes after its header, or a decompressed records section)."""
    end = len(data)
    for expected_delta in range(count):
        position = _walk_record(data, position, end, expected_delta)
    if position != end:
        raise InvalidRecordError(
            f"{end - position} bytes follow the last of the {count} records of the batch"
        )


def _walk_compacted_section(data: bytes, position: int, batch: RecordBatch) -> None:
    """walk_records for a batch the log cleaner may have thinned: recordsCount records
    whose offset deltas rise within [0, lastOffsetDelta]."""
    previous_delta = -1
    for span in _spans(data, position, batch.records_count):
        if not previous_delta < span.offset_delta <= batch.last_offset_delta:
            raise InvalidRecordError(
                f"record at byte {span.start} has offsetDelta {span.offset_delta}; expected "
                f"one above {previous_delta} and at most {batch.last_offset_delta}"
            )
        previous_delta = span.offset_delta


class RecordSpan(NamedTuple):
    """Where one record lies in a records section, with what the log cleaner decides on."""

    start: int
    end: int
    offset_delta: int
    key: bytes | None
    is_tombstone: bool  # a null value: the key's deletion marker


def record_spans(batch: RecordBatch) -> tuple[bytes, list[RecordSpan]]:
    """The batch's records section (decompressed if need be) and the span of each record in
    it, every record walked (InvalidRecordError for one that is malformed)."""
    if batch.compression == CompressionType.NONE:
        data, position = bytes(batch.buffer), BATCH_HEADER_SIZE_BYTES
    else:
        data, position = batch.records_section(), 0
    return data, list(_spans(data, position, batch.records_count))


def _spans(data: bytes, position: int, count: int) -> Iterator[RecordSpan]:
    end = len(data)
    for index in range(count):
        start = position
        position, offset_delta, key_start, key_length, value_length = _parse_record(
            data, position, end, index
        )
        key = None if key_length < 0 else data[key_start : key_start + key_length]
        yield RecordSpan(start, position, offset_delta, key, value_length == -1)
    if position != end:
        raise InvalidRecordError(
            f"{end - position} bytes follow the last of the {count} records of the batch"
        )


def _varint(
    data: bytes, position: int, end: int, max_bytes: int = VARINT_MAX_BYTES
) -> tuple[int, int]:
    """decode_varint with a fast path for one- and two-byte varints."""
    if position + 1 < end:
        first = data[position]
        if first < 0x80:
            return (first >> 1) ^ -(first & 1), position + 1
        second = data[position + 1]
        if second < 0x80:
            raw = (first & 0x7F) | (second << 7)
            return (raw >> 1) ^ -(raw & 1), position + 2
    return decode_varint(data, position, end, max_bytes)


def _walk_record(data: bytes, position: int, end: int, expected_delta: int) -> int:
    record_end, offset_delta, _, _, _ = _parse_record(data, position, end, expected_delta)
    if offset_delta != expected_delta:
        raise InvalidRecordError(
            f"record {expected_delta} has offsetDelta {offset_delta}; expected {expected_delta}"
        )
    return record_end


def _parse_record(
    data: bytes, position: int, end: int, index: int
) -> tuple[int, int, int, int, int]:
    """Walks the `index`-th record, at `position`, checking its structure; returns (its end,
    its offsetDelta, where its key starts, key length, value length), lengths -1 for null.
    InvalidRecordError for anything that does not fit."""
    length, position = _varint(data, position, end)
    record_end = position + length
    if length <= 0 or record_end > end:
        raise InvalidRecordError(
            f"record {index} has length {length}, which does not fit the batch"
        )
    position += 1  # attributes, unused in v2
    _, position = _varint(data, position, record_end, VARLONG_MAX_BYTES)
    offset_delta, position = _varint(data, position, record_end)
    key_length, position = _varint(data, position, record_end)
    key_start = position
    if key_length >= 0:
        position += key_length
    elif key_length != -1:
        raise InvalidRecordError(f"key length {key_length} at byte {position} does not fit")
    value_length, position = _varint(data, position, record_end)
    if value_length >= 0:
        position += value_length
    elif value_length != -1:
        raise InvalidRecordError(f"value length {value_length} at byte {position} does not fit")
    if position > record_end:
        raise InvalidRecordError(
            f"record {index}: key and value run past its end at byte {record_end}"
        )
    header_count, position = _varint(data, position, record_end)
    if header_count < 0:
        raise InvalidRecordError(f"record {index} has {header_count} headers")
    for _ in range(header_count):
        position = _skip_bytes_field(data, position, record_end, "header key", False)
        position = _skip_bytes_field(data, position, record_end, "header value", True)
    if position != record_end:
        raise InvalidRecordError(
            f"record {index} ends at byte {position}, its length says {record_end}"
        )
    return record_end, offset_delta, key_start, key_length, value_length


def _skip_bytes_field(
    data: bytes | memoryview, position: int, end: int, name: str, allow_null: bool
) -> int:
    length, position = decode_varint(data, position, end)
    if length == -1 and allow_null:
        return position
    if length < 0 or position + length > end:
        raise InvalidRecordError(f"{name} length {length} at byte {position} does not fit")
    return position + length


def _read_bytes_field(
    buffer: bytes | memoryview, position: int, end: int
) -> tuple[bytes | None, int]:
    length, position = decode_varint(buffer, position, end)
    if length < 0:
        return None, position
    return bytes(buffer[position : position + length]), position + length


def iter_records(batch: RecordBatch) -> Iterator[DecodedRecord]:
    """The records of a batch with absolute offsets and timestamps. Call batch.validate()
    first: for an uncompressed batch this decodes, it does not check. A compressed batch is
    decompressed (bounded) and its records section walked before any record is decoded,
    so a consumer may validate it with check_records=False and decompress it once."""
    if batch.compression == CompressionType.NONE:
        data = bytes(batch.buffer)  # indexing bytes is faster than a memoryview
        position = BATCH_HEADER_SIZE_BYTES
    else:
        data = batch.records_section()
        position = 0
        _walk_compacted_section(data, position, batch)
    return _decode_records(data, position, batch)


def _decode_records(data: bytes, position: int, batch: RecordBatch) -> Iterator[DecodedRecord]:
    base_offset = batch.base_offset
    base_timestamp = batch.base_timestamp
    # A LogAppendTime batch: every record's timestamp is the batch's append time.
    append_time = batch.max_timestamp
    log_append_time = batch.timestamp_type is TimestampType.LOG_APPEND_TIME
    end = len(data)
    for _ in range(batch.records_count):
        length, position = _varint(data, position, end)
        record_end = position + length
        position += 1
        timestamp_delta, position = _varint(data, position, record_end, VARLONG_MAX_BYTES)
        offset_delta, position = _varint(data, position, record_end)
        key_length, position = _varint(data, position, record_end)
        key = None if key_length < 0 else data[position : position + key_length]
        position += max(key_length, 0)
        value_length, position = _varint(data, position, record_end)
        value = None if value_length < 0 else data[position : position + value_length]
        position += max(value_length, 0)
        header_count, position = _varint(data, position, record_end)
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(header_count):
            header_key, position = _read_bytes_field(data, position, record_end)
            header_value, position = _read_bytes_field(data, position, record_end)
            headers.append(((header_key or b"").decode("utf-8", "replace"), header_value))
        yield DecodedRecord(
            base_offset + offset_delta,
            append_time if log_append_time else base_timestamp + timestamp_delta,
            key,
            value,
            tuple(headers),
        )
        position = record_end


# -- building ------------------------------------------------------------------------------


def _varint_bytes_slow(value: int) -> bytes:
    out = bytearray()
    encode_varint(value, out)
    return bytes(out)


# Varints of -1 (null) up to this are looked up, not encoded: lengths, deltas and counts of
# ordinary records all fall in this range, and building batches is a producer's hot path.
SMALL_VARINT_LIMIT = 1 << 14
_SMALL_VARINTS = tuple(_varint_bytes_slow(value) for value in range(-1, SMALL_VARINT_LIMIT))


def varint_bytes(value: int) -> bytes:
    """`value` zigzag-encoded as a varint."""
    if -1 <= value < SMALL_VARINT_LIMIT:
        return _SMALL_VARINTS[value + 1]
    return _varint_bytes_slow(value)


def _encode_record(record: Record, offset_delta: int, base_timestamp: int) -> bytes:
    key, value = record.key, record.value
    parts = [
        b"\x00",  # attributes
        varint_bytes(record.timestamp_ms - base_timestamp),
        varint_bytes(offset_delta),
        varint_bytes(-1) if key is None else varint_bytes(len(key)),
        key or b"",
        varint_bytes(-1) if value is None else varint_bytes(len(value)),
        value or b"",
        varint_bytes(len(record.headers)),
    ]
    for header_key, header_value in record.headers:
        encoded_key = header_key.encode("utf-8")
        parts += (varint_bytes(len(encoded_key)), encoded_key)
        if header_value is None:
            parts.append(varint_bytes(-1))
        else:
            parts += (varint_bytes(len(header_value)), header_value)
    body = b"".join(parts)
    return varint_bytes(len(body)) + body


def build_batch(
    records: list[Record],
    base_offset: int = 0,
    *,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    is_transactional: bool = False,
    is_control: bool = False,
    base_timestamp_ms: int | None = None,
    compression: CompressionType = CompressionType.NONE,
) -> bytes:
    """A v2 batch of `records` (CreateTime timestamps), CRC set, as a Kafka producer would
    send it, its records section compressed with `compression`; baseTimestamp is the first
    record's timestamp unless given."""
    assert records, "a record batch holds at least one record"
    assert len(records) <= RECORDS_COUNT_MAX, f"{len(records)} records do not fit a batch"
    base_timestamp = records[0].timestamp_ms if base_timestamp_ms is None else base_timestamp_ms
    max_timestamp = max(record.timestamp_ms for record in records)
    body = bytearray()
    for offset_delta, record in enumerate(records):
        body += _encode_record(record, offset_delta, base_timestamp)
    if compression is not CompressionType.NONE:
        body = bytearray(compress(compression, bytes(body)))
    attributes = (
        int(compression)
        | (TRANSACTIONAL_FLAG_MASK if is_transactional else 0)
        | (CONTROL_FLAG_MASK if is_control else 0)
    )
    batch_length = BATCH_LENGTH_MIN + len(body)
    assert batch_length <= BATCH_LENGTH_MAX, f"batch of {batch_length} bytes is too large"
    header = bytearray(BATCH_HEADER_SIZE_BYTES)
    _HEADER.pack_into(
        header,
        0,
        base_offset,
        batch_length,
        partition_leader_epoch,
        MAGIC_V2,
        0,
        attributes,
        len(records) - 1,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    data = header + body
    crc = crc32c.crc32c(memoryview(data)[CRC_START_POSITION:])
    _UINT32.pack_into(data, CRC_POSITION, crc)
    return bytes(data)


def assign_offsets(
    batch_bytes: bytes | bytearray | memoryview, base_offset: int, partition_leader_epoch: int
) -> bytes:
    """The batch with its baseOffset and partitionLeaderEpoch replaced: the leader's hot
    path. Both fields precede the CRC range, so the CRC stays valid and the rest of the bytes
    are copied once, untouched. A bytearray is also patched in place."""
    view = memoryview(batch_bytes)
    assert len(view) >= BATCH_HEADER_SIZE_BYTES, "assign_offsets needs a whole batch header"
    batch_length = int(_INT32.unpack_from(view, BATCH_LENGTH_POSITION)[0])
    prefix = _OFFSET_LENGTH_EPOCH.pack(base_offset, batch_length, partition_leader_epoch)
    if isinstance(batch_bytes, bytearray):
        batch_bytes[: len(prefix)] = prefix
        return bytes(batch_bytes)
    return b"".join((prefix, view[len(prefix) :]))


def with_log_append_time(batch_bytes: bytes | bytearray, append_time_ms: int) -> bytearray:
    """The batch stamped with the broker's append time, as Kafka's LogValidator does for a
    topic whose message.timestamp.type is LogAppendTime: the timestamp-type attribute set
    and maxTimestamp the append time (readers give every record that time; the records'
    own deltas stay). Both fields lie in the CRC's range, so the CRC is computed again."""
    assert append_time_ms >= 0, f"append time {append_time_ms}"
    data = bytearray(batch_bytes)
    attributes = int(_INT16.unpack_from(data, ATTRIBUTES_POSITION)[0])
    _INT16.pack_into(data, ATTRIBUTES_POSITION, attributes | TIMESTAMP_TYPE_MASK)
    _INT64.pack_into(data, MAX_TIMESTAMP_POSITION, append_time_ms)
    _UINT32.pack_into(data, CRC_POSITION, crc32c.crc32c(memoryview(data)[CRC_START_POSITION:]))
    return data


def thinned_batch(batch: RecordBatch, section: bytes, kept: list[RecordSpan]) -> bytes:
    """The batch with only the `kept` records of its records section `section` (from
    record_spans), in order: the same header (offsets, epoch, timestamps, producer, codec)
    but recordsCount, batchLength and CRC; a compressed batch is compressed again with its
    codec. The log cleaner's rewrite of a batch some of whose records are obsolete."""
    assert kept, "a thinned batch keeps a record; see empty_batch"
    records = b"".join(section[span.start : span.end] for span in kept)
    codec = compression_type(batch.compression)
    if codec is not CompressionType.NONE:
        records = compress(codec, records)
    header = bytearray(batch.buffer[:BATCH_HEADER_SIZE_BYTES])
    _INT32.pack_into(header, BATCH_LENGTH_POSITION, BATCH_LENGTH_MIN + len(records))
    _INT32.pack_into(header, RECORDS_COUNT_POSITION, len(kept))
    data = header + records
    _UINT32.pack_into(data, CRC_POSITION, crc32c.crc32c(memoryview(data)[CRC_START_POSITION:]))
    return bytes(data)


def empty_batch(
    base_offset: int,
    last_offset: int,
    partition_leader_epoch: int,
    timestamp_ms: int,
    *,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
) -> bytes:
    """A batch of no records that holds the offsets base..last (Kafka's
    DefaultRecordBatch.writeEmptyHeader): what the log cleaner leaves where every record of
    a run of batches was obsolete, so the log's offsets stay contiguous and a consumer's
    position moves past them; with a producer's fields, the last batch of that producer."""
    assert base_offset <= last_offset, f"empty batch {base_offset}..{last_offset}"
    assert last_offset - base_offset <= 2**31 - 1, "lastOffsetDelta is an int32"
    data = bytearray(BATCH_HEADER_SIZE_BYTES)
    _HEADER.pack_into(
        data,
        0,
        base_offset,
        BATCH_LENGTH_MIN,
        partition_leader_epoch,
        MAGIC_V2,
        0,
        0,  # attributes: no codec for no records
        last_offset - base_offset,
        timestamp_ms,
        timestamp_ms,
        producer_id,
        producer_epoch,
        base_sequence,
        0,
    )
    _UINT32.pack_into(data, CRC_POSITION, crc32c.crc32c(memoryview(data)[CRC_START_POSITION:]))
    return bytes(data)
