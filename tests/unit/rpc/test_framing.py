"""Length-prefixed frames (kraft.rpc.framing): the length is checked before the body
arrives, and every way a frame can be wrong is a typed FrameError or says where it ended."""

from __future__ import annotations

import re
from typing import Any

import msgpack
import pytest

from kraft.rpc.config import MAX_FRAME_BYTES, PROTOCOL_VERSION
from kraft.rpc.errors import (
    FrameError,
    FrameTooLargeError,
    MalformedFrameError,
    UnsupportedVersionError,
)
from kraft.rpc.framing import (
    LENGTH_PREFIX,
    FrameType,
    decode_frame,
    encode_frame,
    frame_splitter,
)

from .conftest import raw_frame


def test_frames_cut_from_a_stream_decode_in_order_with_type_id_and_body() -> None:
    data = encode_frame(FrameType.REQUEST, {"kind": "propose", "value": b"v"}, 7) + encode_frame(
        FrameType.RAFT, [1, 2, 3]
    )
    splitter = frame_splitter()

    first, second = (decode_frame(payload) for payload in splitter.feed(data))

    assert (first.frame_type, first.correlation_id, first.version) == (FrameType.REQUEST, 7, 1)
    assert first.body == {"kind": "propose", "value": b"v"}
    assert (second.frame_type, second.correlation_id, second.body) == (
        FrameType.RAFT,
        None,
        [1, 2, 3],
    )
    assert first.size_bytes + second.size_bytes == len(data)
    assert not splitter.partial  # a clean end between frames


def test_oversized_length_is_refused_before_the_body_arrives() -> None:
    """Only the 4-byte prefix is in: the check does not wait for the body."""
    with pytest.raises(FrameTooLargeError, match="exceeds MAX_FRAME_BYTES"):
        frame_splitter().feed(LENGTH_PREFIX.pack(MAX_FRAME_BYTES + 1))


def test_encoding_an_oversized_frame_is_refused() -> None:
    with pytest.raises(FrameTooLargeError):
        encode_frame(FrameType.REQUEST, {"kind": "x", "blob": b"\0" * MAX_FRAME_BYTES}, 1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "inside a length prefix (2 of 4 bytes)"),
        (LENGTH_PREFIX.pack(100) + b"\x81" * 10, "after 10 of a frame's 100 bytes"),
    ],
)
def test_a_stream_ending_inside_a_frame_says_where(data: bytes, message: str) -> None:
    splitter = frame_splitter()
    assert splitter.feed(data) == []
    assert splitter.partial
    assert message in splitter.describe_partial()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (LENGTH_PREFIX.pack(0), "frame length 0"),
        (LENGTH_PREFIX.pack(3) + b"\xc1\xc1\xc1", "not valid msgpack"),
        (LENGTH_PREFIX.pack(3) + b"\x93\x01\x02", "not valid msgpack"),
        (LENGTH_PREFIX.pack(2) + b"\x01\x02", "not valid msgpack"),
    ],
)
def test_bad_bytes_are_a_malformed_frame_error(data: bytes, message: str) -> None:
    with pytest.raises(MalformedFrameError, match=re.escape(message)):
        for payload in frame_splitter().feed(data):
            decode_frame(payload)


@pytest.mark.parametrize(
    ("frame", "error", "message"),
    [
        ({"v": 99, "t": 2, "b": []}, UnsupportedVersionError, "protocol version 99 is not supp"),
        ({"t": 2, "b": []}, MalformedFrameError, "frame version `v` is None"),
        ({"v": "1", "t": 2, "b": []}, MalformedFrameError, "frame version `v` is '1'"),
        ({"v": 1, "t": 42, "b": []}, MalformedFrameError, "unknown frame type 42"),
        ({"v": 1, "t": True, "b": []}, MalformedFrameError, "unknown frame type True"),
        ({"v": 1, "t": 3, "id": -1, "b": {}}, MalformedFrameError, "correlation id -1"),
        ({"v": 1, "t": 3, "id": "7", "b": {}}, MalformedFrameError, "correlation id '7'"),
        ({"v": 1, "t": 2}, MalformedFrameError, "RAFT frame has no body"),
    ],
)
def test_frame_maps_of_the_wrong_shape_are_refused(
    frame: dict[str, Any], error: type[FrameError], message: str
) -> None:
    with pytest.raises(error, match=message):
        decode_frame(raw_frame(frame)[4:])


def test_a_frame_that_is_not_a_map_is_refused() -> None:
    with pytest.raises(MalformedFrameError, match="msgpack list, expected a map"):
        decode_frame(msgpack.packb([PROTOCOL_VERSION, 2, None, []]))
