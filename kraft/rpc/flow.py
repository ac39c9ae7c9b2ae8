"""Backpressure of a server connection that is an asyncio.Protocol (the rpc and the Kafka
listeners): the connection is read only while its requests waiting or running stay under
the in-flight limit and the peer reads its answers; a peer that reads none of its answers
for a write timeout loses the connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class ReadGate:
    def __init__(
        self,
        transport: asyncio.Transport,
        max_in_flight: int,
        write_timeout_s: float,
        on_write_timeout: Callable[[], None],
    ) -> None:
        assert max_in_flight > 0 and write_timeout_s > 0
        self._transport = transport
        self._max_in_flight = max_in_flight
        self._write_timeout_s = write_timeout_s
        self._on_write_timeout = on_write_timeout
        self._reading_paused = False
        self._writing_paused = False
        self._write_timer: asyncio.TimerHandle | None = None

    def writing_paused(self, waiting: int, in_flight: int) -> None:
        """The transport's buffer passed its high mark (Protocol.pause_writing)."""
        self._writing_paused = True
        self.update(waiting, in_flight)
        self._write_timer = asyncio.get_running_loop().call_later(
            self._write_timeout_s, self._write_timed_out
        )

    def writing_resumed(self, waiting: int, in_flight: int) -> None:
        """The buffer went below its low mark (Protocol.resume_writing)."""
        self._writing_paused = False
        self.stop()
        self.update(waiting, in_flight)

    def update(self, waiting: int, in_flight: int) -> None:
        """Pauses or resumes reading for `waiting` requests read and not started and
        `in_flight` running."""
        should_pause = self._writing_paused or waiting > 0 or in_flight >= self._max_in_flight
        if should_pause and not self._reading_paused:
            self._transport.pause_reading()
            self._reading_paused = True
        elif not should_pause and self._reading_paused:
            self._transport.resume_reading()
            self._reading_paused = False

    def stop(self) -> None:
        """No write timeout any more (the connection closes, or the peer reads again)."""
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_timed_out(self) -> None:
        self._write_timer = None
        self._on_write_timeout()
