"""Length-prefixed frames (kraft.rpc.framing): the length is checked before the body is
read, and every way a frame can be wrong is a typed FrameError."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgpack
import pytest

from kraft.rpc.config import MAX_FRAME_BYTES, PROTOCOL_VERSION
from kraft.rpc.errors import (
    FrameError,
    FrameTooLargeError,
    MalformedFrameError,
    TruncatedFrameError,
    UnsupportedVersionError,
)
from kraft.rpc.framing import LENGTH_PREFIX, FrameType, decode_frame, encode_frame, read_frame

from .conftest import raw_frame


def reader_of(data: bytes, *, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_frames_read_back_in_order_with_type_id_and_body() -> None:
    data = encode_frame(FrameType.REQUEST, {"kind": "propose", "value": b"v"}, 7) + encode_frame(
        FrameType.RAFT, [1, 2, 3]
    )
    reader = reader_of(data)

    first = await read_frame(reader)
    second = await read_frame(reader)

    assert first is not None and second is not None
    assert (first.frame_type, first.correlation_id, first.version) == (FrameType.REQUEST, 7, 1)
    assert first.body == {"kind": "propose", "value": b"v"}
    assert (second.frame_type, second.correlation_id, second.body) == (
        FrameType.RAFT,
        None,
        [1, 2, 3],
    )
    assert first.size_bytes + second.size_bytes == len(data)
    assert await read_frame(reader) is None  # clean end between frames


async def test_oversized_length_is_refused_before_the_body_is_read() -> None:
    """Only the 4-byte prefix arrives (and no EOF): the check must not wait for the body."""
    reader = reader_of(LENGTH_PREFIX.pack(MAX_FRAME_BYTES + 1), eof=False)

    async with asyncio.timeout(1):
        with pytest.raises(FrameTooLargeError, match="exceeds MAX_FRAME_BYTES"):
            await read_frame(reader)


def test_encoding_an_oversized_frame_is_refused() -> None:
    with pytest.raises(FrameTooLargeError):
        encode_frame(FrameType.REQUEST, {"kind": "x", "blob": b"\0" * MAX_FRAME_BYTES}, 1)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"\x00\x00", TruncatedFrameError, "inside a length prefix (2 of 4 bytes)"),
        (LENGTH_PREFIX.pack(100) + b"\x81" * 10, TruncatedFrameError, "(10 of 100 bytes)"),
        (LENGTH_PREFIX.pack(0), MalformedFrameError, "frame length 0"),
        (LENGTH_PREFIX.pack(3) + b"\xc1\xc1\xc1", MalformedFrameError, "not valid msgpack"),
        (LENGTH_PREFIX.pack(3) + b"\x93\x01\x02", MalformedFrameError, "not valid msgpack"),
        (LENGTH_PREFIX.pack(2) + b"\x01\x02", MalformedFrameError, "not valid msgpack"),
    ],
)
async def test_bad_bytes_are_a_typed_frame_error(
    data: bytes, error: type[FrameError], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        await read_frame(reader_of(data))


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
