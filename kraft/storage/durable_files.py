"""Small helpers that make file changes durable: fsync of files and directories, and the
write-temporary-then-rename dance every atomically replaced file goes through.

A rename is only durable once the directory holding it is fsynced, so every helper that
creates, renames or removes a file fsyncs the directory afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"


def fsync_directory(directory: Path) -> None:
    """Makes the creations, renames and removals of entries of `directory` durable."""
    descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def flush_file_data(descriptor: int) -> None:
    """fdatasync where it exists: it flushes the data and the size, which is all an append
    needs, and skips the timestamps that fsync would also write."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(descriptor)
    else:  # pragma: no cover - macOS and Windows
        os.fsync(descriptor)


def write_all(descriptor: int, data: bytes | memoryview) -> None:
    """os.write may write less than asked (signals, some file systems); loop until done."""
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        assert written > 0, "os.write wrote nothing without raising"
        view = view[written:]


def temporary_path_for(path: Path) -> Path:
    return path.with_name(path.name + TEMPORARY_SUFFIX)


def write_file_atomically(path: Path, data: bytes) -> None:
    """Replaces `path` with `data` so that a crash leaves either the old or the new content:
    write a temporary file, fsync it, rename it over the target, fsync the directory."""
    temporary_path = temporary_path_for(path)
    descriptor = os.open(temporary_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary_path, path)
    fsync_directory(path.parent)


def remove_file_durably(path: Path) -> None:
    """Unlinks `path` (if present) and fsyncs its directory."""
    path.unlink(missing_ok=True)
    fsync_directory(path.parent)
