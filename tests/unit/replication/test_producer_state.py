"""ProducerStateTable as specifications: Kafka's idempotent-producer rules (KIP-98, KIP-360;
Kafka's ProducerStateManager / ProducerAppendInfo), the bounded table and its snapshot rows."""

from __future__ import annotations

import random

import pytest

from broker.replication.producer_state import (
    BATCHES_KEPT_PER_PRODUCER,
    SEQUENCE_MAX,
    AppendBatch,
    BatchMetadata,
    CorruptProducerSnapshotError,
    DuplicateBatch,
    ProducerBatch,
    ProducerError,
    ProducerStateTable,
    RefuseBatch,
    add_to_sequence,
)

PRODUCER = 1 << 20


class Log:
    """A table fed as a leader feeds it: check, then append at the next offsets."""

    def __init__(self) -> None:
        self.table = ProducerStateTable()
        self.end_offset = 0
        self.appended: list[tuple[ProducerBatch, int, int]] = []

    def produce(self, batch: ProducerBatch) -> AppendBatch | DuplicateBatch | RefuseBatch:
        verdict = self.table.check(batch)
        if isinstance(verdict, AppendBatch):
            first, last = self.end_offset, self.end_offset + batch.last_offset_delta
            self.table.on_append(batch, first, last)
            self.appended.append((batch, first, last))
            self.end_offset = last + 1
        return verdict


def batch(sequence: int, count: int = 1, epoch: int = 0, producer: int = PRODUCER) -> ProducerBatch:
    return ProducerBatch(producer, epoch, sequence, count - 1)


# -- sequences --------------------------------------------------------------------------------


def test_consecutive_batches_are_appended() -> None:
    log = Log()
    assert log.produce(batch(0, 3)) == AppendBatch()
    assert log.produce(batch(3, 2)) == AppendBatch()
    assert log.table.entries[PRODUCER].batches == (
        BatchMetadata(0, 2, 0, 2),
        BatchMetadata(3, 4, 3, 4),
    )


def test_a_retried_batch_is_answered_with_its_original_offsets_and_not_appended() -> None:
    """KIP-98: a duplicate of one of the last five batches gets the offsets it got then."""
    log = Log()
    log.produce(batch(0, 3))
    log.produce(batch(3, 2))

    verdict = log.produce(batch(0, 3))

    assert verdict == DuplicateBatch(BatchMetadata(0, 2, 0, 2))
    assert log.end_offset == 5


def test_each_of_the_last_five_batches_is_recognised_as_a_duplicate() -> None:
    log = Log()
    for sequence in range(8):
        log.produce(batch(sequence))
    for sequence in range(8 - BATCHES_KEPT_PER_PRODUCER, 8):
        assert log.produce(batch(sequence)) == DuplicateBatch(
            BatchMetadata(sequence, sequence, sequence, sequence)
        )


def test_a_retry_older_than_the_last_five_batches_is_out_of_order() -> None:
    """Kafka answers OUT_OF_ORDER_SEQUENCE_NUMBER: the broker can no longer tell."""
    log = Log()
    for sequence in range(6):
        log.produce(batch(sequence))

    verdict = log.produce(batch(0))

    assert isinstance(verdict, RefuseBatch)
    assert verdict.error is ProducerError.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_a_batch_with_the_same_first_sequence_but_another_length_is_not_a_duplicate() -> None:
    log = Log()
    log.produce(batch(0, 3))

    verdict = log.produce(batch(0, 2))

    assert isinstance(verdict, RefuseBatch)
    assert verdict.error is ProducerError.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_a_sequence_gap_is_refused_and_changes_nothing() -> None:
    log = Log()
    log.produce(batch(0, 2))

    verdict = log.produce(batch(3))

    assert isinstance(verdict, RefuseBatch)
    assert verdict.error is ProducerError.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert "next expected is 2" in verdict.message
    assert log.produce(batch(2)) == AppendBatch(), "the producer can still continue"


