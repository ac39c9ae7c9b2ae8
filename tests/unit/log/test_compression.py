"""Compressed record batches: Kafka's codecs and framings (gzip stream, Xerial-framed or plain
snappy, LZ4 frame, zstd frame; KIP-110 for zstd), the leader's validation of what is inside,
and the bound on the decompressed size."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import cramjam
import crc32c
import pytest

from broker.log import CorruptRecordError, InvalidRecordError, PartitionLog, Record, RecordBatch
from broker.log.batch import (
    ATTRIBUTES_POSITION,
    BATCH_HEADER_SIZE_BYTES,
    CRC_POSITION,
    CRC_START_POSITION,
    build_batch,
    iter_records,
)
from broker.log.compression import (
    DECOMPRESSED_RECORDS_MAX_BYTES,
    XERIAL_MAGIC,
    CompressionType,
    DecompressedSizeError,
    UnsupportedCompressionError,
    compress,
    compress_xerial,
    decompress,
)
from broker.log.config import LogConfig

CODECS = [CompressionType.GZIP, CompressionType.SNAPPY, CompressionType.LZ4, CompressionType.ZSTD]
RECORDS = [
    Record(b"key-%d" % i, b"value %d " % i * 20, (("h", b"v"),), 1_700_000_000_000 + i)
    for i in range(50)
]


def _with_records_section(batch: bytes, section: bytes, codec: int) -> bytes:
    """The batch's header (count and deltas kept) over another records section, with the
    codec bits and batchLength and CRC made to fit: a producer that sent exactly this."""
    data = bytearray(batch[:BATCH_HEADER_SIZE_BYTES] + section)
    struct.pack_into(">i", data, 8, len(data) - 12)
    struct.pack_into(">h", data, ATTRIBUTES_POSITION, codec)
    struct.pack_into(">I", data, CRC_POSITION, crc32c.crc32c(data[CRC_START_POSITION:]))
    return bytes(data)


def _uncompressed_section(records: list[Record]) -> bytes:
    return build_batch(records)[BATCH_HEADER_SIZE_BYTES:]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_each_codec_round_trips_records(codec: CompressionType) -> None:
    data = build_batch(RECORDS, compression=codec)
    batch = RecordBatch(data)
    batch.validate()
    assert batch.compression == codec
    assert batch.size_bytes < len(build_batch(RECORDS)), "the records section was compressed"
    decoded = list(iter_records(batch))
    assert [r.value for r in decoded] == [r.value for r in RECORDS]
    assert [r.offset for r in decoded] == list(range(len(RECORDS)))
    assert [r.timestamp_ms for r in decoded] == [r.timestamp_ms for r in RECORDS]
    assert decoded[7].headers == (("h", b"v"),)


def test_plain_snappy_block_as_librdkafka_may_send_it_is_read() -> None:
    section = _uncompressed_section(RECORDS)
    plain = bytes(cramjam.snappy.compress_raw(section))
    assert not plain.startswith(XERIAL_MAGIC)
    batch = RecordBatch(_with_records_section(build_batch(RECORDS), plain, 2))
    batch.validate()
    assert [r.key for r in iter_records(batch)] == [r.key for r in RECORDS]


def test_xerial_snappy_of_several_blocks_is_read() -> None:
    section = _uncompressed_section(RECORDS)
    framed = compress_xerial(section, block_size_bytes=100)
    assert framed.startswith(XERIAL_MAGIC)
    assert decompress(CompressionType.SNAPPY, framed) == section


def test_gzip_from_another_implementation_is_read() -> None:
    """Python's gzip module, not cramjam, wrote this stream (as the Java client's
    GZIPOutputStream would)."""
    section = _uncompressed_section(RECORDS)
    batch = RecordBatch(_with_records_section(build_batch(RECORDS), gzip.compress(section), 1))
    batch.validate()
    assert len(list(iter_records(batch))) == len(RECORDS)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_corrupt_compressed_records_are_refused_as_corrupt(codec: CompressionType) -> None:
    compressed = compress(codec, _uncompressed_section(RECORDS))
    damaged = compressed[: len(compressed) // 2]
    batch = RecordBatch(_with_records_section(build_batch(RECORDS), damaged, codec))
    with pytest.raises(CorruptRecordError, match=f"{codec.name.lower()} records do not"):
        batch.validate()


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_record_count_is_checked_inside_compressed_records(codec: CompressionType) -> None:
    """The header claims 50 records; the compressed section holds 49."""
    section = compress(codec, _uncompressed_section(RECORDS[:49]))
    batch = RecordBatch(_with_records_section(build_batch(RECORDS), section, codec))
    with pytest.raises(InvalidRecordError, match="runs past the record end"):
        batch.validate()


def test_offset_deltas_are_checked_inside_compressed_records() -> None:
    # Records 1 and 2 of a three-record section: offset deltas 1, 2 where 0, 1 are due.
    three = _uncompressed_section([Record(None, b"v%d" % i) for i in range(3)])
    first_length = three[0] >> 1  # a short record: its length is a one-byte zigzag varint
    section = compress(CompressionType.ZSTD, three[1 + first_length :])
    batch = RecordBatch(_with_records_section(build_batch(RECORDS[:2]), section, 4))
    with pytest.raises(InvalidRecordError, match="offsetDelta 1; expected 0"):
        batch.validate()


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_unknown_codec_is_refused_as_unsupported(codec: int) -> None:
    batch = RecordBatch(_with_records_section(build_batch(RECORDS), b"x" * 10, codec))
    with pytest.raises(UnsupportedCompressionError, match=f"codec {codec} is not one of"):
        batch.validate()


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_zip_bomb_is_refused_past_the_decompressed_limit(codec: CompressionType) -> None:
    zeros = bytes(DECOMPRESSED_RECORDS_MAX_BYTES + 1)
    bomb = compress(codec, zeros)
    assert len(bomb) < DECOMPRESSED_RECORDS_MAX_BYTES // 10, "it is a bomb"
    with pytest.raises(DecompressedSizeError, match="more than the 67108864-byte limit"):
        decompress(codec, bomb)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_exactly_the_limit_decompresses(codec: CompressionType) -> None:
    data = bytes(range(256)) * 1000
    assert decompress(codec, compress(codec, data), max_bytes=len(data)) == data
    with pytest.raises(DecompressedSizeError):
        decompress(codec, compress(codec, data), max_bytes=len(data) - 1)


def test_leader_append_refuses_a_corrupt_compressed_batch_and_writes_nothing(
    tmp_path: Path,
) -> None:
    log = PartitionLog(tmp_path / "t-0", LogConfig())
    good = build_batch(RECORDS, compression=CompressionType.LZ4)
    assert log.append_as_leader(good, 1) == (0, len(RECORDS) - 1)
    bad = _with_records_section(good, b"\x04\x22\x4d\x18garbage", CompressionType.LZ4)
    with pytest.raises(CorruptRecordError):
        log.append_as_leader(bad, 1)
    assert log.log_end_offset == len(RECORDS)
    stored = log.read(0, 10_000_000)
    batch = RecordBatch(stored)
    assert bytes(batch.buffer[CRC_START_POSITION:]) == good[CRC_START_POSITION:], "as sent"
    log.close()


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_native_consumer_decodes_compressed_batches_from_the_fetch_offset(
    codec: CompressionType,
) -> None:
    from broker.log.batch import assign_offsets
    from client.consumer import decode_fetched_records

    first = assign_offsets(build_batch(RECORDS[:10], compression=codec), 0, 1)
    second = assign_offsets(build_batch(RECORDS[10:], compression=codec), 10, 1)
    records, next_offset = decode_fetched_records("t", 0, first + second, 5)
    assert [r.offset for r in records] == list(range(5, len(RECORDS)))
    assert [r.value for r in records] == [r.value for r in RECORDS[5:]]
    assert next_offset == len(RECORDS)


def test_native_consumer_answers_corrupt_message_for_a_damaged_compressed_batch() -> None:
    from client.consumer import decode_fetched_records
    from client.errors import KafkaError
    from kraft.protocol.errors import ErrorCode

    batch = _with_records_section(build_batch(RECORDS), b"\x28\xb5\x2f\xfdbad", 4)
    with pytest.raises(KafkaError) as raised:
        decode_fetched_records("t", 0, batch, 0)
    assert raised.value.code == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_http_consume_decodes_compressed_batches(codec: CompressionType) -> None:
    """What GET /topics/{t}/partitions/{p}/records returns is decoded here."""
    from broker.partitions.dataplane import decode_records

    data = build_batch(RECORDS, compression=codec)
    consumed = decode_records(data, 3, 10_000_000)
    assert [r.offset for r in consumed] == list(range(3, len(RECORDS)))
    assert consumed[0].key == b"key-3"
