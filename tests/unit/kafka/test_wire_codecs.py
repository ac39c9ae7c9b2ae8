"""The hand-written Produce and Fetch codecs (broker.kafka.wire) against kio, which is
generated from the same Kafka JSON schemas: for every version served, requests written by
kio read back to the same values, answers are written byte for byte as kio writes them, and
malformed bodies (truncated, oversized counts, bytes after the end) are BodyDecodeErrors."""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.serial import entity_reader, entity_writer

from broker.kafka.apis import SUPPORTED_VERSIONS, ApiKey
from broker.kafka.codec import BodyDecodeError, build, milliseconds, schema_module
from broker.kafka.errors import KafkaError
from broker.kafka.wire import fetch, produce
from broker.kafka.wire.shared import LeaderIdAndEpoch, NodeEndpoint

PRODUCE_VERSIONS = range(
    SUPPORTED_VERSIONS[ApiKey.PRODUCE][0], SUPPORTED_VERSIONS[ApiKey.PRODUCE][1] + 1
)
FETCH_VERSIONS = range(SUPPORTED_VERSIONS[ApiKey.FETCH][0], SUPPORTED_VERSIONS[ApiKey.FETCH][1] + 1)
EXAMPLES = settings(max_examples=30, deadline=None)

int8s = st.integers(-(2**7), 2**7 - 1)
int16s = st.integers(-(2**15), 2**15 - 1)
int32s = st.integers(-(2**31), 2**31 - 1)
int64s = st.integers(-(2**63), 2**63 - 1)
names = st.text(max_size=12)
records = st.none() | st.binary(max_size=64)
error_codes = st.sampled_from(list(KafkaError))
leaders = st.none() | st.builds(LeaderIdAndEpoch, int32s, int32s)
endpoints = st.lists(st.builds(NodeEndpoint, int32s, names, int32s, st.none() | names), max_size=3)


def kio_entity(api_key: ApiKey, version: int, kind: str, class_name: str, **values: Any) -> Any:
    return build(schema_module(api_key, version, kind), class_name, **values)


def kio_bytes(entity: Any) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(entity))(buffer, entity)
    return buffer.getvalue()


def kio_read(entity_type: type[Any], payload: bytes) -> Any:
    value, size = entity_reader(entity_type)(payload, 0)
    assert size == len(payload)
    return value


def response_header(correlation_id: int, flexible: bool) -> bytes:
    return struct.pack(">i", correlation_id) + (b"\x00" if flexible else b"")


# -- Produce ---------------------------------------------------------------------------------

produce_topics = st.lists(
    st.tuples(names, st.lists(st.tuples(int32s, records), max_size=3)), max_size=3
)


def kio_produce_request(
    version: int, txn: str | None, acks: int, timeout_ms: int, topics: Any
) -> Any:
    def entity(class_name: str, **values: Any) -> Any:
        return kio_entity(ApiKey.PRODUCE, version, "request", class_name, **values)

    return entity(
        "ProduceRequest",
        transactional_id=txn,
        acks=acks,
        timeout=timeout_ms,
        topic_data=tuple(
            entity(
                "TopicProduceData",
                name=name,
                partition_data=tuple(
                    entity("PartitionProduceData", index=index, records=data)
                    for index, data in partitions
                ),
            )
            for name, partitions in topics
        ),
    )


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
@EXAMPLES
@given(txn=st.none() | names, acks=int16s, timeout_ms=int32s, topics=produce_topics)
def test_produce_requests_read_as_kio_reads_them(
    version: int, txn: str | None, acks: int, timeout_ms: int, topics: Any
) -> None:
    kio_request = kio_produce_request(version, txn, acks, timeout_ms, topics)
    payload = b"HEADER" + kio_bytes(kio_request)
    decoded = produce.decode_request(version, payload, 6)
    assert decoded == produce.ProduceRequestData(
        kio_request.transactional_id,
        int(kio_request.acks),
        milliseconds(kio_request.timeout),
        [
            produce.ProduceTopicData(
                t.name, [produce.ProducePartitionData(p.index, p.records) for p in t.partition_data]
            )
            for t in kio_request.topic_data
        ],
    )


