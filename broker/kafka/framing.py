"""Kafka's framing: every request and response is an int32 size followed by that many bytes.

A size below the smallest header or above MAX_REQUEST_BYTES, or a connection that ends or
stalls in the middle of a frame, is a FrameError: the server closes that one connection.

The listener (broker.kafka.server) keeps both time limits, an idle connection and a frame
that stalls, with one timer per connection.
"""

from __future__ import annotations

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


def check_frame_size(size_bytes: int) -> None:
    if size_bytes < MIN_REQUEST_BYTES:
        raise FrameError(
            f"frame size {size_bytes} is below the {MIN_REQUEST_BYTES} bytes of a request header"
        )
    if size_bytes > MAX_REQUEST_BYTES:
        raise FrameError(
            f"frame size {size_bytes} is above the maximum request size {MAX_REQUEST_BYTES}"
        )


class FrameSplitter:
    """Cuts one connection's byte stream into frame payloads, without I/O: the listener feeds
    it what each read brought. A size out of bounds is refused as soon as its prefix is in,
    before the frame's bytes arrive (nothing is allocated for it)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []  # the start of an unfinished frame
        self._buffered = 0  # bytes in _chunks
        self._needed = SIZE_PREFIX.size  # bytes the unfinished frame needs in all
        self._size_bytes: int | None = None  # its size, once its prefix is in

    @property
    def partial(self) -> bool:
        """Bytes of an unfinished frame are buffered."""
        return self._buffered > 0

    @property
    def partial_size_bytes(self) -> int | None:
        return self._size_bytes

    def feed(self, data: bytes) -> list[bytes]:
        """The payloads of every frame `data` completes, in order. FrameError for a size out
        of bounds (the connection must close: what follows it cannot be framed)."""
        if self._chunks:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered < self._needed:
                return []  # a large frame arriving read by read: joined once, at its end
            data = b"".join(self._chunks)
            self._chunks, self._buffered = [], 0
        payloads = []
        offset, end = 0, len(data)
        self._size_bytes = None
        while end - offset >= SIZE_PREFIX.size:
            (size_bytes,) = SIZE_PREFIX.unpack_from(data, offset)
            check_frame_size(size_bytes)
            if end - offset - SIZE_PREFIX.size < size_bytes:
                self._size_bytes = size_bytes
                break
            start = offset + SIZE_PREFIX.size
            payloads.append(data[start : start + size_bytes])
            offset = start + size_bytes
        if offset < end:
            rest = data[offset:] if offset else data
            self._chunks, self._buffered = [rest], len(rest)
            frame_bytes = 0 if self._size_bytes is None else self._size_bytes
            self._needed = SIZE_PREFIX.size + frame_bytes
        return payloads

    def describe_partial(self) -> str:
        """Where the stream stopped, for the error when the connection ends there."""
        if self._size_bytes is None:
            return f"connection ended inside a size prefix ({self._buffered} bytes)"
        return (
            f"connection ended after {self._buffered - SIZE_PREFIX.size} of a frame's "
            f"{self._size_bytes} bytes"
        )


def frame(payload: bytes) -> bytes:
    return SIZE_PREFIX.pack(len(payload)) + payload
