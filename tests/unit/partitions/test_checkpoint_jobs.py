"""Checkpoint files (the high watermark, the producer snapshots) are taken on the event loop
and written on another thread (Partition.checkpoint_job), so their fsyncs never stall the
produces and fetches of the node. What a job took must never land after the log it describes
changed under it: a truncation or a removal since makes it write nothing."""

from __future__ import annotations

from pathlib import Path

from broker.log.batch import Record, build_batch
from broker.partitions.partition import HIGH_WATERMARK_CHECKPOINT_NAME, Partition
from broker.partitions.producer_log import snapshot_offsets
from tests.unit.partitions.test_producer_log import append, open_partition, producer_bytes


def with_records(directory: Path) -> Partition:
    partition = open_partition(directory)
    append(partition, producer_bytes(7, 0))
    append(partition, build_batch([Record(None, b"plain", (), 0)]))
    partition._high_watermark = 2  # what a follower learns from its leader
    return partition


def test_a_job_writes_the_moved_high_watermark_and_a_producer_snapshot(tmp_path: Path) -> None:
    partition = with_records(tmp_path / "t-0")
    job = partition.checkpoint_job()
    assert job is not None
    written = job()
    partition.checkpoint_written(written)
    assert (written.high_watermark, written.snapshot_offset) == (2, 3)
    assert (tmp_path / "t-0" / HIGH_WATERMARK_CHECKPOINT_NAME).exists()
    assert snapshot_offsets(tmp_path / "t-0") == [3]
    assert partition.checkpoint_job() is None, "nothing moved since"
    reopened = open_partition(tmp_path / "t-0")
    assert reopened.high_watermark == 2
    assert 7 in {row[0] for row in reopened.producers.to_rows()}


def test_a_job_taken_before_a_truncation_writes_nothing(tmp_path: Path) -> None:
    partition = with_records(tmp_path / "t-0")
    job = partition.checkpoint_job()
    assert job is not None
    partition.log.truncate_to(2)
    partition.producers_truncated()
    written = job()
    assert (written.high_watermark, written.snapshot_offset) == (None, None)
    assert snapshot_offsets(tmp_path / "t-0") == [], "a snapshot past the log end came back"
    partition.checkpoint_written(written)
    assert partition.checkpoint_job() is not None, "the next round writes what is true now"


def test_a_job_taken_before_the_partition_was_removed_writes_nothing(tmp_path: Path) -> None:
    partition = with_records(tmp_path / "t-0")
    job = partition.checkpoint_job()
    assert job is not None
    partition.discard_pending_checkpoints()  # what ReplicaManager does before deleting
    partition.log.abandon()
    assert job().high_watermark is None
    assert not (tmp_path / "t-0" / HIGH_WATERMARK_CHECKPOINT_NAME).exists()
