"""The record batch format, magic v2, byte for byte (Kafka's DefaultRecordBatch and
DefaultRecord; the wire layout of the Kafka protocol guide, "Record Batch")."""

from __future__ import annotations

import struct

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.log import (
    CorruptRecordError,
    InvalidRecordError,
    Record,
    RecordBatch,
    assign_offsets,
    build_batch,
    iter_batches,
    iter_records,
)
from broker.log.batch import (
    ATTRIBUTES_POSITION,
    BATCH_HEADER_SIZE_BYTES,
    BATCH_LENGTH_POSITION,
    CRC_START_POSITION,
    MAGIC_POSITION,
    CompressionType,
    TimestampType,
    decode_varint,
    encode_varint,
    with_log_append_time,
)
from tests.unit.log.helpers import make_batch

# A one-record batch spelt out field by field (the "uncompressed record" vector of the Sarama
# Kafka client's record_batch_test.go, produced independently of this code): base timestamp
# 1479847795000, one record 5 ms later, key 01020304, value 050607, one header 08090a=0b0c.
# Its maxTimestamp is 0 (Sarama leaves it unset), so build_batch's bytes differ there and in
# the CRC; everything else must match.
KNOWN_BATCH = bytes(
    [0, 0, 0, 0, 0, 0, 0, 0]  # baseOffset
    + [0, 0, 0, 70]  # batchLength
    + [0, 0, 0, 0]  # partitionLeaderEpoch
    + [2]  # magic
    + [84, 121, 97, 253]  # crc
    + [0, 0]  # attributes
    + [0, 0, 0, 0]  # lastOffsetDelta
    + [0, 0, 1, 88, 141, 205, 89, 56]  # baseTimestamp
    + [0, 0, 0, 0, 0, 0, 0, 0]  # maxTimestamp
    + [0, 0, 0, 0, 0, 0, 0, 0]  # producerId
    + [0, 0]  # producerEpoch
    + [0, 0, 0, 0]  # baseSequence
    + [0, 0, 0, 1]  # records count
    + [40, 0, 10, 0]  # record length 20, attributes, timestampDelta 5, offsetDelta 0
    + [8, 1, 2, 3, 4]  # key length 4, key
    + [6, 5, 6, 7]  # value length 3, value
    + [2, 6, 8, 9, 10, 4, 11, 12]  # 1 header: key length 3, key, value length 2, value
)
KNOWN_RECORD = Record(b"\x01\x02\x03\x04", b"\x05\x06\x07", (("\x08\t\n", b"\x0b\x0c"),), 0)
KNOWN_BASE_TIMESTAMP_MS = 1479847795000
MAX_TIMESTAMP_SLICE = slice(35, 43)
CRC_SLICE = slice(17, 21)


def test_known_batch_validates_and_decodes() -> None:
    """A batch from another Kafka client passes our CRC-32C check and decodes as written."""
    batch = RecordBatch(KNOWN_BATCH)
    batch.validate()
    assert batch.crc == crc32c.crc32c(KNOWN_BATCH[CRC_START_POSITION:])
    assert (batch.base_offset, batch.records_count, batch.magic) == (0, 1, 2)
    [record] = iter_records(batch)
    assert record.offset == 0
    assert record.timestamp_ms == KNOWN_BASE_TIMESTAMP_MS + 5
    assert (record.key, record.value, record.headers) == (
        KNOWN_RECORD.key,
        KNOWN_RECORD.value,
        KNOWN_RECORD.headers,
    )


