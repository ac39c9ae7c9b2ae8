"""A simulated node's metadata state machine: the real MetadataStateMachine behind the
interface the simulated shell (tests/sim/node.py) drives.

It does what kraft.quorum.runtime does with committed entries: control entries
(LEADER_CHANGE) take an offset but never reach the MetadataStateMachine; DATA entries are
decoded and applied at their offset; a snapshot is `MetadataStateMachine.snapshot()` and a
loaded or restored snapshot goes through `MetadataStateMachine.restore()`. It subclasses the
simulation's ValueList only to fit the shell's type; `values` stays empty (the controller
simulation compares images instead).
"""

from __future__ import annotations

from kraft.controller.image import MetadataImage
from kraft.controller.statemachine import MetadataStateMachine
from kraft.raft.types import Entry, EntryKind, Snapshot, SnapshotId
from tests.sim.statemachine import StateMachineContractError, ValueList


class MetadataReplica(ValueList):
    def __init__(self, snapshot: Snapshot | None) -> None:
        self.machine = MetadataStateMachine()
        super().__init__(snapshot)

    @property
    def image(self) -> MetadataImage:
        # restore() replaces the image object: always read it afresh
        return self.machine.image

    def reset(self, snapshot: Snapshot) -> None:
        self.machine.restore(snapshot.data)
        self.values = []
        self.applied_end = snapshot.snapshot_id.end_offset
        self.last_applied_epoch = snapshot.snapshot_id.epoch
        self.last_snapshot_end = self.applied_end

    def apply(self, entry: Entry) -> None:
        if entry.offset != self.applied_end:
            raise StateMachineContractError(
                f"committed entry at offset {entry.offset} applied after offset "
                f"{self.applied_end - 1}: committed entries must be contiguous"
            )
        if entry.kind == EntryKind.DATA:
            self.machine.apply(entry)
        self.applied_end += 1
        self.last_applied_epoch = entry.epoch

    def maybe_snapshot(self, every_entries: int) -> Snapshot | None:
        if every_entries <= 0 or self.applied_end - self.last_snapshot_end < every_entries:
            return None
        self.last_snapshot_end = self.applied_end
        snapshot_id = SnapshotId(self.applied_end, self.last_applied_epoch)
        return Snapshot(snapshot_id, self.machine.snapshot())
