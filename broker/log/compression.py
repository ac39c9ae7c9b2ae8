"""The codecs of Kafka record batches (attribute bits 0-2), for the few places that must read
the records of a compressed batch: the leader validating a produced batch, and whoever
decodes records (HTTP consume, the native Consumer, the chaos checker). Batches are stored
and served as the producer compressed them; nothing here runs on the fetch path.

The records section after the 61-byte header is compressed as a whole, in Kafka's framings:
gzip is a gzip stream; snappy is the Xerial framing the Java client writes (the magic
\\x82SNAPPY\\x00, a version and a compatible version, then blocks each prefixed by its int32
length) or, as librdkafka may send it, one plain snappy block; lz4 is the LZ4 frame format;
zstd is a zstd frame. cramjam implements the codecs.

Decompression is bounded (DECOMPRESSED_RECORDS_MAX_BYTES) so a small batch that inflates to
gigabytes (a zip bomb) is refused with DecompressedSizeError instead of exhausting memory:
gzip, lz4 and zstd decompress into a buffer that grows up to the limit and no further;
snappy blocks declare their length, which is checked before a block is decompressed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum

import cramjam

from broker.log.errors import CorruptRecordError, InvalidRecordError


class CompressionType(IntEnum):
    """The codec in attribute bits 0-2."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


# The most bytes a batch's records may decompress to: 64 times Kafka's default
# max.message.bytes. A legitimate batch of repetitive records may compress a hundredfold;
# past this a broker would spend memory and time a producer should not be able to demand.
DECOMPRESSED_RECORDS_MAX_BYTES = 64 * 1024 * 1024
# The first output buffer, as a multiple of the compressed size (grown fourfold on demand).
INITIAL_EXPANSION_FACTOR = 4
INITIAL_OUTPUT_MIN_BYTES = 64 * 1024
OUTPUT_GROWTH_FACTOR = 4

XERIAL_MAGIC = b"\x82SNAPPY\x00"
XERIAL_HEADER = struct.Struct(">8sii")  # magic, version, compatible version
XERIAL_BLOCK_LENGTH = struct.Struct(">i")
XERIAL_BLOCK_SIZE_BYTES = 32 * 1024  # the Java client's (xerial's) default block size

# cramjam's message when an output buffer is full before the stream ends (cramjam 2.14).
_OUTPUT_FULL_MESSAGE = "failed to write whole buffer"


class UnsupportedCompressionError(InvalidRecordError):
    """Attribute bits 0-2 name no codec Kafka defines (5, 6, 7): Kafka's
    UNSUPPORTED_COMPRESSION_TYPE."""

    def __init__(self, codec: int) -> None:
        super().__init__(
            f"compression codec {codec} is not one of none (0), gzip (1), snappy (2), "
            "lz4 (3), zstd (4)"
        )
        self.codec = codec


class DecompressedSizeError(InvalidRecordError):
    """The records of a batch inflate past DECOMPRESSED_RECORDS_MAX_BYTES."""

    def __init__(self, codec: CompressionType, compressed_bytes: int, max_bytes: int) -> None:
        super().__init__(
            f"{codec.name.lower()} records of {compressed_bytes} compressed bytes inflate to "
            f"more than the {max_bytes}-byte limit on a decompressed batch"
        )
        self.max_bytes = max_bytes


def compression_type(codec: int) -> CompressionType:
    """The codec of attribute bits 0-2; UnsupportedCompressionError for 5, 6 and 7."""
    try:
        return CompressionType(codec)
    except ValueError:
        raise UnsupportedCompressionError(codec) from None


# -- decompression --------------------------------------------------------------------------


def decompress(
    codec: CompressionType,
    payload: bytes | memoryview,
    max_bytes: int = DECOMPRESSED_RECORDS_MAX_BYTES,
) -> bytes:
    """The records section of a batch compressed with `codec`. CorruptRecordError when the
    payload does not decode, DecompressedSizeError when it inflates past max_bytes."""
    assert codec is not CompressionType.NONE, "an uncompressed records section is as it is"
    assert max_bytes > 0, f"max_bytes {max_bytes}"
    data = bytes(payload)
    if codec is CompressionType.SNAPPY:
        return _decompress_snappy(data, max_bytes)
    decompress_into = _DECOMPRESS_INTO[codec]
    return _bounded(codec, decompress_into, data, max_bytes)


def _corrupt(codec: CompressionType, error: Exception) -> CorruptRecordError:
    return CorruptRecordError(f"{codec.name.lower()} records do not decompress: {error}")


DecompressInto = Callable[[bytes, bytearray], int]

