"""Idempotent-producer state of one partition replica, pure (Kafka's ProducerStateManager).

For each producer id the table keeps the producer epoch and the last
BATCHES_KEPT_PER_PRODUCER batches appended for it (first and last sequence, first and last
offset). A leader asks `check()` before appending a producer's batch, in the order the
batches are appended, and answers as Kafka does (KIP-98, KIP-360):

- a batch of the current epoch whose sequence range equals one of the kept batches is a
  retry of a batch already in the log: DuplicateBatch, answered with the original offsets
  and not appended again;
- an older epoch: INVALID_PRODUCER_EPOCH (the producer was fenced by a newer epoch);
- a newer epoch must start at sequence 0, else OUT_OF_ORDER_SEQUENCE_NUMBER;
- the same epoch must continue at last sequence + 1 (after 2**31 - 1 comes 0), else
  OUT_OF_ORDER_SEQUENCE_NUMBER (a gap, or an old retry no longer among the kept batches);
- an unknown producer id is accepted at any sequence. Since KIP-360 (Kafka 2.5) brokers
  no longer answer UNKNOWN_PRODUCER_ID here: the producer's batches may simply have left
  the log by retention, and the client cannot tell that from a broker that forgot it.

Every replica calls `on_append()` for each producer batch it appends, leader or follower
(in log order), so a new leader already holds the state. The shell rebuilds the table from
a snapshot (`to_rows()` / `from_rows()`) plus a replay of the log after it, at open and
after a truncation; `remove_before()` forgets producers whose batches all left the log.
The table is bounded: past `max_producers` the producer that appended least recently is
forgotten (it then counts as unknown).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SEQUENCE_MAX = 2**31 - 1  # sequences are int32 and wrap to 0 after this
PRODUCER_EPOCH_MAX = 2**15 - 1
BATCHES_KEPT_PER_PRODUCER = 5  # Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN
MAX_PRODUCERS_PER_PARTITION = 10_000
SNAPSHOT_ROW_WIDTH = 6  # producer id, epoch, first/last sequence, first/last offset


class ProducerError(enum.IntEnum):
    """Kafka's error codes for the refusals of this module."""

    OUT_OF_ORDER_SEQUENCE_NUMBER = 45
    INVALID_PRODUCER_EPOCH = 47
    INVALID_RECORD = 87


class CorruptProducerSnapshotError(Exception):
    """Snapshot rows that cannot be a table this module wrote; the shell falls back on a
    replay of the whole log."""


def next_sequence(sequence: int) -> int:
    return 0 if sequence == SEQUENCE_MAX else sequence + 1


def add_to_sequence(sequence: int, increment: int) -> int:
    """sequence + increment, wrapping past SEQUENCE_MAX to 0 (Kafka's incrementSequence)."""
    assert 0 <= sequence <= SEQUENCE_MAX, f"sequence {sequence} outside int32"
    assert increment >= 0, f"negative sequence increment {increment}"
    return (sequence + increment) % (SEQUENCE_MAX + 1)


@dataclass(frozen=True, slots=True)
class ProducerBatch:
    """The producer fields of one record batch header (v2)."""

    producer_id: int
    producer_epoch: int
    base_sequence: int
    last_offset_delta: int

    @property
    def last_sequence(self) -> int:
        return add_to_sequence(self.base_sequence, self.last_offset_delta)


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    """Where one appended batch of a producer went."""

    first_sequence: int
    last_sequence: int
    first_offset: int
    last_offset: int


@dataclass(frozen=True, slots=True)
class ProducerEntry:
    """A producer's epoch and its last appended batches, oldest first (never empty)."""

    producer_epoch: int
    batches: tuple[BatchMetadata, ...]

    def __post_init__(self) -> None:
        assert self.batches, "a producer entry holds at least one batch"
        assert len(self.batches) <= BATCHES_KEPT_PER_PRODUCER, f"{len(self.batches)} batches"

    @property
    def last(self) -> BatchMetadata:
        return self.batches[-1]

    def find_duplicate(self, first_sequence: int, last_sequence: int) -> BatchMetadata | None:
        for batch in self.batches:
            if batch.first_sequence == first_sequence and batch.last_sequence == last_sequence:
                return batch
        return None


