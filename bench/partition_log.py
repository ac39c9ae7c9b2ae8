"""Micro-benchmark of a partition log (broker.log.PartitionLog): leader appends of 1 KiB
records in batches of 1, 16 and 100 records, without fsync (the default flush policy, which
relies on replication) and with an fsync after every append (flush_interval_messages=1);
then sequential reads from the log start (1 MiB per read) after a clean reopen.

    .venv/bin/python bench/partition_log.py [--directory DIR] [--seconds S]

The directory defaults to a temporary one beside the working directory (not /tmp, which may
be tmpfs where fsync costs nothing). Batches are built before timing starts: the figures are
the broker's cost (validation with the CRC-32C and record walk, offset assignment, write,
indexes), not the producer's. Prints appends/s, records/s, MB/s and append latency.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker.log import LogConfig, PartitionLog, Record, build_batch  # noqa: E402

RECORD_VALUE_SIZE_BYTES = 1024
BATCH_RECORD_COUNTS = (1, 16, 100)
DEFAULT_SECONDS_PER_RUN = 2.0
READ_MAX_BYTES = 1024 * 1024
DISTINCT_BATCHES = 64  # prebuilt batches cycled through, so values are not all identical
MEGABYTE = 1_000_000


def prebuilt_batches(record_count: int) -> list[bytes]:
    batches = []
    for tag in range(DISTINCT_BATCHES):
        value = bytes([tag]) * RECORD_VALUE_SIZE_BYTES
        records = [
            Record(key=None, value=value, timestamp_ms=1_700_000_000_000 + tag)
            for _ in range(record_count)
        ]
        batches.append(build_batch(records))
    return batches


def run_appends(
    directory: Path, record_count: int, fsync_each: bool, seconds: float
) -> tuple[list[float], int, PartitionLog]:
    config = LogConfig(flush_interval_messages=1 if fsync_each else None)
    log = PartitionLog(directory, config)
    batches = prebuilt_batches(record_count)
    latencies_seconds: list[float] = []
    appended_bytes = 0
    deadline = time.monotonic() + seconds
    index = 0
    while time.monotonic() < deadline:
        batch = batches[index % DISTINCT_BATCHES]
        started = time.perf_counter()
        log.append_as_leader(batch, 1)
        latencies_seconds.append(time.perf_counter() - started)
        appended_bytes += len(batch)
        index += 1
    return latencies_seconds, appended_bytes, log


def run_reads(directory: Path) -> tuple[float, int]:
    log = PartitionLog(directory)
    offset = log.log_start_offset
    read_bytes = 0
    started = time.perf_counter()
    while offset < log.log_end_offset:
        data = log.read(offset, READ_MAX_BYTES)
        read_bytes += len(data)
        # The next offset is the end of the last batch read: walk the headers only.
        position = 0
        while position < len(data):
            length = int.from_bytes(data[position + 8 : position + 12], "big")
            last_delta = int.from_bytes(data[position + 23 : position + 27], "big")
            offset = int.from_bytes(data[position : position + 8], "big") + last_delta + 1
            position += length + 12
    elapsed_seconds = time.perf_counter() - started
    log.close()
    return elapsed_seconds, read_bytes


def report_appends(
    record_count: int, label: str, latencies_seconds: list[float], appended_bytes: int
) -> None:
    elapsed_seconds = sum(latencies_seconds)
    appends = len(latencies_seconds)
    latencies_ms = sorted(latency * 1000 for latency in latencies_seconds)
    p99_ms = latencies_ms[min(appends - 1, int(appends * 0.99))]
    print(
        f"{record_count:>6} {label:>9} {appends / elapsed_seconds:>10.0f} "
        f"{appends * record_count / elapsed_seconds:>10.0f} "
        f"{appended_bytes / elapsed_seconds / MEGABYTE:>8.1f} "
        f"{statistics.median(latencies_ms):>8.3f} {p99_ms:>8.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", type=Path, default=Path.cwd())
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS_PER_RUN)
    arguments = parser.parse_args()
    print(f"PartitionLog.append_as_leader, {RECORD_VALUE_SIZE_BYTES}-byte records")
    print(
        f"{'batch':>6} {'fsync':>9} {'appends/s':>10} {'records/s':>10} {'MB/s':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    read_figures: list[tuple[str, float, int]] = []
    for fsync_each in (False, True):
        for record_count in BATCH_RECORD_COUNTS:
            directory = Path(tempfile.mkdtemp(prefix=".bench-partition-", dir=arguments.directory))
            try:
                latencies_seconds, appended_bytes, log = run_appends(
                    directory / "topic-0", record_count, fsync_each, arguments.seconds
                )
                log.close()
                label = "each" if fsync_each else "none"
                report_appends(record_count, label, latencies_seconds, appended_bytes)
                if not fsync_each:
                    elapsed_seconds, read_bytes = run_reads(directory / "topic-0")
                    read_figures.append((f"batches of {record_count}", elapsed_seconds, read_bytes))
            finally:
                shutil.rmtree(directory, ignore_errors=True)
    print(f"\nPartitionLog.read from the log start, {READ_MAX_BYTES} bytes per read")
    for label, elapsed_seconds, read_bytes in read_figures:
        print(
            f"{label:>18}: {read_bytes / MEGABYTE:8.1f} MB in {elapsed_seconds:6.3f} s = "
            f"{read_bytes / elapsed_seconds / MEGABYTE:8.1f} MB/s"
        )


if __name__ == "__main__":
    main()
