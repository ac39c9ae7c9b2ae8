"""Fetch requests (versions 4-16) read into named tuples, and Fetch answers written, as
Kafka's FetchRequest.json and FetchResponse.json define them.

Request: v5 adds log_start_offset, v7 fetch sessions and forgotten topics (KIP-227), v9
current_leader_epoch, v11 rack_id, v12 is flexible with last_fetched_epoch and cluster_id
(tag 0), v13 topic ids instead of names, v15 replica_state (tag 1) instead of replica_id.
Response: v5 adds log_start_offset, v7 the top-level error code and session id, v11
preferred_read_replica, v12 is flexible with diverging_epoch, current_leader and
snapshot_id (partition tags 0-2), v13 topic ids, v16 node_endpoints (top-level tag 0).

The answer is a list of chunks: the fields between two partitions' records are joined into
one chunk, and each partition's records are a chunk of their own, as the log returned them,
so a fetch of megabytes is never copied into a bigger buffer.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import NamedTuple

from broker.kafka.wire.primitives import (
    INT32,
    INT64,
    NO_TAGGED_FIELDS,
    Chunk,
    Reader,
    array_count,
    bytes_length,
    decode_body,
    null_array,
    string,
    tagged_field,
)
from broker.kafka.wire.shared import (
    LeaderIdAndEpoch,
    NodeEndpoint,
    leader_tag,
    node_endpoints_tag,
    tagged_section,
)

FIRST_VERSION = 4
LAST_VERSION = 16
FIRST_FLEXIBLE_VERSION = 12
FIRST_TOPIC_ID_VERSION = 13
FIRST_REPLICA_STATE_VERSION = 15
# The schemas' defaults for fields a version does not have
DEFAULT_MAX_BYTES = 2**31 - 1
CLUSTER_ID_TAG = 0
REPLICA_STATE_TAG = 1

# partition index, error code, high watermark, last stable offset
_PARTITION_HEAD = struct.Struct(">ihqq")
_ABORTED_TRANSACTION = struct.Struct(">qq")  # producer id, first offset
_EPOCH_END_OFFSET = struct.Struct(">iqb")  # epoch, end offset, no tagged fields
_SNAPSHOT_ID = struct.Struct(">qib")  # end offset, epoch, no tagged fields


# -- request ---------------------------------------------------------------------------------


class FetchPartitionData(NamedTuple):
    partition: int
    current_leader_epoch: int
    fetch_offset: int
    last_fetched_epoch: int
    log_start_offset: int
    partition_max_bytes: int


class FetchTopicData(NamedTuple):
    name: str | None  # up to v12
    topic_id: uuid.UUID | None  # v13+
    partitions: list[FetchPartitionData]


class ForgottenTopicData(NamedTuple):
    name: str | None
    topic_id: uuid.UUID | None
    partitions: list[int]


class FetchRequestData(NamedTuple):
    cluster_id: str | None
    replica_id: int
    replica_epoch: int
    max_wait_ms: int
    min_bytes: int
    max_bytes: int
    isolation_level: int
    session_id: int
    session_epoch: int
    topics: list[FetchTopicData]
    forgotten_topics: list[ForgottenTopicData]
    rack_id: str


def decode_request(version: int, payload: bytes, position: int) -> FetchRequestData:
    """The body that starts at `position` and runs to the payload's end; BodyDecodeError
    for anything that does not parse, including bytes left over after the body."""
    assert FIRST_VERSION <= version <= LAST_VERSION, version
    return decode_body(
        "FETCH", version, payload, position, lambda reader: _read_request(reader, version)
    )


def _read_request(reader: Reader, version: int) -> FetchRequestData:
    compact = version >= FIRST_FLEXIBLE_VERSION
    replica_id = -1 if version >= FIRST_REPLICA_STATE_VERSION else reader.int32()
    max_wait_ms = reader.int32()
    min_bytes = reader.int32()
    max_bytes = reader.int32()
    isolation_level = reader.int8()
    session_id, session_epoch = (reader.int32(), reader.int32()) if version >= 7 else (0, -1)
    topics = reader.array(compact, _topic_reader(version), 2)
    forgotten: list[ForgottenTopicData] = []
    if version >= 7:
        forgotten = reader.array(compact, _forgotten_topic_reader(version), 2)
    rack_id = reader.string(compact) if version >= 11 else ""
    tags = _RequestTags(version, replica_id)
    if compact:
        reader.tagged_fields(tags.read)
    return FetchRequestData(
        tags.cluster_id,
        tags.replica_id,
        tags.replica_epoch,
        max_wait_ms,
        min_bytes,
        max_bytes,
        isolation_level,
        session_id,
        session_epoch,
        topics,
        forgotten,
        rack_id,
    )


class _RequestTags:
    """The request's tagged fields: cluster_id (tag 0, v12+) and replica_state (tag 1,
    v15+: a follower's id and broker epoch, KIP-903). Others are skipped, as Kafka does."""

    __slots__ = ("version", "cluster_id", "replica_id", "replica_epoch")

    def __init__(self, version: int, replica_id: int) -> None:
        self.version = version
        self.cluster_id: str | None = None
        self.replica_id = replica_id
        self.replica_epoch = -1

    def read(self, reader: Reader, tag: int, size_bytes: int) -> None:
        del size_bytes  # Reader.tagged_fields checks the value used exactly its bytes
        if tag == CLUSTER_ID_TAG:
            self.cluster_id = reader.nullable_string(compact=True)
        elif tag == REPLICA_STATE_TAG and self.version >= FIRST_REPLICA_STATE_VERSION:
            self.replica_id = reader.int32()
            self.replica_epoch = reader.int64()
            reader.tagged_fields()


