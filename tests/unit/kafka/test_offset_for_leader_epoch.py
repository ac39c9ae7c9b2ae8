"""OffsetForLeaderEpoch (KIP-320) mapped onto the ReplicaManager's epoch lookup: every
partition answered with the leader's (epoch, end offset) or Kafka's error and (-1, -1);
follower replica ids refused; versions 2-4 only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from kio.schema.errors import ErrorCode as KafkaError

from broker.kafka.apis import ApiKey
from broker.kafka.data import MAX_PARTITIONS_PER_REQUEST
from broker.kafka.dispatch import ProtocolViolation, parse
from broker.partitions.manager import EpochEndOffset
from kraft.protocol.errors import ErrorCode
from tests.unit.kafka.helpers import FakeData, Fixture, encode_request, nested, request

API = ApiKey.OFFSET_FOR_LEADER_EPOCH


@dataclass
class EpochData(FakeData):
    """FakeData that also answers epoch lookups from `ends` and records them."""

    ends: dict[tuple[str, int], EpochEndOffset] = field(default_factory=dict)
    lookups: list[tuple[str, int, int, int]] = field(default_factory=list)

    def end_offset_for_epoch(
        self, topic: str, partition_id: int, current_leader_epoch: int, leader_epoch: int
    ) -> EpochEndOffset:
        self.lookups.append((topic, partition_id, current_leader_epoch, leader_epoch))
        return self.ends.get(
            (topic, partition_id),
            EpochEndOffset(ErrorCode.NONE, leader_epoch=leader_epoch, end_offset=100),
        )


def fixture() -> Fixture:
    return Fixture(data=EpochData())


def topics(version: int, wanted: dict[str, list[tuple[int, int, int]]]) -> tuple[Any, ...]:
    """{topic: [(partition, current leader epoch, epoch asked about)]}"""
    return tuple(
        nested(
            API,
            version,
            "OffsetForLeaderTopic",
            topic=name,
            partitions=tuple(
                nested(
                    API,
                    version,
                    "OffsetForLeaderPartition",
                    partition=index,
                    current_leader_epoch=current,
                    leader_epoch=epoch,
                )
                for index, current, epoch in partitions
            ),
        )
        for name, partitions in wanted.items()
    )


def answers(body: Any) -> list[tuple[str, int, KafkaError, int, int]]:
    return [
        (topic.topic, p.partition, p.error_code, p.leader_epoch, p.end_offset)
        for topic in body.topics
        for p in topic.partitions
    ]


@pytest.mark.parametrize("version", [3, 4])
async def test_a_consumer_gets_the_leaders_epoch_and_end_offset(version: int) -> None:
    f = fixture()
    f.data.ends[("orders", 1)] = EpochEndOffset(ErrorCode.NONE, leader_epoch=2, end_offset=57)
    body = await f.call(
        API,
        version,
        replica_id=-1,
        topics=topics(version, {"orders": [(0, 3, 3), (1, 3, 2)]}),
    )
    assert answers(body) == [
        ("orders", 0, KafkaError.none, 3, 100),
        ("orders", 1, KafkaError.none, 2, 57),
    ]
    assert f.data.lookups == [("orders", 0, 3, 3), ("orders", 1, 3, 2)]


async def test_version_2_has_no_replica_id_and_is_served_like_a_consumer() -> None:
    f = fixture()
    body = await f.call(API, 2, topics=topics(2, {"orders": [(2, -1, 1)]}))
    assert answers(body) == [("orders", 2, KafkaError.none, 1, 100)]
    assert f.data.lookups == [("orders", 2, -1, 1)]


@pytest.mark.parametrize(
    ("broker_code", "kafka_code"),
    [
        (ErrorCode.FENCED_LEADER_EPOCH, KafkaError.fenced_leader_epoch),
        (ErrorCode.UNKNOWN_LEADER_EPOCH, KafkaError.unknown_leader_epoch),
        (ErrorCode.NOT_LEADER_OR_FOLLOWER, KafkaError.not_leader_or_follower),
        (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, KafkaError.unknown_topic_or_partition),
    ],
)
async def test_a_refused_lookup_answers_its_code_and_an_undefined_epoch(
    broker_code: ErrorCode, kafka_code: KafkaError
) -> None:
    f = fixture()
    f.data.ends[("orders", 0)] = EpochEndOffset(broker_code, "no")
    body = await f.call(API, 4, replica_id=-1, topics=topics(4, {"orders": [(0, 3, 3)]}))
    assert answers(body) == [("orders", 0, kafka_code, -1, -1)]


async def test_an_undefined_epoch_is_answered_without_error() -> None:
    f = fixture()
    f.data.ends[("orders", 0)] = EpochEndOffset(ErrorCode.NONE)
    body = await f.call(API, 4, replica_id=-1, topics=topics(4, {"orders": [(0, 3, 7)]}))
    assert answers(body) == [("orders", 0, KafkaError.none, -1, -1)]


async def test_a_follower_replica_id_is_refused_without_a_lookup() -> None:
    f = fixture()
    body = await f.call(API, 4, replica_id=2, topics=topics(4, {"orders": [(0, 3, 3), (1, 3, 3)]}))
    assert [a[2] for a in answers(body)] == [KafkaError.invalid_request] * 2
    assert f.data.lookups == []


async def test_too_many_partitions_are_refused_without_a_lookup() -> None:
    f = fixture()
    wanted = [(i, -1, 0) for i in range(MAX_PARTITIONS_PER_REQUEST + 1)]
    body = await f.call(API, 4, replica_id=-1, topics=topics(4, {"orders": wanted}))
    assert {a[2] for a in answers(body)} == {KafkaError.invalid_request}
    assert f.data.lookups == []


@pytest.mark.parametrize("version", [0, 1, 5])
def test_versions_outside_two_to_four_close_the_connection(version: int) -> None:
    body = request(API, 4, replica_id=-1, topics=topics(4, {"orders": [(0, 3, 3)]}))
    payload = bytearray(encode_request(API, 4, body))
    payload[2:4] = version.to_bytes(2, "big")  # the header's api version
    with pytest.raises(ProtocolViolation):
        parse(bytes(payload))
