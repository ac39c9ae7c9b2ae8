"""Typed errors of the partition log, one per Kafka error a produce or fetch can answer with
(CORRUPT_MESSAGE, INVALID_RECORD, MESSAGE_TOO_LARGE, OFFSET_OUT_OF_RANGE) plus the storage
failures the broker shell handles. Programmer errors are asserts instead (STYLE.md §4).
"""

from __future__ import annotations

from pathlib import Path


class PartitionLogError(Exception):
    """Base of every error of broker.log; the message names the thing, the value and the rule."""


class RecordBatchError(PartitionLogError):
    """Bytes that are not a valid record batch; `reason` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CorruptRecordError(RecordBatchError):
    """The batch frame is damaged: bad CRC, wrong magic, lengths that do not fit the bytes
    (Kafka's CorruptRecordException, answered as CORRUPT_MESSAGE)."""


class InvalidRecordError(RecordBatchError):
    """The frame is intact but its content breaks a rule: record count, offset deltas, record
    lengths, more than one batch where one is required (Kafka's InvalidRecordException)."""


class MessageTooLargeError(PartitionLogError):
    """A batch is larger than max.message.bytes (MESSAGE_TOO_LARGE)."""

    def __init__(self, size_bytes: int, max_message_bytes: int) -> None:
        super().__init__(
            f"record batch of {size_bytes} bytes is larger than "
            f"max.message.bytes={max_message_bytes}"
        )
        self.size_bytes = size_bytes
        self.max_message_bytes = max_message_bytes


class OffsetOutOfRangeError(PartitionLogError):
    """A read asked for an offset outside [log start offset, log end offset]."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(
            f"offset {offset} is outside the log [{log_start_offset}, {log_end_offset}]"
        )
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class UnexpectedAppendOffsetError(PartitionLogError):
    """A follower append that does not continue the log exactly (Kafka's
    UnexpectedAppendOffsetException): the batch starts elsewhere than the log end offset."""

    def __init__(self, base_offset: int, log_end_offset: int) -> None:
        super().__init__(
            f"follower batch starts at offset {base_offset}, but the log ends at {log_end_offset}"
        )
        self.base_offset = base_offset
        self.log_end_offset = log_end_offset


class LogWriteError(PartitionLogError):
    """A write, flush or truncate failed at the operating-system level (disk full, I/O)."""


class CorruptLogError(PartitionLogError):
    """Stored data is damaged where recovery may not cut it away (a checkpoint file)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"corrupt log file {path}: {reason}")
        self.path = path
        self.reason = reason