# -- verdicts of check() -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppendBatch:
    """Append the batch, then call on_append with its offsets."""


@dataclass(frozen=True, slots=True)
class DuplicateBatch:
    """A retry of a batch already appended: answer with its offsets, append nothing."""

    original: BatchMetadata


@dataclass(frozen=True, slots=True)
class RefuseBatch:
    error: ProducerError
    message: str


Verdict = AppendBatch | DuplicateBatch | RefuseBatch


class ProducerStateTable:
    """The producers of one partition replica (see the module docstring)."""

    def __init__(self, max_producers: int = MAX_PRODUCERS_PER_PARTITION) -> None:
        assert max_producers > 0, f"max_producers {max_producers} must be positive"
        self.max_producers = max_producers
        # insertion order = order of each producer's last append (least recent first)
        self._entries: dict[int, ProducerEntry] = {}

    @property
    def entries(self) -> Mapping[int, ProducerEntry]:
        return self._entries

    def __len__(self) -> int:
        return len(self._entries)

    # -- the leader's question -------------------------------------------------------------

    def check(self, batch: ProducerBatch) -> Verdict:
        """What a leader does with a producer's batch it is about to append (no change)."""
        refusal = _refuse_fields(batch)
        if refusal is not None:
            return refusal
        entry = self._entries.get(batch.producer_id)
        if entry is None:
            return AppendBatch()  # KIP-360: unknown producers start anywhere
        current_epoch = entry.producer_epoch
        if batch.producer_epoch < current_epoch:
            return RefuseBatch(
                ProducerError.INVALID_PRODUCER_EPOCH,
                f"producer {batch.producer_id} sent epoch {batch.producer_epoch}, older than "
                f"its current epoch {current_epoch}",
            )
        if batch.producer_epoch > current_epoch:
            if batch.base_sequence != 0:
                return RefuseBatch(
                    ProducerError.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"producer {batch.producer_id} starts epoch {batch.producer_epoch} at "
                    f"sequence {batch.base_sequence}; a new epoch starts at sequence 0",
                )
            return AppendBatch()
        duplicate = entry.find_duplicate(batch.base_sequence, batch.last_sequence)
        if duplicate is not None:
            return DuplicateBatch(duplicate)
        expected = next_sequence(entry.last.last_sequence)
        if batch.base_sequence != expected:
            return RefuseBatch(
                ProducerError.OUT_OF_ORDER_SEQUENCE_NUMBER,
                f"producer {batch.producer_id} epoch {batch.producer_epoch} sent sequence "
                f"{batch.base_sequence}; the next expected is {expected}",
            )
        return AppendBatch()

    # -- changes ---------------------------------------------------------------------------

    def on_append(self, batch: ProducerBatch, first_offset: int, last_offset: int) -> None:
        """A producer batch was appended at [first_offset, last_offset] (leader after
        AppendBatch, follower, replay). A follower records what its leader stored even when
        it breaks the rules, as Kafka's replication path does: the leader decided."""
        assert last_offset - first_offset == batch.last_offset_delta, (
            f"batch at {first_offset} spans to {last_offset}, its header says "
            f"{batch.last_offset_delta} offsets more"
        )
        metadata = BatchMetadata(
            batch.base_sequence, batch.last_sequence, first_offset, last_offset
        )
        entry = self._entries.pop(batch.producer_id, None)
        if entry is not None:
            assert first_offset > entry.last.last_offset, (
                f"producer {batch.producer_id} batch at offset {first_offset} is not after its "
                f"last at {entry.last.last_offset}"
            )
        if entry is None or entry.producer_epoch != batch.producer_epoch:
            entry = ProducerEntry(batch.producer_epoch, (metadata,))
        else:
            kept = (*entry.batches, metadata)[-BATCHES_KEPT_PER_PRODUCER:]
            entry = ProducerEntry(entry.producer_epoch, kept)
        self._entries[batch.producer_id] = entry
        while len(self._entries) > self.max_producers:
            del self._entries[next(iter(self._entries))]

    def remove_before(self, log_start_offset: int) -> None:
        """Forgets the producers whose every kept batch lies below the log start (retention
        deleted them; Kafka's ProducerStateManager.onLogStartOffsetIncremented)."""
        gone = [
            producer_id
            for producer_id, entry in self._entries.items()
            if entry.last.last_offset < log_start_offset
        ]
        for producer_id in gone:
            del self._entries[producer_id]

    # -- snapshots ---------------------------------------------------------------------------

    def to_rows(self) -> list[tuple[int, ...]]:
        """One row per kept batch (SNAPSHOT_ROW_WIDTH non-negative integers), producers in
        the order of their last append, each producer's batches oldest first."""
        return [
            (
                producer_id,
                entry.producer_epoch,
                batch.first_sequence,
                batch.last_sequence,
                batch.first_offset,
                batch.last_offset,
            )
            for producer_id, entry in self._entries.items()
            for batch in entry.batches
        ]

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[int, ...]], max_producers: int = MAX_PRODUCERS_PER_PARTITION
    ) -> ProducerStateTable:
        """The table `to_rows()` described; CorruptProducerSnapshotError if the rows break
        its invariants."""
        grouped: dict[int, tuple[int, list[BatchMetadata]]] = {}
        for row in rows:
            if len(row) != SNAPSHOT_ROW_WIDTH or any(value < 0 for value in row):
                raise CorruptProducerSnapshotError(f"bad producer snapshot row {row}")
            producer_id, epoch, first_sequence, last_sequence, first_offset, last_offset = row
            if epoch > PRODUCER_EPOCH_MAX or max(first_sequence, last_sequence) > SEQUENCE_MAX:
                raise CorruptProducerSnapshotError(f"producer snapshot row {row} out of range")
            if last_offset < first_offset:
                raise CorruptProducerSnapshotError(f"producer snapshot row {row} ends early")
            grouped.setdefault(producer_id, (epoch, []))
            known_epoch, batches = grouped[producer_id]
            if known_epoch != epoch:
                raise CorruptProducerSnapshotError(f"producer {producer_id} has two epochs")
            if batches and batches[-1].last_offset >= first_offset:
                raise CorruptProducerSnapshotError(f"producer {producer_id} batches overlap")
            batches.append(BatchMetadata(first_sequence, last_sequence, first_offset, last_offset))
        table = cls(max_producers)
        for producer_id, (epoch, batches) in grouped.items():
            if len(batches) > BATCHES_KEPT_PER_PRODUCER:
                raise CorruptProducerSnapshotError(
                    f"producer {producer_id} has {len(batches)} batches in the snapshot"
                )
            table._entries[producer_id] = ProducerEntry(epoch, tuple(batches))
        while len(table._entries) > max_producers:
            del table._entries[next(iter(table._entries))]
        return table


def _refuse_fields(batch: ProducerBatch) -> RefuseBatch | None:
    """Kafka's LogValidator: a batch with a producer id needs a sequence and an epoch."""
    if batch.base_sequence < 0:
        return RefuseBatch(
            ProducerError.INVALID_RECORD,
            f"producer {batch.producer_id} sent base sequence {batch.base_sequence}; a batch "
            "with a producer id needs a sequence >= 0",
        )
    if batch.producer_epoch < 0:
        return RefuseBatch(
            ProducerError.INVALID_RECORD,
            f"producer {batch.producer_id} sent epoch {batch.producer_epoch}; a batch with a "
            "producer id needs an epoch >= 0",
        )
    return None
