"""Reading and writing Kafka's primitive types: big-endian integers, unsigned varints,
legacy (int16/int32 length) and compact (varint length + 1, KIP-482) strings, bytes and
arrays, and tagged fields.

Reading is bounds-checked against the bytes that are really there: a length or a count
beyond them is refused before anything is allocated from it, so a hostile frame cannot make
the broker allocate more than the frame's own size. Bytes fields are returned as memoryview
slices of the frame (no copy).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import TypeAlias, TypeVar

from broker.kafka.codec import BodyDecodeError

T = TypeVar("T")
# A piece of an answer: written to the socket as it is (records are memoryviews of the log).
Chunk: TypeAlias = bytes | bytearray | memoryview

INT8 = struct.Struct(">b")
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")
INT64 = struct.Struct(">q")
_unpack_int16 = INT16.unpack_from
_unpack_int32 = INT32.unpack_from
_unpack_int64 = INT64.unpack_from
_UUID_BYTES = 16
# A tagged field is at least its tag and its size (one byte each).
_MIN_TAGGED_FIELD_BYTES = 2


class Reader:
    """A position in a request's bytes; every read checks what is left first.

    A plain slotted class (not a frozen dataclass): it is the one mutable cursor of a
    decode, created once per request."""

    __slots__ = ("data", "position", "end", "view")

    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position
        self.end = len(data)
        self.view = memoryview(data)

    def remaining(self) -> int:
        return self.end - self.position

    def _take(self, size_bytes: int, what: str) -> int:
        start = self.position
        if start + size_bytes > self.end:
            raise BodyDecodeError(f"{what} needs {size_bytes} bytes; {self.end - start} are left")
        self.position = start + size_bytes
        return start

    def int8(self) -> int:
        return int(INT8.unpack_from(self.data, self._take(1, "an int8"))[0])

    def int16(self) -> int:
        position = self.position
        if position + 2 > self.end:
            raise BodyDecodeError(f"an int16 needs 2 bytes; {self.end - position} are left")
        self.position = position + 2
        value: int = _unpack_int16(self.data, position)[0]
        return value

    def int32(self) -> int:
        position = self.position
        if position + 4 > self.end:
            raise BodyDecodeError(f"an int32 needs 4 bytes; {self.end - position} are left")
        self.position = position + 4
        value: int = _unpack_int32(self.data, position)[0]
        return value

    def int64(self) -> int:
        position = self.position
        if position + 8 > self.end:
            raise BodyDecodeError(f"an int64 needs 8 bytes; {self.end - position} are left")
        self.position = position + 8
        value: int = _unpack_int64(self.data, position)[0]
        return value

    def uuid(self) -> uuid.UUID:
        start = self._take(_UUID_BYTES, "a uuid")
        return uuid.UUID(bytes=self.data[start : self.position])

    def unsigned_varint(self) -> int:
        """Kafka's unsigned varint: at most 5 bytes, at most 32 bits."""
        data, position, end = self.data, self.position, self.end
        if position < end and data[position] < 0x80:  # one byte, the usual case
            self.position = position + 1
            return data[position]
        value = 0
        for shift in range(0, 35, 7):
            if position >= end:
                raise BodyDecodeError("the body ends inside a varint")
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if value > 0xFFFFFFFF:
                    raise BodyDecodeError(f"varint {value} does not fit in 32 bits")
                self.position = position
                return value
        raise BodyDecodeError("a varint is longer than 5 bytes")

    # -- strings and bytes -------------------------------------------------------------------

    def _length(self, compact: bool) -> int:
        """The length of a string or bytes field; -1 for null."""
        if compact:
            return self.unsigned_varint() - 1
        return self.int16()

    def _text(self, length: int) -> str:
        if length < 0:
            raise BodyDecodeError(f"string length {length} is negative")
        start = self._take(length, "a string")
        try:
            return str(self.view[start : self.position], "utf-8")
        except UnicodeDecodeError as error:
            raise BodyDecodeError(f"a string is not UTF-8: {error}") from None

    def string(self, compact: bool) -> str:
        length = self._length(compact)
        if length == -1:
            raise BodyDecodeError("a string that may not be null is null")
        return self._text(length)

    def nullable_string(self, compact: bool) -> str | None:
        length = self._length(compact)
        return None if length == -1 else self._text(length)

    def nullable_bytes(self, compact: bool) -> memoryview | None:
        """A bytes (or records) field as a slice of the request: no copy."""
        length = self.unsigned_varint() - 1 if compact else self.int32()
        if length == -1:
            return None
        if length < 0:
            raise BodyDecodeError(f"bytes length {length} is negative")
        start = self._take(length, "a bytes field")
        return self.view[start : self.position]

    # -- arrays and tagged fields ------------------------------------------------------------

    def array_count(self, compact: bool, min_item_bytes: int) -> int:
        """The count of a non-nullable array, checked against the bytes left."""
        count = self.unsigned_varint() - 1 if compact else self.int32()
        if count < 0:
            raise BodyDecodeError("an array that may not be null is null")
        if count * min_item_bytes > self.end - self.position:
            raise BodyDecodeError(
                f"an array of {count} items cannot fit in the {self.end - self.position} bytes left"
            )
        return count

    def array(
        self, compact: bool, read_item: Callable[[Reader], T], min_item_bytes: int
    ) -> list[T]:
        """A non-nullable array; its count is checked against the bytes left first."""
        return [read_item(self) for _ in range(self.array_count(compact, min_item_bytes))]

    def tagged_fields(self, read_known: Callable[[Reader, int, int], None] | None = None) -> None:
        """Reads a tagged-field section (KIP-482): `read_known(reader, tag, size_bytes)` reads
        the tags it knows and must consume exactly size_bytes; unknown tags are skipped, as
        Kafka's own readers do."""
        position = self.position
        if position < self.end and self.data[position] == 0:  # none, the usual case
            self.position = position + 1
            return
        count = self.unsigned_varint()
        if count * _MIN_TAGGED_FIELD_BYTES > self.end - self.position:
            raise BodyDecodeError(f"{count} tagged fields cannot fit in the bytes left")
        for _ in range(count):
            tag = self.unsigned_varint()
            size_bytes = self.unsigned_varint()
            start = self.position
            if start + size_bytes > self.end:
                raise BodyDecodeError(f"tagged field {tag} of {size_bytes} bytes runs past the end")
            if read_known is None:
                self.position = start + size_bytes
                continue
            read_known(self, tag, size_bytes)
            if self.position == start:  # not a tag it knows
                self.position = start + size_bytes
            elif self.position != start + size_bytes:
                raise BodyDecodeError(
                    f"tagged field {tag} holds {size_bytes} bytes but its value has "
                    f"{self.position - start}"
                )


