"""The snapshot store (kraft.storage.snapshots): atomic files, CRC on load, old ones go."""

from __future__ import annotations

from pathlib import Path

import pytest

from kraft.raft.types import Snapshot, SnapshotId
from kraft.storage.errors import CorruptSnapshotError
from kraft.storage.memory import MemorySnapshotStore
from kraft.storage.snapshots import FileSnapshotStore, snapshot_file_name


def test_no_snapshot_on_fresh_storage(tmp_path: Path) -> None:
    assert FileSnapshotStore(tmp_path).latest() is None


def test_saved_snapshot_is_latest_and_older_ones_are_deleted(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(Snapshot(SnapshotId(10, 1), b"state at 10"))
    store.save(Snapshot(SnapshotId(25, 2), b"state at 25"))
    assert FileSnapshotStore(tmp_path).latest() == Snapshot(SnapshotId(25, 2), b"state at 25")
    assert [path.name for path in tmp_path.iterdir()] == [snapshot_file_name(SnapshotId(25, 2))]
    assert snapshot_file_name(SnapshotId(25, 2)) == "00000000000000000025-0000000002.checkpoint"


def test_partial_temporary_snapshot_is_ignored(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(Snapshot(SnapshotId(10, 1), b"complete"))
    temporary = tmp_path / (snapshot_file_name(SnapshotId(40, 3)) + ".tmp")
    temporary.write_bytes(b"KRSN\x01partial")
    assert store.latest() == Snapshot(SnapshotId(10, 1), b"complete")


def test_flipped_bit_fails_the_crc_check(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(Snapshot(SnapshotId(10, 1), b"some state machine bytes"))
    path = tmp_path / snapshot_file_name(SnapshotId(10, 1))
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptSnapshotError, match="CRC"):
        store.latest()


def test_truncated_snapshot_is_refused(tmp_path: Path) -> None:
    store = FileSnapshotStore(tmp_path)
    store.save(Snapshot(SnapshotId(10, 1), b"some state machine bytes"))
    path = tmp_path / snapshot_file_name(SnapshotId(10, 1))
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(CorruptSnapshotError):
        store.latest()


def test_empty_snapshot_data_round_trips(tmp_path: Path) -> None:
    FileSnapshotStore(tmp_path).save(Snapshot(SnapshotId(0, 0), b""))
    assert FileSnapshotStore(tmp_path).latest() == Snapshot(SnapshotId(0, 0), b"")


def test_memory_snapshot_store_keeps_the_newest() -> None:
    store = MemorySnapshotStore()
    assert store.latest() is None
    store.save(Snapshot(SnapshotId(10, 1), b"a"))
    store.save(Snapshot(SnapshotId(20, 1), b"b"))
    assert store.latest() == Snapshot(SnapshotId(20, 1), b"b")


def test_leftover_temporary_snapshot_is_removed_at_open(tmp_path: Path) -> None:
    temporary = tmp_path / (snapshot_file_name(SnapshotId(40, 3)) + ".tmp")
    temporary.write_bytes(b"KRSN\x01partial")
    (tmp_path / "log-start-offset.checkpoint").write_text("{}")  # the log's file stays
    assert FileSnapshotStore(tmp_path).latest() is None
    assert [path.name for path in tmp_path.iterdir()] == ["log-start-offset.checkpoint"]
