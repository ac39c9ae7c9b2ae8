"""Framing (int32 size prefix, MAX_REQUEST_BYTES) and request/response headers v0-v2
(Kafka's RequestHeader.json / ResponseHeader.json, KIP-482 tagged fields)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from broker.kafka.apis import ApiKey
from broker.kafka.framing import (
    MAX_REQUEST_BYTES,
    ConnectionEnded,
    FrameError,
    FrameReader,
    frame,
    read_frame,
)
from broker.kafka.header import (
    HeaderError,
    encode_response_header,
    parse_request_header,
    response_header_version,
)


def reader_of(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_a_frame_is_read_whole_after_its_size_prefix() -> None:
    reader = reader_of(frame(b"12345678") + frame(b"abcdefghij"))
    assert await read_frame(reader) == b"12345678"
    assert await read_frame(reader) == b"abcdefghij"
    with pytest.raises(ConnectionEnded):
        await read_frame(reader)


@pytest.mark.parametrize(
    ("data", "fact"),
    [
        (struct.pack(">i", MAX_REQUEST_BYTES + 1), "above the maximum request size"),
        (struct.pack(">i", -1), "below the 8 bytes"),
        (struct.pack(">i", 3) + b"abc", "below the 8 bytes"),
        (struct.pack(">i", 100) + b"x" * 10, "after 10 of a frame's 100 bytes"),
        (b"\x00\x00", "inside a size prefix"),
    ],
)
async def test_a_frame_out_of_bounds_or_cut_short_is_a_frame_error(data: bytes, fact: str) -> None:
    with pytest.raises(FrameError, match=fact):
        await read_frame(reader_of(data))


async def test_a_connection_idle_past_its_limit_is_a_frame_error() -> None:
    reader = asyncio.StreamReader()  # nothing ever arrives
    with pytest.raises(FrameError, match="idle"):
        await read_frame(reader, idle_timeout_ms=10)


async def test_a_frame_that_stalls_midway_is_a_frame_error() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(struct.pack(">i", 20) + b"partial")
    with pytest.raises(FrameError, match="did not arrive"):
        await read_frame(reader, read_timeout_ms=10)


async def test_a_connection_idle_after_some_frames_is_closed_by_the_same_timer() -> None:
    """One FrameReader per connection: frames read in time leave the limits in force for
    the next wait, with no timer armed per frame."""
    reader = asyncio.StreamReader()
    frames = FrameReader(reader, idle_timeout_ms=50, read_timeout_ms=50)
    try:
        for n in range(3):
            reader.feed_data(frame(b"request-%d" % n))
            assert await frames.read_frame() == b"request-%d" % n
            await asyncio.sleep(0.03)  # less than a limit between two frames
        with pytest.raises(FrameError, match="idle"):
            await asyncio.wait_for(frames.read_frame(), 1.0)
    finally:
        frames.close()


async def test_a_frame_stalling_after_a_long_idle_wait_still_times_out_on_its_own_limit() -> None:
    """The frame's limit (shorter than the idle one) holds even though the timer was armed
    for the idle wait."""
    reader = asyncio.StreamReader()
    frames = FrameReader(reader, idle_timeout_ms=10_000, read_timeout_ms=20)
    try:
        reading = asyncio.create_task(frames.read_frame())
        await asyncio.sleep(0.05)  # idle, within its limit
        reader.feed_data(struct.pack(">i", 20) + b"partial")
        with pytest.raises(FrameError, match="did not arrive within 20 ms"):
            await asyncio.wait_for(reading, 1.0)
    finally:
        frames.close()


def header_bytes(client_id: bytes | None, tagged: bytes = b"") -> bytes:
    fixed = struct.pack(">hhi", 3, 12, 99)
    if client_id is None:
        return fixed + struct.pack(">h", -1) + tagged
    return fixed + struct.pack(">h", len(client_id)) + client_id + tagged


def test_request_header_v0_is_key_version_and_correlation_id() -> None:
    header = parse_request_header(header_bytes(b"ignored"), 0)
    assert (header.api_key, header.api_version, header.correlation_id) == (3, 12, 99)
    assert header.size_bytes == 8


def test_request_header_v1_adds_a_nullable_client_id() -> None:
    assert parse_request_header(header_bytes(b"app-1"), 1).client_id == "app-1"
    header = parse_request_header(header_bytes(None) + b"body", 1)
    assert header.client_id is None
    assert header.size_bytes == 10


def test_request_header_v2_skips_tagged_fields_it_does_not_know() -> None:
    # two tagged fields: tag 0 with 3 bytes, tag 5 with 1 byte
    tagged = b"\x02" + b"\x00\x03abc" + b"\x05\x01z"
    payload = header_bytes(b"c", tagged) + b"BODY"
    header = parse_request_header(payload, 2)
    assert header.client_id == "c"
    assert payload[header.size_bytes :] == b"BODY"


@pytest.mark.parametrize(
    ("payload", "version", "fact"),
    [
        (b"\x00\x03\x00", 1, "no room for its header"),
        (struct.pack(">hhih", 3, 1, 1, 50) + b"short", 1, "runs past"),
        (struct.pack(">hhih", 3, 1, 1, -7), 1, "negative"),
        (struct.pack(">hhih", 3, 1, 1, 2) + b"\xff\xfe", 1, "not UTF-8"),
        (header_bytes(b"c", b"\x01\x00\x09ab"), 2, "runs past"),
        (header_bytes(b"c", b"\x80\x80\x80\x80\x80\x01"), 2, "longer than 5 bytes"),
        (header_bytes(b"c", b"\x7f"), 2, "127 tagged fields"),
    ],
)
def test_a_malformed_request_header_is_a_header_error(
    payload: bytes, version: int, fact: str
) -> None:
    with pytest.raises(HeaderError, match=fact):
        parse_request_header(payload, version)


def test_flexible_responses_use_header_v1_except_api_versions() -> None:
    """KIP-511: an ApiVersions answer is readable whatever version was asked for."""
    assert response_header_version(ApiKey.METADATA, flexible=True) == 1
    assert response_header_version(ApiKey.METADATA, flexible=False) == 0
    assert response_header_version(ApiKey.API_VERSIONS, flexible=True) == 0
    assert encode_response_header(5, 0) == struct.pack(">i", 5)
    assert encode_response_header(5, 1) == struct.pack(">i", 5) + b"\x00"
