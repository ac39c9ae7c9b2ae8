"""The offsets topic: Kafka's partitionFor rule over Java's String.hashCode, the shape the
topic is created with, Kafka's record formats (OffsetCommitKey/Value, GroupMetadataKey/Value)
and the replay of a partition's records, the last one per key winning."""

from __future__ import annotations

import struct

import pytest

from broker.kafka.groups.model import CommittedOffset, GroupSnapshot, MemberSnapshot
from broker.kafka.groups.offsets_topic import (
    PartitionContents,
    java_string_hashcode,
    offsets_topic_shape,
    partition_for,
)
from broker.kafka.groups.records import (
    GroupKey,
    OffsetKey,
    OffsetsRecordError,
    decode_group_value,
    decode_key,
    decode_offset_value,
    group_key,
    group_value,
    offset_key,
    offset_value,
)

SNAPSHOT = GroupSnapshot(
    group_id="g",
    protocol_type="consumer",
    generation_id=4,
    protocol_name="range",
    leader="m1",
    state_timestamp_ms=1_700_000_000_000,
    members=(
        MemberSnapshot("m1", None, "client-1", "/10.0.0.1", 300_000, 10_000, b"sub1", b"asg1"),
        MemberSnapshot("m2", "static-2", "client-2", "/10.0.0.2", 300_000, 45_000, b"", b""),
    ),
)


@pytest.mark.parametrize(
    ("text", "hashcode"),
    [
        ("", 0),
        ("a", 97),
        ("abc", 96354),
        ("hello", 99162322),
        ("polygenelubricants", -(2**31)),  # Integer.MIN_VALUE
        ("é€", 233 * 31 + 8364),  # UTF-16 code units
        ("😀", 0xD83D * 31 + 0xDE00),  # a surrogate pair counts as two units
    ],
)
def test_java_string_hashcode_matches_java(text: str, hashcode: int) -> None:
    assert java_string_hashcode(text) == hashcode


def test_partition_for_is_kafkas_abs_hash_modulo_partitions() -> None:
    assert partition_for("hello", 50) == 99162322 % 50
    assert partition_for("polygenelubricants", 6) == 0  # Utils.abs(MIN_VALUE) is 0
    assert java_string_hashcode("Hello World") == -862545276  # overflows: negative
    assert partition_for("Hello World", 50) == 862545276 % 50
    for group in ("a", "group-1", "kafka-python-group", "x" * 300):
        assert 0 <= partition_for(group, 6) < 6


def test_offsets_topic_is_rf3_with_two_in_sync_replicas_and_lower_on_small_clusters() -> None:
    shape = offsets_topic_shape(6, 3, 5)
    assert (shape.partitions, shape.replication_factor) == (6, 3)
    assert shape.configs["min.insync.replicas"] == "2"
    assert shape.configs["retention.ms"] == "-1"
    assert (shape.configs["cleanup.policy"], shape.configs["segment.bytes"]) == (
        "compact",
        str(100 * 1024 * 1024),
    )
    assert offsets_topic_shape(6, 3, 2).replication_factor == 2
    assert offsets_topic_shape(6, 3, 2).configs["min.insync.replicas"] == "1"
    assert offsets_topic_shape(6, 3, 1).configs["min.insync.replicas"] == "1"


def test_offset_commit_key_and_value_are_kafkas_bytes() -> None:
    key = offset_key("g", "t", 5)
    assert key == struct.pack(">hh1sh1si", 1, 1, b"g", 1, b"t", 5)
    value = offset_value(CommittedOffset(42, 3, "m", 99))
    assert value == struct.pack(">hqih1sq", 3, 42, 3, 1, b"m", 99)
    assert decode_key(key) == OffsetKey("g", "t", 5)
    assert decode_offset_value(value) == CommittedOffset(42, 3, "m", 99)


def test_older_offset_values_decode_without_a_leader_epoch() -> None:
    v1 = struct.pack(">hqh1sqq", 1, 42, 1, b"m", 99, 12345)  # v1 has an expire timestamp
    assert decode_offset_value(v1) == CommittedOffset(42, -1, "m", 99)


def test_group_metadata_round_trips() -> None:
    assert decode_key(group_key("g")) == GroupKey("g")
    assert decode_group_value("g", group_value(SNAPSHOT)) == SNAPSHOT


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", struct.pack(">h", 7) + b"\x00\x01g", struct.pack(">hh", 2, 5) + b"ab"],
)
def test_records_that_do_not_parse_are_refused(data: bytes) -> None:
    with pytest.raises(OffsetsRecordError):
        decode_key(data)


def test_trailing_bytes_after_a_value_are_refused() -> None:
    with pytest.raises(OffsetsRecordError, match="after the record"):
        decode_group_value("g", group_value(SNAPSHOT) + b"\x00")


def test_replay_keeps_the_last_record_per_key_and_honours_tombstones() -> None:
    contents = PartitionContents()
    contents.apply(offset_key("g", "t", 0), offset_value(CommittedOffset(1, -1, "", 0)))
    contents.apply(offset_key("g", "t", 0), offset_value(CommittedOffset(9, -1, "", 0)))
    contents.apply(offset_key("g", "t", 1), offset_value(CommittedOffset(5, -1, "", 0)))
    contents.apply(offset_key("g", "t", 1), None)
    contents.apply(group_key("g"), group_value(SNAPSHOT))
    contents.apply(group_key("gone"), group_value(SNAPSHOT))
    contents.apply(group_key("gone"), None)
    assert contents.offsets["g"] == {("t", 0): CommittedOffset(9, -1, "", 0)}
    assert contents.groups == {"g": SNAPSHOT}
    assert contents.group_ids() == ["g"]
