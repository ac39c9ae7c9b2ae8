"""The replicated state machine of the simulation: an append-only list of values.

It applies committed DATA entries in offset order (LEADER_CHANGE entries take an offset but
carry no value), snapshots itself to bytes, and resets itself from a snapshot. It asserts
that committed entries arrive contiguously: a gap or a repeat is a bug of the core.
"""

from __future__ import annotations

import json

from kraft.raft.types import Entry, EntryKind, Snapshot, SnapshotId


class StateMachineContractError(AssertionError):
    """Committed entries arrived out of order, or a snapshot moved the state backwards."""


def encode_values(values: list[bytes]) -> bytes:
    return json.dumps([value.decode() for value in values]).encode()


def decode_values(data: bytes) -> list[bytes]:
    return [value.encode() for value in json.loads(data.decode())]


class ValueList:
    def __init__(self, snapshot: Snapshot | None) -> None:
        self.values: list[bytes] = []
        self.applied_end = 0  # one past the last applied offset
        self.last_applied_epoch = 0
        self.last_snapshot_end = 0
        if snapshot is not None:
            self.reset(snapshot)

    def reset(self, snapshot: Snapshot) -> None:
        self.values = decode_values(snapshot.data)
        self.applied_end = snapshot.snapshot_id.end_offset
        self.last_applied_epoch = snapshot.snapshot_id.epoch
        self.last_snapshot_end = self.applied_end

    def load(self, snapshot: Snapshot) -> None:
        if snapshot.snapshot_id.end_offset < self.applied_end:
            raise StateMachineContractError(
                f"snapshot_to_load ends at {snapshot.snapshot_id.end_offset}, below the "
                f"{self.applied_end} entries already applied"
            )
        self.reset(snapshot)

    def apply(self, entry: Entry) -> None:
        if entry.offset != self.applied_end:
            raise StateMachineContractError(
                f"committed entry at offset {entry.offset} applied after offset "
                f"{self.applied_end - 1}: committed entries must be contiguous"
            )
        if entry.kind == EntryKind.DATA:
            self.values.append(entry.data)
        self.applied_end += 1
        self.last_applied_epoch = entry.epoch

    def maybe_snapshot(self, every_entries: int) -> Snapshot | None:
        """A snapshot of the state once `every_entries` more entries were applied."""
        if every_entries <= 0 or self.applied_end - self.last_snapshot_end < every_entries:
            return None
        self.last_snapshot_end = self.applied_end
        snapshot_id = SnapshotId(self.applied_end, self.last_applied_epoch)
        return Snapshot(snapshot_id, encode_values(self.values))