def test_produce_records_are_a_slice_of_the_frame_not_a_copy() -> None:
    payload = kio_bytes(kio_produce_request(9, None, -1, 100, [("t", [(0, b"batch")])]))
    decoded = produce.decode_request(9, payload, 0)
    records = decoded.topics[0].partitions[0].records
    assert isinstance(records, memoryview)
    assert records.obj is payload
    assert records == b"batch"


produce_partition_answers = st.builds(
    produce.PartitionProduceAnswer,
    int32s,
    error_codes,
    int64s,
    st.just(-1) | st.integers(0, 2**40),
    int64s,
    st.lists(st.tuples(int32s, st.none() | names), max_size=2).map(tuple),
    st.none() | names,
    leaders,
)
produce_answers = st.builds(
    produce.ProduceAnswer,
    st.lists(
        st.builds(
            produce.TopicProduceAnswer, names, st.lists(produce_partition_answers, max_size=3)
        ),
        max_size=3,
    ),
    st.integers(0, 2**31 - 1),
    endpoints.map(tuple),
)


def kio_produce_response(version: int, answer: produce.ProduceAnswer) -> Any:
    def entity(class_name: str, **values: Any) -> Any:
        return kio_entity(ApiKey.PRODUCE, version, "response", class_name, **values)

    def partition(p: produce.PartitionProduceAnswer) -> Any:
        extra = {}
        if p.current_leader is not None and version >= 10:
            extra["current_leader"] = entity("LeaderIdAndEpoch", **p.current_leader._asdict())
        return entity(
            "PartitionProduceResponse",
            index=p.partition_index,
            error_code=p.error_code,
            base_offset=p.base_offset,
            log_append_time=p.log_append_time_ms,
            log_start_offset=p.log_start_offset,
            record_errors=tuple(
                entity("BatchIndexAndErrorMessage", batch_index=i, batch_index_error_message=m)
                for i, m in p.record_errors
                if version >= 8
            ),
            error_message=p.error_message,
            **extra,
        )

    return entity(
        "ProduceResponse",
        responses=tuple(
            entity(
                "TopicProduceResponse",
                name=t.name,
                partition_responses=tuple(partition(p) for p in t.partitions),
            )
            for t in answer.topics
        ),
        throttle_time=answer.throttle_time_ms,
        node_endpoints=tuple(
            entity("NodeEndpoint", **e._asdict()) for e in answer.node_endpoints if version >= 10
        ),
    )


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
@EXAMPLES
@given(answer=produce_answers, correlation_id=int32s)
def test_produce_answers_are_written_byte_for_byte_as_kio_writes_them(
    version: int, answer: produce.ProduceAnswer, correlation_id: int
) -> None:
    expected = response_header(correlation_id, version >= 9) + kio_bytes(
        kio_produce_response(version, answer)
    )
    assert b"".join(produce.encode_response(version, correlation_id, answer)) == expected


# -- Fetch -----------------------------------------------------------------------------------

fetch_partitions = st.lists(st.tuples(int32s, int32s, int64s, int32s, int64s, int32s), max_size=3)
fetch_topics = st.lists(st.tuples(names, st.uuids(), fetch_partitions), max_size=3)
forgotten_topics = st.lists(st.tuples(names, st.uuids(), st.lists(int32s, max_size=3)), max_size=2)


