"""The metadata log as the quorum runtime's state machine: committed records into an image.

`apply` decodes each committed entry and applies it to `image` at the entry's offset. The
controller validates every record before proposing it, so a committed entry that does not
decode (or breaks an image invariant) is a bug: it raises, and the node stops rather than
diverge from the others.

A snapshot is the msgpack array [version, applied offset, next broker epoch, [records]], the
records being the encoded `image.to_records()`. `restore` replaces `image` with a new object:
read `state_machine.image` afresh rather than keeping a reference across a restore.

Listeners (`on_applied`) let the node shell react to committed records, e.g. a broker seeing
itself fenced. After a restore they are called once with the whole restored image as records.
"""

from __future__ import annotations

from collections.abc import Callable

import msgpack

from kraft.controller.image import MetadataImage
from kraft.controller.records import MetadataRecord
from kraft.controller.serde import decode_entry, decode_record, encode_record
from kraft.raft.types import Entry, EntryKind

SNAPSHOT_VERSION = 0

AppliedListener = Callable[[list[MetadataRecord], int], None]  # (records, offset)


class SnapshotDecodeError(ValueError):
    """Bytes that are not a metadata snapshot of a known version."""


class MetadataStateMachine:
    def __init__(self, on_applied: list[AppliedListener] | None = None) -> None:
        self.image = MetadataImage()
        self.on_applied: list[AppliedListener] = list(on_applied or [])

    def apply(self, entry: Entry) -> None:
        assert entry.kind is EntryKind.DATA, "control entries never reach the state machine"
        records = decode_entry(entry.data)  # RecordDecodeError here is a bug: let it crash
        self.image.apply_batch(records, entry.offset)
        for listener in self.on_applied:
            listener(records, entry.offset)

    def snapshot(self) -> bytes:
        return encode_snapshot(self.image)

    def snapshot_writer(self) -> Callable[[], bytes]:
        """Copying the image is cheap (copy-on-write per topic); encoding it is not, and
        runs later, in another thread, over that copy."""
        image = self.image.copy()
        return lambda: encode_snapshot(image)

    def restore(self, data: bytes) -> None:
        applied_offset, next_broker_epoch, encoded = decode_snapshot(data)
        records = [decode_record(record) for record in encoded]
        self.image = MetadataImage.from_records(records, applied_offset, next_broker_epoch)
        for listener in self.on_applied:
            listener(records, applied_offset)


def decode_snapshot(data: bytes) -> tuple[int, int, list[bytes]]:
    """(applied offset, next broker epoch, encoded records) of a snapshot."""
    try:
        decoded = msgpack.unpackb(data, raw=False, use_list=True)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        raise SnapshotDecodeError("a metadata snapshot is a msgpack array") from None
    if not isinstance(decoded, list) or len(decoded) != 4:
        raise SnapshotDecodeError("a metadata snapshot is [version, offset, epoch, records]")
    version, applied_offset, next_broker_epoch, records = decoded
    if version != SNAPSHOT_VERSION:
        raise SnapshotDecodeError(f"unknown metadata snapshot version {version!r}")
    if not isinstance(applied_offset, int) or applied_offset < -1:
        raise SnapshotDecodeError(f"bad applied offset {applied_offset!r}")
    if not isinstance(next_broker_epoch, int) or next_broker_epoch < 0:
        raise SnapshotDecodeError(f"bad next broker epoch {next_broker_epoch!r}")
    if not isinstance(records, list) or not all(isinstance(r, bytes) for r in records):
        raise SnapshotDecodeError("the records of a metadata snapshot are byte strings")
    return applied_offset, next_broker_epoch, records


def encode_snapshot(image: MetadataImage) -> bytes:
    records = [encode_record(record) for record in image.to_records()]
    return bytes(
        msgpack.packb([SNAPSHOT_VERSION, image.applied_offset, image.next_broker_epoch, records])
    )
