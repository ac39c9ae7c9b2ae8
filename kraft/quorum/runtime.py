"""The asyncio shell around the pure Raft core: the replicated state-machine API.

One task owns the core (STYLE §1). Other tasks reach it only through two bounded queues:
inbound messages (from the rpc server) and proposals (from `propose`). The loop:

    drain queues into core.step/propose -> tick by the clock -> ready() -> persist (in one
    storage thread: election state, snapshot, truncation, entries + one fsync) -> send ->
    apply committed entries to the state machine -> advance() -> maybe snapshot

While one Ready is being persisted, messages and proposals keep queueing, so the next Ready
carries all of them: appends and fsyncs are grouped, and throughput grows with load.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog

from kraft.raft.config import RaftConfig
from kraft.raft.core import RaftCore
from kraft.raft.messages import Message
from kraft.raft.types import (
    ElectionState,
    Entry,
    EntryKind,
    NotLeaderError,
    ProposalTooLargeError,
    QuorumStatus,
    Ready,
    RestoredState,
    Role,
    RoleChange,
    Snapshot,
    SnapshotId,
)
from kraft.storage.interfaces import LogStore, SnapshotStore, StateStore

log = structlog.get_logger(__name__)
T = TypeVar("T")

INBOUND_QUEUE_MAX_MESSAGES = 10_000
PROPOSAL_QUEUE_MAX = 100_000
MAX_MESSAGES_PER_LOOP = 2_000  # bound one loop iteration so ticks are never starved
# The coarsest timer resolution of the event loops we run on (uvloop: 1 ms)
LOOP_TIMER_RESOLUTION_S = 0.001
PROPOSE_TIMEOUT_S_DEFAULT = 10.0
SNAPSHOT_INTERVAL_RECORDS_DEFAULT = 20_000
CLOSE_TIMEOUT_S = 2.0


class Transport(Protocol):
    def send(self, to: int, message: Message) -> None:
        """Queues a message for a peer; never blocks; may drop (raft retransmits)."""
        ...


class StateMachine(Protocol):
    def apply(self, entry: Entry) -> None: ...

    def snapshot_writer(self) -> Callable[[], bytes]:
        """Captures the state as it is now (cheaply: copy-on-write) and returns a function
        that serializes that capture; the function runs in another thread."""
        ...

    def restore(self, data: bytes) -> None: ...


class ProposalLostError(Exception):
    """The entry appended for a proposal was replaced by another leader's: not committed."""


class OverloadedError(Exception):
    """The proposal queue is full: back off and retry."""


@dataclass(slots=True)
class _Proposal:
    records: list[bytes]
    future: asyncio.Future[int]
    submitted_at: float


@dataclass(frozen=True, slots=True)
class RuntimeHooks:
    """Callbacks for logs and metrics; each defaults to doing nothing."""

    on_role_change: Callable[[RoleChange], None] = lambda change: None
    on_commit_latency: Callable[[float], None] = lambda seconds: None
    on_append: Callable[[int, float], None] = lambda entries, fsync_seconds: None
    # The loop died of a bug: the node must stop (STYLE §4: programmer errors crash the node)
    on_fatal: Callable[[BaseException], None] = lambda error: None


def restore_state(
    log_store: LogStore, state_store: StateStore, snapshot_store: SnapshotStore
) -> RestoredState:
    """Reads back what the stores hold, as the core wants it at start.

    The log store is first made to start at the latest snapshot's end: a crash between
    saving a snapshot and dropping the log below it (Ready step 2) can leave older entries
    there, or a log that ends below the snapshot, which must restart empty at its end so
    that the core's first append continues it."""
    election_state = state_store.read() or ElectionState(epoch=0)
    snapshot = snapshot_store.latest()
    first_offset = snapshot.snapshot_id.end_offset if snapshot else 0
    if log_store.start_offset() < first_offset:
        log_store.delete_before(first_offset)
    assert log_store.start_offset() == first_offset or (
        snapshot is None and log_store.start_offset() == 0
    ), f"log starts at {log_store.start_offset()}, not at the snapshot end {first_offset}"
    entries = log_store.read(first_offset) if log_store.end_offset() > first_offset else []
    return RestoredState(election_state=election_state, snapshot=snapshot, entries=entries)


