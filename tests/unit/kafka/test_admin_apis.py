"""CreateTopics, DeleteTopics and CreatePartitions through the controller gateway: each
controller refusal becomes Kafka's code for it, one topic's refusal spoils no other."""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode as KafkaError

from broker.api.facade import NoLeaderError
from broker.kafka.apis import ApiKey
from broker.kafka.codec import topic_uuid
from tests.unit.kafka.helpers import Fixture, nested, topic_id_for

TIMEOUT = datetime.timedelta(seconds=30)


def new_topic(version: int, name: str, partitions: int = 2, factor: int = 2, **extra: Any) -> Any:
    fields: dict[str, Any] = {
        "name": name,
        "num_partitions": partitions,
        "replication_factor": factor,
        "assignments": (),
        "configs": (),
        **extra,
    }
    return nested(ApiKey.CREATE_TOPICS, version, "CreatableTopic", **fields)


async def create(fixture: Fixture, version: int, *topics: Any, validate_only: bool = False) -> Any:
    return await fixture.call(
        ApiKey.CREATE_TOPICS, version, topics=topics, timeout=TIMEOUT, validate_only=validate_only
    )


async def test_create_topics_creates_and_describes_the_topic_from_v5() -> None:
    fixture = Fixture()
    config = nested(ApiKey.CREATE_TOPICS, 7, "CreatableTopicConfig", name="retention.ms", value="5")
    body = await create(fixture, 7, new_topic(7, "events", configs=(config,)))
    [result] = body.topics
    assert result.error_code is KafkaError.none
    assert (result.num_partitions, result.replication_factor) == (2, 2)
    assert result.topic_id == topic_uuid(topic_id_for("events"))
    assert [(c.name, c.value) for c in result.configs] == [("retention.ms", "5")]
    assert fixture.builder.image.topic("events") is not None


async def test_create_topics_before_v5_creates_a_topic_with_configs_without_listing_them() -> None:
    """librdkafka sends CreateTopics v4, whose answer has no configs field (KIP-525 added
    it in v5): building one failed the request and closed the connection."""
    fixture = Fixture()
    config = nested(ApiKey.CREATE_TOPICS, 4, "CreatableTopicConfig", name="retention.ms", value="5")

    body = await create(fixture, 4, new_topic(4, "events", configs=(config,)))

    [result] = body.topics
    assert result.error_code is KafkaError.none
    assert fixture.builder.image.configs("topic", "events") == {"retention.ms": "5"}


async def test_each_controller_refusal_gets_its_kafka_code() -> None:
    fixture = Fixture()
    body = await create(
        fixture,
        5,
        new_topic(5, "orders"),
        new_topic(5, "bad name!"),
        new_topic(5, "wide", factor=5),
        new_topic(5, "fine"),
    )
    codes = [(t.name, t.error_code) for t in body.topics]
    assert codes == [
        ("orders", KafkaError.topic_already_exists),
        ("bad name!", KafkaError.invalid_topic_exception),
        ("wide", KafkaError.invalid_replication_factor),
        ("fine", KafkaError.none),
    ]
    assert "larger than the 2 live brokers" in body.topics[2].error_message


async def test_duplicates_and_manual_assignments_are_refused_without_a_call() -> None:
    fixture = Fixture()
    assignment = nested(
        ApiKey.CREATE_TOPICS, 5, "CreatableReplicaAssignment", partition_index=0, broker_ids=(1,)
    )
    body = await create(
        fixture,
        5,
        new_topic(5, "twice"),
        new_topic(5, "twice"),
        new_topic(5, "manual", partitions=-1, factor=-1, assignments=(assignment,)),
    )
    codes = [t.error_code for t in body.topics]
    assert codes == [KafkaError.invalid_request] * 2 + [KafkaError.invalid_replica_assignment]
    assert fixture.admin.calls == []


async def test_no_reachable_controller_is_not_controller() -> None:
    fixture = Fixture()
    fixture.admin.error = NoLeaderError("no leader is known: an election is in progress")
    body = await create(fixture, 2, new_topic(2, "later"))
    assert body.topics[0].error_code is KafkaError.not_controller  # clients retry it


async def test_validate_only_creates_nothing() -> None:
    fixture = Fixture()
    body = await create(fixture, 7, new_topic(7, "dry"), validate_only=True)
    assert body.topics[0].error_code is KafkaError.none
    assert fixture.builder.image.topic("dry") is None


async def test_delete_topics_by_name_and_by_id() -> None:
    fixture = Fixture()
    body = await fixture.call(
        ApiKey.DELETE_TOPICS, 1, topic_names=("orders", "nope"), timeout=TIMEOUT
    )
    assert [r.error_code for r in body.responses] == [
        KafkaError.none,
        KafkaError.unknown_topic_or_partition,
    ]
    audit_id = topic_uuid(topic_id_for("audit.log"))
    state = nested(ApiKey.DELETE_TOPICS, 6, "DeleteTopicState", name=None, topic_id=audit_id)
    body = await fixture.call(ApiKey.DELETE_TOPICS, 6, topics=(state,), timeout=TIMEOUT)
    [result] = body.responses
    assert (result.name, result.topic_id, result.error_code) == (
        "audit.log",
        audit_id,
        KafkaError.none,
    )
    assert fixture.builder.image.topic_names() == []


async def test_create_partitions_grows_a_topic_and_refuses_shrinking() -> None:
    fixture = Fixture()

    def grow(name: str, count: int) -> Any:
        return nested(
            ApiKey.CREATE_PARTITIONS,
            3,
            "CreatePartitionsTopic",
            name=name,
            count=count,
            assignments=None,
        )

    body = await fixture.call(
        ApiKey.CREATE_PARTITIONS,
        3,
        topics=(grow("orders", 5), grow("audit.log", 1), grow("nope", 2)),
        timeout=TIMEOUT,
        validate_only=False,
    )
    assert [r.error_code for r in body.results] == [
        KafkaError.none,
        KafkaError.invalid_partitions,
        KafkaError.unknown_topic_or_partition,
    ]
    orders = fixture.builder.image.topic("orders")
    assert orders is not None
    assert len(orders.partitions) == 5
