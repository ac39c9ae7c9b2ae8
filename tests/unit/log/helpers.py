"""Shared helpers of the partition-log tests: batches of known content and logs in a
temporary directory with a fixed clock."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

from broker.log import LogConfig, PartitionLog, Record, build_batch, iter_batches
from broker.log.batch import RecordBatch, iter_records

CLOCK_MS = 1_700_000_000_000
SMALL_CONFIG = LogConfig(segment_bytes=2048, index_interval_bytes=256, max_message_bytes=1024)


def make_batch(
    count: int = 1, *, value_size_bytes: int = 10, timestamp_ms: int = CLOCK_MS, tag: int = 0
) -> bytes:
    """A producer batch (no offsets yet) of `count` records with recognisable values."""
    records = [
        Record(
            key=f"k{tag}-{index}".encode(),
            value=(f"v{tag}-{index}-".encode() * value_size_bytes)[:value_size_bytes],
            headers=(("h", b"x"),),
            timestamp_ms=timestamp_ms + index,
        )
        for index in range(count)
    ]
    return build_batch(records)


def open_log(directory: Path, config: LogConfig = SMALL_CONFIG) -> PartitionLog:
    return PartitionLog(directory, config, clock_ms=lambda: CLOCK_MS)


def read_all(log: PartitionLog, max_bytes: int = 1 << 20) -> list[tuple[int, int, bytes]]:
    """(base offset, last offset, batch bytes) of every batch from the log start."""
    found: list[tuple[int, int, bytes]] = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, max_bytes)
        assert data, f"read at {offset} below the log end {log.log_end_offset} returned nothing"
        for batch in iter_batches(data):
            batch.validate()
            found.append((batch.base_offset, batch.last_offset, bytes(batch.buffer)))
            offset = batch.next_offset
    return found


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.log"))


def start_fsync_stubs() -> list[mock._patch[object]]:
    """fsync and fdatasync as no-ops (for the model tests: durability is not what they
    check, and it keeps them fast); stop() each when done."""
    patches = [
        mock.patch.object(os, "fsync", lambda descriptor: None),
        mock.patch.object(os, "fdatasync", lambda descriptor: None),
    ]
    for patch in patches:
        patch.start()
    return patches


Row = tuple[int, bytes | None, bytes | None]  # offset, key, value


def compacted_batches(log: PartitionLog) -> list[RecordBatch]:
    """Every batch from the log start, checked as a follower or consumer checks a batch of
    a compacted log; they must hold every offset once, in order."""
    found: list[RecordBatch] = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20)
        assert data, f"nothing at {offset} below the log end {log.log_end_offset}"
        for batch in iter_batches(data):
            batch.validate(compacted=True)
            assert batch.base_offset == offset, "every offset in one batch, in order"
            found.append(batch)
            offset = batch.next_offset
    return found


def rows_of(log: PartitionLog) -> list[Row]:
    """(offset, key, value) of every record from the log start."""
    return [
        (record.offset, record.key, record.value)
        for batch in compacted_batches(log)
        for record in iter_records(batch)
    ]
