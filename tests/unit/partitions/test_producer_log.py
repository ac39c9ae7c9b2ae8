"""Producer state on disk (broker/partitions/producer_log.py) with real partition logs in a
temporary directory: rebuilt from snapshots plus a replay of the log at open, rolled back
consistently when a follower truncates (KIP-101: Kafka reloads it from the latest snapshot
at or below the truncation offset), pruned by retention."""

from __future__ import annotations

from pathlib import Path

from broker.log import PartitionLog
from broker.log.batch import Record, build_batch
from broker.partitions.partition import Partition
from broker.partitions.producer_log import (
    MAX_PRODUCER_SNAPSHOTS,
    load_producer_state,
    producer_batch_of,
    snapshot_offsets,
    snapshot_path,
    write_snapshot,
)
from broker.replication.producer_state import (
    AppendBatch,
    BatchMetadata,
    DuplicateBatch,
    ProducerStateTable,
)

LEADER_EPOCH = 1


def producer_bytes(producer_id: int, sequence: int, count: int = 2, epoch: int = 0) -> bytes:
    records = [Record(None, f"{producer_id}-{sequence + n}".encode(), (), 0) for n in range(count)]
    return build_batch(
        records, producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence
    )


def open_partition(directory: Path) -> Partition:
    partition = Partition("t", "topic-id", 0, PartitionLog(directory))
    partition.reload_producer_state()
    return partition


def append(partition: Partition, data: bytes) -> tuple[int, int]:
    """What ReplicaManager does for a leader append: check, append, record."""
    fields = producer_batch_of(data)
    if fields is not None:
        assert partition.producers.check(fields) == AppendBatch()
    first, last = partition.log.append_as_leader(data, LEADER_EPOCH)
    if fields is not None:
        partition.producers.on_append(fields, first, last)
    return first, last


def fill(partition: Partition, rounds: int) -> None:
    """Two producers interleaved with batches that carry no producer id."""
    for n in range(rounds):
        append(partition, producer_bytes(1, 2 * n))
        append(partition, build_batch([Record(None, b"plain", (), 0)]))
        append(partition, producer_bytes(2, 2 * n))


def test_a_log_without_snapshots_is_replayed_whole_at_open(tmp_path: Path) -> None:
    partition = open_partition(tmp_path / "t-0")
    fill(partition, 8)
    expected = dict(partition.producers.entries)
    partition.log.close()

    reopened = open_partition(tmp_path / "t-0")

    assert reopened.producers.entries == expected
    assert reopened.producers.check(producer_bytes_fields(1, 6)) == DuplicateBatch(
        expected[1].batches[0]
    )


def producer_bytes_fields(producer_id: int, sequence: int) -> object:
    fields = producer_batch_of(producer_bytes(producer_id, sequence))
    assert fields is not None
    return fields


def test_a_snapshot_plus_the_log_after_it_rebuild_the_table(tmp_path: Path) -> None:
    partition = open_partition(tmp_path / "t-0")
    fill(partition, 4)
    partition.snapshot_producer_state()
    fill_from = partition.log.log_end_offset
    for n in range(4, 7):
        append(partition, producer_bytes(1, 2 * n))
    expected = dict(partition.producers.entries)
    partition.log.close()

    reopened = open_partition(tmp_path / "t-0")

    assert snapshot_offsets(tmp_path / "t-0") == [fill_from]
    assert reopened.producers.entries == expected


def test_the_replay_starts_at_the_snapshot(tmp_path: Path) -> None:
    """A snapshot is trusted for what lies below it: one naming a producer that the log
    does not hold shows the log below it was not read again."""
    directory = tmp_path / "t-0"
    partition = open_partition(directory)
    fill(partition, 2)
    planted = ProducerStateTable()
    planted.on_append(producer_batch_of(producer_bytes(99, 0)), 0, 1)  # type: ignore[arg-type]
    write_snapshot(directory, planted, partition.log.log_end_offset)
    partition.log.close()

    reopened = open_partition(directory)

    assert set(reopened.producers.entries) == {99}


def test_a_truncation_rolls_the_table_back_to_the_batches_below_the_cut(tmp_path: Path) -> None:
    directory = tmp_path / "t-0"
    partition = open_partition(directory)
    fill(partition, 3)
    partition.snapshot_producer_state()  # below the cut: kept and used
    cut = partition.log.log_end_offset
    expected = dict(partition.producers.entries)
    fill_more(partition, 6)
    partition.snapshot_producer_state()  # past the cut: must go

    partition.log.truncate_to(cut)
    partition.producers_truncated()

    assert partition.producers.entries == expected
    assert snapshot_offsets(directory) == [cut]
    assert partition.producers.check(producer_bytes_fields(1, 6)) == AppendBatch()


