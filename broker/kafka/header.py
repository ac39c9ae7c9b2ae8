"""Request and response headers (Kafka's RequestHeader.json / ResponseHeader.json).

Request header v0: api key int16, api version int16, correlation id int32; v1 adds the
client id (a nullable int16-length string, never compact); v2 adds tagged fields. Which
version a request uses follows from its API version: flexible versions (KIP-482) use v2,
others v1 (v0 is only ControlledShutdown v0, which a broker of Kafka 4 no longer serves).
Response header v0 is the correlation id; v1 adds tagged fields. ApiVersions responses always
use v0, so a client can read the answer whatever version it asked for.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from broker.kafka.apis import ApiKey

_KEY_VERSION_CORRELATION = struct.Struct(">hhi")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
MAX_TAGGED_FIELDS = 64  # more tags than any header defines: refused as garbage


class HeaderError(Exception):
    """A request header that does not parse; the connection must close."""


class RequestHeader(NamedTuple):  # read for every request: cheaper than a dataclass
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    size_bytes: int  # where the body starts in the frame


def peek_header(payload: bytes) -> RequestHeader:
    """The fixed fields every header version starts with (v0)."""
    if len(payload) < _KEY_VERSION_CORRELATION.size:
        raise HeaderError(f"a request of {len(payload)} bytes has no room for its header")
    api_key, api_version, correlation_id = _KEY_VERSION_CORRELATION.unpack_from(payload)
    return RequestHeader(api_key, api_version, correlation_id, None, _KEY_VERSION_CORRELATION.size)


def parse_request_header(payload: bytes, header_version: int) -> RequestHeader:
    assert header_version in (0, 1, 2), header_version
    if len(payload) < _KEY_VERSION_CORRELATION.size:
        raise HeaderError(f"a request of {len(payload)} bytes has no room for its header")
    api_key, api_version, correlation_id = _KEY_VERSION_CORRELATION.unpack_from(payload)
    position = _KEY_VERSION_CORRELATION.size
    client_id = None
    if header_version >= 1:
        client_id, position = _read_nullable_string(payload, position)
    if header_version == 2:
        if position < len(payload) and payload[position] == 0:  # no tagged fields, the usual
            position += 1
        else:
            position = skip_tagged_fields(payload, position)
    return RequestHeader(api_key, api_version, correlation_id, client_id, position)


def request_header_version(api_key: ApiKey, flexible: bool) -> int:
    del api_key  # every API this broker serves uses v1 or v2
    return 2 if flexible else 1


def response_header_version(api_key: ApiKey, flexible: bool) -> int:
    if api_key is ApiKey.API_VERSIONS:
        return 0
    return 1 if flexible else 0


def encode_response_header(correlation_id: int, header_version: int) -> bytes:
    assert header_version in (0, 1), header_version
    encoded = _INT32.pack(correlation_id)
    return encoded + b"\x00" if header_version == 1 else encoded  # no tagged fields


def _read_nullable_string(payload: bytes, position: int) -> tuple[str | None, int]:
    if position + _INT16.size > len(payload):
        raise HeaderError("the request header ends inside the client id length")
    (length,) = _INT16.unpack_from(payload, position)
    position += _INT16.size
    if length == -1:
        return None, position
    if length < 0:
        raise HeaderError(f"client id length {length} is negative")
    end = position + length
    if end > len(payload):
        raise HeaderError(f"client id of {length} bytes runs past the request's end")
    try:
        return payload[position:end].decode("utf-8"), end
    except UnicodeDecodeError as error:
        raise HeaderError(f"client id is not UTF-8: {error}") from None


def read_unsigned_varint(payload: bytes, position: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 35, 7):
        if position >= len(payload):
            raise HeaderError("the request header ends inside a varint")
        byte = payload[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
    raise HeaderError("a varint of the request header is longer than 5 bytes")


def skip_tagged_fields(payload: bytes, position: int) -> int:
    count, position = read_unsigned_varint(payload, position)
    if count > MAX_TAGGED_FIELDS:
        raise HeaderError(f"{count} tagged fields in a request header; at most {MAX_TAGGED_FIELDS}")
    for _ in range(count):
        _, position = read_unsigned_varint(payload, position)  # the tag
        size_bytes, position = read_unsigned_varint(payload, position)
        position += size_bytes
        if position > len(payload):
            raise HeaderError("a tagged field runs past the request's end")
    return position
