"""The metadata state machine: committed entries into the image, snapshots and restores."""

from __future__ import annotations

import pytest

from kraft.controller.records import MetadataRecord, TopicRecord
from kraft.controller.serde import RecordDecodeError, encode_record
from kraft.controller.statemachine import MetadataStateMachine, SnapshotDecodeError
from kraft.raft.types import Entry
from tests.unit.controller.builders import replay
from tests.unit.controller.test_image import TOPIC_RECORDS


def entries(records: list[MetadataRecord], start: int = 0) -> list[Entry]:
    return [Entry(start + i, 1, encode_record(r)) for i, r in enumerate(records)]


def test_committed_entries_are_applied_at_their_offsets_and_reported() -> None:
    seen: list[tuple[list[MetadataRecord], int]] = []
    machine = MetadataStateMachine(on_applied=[lambda rs, offset: seen.append((rs, offset))])

    for entry in entries(TOPIC_RECORDS, start=10):
        machine.apply(entry)

    assert machine.image == replay(TOPIC_RECORDS)
    assert machine.image.applied_offset == 10 + len(TOPIC_RECORDS) - 1
    assert seen[0] == ([TOPIC_RECORDS[0]], 10)
    assert len(seen) == len(TOPIC_RECORDS)


def test_a_committed_entry_that_is_no_record_crashes() -> None:
    machine = MetadataStateMachine()

    with pytest.raises(RecordDecodeError):
        machine.apply(Entry(0, 1, b"\x93\x01\x02\x03"))


def test_a_snapshot_restores_an_equal_image_at_the_same_offset() -> None:
    machine = MetadataStateMachine()
    for entry in entries(TOPIC_RECORDS, start=3):
        machine.apply(entry)
    restored_with: list[int] = []
    other = MetadataStateMachine(on_applied=[lambda rs, offset: restored_with.append(offset)])

    other.restore(machine.snapshot())

    assert other.image == machine.image
    assert other.image.applied_offset == machine.image.applied_offset
    assert other.image.next_broker_epoch == machine.image.next_broker_epoch
    assert restored_with == [machine.image.applied_offset]
    other.apply(Entry(100, 2, encode_record(TopicRecord("more", "id-more"))))
    assert other.image.topic("more") is not None


def test_an_empty_state_machine_snapshots_and_restores() -> None:
    other = MetadataStateMachine()

    other.restore(MetadataStateMachine().snapshot())

    assert other.image.applied_offset == -1
    assert other.image.topic_names() == []


def test_bytes_that_are_no_snapshot_are_refused() -> None:
    with pytest.raises(SnapshotDecodeError):
        MetadataStateMachine().restore(b"\x92\x01\x02")
