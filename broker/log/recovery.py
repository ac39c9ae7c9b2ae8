"""Recovery of a partition directory at open, and the report of what it did.

After a clean shutdown (a `.clean-shutdown` marker written by close(), as Kafka's
`.kafka_cleanshutdown`) every segment is trusted and only its indexes are loaded; an index
that is missing or malformed is rebuilt by recovering its segment. Otherwise the segments
wholly below the recovery point (flushed at roll) are trusted and every later one is
recovered: each batch is validated (frame, CRC, records) and must continue the offsets of the
one before; the first that fails ends the log. Its segment is cut there and every later
segment deleted (a torn tail of appends that were never flushed), and the leader-epoch cache
is rebuilt from the batches kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from broker.log.batch import NO_PARTITION_LEADER_EPOCH
from broker.log.epoch_cache import LeaderEpochCache
from broker.log.errors import CorruptRecordError, RecordBatchError
from broker.log.segment import Segment


@dataclass(frozen=True, slots=True)
class TruncatedTail:
    """A torn or corrupt tail cut away at open: which segment, from which byte, how many
    bytes, and why the first dropped batch failed."""

    segment_path: Path
    position: int
    dropped_size_bytes: int
    reason: str

    def describe(self) -> str:
        return (
            f"truncated {self.segment_path} at byte {self.position}: "
            f"dropped {self.dropped_size_bytes} bytes ({self.reason})"
        )


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening a partition directory found and changed, for the shell to log."""

    directory: Path
    was_clean_shutdown: bool
    recovered_segments: tuple[Path, ...]
    rebuilt_indexes: tuple[Path, ...]
    truncated_tails: tuple[TruncatedTail, ...]
    deleted_segments: tuple[Path, ...]
    log_start_offset: int
    log_end_offset: int

    @property
    def lost_data(self) -> bool:
        return bool(self.truncated_tails or self.deleted_segments)

    def describe(self) -> list[str]:
        shutdown = "clean" if self.was_clean_shutdown else "unclean"
        lines = [
            f"opened {self.directory} after {shutdown} shutdown: offsets "
            f"[{self.log_start_offset}, {self.log_end_offset}), "
            f"{len(self.recovered_segments)} segments recovered"
        ]
        lines.extend(f"rebuilt index {path}" for path in self.rebuilt_indexes)
        lines.extend(tail.describe() for tail in self.truncated_tails)
        lines.extend(
            f"deleted segment {path} after a truncated one" for path in self.deleted_segments
        )
        return lines


def recover_segment(segment: Segment, epoch_cache: LeaderEpochCache) -> TruncatedTail | None:
    """Validates every batch of the segment in order and re-adds it (rebuilding the indexes
    and the epoch cache, which the caller writes once at the end); cuts the file at the first
    bad batch and says so. The segment's file is fsynced, so what recovery kept is durable."""
    segment.start_recovery()
    file_size_bytes = segment.file_size_bytes()
    position = 0
    failure: str | None = None
    try:
        for batch in segment.walk_batches(0, file_size_bytes):
            batch.validate(compacted=True)  # a cleaned segment may be recovered too
            if batch.base_offset != segment.next_offset:
                raise CorruptRecordError(
                    f"batch at offset {batch.base_offset} does not follow offset "
                    f"{segment.next_offset - 1}"
                )
            epoch = batch.partition_leader_epoch
            latest_epoch = epoch_cache.latest_epoch
            if epoch != NO_PARTITION_LEADER_EPOCH and (
                latest_epoch is None or epoch > latest_epoch
            ):
                epoch_cache.assign(epoch, batch.base_offset, write=False)
            segment.add_batch(batch, position)
            position += batch.size_bytes
    except RecordBatchError as error:
        failure = error.reason
    if failure is None:
        segment.flush()
        return None
    segment.cut_file(position)
    segment.flush()
    return TruncatedTail(segment.path, position, file_size_bytes - position, failure)
