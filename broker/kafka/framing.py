"""Kafka's framing: every request and response is an int32 size followed by that many bytes.

A size below the smallest header or above MAX_REQUEST_BYTES, or a connection that ends or
stalls in the middle of a frame, is a FrameError: the server closes that one connection.
"""

from __future__ import annotations

import asyncio
import struct

# Kafka's socket.request.max.bytes default (100 MiB): the largest request a client may send.
MAX_REQUEST_BYTES = 100 * 1024 * 1024
# api key, api version, correlation id: the least a request can hold
MIN_REQUEST_BYTES = 8
# Kafka's connections.max.idle.ms default: an idle connection is closed after this.
CONNECTION_MAX_IDLE_MS = 600_000
# Once a frame has started, its remaining bytes must arrive within this time.
FRAME_READ_TIMEOUT_MS = 30_000

SIZE_PREFIX = struct.Struct(">i")


class FrameError(Exception):
    """The byte stream is not a sequence of valid frames; the connection must close."""


class ConnectionEnded(Exception):
    """The peer closed the connection cleanly between two frames."""


def check_frame_size(size_bytes: int) -> None:
    if size_bytes < MIN_REQUEST_BYTES:
        raise FrameError(
            f"frame size {size_bytes} is below the {MIN_REQUEST_BYTES} bytes of a request header"
        )
    if size_bytes > MAX_REQUEST_BYTES:
        raise FrameError(
            f"frame size {size_bytes} is above the maximum request size {MAX_REQUEST_BYTES}"
        )


async def read_frame(
    reader: asyncio.StreamReader,
    *,
    idle_timeout_ms: int = CONNECTION_MAX_IDLE_MS,
    read_timeout_ms: int = FRAME_READ_TIMEOUT_MS,
) -> bytes:
    """The next frame's payload. ConnectionEnded on a clean end; FrameError otherwise."""
    try:
        async with asyncio.timeout(idle_timeout_ms / 1000):
            prefix = await reader.readexactly(SIZE_PREFIX.size)
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            raise ConnectionEnded() from None
        raise FrameError(
            f"connection ended inside a size prefix ({len(error.partial)} bytes)"
        ) from None
    except TimeoutError:
        raise FrameError(f"no request for {idle_timeout_ms} ms: idle connection") from None
    (size_bytes,) = SIZE_PREFIX.unpack(prefix)
    check_frame_size(size_bytes)
    try:
        async with asyncio.timeout(read_timeout_ms / 1000):
            return await reader.readexactly(size_bytes)
    except asyncio.IncompleteReadError as error:
        raise FrameError(
            f"connection ended after {len(error.partial)} of a frame's {size_bytes} bytes"
        ) from None
    except TimeoutError:
        raise FrameError(
            f"a frame of {size_bytes} bytes did not arrive within {read_timeout_ms} ms"
        ) from None


def frame(payload: bytes) -> bytes:
    return SIZE_PREFIX.pack(len(payload)) + payload
