"""The file SnapshotStore: snapshots of the metadata state machine (KIP-630), one file each.

A snapshot file is named by the id it covers, Kafka style,
`<end_offset, 20 digits>-<epoch, 10 digits>.checkpoint`, and holds a small header (magic,
version, CRC-32 of the rest, end offset, epoch, data length) and the data. It is written
atomically (temporary file, fsync, rename, fsync of the directory); once it is durable the
older snapshots are deleted. latest() ignores temporary files a crash left behind and checks
the CRC and that the header agrees with the file name.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

from kraft.raft.types import Snapshot, SnapshotId
from kraft.storage.durable_files import (
    TEMPORARY_SUFFIX,
    fsync_directory,
    write_file_atomically,
)
from kraft.storage.errors import CorruptSnapshotError

SNAPSHOT_SUFFIX = ".checkpoint"
SNAPSHOT_MAGIC = b"KRSN"
SNAPSHOT_FORMAT_VERSION = 1
# magic, version, crc of everything after it, end_offset, epoch, data_length
SNAPSHOT_HEADER = struct.Struct(">4sBIqqQ")
CRC_COVERED_HEADER_START = 9
_SNAPSHOT_NAME = re.compile(r"^(\d{20})-(\d{10})" + re.escape(SNAPSHOT_SUFFIX) + "$")


def snapshot_file_name(snapshot_id: SnapshotId) -> str:
    return f"{snapshot_id.end_offset:020d}-{snapshot_id.epoch:010d}{SNAPSHOT_SUFFIX}"


def parse_snapshot_file_name(name: str) -> SnapshotId | None:
    match = _SNAPSHOT_NAME.match(name)
    if match is None:
        return None
    return SnapshotId(end_offset=int(match.group(1)), epoch=int(match.group(2)))


def encode_snapshot(snapshot: Snapshot) -> bytes:
    snapshot_id = snapshot.snapshot_id
    covered = struct.pack(">qqQ", snapshot_id.end_offset, snapshot_id.epoch, len(snapshot.data))
    crc = zlib.crc32(snapshot.data, zlib.crc32(covered))
    prefix = struct.pack(">4sBI", SNAPSHOT_MAGIC, SNAPSHOT_FORMAT_VERSION, crc)
    return b"".join((prefix, covered, snapshot.data))


def decode_snapshot(raw: bytes, path: Path) -> Snapshot:
    """Checks structure and CRC; raises CorruptSnapshotError naming the file."""
    if len(raw) < SNAPSHOT_HEADER.size:
        raise CorruptSnapshotError(
            f"snapshot {path} is {len(raw)} bytes, "
            f"shorter than its {SNAPSHOT_HEADER.size}-byte header"
        )
    magic, version, crc, end_offset, epoch, data_size_bytes = SNAPSHOT_HEADER.unpack_from(raw)
    if magic != SNAPSHOT_MAGIC or version != SNAPSHOT_FORMAT_VERSION:
        raise CorruptSnapshotError(f"snapshot {path} has bad magic {magic!r} or version {version}")
    if len(raw) != SNAPSHOT_HEADER.size + data_size_bytes:
        raise CorruptSnapshotError(
            f"snapshot {path} holds {len(raw) - SNAPSHOT_HEADER.size} data bytes, "
            f"its header says {data_size_bytes}"
        )
    actual_crc = zlib.crc32(memoryview(raw)[CRC_COVERED_HEADER_START:])
    if actual_crc != crc:
        raise CorruptSnapshotError(
            f"snapshot {path} fails its CRC: stored {crc:#010x}, actual {actual_crc:#010x}"
        )
    return Snapshot(SnapshotId(end_offset, epoch), raw[SNAPSHOT_HEADER.size :])


class FileSnapshotStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        for path in directory.glob(f"*{SNAPSHOT_SUFFIX}{TEMPORARY_SUFFIX}"):
            if parse_snapshot_file_name(path.name[: -len(TEMPORARY_SUFFIX)]) is not None:
                path.unlink()  # a save that crashed before its rename: never a snapshot

    @property
    def directory(self) -> Path:
        return self._directory

    def snapshot_ids(self) -> list[SnapshotId]:
        """Ids of the complete snapshot files present, oldest first (temporaries skipped)."""
        found = []
        for path in self._directory.iterdir():
            if path.name.endswith(TEMPORARY_SUFFIX):
                continue
            snapshot_id = parse_snapshot_file_name(path.name)
            if snapshot_id is not None:
                found.append(snapshot_id)
        return sorted(found)

    def latest(self) -> Snapshot | None:
        snapshot_ids = self.snapshot_ids()
        if not snapshot_ids:
            return None
        newest_id = snapshot_ids[-1]
        path = self._directory / snapshot_file_name(newest_id)
        snapshot = decode_snapshot(path.read_bytes(), path)
        if snapshot.snapshot_id != newest_id:
            raise CorruptSnapshotError(
                f"snapshot {path} holds id {snapshot.snapshot_id}, its name says {newest_id}"
            )
        return snapshot

    def save(self, snapshot: Snapshot) -> None:
        path = self._directory / snapshot_file_name(snapshot.snapshot_id)
        write_file_atomically(path, encode_snapshot(snapshot))
        removed_any = False
        for snapshot_id in self.snapshot_ids():
            if snapshot_id < snapshot.snapshot_id:
                (self._directory / snapshot_file_name(snapshot_id)).unlink(missing_ok=True)
                removed_any = True
        if removed_any:
            fsync_directory(self._directory)
