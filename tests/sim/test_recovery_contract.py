"""The recovery that tests/sim/storage.py does, checked against the real shell's.

The simulator's storage, on restart, moves a log that ends below the latest snapshot to the
snapshot's end (SimStorage.restored). Without that, a crash between saving a fetched
snapshot (Ready step 2) and dropping the older log below it leaves a log store that ends
below the log the core restores: the core's first append at the snapshot's end leaves a
gap, which every LogStore refuses. The simulator found the state (seed 3993 of an early
version); this test checks that kraft.quorum.runtime recovers from it too.
"""

from __future__ import annotations

from kraft.raft.types import ElectionState, Entry, Snapshot, SnapshotId
from kraft.storage.memory import MemoryLogStore, MemorySnapshotStore, MemoryStateStore
from tests.sim.statemachine import encode_values


def test_runtime_restarts_after_a_crash_between_saving_a_snapshot_and_dropping_the_log() -> None:
    from kraft.quorum.runtime import restore_state

    log_store = MemoryLogStore()
    log_store.append([Entry(offset, 1, b"old") for offset in range(7)])
    snapshot_store = MemorySnapshotStore()
    snapshot_store.save(Snapshot(SnapshotId(10, 2), encode_values([b"v"] * 9)))
    # The crash: delete_before(10) and truncate never ran.
    restored = restore_state(
        log_store, MemoryStateStore(ElectionState(2, leader_id=1)), snapshot_store
    )
    assert restored.entries == []  # the core's log starts at the snapshot's end, 10
    log_store.append([Entry(10, 2, b"fetched from the leader")])  # its first append
    assert log_store.end_offset() == 11
