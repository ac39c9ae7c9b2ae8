"""One partition replica on this broker: its log, its role in the current leader epoch
(a PartitionLeaderState or a FollowerState from broker.replication), and the asyncio
waiters of the shell (parked fetches, acks=all produces).

The role objects are pure; this class only holds them together and keeps the high
watermark across role changes, so that a follower that becomes leader starts from what it
knew (Kafka's Partition.makeLeader). It also holds the idempotent producers' state of the
replica (a ProducerStateTable in step with the log, leader or follower; see
producer_log.py for how it survives restarts and truncations).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from broker.log import UNDEFINED_EPOCH, PartitionLog
from broker.log.checkpoint import read_single_offset, write_single_offset
from broker.log.errors import CorruptLogError, LogWriteError
from broker.partitions.producer_log import (
    delete_snapshots_after,
    load_producer_state,
    write_snapshot,
)
from broker.replication import FollowerState, PartitionLeaderState, ProduceCompletion
from broker.replication.producer_state import ProducerStateTable
from kraft.controller.image import PartitionRegistration

PARTITION_METADATA_NAME = "partition.metadata"  # Kafka's file: which topic id the dir holds
HIGH_WATERMARK_CHECKPOINT_NAME = "replication-offset-checkpoint"


def partition_directory(log_dir: Path, topic: str, partition_id: int) -> Path:
    """Kafka's layout: <log dir>/<topic>-<partition>."""
    return log_dir / f"{topic}-{partition_id}"


def read_topic_id(directory: Path) -> str | None:
    """The topic id a partition directory was created for (None if it says nothing)."""
    path = directory / PARTITION_METADATA_NAME
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "topic_id":
            return value.strip() or None
    return None


def write_topic_id(directory: Path, topic_id: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / PARTITION_METADATA_NAME).write_text(f"version: 0\ntopic_id: {topic_id}\n")


