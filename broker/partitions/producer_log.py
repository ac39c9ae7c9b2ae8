"""Producer state on disk: the I/O around broker.replication.producer_state.

A replica keeps its ProducerStateTable in step with its log in memory (every producer batch
it appends goes through `on_append`). What must come back after a restart or a truncation
is rebuilt, as Kafka's ProducerStateManager does, from a snapshot plus a replay of the log
after it:

- a snapshot `<offset>.snapshot` (offset = the log end when it was taken, 20 digits as
  Kafka names them) holds the table as of that offset, written atomically in the checkpoint
  format of broker.log.checkpoint every high-watermark checkpoint interval when the log end
  moved, and at close; the newest MAX_PRODUCER_SNAPSHOTS are kept;
- `load_producer_state` drops snapshots past the log end (a truncated suffix, a torn tail
  cut at recovery), starts from the newest readable one (or from the log start with an
  empty table) and replays the batch headers from there to the log end. Only headers are
  read, so compressed batches cost nothing more. Without any snapshot the replay covers the
  whole log: bounded by the log's size, and the case only of a log written before this
  feature or after a truncation below every snapshot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import structlog

from broker.log import PartitionLog
from broker.log.batch import BATCH_HEADER_SIZE_BYTES, NO_PRODUCER_ID, RecordBatch, iter_batches
from broker.log.checkpoint import read_checkpoint, write_checkpoint
from broker.log.errors import CorruptLogError, CorruptRecordError, RecordBatchError
from broker.replication.producer_state import (
    SNAPSHOT_ROW_WIDTH,
    CorruptProducerSnapshotError,
    ProducerBatch,
    ProducerStateTable,
)
from kraft.storage.durable_files import remove_file_durably

log = structlog.get_logger(__name__)

SNAPSHOT_SUFFIX = ".snapshot"
MAX_PRODUCER_SNAPSHOTS = 3
REPLAY_READ_BYTES = 1024 * 1024
_OFFSET_DIGITS = 20


def producer_batch(batch: RecordBatch) -> ProducerBatch | None:
    """The producer fields of a stored or produced batch; None for a batch without a
    producer id (and for control batches, which carry no producer data)."""
    if batch.producer_id == NO_PRODUCER_ID or batch.is_control:
        return None
    return ProducerBatch(
        batch.producer_id, batch.producer_epoch, batch.base_sequence, batch.last_offset_delta
    )


def producer_batch_of(records: bytes) -> ProducerBatch | None:
    """producer_batch of a produce request's bytes; None when they do not even hold a batch
    header (the log's validation then names what is wrong)."""
    if len(records) < BATCH_HEADER_SIZE_BYTES:
        return None
    try:
        return producer_batch(RecordBatch(records))
    except CorruptRecordError:
        return None


def snapshot_path(directory: Path, offset: int) -> Path:
    return directory / f"{offset:0{_OFFSET_DIGITS}d}{SNAPSHOT_SUFFIX}"


def snapshot_offsets(directory: Path) -> list[int]:
    """Offsets of the snapshots in a partition directory, oldest first."""
    offsets = []
    for path in directory.glob(f"*{SNAPSHOT_SUFFIX}"):
        stem = path.name.removesuffix(SNAPSHOT_SUFFIX)
        if len(stem) == _OFFSET_DIGITS and stem.isdigit():
            offsets.append(int(stem))
    return sorted(offsets)


def write_snapshot(
    directory: Path, table: ProducerStateTable | Sequence[tuple[int, ...]], offset: int
) -> None:
    """The table (or its rows, taken earlier with to_rows()) as of `offset` (the log end),
    then only the newest snapshots are kept. OSError is the caller's: a missed snapshot
    only makes the next replay longer."""
    rows = table.to_rows() if isinstance(table, ProducerStateTable) else table
    write_checkpoint(snapshot_path(directory, offset), rows)
    for old in snapshot_offsets(directory)[:-MAX_PRODUCER_SNAPSHOTS]:
        snapshot_path(directory, old).unlink(missing_ok=True)


def delete_snapshots_after(directory: Path, offset: int) -> None:
    """Snapshots of a state that holds batches at or past `offset`, once those are gone."""
    for stale in snapshot_offsets(directory):
        if stale > offset:  # durably: a snapshot back from the dead would be wrong
            remove_file_durably(snapshot_path(directory, stale))


def load_producer_state(partition_log: PartitionLog) -> ProducerStateTable:
    """The table as of the log end: newest usable snapshot, then a replay of the rest."""
    end_offset = partition_log.log_end_offset
    with contextlib.suppress(OSError):  # they are skipped below anyway
        delete_snapshots_after(partition_log.directory, end_offset)
    table, start_offset = ProducerStateTable(), partition_log.log_start_offset
    usable = [
        offset for offset in snapshot_offsets(partition_log.directory) if offset <= end_offset
    ]
    for offset in reversed(usable):
        path = snapshot_path(partition_log.directory, offset)
        try:
            rows = read_checkpoint(path, SNAPSHOT_ROW_WIDTH)
            table = ProducerStateTable.from_rows(rows or [])
        except (CorruptLogError, CorruptProducerSnapshotError):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        start_offset = max(offset, partition_log.log_start_offset)
        break
    try:
        replay(partition_log, table, start_offset, end_offset)
    except RecordBatchError as error:
        # readers of the log will meet the same damage; the partition stays usable, and the
        # producers after it count as unknown (accepted at any sequence)
        log.error(
            "producers.replay_failed", directory=str(partition_log.directory), reason=str(error)
        )
    table.remove_before(partition_log.log_start_offset)
    return table


def replay(
    partition_log: PartitionLog, table: ProducerStateTable, start_offset: int, end: int
) -> None:
    """Feeds the producer batches that start in [start_offset, end) to the table, in order."""
    offset = start_offset
    while offset < end:
        data = partition_log.read(offset, REPLAY_READ_BYTES)
        if not data:
            return
        for batch in iter_batches(data):
            if batch.base_offset >= end:
                return
            if batch.base_offset >= start_offset:
                fields = producer_batch(batch)
                if fields is not None:
                    table.on_append(fields, batch.base_offset, batch.last_offset)
            offset = batch.next_offset