_DECOMPRESS_INTO: dict[CompressionType, DecompressInto] = {
    CompressionType.GZIP: cramjam.gzip.decompress_into,
    CompressionType.LZ4: cramjam.lz4.decompress_into,
    CompressionType.ZSTD: cramjam.zstd.decompress_into,
}


def _bounded(
    codec: CompressionType, decompress_into: DecompressInto, data: bytes, max_bytes: int
) -> bytes:
    """Decompresses into a buffer of growing size, never larger than max_bytes + 1 (one byte
    more shows the limit was passed). A retry starts over, and sizes grow geometrically, so
    the work is at most a few times one decompression."""
    limit = max_bytes + 1
    capacity = min(limit, max(INITIAL_OUTPUT_MIN_BYTES, len(data) * INITIAL_EXPANSION_FACTOR))
    while True:
        output = bytearray(capacity)
        try:
            size_bytes = int(decompress_into(data, output))
        except cramjam.DecompressionError as error:
            if _OUTPUT_FULL_MESSAGE not in str(error):
                raise _corrupt(codec, error) from None
            if capacity >= limit:
                raise DecompressedSizeError(codec, len(data), max_bytes) from None
            capacity = min(limit, capacity * OUTPUT_GROWTH_FACTOR)
            continue
        if size_bytes > max_bytes:
            raise DecompressedSizeError(codec, len(data), max_bytes)
        del output[size_bytes:]
        return bytes(output)


def _decompress_snappy(data: bytes, max_bytes: int) -> bytes:
    if data.startswith(XERIAL_MAGIC):
        return _decompress_xerial(data, max_bytes)
    return _snappy_block(data, max_bytes, max_bytes, len(data))


def _snappy_block(block: bytes, budget_bytes: int, max_bytes: int, compressed_bytes: int) -> bytes:
    """One plain snappy block, whose declared length is checked against what is left of
    max_bytes (budget_bytes) before it is decompressed."""
    codec = CompressionType.SNAPPY
    try:
        declared = int(cramjam.snappy.decompress_raw_len(block))
        if declared > budget_bytes:
            raise DecompressedSizeError(codec, compressed_bytes, max_bytes)
        return bytes(cramjam.snappy.decompress_raw(block))
    except cramjam.DecompressionError as error:
        raise _corrupt(codec, error) from None


def _decompress_xerial(data: bytes, max_bytes: int) -> bytes:
    codec = CompressionType.SNAPPY
    if len(data) < XERIAL_HEADER.size:
        raise _corrupt(codec, ValueError(f"xerial header of {len(data)} bytes is truncated"))
    position = XERIAL_HEADER.size
    blocks: list[bytes] = []
    total_bytes = 0
    while position < len(data):
        if position + XERIAL_BLOCK_LENGTH.size > len(data):
            raise _corrupt(codec, ValueError(f"xerial block length at byte {position} is cut"))
        (length,) = XERIAL_BLOCK_LENGTH.unpack_from(data, position)
        position += XERIAL_BLOCK_LENGTH.size
        if length <= 0 or position + length > len(data):
            raise _corrupt(
                codec, ValueError(f"xerial block of {length} bytes at byte {position} does not fit")
            )
        compressed_block = data[position : position + length]
        block = _snappy_block(compressed_block, max_bytes - total_bytes, max_bytes, len(data))
        position += length
        total_bytes += len(block)
        blocks.append(block)
    return b"".join(blocks)


# -- compression (tests, and batches built by this codebase) -------------------------------


def compress(codec: CompressionType, data: bytes) -> bytes:
    """`data` compressed as a Kafka producer compresses a records section (snappy: the Java
    client's Xerial framing)."""
    assert codec is not CompressionType.NONE, "nothing to compress with codec none"
    if codec is CompressionType.GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec is CompressionType.SNAPPY:
        return compress_xerial(data)
    if codec is CompressionType.LZ4:
        return bytes(cramjam.lz4.compress(data))
    return bytes(cramjam.zstd.compress(data))


def compress_xerial(data: bytes, block_size_bytes: int = XERIAL_BLOCK_SIZE_BYTES) -> bytes:
    """Xerial-framed snappy, as org.xerial.snappy.SnappyOutputStream writes it (version 1,
    compatible version 1)."""
    parts = [XERIAL_HEADER.pack(XERIAL_MAGIC, 1, 1)]
    for start in range(0, len(data), block_size_bytes):
        block = bytes(cramjam.snappy.compress_raw(data[start : start + block_size_bytes]))
        parts += (XERIAL_BLOCK_LENGTH.pack(len(block)), block)
    return b"".join(parts)
