"""The file StateStore: the quorum-state file holding the epoch, vote and known leader
(KIP-595), which a voter must persist before it answers anything that depends on them.

The file is small JSON, replaced atomically (temporary file, fsync, rename, fsync of the
directory), so a crash leaves the old state or the new one, never a mix; a temporary file
left by a crash is ignored. A file that exists but does not parse is an operating error
(CorruptStateError): the node must not guess its vote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kraft.raft.types import ElectionState
from kraft.storage.durable_files import write_file_atomically
from kraft.storage.errors import CorruptStateError

QUORUM_STATE_FILE_NAME = "quorum-state"
QUORUM_STATE_VERSION = 1


class FileStateStore:
    """StateStore over the file at `path` (conventionally `<metadata dir>/quorum-state`,
    QUORUM_STATE_FILE_NAME); its directory is created if missing."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path

    @property
    def path(self) -> Path:
        return self._path

    def read(self) -> ElectionState | None:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            content = json.loads(raw)
        except ValueError as error:
            raise CorruptStateError(
                f"quorum-state file {self._path} is not JSON: {error}"
            ) from error
        return decode_election_state(content, self._path)

    def write(self, state: ElectionState) -> None:
        content = {
            "version": QUORUM_STATE_VERSION,
            "epoch": state.epoch,
            "voted_id": state.voted_id,
            "leader_id": state.leader_id,
        }
        write_file_atomically(self._path, json.dumps(content).encode())


def decode_election_state(content: Any, path: Path) -> ElectionState:
    """Checks every field, naming the file and the bad value."""
    if not isinstance(content, dict):
        raise CorruptStateError(
            f"quorum-state file {path} holds {type(content).__name__}, not an object"
        )
    if content.get("version") != QUORUM_STATE_VERSION:
        raise CorruptStateError(
            f"quorum-state file {path} has version {content.get('version')!r}, "
            f"expected {QUORUM_STATE_VERSION}"
        )
    epoch = content.get("epoch")
    if not isinstance(epoch, int) or not _is_count(epoch):
        raise CorruptStateError(f"quorum-state file {path} has bad epoch {epoch!r}")
    voted_id = content.get("voted_id")
    leader_id = content.get("leader_id")
    for name, value in (("voted_id", voted_id), ("leader_id", leader_id)):
        if value is not None and not _is_count(value):
            raise CorruptStateError(f"quorum-state file {path} has bad {name} {value!r}")
    return ElectionState(epoch=epoch, voted_id=voted_id, leader_id=leader_id)


def _is_count(value: object) -> bool:
    """A non-negative int (bool is an int to Python, but not a valid id or epoch here)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
