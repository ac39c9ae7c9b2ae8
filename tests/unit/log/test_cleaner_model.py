"""Log compaction against a model, driven by hypothesis: appends of keyed records (several
a batch, tombstones among them, leader epochs rising), compaction passes at random high
watermarks, follower copies, clean and unclean reopens. After every step:

- no record is invented: each one read is one written, at its offset;
- a record is gone only if a later record of its key is still there (tombstones do not
  expire here: their segments are younger than delete.retention.ms);
- right after a pass, below its end, every key appears once;
- the batches hold every offset from the log start to the log end once, and the leader-
  epoch entries answer as before;
- a follower that copies the log from offset 0 reads the same records.

fsync is stubbed out: durability is test_cleaner.py's crash test's concern."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from broker.log import LogConfig, PartitionLog, Record, build_batch
from broker.log.cleaner import clean
from tests.unit.log.helpers import CLOCK_MS, Row, rows_of, start_fsync_stubs

CONFIG = LogConfig(segment_bytes=200, index_interval_bytes=100)  # a few batches a segment
KEYS = [b"a", b"b", b"c", b"d", b"e"]


class CompactionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.patches = start_fsync_stubs()
        self.directory = Path(tempfile.mkdtemp(prefix="cleaner-model-"))
        self.log = self.open()
        self.written: dict[int, Row] = {}
        self.epoch = 0
        self.epochs_before: list[tuple[int, int]] = []

    def open(self) -> PartitionLog:
        return PartitionLog(self.directory / "leader", CONFIG, clock_ms=lambda: CLOCK_MS)

    def teardown(self) -> None:
        self.log.abandon()
        shutil.rmtree(self.directory, ignore_errors=True)
        for patch in self.patches:
            patch.stop()

    @rule(
        pairs=st.lists(
            st.tuples(
                st.sampled_from(KEYS),
                st.one_of(st.none(), st.binary(min_size=1, max_size=40)),
            ),
            min_size=1,
            max_size=3,
        ),
        new_epoch=st.booleans(),
    )
    def append(self, pairs: list[tuple[bytes, bytes | None]], new_epoch: bool) -> None:
        if new_epoch:
            self.epoch += 1
        records = [Record(key, value, (), CLOCK_MS) for key, value in pairs]
        base, _ = self.log.append_as_leader(build_batch(records), self.epoch)
        for delta, (key, value) in enumerate(pairs):
            self.written[base + delta] = (base + delta, key, value)

    @rule(high_watermark_share=st.one_of(st.just(1.0), st.floats(min_value=0, max_value=1)))
    def compact(self, high_watermark_share: float) -> None:
        high_watermark = round(self.log.log_end_offset * high_watermark_share)
        plan = self.log.cleaning_plan(high_watermark, CLOCK_MS)
        if plan is None:
            return
        self.epochs_before = self.log.leader_epoch_entries()
        ends = [self.log.end_offset_for_epoch(e) for e in range(self.epoch + 2)]
        result = clean(plan)
        self.log.install_cleaned(result)
        below = [key for offset, key, _ in rows_of(self.log) if offset < result.end_offset]
        assert len(below) == len(set(below)), "right after a pass, each key once below its end"
        assert self.log.leader_epoch_entries() == self.epochs_before
        assert [self.log.end_offset_for_epoch(e) for e in range(self.epoch + 2)] == ends

    @rule(crash=st.booleans())
    def reopen(self, crash: bool) -> None:
        rows = rows_of(self.log)
        if crash:
            self.log.abandon()
        else:
            self.log.close()
        self.log = self.open()
        assert not self.log.recovery_report.lost_data or crash
        if not self.log.recovery_report.lost_data:
            assert rows_of(self.log) == rows
        else:  # an unflushed tail went with the crash: the model forgets it too
            for offset in [o for o in self.written if o >= self.log.log_end_offset]:
                del self.written[offset]

    @rule()
    def copy_to_a_follower(self) -> None:
        follower = PartitionLog(self.directory / "follower", CONFIG, clock_ms=lambda: CLOCK_MS)
        try:
            while follower.log_end_offset < self.log.log_end_offset:
                follower.append_as_follower(self.log.read(follower.log_end_offset, 500))
            assert rows_of(follower) == rows_of(self.log)
            assert follower.leader_epoch_entries() == self.log.leader_epoch_entries()
        finally:
            follower.close()
            shutil.rmtree(self.directory / "follower")

    @invariant()
    def nothing_invented_and_only_superseded_records_gone(self) -> None:
        rows = rows_of(self.log)
        assert all(self.written[offset] == (offset, key, value) for offset, key, value in rows)
        kept = {offset for offset, _, _ in rows}
        latest_kept = {}
        for offset, key, _ in rows:
            latest_kept[key] = offset
        for offset, key, _ in self.written.values():
            if offset not in kept:
                assert latest_kept.get(key, -1) > offset, f"{key!r} at {offset} lost"
        assert self.log.log_end_offset == max(self.written, default=-1) + 1


CompactionMachine.TestCase.settings = settings(
    max_examples=80, stateful_step_count=50, deadline=None
)
test_compaction_matches_the_model = CompactionMachine.TestCase