def _topic_reader(version: int) -> Callable[[Reader], FetchTopicData]:
    compact = version >= FIRST_FLEXIBLE_VERSION
    by_id = version >= FIRST_TOPIC_ID_VERSION

    def read_partition(reader: Reader) -> FetchPartitionData:
        partition = reader.int32()
        current_leader_epoch = reader.int32() if version >= 9 else -1
        fetch_offset = reader.int64()
        last_fetched_epoch = reader.int32() if compact else -1
        log_start_offset = reader.int64() if version >= 5 else -1
        partition_max_bytes = reader.int32()
        if compact:
            reader.tagged_fields()
        return FetchPartitionData(
            partition,
            current_leader_epoch,
            fetch_offset,
            last_fetched_epoch,
            log_start_offset,
            partition_max_bytes,
        )

    def read_topic(reader: Reader) -> FetchTopicData:
        name, topic_id = (None, reader.uuid()) if by_id else (reader.string(compact), None)
        # partition, fetch offset and max bytes at least
        partitions = reader.array(compact, read_partition, 16)
        if compact:
            reader.tagged_fields()
        return FetchTopicData(name, topic_id, partitions)

    return read_topic


def _forgotten_topic_reader(version: int) -> Callable[[Reader], ForgottenTopicData]:
    compact = version >= FIRST_FLEXIBLE_VERSION
    by_id = version >= FIRST_TOPIC_ID_VERSION

    def read_forgotten(reader: Reader) -> ForgottenTopicData:
        name, topic_id = (None, reader.uuid()) if by_id else (reader.string(compact), None)
        partitions = reader.array(compact, Reader.int32, 4)
        if compact:
            reader.tagged_fields()
        return ForgottenTopicData(name, topic_id, partitions)

    return read_forgotten


# -- response --------------------------------------------------------------------------------


class EpochEndOffset(NamedTuple):
    epoch: int
    end_offset: int


class SnapshotId(NamedTuple):
    end_offset: int
    epoch: int


class PartitionFetchAnswer(NamedTuple):
    partition_index: int
    error_code: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    aborted_transactions: tuple[tuple[int, int], ...] | None  # (producer id, first offset)
    preferred_read_replica: int
    records: Chunk | None
    current_leader: LeaderIdAndEpoch | None = None  # v12+, for the errors that mean "moved"
    diverging_epoch: EpochEndOffset | None = None  # v12+, followers only
    snapshot_id: SnapshotId | None = None  # v12+, followers only


