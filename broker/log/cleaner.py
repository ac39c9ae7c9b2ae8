"""Log compaction, as Kafka's LogCleaner, for topics whose cleanup.policy lists `compact`:
the log keeps at least the latest record of every key, and a key's deletion marker (a
record with a null value, a tombstone) for delete.retention.ms.

A pass cleans the closed segments below the cleanable end (the high watermark, and never
the active segment). Records appended since the last pass are the dirty part: the pass maps
each key in it to its latest offset, then rewrites every segment of the range, dropping each
record whose key has a later offset in the map, and each tombstone whose segment was last
appended to more than delete.retention.ms ago (the segment file's modification time, which
a rewrite keeps, as Kafka's cleaner did before KIP-534: a consumer that read a key's value
has that long to read its deletion, whatever timestamp the producer gave it). A pass starts
when the dirty part is at least min.cleanable.dirty.ratio of the range (`plan`); its end
offset is kept in `cleaner-offset-checkpoint`.

Offsets never move, and the log stays contiguous (every offset lies in exactly one batch),
which every other part of the log relies on (segments, indexes, recovery, followers):

- a batch keeps its header (base offset, lastOffsetDelta, epoch, producer, codec) with only
  its surviving records, which keep their offset deltas (batch.thinned_batch);
- a run of batches of one leader epoch with no surviving record becomes one batch of no
  records spanning their offsets (batch.empty_batch, as Kafka's cleaner leaves for a
  producer's last batch); a producer's last batch stays apart with its producer fields, so
  its sequence survives a restart that rebuilds producer state from the log.

Kafka's cleaner drops such batches and leaves gaps; an empty batch costs 61 bytes a run
instead, and clients already skip empty batches because Kafka writes them too.

A record without a key is never superseded, so it is kept. A compacted topic's leader
refuses them (PartitionLog.append_as_leader, INVALID_RECORD, as Kafka's LogValidator), so
they come only from before the topic's cleanup.policy became `compact`.

`clean` runs on a thread: it reads the segments through its own descriptors and writes each
rewritten segment, with fresh indexes, into `.cleaning/` in the partition directory. The
log's owner then swaps them in (PartitionLog.install_cleaned) after checking that each
segment is still the one planned (retention or truncation may have changed it meanwhile).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from broker.log.batch import (
    NO_PRODUCER_ID,
    RecordBatch,
    RecordSpan,
    empty_batch,
    record_spans,
    thinned_batch,
)
from broker.log.config import (
    DELETE_RETENTION_MS,
    MAX_COMPACTION_LAG_MS,
    MIN_CLEANABLE_DIRTY_RATIO,
    MIN_COMPACTION_LAG_MS,
)
from broker.log.segment import Segment

# Keys one pass maps (Kafka sizes this as log.cleaner.dedupe.buffer.size). A pass maps
# whole segments until it holds this many, at least one segment; the next pass goes on.
CLEANER_MAX_KEYS = 1_000_000
# A pass runs on a thread and holds the GIL while it walks records; the event loop waiting
# for it would wait up to the interpreter's switch interval (5 ms) at every wake-up. So the
# pass works in slices of this long and then sleeps, which hands the GIL over at once.
CLEANER_WORK_SLICE_S = 0.001
CLEANER_PAUSE_S = 0.0005
CLEANING_DIRECTORY_NAME = ".cleaning"
CLEANER_CHECKPOINT_NAME = "cleaner-offset-checkpoint"
_LAST_OFFSET_DELTA_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class PlannedSegment:
    """A closed segment as it was when the pass was planned."""

    base_offset: int
    size_bytes: int
    next_offset: int
    modified_ms: int  # when it was last appended to (its file's mtime, kept by rewrites)


class CleaningCancelled(Exception):
    """The log was closed while a pass ran: the pass stopped, nothing was swapped in."""


class _Pacer:
    """Keeps a pass from holding the GIL longer than CLEANER_WORK_SLICE_S at a time."""

    def __init__(self) -> None:
        self.slice_started = time.perf_counter()

    def pace(self) -> None:
        if time.perf_counter() - self.slice_started >= CLEANER_WORK_SLICE_S:
            time.sleep(CLEANER_PAUSE_S)
            self.slice_started = time.perf_counter()


@dataclass(frozen=True, slots=True)
class CleaningPlan:
    directory: Path
    segments: tuple[PlannedSegment, ...]  # the range, oldest first
    first_dirty: int  # index in `segments` of the first segment appended since the last pass
    index_interval_bytes: int
    now_ms: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    delete_retention_ms: int = DELETE_RETENTION_MS
    pacer: _Pacer = field(default_factory=_Pacer)

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise CleaningCancelled(f"{self.directory} was closed")

    def step(self) -> None:
        """Between two batches: stops if the log was closed, gives the GIL a turn."""
        self.check_cancelled()
        self.pacer.pace()

    @property
    def cleaning_directory(self) -> Path:
        return self.directory / CLEANING_DIRECTORY_NAME


@dataclass(frozen=True, slots=True)
class CleanedSegment:
    """A segment rewritten into the cleaning directory (same base offset)."""

    planned: PlannedSegment
    size_bytes: int
    records_removed: int


@dataclass(frozen=True, slots=True)
class CleaningResult:
    plan: CleaningPlan
    cleaned: tuple[CleanedSegment, ...]  # only the segments that changed
    end_offset: int  # the end of the range this pass covered: the next pass's dirty start
    keys_mapped: int

    @property
    def records_removed(self) -> int:
        return sum(segment.records_removed for segment in self.cleaned)

    @property
    def bytes_reclaimed(self) -> int:
        return sum(segment.planned.size_bytes - segment.size_bytes for segment in self.cleaned)


@dataclass(frozen=True, slots=True)
class CleaningRules:
    """The topic's compaction configs (LogConfig has them by Kafka's names)."""

    min_dirty_ratio: float = MIN_CLEANABLE_DIRTY_RATIO  # min.cleanable.dirty.ratio
    min_compaction_lag_ms: int = MIN_COMPACTION_LAG_MS
    max_compaction_lag_ms: int = MAX_COMPACTION_LAG_MS
    delete_retention_ms: int = DELETE_RETENTION_MS


def plan(
    directory: Path,
    segments: list[PlannedSegment],
    cleaned_up_to: int,
    index_interval_bytes: int,
    now_ms: int,
    cancelled: threading.Event,
    rules: CleaningRules = CleaningRules(),
) -> CleaningPlan | None:
    """A pass over `segments` (the closed ones below the high watermark, oldest first) up
    to the first appended to within min_compaction_lag_ms, if the part at or above
    `cleaned_up_to` (the last pass's end) is at least min_dirty_ratio of their bytes, or
    its oldest segment was last appended to max_compaction_lag_ms ago or earlier; None
    otherwise. A segment's age is that of its last append (its file's mtime), which no
    producer timestamp can move."""
    if rules.min_compaction_lag_ms > 0:  # 0: no wait, whatever the clocks say
        youngest_allowed_ms = now_ms - rules.min_compaction_lag_ms
        old_enough = next(
            (i for i, seg in enumerate(segments) if seg.modified_ms > youngest_allowed_ms),
            len(segments),
        )
        segments = segments[:old_enough]
    first_dirty = next(
        (index for index, segment in enumerate(segments) if segment.next_offset > cleaned_up_to),
        None,
    )
    if first_dirty is None:
        return None
    total_bytes = sum(segment.size_bytes for segment in segments)
    dirty_bytes = sum(segment.size_bytes for segment in segments[first_dirty:])
    overdue = segments[first_dirty].modified_ms <= now_ms - rules.max_compaction_lag_ms
    if total_bytes == 0 or (dirty_bytes / total_bytes < rules.min_dirty_ratio and not overdue):
        return None
    return CleaningPlan(
        directory,
        tuple(segments),
        first_dirty,
        index_interval_bytes,
        now_ms,
        cancelled,
        rules.delete_retention_ms,
    )


def clean(plan: CleaningPlan) -> CleaningResult:
    """Maps the dirty part's keys and writes the rewritten segments (those that changed)
    into the cleaning directory, emptied first. Touches nothing the log reads."""
    plan.check_cancelled()  # the log was closed or its partition removed since the plan
    shutil.rmtree(plan.cleaning_directory, ignore_errors=True)
    plan.cleaning_directory.mkdir()
    latest, mapped_segments = _map_keys(plan)
    segments = plan.segments[: plan.first_dirty + mapped_segments]
    last_batches = _last_batch_of_each_producer(plan, segments)
    cleaned = []
    for segment in segments:
        result = _rewrite(plan, segment, latest, last_batches)
        if result is not None:
            cleaned.append(result)
    return CleaningResult(plan, tuple(cleaned), segments[-1].next_offset, len(latest))


def _batches(plan: CleaningPlan, segment: PlannedSegment) -> Iterator[RecordBatch]:
    """The segment's batches as planned, read in chunks through a descriptor of our own."""
    reader = Segment.open_existing(plan.directory, segment.base_offset, 0)
    try:
        for batch in reader.walk_batches(0, segment.size_bytes):
            plan.step()
            yield batch
    finally:
        reader.close()