# -- writing --------------------------------------------------------------------------------


def unsigned_varint(value: int) -> bytes:
    assert 0 <= value <= 0xFFFFFFFF, value
    if value < 0x80:
        return _SMALL_VARINTS[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = [bytes((n,)) for n in range(0x80)]
NO_TAGGED_FIELDS = b"\x00"


def string(value: str, compact: bool) -> bytes:
    encoded = value.encode()
    if compact:
        return unsigned_varint(len(encoded) + 1) + encoded
    return INT16.pack(len(encoded)) + encoded


def nullable_string(value: str | None, compact: bool) -> bytes:
    if value is None:
        return b"\x00" if compact else b"\xff\xff"
    return string(value, compact)


def array_count(count: int, compact: bool) -> bytes:
    return unsigned_varint(count + 1) if compact else INT32.pack(count)


def null_array(compact: bool) -> bytes:
    return b"\x00" if compact else b"\xff\xff\xff\xff"


def bytes_length(value: Chunk | None, compact: bool) -> bytes:
    """The length prefix of a nullable bytes (or records) field."""
    if value is None:
        return b"\x00" if compact else b"\xff\xff\xff\xff"
    size_bytes = len(value)
    return unsigned_varint(size_bytes + 1) if compact else INT32.pack(size_bytes)


def tagged_field(tag: int, value: bytes) -> bytes:
    return unsigned_varint(tag) + unsigned_varint(len(value)) + value


def decode_body(
    api_name: str, version: int, payload: bytes, position: int, read: Callable[[Reader], T]
) -> T:
    """`read` over the body that starts at `position` and runs to the payload's end; its
    BodyDecodeError named after the API and version, and one for bytes left after the
    body."""
    reader = Reader(payload, position)
    try:
        body = read(reader)
    except BodyDecodeError as error:
        raise BodyDecodeError(f"{api_name} v{version} body does not parse: {error}") from None
    if reader.position != reader.end:
        raise BodyDecodeError(
            f"{api_name} v{version} body has {reader.end - reader.position} bytes after its end"
        )
    return body
