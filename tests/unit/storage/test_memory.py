"""The in-memory stores (kraft.storage.memory) keep the file stores' contract; the property
test in test_log_properties.py checks MemoryLogStore against the list model as well."""

from __future__ import annotations

from pathlib import Path

import pytest

from kraft.raft.types import ElectionState
from kraft.storage.errors import OffsetOutOfRangeError
from kraft.storage.interfaces import LogStore, SnapshotStore, StateStore
from kraft.storage.memory import MemoryLogStore, MemorySnapshotStore, MemoryStateStore
from kraft.storage.segments import FileLogStore
from kraft.storage.snapshots import FileSnapshotStore
from kraft.storage.state import FileStateStore
from tests.unit.storage.helpers import make_entries


def test_every_store_satisfies_its_protocol(tmp_path: Path) -> None:
    """Checked by mypy on this file; at run time it only builds each store."""
    log_stores: list[LogStore] = [MemoryLogStore(), FileLogStore(tmp_path / "log")]
    state_stores: list[StateStore] = [
        MemoryStateStore(),
        FileStateStore(tmp_path / "quorum-state"),
    ]
    snapshot_stores: list[SnapshotStore] = [MemorySnapshotStore(), FileSnapshotStore(tmp_path)]
    assert all(store.end_offset() == 0 for store in log_stores)
    assert all(store.read() is None for store in state_stores)
    assert all(store.latest() is None for store in snapshot_stores)


def test_memory_log_refuses_reads_outside_the_log() -> None:
    log = MemoryLogStore()
    log.append(make_entries(0, 4))
    log.delete_before(2)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(1)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(5)
    assert log.read(4) == []


def test_memory_log_refuses_a_gap_or_an_epoch_going_back() -> None:
    log = MemoryLogStore()
    log.append(make_entries(0, 2, epoch=3))
    with pytest.raises(AssertionError):
        log.append(make_entries(3, 1, epoch=3))
    with pytest.raises(AssertionError):
        log.append(make_entries(2, 1, epoch=2))
    assert log.end_offset() == 2


def test_memory_state_store_returns_the_last_write() -> None:
    store = MemoryStateStore()
    assert store.read() is None
    store.write(ElectionState(epoch=2, voted_id=1))
    assert store.read() == ElectionState(epoch=2, voted_id=1)