def _map_keys(plan: CleaningPlan) -> tuple[dict[bytes, int], int]:
    """Each key of the dirty part to its latest offset, over whole segments until the map
    holds CLEANER_MAX_KEYS; and how many dirty segments it covers (at least one)."""
    latest: dict[bytes, int] = {}
    mapped = 0
    for segment in plan.segments[plan.first_dirty :]:
        if mapped and len(latest) >= CLEANER_MAX_KEYS:
            break
        for batch in _batches(plan, segment):
            if batch.is_control:
                continue
            base_offset = batch.base_offset
            for span in record_spans(batch)[1]:
                if span.key is not None:
                    latest[span.key] = base_offset + span.offset_delta
        mapped += 1
    return latest, mapped


def _last_batch_of_each_producer(
    plan: CleaningPlan, segments: tuple[PlannedSegment, ...]
) -> set[int]:
    """Base offsets of the last batch each idempotent producer wrote in the range."""
    last: dict[int, int] = {}
    for segment in segments:
        for batch in _batches(plan, segment):
            if batch.producer_id != NO_PRODUCER_ID:
                last[batch.producer_id] = batch.base_offset
    return set(last.values())


class _EmptyRun:
    """Consecutive batches of one leader epoch of which nothing survives, to be written as
    one empty batch."""

    def __init__(self, batch: RecordBatch) -> None:
        self.base_offset = batch.base_offset
        self.last_offset = batch.last_offset
        self.epoch = batch.partition_leader_epoch
        self.timestamp_ms = batch.max_timestamp
        self.first_bytes = bytes(batch.buffer)
        self.batches = 1

    def extends_to(self, batch: RecordBatch) -> bool:
        return (
            batch.partition_leader_epoch == self.epoch
            and batch.last_offset - self.base_offset <= _LAST_OFFSET_DELTA_MAX
        )

    def add(self, batch: RecordBatch) -> None:
        self.last_offset = batch.last_offset
        self.timestamp_ms = max(self.timestamp_ms, batch.max_timestamp)
        self.batches += 1

    def batch(self) -> bytes:
        return empty_batch(self.base_offset, self.last_offset, self.epoch, self.timestamp_ms)

    def is_unchanged(self) -> bool:
        """One batch that already was this empty batch (a previous pass wrote it)."""
        return self.batches == 1 and self.first_bytes == self.batch()


