"""The raft loop's shell: while nothing is due it sleeps through the ticks (the core says how
many: RaftCore.ticks_until_due), on both event loops the nodes run on (the standard one and
uvloop, whose timers count whole milliseconds), and it still wakes at once for a proposal."""

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


async def idle_loop_figures() -> tuple[int, int, int]:
    """(sleeps, ticks) while a single voter that leads itself sits idle for IDLE_TICKS ticks
    of wall time, then how many sleeps a proposal made after that cut short."""
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

    cut_short = 0
    wake = runtime._wake

    def counted_wake() -> None:
        nonlocal cut_short
        if runtime._wakeup is not None and not runtime._wakeup.done():
            cut_short += 1
        wake()

    runtime._sleep = counted_sleep  # type: ignore[method-assign]
    runtime._wake = counted_wake  # type: ignore[method-assign]
    await runtime.start()
    try:
        await runtime.wait_applied(0, timeout_s=5.0)  # it leads itself: from now on, idle
        sleeps_before, ticks_before = sleeps, runtime._tick_count
        # IDLE_TICKS ticks by the loop's own clock, which the runtime ticks by, plus one:
        # uvloop's clock counts whole milliseconds, so a bare sleep may end a little early
        loop = asyncio.get_running_loop()
        window_ends_at = loop.time() + (IDLE_TICKS + 1) * TICK_MS / 1000
        while (left := window_ends_at - loop.time()) > 0:
            await asyncio.sleep(left)
        idle_sleeps = sleeps - sleeps_before
        cut_short = 0
        await runtime.propose([KeyValueStateMachine.encode_put("k", "v")], timeout_s=5.0)
        return idle_sleeps, runtime._tick_count - ticks_before, cut_short
    finally:
        await runtime.close()


@pytest.mark.parametrize(
    "loop_factory",
    [asyncio.new_event_loop, uvloop.new_event_loop],
    ids=["asyncio", "uvloop"],
)
def test_an_idle_quorum_loop_sleeps_through_the_ticks_at_which_nothing_is_due(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    """It woke once per tick (and, before that fix, uvloop's loop spun 20-25 turns per tick
    through sub-millisecond timers, most of an idle node's CPU). A proposal still wakes it:
    the ticks slept through are counted when it does."""
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        idle_sleeps, idle_ticks, sleeps_cut_short = runner.run(idle_loop_figures())
    assert idle_sleeps <= 2, f"{idle_sleeps} sleeps in {IDLE_TICKS} idle ticks"
    assert idle_ticks >= IDLE_TICKS  # the clock kept up: the ticks slept through were ticked
    assert sleeps_cut_short == 1  # the proposal woke it: it did not wait for a timer
