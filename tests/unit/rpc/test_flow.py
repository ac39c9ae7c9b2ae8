"""A server connection's backpressure: reading stops while requests wait or the in-flight
limit is reached or the peer reads no answers, and starts again when that ends; a peer that
reads nothing for the write timeout is given up."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from kraft.rpc.flow import ReadGate


class ReadingTransport:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


def gate_on(transport: ReadingTransport, on_timeout: Any = lambda: None) -> ReadGate:
    return ReadGate(cast(asyncio.Transport, transport), 2, 0.02, on_timeout)


async def test_reading_pauses_at_the_in_flight_limit_or_with_requests_waiting() -> None:
    transport = ReadingTransport()
    gate = gate_on(transport)
    gate.update(waiting=0, in_flight=1)
    gate.update(waiting=0, in_flight=2)
    gate.update(waiting=1, in_flight=2)  # already paused: no second call
    gate.update(waiting=0, in_flight=1)
    gate.update(waiting=3, in_flight=0)
    assert transport.calls == ["pause", "resume", "pause"]


async def test_a_peer_reading_again_in_time_keeps_its_connection() -> None:
    transport = ReadingTransport()
    timed_out = asyncio.Event()
    gate = gate_on(transport, timed_out.set)
    gate.writing_paused(waiting=0, in_flight=0)
    gate.writing_resumed(waiting=0, in_flight=0)
    await asyncio.sleep(0.05)
    assert not timed_out.is_set()
    assert transport.calls == ["pause", "resume"]


async def test_a_peer_reading_nothing_for_the_write_timeout_is_given_up() -> None:
    transport = ReadingTransport()
    timed_out = asyncio.Event()
    gate = gate_on(transport, timed_out.set)
    gate.writing_paused(waiting=0, in_flight=0)
    await asyncio.wait_for(timed_out.wait(), 1.0)
    assert transport.calls == ["pause"]
