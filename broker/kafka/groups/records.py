"""The records of the offsets topic in Kafka's own formats, so that Kafka's tools could read
our `__consumer_offsets` (kio has no schemas for these; they are written here by hand from
Kafka's OffsetCommitKey/OffsetCommitValue and GroupMetadataKey/GroupMetadataValue JSON).

Every field is big-endian, non-flexible: strings are an int16 length and UTF-8 (-1: null),
bytes an int32 length, arrays an int32 count.

  key version 0/1  OffsetCommitKey    group string, topic string, partition int32
  key version 2    GroupMetadataKey   group string
  OffsetCommitValue v3                offset int64, leader_epoch int32, metadata string,
                                      commit_timestamp int64
  GroupMetadataValue v3               protocol_type string, generation int32, protocol
                                      nullable string, leader nullable string,
                                      current_state_timestamp int64, members array of
                                      (member_id string, group_instance_id nullable string,
                                      client_id string, client_host string,
                                      rebalance_timeout int32, session_timeout int32,
                                      subscription bytes, assignment bytes)
A null value is a tombstone: the offset (or the group) was deleted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from broker.kafka.groups.model import CommittedOffset, GroupSnapshot, MemberSnapshot

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
OFFSET_COMMIT_VALUE_VERSION = 3
GROUP_METADATA_VALUE_VERSION = 3
_OFFSET_COMMIT_KEY_VERSIONS = (0, 1)
MAX_MEMBERS_PER_GROUP_RECORD = 100_000  # a sanity bound when decoding

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")


class OffsetsRecordError(Exception):
    """A record of the offsets topic that does not parse."""


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group_id: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group_id: str


# -- encoding ----------------------------------------------------------------------------------


def _string(value: str | None) -> bytes:
    if value is None:
        return _INT16.pack(-1)
    raw = value.encode()
    assert len(raw) < 2**15, f"string of {len(raw)} bytes does not fit an int16 length"
    return _INT16.pack(len(raw)) + raw


def _bytes(value: bytes) -> bytes:
    return _INT32.pack(len(value)) + value


def offset_key(group_id: str, topic: str, partition: int) -> bytes:
    return b"".join(
        (
            _INT16.pack(OFFSET_COMMIT_KEY_VERSION),
            _string(group_id),
            _string(topic),
            _INT32.pack(partition),
        )
    )


def offset_value(committed: CommittedOffset) -> bytes:
    return b"".join(
        (
            _INT16.pack(OFFSET_COMMIT_VALUE_VERSION),
            _INT64.pack(committed.offset),
            _INT32.pack(committed.leader_epoch),
            _string(committed.metadata),
            _INT64.pack(committed.commit_timestamp_ms),
        )
    )


def group_key(group_id: str) -> bytes:
    return _INT16.pack(GROUP_METADATA_KEY_VERSION) + _string(group_id)


def group_value(snapshot: GroupSnapshot) -> bytes:
    parts = [
        _INT16.pack(GROUP_METADATA_VALUE_VERSION),
        _string(snapshot.protocol_type or ""),
        _INT32.pack(snapshot.generation_id),
        _string(snapshot.protocol_name),
        _string(snapshot.leader),
        _INT64.pack(snapshot.state_timestamp_ms),
        _INT32.pack(len(snapshot.members)),
    ]
    for member in snapshot.members:
        parts += (
            _string(member.member_id),
            _string(member.group_instance_id),
            _string(member.client_id),
            _string(member.client_host),
            _INT32.pack(member.rebalance_timeout_ms),
            _INT32.pack(member.session_timeout_ms),
            _bytes(member.subscription),
            _bytes(member.assignment),
        )
    return b"".join(parts)


# -- decoding ----------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def _take(self, size: int) -> bytes:
        end = self.position + size
        if size < 0 or end > len(self.data):
            raise OffsetsRecordError(
                f"record ends at byte {len(self.data)}; a field needs bytes up to {end}"
            )
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def int16(self) -> int:
        return int(_INT16.unpack(self._take(2))[0])

    def int32(self) -> int:
        return int(_INT32.unpack(self._take(4))[0])

    def int64(self) -> int:
        return int(_INT64.unpack(self._take(8))[0])

    def string(self) -> str | None:
        length = self.int16()
        if length == -1:
            return None
        try:
            return self._take(length).decode()
        except UnicodeDecodeError as error:
            raise OffsetsRecordError(f"a string is not UTF-8: {error}") from None

    def required_string(self) -> str:
        value = self.string()
        if value is None:
            raise OffsetsRecordError("a non-nullable string is null")
        return value

    def bytes_(self) -> bytes:
        return self._take(self.int32())

    def done(self) -> None:
        if self.position != len(self.data):
            raise OffsetsRecordError(f"{len(self.data) - self.position} bytes after the record")


def decode_key(data: bytes) -> OffsetKey | GroupKey:
    reader = _Reader(data)
    version = reader.int16()
    if version in _OFFSET_COMMIT_KEY_VERSIONS:
        key: OffsetKey | GroupKey = OffsetKey(
            reader.required_string(), reader.required_string(), reader.int32()
        )
    elif version == GROUP_METADATA_KEY_VERSION:
        key = GroupKey(reader.required_string())
    else:
        raise OffsetsRecordError(f"key version {version} is not one of 0, 1, 2")
    reader.done()
    return key


def decode_offset_value(data: bytes) -> CommittedOffset:
    """OffsetCommitValue v1 to v3 (v0 and v2 lack the leader epoch; v1 has an expiry)."""
    reader = _Reader(data)
    version = reader.int16()
    if version not in (0, 1, 2, 3):
        raise OffsetsRecordError(f"offset value version {version} is not one of 0 to 3")
    offset = reader.int64()
    leader_epoch = reader.int32() if version >= 3 else -1
    metadata = reader.required_string()
    commit_timestamp_ms = reader.int64()
    if version == 1:
        reader.int64()  # expire timestamp, no longer used
    return CommittedOffset(offset, leader_epoch, metadata, commit_timestamp_ms)


def decode_group_value(group_id: str, data: bytes) -> GroupSnapshot:
    """GroupMetadataValue v3 (the version this broker writes)."""
    reader = _Reader(data)
    version = reader.int16()
    if version != GROUP_METADATA_VALUE_VERSION:
        raise OffsetsRecordError(f"group value version {version} is not 3")
    protocol_type = reader.required_string()
    generation_id = reader.int32()
    protocol_name = reader.string()
    leader = reader.string()
    state_timestamp_ms = reader.int64()
    count = reader.int32()
    if not 0 <= count <= MAX_MEMBERS_PER_GROUP_RECORD:
        raise OffsetsRecordError(f"{count} members is outside [0, {MAX_MEMBERS_PER_GROUP_RECORD}]")
    members = tuple(
        MemberSnapshot(
            member_id=reader.required_string(),
            group_instance_id=reader.string(),
            client_id=reader.required_string(),
            client_host=reader.required_string(),
            rebalance_timeout_ms=reader.int32(),
            session_timeout_ms=reader.int32(),
            subscription=reader.bytes_(),
            assignment=reader.bytes_(),
        )
        for _ in range(count)
    )
    reader.done()
    return GroupSnapshot(
        group_id=group_id,
        protocol_type=protocol_type or None,
        generation_id=generation_id,
        protocol_name=protocol_name,
        leader=leader,
        state_timestamp_ms=state_timestamp_ms,
        members=members,
    )