def kio_fetch_request(version: int, scalars: Any, topics: Any, forgotten: Any) -> Any:
    def entity(class_name: str, **values: Any) -> Any:
        return kio_entity(ApiKey.FETCH, version, "request", class_name, **values)

    cluster_id, replica_id, replica_epoch, *limits = scalars
    max_wait_ms, min_bytes, max_bytes, isolation, session_id, session_epoch, rack = limits
    extra = {}
    if version >= fetch.FIRST_REPLICA_STATE_VERSION:
        extra["replica_state"] = entity(
            "ReplicaState", replica_id=replica_id, replica_epoch=replica_epoch
        )
    return entity(
        "FetchRequest",
        cluster_id=cluster_id,
        replica_id=replica_id,
        max_wait=max_wait_ms,
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        isolation_level=isolation,
        session_id=session_id,
        session_epoch=session_epoch,
        topics=tuple(
            entity(
                "FetchTopic",
                topic=name,
                topic_id=topic_id,
                partitions=tuple(
                    entity(
                        "FetchPartition",
                        partition=p[0],
                        current_leader_epoch=p[1],
                        fetch_offset=p[2],
                        last_fetched_epoch=p[3],
                        log_start_offset=p[4],
                        partition_max_bytes=p[5],
                    )
                    for p in partitions
                ),
            )
            for name, topic_id, partitions in topics
        ),
        forgotten_topics_data=tuple(
            entity("ForgottenTopic", topic=name, topic_id=topic_id, partitions=tuple(ps))
            for name, topic_id, ps in forgotten
        )
        if version >= 7
        else (),
        rack_id=rack,
        **extra,
    )


def as_fetch_request_data(version: int, request: Any) -> fetch.FetchRequestData:
    """kio's request in the hand-written reader's shape (the schemas' defaults where a
    version lacks a field)."""
    by_id = version >= fetch.FIRST_TOPIC_ID_VERSION
    state = getattr(request, "replica_state", None)
    return fetch.FetchRequestData(
        getattr(request, "cluster_id", None),
        int(request.replica_id if state is None else state.replica_id),
        -1 if state is None else int(state.replica_epoch),
        milliseconds(request.max_wait),
        request.min_bytes,
        request.max_bytes,
        request.isolation_level,
        getattr(request, "session_id", 0),
        getattr(request, "session_epoch", -1),
        [
            fetch.FetchTopicData(
                None if by_id else t.topic,
                t.topic_id if by_id else None,
                [
                    fetch.FetchPartitionData(
                        p.partition,
                        getattr(p, "current_leader_epoch", -1),
                        p.fetch_offset,
                        getattr(p, "last_fetched_epoch", -1),
                        getattr(p, "log_start_offset", -1),
                        p.partition_max_bytes,
                    )
                    for p in t.partitions
                ],
            )
            for t in request.topics
        ],
        [
            fetch.ForgottenTopicData(
                None if by_id else f.topic, f.topic_id if by_id else None, list(f.partitions)
            )
            for f in getattr(request, "forgotten_topics_data", ())
        ],
        getattr(request, "rack_id", ""),
    )


fetch_scalars = st.tuples(
    st.none() | names,
    int32s,
    int64s,
    st.integers(0, 2**31 - 1),
    int32s,
    int32s,
    int8s,
    int32s,
    int32s,
    names,
)


@pytest.mark.parametrize("version", FETCH_VERSIONS)
@EXAMPLES
@given(scalars=fetch_scalars, topics=fetch_topics, forgotten=forgotten_topics)
def test_fetch_requests_read_as_kio_reads_them(
    version: int, scalars: Any, topics: Any, forgotten: Any
) -> None:
    kio_request = kio_fetch_request(version, scalars, topics, forgotten)
    payload = kio_bytes(kio_request)
    assert fetch.decode_request(version, payload, 0) == as_fetch_request_data(version, kio_request)


aborted = st.none() | st.lists(st.tuples(int64s, int64s), max_size=2).map(tuple)
fetch_partition_answers = st.builds(
    fetch.PartitionFetchAnswer,
    int32s,
    error_codes,
    int64s,
    int64s,
    int64s,
    aborted,
    int32s,
    records,
    leaders,
    st.none() | st.builds(fetch.EpochEndOffset, int32s, int64s),
    st.none() | st.builds(fetch.SnapshotId, int64s, int32s),
)
fetch_answers = st.builds(
    fetch.FetchAnswer,
    st.integers(0, 2**31 - 1),
    error_codes,
    int32s,
    st.lists(
        st.builds(
            fetch.TopicFetchAnswer, names, st.uuids(), st.lists(fetch_partition_answers, max_size=3)
        ),
        max_size=3,
    ),
    endpoints.map(tuple),
)