def test_sequences_wrap_to_zero_after_int32_max() -> None:
    """Kafka's DefaultRecordBatch.incrementSequence: after 2**31 - 1 comes 0."""
    log = Log()
    assert log.produce(batch(SEQUENCE_MAX - 1, 3)) == AppendBatch()  # ..., MAX, 0
    assert log.table.entries[PRODUCER].last.last_sequence == 0
    assert log.produce(batch(1)) == AppendBatch()
    assert log.produce(batch(SEQUENCE_MAX - 1, 3)) == DuplicateBatch(
        BatchMetadata(SEQUENCE_MAX - 1, 0, 0, 2)
    )


def test_a_batch_ending_exactly_at_int32_max_is_followed_by_sequence_zero() -> None:
    log = Log()
    log.produce(batch(SEQUENCE_MAX))
    assert log.produce(batch(0)) == AppendBatch()


def test_add_to_sequence_wraps() -> None:
    assert add_to_sequence(SEQUENCE_MAX, 1) == 0
    assert add_to_sequence(SEQUENCE_MAX - 2, 5) == 2
    assert add_to_sequence(7, 0) == 7


# -- epochs -------------------------------------------------------------------------------------


def test_an_older_epoch_is_fenced_with_invalid_producer_epoch() -> None:
    """Kafka 2.7+ answers INVALID_PRODUCER_EPOCH (not PRODUCER_FENCED) to a produce."""
    log = Log()
    log.produce(batch(0, epoch=3))

    verdict = log.produce(batch(1, epoch=2))

    assert isinstance(verdict, RefuseBatch)
    assert verdict.error is ProducerError.INVALID_PRODUCER_EPOCH


def test_a_new_epoch_starts_at_sequence_zero() -> None:
    log = Log()
    log.produce(batch(0, 5, epoch=0))

    refused = log.produce(batch(5, epoch=1))
    accepted = log.produce(batch(0, epoch=1))

    assert isinstance(refused, RefuseBatch)
    assert refused.error is ProducerError.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert accepted == AppendBatch()
    entry = log.table.entries[PRODUCER]
    assert (entry.producer_epoch, len(entry.batches)) == (1, 1), "a new epoch, a new history"


def test_duplicates_are_only_recognised_within_the_epoch() -> None:
    log = Log()
    log.produce(batch(0, epoch=0))
    log.produce(batch(0, epoch=1))

    assert isinstance(log.produce(batch(0, epoch=0)), RefuseBatch)
    assert isinstance(log.produce(batch(0, epoch=1)), DuplicateBatch)


# -- unknown producers and bad fields -------------------------------------------------------


@pytest.mark.parametrize("sequence", [0, 1, 4711, SEQUENCE_MAX])
def test_an_unknown_producer_is_accepted_at_any_sequence(sequence: int) -> None:
    """KIP-360 (Kafka 2.5+): the producer's batches may have left the log by retention, so
    an unknown producer id is not UNKNOWN_PRODUCER_ID any more."""
    assert Log().produce(batch(sequence, epoch=4)) == AppendBatch()


def test_a_negative_sequence_or_epoch_with_a_producer_id_is_an_invalid_record() -> None:
    """Kafka's LogValidator: a batch with a producer id carries a sequence."""
    for bad in (ProducerBatch(PRODUCER, 0, -1, 0), ProducerBatch(PRODUCER, -1, 0, 0)):
        verdict = Log().produce(bad)
        assert isinstance(verdict, RefuseBatch)
        assert verdict.error is ProducerError.INVALID_RECORD


def test_producers_are_independent() -> None:
    log = Log()
    log.produce(batch(0, producer=1))
    log.produce(batch(0, producer=2))
    assert log.produce(batch(1, producer=1)) == AppendBatch()
    assert isinstance(log.produce(batch(5, producer=2)), RefuseBatch)


# -- followers, retention, bounds ------------------------------------------------------------


def test_a_follower_records_what_its_leader_stored_whatever_the_rules_say() -> None:
    """The leader decided; a follower keeps the same state so it can lead next."""
    table = ProducerStateTable()
    table.on_append(batch(0, 2, epoch=1), 0, 1)
    table.on_append(batch(9, 1, epoch=0), 5, 5)  # would be refused on a leader

    entry = table.entries[PRODUCER]
    assert entry.producer_epoch == 0
    assert entry.batches == (BatchMetadata(9, 9, 5, 5),)