class Partition:
    def __init__(self, topic: str, topic_id: str, partition_id: int, log: PartitionLog) -> None:
        self.topic = topic
        self.topic_id = topic_id
        self.partition_id = partition_id
        self.log = log
        self.registration: PartitionRegistration | None = None
        self.leader: PartitionLeaderState | None = None
        self.follower: FollowerState | None = None
        self.min_insync_replicas = 1
        self._high_watermark = min(self._read_high_watermark(), log.log_end_offset)
        self._checkpointed_high_watermark = self._high_watermark
        self.last_woken_high_watermark = self._high_watermark
        # parked fetches: followers' wait for appends, consumers' for the high watermark
        self._replica_fetch_waiters: list[tuple[ParkedFetch, int]] = []
        self._consumer_fetch_waiters: list[tuple[ParkedFetch, int]] = []
        self.produce_waiters: dict[int, asyncio.Future[ProduceCompletion]] = {}
        self.produce_started_ms: dict[int, int] = {}  # produce id -> when it began waiting
        self.producers = ProducerStateTable()
        self._producer_snapshot_offset: int | None = None
        # Checkpoint files are written on a thread (see checkpoint_job); this lock and
        # generation keep a write prepared before a truncation or removal from landing after
        # it.
        self._files_lock = threading.Lock()
        self._files_generation = 0

    def __repr__(self) -> str:
        return f"Partition({self.topic}-{self.partition_id})"

    # -- views -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition_id}"

    @property
    def high_watermark(self) -> int:
        if self.leader is not None:
            return self.leader.high_watermark
        if self.follower is not None:
            return self.follower.high_watermark
        return min(self._high_watermark, self.log.log_end_offset)

    @property
    def latest_epoch(self) -> int:
        epoch = self.log.latest_epoch
        return UNDEFINED_EPOCH if epoch is None else epoch

    @property
    def leader_epoch(self) -> int:
        return -1 if self.registration is None else self.registration.leader_epoch

    @property
    def leader_id(self) -> int:
        return -1 if self.registration is None else self.registration.leader

    # -- roles -------------------------------------------------------------------------------

    def drop_roles(self) -> None:
        """Forgets the leader or follower state, keeping the high watermark it reached."""
        self._high_watermark = self.high_watermark
        self.leader = None
        self.follower = None

    # -- long polls --------------------------------------------------------------------------

    def park_fetch(self, parked: ParkedFetch, index: int, for_replica: bool) -> None:
        """Wakes `parked` (with `index`) at the next change a parked fetch may care about:
        for a follower's fetch an append, for a consumer's a high watermark move; for both a
        role change.

        A follower is not woken when only the high watermark moves (Kafka's DelayedFetch
        neither): it learns the new one from its next fetch, and waking it would cost every
        acks=all record one more read of the partition per follower for nothing."""
        waiters = self._replica_fetch_waiters if for_replica else self._consumer_fetch_waiters
        waiters.append((parked, index))

    def unpark_fetch(self, parked: ParkedFetch) -> None:
        """A parked fetch that ended otherwise (its time ran out, another partition woke
        it) leaves: an idle partition long-polled for days must not pile up its waiters."""
        for waiters in (self._replica_fetch_waiters, self._consumer_fetch_waiters):
            if any(waiting is parked for waiting, _ in waiters):
                waiters[:] = [entry for entry in waiters if entry[0] is not parked]

    def wake_fetches(self, replicas: bool = True, consumers: bool = True) -> None:
        waiters: list[tuple[ParkedFetch, int]] = []
        if replicas:
            waiters, self._replica_fetch_waiters = self._replica_fetch_waiters, []
        if consumers:
            waiters += self._consumer_fetch_waiters
            self._consumer_fetch_waiters = []
        for parked, index in waiters:
            parked.wake(index)

    # -- the high watermark checkpoint ------------------------------------------------------

    def _read_high_watermark(self) -> int:
        try:
            offset = read_single_offset(self.log.directory / HIGH_WATERMARK_CHECKPOINT_NAME)
        except CorruptLogError:
            return 0  # only an optimisation: the leader recomputes it from its followers
        return 0 if offset is None else offset

    def checkpoint_high_watermark(self) -> None:
        """Writes the high watermark if it moved (Kafka's replication-offset-checkpoint), so
        a restarted replica serves consumers up to it at once."""
        high_watermark = self.high_watermark
        if high_watermark == self._checkpointed_high_watermark:
            return
        with self._files_lock, contextlib.suppress(OSError):
            write_single_offset(self.log.directory / HIGH_WATERMARK_CHECKPOINT_NAME, high_watermark)
            self._checkpointed_high_watermark = high_watermark

    def checkpoint_job(self) -> Callable[[], CheckpointWritten] | None:
        """What the periodic checkpoint must write for this partition, taken now (on the
        event loop) and written by the returned function on another thread: the high
        watermark if it moved, the producer table as of the log end if the log moved.
        Together they cost a few fsyncs — 5 to 15 ms a round on a busy disk, a stall every
        produce and fetch of the node would wait out if it ran on the event loop. Pass the
        function's result to checkpoint_written(); None when there is nothing to write."""
        high_watermark: int | None = self.high_watermark
        if high_watermark == self._checkpointed_high_watermark:
            high_watermark = None
        snapshot_offset: int | None = self.log.log_end_offset
        if snapshot_offset == self._producer_snapshot_offset:
            snapshot_offset = None
        if high_watermark is None and snapshot_offset is None:
            return None
        rows = self.producers.to_rows() if snapshot_offset is not None else []
        directory = self.log.directory
        generation = self._files_generation

        def write() -> CheckpointWritten:
            written = CheckpointWritten(None, None)
            with self._files_lock:
                if generation != self._files_generation:
                    return written  # truncated or removed since: what was taken is stale
                if high_watermark is not None:
                    with contextlib.suppress(OSError):
                        path = directory / HIGH_WATERMARK_CHECKPOINT_NAME
                        write_single_offset(path, high_watermark)
                        written.high_watermark = high_watermark
                if snapshot_offset is not None:
                    with contextlib.suppress(OSError):
                        write_snapshot(directory, rows, snapshot_offset)
                        written.snapshot_offset = snapshot_offset
            return written

        return write

    def checkpoint_written(self, written: CheckpointWritten) -> None:
        """Notes what a checkpoint job wrote (on the event loop); what failed is tried again
        at the next round."""
        if written.high_watermark is not None:
            self._checkpointed_high_watermark = written.high_watermark
        if written.snapshot_offset is not None:
            self._producer_snapshot_offset = written.snapshot_offset

    def discard_pending_checkpoints(self) -> None:
        """Checkpoint jobs taken before now write nothing; waits for one being written."""
        with self._files_lock:
            self._files_generation += 1

    # -- producer state ------------------------------------------------------------------------

    def reload_producer_state(self) -> None:
        """Rebuilds the producer table as of the log end (at open, after a truncation)."""
        self.producers = load_producer_state(self.log)
        self._producer_snapshot_offset = None

    def producers_truncated(self) -> None:
        """The log lost a suffix: snapshots past its end go, the table is rebuilt."""
        self.discard_pending_checkpoints()  # a snapshot taken before would come back wrong
        try:
            delete_snapshots_after(self.log.directory, self.log.log_end_offset)
        except OSError as error:  # a snapshot left behind would come back wrong later
            raise LogWriteError(f"deleting producer snapshots of {self.name}: {error}") from error
        self.reload_producer_state()

    def producers_lost_head(self) -> None:
        """Retention moved the log start: producers with no batch left are forgotten."""
        self.producers.remove_before(self.log.log_start_offset)

    def snapshot_producer_state(self) -> None:
        """Writes the producer table as of the log end if the log moved since the last one
        (a failed write only makes the next rebuild replay more of the log)."""
        offset = self.log.log_end_offset
        if offset == self._producer_snapshot_offset:
            return  # an empty table is written too: it bounds the replay at the next open
        with self._files_lock, contextlib.suppress(OSError):
            write_snapshot(self.log.directory, self.producers, offset)
            self._producer_snapshot_offset = offset


class ParkedFetch:
    """One fetch waiting on several partitions: the first change resolves `future` (the
    fetch's task runs again in the next turn of the loop), and `woken` says which of its
    partitions (by their index in the request) changed."""

    __slots__ = ("future", "woken")

    def __init__(self) -> None:
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.woken: list[int] = []

    def wake(self, index: int | None = None) -> None:
        """`index` changed (None: the time ran out)."""
        if index is not None:
            self.woken.append(index)
        if not self.future.done():
            self.future.set_result(None)


@dataclass(slots=True)
class CheckpointWritten:
    """What a checkpoint job wrote: None where it wrote nothing."""

    high_watermark: int | None
    snapshot_offset: int | None
