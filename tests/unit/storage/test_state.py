"""The quorum-state file (kraft.storage.state): atomic replacement and typed corruption."""

from __future__ import annotations

from pathlib import Path

import pytest

from kraft.raft.types import ElectionState
from kraft.storage.errors import CorruptStateError
from kraft.storage.state import FileStateStore


def test_fresh_storage_has_no_election_state(tmp_path: Path) -> None:
    assert FileStateStore(tmp_path / "quorum-state").read() is None


def test_written_state_reads_back_after_reopen(tmp_path: Path) -> None:
    FileStateStore(tmp_path / "quorum-state").write(
        ElectionState(epoch=3, voted_id=2, leader_id=None)
    )
    FileStateStore(tmp_path / "quorum-state").write(
        ElectionState(epoch=4, voted_id=None, leader_id=1)
    )
    assert FileStateStore(tmp_path / "quorum-state").read() == ElectionState(
        epoch=4, voted_id=None, leader_id=1
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["quorum-state"]


def test_leftover_temporary_file_is_ignored(tmp_path: Path) -> None:
    """A crash between writing the temporary file and the rename keeps the old state."""
    store = FileStateStore(tmp_path / "quorum-state")
    store.write(ElectionState(epoch=5, voted_id=1))
    (tmp_path / "quorum-state.tmp").write_bytes(b'{"version": 1, "epo')
    assert FileStateStore(tmp_path / "quorum-state").read() == ElectionState(epoch=5, voted_id=1)
    store.write(ElectionState(epoch=6))
    assert FileStateStore(tmp_path / "quorum-state").read() == ElectionState(epoch=6)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"version": 2, "epoch": 1, "voted_id": null, "leader_id": null}',
        b'{"version": 1, "epoch": -1, "voted_id": null, "leader_id": null}',
        b'{"version": 1, "epoch": "7", "voted_id": null, "leader_id": null}',
        b'{"version": 1, "epoch": 1, "voted_id": true, "leader_id": null}',
    ],
)
def test_corrupt_state_file_raises_a_typed_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "quorum-state").write_bytes(content)
    with pytest.raises(CorruptStateError, match="quorum-state"):
        FileStateStore(tmp_path / "quorum-state").read()
