"""How the data plane's typed failures become Kafka error codes (kraft.protocol.errors)."""

from __future__ import annotations

from broker.log.compression import UnsupportedCompressionError
from broker.log.errors import (
    CorruptRecordError,
    InvalidRecordError,
    LogWriteError,
    MessageTooLargeError,
    OffsetOutOfRangeError,
    PartitionLogError,
    UnexpectedAppendOffsetError,
)
from broker.replication import ReplicationError
from kraft.protocol.errors import ErrorCode

_REPLICATION_ERRORS = {
    ReplicationError.NONE: ErrorCode.NONE,
    ReplicationError.NOT_LEADER: ErrorCode.NOT_LEADER_OR_FOLLOWER,
    ReplicationError.NOT_ENOUGH_REPLICAS: ErrorCode.NOT_ENOUGH_REPLICAS,
    ReplicationError.NOT_ENOUGH_REPLICAS_AFTER_APPEND: ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    ReplicationError.OFFSET_OUT_OF_RANGE: ErrorCode.OFFSET_OUT_OF_RANGE,
    ReplicationError.FENCED_LEADER_EPOCH: ErrorCode.FENCED_LEADER_EPOCH,
    ReplicationError.UNKNOWN_LEADER_EPOCH: ErrorCode.UNKNOWN_LEADER_EPOCH,
}


def replication_error_code(error: ReplicationError) -> ErrorCode:
    return _REPLICATION_ERRORS[error]


def log_error_code(error: PartitionLogError) -> ErrorCode:
    """The code a produce or fetch answers for a failure of the partition log."""
    if isinstance(error, MessageTooLargeError):
        return ErrorCode.MESSAGE_TOO_LARGE
    if isinstance(error, CorruptRecordError):
        return ErrorCode.CORRUPT_MESSAGE
    if isinstance(error, UnsupportedCompressionError):
        return ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    if isinstance(error, InvalidRecordError):
        return ErrorCode.INVALID_RECORD
    if isinstance(error, OffsetOutOfRangeError):
        return ErrorCode.OFFSET_OUT_OF_RANGE
    if isinstance(error, LogWriteError | UnexpectedAppendOffsetError):
        return ErrorCode.KAFKA_STORAGE_ERROR
    return ErrorCode.UNKNOWN_SERVER_ERROR
