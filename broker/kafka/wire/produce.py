"""Produce requests (versions 3-11) read into named tuples, and Produce answers written, as
Kafka's ProduceRequest.json and ProduceResponse.json define them.

Request: v3-8 legacy encodings, v9+ flexible (compact strings and arrays, tagged fields).
Response: v5 adds log_start_offset, v8 record_errors and error_message, v9 is flexible,
v10 adds current_leader (partition tag 0) and node_endpoints (top-level tag 0) (KIP-951).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from broker.kafka.wire.primitives import (
    INT32,
    INT64,
    NO_TAGGED_FIELDS,
    Chunk,
    Reader,
    array_count,
    decode_body,
    nullable_string,
    string,
)
from broker.kafka.wire.shared import (
    LeaderIdAndEpoch,
    NodeEndpoint,
    leader_tag,
    node_endpoints_tag,
    tagged_section,
)

FIRST_VERSION = 3
LAST_VERSION = 11
FIRST_FLEXIBLE_VERSION = 9
# index, error code, base offset, log append time
_PARTITION_HEAD = struct.Struct(">ihqq")


# -- request ---------------------------------------------------------------------------------


class ProducePartitionData(NamedTuple):
    partition_index: int  # "index" in the schema (a tuple has an index method)
    records: memoryview | None  # a slice of the request frame


class ProduceTopicData(NamedTuple):
    name: str
    partitions: list[ProducePartitionData]


class ProduceRequestData(NamedTuple):
    transactional_id: str | None
    acks: int
    timeout_ms: int
    topics: list[ProduceTopicData]


def decode_request(version: int, payload: bytes, position: int) -> ProduceRequestData:
    """The body that starts at `position` and runs to the payload's end; BodyDecodeError
    for anything that does not parse, including bytes left over after the body."""
    assert FIRST_VERSION <= version <= LAST_VERSION, version
    compact = version >= FIRST_FLEXIBLE_VERSION
    return decode_body(
        "PRODUCE", version, payload, position, lambda reader: _read_request(reader, compact)
    )


def _read_request(reader: Reader, compact: bool) -> ProduceRequestData:
    # Loops written out rather than Reader.array with callbacks: this runs for every record
    # a client produces.
    transactional_id = reader.nullable_string(compact)
    acks = reader.int16()
    timeout_ms = reader.int32()
    topics = []
    for _ in range(reader.array_count(compact, 2)):  # a name length and a count, at least
        name = reader.string(compact)
        partitions = []
        for _ in range(reader.array_count(compact, 5)):  # an index and a records length
            index = reader.int32()
            partitions.append(ProducePartitionData(index, reader.nullable_bytes(compact)))
            if compact:
                reader.tagged_fields()
        topics.append(ProduceTopicData(name, partitions))
        if compact:
            reader.tagged_fields()
    if compact:
        reader.tagged_fields()
    return ProduceRequestData(transactional_id, acks, timeout_ms, topics)


# -- response --------------------------------------------------------------------------------


class PartitionProduceAnswer(NamedTuple):
    partition_index: int  # "index" in the schema
    error_code: int
    base_offset: int
    log_append_time_ms: int  # -1: the topic uses CreateTime
    log_start_offset: int
    record_errors: tuple[tuple[int, str | None], ...]  # (batch index, message)
    error_message: str | None
    current_leader: LeaderIdAndEpoch | None  # v10+, for the errors that mean "moved"


class TopicProduceAnswer(NamedTuple):
    name: str
    partitions: list[PartitionProduceAnswer]


class ProduceAnswer(NamedTuple):
    topics: list[TopicProduceAnswer]
    throttle_time_ms: int
    node_endpoints: tuple[NodeEndpoint, ...]  # v10+


def encode_response(version: int, correlation_id: int, answer: ProduceAnswer) -> list[Chunk]:
    """The response frame's payload, header included, as chunks to write in order."""
    assert FIRST_VERSION <= version <= LAST_VERSION, version
    compact = version >= FIRST_FLEXIBLE_VERSION
    out = [INT32.pack(correlation_id)]
    if compact:
        out.append(NO_TAGGED_FIELDS)  # response header v1
    out.append(array_count(len(answer.topics), compact))
    for topic in answer.topics:
        out.append(string(topic.name, compact))
        out.append(array_count(len(topic.partitions), compact))
        for partition in topic.partitions:
            _write_partition(out, version, compact, partition)
        if compact:
            out.append(NO_TAGGED_FIELDS)
    out.append(INT32.pack(answer.throttle_time_ms))
    if compact:
        endpoints = node_endpoints_tag(0, answer.node_endpoints) if version >= 10 else b""
        out.append(tagged_section([endpoints]))
    return [b"".join(out)]


def _write_partition(
    out: list[bytes], version: int, compact: bool, partition: PartitionProduceAnswer
) -> None:
    out.append(
        _PARTITION_HEAD.pack(
            partition.partition_index,
            partition.error_code,
            partition.base_offset,
            partition.log_append_time_ms,
        )
    )
    if version >= 5:
        out.append(INT64.pack(partition.log_start_offset))
    if version >= 8:
        out.append(array_count(len(partition.record_errors), compact))
        for batch_index, message in partition.record_errors:
            out.append(INT32.pack(batch_index))
            out.append(nullable_string(message, compact))
            if compact:
                out.append(NO_TAGGED_FIELDS)
        out.append(nullable_string(partition.error_message, compact))
    if compact:
        leader = leader_tag(0, partition.current_leader) if version >= 10 else b""
        out.append(tagged_section([leader]))
