"""ListOffsets MAX_TIMESTAMP (KIP-734) by binary search over the log's lookup by time
(broker/partitions/timestamps.py): against a brute-force answer, and on a real log."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from broker.log import PartitionLog
from broker.log.batch import Record, build_batch
from broker.partitions.timestamps import offset_of_max_timestamp


def first_at_or_after(timestamps: list[int]) -> Callable[[int], int | None]:
    """The log's lookup: the first offset whose timestamp is >= t."""

    def lookup(timestamp: int) -> int | None:
        for offset, found in enumerate(timestamps):
            if found >= timestamp:
                return offset
        return None

    return lookup


@pytest.mark.parametrize("seed", range(30))
def test_the_search_finds_the_first_record_with_the_largest_visible_timestamp(seed: int) -> None:
    rng = random.Random(seed)
    timestamps = [rng.choice([-1, 0, rng.randint(0, 10), rng.randint(0, 2**40)]) for _ in range(30)]
    high_watermark = rng.randint(0, len(timestamps))
    visible = timestamps[:high_watermark]

    found = offset_of_max_timestamp(first_at_or_after(timestamps), high_watermark)

    if not visible:
        assert found is None
    else:
        largest = max(visible)
        assert found == (visible.index(largest), largest)


def test_records_past_the_high_watermark_do_not_count() -> None:
    assert offset_of_max_timestamp(first_at_or_after([5, 9, 100]), 2) == (1, 9)


def test_an_empty_log_has_no_max_timestamp() -> None:
    assert offset_of_max_timestamp(first_at_or_after([]), 0) is None


def test_on_a_real_log_the_answer_is_the_record_not_its_batch(tmp_path: Path) -> None:
    log = PartitionLog(tmp_path / "t-0")
    for timestamps in ([10, 20], [30, 95, 40], [50, 60]):
        records = [Record(None, b"v", (), timestamp) for timestamp in timestamps]
        log.append_as_leader(build_batch(records), 0)

    assert offset_of_max_timestamp(log.offset_for_timestamp, log.log_end_offset) == (3, 95)
    assert offset_of_max_timestamp(log.offset_for_timestamp, 2) == (1, 20)
    log.close()
