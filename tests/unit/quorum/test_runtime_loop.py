"""The raft loop's shell: while nothing happens it wakes once per tick, on both event loops
the nodes run on (the standard one and uvloop, whose timers count whole milliseconds)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import uvloop

from kraft.quorum.runtime import QuorumRuntime
from kraft.raft.config import RaftConfig
from kraft.raft.messages import Message
from kraft.statemachine.kv import KeyValueStateMachine
from kraft.storage.memory import MemoryLogStore, MemorySnapshotStore, MemoryStateStore

TICK_MS = 10
IDLE_TICKS = 30


class NoPeers:
    def send(self, to: int, message: Message) -> None:
        raise AssertionError(f"a single voter sends nothing, not {message!r} to {to}")


async def sleeps_per_tick_while_idle() -> float:
    runtime = QuorumRuntime(
        RaftConfig(node_id=1, voters=frozenset({1})),
        log_store=MemoryLogStore(),
        state_store=MemoryStateStore(),
        snapshot_store=MemorySnapshotStore(),
        transport=NoPeers(),
        state_machine=KeyValueStateMachine(),
        tick_ms=TICK_MS,
    )
    sleeps = 0
    sleep = runtime._sleep

    async def counted_sleep(loop: asyncio.AbstractEventLoop, delay: float) -> None:
        nonlocal sleeps
        sleeps += 1
        await sleep(loop, delay)

    runtime._sleep = counted_sleep  # type: ignore[method-assign]
    await runtime.start()
    try:
        await runtime.wait_applied(0, timeout_s=5.0)  # it leads itself: from now on, idle
        sleeps_before, ticks_before = sleeps, runtime._tick_count
        while runtime._tick_count - ticks_before < IDLE_TICKS:
            await asyncio.sleep(TICK_MS / 1000)
        return (sleeps - sleeps_before) / (runtime._tick_count - ticks_before)
    finally:
        await runtime.close()


@pytest.mark.parametrize(
    "loop_factory",
    [asyncio.new_event_loop, uvloop.new_event_loop],
    ids=["asyncio", "uvloop"],
)
def test_an_idle_quorum_loop_sleeps_about_once_per_tick(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    """Before the fix, uvloop's loop spun through sub-millisecond timers: 20-25 turns per
    tick, most of an idle node's CPU."""
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(sleeps_per_tick_while_idle()) <= 3.0
