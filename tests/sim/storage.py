"""In-memory storage of one simulated node, with a durable part and an unsynced part.

A write (election state, snapshot, log truncation or append, deletion below the log start)
goes into a list of pending operations first; `sync()` makes every pending operation
durable, in order. `crash()` keeps the durable state plus a random prefix of the pending
operations (a disk that reached some of the writes in order, the last append possibly torn
at an entry boundary), and drops the rest. `restored()` builds the RestoredState a node
restarts from, the way a real log recovery would.

The shell (tests/sim/node.py) calls `sync()` once the persistence steps of a Ready are done
and before it sends any message, as the Ready contract requires.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kraft.raft.types import ElectionState, Entry, RestoredState, Snapshot

INITIAL_ELECTION_STATE = ElectionState(epoch=0, voted_id=None, leader_id=None)


@dataclass(slots=True)
class DurableState:
    """What survives a crash: the quorum-state file, the latest snapshot and the log."""

    election_state: ElectionState | None = None
    snapshot: Snapshot | None = None
    log_start_offset: int = 0
    log: list[Entry] = field(default_factory=list)  # log[i].offset == log_start_offset + i

    @property
    def log_end_offset(self) -> int:
        return self.log_start_offset + len(self.log)

    def entry_at(self, offset: int) -> Entry | None:
        index = offset - self.log_start_offset
        if 0 <= index < len(self.log):
            return self.log[index]
        return None


@dataclass(frozen=True, slots=True)
class WriteElectionState:
    state: ElectionState


@dataclass(frozen=True, slots=True)
class SaveSnapshot:
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class DeleteBefore:
    start_offset: int


@dataclass(frozen=True, slots=True)
class Truncate:
    end_offset: int


@dataclass(frozen=True, slots=True)
class Append:
    entries: tuple[Entry, ...]


Operation = WriteElectionState | SaveSnapshot | DeleteBefore | Truncate | Append


class StorageContractError(AssertionError):
    """The core asked for a write that breaks the storage contract (e.g. a gap in the log)."""


def _apply(durable: DurableState, operation: Operation) -> None:
    if isinstance(operation, WriteElectionState):
        durable.election_state = operation.state
    elif isinstance(operation, SaveSnapshot):
        current = durable.snapshot
        if current is None or operation.snapshot.snapshot_id >= current.snapshot_id:
            durable.snapshot = operation.snapshot
    elif isinstance(operation, DeleteBefore):
        _delete_before(durable, operation.start_offset)
    elif isinstance(operation, Truncate):
        keep = max(0, operation.end_offset - durable.log_start_offset)
        del durable.log[keep:]
    else:
        _append(durable, operation.entries)


def _delete_before(durable: DurableState, start_offset: int) -> None:
    if start_offset <= durable.log_start_offset:
        return
    if start_offset >= durable.log_end_offset:
        durable.log = []
    else:
        durable.log = durable.log[start_offset - durable.log_start_offset :]
    durable.log_start_offset = start_offset


def _append(durable: DurableState, entries: tuple[Entry, ...]) -> None:
    if not entries:
        return
    expected = durable.log_end_offset
    for entry in entries:
        if entry.offset != expected:
            raise StorageContractError(
                f"append of offset {entry.offset} to a log that ends at {expected} "
                f"(start {durable.log_start_offset}): entries must be contiguous"
            )
        expected += 1
    durable.log.extend(entries)


class SimStorage:
    """The storage of one node: survives crashes, loses what was not synced."""

    def __init__(self) -> None:
        self.durable = DurableState()
        self.pending: list[Operation] = []
        self.sync_count = 0

    # -- writes (pending until sync) ----------------------------------------------------

    def write_election_state(self, state: ElectionState) -> None:
        self.pending.append(WriteElectionState(state))

    def save_snapshot(self, snapshot: Snapshot) -> None:
        self.pending.append(SaveSnapshot(snapshot))

    def delete_before(self, start_offset: int) -> None:
        self.pending.append(DeleteBefore(start_offset))

    def truncate(self, end_offset: int) -> None:
        self.pending.append(Truncate(end_offset))

    def append(self, entries: list[Entry]) -> None:
        self.pending.append(Append(tuple(entries)))

    def sync(self) -> None:
        """fsync: every pending write becomes durable, in order."""
        for operation in self.pending:
            _apply(self.durable, operation)
        self.pending = []
        self.sync_count += 1

    # -- crash and restart --------------------------------------------------------------

    def crash(self, rng: random.Random) -> int:
        """Loses unsynced writes, except a random in-order prefix that reached the disk.

        Returns how many whole operations survived (for the trace)."""
        kept = rng.randint(0, len(self.pending))
        for operation in self.pending[:kept]:
            _apply(self.durable, operation)
        if kept < len(self.pending):
            torn = self.pending[kept]
            if isinstance(torn, Append) and len(torn.entries) > 1 and rng.random() < 0.5:
                prefix = rng.randint(1, len(torn.entries) - 1)
                _apply(self.durable, Append(torn.entries[:prefix]))
        self.pending = []
        return kept

    def restored(self) -> RestoredState:
        """What the node reads back at start, after a log recovery (durable too, so that
        the log the core starts from is the log on disk).

        Entries below the snapshot's end are dropped. A log that ends below the snapshot
        (a crash after saving a fetched snapshot, before dropping the older log) is emptied
        and restarts at the snapshot's end: otherwise the core's first append would leave a
        gap. Entries above the snapshot are handed over as they are, as
        kraft.quorum.runtime.restore_state does: even those of an older epoch than the
        snapshot's, left by a crash between saving an installed snapshot and truncating
        the log above it.
        """
        assert not self.pending, "restart with unsynced writes: crash() first"
        durable = self.durable
        election_state = durable.election_state or INITIAL_ELECTION_STATE
        snapshot = durable.snapshot
        if snapshot is not None:
            end = snapshot.snapshot_id.end_offset
            if durable.log_start_offset > end:
                raise StorageContractError(
                    f"log starts at {durable.log_start_offset}, past the end {end} of the "
                    "latest snapshot: offsets in between are lost"
                )
            if durable.log_end_offset <= end:
                durable.log = []
                durable.log_start_offset = end
            else:
                _delete_before(durable, end)
        elif durable.log_start_offset != 0:
            raise StorageContractError(
                f"log starts at {durable.log_start_offset} but no snapshot covers the offsets "
                "below it"
            )
        entries = list(durable.log)
        return RestoredState(election_state=election_state, snapshot=snapshot, entries=entries)

    # -- reads for the invariant checker ------------------------------------------------

    def durably_holds(self, offset: int, epoch: int) -> bool:
        """Whether the durable log has (offset, epoch), or a durable snapshot covers offset."""
        entry = self.durable.entry_at(offset)
        if entry is not None and entry.epoch == epoch:
            return True
        snapshot = self.durable.snapshot
        return snapshot is not None and snapshot.snapshot_id.end_offset > offset

    def durable_epoch(self) -> int:
        state = self.durable.election_state
        return 0 if state is None else state.epoch