def test_producers_whose_batches_all_left_the_log_are_forgotten() -> None:
    table = ProducerStateTable()
    table.on_append(batch(0, 2, producer=1), 0, 1)
    table.on_append(batch(0, 2, producer=2), 2, 3)

    table.remove_before(2)

    assert set(table.entries) == {2}


def test_past_its_bound_the_table_forgets_the_producer_that_appended_least_recently() -> None:
    table = ProducerStateTable(max_producers=2)
    table.on_append(batch(0, producer=1), 0, 0)
    table.on_append(batch(0, producer=2), 1, 1)
    table.on_append(batch(1, producer=1), 2, 2)  # producer 1 is now the most recent

    table.on_append(batch(0, producer=3), 3, 3)

    assert set(table.entries) == {1, 3}


# -- snapshot rows ---------------------------------------------------------------------------


def random_log(seed: int, batches: int = 300) -> Log:
    """Several producers, epoch bumps, duplicates and gaps, as a leader would see them."""
    rng = random.Random(seed)
    log = Log()
    next_sequence = {producer: 0 for producer in range(1, 6)}
    epochs = dict.fromkeys(next_sequence, 0)
    for _ in range(batches):
        producer = rng.choice(list(next_sequence))
        roll = rng.random()
        if roll < 0.05:
            epochs[producer] += 1
            next_sequence[producer] = 0
        count = rng.randint(1, 4)
        sequence = next_sequence[producer]
        if roll > 0.9:
            sequence += rng.randint(1, 3)  # a gap: refused
        elif roll > 0.8 and sequence > 0:
            sequence = max(0, sequence - count)  # a retry (duplicate or not)
        verdict = log.produce(ProducerBatch(producer, epochs[producer], sequence, count - 1))
        if isinstance(verdict, AppendBatch):
            next_sequence[producer] = add_to_sequence(sequence, count)
    return log


@pytest.mark.parametrize("seed", range(20))
def test_rows_rebuild_an_equal_table(seed: int) -> None:
    table = random_log(seed).table

    rebuilt = ProducerStateTable.from_rows(table.to_rows())

    assert rebuilt.entries == table.entries
    assert list(rebuilt.entries) == list(table.entries), "least recent first, as before"


@pytest.mark.parametrize("seed", range(20))
def test_a_snapshot_at_any_offset_plus_a_replay_of_the_rest_is_the_leaders_table(
    seed: int,
) -> None:
    """How a replica rebuilds the table at open and after a truncation (producer_log.py):
    the rows of the table as of offset `cut`, then the batches from `cut` on, give the same
    table as the leader's, including which producers are least recent."""
    log = random_log(seed)
    for cut in range(0, log.end_offset + 1, 7):
        prefix = ProducerStateTable()
        for fields, first, last in log.appended:
            if first < cut:
                prefix.on_append(fields, first, last)
        rebuilt = ProducerStateTable.from_rows(prefix.to_rows())
        for fields, first, last in log.appended:
            if first >= cut:
                rebuilt.on_append(fields, first, last)
        assert rebuilt.entries == log.table.entries
        assert list(rebuilt.entries) == list(log.table.entries)


@pytest.mark.parametrize(
    "rows",
    [
        [(PRODUCER, 0, 0, 0, 0)],  # too short
        [(PRODUCER, 0, 0, 0, -1, 0)],  # negative
        [(PRODUCER, 0, 0, 0, 5, 4)],  # ends before it starts
        [(PRODUCER, 0, 0, 0, 0, 0), (PRODUCER, 1, 1, 1, 1, 1)],  # two epochs
        [(PRODUCER, 0, 0, 0, 3, 3), (PRODUCER, 0, 1, 1, 2, 2)],  # offsets go back
        [(PRODUCER, 0, n, n, n, n) for n in range(BATCHES_KEPT_PER_PRODUCER + 1)],
        [(PRODUCER, 2**15, 0, 0, 0, 0)],  # epoch beyond int16
    ],
)
def test_corrupt_rows_are_refused(rows: list[tuple[int, ...]]) -> None:
    with pytest.raises(CorruptProducerSnapshotError):
        ProducerStateTable.from_rows(rows)