def _rewrite(
    plan: CleaningPlan,
    planned: PlannedSegment,
    latest: dict[bytes, int],
    last_batches: set[int],
) -> CleanedSegment | None:
    """The segment without its obsolete records, written to the cleaning directory; None
    (nothing left there) when it would come out the same."""
    tombstones_expired = planned.modified_ms < plan.now_ms - plan.delete_retention_ms
    writer = Segment.create(plan.cleaning_directory, planned.base_offset, plan.index_interval_bytes)
    run: _EmptyRun | None = None
    removed = 0
    changed = False

    def write_run() -> None:
        nonlocal changed, run
        if run is not None:
            writer.append(RecordBatch(run.batch()))
            changed = changed or not run.is_unchanged()
            run = None

    try:
        for batch in _batches(plan, planned):
            kept: bytes | None
            if batch.is_control:
                kept, dropped = bytes(batch.buffer), 0
            else:
                kept, dropped = _clean_batch(batch, latest, tombstones_expired)
            removed += dropped
            changed = changed or dropped > 0
            if kept is None and batch.base_offset in last_batches:
                kept = empty_batch(
                    batch.base_offset,
                    batch.last_offset,
                    batch.partition_leader_epoch,
                    batch.max_timestamp,
                    producer_id=batch.producer_id,
                    producer_epoch=batch.producer_epoch,
                    base_sequence=batch.base_sequence,
                )
                changed = changed or kept != bytes(batch.buffer)
            if kept is None:
                if run is not None and run.extends_to(batch):
                    run.add(batch)
                else:
                    write_run()
                    run = _EmptyRun(batch)
                continue
            write_run()
            writer.append(RecordBatch(kept))
        write_run()
        assert writer.next_offset == planned.next_offset, "cleaning kept the segment's offsets"
        writer.on_become_inactive()
        writer.flush()
        size_bytes = writer.size_bytes
    finally:
        writer.close()
    if not changed:
        for path in (writer.path, writer.offset_index_path, writer.time_index_path):
            path.unlink()
        return None
    return CleanedSegment(planned, size_bytes, removed)


def _clean_batch(
    batch: RecordBatch, latest: dict[bytes, int], tombstones_expired: bool
) -> tuple[bytes | None, int]:
    """The batch's bytes with its surviving records (the same bytes if all survive), or
    None if none does; and how many records it lost."""
    if batch.records_count == 0:
        return None, 0
    section, spans = record_spans(batch)
    base_offset = batch.base_offset
    kept: list[RecordSpan] = []
    for span in spans:
        key = span.key
        if key is not None:
            if latest.get(key, -1) > base_offset + span.offset_delta:
                continue  # a later record of this key is in the range
            if span.is_tombstone and tombstones_expired:
                continue
        kept.append(span)
    dropped = len(spans) - len(kept)
    if not kept:
        return None, dropped
    if not dropped:
        return bytes(batch.buffer), 0
    return thinned_batch(batch, section, kept), dropped


def remove_cleaning_directory(directory: Path) -> None:
    """What a pass interrupted by a crash or a failed swap left: the log never reads it."""
    shutil.rmtree(directory / CLEANING_DIRECTORY_NAME, ignore_errors=True)
