"""Framing (int32 size prefix, MAX_REQUEST_BYTES) and request/response headers v0-v2
(Kafka's RequestHeader.json / ResponseHeader.json, KIP-482 tagged fields)."""

from __future__ import annotations

import struct

import pytest

from broker.kafka.apis import ApiKey
from broker.kafka.framing import MAX_REQUEST_BYTES, FrameError, frame, frame_splitter
from broker.kafka.header import (
    HeaderError,
    encode_response_header,
    parse_request_header,
    response_header_version,
)


def frames_of(*reads: bytes) -> list[bytes]:
    splitter = frame_splitter()
    return [payload for data in reads for payload in splitter.feed(data)]


def test_a_frame_is_cut_whole_after_its_size_prefix() -> None:
    stream = frame(b"12345678") + frame(b"abcdefghij")
    assert frames_of(stream) == [b"12345678", b"abcdefghij"]


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 12, 13, 20])
def test_a_frame_split_across_reads_anywhere_comes_out_once_whole(cut: int) -> None:
    stream = frame(b"12345678") + frame(b"abcdefghij")
    assert frames_of(stream[:cut], stream[cut:]) == [b"12345678", b"abcdefghij"]


def test_a_large_frame_read_in_many_pieces_is_joined_once_complete() -> None:
    payload = bytes(range(256)) * 4096
    stream = frame(payload)
    splitter = frame_splitter()
    pieces = [stream[offset : offset + 65536] for offset in range(0, len(stream), 65536)]
    assert [splitter.feed(piece) for piece in pieces[:-1]] == [[]] * (len(pieces) - 1)
    assert splitter.partial and splitter.partial_size_bytes == len(payload)
    assert splitter.feed(pieces[-1]) == [payload]
    assert not splitter.partial


@pytest.mark.parametrize(
    ("data", "fact"),
    [
        (struct.pack(">i", MAX_REQUEST_BYTES + 1), "above the maximum request size"),
        (struct.pack(">i", -1), "below the 8 bytes"),
        (struct.pack(">i", 3) + b"abc", "below the 8 bytes"),
    ],
)
def test_a_size_out_of_bounds_is_a_frame_error_before_its_bytes_arrive(
    data: bytes, fact: str
) -> None:
    with pytest.raises(FrameError, match=fact):
        frame_splitter().feed(data)


@pytest.mark.parametrize(
    ("data", "fact"),
    [
        (struct.pack(">i", 100) + b"x" * 10, "after 10 of a frame's 100 bytes"),
        (b"\x00\x00", "inside a size prefix"),
    ],
)
def test_a_stream_ending_inside_a_frame_says_where(data: bytes, fact: str) -> None:
    splitter = frame_splitter()
    assert splitter.feed(data) == []
    assert splitter.partial
    assert fact in splitter.describe_partial()


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
