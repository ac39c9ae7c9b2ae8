"""Cuts a byte stream of length-prefixed frames into frame payloads, without I/O.

The rpc connections (kraft.rpc.framing) and the Kafka listener (broker.kafka.framing) both
frame their streams as a big-endian length and that many bytes; each feeds its splitter what
every read of the socket brought, right where it arrives (asyncio.Protocol.data_received),
instead of a task awaiting StreamReader.readexactly twice per frame.
"""

from __future__ import annotations

import struct
from collections.abc import Callable


class LengthPrefixedSplitter:
    """One connection's frames. `check_size` raises the owner's error for a length out of
    bounds, as soon as the prefix is in and before the frame's bytes arrive (nothing is
    buffered for it); the connection must then close, since what follows cannot be framed."""

    def __init__(
        self, prefix: struct.Struct, check_size: Callable[[int], None], prefix_name: str
    ) -> None:
        self._prefix = prefix
        self._check_size = check_size
        self._prefix_name = prefix_name  # in messages: "size prefix", "length prefix"
        self._chunks: list[bytes] = []  # the start of an unfinished frame
        self._buffered = 0  # bytes in _chunks
        self._needed = prefix.size  # bytes the unfinished frame needs in all
        self._size_bytes: int | None = None  # its size, once its prefix is in

    @property
    def partial(self) -> bool:
        """Bytes of an unfinished frame are buffered."""
        return self._buffered > 0

    @property
    def partial_size_bytes(self) -> int | None:
        """The unfinished frame's size, once its prefix is in."""
        return self._size_bytes

    def feed(self, data: bytes) -> list[bytes]:
        """The payloads of every frame `data` completes, in order."""
        prefix_size = self._prefix.size
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
        while end - offset >= prefix_size:
            (size_bytes,) = self._prefix.unpack_from(data, offset)
            self._check_size(size_bytes)
            if end - offset - prefix_size < size_bytes:
                self._size_bytes = size_bytes
                break
            start = offset + prefix_size
            payloads.append(data[start : start + size_bytes])
            offset = start + size_bytes
        if offset < end:
            rest = data[offset:] if offset else data
            self._chunks, self._buffered = [rest], len(rest)
            self._needed = prefix_size + (self._size_bytes or 0)
        return payloads

    def describe_partial(self) -> str:
        """Where the stream stopped, for the error when the connection ends there."""
        if self._size_bytes is None:
            return (
                f"connection ended inside a {self._prefix_name} "
                f"({self._buffered} of {self._prefix.size} bytes)"
            )
        return (
            f"connection ended after {self._buffered - self._prefix.size} of a frame's "
            f"{self._size_bytes} bytes"
        )
