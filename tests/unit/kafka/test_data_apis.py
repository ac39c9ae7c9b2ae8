"""Produce, Fetch and ListOffsets mapped onto the ReplicaManager: record bytes untouched,
Kafka's per-partition errors, acks=0 without an answer, sessionless fetches."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from typing import Any

import pytest
from kio.schema.errors import ErrorCode as KafkaError

from broker.kafka.apis import ApiKey
from broker.kafka.codec import topic_uuid
from broker.kafka.context import Outcome
from broker.kafka.data import MAX_FETCH_WAIT_MS
from broker.kafka.dispatch import parse, respond
from broker.log.batch import Record, build_batch
from broker.partitions.manager import OffsetLookup, ProduceResult
from kraft.protocol.errors import ErrorCode
from tests.unit.kafka.helpers import Fixture, encode_request, nested, request, topic_id_for

BATCH = build_batch([Record(b"k", b"v", (), 1_000)])


def produce_fields(
    version: int, acks: int, partitions: dict[int, bytes | None], topic: str = "orders"
) -> dict[str, Any]:
    data = tuple(
        nested(ApiKey.PRODUCE, version, "PartitionProduceData", index=index, records=records)
        for index, records in partitions.items()
    )
    return {
        "transactional_id": None,
        "acks": acks,
        "timeout": datetime.timedelta(milliseconds=5000),
        "topic_data": (
            nested(ApiKey.PRODUCE, version, "TopicProduceData", name=topic, partition_data=data),
        ),
    }


def partition_answers(body: Any) -> list[Any]:
    return [p for topic in body.responses for p in topic.partition_responses]


async def test_produce_hands_each_partition_its_batch_bytes_untouched() -> None:
    fixture = Fixture()
    body = await fixture.call(ApiKey.PRODUCE, 9, **produce_fields(9, -1, {0: BATCH, 1: BATCH}))
    assert fixture.data.produced == [
        ("orders", 0, BATCH, -1, 5000),
        ("orders", 1, BATCH, -1, 5000),
    ]
    answers = partition_answers(body)
    assert [(a.index, a.error_code, a.base_offset) for a in answers] == [
        (0, KafkaError.none, 0),
        (1, KafkaError.none, 1),
    ]


async def test_produce_refuses_acks_other_than_minus_one_zero_one() -> None:
    fixture = Fixture()
    body = await fixture.call(ApiKey.PRODUCE, 3, **produce_fields(3, 2, {0: BATCH}))
    assert partition_answers(body)[0].error_code is KafkaError.invalid_required_acks
    assert fixture.data.produced == []


async def test_an_acks_zero_produce_gets_no_answer_and_an_error_closes_the_connection() -> None:
    fixture = Fixture()
    outcome = await fixture.call(ApiKey.PRODUCE, 9, **produce_fields(9, 0, {0: BATCH}))
    assert outcome is Outcome.NO_RESPONSE
    fixture.data.produce_results[("orders", 0)] = ProduceResult(ErrorCode.NOT_LEADER_OR_FOLLOWER)
    failed = await fixture.call(ApiKey.PRODUCE, 9, **produce_fields(9, 0, {0: BATCH}))
    assert failed is Outcome.CLOSE_CONNECTION  # the producer then refreshes its metadata


async def test_a_partition_without_a_batch_is_invalid_record() -> None:
    fixture = Fixture()
    body = await fixture.call(ApiKey.PRODUCE, 9, **produce_fields(9, 1, {0: None, 1: b""}))
    assert [a.error_code for a in partition_answers(body)] == [KafkaError.invalid_record] * 2
    assert fixture.data.produced == []


async def test_transactional_batches_are_refused_and_idempotent_ones_reach_the_leader() -> None:
    """Idempotent batches go to the partition leader, whose producer state checks them
    (tests/unit/replication/test_producer_state.py); transactions are not served."""
    idempotent = build_batch(
        [Record(None, b"v", (), 0)], producer_id=7, producer_epoch=0, base_sequence=0
    )
    transactional = build_batch(
        [Record(None, b"v", (), 0)], producer_id=7, producer_epoch=0, is_transactional=True
    )
    fixture = Fixture()
    body = await fixture.call(
        ApiKey.PRODUCE, 9, **produce_fields(9, -1, {0: idempotent, 1: transactional})
    )
    codes = [a.error_code for a in partition_answers(body)]
    assert codes == [KafkaError.none, KafkaError.invalid_txn_state]
    assert [entry[2] for entry in fixture.data.produced] == [idempotent]
    fields = produce_fields(9, -1, {0: BATCH})
    fields["transactional_id"] = "tx-1"
    body = await fixture.call(ApiKey.PRODUCE, 9, **fields)
    assert partition_answers(body)[0].error_code is KafkaError.transactional_id_not_found
    assert len(fixture.data.produced) == 1


async def test_not_leader_names_the_current_leader_and_its_endpoint_from_v10() -> None:
    """KIP-951: the producer moves to the new leader without a metadata round trip."""
    fixture = Fixture()
    fixture.data.produce_results[("orders", 0)] = ProduceResult(
        ErrorCode.NOT_LEADER_OR_FOLLOWER, "elsewhere", leader_id=2, leader_epoch=4
    )
    body = await fixture.call(ApiKey.PRODUCE, 10, **produce_fields(10, -1, {0: BATCH}))
    [answer] = partition_answers(body)
    assert answer.error_code is KafkaError.not_leader_or_follower
    assert answer.error_message == "elsewhere"
    assert (answer.current_leader.leader_id, answer.current_leader.leader_epoch) == (2, 4)
    assert [(e.node_id, e.port) for e in body.node_endpoints] == [(2, 9192)]


async def test_pipelined_produces_of_one_connection_append_in_the_order_sent() -> None:
    fixture = Fixture()
    payloads = [
        encode_request(ApiKey.PRODUCE, 9, request(ApiKey.PRODUCE, 9, **fields), correlation_id=n)
        for n, fields in enumerate(
            produce_fields(9, -1, {0: build_batch([Record(None, bytes([n]), (), 0)])})
            for n in range(20)
        )
    ]
    # as the server does: one task per request, created in arrival order
    tasks = [asyncio.create_task(respond(fixture.services, parse(p))) for p in payloads]
    await asyncio.gather(*tasks)
    assert [records for _, _, records, _, _ in fixture.data.produced] == [
        build_batch([Record(None, bytes([n]), (), 0)]) for n in range(20)
    ]


def fetch_fields(version: int, topic: Any, partitions: list[dict[str, Any]]) -> dict[str, Any]:
    fetch_partitions = tuple(
        nested(
            ApiKey.FETCH,
            version,
            "FetchPartition",
            **{"current_leader_epoch": -1, "log_start_offset": -1, **entry}
            if version >= 9
            else entry,
        )
        for entry in partitions
    )
    topic_key = "topic_id" if version >= 13 else "topic"
    fields: dict[str, Any] = {
        "max_wait": datetime.timedelta(milliseconds=500),
        "min_bytes": 1,
        "max_bytes": 1_000_000,
        "isolation_level": 0,
        "topics": (
            nested(
                ApiKey.FETCH,
                version,
                "FetchTopic",
                **{topic_key: topic, "partitions": fetch_partitions},
            ),
        ),
    }
    if version >= 15:
        fields["replica_state"] = nested(
            ApiKey.FETCH, version, "ReplicaState", replica_id=-1, replica_epoch=-1
        )
    else:
        fields["replica_id"] = -1
    if version >= 7:
        fields.update(session_id=0, session_epoch=-1, forgotten_topics_data=())
    if version >= 11:
        fields["rack_id"] = ""
    return fields


def one_partition(offset: int = 0, index: int = 0) -> dict[str, Any]:
    return {"partition": index, "fetch_offset": offset, "partition_max_bytes": 65536}


async def test_fetch_returns_stored_bytes_high_watermark_and_log_start() -> None:
    fixture = Fixture()
    fixture.data.fetch_records[("orders", 0)] = BATCH
    body = await fixture.call(ApiKey.FETCH, 11, **fetch_fields(11, "orders", [one_partition()]))
    [topic] = body.responses
    [answer] = topic.partitions
    assert (answer.error_code, answer.high_watermark, answer.log_start_offset) == (
        KafkaError.none,
        10,
        0,
    )
    assert answer.last_stable_offset == 10
    assert answer.records == BATCH
    replica_id, requests, max_wait_ms, min_bytes, _ = fixture.data.fetches[0]
    assert (replica_id, max_wait_ms, min_bytes) == (-1, 500, 1)
    assert requests[0].topic == "orders"


async def test_fetch_by_topic_id_from_v13_and_unknown_ids_answer_unknown_topic_id() -> None:
    fixture = Fixture()
    known = topic_uuid(topic_id_for("orders"))
    fields = fetch_fields(16, known, [one_partition()])
    unknown = fetch_fields(16, uuid.uuid4(), [one_partition()])["topics"]
    fields["topics"] = fields["topics"] + unknown
    body = await fixture.call(ApiKey.FETCH, 16, **fields)
    found, missing = body.responses
    assert found.topic_id == known
    assert found.partitions[0].error_code is KafkaError.none
    assert missing.partitions[0].error_code is KafkaError.unknown_topic_id


@pytest.mark.parametrize("version", [12, 15, 16])
async def test_a_fetch_names_the_moved_leader_only_from_v16_with_its_endpoint(
    version: int,
) -> None:
    """As Kafka: Fetch v12-15 have a current_leader field but no node_endpoints, and a
    client told of a leader it has no address for cannot follow the hint (kafka-python 3
    failed its next fetch), so the hint comes only with the endpoint, from v16."""
    fixture = Fixture()
    fixture.data.fetch_errors[("orders", 0)] = (ErrorCode.NOT_LEADER_OR_FOLLOWER, 2, 4)
    fixture.data.fetch_errors[("orders", 1)] = (ErrorCode.UNKNOWN_LEADER_EPOCH, 2, 4)
    topic: Any = topic_uuid(topic_id_for("orders")) if version >= 13 else "orders"
    fields = fetch_fields(version, topic, [one_partition(), one_partition(index=1)])
    body = await fixture.call(ApiKey.FETCH, version, **fields)
    moved, unknown_epoch = body.responses[0].partitions
    assert moved.error_code is KafkaError.not_leader_or_follower
    assert unknown_epoch.error_code is KafkaError.unknown_leader_epoch
    assert unknown_epoch.current_leader.leader_id == -1, "not an error Kafka hints for"
    if version >= 16:
        assert (moved.current_leader.leader_id, moved.current_leader.leader_epoch) == (2, 4)
        assert [(e.node_id, e.port) for e in body.node_endpoints] == [(2, 9192)]
    else:
        assert moved.current_leader.leader_id == -1


async def test_fetch_sessions_are_refused_and_long_polls_are_capped() -> None:
    fixture = Fixture()
    fields = fetch_fields(12, "orders", [one_partition()])
    body = await fixture.call(ApiKey.FETCH, 12, **{**fields, "session_id": 77})
    assert body.error_code is KafkaError.fetch_session_id_not_found
    body = await fixture.call(ApiKey.FETCH, 12, **{**fields, "session_epoch": 3})
    assert body.error_code is KafkaError.invalid_fetch_session_epoch
    assert fixture.data.fetches == []
    long_wait = {**fields, "max_wait": datetime.timedelta(minutes=10)}
    await fixture.call(ApiKey.FETCH, 12, **long_wait)
    assert fixture.data.fetches[0][2] == MAX_FETCH_WAIT_MS


async def test_a_follower_fetch_on_the_kafka_listener_is_invalid_request() -> None:
    fixture = Fixture()
    fields = {**fetch_fields(11, "orders", [one_partition()]), "replica_id": 2}
    body = await fixture.call(ApiKey.FETCH, 11, **fields)
    assert body.error_code is KafkaError.invalid_request
    assert body.responses[0].partitions[0].error_code is KafkaError.invalid_request
    assert fixture.data.fetches == []


def list_offsets_fields(version: int, timestamp: int, leader_epoch: int = -1) -> dict[str, Any]:
    entry: dict[str, Any] = {"partition_index": 0, "timestamp": timestamp}
    if version >= 4:
        entry["current_leader_epoch"] = leader_epoch
    fields: dict[str, Any] = {
        "replica_id": -1,
        "topics": (
            nested(
                ApiKey.LIST_OFFSETS,
                version,
                "ListOffsetsTopic",
                name="orders",
                partitions=(nested(ApiKey.LIST_OFFSETS, version, "ListOffsetsPartition", **entry),),
            ),
        ),
    }
    if version >= 2:
        fields["isolation_level"] = 0
    return fields


async def test_list_offsets_answers_the_lookup_with_the_leader_epoch() -> None:
    body = await Fixture().call(ApiKey.LIST_OFFSETS, 6, **list_offsets_fields(6, -1))
    [answer] = body.topics[0].partitions
    assert (answer.error_code, answer.offset, answer.leader_epoch) == (KafkaError.none, 42, 3)


async def test_list_offsets_checks_the_current_leader_epoch() -> None:
    fixture = Fixture()
    older = await fixture.call(ApiKey.LIST_OFFSETS, 6, **list_offsets_fields(6, -2, 2))
    newer = await fixture.call(ApiKey.LIST_OFFSETS, 6, **list_offsets_fields(6, -2, 4))
    assert older.topics[0].partitions[0].error_code is KafkaError.fenced_leader_epoch
    assert newer.topics[0].partitions[0].error_code is KafkaError.unknown_leader_epoch


async def test_list_offsets_refuses_max_timestamp_and_passes_broker_errors() -> None:
    fixture = Fixture()
    body = await fixture.call(ApiKey.LIST_OFFSETS, 6, **list_offsets_fields(6, -3))
    assert body.topics[0].partitions[0].error_code is KafkaError.unsupported_version
    fixture.data.offsets[("orders", 0, -1)] = OffsetLookup(ErrorCode.NOT_LEADER_OR_FOLLOWER)
    body = await fixture.call(ApiKey.LIST_OFFSETS, 1, **list_offsets_fields(1, -1))
    assert body.topics[0].partitions[0].error_code is KafkaError.not_leader_or_follower
