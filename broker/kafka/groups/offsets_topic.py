"""The internal offsets topic `__consumer_offsets`: which of its partitions holds a group
(Kafka's rule, so a group lands where a Kafka cluster of the same size would put it), the
shape it is created with, and the replay of a partition's records into groups and offsets
when a broker becomes its leader. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from broker.kafka.groups.model import CommittedOffset, GroupSnapshot
from broker.kafka.groups.records import (
    GroupKey,
    OffsetKey,
    decode_group_value,
    decode_key,
    decode_offset_value,
)

OFFSETS_TOPIC = "__consumer_offsets"
_INT32_MIN = -(2**31)


def java_string_hashcode(text: str) -> int:
    """Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, in
    32-bit two's complement arithmetic."""
    raw = text.encode("utf-16-be")
    value = 0
    for index in range(0, len(raw), 2):
        value = (31 * value + ((raw[index] << 8) | raw[index + 1])) & 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def partition_for(group_id: str, partition_count: int) -> int:
    """Kafka's partitionFor: Utils.abs(groupId.hashCode) % partitions (Utils.abs maps
    Integer.MIN_VALUE to 0)."""
    assert partition_count > 0, f"the offsets topic has {partition_count} partitions"
    hashcode = java_string_hashcode(group_id)
    return (0 if hashcode == _INT32_MIN else abs(hashcode)) % partition_count


OFFSETS_TOPIC_SEGMENT_BYTES = 100 * 1024 * 1024  # Kafka's offsets.topic.segment.bytes


@dataclass(frozen=True, slots=True)
class OffsetsTopicShape:
    partitions: int
    replication_factor: int
    configs: dict[str, str]


def offsets_topic_shape(
    partitions: int, wanted_replication_factor: int, broker_count: int
) -> OffsetsTopicShape:
    """The replication factor is offsets.topic.replication.factor, lowered to the number of
    registered brokers on a smaller cluster (Kafka refuses instead; a one- or two-broker
    development cluster would then have no groups). min.insync.replicas is one less than
    the replication factor, at most 2 (2 at RF 3: a commit survives the loss of any one
    replica and commits go on while one is down). The log is compacted (cleanup.policy
    compact, without delete: retention never removes a commit), so it keeps the last
    record of each key; its segments roll at 100 MiB (Kafka's offsets.topic.segment.bytes)
    so the cleaner, which cleans only closed segments, gets to them."""
    assert broker_count > 0, "no broker is registered"
    replication_factor = max(1, min(wanted_replication_factor, broker_count))
    min_insync_replicas = max(1, min(2, replication_factor - 1))
    return OffsetsTopicShape(
        partitions=partitions,
        replication_factor=replication_factor,
        configs={
            "cleanup.policy": "compact",
            "min.insync.replicas": str(min_insync_replicas),
            "retention.ms": "-1",
            "segment.bytes": str(OFFSETS_TOPIC_SEGMENT_BYTES),
        },
    )


@dataclass(slots=True)
class PartitionContents:
    """What the records of one offsets partition say, the last record per key winning."""

    groups: dict[str, GroupSnapshot] = field(default_factory=dict)
    offsets: dict[str, dict[tuple[str, int], CommittedOffset]] = field(default_factory=dict)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record; raises OffsetsRecordError for one that does not parse."""
        if key is None:
            return  # not ours: every record this broker writes has a key
        decoded = decode_key(key)
        if isinstance(decoded, OffsetKey):
            group_offsets = self.offsets.setdefault(decoded.group_id, {})
            partition = (decoded.topic, decoded.partition)
            if value is None:
                group_offsets.pop(partition, None)
            else:
                group_offsets[partition] = decode_offset_value(value)
        else:
            assert isinstance(decoded, GroupKey)
            if value is None:
                self.groups.pop(decoded.group_id, None)
            else:
                self.groups[decoded.group_id] = decode_group_value(decoded.group_id, value)

    def group_ids(self) -> list[str]:
        named = set(self.groups) | {group for group, offsets in self.offsets.items() if offsets}
        return sorted(named)
