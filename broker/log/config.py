"""Settings of one partition log, with Kafka's topic-config names in the docstrings and
Kafka's defaults as named constants. `LogConfig.validate()` checks how they relate."""

from __future__ import annotations

from dataclasses import dataclass

from broker.log.batch import BATCH_HEADER_SIZE_BYTES

SEGMENT_BYTES = 1024 * 1024 * 1024  # segment.bytes
SEGMENT_MS = 7 * 24 * 60 * 60 * 1000  # segment.ms
RETENTION_MS = 7 * 24 * 60 * 60 * 1000  # retention.ms
RETENTION_BYTES = -1  # retention.bytes: -1 = no size limit
RETENTION_MS_UNLIMITED = -1
RETENTION_BYTES_UNLIMITED = -1
# log.flush.interval.messages: None = never fsync on a message count, rely on replication
# (Kafka's default is Long.MAX_VALUE, which means the same).
FLUSH_INTERVAL_MESSAGES: int | None = None
INDEX_INTERVAL_BYTES = 4096  # index.interval.bytes
MAX_MESSAGE_BYTES = 1024 * 1024 + 12  # max.message.bytes (Kafka: 1048588)
# Compaction (cleaner.py), Kafka's defaults:
DELETE_RETENTION_MS = 24 * 60 * 60 * 1000  # delete.retention.ms: tombstones kept a day
MIN_COMPACTION_LAG_MS = 0  # min.compaction.lag.ms
MAX_COMPACTION_LAG_MS = 2**63 - 1  # max.compaction.lag.ms: Long.MAX_VALUE, no deadline
MIN_CLEANABLE_DIRTY_RATIO = 0.5  # min.cleanable.dirty.ratio
# Positions in the offset index are int32, so a segment may not pass 2 GiB.
SEGMENT_BYTES_LIMIT = 2**31 - 1


@dataclass(frozen=True, slots=True)
class LogConfig:
    """segment_bytes: roll when the active segment would pass this size. segment_ms: roll when
    the newest record is this much younger than the segment's first batch. retention_ms,
    retention_bytes: delete whole old segments past these (-1: no limit).
    flush_interval_messages: fsync after this many appended records (None: never).
    index_interval_bytes: bytes between offset-index entries. max_message_bytes: largest batch.
    retention_deletes: whether retention_ms and retention_bytes delete segments at all: False
    when the topic's cleanup.policy leaves out `delete` (`compact` alone), as Kafka's
    LogConfig.delete. A compacted topic (__consumer_offsets, Connect's and Schema Registry's
    topics) is kept whatever its age: its oldest records are its live keys.
    compacts: the policy lists `compact`: the log cleaner (cleaner.py) keeps the latest
    record of each key. delete_retention_ms: how long a tombstone outlives its segment's
    last append. min_compaction_lag_ms: a segment is cleaned only this long after its last
    append. max_compaction_lag_ms: a segment appended to longer ago than this is cleaned
    even below the dirty ratio. min_cleanable_dirty_ratio: the share of the cleanable bytes
    appended since the last pass that starts one. log_append_time: the topic's
    message.timestamp.type is LogAppendTime: the leader stamps each produced batch with the
    time it appends it (PartitionLog.append_as_leader is given that time).
    """

    segment_bytes: int = SEGMENT_BYTES
    segment_ms: int = SEGMENT_MS
    retention_ms: int = RETENTION_MS
    retention_bytes: int = RETENTION_BYTES
    flush_interval_messages: int | None = FLUSH_INTERVAL_MESSAGES
    index_interval_bytes: int = INDEX_INTERVAL_BYTES
    max_message_bytes: int = MAX_MESSAGE_BYTES
    retention_deletes: bool = True
    compacts: bool = False
    delete_retention_ms: int = DELETE_RETENTION_MS
    min_compaction_lag_ms: int = MIN_COMPACTION_LAG_MS
    max_compaction_lag_ms: int = MAX_COMPACTION_LAG_MS
    min_cleanable_dirty_ratio: float = MIN_CLEANABLE_DIRTY_RATIO
    log_append_time: bool = False

    def validate(self) -> None:
        """Raises ValueError naming the setting, its value and the rule it breaks."""
        if not BATCH_HEADER_SIZE_BYTES <= self.segment_bytes <= SEGMENT_BYTES_LIMIT:
            raise ValueError(
                f"segment.bytes={self.segment_bytes} must lie in "
                f"[{BATCH_HEADER_SIZE_BYTES}, {SEGMENT_BYTES_LIMIT}]"
            )
        if self.segment_ms <= 0:
            raise ValueError(f"segment.ms={self.segment_ms} must be positive")
        if self.retention_ms < RETENTION_MS_UNLIMITED:
            raise ValueError(f"retention.ms={self.retention_ms} must be -1 or at least 0")
        if self.retention_bytes < RETENTION_BYTES_UNLIMITED:
            raise ValueError(f"retention.bytes={self.retention_bytes} must be -1 or at least 0")
        if self.flush_interval_messages is not None and self.flush_interval_messages < 1:
            raise ValueError(
                f"flush.messages={self.flush_interval_messages} must be at least 1 (or unset)"
            )
        if self.delete_retention_ms < 0 or self.min_compaction_lag_ms < 0:
            raise ValueError(
                f"delete.retention.ms={self.delete_retention_ms} and min.compaction.lag.ms="
                f"{self.min_compaction_lag_ms} must be at least 0"
            )
        if self.max_compaction_lag_ms < max(1, self.min_compaction_lag_ms):
            raise ValueError(
                f"max.compaction.lag.ms={self.max_compaction_lag_ms} must be at least 1 and "
                f"at least min.compaction.lag.ms={self.min_compaction_lag_ms}"
            )
        if not 0 <= self.min_cleanable_dirty_ratio <= 1:
            raise ValueError(
                f"min.cleanable.dirty.ratio={self.min_cleanable_dirty_ratio} must lie in [0, 1]"
            )
        if self.index_interval_bytes < 0:
            raise ValueError(f"index.interval.bytes={self.index_interval_bytes} must be >= 0")
        if self.max_message_bytes < BATCH_HEADER_SIZE_BYTES:
            raise ValueError(
                f"max.message.bytes={self.max_message_bytes} is below the "
                f"{BATCH_HEADER_SIZE_BYTES}-byte batch header"
            )
        # A batch larger than a segment goes alone into a new one, so a segment may reach
        # segment.bytes + max.message.bytes; positions in the offset index are int32.
        if self.segment_bytes + self.max_message_bytes > SEGMENT_BYTES_LIMIT:
            raise ValueError(
                f"segment.bytes={self.segment_bytes} plus max.message.bytes="
                f"{self.max_message_bytes} passes {SEGMENT_BYTES_LIMIT}, the largest position "
                "the offset index holds"
            )