class TopicFetchAnswer(NamedTuple):
    name: str | None  # up to v12
    topic_id: uuid.UUID | None  # v13+
    partitions: list[PartitionFetchAnswer]


class FetchAnswer(NamedTuple):
    throttle_time_ms: int
    error_code: int  # v7+
    session_id: int  # v7+
    topics: list[TopicFetchAnswer]
    node_endpoints: tuple[NodeEndpoint, ...]  # v16+


_ZERO_UUID_BYTES = bytes(16)


def encode_response(version: int, correlation_id: int, answer: FetchAnswer) -> list[Chunk]:
    """The response frame's payload, header included: small fields joined into chunks, and
    each partition's records as a chunk of its own."""
    assert FIRST_VERSION <= version <= LAST_VERSION, version
    compact = version >= FIRST_FLEXIBLE_VERSION
    chunks: list[Chunk] = []
    out = [INT32.pack(correlation_id)]
    if compact:
        out.append(NO_TAGGED_FIELDS)  # response header v1
    out.append(INT32.pack(answer.throttle_time_ms))
    if version >= 7:
        out.append(_ERROR_AND_SESSION.pack(answer.error_code, answer.session_id))
    out.append(array_count(len(answer.topics), compact))
    for topic in answer.topics:
        if version >= FIRST_TOPIC_ID_VERSION:
            out.append(_ZERO_UUID_BYTES if topic.topic_id is None else topic.topic_id.bytes)
        else:
            assert topic.name is not None, "a topic is named up to Fetch v12"
            out.append(string(topic.name, compact))
        out.append(array_count(len(topic.partitions), compact))
        for partition in topic.partitions:
            _write_partition_fields(out, version, compact, partition)
            records = partition.records
            if records:  # the fields so far in one chunk, the records apart
                chunks.append(b"".join(out))
                chunks.append(records)
                out = []
            if compact:
                out.append(_partition_tags(partition))
        if compact:
            out.append(NO_TAGGED_FIELDS)
    if compact:
        endpoints = node_endpoints_tag(0, answer.node_endpoints) if version >= 16 else b""
        out.append(tagged_section([endpoints]))
    chunks.append(b"".join(out))
    return chunks


_ERROR_AND_SESSION = struct.Struct(">hi")


def _write_partition_fields(
    out: list[bytes], version: int, compact: bool, partition: PartitionFetchAnswer
) -> None:
    """Everything of a partition up to and including its records' length."""
    out.append(
        _PARTITION_HEAD.pack(
            partition.partition_index,
            partition.error_code,
            partition.high_watermark,
            partition.last_stable_offset,
        )
    )
    if version >= 5:
        out.append(INT64.pack(partition.log_start_offset))
    aborted = partition.aborted_transactions
    if aborted is None:
        out.append(null_array(compact))
    else:
        out.append(array_count(len(aborted), compact))
        for producer_id, first_offset in aborted:
            out.append(_ABORTED_TRANSACTION.pack(producer_id, first_offset))
            if compact:
                out.append(NO_TAGGED_FIELDS)
    if version >= 11:
        out.append(INT32.pack(partition.preferred_read_replica))
    out.append(bytes_length(partition.records, compact))


def _partition_tags(partition: PartitionFetchAnswer) -> bytes:
    """diverging_epoch (tag 0), current_leader (1), snapshot_id (2); each left out when
    absent or equal to the schema's default, as Kafka (and kio) write them."""
    diverging = b""
    if partition.diverging_epoch is not None and partition.diverging_epoch != (-1, -1):
        epoch, end_offset = partition.diverging_epoch
        diverging = tagged_field(0, _EPOCH_END_OFFSET.pack(epoch, end_offset, 0))
    snapshot = b""
    if partition.snapshot_id is not None and partition.snapshot_id != (-1, -1):
        end_offset, epoch = partition.snapshot_id
        snapshot = tagged_field(2, _SNAPSHOT_ID.pack(end_offset, epoch, 0))
    return tagged_section([diverging, leader_tag(1, partition.current_leader), snapshot])
