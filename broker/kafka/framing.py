"""Kafka's framing: every request and response is an int32 size followed by that many bytes.

A size below the smallest header or above MAX_REQUEST_BYTES, or a connection that ends or
stalls in the middle of a frame, is a FrameError: the server closes that one connection.

Both time limits (an idle connection, a frame that stalls) are kept by one timer per
connection rather than an asyncio.timeout around each read: that was two timers armed and
cancelled per request, 5 % of a partition leader's CPU at 1,000 produces/s. The timer wakes
at the latest at each deadline and at most once per FRAME_READ_TIMEOUT_MS otherwise.
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


class FrameReader:
    """Reads one connection's frames under both limits with a single, lazily re-armed timer.

    `read_frame` only records the deadline of the wait it starts; the timer, when it fires,
    compares the clock with the deadline then current. It is armed at most one shortest
    limit ahead, so it never fires later than a deadline set after it was armed. A wait past
    its deadline ends with the StreamReader failing with FrameError (StreamReader.
    set_exception wakes the read in progress; the connection closes after it)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        *,
        idle_timeout_ms: int = CONNECTION_MAX_IDLE_MS,
        read_timeout_ms: int = FRAME_READ_TIMEOUT_MS,
    ) -> None:
        assert idle_timeout_ms > 0, idle_timeout_ms
        assert read_timeout_ms > 0, read_timeout_ms
        self._reader = reader
        self._idle_timeout_ms = idle_timeout_ms
        self._read_timeout_ms = read_timeout_ms
        self._check_interval_s = min(idle_timeout_ms, read_timeout_ms) / 1000
        self._loop = asyncio.get_running_loop()
        self._deadline: float | None = None  # None: no read is waiting
        self._expiry_message = ""
        self._timer: asyncio.TimerHandle | None = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = None

    async def read_frame(self) -> bytes:
        """The next frame's payload. ConnectionEnded on a clean end; FrameError otherwise."""
        reader = self._reader
        idle_ms = self._idle_timeout_ms
        self._wait_until(idle_ms, f"no request for {idle_ms} ms: idle connection")
        try:
            prefix = await reader.readexactly(SIZE_PREFIX.size)
        except asyncio.IncompleteReadError as error:
            self._deadline = None
            if not error.partial:
                raise ConnectionEnded() from None
            raise FrameError(
                f"connection ended inside a size prefix ({len(error.partial)} bytes)"
            ) from None
        (size_bytes,) = SIZE_PREFIX.unpack(prefix)
        check_frame_size(size_bytes)
        read_ms = self._read_timeout_ms
        self._wait_until(
            read_ms, f"a frame of {size_bytes} bytes did not arrive within {read_ms} ms"
        )
        try:
            return await reader.readexactly(size_bytes)
        except asyncio.IncompleteReadError as error:
            raise FrameError(
                f"connection ended after {len(error.partial)} of a frame's {size_bytes} bytes"
            ) from None
        finally:
            self._deadline = None

    def _wait_until(self, timeout_ms: int, expiry_message: str) -> None:
        now = self._loop.time()
        self._deadline = deadline = now + timeout_ms / 1000
        self._expiry_message = expiry_message
        if self._timer is None:
            self._arm(now, deadline)

    def _arm(self, now: float, deadline: float) -> None:
        when = min(deadline, now + self._check_interval_s)
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return  # no read waits: the next one arms the timer again
        now = self._loop.time()
        if now >= deadline:
            self._reader.set_exception(FrameError(self._expiry_message))
            return
        self._arm(now, deadline)


async def read_frame(
    reader: asyncio.StreamReader,
    *,
    idle_timeout_ms: int = CONNECTION_MAX_IDLE_MS,
    read_timeout_ms: int = FRAME_READ_TIMEOUT_MS,
) -> bytes:
    """One frame from `reader`; a connection reads all of its frames through one
    FrameReader instead."""
    frames = FrameReader(reader, idle_timeout_ms=idle_timeout_ms, read_timeout_ms=read_timeout_ms)
    try:
        return await frames.read_frame()
    finally:
        frames.close()


def frame(payload: bytes) -> bytes:
    return SIZE_PREFIX.pack(len(payload)) + payload