def kio_fetch_response(version: int, answer: fetch.FetchAnswer) -> Any:
    def entity(class_name: str, **values: Any) -> Any:
        return kio_entity(ApiKey.FETCH, version, "response", class_name, **values)

    def partition(p: fetch.PartitionFetchAnswer) -> Any:
        tags = {}
        if version >= fetch.FIRST_FLEXIBLE_VERSION:
            for name, value, class_name in (
                ("current_leader", p.current_leader, "LeaderIdAndEpoch"),
                ("diverging_epoch", p.diverging_epoch, "EpochEndOffset"),
                ("snapshot_id", p.snapshot_id, "SnapshotId"),
            ):
                if value is not None:
                    tags[name] = entity(class_name, **value._asdict())
        return entity(
            "PartitionData",
            partition_index=p.partition_index,
            error_code=p.error_code,
            high_watermark=p.high_watermark,
            last_stable_offset=p.last_stable_offset,
            log_start_offset=p.log_start_offset,
            aborted_transactions=None
            if p.aborted_transactions is None
            else tuple(
                entity("AbortedTransaction", producer_id=i, first_offset=o)
                for i, o in p.aborted_transactions
            ),
            preferred_read_replica=p.preferred_read_replica,
            records=p.records,
            **tags,
        )

    return entity(
        "FetchResponse",
        throttle_time=answer.throttle_time_ms,
        error_code=answer.error_code,
        session_id=answer.session_id,
        responses=tuple(
            entity(
                "FetchableTopicResponse",
                topic=t.name,
                topic_id=t.topic_id,
                partitions=tuple(partition(p) for p in t.partitions),
            )
            for t in answer.topics
        ),
        node_endpoints=tuple(
            entity("NodeEndpoint", **e._asdict()) for e in answer.node_endpoints if version >= 16
        ),
    )


@pytest.mark.parametrize("version", FETCH_VERSIONS)
@EXAMPLES
@given(answer=fetch_answers, correlation_id=int32s)
def test_fetch_answers_are_written_byte_for_byte_as_kio_writes_them(
    version: int, answer: fetch.FetchAnswer, correlation_id: int
) -> None:
    expected = response_header(correlation_id, version >= 12) + kio_bytes(
        kio_fetch_response(version, answer)
    )
    assert b"".join(fetch.encode_response(version, correlation_id, answer)) == expected


def test_fetch_records_are_chunks_of_their_own_not_copied() -> None:
    stored = memoryview(b"R" * 100_000)
    partition = fetch.PartitionFetchAnswer(0, 0, 10, 10, 0, None, -1, stored)
    answer = fetch.FetchAnswer(0, 0, 0, [fetch.TopicFetchAnswer("t", None, [partition])], ())
    chunks = fetch.encode_response(11, 1, answer)
    assert [chunk is stored for chunk in chunks] == [False, True, False]


# -- malformed requests ----------------------------------------------------------------------

DECODERS = {ApiKey.PRODUCE: produce.decode_request, ApiKey.FETCH: fetch.decode_request}


def sample_request(api_key: ApiKey, version: int) -> bytes:
    if api_key is ApiKey.PRODUCE:
        topics = [("orders", [(0, b"batch-0"), (1, None)]), ("audit", [(2, b"")])]
        return kio_bytes(kio_produce_request(version, "txn", -1, 5000, topics))
    scalars = ("cluster", -1, 7, 500, 1, 1 << 20, 0, 0, -1, "rack")
    topics = [("orders", uuid_of(1), [(0, 3, 100, 2, 0, 1 << 20), (1, 3, 5, 2, 0, 1 << 20)])]
    return kio_bytes(kio_fetch_request(version, scalars, topics, [("old", uuid_of(2), [4])]))


def uuid_of(n: int) -> Any:
    import uuid

    return uuid.UUID(int=n)


