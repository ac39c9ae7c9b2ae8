"""The in-memory log view: epoch cache, truncation, compaction, capped reads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kraft.raft.log import ENTRY_OVERHEAD_BYTES, RaftLog
from kraft.raft.types import Entry, OffsetAndEpoch, SnapshotId
from tests.unit.raft.harness import entries_of


def test_end_offset_for_epoch_is_start_of_next_epoch() -> None:
    """KIP-101: the end offset of epoch E is the first offset of the next epoch held."""
    log = RaftLog(None, entries_of([1, 1, 3, 3, 5]))

    found = [log.end_offset_for_epoch(epoch) for epoch in range(7)]

    assert found == [
        OffsetAndEpoch(0, 0),  # older than every entry: the log start
        OffsetAndEpoch(2, 1),
        OffsetAndEpoch(2, 1),  # epoch 2 never had a leader here: largest epoch below it
        OffsetAndEpoch(4, 3),
        OffsetAndEpoch(4, 3),
        OffsetAndEpoch(5, 5),  # the last epoch ends at the log end offset
        OffsetAndEpoch(5, 5),
    ]


def test_end_offset_for_epoch_below_entries_is_snapshot_end() -> None:
    """KIP-630: below every entry held, the answer is the snapshot's end and epoch."""
    log = RaftLog(SnapshotId(10, 2), entries_of([4, 4], start=10))

    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(10, 2)
    assert log.end_offset_for_epoch(4) == OffsetAndEpoch(12, 4)
    assert log.last_epoch == 4


def test_truncation_forgets_epochs_above_it() -> None:
    """KIP-595: after truncation the epoch cache describes only the entries kept."""
    log = RaftLog(None, entries_of([1, 1, 2, 2, 3]))

    log.truncate_to(2)

    assert log.end_offset == 2
    assert log.last_epoch == 1
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(2, 1)
    assert log.persisted_end_offset == 2


def test_append_refuses_gaps_and_older_epochs() -> None:
    """Raft §5.3: the log is contiguous and epochs never decrease along it."""
    log = RaftLog(None, entries_of([2]))

    with pytest.raises(AssertionError, match="not the log end offset"):
        log.append(Entry(5, 2, b"x"))
    with pytest.raises(AssertionError, match="below the last epoch"):
        log.append(Entry(1, 1, b"x"))


def test_compaction_moves_log_start_and_keeps_epoch_lookups() -> None:
    """KIP-630: entries below the snapshot go; lookups above it still work."""
    log = RaftLog(None, entries_of([1, 1, 2, 2, 3]))

    log.compact(SnapshotId(3, 2))

    assert (log.start_offset, log.start_epoch, log.end_offset) == (3, 2, 5)
    assert log.end_offset_for_epoch(2) == OffsetAndEpoch(4, 2)
    assert log.end_offset_for_epoch(1) == OffsetAndEpoch(3, 2)
    assert log.epoch_at(2) == 2


def test_compaction_refuses_a_snapshot_with_the_wrong_epoch() -> None:
    """KIP-630: a snapshot id names the epoch of the entry just below its end offset."""
    log = RaftLog(None, entries_of([1, 1, 2]))

    with pytest.raises(AssertionError, match="is not that of offset"):
        log.compact(SnapshotId(2, 2))


def test_read_is_capped_by_bytes_but_returns_at_least_one_entry() -> None:
    """KIP-595 Fetch: max_bytes bounds a response, yet one entry always fits."""
    log = RaftLog(None, entries_of([1, 1, 1, 1]))  # data of 2 bytes each
    size = 2 + ENTRY_OVERHEAD_BYTES

    assert len(log.read(0, 2 * size)) == 2
    assert len(log.read(1, 1)) == 1
    assert log.read(4, 100) == ()


def test_handed_and_persisted_boundaries_follow_truncation() -> None:
    """Ready contract: entries truncated after they were handed out are not durable."""
    log = RaftLog(None, [])
    for entry in entries_of([1, 1, 1]):
        log.append(entry)
    handed = log.take_unhanded()

    log.truncate_to(1)
    log.mark_persisted(handed[-1].offset + 1)

    assert [e.offset for e in handed] == [0, 1, 2]
    assert log.persisted_end_offset == 1


def _brute_end_offset_for_epoch(
    start: int, start_epoch: int, epochs: list[int], epoch: int
) -> OffsetAndEpoch:
    """The definition, offset by offset: the end of the largest epoch <= `epoch` held."""
    floor = max([e for e in epochs if e <= epoch], default=None)
    if floor is None:
        return OffsetAndEpoch(start, start_epoch)
    last = max(i for i, e in enumerate(epochs) if e == floor)
    return OffsetAndEpoch(start + last + 1, floor)


@given(
    steps=st.lists(st.integers(0, 3), max_size=30),
    start=st.integers(0, 5),
    query=st.integers(0, 40),
    cut=st.integers(0, 30),
)
@settings(max_examples=200, deadline=None)
def test_epoch_cache_agrees_with_the_definition(
    steps: list[int], start: int, query: int, cut: int
) -> None:
    """KIP-101: the cached lookup equals the offset-by-offset definition, before and after
    a truncation."""
    snapshot = SnapshotId(start, 1) if start else None
    base_epoch = 1 if start else 0
    epochs = [1 + sum(steps[: i + 1]) for i in range(len(steps))]
    log = RaftLog(snapshot, [Entry(start + i, e, b"") for i, e in enumerate(epochs)])
    kept = min(cut, len(epochs))

    before = log.end_offset_for_epoch(query)
    log.truncate_to(start + kept)
    after = log.end_offset_for_epoch(query)

    assert before == _brute_end_offset_for_epoch(start, base_epoch, epochs, query)
    assert after == _brute_end_offset_for_epoch(start, base_epoch, epochs[:kept], query)