def fill_more(partition: Partition, sequence: int) -> None:
    """Three more batches of producer 1 from `sequence` on, and a new producer 3."""
    for n in range(3):
        append(partition, producer_bytes(1, sequence + 2 * n))
    append(partition, producer_bytes(3, 0))


def test_a_truncation_below_every_snapshot_replays_from_the_log_start(tmp_path: Path) -> None:
    directory = tmp_path / "t-0"
    partition = open_partition(directory)
    append(partition, producer_bytes(1, 0))
    cut = partition.log.log_end_offset
    fill_more(partition, 2)
    partition.snapshot_producer_state()

    partition.log.truncate_to(cut)
    partition.producers_truncated()

    assert snapshot_offsets(directory) == []
    assert partition.producers.entries == {1: _entry_of_first_batch()}


def _entry_of_first_batch() -> object:
    table = ProducerStateTable()
    table.on_append(producer_batch_of(producer_bytes(1, 0)), 0, 1)  # type: ignore[arg-type]
    return table.entries[1]


def test_a_log_restarted_past_its_end_forgets_every_producer(tmp_path: Path) -> None:
    partition = open_partition(tmp_path / "t-0")
    fill(partition, 2)
    partition.snapshot_producer_state()

    partition.log.truncate_fully_and_start_at(100)
    partition.producers_truncated()

    assert len(partition.producers) == 0


def test_a_corrupt_snapshot_is_dropped_and_the_log_replayed(tmp_path: Path) -> None:
    directory = tmp_path / "t-0"
    partition = open_partition(directory)
    fill(partition, 3)
    expected = dict(partition.producers.entries)
    partition.snapshot_producer_state()
    partition.log.close()
    [offset] = snapshot_offsets(directory)
    snapshot_path(directory, offset).write_text("0\n1\n1 2 3\n")

    reopened = open_partition(directory)

    assert reopened.producers.entries == expected
    assert snapshot_offsets(directory) == []


def test_only_the_newest_snapshots_are_kept(tmp_path: Path) -> None:
    directory = tmp_path / "t-0"
    partition = open_partition(directory)
    offsets = []
    for n in range(MAX_PRODUCER_SNAPSHOTS + 2):
        append(partition, producer_bytes(1, 2 * n))
        partition.snapshot_producer_state()
        offsets.append(partition.log.log_end_offset)

    assert snapshot_offsets(directory) == offsets[-MAX_PRODUCER_SNAPSHOTS:]


def test_retention_forgets_producers_whose_batches_were_deleted(tmp_path: Path) -> None:
    partition = open_partition(tmp_path / "t-0")
    append(partition, producer_bytes(1, 0))
    partition.log.truncate_fully_and_start_at(partition.log.log_end_offset)  # as retention
    append(partition, producer_bytes(2, 0))
    assert set(partition.producers.entries) == {1, 2}

    partition.producers_lost_head()

    assert set(partition.producers.entries) == {2}
    assert load_producer_state(partition.log).entries.keys() == {2}


def test_batch_metadata_keeps_the_offsets_the_leader_assigned(tmp_path: Path) -> None:
    partition = open_partition(tmp_path / "t-0")
    append(partition, build_batch([Record(None, b"plain", (), 0)]))
    append(partition, producer_bytes(7, 0, count=3))

    assert partition.producers.entries[7].batches == (BatchMetadata(0, 2, 1, 3),)


class DamagedLog(PartitionLog):
    """A real log whose bytes are garbage from byte `damaged_at` of its segment on."""

    damaged_at = 0

    def read(self, offset: int, max_bytes: int) -> bytes:
        data = super().read(offset, max_bytes)
        assert offset == 0, "one read covers this small log"
        return data[: self.damaged_at] + bytes(len(data) - self.damaged_at)


def test_a_damaged_batch_stops_the_replay_without_failing_the_partition(tmp_path: Path) -> None:
    partition = open_partition(tmp_path / "t-0")
    append(partition, producer_bytes(1, 0))
    damaged_at = partition.log.size_bytes
    append(partition, producer_bytes(2, 0))
    partition.log.close()
    damaged = DamagedLog(tmp_path / "t-0")
    damaged.damaged_at = damaged_at

    table = load_producer_state(damaged)

    assert set(table.entries) == {1}, "what came before the damage is known"
    damaged.close()