SERVED = [(ApiKey.PRODUCE, v) for v in PRODUCE_VERSIONS] + [
    (ApiKey.FETCH, v) for v in FETCH_VERSIONS
]


@pytest.mark.parametrize(("api_key", "version"), SERVED)
def test_a_body_cut_short_anywhere_is_a_body_decode_error(api_key: ApiKey, version: int) -> None:
    payload = sample_request(api_key, version)
    DECODERS[api_key](version, payload, 0)  # whole, it reads
    for end in range(len(payload)):
        with pytest.raises(BodyDecodeError, match=f"{api_key.name} v{version} body"):
            DECODERS[api_key](version, payload[:end], 0)


@pytest.mark.parametrize(("api_key", "version"), SERVED)
def test_bytes_after_the_body_are_a_body_decode_error(api_key: ApiKey, version: int) -> None:
    payload = sample_request(api_key, version) + b"\x00"
    with pytest.raises(BodyDecodeError, match="1 bytes after its end"):
        DECODERS[api_key](version, payload, 0)


def legacy_produce(topic_count: bytes, rest: bytes = b"") -> bytes:
    return struct.pack(">hhi", -1, 1, 1000) + topic_count + rest


def flexible_produce(topic_count: bytes, rest: bytes = b"") -> bytes:
    return b"\x00" + struct.pack(">hi", 1, 1000) + topic_count + rest


@pytest.mark.parametrize(
    ("version", "payload", "fact"),
    [
        (3, legacy_produce(struct.pack(">i", 2**31 - 1)), "cannot fit"),
        (3, legacy_produce(struct.pack(">i", -1)), "may not be null is null"),
        (3, legacy_produce(struct.pack(">ih", 1, -1)), "may not be null is null"),
        (3, legacy_produce(struct.pack(">ih", 1, -2)), "negative"),
        (3, legacy_produce(struct.pack(">ih", 1, 1) + b"\xff"), "not UTF-8"),
        (
            3,
            legacy_produce(struct.pack(">ih", 1, 1) + b"t" + struct.pack(">iii", 1, 0, -2)),
            "negative",
        ),
        (
            3,
            legacy_produce(struct.pack(">ih", 1, 1) + b"t" + struct.pack(">iii", 1, 0, 9999)),
            "needs 9999 bytes",
        ),
        (9, flexible_produce(b"\xff\xff\xff\xff\x07"), "cannot fit"),
        (9, flexible_produce(b"\x00"), "may not be null is null"),
        (9, flexible_produce(b"\x80\x80\x80\x80\x80\x01"), "longer than 5 bytes"),
        (9, flexible_produce(b"\xff\xff\xff\xff\x7f"), "does not fit in 32 bits"),
        (9, flexible_produce(b"\x01", b"\xff\xff\xff\x0f"), "cannot fit"),
        (9, flexible_produce(b"\x01", b"\x01\x05\x7f"), "runs past the end"),
    ],
)
def test_oversized_counts_and_lengths_are_body_decode_errors(
    version: int, payload: bytes, fact: str
) -> None:
    """Nothing is allocated from a count or length the bytes left cannot hold."""
    with pytest.raises(BodyDecodeError, match=fact):
        produce.decode_request(version, payload, 0)


def test_unknown_tagged_fields_are_skipped() -> None:
    """KIP-482: a reader skips the tags it does not know (a newer client may send them)."""
    payload = flexible_produce(b"\x01", b"\x02\x05\x02xy\x07\x00")
    assert produce.decode_request(9, payload, 0).topics == []


def test_a_known_tagged_field_must_use_exactly_its_bytes() -> None:
    # cluster_id (tag 0) of 3 bytes holding a 1-byte null string
    body = struct.pack(">iiib", 500, 1, 1024, 0) + struct.pack(">ii", 0, -1)
    payload = body + b"\x01" + b"\x01" + b"\x01" + b"\x01" + b"\x00\x03\x00\x00\x00"
    with pytest.raises(BodyDecodeError, match="holds 3 bytes but its value has 1"):
        fetch.decode_request(15, payload, 0)