class QuorumRuntime:
    def __init__(
        self,
        config: RaftConfig,
        *,
        log_store: LogStore,
        state_store: StateStore,
        snapshot_store: SnapshotStore,
        transport: Transport,
        state_machine: StateMachine,
        tick_ms: int,
        snapshot_interval_records: int = SNAPSHOT_INTERVAL_RECORDS_DEFAULT,
        rng: random.Random | None = None,
        hooks: RuntimeHooks | None = None,
    ) -> None:
        assert tick_ms > 0
        self._config = config
        self._log_store = log_store
        self._state_store = state_store
        self._snapshot_store = snapshot_store
        self._transport = transport
        self._state_machine = state_machine
        self._tick_s = tick_ms / 1000.0
        self._tick_ms = tick_ms
        self._snapshot_interval_records = snapshot_interval_records
        self._rng = rng or random.Random()
        self._hooks = hooks or RuntimeHooks()
        self._inbound: asyncio.Queue[tuple[int, Message]] = asyncio.Queue(
            INBOUND_QUEUE_MAX_MESSAGES
        )
        self._proposals: asyncio.Queue[_Proposal] = asyncio.Queue(PROPOSAL_QUEUE_MAX)
        # set while the loop sleeps: what wakes it (a message, a proposal) resolves it
        self._wakeup: asyncio.Future[None] | None = None
        self._storage_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raft-io")
        # Serializing a large state machine takes long: never on the raft loop, whose ticks
        # and fetch answers must keep flowing (check-quorum would see a stalled leader).
        self._snapshot_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")
        self._snapshot_task: asyncio.Task[None] | None = None
        self._finished_snapshots: list[Snapshot] = []
        self._pending: dict[int, tuple[int, _Proposal]] = {}  # last offset -> (epoch, proposal)
        self._core: RaftCore | None = None
        self._task: asyncio.Task[None] | None = None
        self._applied_end_offset = 0  # one past the last applied entry
        self._applied_epoch = 0
        self._records_since_snapshot = 0
        self._applied_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._tick_count = 0
        self._tick_origin_unix_ms = 0.0
        self._dropped_inbound = 0
        self._ready_once = False
        self._closing = False

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        restored = restore_state(self._log_store, self._state_store, self._snapshot_store)
        if restored.snapshot is not None:
            self._state_machine.restore(restored.snapshot.data)
            self._applied_end_offset = restored.snapshot.snapshot_id.end_offset
            self._applied_epoch = restored.snapshot.snapshot_id.epoch
        self._core = RaftCore(self._config, restored, self._rng)
        self._tick_origin_unix_ms = time.time() * 1000.0
        log.info(
            "quorum.started",
            node_id=self._config.node_id,
            epoch=restored.election_state.epoch,
            voted_id=restored.election_state.voted_id,
            log_entries=len(restored.entries),
            snapshot_end_offset=self._applied_end_offset,
        )
        self._task = asyncio.create_task(self._run(), name=f"raft-{self._config.node_id}")
        self._task.add_done_callback(self._on_loop_done)

    def _on_loop_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        assert error is not None
        log.critical("quorum.loop_crashed", error=repr(error), exc_info=error)
        self._fail_pending(error)
        self._hooks.on_fatal(error)

    async def close(self, *, resign: bool = True) -> None:
        """Stops the loop; a leader first resigns (EndQuorumEpoch) so the next election
        starts at once instead of after a timeout."""
        if self._task is None:
            return
        core = self._core
        assert core is not None
        if resign and core.role is Role.LEADER and not self._task.done():
            self._closing = True
            self._wake()
            # the loop resigns and flushes the resulting Ready before it stops
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_TIMEOUT_S)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._task = None
        if self._snapshot_task is not None:
            self._snapshot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._snapshot_task
        self._fail_pending(NotLeaderError(None, core.epoch))
        self._storage_thread.shutdown(wait=True)
        self._snapshot_thread.shutdown(wait=True)

    # --- inputs from other tasks -----------------------------------------------------------

    def deliver(self, sender: int, message: Message) -> None:
        """Called by the rpc server for each raft message; never blocks."""
        try:
            self._inbound.put_nowait((sender, message))
        except asyncio.QueueFull:
            self._dropped_inbound += 1  # raft retransmits; the count shows overload
            return
        self._wake()

    async def propose(
        self, records: Sequence[bytes], timeout_s: float = PROPOSE_TIMEOUT_S_DEFAULT
    ) -> int:
        """Appends records through the leader and returns the offset of the last one once it
        is committed and applied on this node. Raises NotLeaderError (with the leader hint),
        ProposalLostError, OverloadedError or TimeoutError."""
        assert records, "a proposal carries at least one record"
        core = self._require_core()
        if core.role is not Role.LEADER:
            raise NotLeaderError(core.leader_id, core.epoch)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        try:
            self._proposals.put_nowait(_Proposal(list(records), future, time.monotonic()))
        except asyncio.QueueFull:
            raise OverloadedError(f"{PROPOSAL_QUEUE_MAX} proposals already queued") from None
        self._wake()
        return await _with_deadline(future, timeout_s)

    async def wait_applied(self, offset: int, timeout_s: float) -> None:
        """Returns once the entry at `offset` has been applied on this node."""
        if self._applied_end_offset > offset:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._applied_waiters.append((offset, future))
        await _with_deadline(future, timeout_s)

    # --- views -----------------------------------------------------------------------------

    def status(self) -> QuorumStatus:
        return self._require_core().status()

    def read_index(self) -> int | None:
        """See RaftCore.read_index: what a linearizable metadata read waits to apply."""
        return self._require_core().read_index()

    @property
    def role(self) -> Role:
        return self._require_core().role

    @property
    def leader_id(self) -> int | None:
        return self._require_core().leader_id

    @property
    def applied_end_offset(self) -> int:
        return self._applied_end_offset

    @property
    def dropped_inbound_messages(self) -> int:
        return self._dropped_inbound

    def tick_to_unix_ms(self, tick: int) -> int:
        return int(self._tick_origin_unix_ms + tick * self._tick_ms)

    def is_ready(self) -> bool:
        """Ready once a leader is known and this node has applied up to the high watermark
        it saw then; it stays ready after that (a lagging node is still serving)."""
        if not self._ready_once and self._core is not None:
            core = self._core
            if core.leader_id is not None and self._applied_end_offset >= core.high_watermark:
                self._ready_once = True
        return self._ready_once

    # --- the loop --------------------------------------------------------------------------

    def _require_core(self) -> RaftCore:
        assert self._core is not None, "start() the runtime first"
        return self._core

    async def _run(self) -> None:
        core = self._require_core()
        loop = asyncio.get_running_loop()
        next_tick_at = loop.time() + self._tick_s
        while True:
            if self._closing:
                await self._resign_and_flush(core)
                return
            delay = next_tick_at - loop.time()
            if delay > 0 and not core.has_ready() and self._nothing_queued():
                # Sleep through the ticks at which nothing is due (an idle node woke 100
                # times a second per raft.tick.ms 10, a tenth of a core for three nodes);
                # a message or a proposal wakes the loop sooner. uvloop's clock and timers
                # count whole milliseconds: a timer for less than one fires at once with the
                # clock unchanged, and the loop spun until the millisecond passed.
                delay += (core.ticks_until_due() - 1) * self._tick_s
                await self._sleep(loop, max(delay, LOOP_TIMER_RESOLUTION_S))
            # the ticks slept through first, so what arrived meanwhile is stepped at the
            # tick it arrived in (a leader stamps each fetch with it for check-quorum)
            now = loop.time()
            while now >= next_tick_at:
                core.tick()
                self._tick_count += 1
                next_tick_at += self._tick_s
            self._drain_inbound(core)
            self._drain_proposals(core)
            self._compact_finished_snapshots(core)
            if core.has_ready():
                await self._handle_ready(core, core.ready())

    async def _sleep(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        """Until `delay` passes or _wake() is called. A future and a timer, not
        wait_for(Event.wait()): that made a task per sleep, and a busy loop sleeps often."""
        wakeup = loop.create_future()
        self._wakeup = wakeup
        timer = loop.call_later(delay, _resolve, wakeup)
        try:
            await wakeup
        finally:
            timer.cancel()
            self._wakeup = None

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            _resolve(wakeup)

    def _nothing_queued(self) -> bool:
        return self._inbound.empty() and self._proposals.empty()

    def _drain_inbound(self, core: RaftCore) -> None:
        for _ in range(MAX_MESSAGES_PER_LOOP):
            try:
                sender, message = self._inbound.get_nowait()
            except asyncio.QueueEmpty:
                return
            core.step(sender, message)

    def _drain_proposals(self, core: RaftCore) -> None:
        for _ in range(MAX_MESSAGES_PER_LOOP):
            try:
                proposal = self._proposals.get_nowait()
            except asyncio.QueueEmpty:
                return
            if proposal.future.done():
                continue  # its caller timed out or was cancelled before it was appended
            try:
                ack = core.propose(proposal.records)
            except (NotLeaderError, ProposalTooLargeError) as error:
                proposal.future.set_exception(error)
                continue
            self._pending[ack.last_offset] = (ack.epoch, proposal)

    async def _handle_ready(self, core: RaftCore, ready: Ready) -> None:
        for change in ready.role_changes:
            self._log_role_change(change)
        # Raft thesis §10.2.1: a leader may write its own log in parallel with replicating it,
        # since its messages then carry only entries and a high watermark computed from what
        # was already durable. Anything that changes its election state, truncates or installs
        # a snapshot keeps the strict order: persist first, then send.
        send_first = (
            core.role is Role.LEADER
            and ready.election_state is None
            and ready.truncate_to is None
            and ready.snapshot is None
        )
        if ready.truncate_to is not None:
            self._fail_pending_from(ready.truncate_to)
        if send_first:
            self._send(ready)
        if _needs_storage(ready):
            started = time.monotonic()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._storage_thread, self._persist, ready)
            if ready.entries:
                self._hooks.on_append(len(ready.entries), time.monotonic() - started)
        if not send_first:
            self._send(ready)
        self._apply(ready)
        core.advance(ready)
        self._maybe_snapshot(core)

    def _send(self, ready: Ready) -> None:
        for outbound in ready.messages:
            self._transport.send(outbound.to, outbound.message)  # type: ignore[arg-type]

    def _persist(self, ready: Ready) -> None:
        """Runs in the storage thread: everything the Ready's messages may rely on."""
        if ready.election_state is not None:
            self._state_store.write(ready.election_state)
        if ready.snapshot is not None:
            self._snapshot_store.save(ready.snapshot)
        if ready.log_start_offset is not None:
            self._log_store.delete_before(ready.log_start_offset)
        if ready.snapshot is not None and ready.snapshot_to_load is not None:
            # an installed snapshot replaces the whole log
            self._log_store.truncate(self._log_store.start_offset())
        if ready.truncate_to is not None:
            self._log_store.truncate(ready.truncate_to)
        if ready.entries:
            self._log_store.append(ready.entries)

    def _apply(self, ready: Ready) -> None:
        if ready.snapshot_to_load is not None:
            snapshot_id = ready.snapshot_to_load.snapshot_id
            self._state_machine.restore(ready.snapshot_to_load.data)
            self._applied_end_offset = snapshot_id.end_offset
            self._applied_epoch = snapshot_id.epoch
            self._records_since_snapshot = 0
            log.info("quorum.snapshot_loaded", end_offset=snapshot_id.end_offset)
            self._fail_pending_below(snapshot_id.end_offset)
        now = time.monotonic()
        for entry in ready.committed:
            if entry.offset < self._applied_end_offset:
                continue  # already covered by a loaded snapshot
            assert entry.offset == self._applied_end_offset, (
                f"committed entry {entry.offset} skips past applied end {self._applied_end_offset}"
            )
            if entry.kind is EntryKind.DATA:
                self._state_machine.apply(entry)
                self._records_since_snapshot += 1
            self._applied_end_offset = entry.offset + 1
            self._applied_epoch = entry.epoch
            self._complete_proposal(entry, now)
        self._wake_applied_waiters()

    def _complete_proposal(self, entry: Entry, now: float) -> None:
        pending = self._pending.pop(entry.offset, None)
        if pending is None:
            return
        epoch, proposal = pending
        if proposal.future.done():
            return
        if epoch == entry.epoch:
            proposal.future.set_result(entry.offset)
            self._hooks.on_commit_latency(now - proposal.submitted_at)
        else:
            proposal.future.set_exception(
                ProposalLostError(f"offset {entry.offset} was committed from epoch {entry.epoch}")
            )

    def _fail_pending_below(self, end_offset: int) -> None:
        for offset in [offset for offset in self._pending if offset < end_offset]:
            _, proposal = self._pending.pop(offset)
            if not proposal.future.done():
                proposal.future.set_exception(
                    ProposalLostError(f"offset {offset} was replaced by a snapshot")
                )

    def _fail_pending_from(self, truncated_from: int) -> None:
        """Proposals whose entries were truncated away can never commit: fail them now
        rather than at their deadline (a re-elected leader would otherwise wait on them;
        simulator controller mode, seed 3846)."""
        for offset in [offset for offset in self._pending if offset >= truncated_from]:
            _, proposal = self._pending.pop(offset)
            if not proposal.future.done():
                proposal.future.set_exception(
                    ProposalLostError(f"offset {offset} was truncated from the log")
                )

    def _fail_pending(self, error: BaseException) -> None:
        for _, proposal in self._pending.values():
            if not proposal.future.done():
                proposal.future.set_exception(error)
        self._pending.clear()

    def _wake_applied_waiters(self) -> None:
        if not self._applied_waiters:
            return
        still_waiting = []
        for offset, future in self._applied_waiters:
            if future.done():
                continue
            if self._applied_end_offset > offset:
                future.set_result(None)
            else:
                still_waiting.append((offset, future))
        self._applied_waiters = still_waiting

    def _maybe_snapshot(self, core: RaftCore) -> None:
        if self._snapshot_task is not None:
            return  # one at a time
        if self._records_since_snapshot < self._snapshot_interval_records:
            return
        end_offset = min(self._applied_end_offset, core.high_watermark)
        if end_offset <= 0 or end_offset != self._applied_end_offset:
            return
        snapshot_id = SnapshotId(end_offset, self._applied_epoch)
        writer = self._state_machine.snapshot_writer()
        self._records_since_snapshot = 0
        self._snapshot_task = asyncio.create_task(self._write_snapshot(snapshot_id, writer))
        self._snapshot_task.add_done_callback(self._on_loop_done)

    async def _write_snapshot(self, snapshot_id: SnapshotId, writer: Callable[[], bytes]) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        data = await loop.run_in_executor(self._snapshot_thread, writer)
        self._finished_snapshots.append(Snapshot(snapshot_id, data))
        self._snapshot_task = None
        self._wake()
        log.info(
            "quorum.snapshot_taken",
            end_offset=snapshot_id.end_offset,
            size_bytes=len(data),
            seconds=round(time.monotonic() - started, 3),
        )

    def _compact_finished_snapshots(self, core: RaftCore) -> None:
        """Hands the core the snapshots written meanwhile (in the task that owns it)."""
        while self._finished_snapshots:
            core.compact(self._finished_snapshots.pop(0))

    async def _resign_and_flush(self, core: RaftCore) -> None:
        core.resign()
        if core.has_ready():
            await self._handle_ready(core, core.ready())

    def _log_role_change(self, change: RoleChange) -> None:
        log.info(
            "quorum.role_changed",
            from_role=change.from_role.value,
            to_role=change.to_role.value,
            epoch=change.epoch,
            leader_id=change.leader_id,
            reason=change.reason,
        )
        self._hooks.on_role_change(change)


def _needs_storage(ready: Ready) -> bool:
    return bool(
        ready.election_state is not None
        or ready.snapshot is not None
        or ready.log_start_offset is not None
        or ready.truncate_to is not None
        or ready.entries
    )


async def _with_deadline(future: asyncio.Future[T], timeout_s: float) -> T:
    """Awaits a future that the loop completes, failing it with TimeoutError at the deadline.
    Cheaper than asyncio.wait_for (no wrapper task), which matters at one per proposal."""

    def expire() -> None:
        if not future.done():
            future.set_exception(TimeoutError(f"no commit within {timeout_s} s"))

    handle = asyncio.get_running_loop().call_later(timeout_s, expire)
    try:
        return await future
    finally:
        handle.cancel()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
