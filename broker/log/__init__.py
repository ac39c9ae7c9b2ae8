"""Partition logs of the data plane: Kafka record batches (magic v2) stored byte for byte in
segment files with sparse offset and time indexes, a leader-epoch cache, recovery at open,
a flush policy and retention. `PartitionLog` (log.py) is the entry point; batch.py holds the
record-batch format.
"""

from __future__ import annotations

from broker.log.batch import (
    DecodedRecord,
    Record,
    RecordBatch,
    assign_offsets,
    build_batch,
    iter_batches,
    iter_records,
)
from broker.log.config import LogConfig
from broker.log.epoch_cache import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
from broker.log.errors import (
    CorruptLogError,
    CorruptRecordError,
    InvalidRecordError,
    LogWriteError,
    MessageTooLargeError,
    OffsetOutOfRangeError,
    PartitionLogError,
    RecordBatchError,
    UnexpectedAppendOffsetError,
)
from broker.log.log import PartitionLog
from broker.log.recovery import RecoveryReport, TruncatedTail

__all__ = [
    "UNDEFINED_EPOCH",
    "UNDEFINED_EPOCH_OFFSET",
    "CorruptLogError",
    "CorruptRecordError",
    "DecodedRecord",
    "InvalidRecordError",
    "LogConfig",
    "LogWriteError",
    "MessageTooLargeError",
    "OffsetOutOfRangeError",
    "PartitionLog",
    "PartitionLogError",
    "Record",
    "RecordBatch",
    "RecordBatchError",
    "RecoveryReport",
    "TruncatedTail",
    "UnexpectedAppendOffsetError",
    "assign_offsets",
    "build_batch",
    "iter_batches",
    "iter_records",
]
