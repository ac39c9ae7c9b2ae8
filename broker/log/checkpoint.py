"""Small checkpoint files of a partition directory, each replaced atomically (temporary file,
fsync, rename, directory fsync), in Kafka's text format: a version line, an entry count line,
then one entry a line.

- `leader-epoch-checkpoint`: "epoch start_offset" lines, the leader-epoch cache.
- `recovery-point-offset-checkpoint`: one line, the offset below which every segment was
  flushed (Kafka keeps one such file per log directory; we keep one per partition).
- `log-start-offset-checkpoint`: one line, the log start offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from broker.log.errors import CorruptLogError
from kraft.storage.durable_files import write_file_atomically

CHECKPOINT_VERSION = 0
# A checkpoint is small: refuse to parse one beyond this many entries.
CHECKPOINT_ENTRIES_MAX = 1_000_000


def write_checkpoint(path: Path, entries: Sequence[tuple[int, ...]]) -> None:
    assert len(entries) <= CHECKPOINT_ENTRIES_MAX, f"{len(entries)} checkpoint entries"
    lines = [str(CHECKPOINT_VERSION), str(len(entries))]
    lines.extend(" ".join(str(value) for value in entry) for entry in entries)
    write_file_atomically(path, ("\n".join(lines) + "\n").encode())


def read_checkpoint(path: Path, width: int) -> list[tuple[int, ...]] | None:
    """The entries of a checkpoint (each `width` integers), None if the file is missing;
    CorruptLogError naming the file and the fault if it cannot be parsed."""
    if not path.exists():
        return None
    try:
        lines = path.read_text().splitlines()
        version = int(lines[0])
        count = int(lines[1])
        entries = [tuple(int(value) for value in line.split()) for line in lines[2:]]
    except (ValueError, IndexError, UnicodeDecodeError) as error:
        raise CorruptLogError(path, f"unreadable checkpoint: {error}") from error
    if version != CHECKPOINT_VERSION:
        raise CorruptLogError(path, f"unsupported checkpoint version {version}")
    if not 0 <= count <= CHECKPOINT_ENTRIES_MAX or count != len(entries):
        raise CorruptLogError(path, f"says {count} entries, holds {len(entries)}")
    for entry in entries:
        if len(entry) != width or any(value < 0 for value in entry):
            raise CorruptLogError(path, f"bad entry {entry}")
    return entries


def read_single_offset(path: Path) -> int | None:
    entries = read_checkpoint(path, 1)
    if entries is None:
        return None
    if len(entries) != 1:
        raise CorruptLogError(path, f"holds {len(entries)} offsets, expected one")
    return entries[0][0]


def write_single_offset(path: Path, offset: int) -> None:
    write_checkpoint(path, [(offset,)])