def test_build_batch_matches_known_bytes_outside_max_timestamp_and_crc() -> None:
    record = Record(KNOWN_RECORD.key, KNOWN_RECORD.value, KNOWN_RECORD.headers, 0)
    record = Record(record.key, record.value, record.headers, KNOWN_BASE_TIMESTAMP_MS + 5)
    built = build_batch(
        [record],
        partition_leader_epoch=0,
        producer_id=0,
        producer_epoch=0,
        base_sequence=0,
        base_timestamp_ms=KNOWN_BASE_TIMESTAMP_MS,
    )
    assert len(built) == len(KNOWN_BATCH)
    for field in (slice(0, 17), slice(21, 35), slice(43, None)):
        assert built[field] == KNOWN_BATCH[field], f"bytes {field} differ"
    assert struct.unpack(">q", built[MAX_TIMESTAMP_SLICE])[0] == KNOWN_BASE_TIMESTAMP_MS + 5
    assert struct.unpack(">I", built[CRC_SLICE])[0] == crc32c.crc32c(built[CRC_START_POSITION:])


def test_empty_batch_header_crc_matches_known_value() -> None:
    """The CRC-32C of an all-zero header body (Sarama's "empty record" vector: 0x595fb7dd)."""
    assert crc32c.crc32c(bytes(BATCH_HEADER_SIZE_BYTES - CRC_START_POSITION)) == 0x595FB7DD


record_strategy = st.builds(
    Record,
    key=st.none() | st.binary(max_size=40),
    value=st.none() | st.binary(max_size=200),
    headers=st.lists(
        st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=8)), max_size=3
    ).map(tuple),
    timestamp_ms=st.integers(min_value=0, max_value=2**50),
)


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(record_strategy, min_size=1, max_size=12),
    base_offset=st.integers(min_value=0, max_value=2**40),
    producer_id=st.integers(min_value=-1, max_value=2**40),
)
def test_round_trip_keeps_every_field(
    records: list[Record], base_offset: int, producer_id: int
) -> None:
    data = build_batch(records, base_offset, producer_id=producer_id, producer_epoch=3)
    batch = RecordBatch(data)
    batch.validate()
    assert batch.base_offset == base_offset
    assert batch.last_offset == base_offset + len(records) - 1
    assert (batch.producer_id, batch.producer_epoch) == (producer_id, 3)
    assert batch.max_timestamp == max(record.timestamp_ms for record in records)
    decoded = list(iter_records(batch))
    assert [record.offset for record in decoded] == list(
        range(base_offset, base_offset + len(records))
    )
    for original, back in zip(records, decoded, strict=True):
        assert (back.key, back.value, back.headers, back.timestamp_ms) == (
            original.key,
            original.value,
            original.headers,
            original.timestamp_ms,
        )


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_varint_round_trip(value: int) -> None:
    out = bytearray()
    encode_varint(value, out)
    assert decode_varint(bytes(out), 0, len(out), 10) == (value, len(out))


def test_corrupting_any_covered_byte_is_detected() -> None:
    """Every byte but baseOffset and partitionLeaderEpoch is covered by the CRC or by the
    length and magic checks; those two lie outside on purpose (the leader patches them), and
    the log checks baseOffset by continuity instead."""
    data = make_batch(3, value_size_bytes=7)
    for position in range(BATCH_LENGTH_POSITION, len(data)):
        if 12 <= position < MAGIC_POSITION:
            continue  # partitionLeaderEpoch
        for flip in (0x01, 0x80, 0xFF):
            corrupted = bytearray(data)
            corrupted[position] ^= flip
            with pytest.raises((CorruptRecordError, InvalidRecordError)):
                RecordBatch(corrupted).validate()


def test_wrong_magic_is_named() -> None:
    corrupted = bytearray(make_batch())
    corrupted[MAGIC_POSITION] = 1
    with pytest.raises(CorruptRecordError, match="magic is 1"):
        RecordBatch(corrupted).validate()


@pytest.mark.parametrize("keep", [0, 5, 11, 12, 40, 60, 61, 70])
def test_truncated_batch_is_corrupt(keep: int) -> None:
    data = make_batch(2)
    with pytest.raises(CorruptRecordError):
        RecordBatch(data[:keep]).validate()


