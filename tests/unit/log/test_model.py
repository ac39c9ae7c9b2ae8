"""PartitionLog against a simple model (a list of batches with their offsets and bytes, a
log start offset and the leader-epoch entries), driven by hypothesis through appends as
leader and follower, rejected corrupt appends, reads, truncations, retention, clean and
unclean reopens and torn tails. fsync is stubbed out: durability is not what this checks
(test_recovery.py does), and it keeps the run fast."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from broker.log import (
    LogConfig,
    PartitionLog,
    RecordBatch,
    RecordBatchError,
    assign_offsets,
    iter_batches,
)
from tests.unit.log.helpers import CLOCK_MS, make_batch, segment_files, start_fsync_stubs

MODEL_CONFIG = LogConfig(
    segment_bytes=1500,
    index_interval_bytes=200,
    retention_bytes=2500,
    retention_ms=-1,
    max_message_bytes=1000,
)


@dataclass(frozen=True)
class ModelBatch:
    base_offset: int
    last_offset: int
    data: bytes


class PartitionLogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.patches = start_fsync_stubs()
        self.directory = Path(tempfile.mkdtemp(prefix="partition-log-model-"))
        self.log = self.open()
        self.batches: list[ModelBatch] = []
        self.log_start_offset = 0
        self.epochs: list[tuple[int, int]] = []
        self.tag = 0

    def open(self) -> PartitionLog:
        return PartitionLog(self.directory, MODEL_CONFIG, clock_ms=lambda: CLOCK_MS)

    def teardown(self) -> None:
        self.log.abandon()
        shutil.rmtree(self.directory, ignore_errors=True)
        for patch in self.patches:
            patch.stop()

    # -- model helpers ---------------------------------------------------------------------

    @property
    def log_end_offset(self) -> int:
        return self.batches[-1].last_offset + 1 if self.batches else self.log_start_offset

    @property
    def latest_epoch(self) -> int:
        return self.epochs[-1][0] if self.epochs else 0

    def model_append(self, data: bytes) -> None:
        batch = RecordBatch(data)
        if not self.epochs or batch.partition_leader_epoch > self.latest_epoch:
            self.epochs.append((batch.partition_leader_epoch, batch.base_offset))
        self.batches.append(ModelBatch(batch.base_offset, batch.last_offset, data))

    def model_truncate_end(self, end_offset: int) -> None:
        self.batches = [batch for batch in self.batches if batch.last_offset < end_offset]
        new_end = self.log_end_offset
        self.epochs = [(epoch, start) for epoch, start in self.epochs if start < new_end]

    def next_batch(self, count: int, value_size_bytes: int) -> bytes:
        self.tag += 1
        timestamp = CLOCK_MS + self.tag
        return make_batch(count, value_size_bytes=value_size_bytes, timestamp_ms=timestamp)

    # -- rules -----------------------------------------------------------------------------

    @rule(
        count=st.integers(1, 5),
        value_size_bytes=st.integers(0, 100),
        new_epoch=st.booleans(),
    )
    def append_as_leader(self, count: int, value_size_bytes: int, new_epoch: bool) -> None:
        epoch = self.latest_epoch + (1 if new_epoch else 0)
        data = self.next_batch(count, value_size_bytes)
        base_offset, last_offset = self.log.append_as_leader(data, epoch)
        assert (base_offset, last_offset) == (self.log_end_offset, self.log_end_offset + count - 1)
        self.model_append(assign_offsets(data, base_offset, epoch))

    @rule(counts=st.lists(st.integers(1, 4), min_size=1, max_size=3), new_epoch=st.booleans())
    def append_as_follower(self, counts: list[int], new_epoch: bool) -> None:
        epoch = self.latest_epoch + (1 if new_epoch else 0)
        offset = self.log_end_offset
        run = []
        for count in counts:
            run.append(assign_offsets(self.next_batch(count, 20), offset, epoch))
            offset += count
        assert self.log.append_as_follower(b"".join(run)) == (self.log_end_offset, offset - 1)
        for data in run:
            self.model_append(data)

    @rule(position=st.integers(8, 200), flip=st.integers(1, 255))
    def corrupt_append_changes_nothing(self, position: int, flip: int) -> None:
        data = bytearray(self.next_batch(2, 30))
        # baseOffset and partitionLeaderEpoch (bytes 0-7, 12-15) lie outside the CRC: the
        # leader overwrites them, so flipping them is no corruption.
        position = 8 + position % (len(data) - 8)
        if 12 <= position < 16:
            return
        data[position] ^= flip
        sizes = {path.name: path.stat().st_size for path in segment_files(self.directory)}
        with pytest.raises(RecordBatchError):
            self.log.append_as_leader(bytes(data), self.latest_epoch)
        assert sizes == {path.name: path.stat().st_size for path in segment_files(self.directory)}

    @rule(choice=st.integers(0, 10_000), max_bytes=st.integers(1, 3000))
    def read(self, choice: int, max_bytes: int) -> None:
        span = self.log_end_offset - self.log_start_offset + 1
        offset = self.log_start_offset + choice % span
        data = self.log.read(offset, max_bytes)
        if offset == self.log_end_offset:
            assert data == b""
            return
        returned = [bytes(batch.buffer) for batch in iter_batches(data)]
        assert returned, f"nothing read at {offset}"
        first = next(
            index for index, batch in enumerate(self.batches) if batch.last_offset >= offset
        )
        expected = [batch.data for batch in self.batches[first : first + len(returned)]]
        assert returned == expected
        assert len(returned) == 1 or len(data) <= max_bytes

    @precondition(lambda self: self.batches)
    @rule(choice=st.integers(0, 10_000))
    def truncate_to(self, choice: int) -> None:
        span = self.log_end_offset - self.log_start_offset + 1
        offset = self.log_start_offset + choice % span
        self.log.truncate_to(offset)
        self.model_truncate_end(offset)

    @rule()
    def delete_old_segments(self) -> None:
        deleted = self.log.delete_old_segments(CLOCK_MS)
        new_start = self.log.log_start_offset
        assert new_start >= self.log_start_offset
        if deleted == 0:
            assert new_start == self.log_start_offset
            return
        assert any(batch.base_offset == new_start for batch in self.batches)
        self.batches = [batch for batch in self.batches if batch.base_offset >= new_start]
        kept_bytes = sum(len(batch.data) for batch in self.batches)
        assert kept_bytes >= MODEL_CONFIG.retention_bytes
        self.log_start_offset = new_start
        covering = [entry for entry in self.epochs if entry[1] <= new_start][-1:]
        later = [entry for entry in self.epochs if entry[1] > new_start]
        self.epochs = [(epoch, new_start) for epoch, _ in covering] + later

    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        if clean:
            self.log.close()
        else:
            self.log.abandon()
        self.log = self.open()
        assert not self.log.recovery_report.lost_data
        assert self.log.recovery_report.was_clean_shutdown == clean

    @precondition(lambda self: self.batches)
    @rule(cut=st.integers(1, 10_000))
    def crash_with_torn_tail(self, cut: int) -> None:
        self.log.abandon()
        active = segment_files(self.directory)[-1]
        last = self.batches[-1]
        size = active.stat().st_size
        if size >= len(last.data):
            cut_bytes = 1 + cut % len(last.data)
            os.truncate(active, size - cut_bytes)
            self.model_truncate_end(last.base_offset)
        self.log = self.open()

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def offsets_match_the_model(self) -> None:
        assert self.log.log_start_offset == self.log_start_offset
        assert self.log.log_end_offset == self.log_end_offset

    @invariant()
    def epochs_match_the_model(self) -> None:
        assert self.log.leader_epoch_entries() == self.epochs
        if self.epochs:
            latest = self.epochs[-1][0]
            assert self.log.end_offset_for_epoch(latest) == (latest, self.log_end_offset)


PartitionLogMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
test_partition_log_matches_the_model = PartitionLogMachine.TestCase
