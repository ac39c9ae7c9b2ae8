"""Benchmark of one log-compaction pass (broker/log/cleaner.py) over a partition log of
keyed records: how fast a pass reads and rewrites segments, and what it leaves.

    .venv/bin/python bench/log_cleaner.py [--records N] [--keys K] [--batch B]
        [--value-bytes V] [--segment-bytes S] [--directory DIR]

The log holds N records of V-byte values over K keys, B records a batch (B=1: a producer
with linger.ms=0), in segments of S bytes; the pass cleans every closed segment. Prints the
pass's time, its read rate (MB of segments read a second), records removed, bytes before
and after, and the time a consumer takes to read the compacted log from its start; and,
as a broker runs it, on a thread beside an event loop whose 1 ms timers it measures: how
late they fire while the pass holds the GIL between its pauses (and with no pass). The
directory defaults to a temporary one beside the working directory (not /tmp, which may be
tmpfs).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from broker.log import LogConfig, PartitionLog, Record, build_batch
from broker.log.batch import iter_batches, iter_records
from broker.log.cleaner import clean


def fill(log: PartitionLog, records: int, keys: int, batch: int, value_bytes: int) -> None:
    value = b"v" * value_bytes
    for start in range(0, records, batch):
        count = min(batch, records - start)
        pairs = [Record(b"key-%d" % ((start + n) % keys), value, (), 0) for n in range(count)]
        log.append_as_leader(build_batch(pairs), 0)


async def timer_lateness_ms(work: asyncio.Future[object] | None, samples: int) -> list[float]:
    """How late 1 ms timers fire on this loop: while `work` runs, or `samples` of them."""
    late: list[float] = []
    while (work is not None and not work.done()) or (work is None and len(late) < samples):
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        late.append((time.perf_counter() - started - 0.001) * 1000)
    return sorted(late)


def lateness_line(name: str, late: list[float]) -> str:
    p99 = late[int(len(late) * 0.99)]
    return (
        f"  1 ms loop timers {name}: late by p50 {statistics.median(late):.2f} ms, "
        f"p99 {p99:.2f} ms, max {late[-1]:.2f} ms ({len(late):,} timers)"
    )


async def clean_beside_a_loop(log: PartitionLog) -> None:
    plan = log.cleaning_plan(log.log_end_offset)
    assert plan is not None
    idle = await timer_lateness_ms(None, 2000)
    work = asyncio.get_running_loop().run_in_executor(None, clean, plan)
    busy = await timer_lateness_ms(work, 0)
    log.install_cleaned(await work)
    print(lateness_line("with no pass", idle))
    print(lateness_line("during a pass on a thread", busy))


def read_all(log: PartitionLog) -> int:
    records = 0
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        for batch in iter_batches(log.read(offset, 1 << 20)):
            records += sum(1 for _ in iter_records(batch))
            offset = batch.next_offset
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--segment-bytes", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--directory", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-cleaner-", dir=args.directory or Path.cwd()))
    try:
        log = PartitionLog(root / "t-0", LogConfig(segment_bytes=args.segment_bytes))
        fill(log, args.records, args.keys, args.batch, args.value_bytes)
        size_before = log.size_bytes
        plan = log.cleaning_plan(log.log_end_offset)
        assert plan is not None, "one segment at least must be closed"
        planned_bytes = sum(segment.size_bytes for segment in plan.segments)
        started = time.perf_counter()
        result = clean(plan)
        log.install_cleaned(result)
        elapsed = time.perf_counter() - started
        print(
            f"{args.records:,} records over {args.keys:,} keys, {args.batch} a batch, "
            f"{args.value_bytes}-byte values: {len(plan.segments)} segments "
            f"({planned_bytes / 1e6:.1f} MB) cleaned in {elapsed:.2f} s, "
            f"{planned_bytes / 1e6 / elapsed:.1f} MB/s, "
            f"{result.records_removed / elapsed:,.0f} records removed/s"
        )
        print(
            f"  removed {result.records_removed:,} records; log {size_before / 1e6:.1f} MB "
            f"-> {log.size_bytes / 1e6:.2f} MB"
        )
        started = time.perf_counter()
        left = read_all(log)
        reading_s = time.perf_counter() - started
        print(f"  reading the compacted log: {left:,} records in {reading_s:.2f} s")
        log.close()
        again = PartitionLog(root / "t-1", LogConfig(segment_bytes=args.segment_bytes))
        fill(again, args.records, args.keys, args.batch, args.value_bytes)
        asyncio.run(clean_beside_a_loop(again))
        again.close()
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
