"""Micro-benchmark of the metadata log's commit path: FileLogStore.append (one batch, one
fdatasync) for batches of 1, 16, 256 and 1000 entries of 100 bytes.

    .venv/bin/python bench/storage_append.py [--directory DIR] [--seconds S] [--skip-fsync]

The directory defaults to a temporary one beside the working directory (not /tmp, which may
be tmpfs where fsync costs nothing). Prints appends/s, entries/s and latency per append.
--skip-fsync measures the CPU cost alone (encoding, checks, write), without the disk.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from kraft.raft.types import Entry
from kraft.storage import segments
from kraft.storage.segments import FileLogStore

BATCH_SIZES = (1, 16, 256, 1000)
ENTRY_DATA_SIZE_BYTES = 100
DEFAULT_SECONDS_PER_SIZE = 2.0


def run_one(directory: Path, batch_size: int, seconds: float) -> tuple[int, list[float]]:
    log = FileLogStore(directory)
    data = b"x" * ENTRY_DATA_SIZE_BYTES
    latencies_seconds: list[float] = []
    deadline = time.monotonic() + seconds
    offset = 0
    while time.monotonic() < deadline:
        entries = [Entry(offset + index, 1, data) for index in range(batch_size)]
        started = time.perf_counter()
        log.append(entries)
        latencies_seconds.append(time.perf_counter() - started)
        offset += batch_size
    log.close()
    return offset, latencies_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", type=Path, default=Path.cwd())
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS_PER_SIZE)
    parser.add_argument("--skip-fsync", action="store_true")
    arguments = parser.parse_args()
    flush = "no fsync (CPU cost only)" if arguments.skip_fsync else "one fdatasync per append"
    if arguments.skip_fsync:
        segments.flush_file_data = lambda descriptor: None
    print(f"FileLogStore.append, {ENTRY_DATA_SIZE_BYTES}-byte entries, {flush}")
    print(f"{'batch':>6} {'appends/s':>10} {'entries/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
    for batch_size in BATCH_SIZES:
        directory = Path(tempfile.mkdtemp(prefix=".bench-storage-", dir=arguments.directory))
        try:
            entry_count, latencies_seconds = run_one(directory, batch_size, arguments.seconds)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        elapsed_seconds = sum(latencies_seconds)
        latencies_ms = sorted(latency * 1000 for latency in latencies_seconds)
        p99_ms = latencies_ms[min(len(latencies_ms) - 1, int(len(latencies_ms) * 0.99))]
        print(
            f"{batch_size:>6} {len(latencies_seconds) / elapsed_seconds:>10.0f} "
            f"{entry_count / elapsed_seconds:>11.0f} "
            f"{statistics.median(latencies_ms):>8.3f} {p99_ms:>8.3f}"
        )


if __name__ == "__main__":
    main()