@pytest.mark.parametrize("batch_length", [-1, -(2**31), 0, 48])
def test_negative_or_tiny_batch_length_is_corrupt(batch_length: int) -> None:
    corrupted = bytearray(make_batch())
    struct.pack_into(">i", corrupted, BATCH_LENGTH_POSITION, batch_length)
    with pytest.raises(CorruptRecordError, match="batchLength"):
        RecordBatch(corrupted).validate()
    with pytest.raises(CorruptRecordError):
        list(iter_batches(corrupted))


def _with_crc(data: bytearray) -> bytearray:
    struct.pack_into(">I", data, 17, crc32c.crc32c(bytes(data[CRC_START_POSITION:])))
    return data


def test_negative_record_length_is_invalid_even_with_a_good_crc() -> None:
    data = bytearray(make_batch(1))
    data[BATCH_HEADER_SIZE_BYTES] = 0x01  # zigzag -1
    with pytest.raises(InvalidRecordError, match="length -1"):
        RecordBatch(_with_crc(data)).validate()


def test_records_count_mismatch_is_invalid() -> None:
    data = bytearray(make_batch(2))
    struct.pack_into(">i", data, 57, 3)
    with pytest.raises(InvalidRecordError, match="lastOffsetDelta 1 does not match"):
        RecordBatch(_with_crc(data)).validate()


def test_assign_offsets_patches_offset_and_epoch_and_keeps_the_crc() -> None:
    data = make_batch(4)
    patched = assign_offsets(data, 1234, 7)
    batch = RecordBatch(patched)
    batch.validate()
    assert (batch.base_offset, batch.partition_leader_epoch, batch.last_offset) == (1234, 7, 1237)
    assert patched[16:] == data[16:]
    in_place = bytearray(data)
    assign_offsets(in_place, 9, 2)
    assert RecordBatch(in_place).base_offset == 9


def test_batch_flagged_gzip_whose_records_are_not_gzip_is_corrupt() -> None:
    """A leader decompresses a produced batch to check its records (Kafka's
    LogValidator); a follower, trusting its leader's check, looks at frame and CRC only."""
    data = bytearray(make_batch(1))
    struct.pack_into(">h", data, ATTRIBUTES_POSITION, CompressionType.GZIP)
    batch = RecordBatch(_with_crc(data))
    batch.validate(check_records=False)
    assert batch.compression == CompressionType.GZIP
    with pytest.raises(CorruptRecordError, match="gzip records do not decompress"):
        batch.validate()
    with pytest.raises(CorruptRecordError, match="gzip"):
        list(iter_records(batch))


def test_iter_batches_splits_a_run_of_batches() -> None:
    run = assign_offsets(make_batch(2), 0, 0) + assign_offsets(make_batch(3), 2, 0)
    assert [(b.base_offset, b.records_count) for b in iter_batches(run)] == [(0, 2), (2, 3)]


@pytest.mark.parametrize("codec", [CompressionType.NONE, CompressionType.ZSTD])
def test_a_batch_stamped_with_log_append_time_gives_every_record_that_time(
    codec: CompressionType,
) -> None:
    """message.timestamp.type=LogAppendTime, as Kafka's LogValidator: the timestamp-type
    bit and maxTimestamp change, the CRC is computed again, the records stay as sent."""
    records = [Record(b"k%d" % n, b"v", (), 1_000 + n) for n in range(3)]
    sent = build_batch(records, compression=codec)

    stamped = RecordBatch(with_log_append_time(sent, 1_700_000_000_123))

    stamped.validate()
    assert stamped.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert stamped.compression == codec
    assert [(r.timestamp_ms, r.key) for r in iter_records(stamped)] == [
        (1_700_000_000_123, b"k0"),
        (1_700_000_000_123, b"k1"),
        (1_700_000_000_123, b"k2"),
    ]
    assert stamped.buffer[BATCH_HEADER_SIZE_BYTES:] == sent[BATCH_HEADER_SIZE_BYTES:]
