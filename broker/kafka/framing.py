"""Kafka's framing: every request and response is an int32 size followed by that many bytes.

A size below the smallest header or above MAX_REQUEST_BYTES, or a connection that ends or
stalls in the middle of a frame, is a FrameError: the server closes that one connection.

The listener (broker.kafka.server) keeps both time limits, an idle connection and a frame
that stalls, with one timer per connection.
"""

from __future__ import annotations

import struct

from kraft.rpc.splitter import LengthPrefixedSplitter

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


def frame_splitter() -> LengthPrefixedSplitter:
    """Cuts one connection's stream into request payloads (FrameError for a size out of
    bounds)."""
    return LengthPrefixedSplitter(SIZE_PREFIX, check_frame_size, "size prefix")


def frame(payload: bytes) -> bytes:
    return SIZE_PREFIX.pack(len(payload)) + payload
