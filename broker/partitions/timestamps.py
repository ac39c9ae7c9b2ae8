"""ListOffsets by MAX_TIMESTAMP (KIP-734), from nothing but the log's lookup by time.

Kafka answers -3 with the offset and timestamp of the record with the largest timestamp (the
first such record). The log answers "the first offset whose timestamp is >= t" from its time
indexes; "that offset exists and lies below the high watermark" is true for every t up to
the largest timestamp a consumer may see and false above it, so a binary search over the
int64 timestamps (64 lookups, each a time-index search) finds that largest timestamp T, and
the lookup of T is the first record that has it. Records at or past the high watermark are
not visible to consumers and do not count.
"""

from __future__ import annotations

from collections.abc import Callable

TIMESTAMP_MIN = -(2**63)
TIMESTAMP_MAX = 2**63 - 1


def offset_of_max_timestamp(
    first_offset_at_or_after: Callable[[int], int | None], high_watermark: int
) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record below the high watermark that has the largest
    timestamp among those records; None when there is no record below it."""

    def visible(timestamp: int) -> bool:
        offset = first_offset_at_or_after(timestamp)
        return offset is not None and offset < high_watermark

    low, high = TIMESTAMP_MIN, TIMESTAMP_MAX
    if not visible(low):
        return None
    while low < high:  # invariant: visible(low); every t > high is not visible
        middle = (low + high + 1) // 2
        if visible(middle):
            low = middle
        else:
            high = middle - 1
    offset = first_offset_at_or_after(low)
    assert offset is not None, f"timestamp {low} was found and is gone"
    return offset, low
