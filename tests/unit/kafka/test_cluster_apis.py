"""Metadata and DescribeCluster from the broker's image: CLIENT endpoints of live brokers,
a reachable controller id, topic ids, leader epochs, Kafka's per-topic errors."""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode as KafkaError

from broker.api.facade import NoLeaderError
from broker.kafka.apis import ApiKey
from broker.kafka.cluster import MAX_AUTO_CREATED_TOPICS_PER_REQUEST
from broker.kafka.codec import topic_uuid
from kraft.controller.errors import InvalidReplicationFactorError
from tests.unit.kafka.helpers import CLUSTER_ID, Fixture, nested, topic_id_for


def metadata_topic(version: int, name: str | None, topic_id: uuid.UUID | None = None) -> object:
    fields: dict[str, object] = {"name": name}
    if version >= 10:
        fields["topic_id"] = topic_id or uuid.UUID(int=0)
    return nested(ApiKey.METADATA, version, "MetadataRequestTopic", **fields)


async def metadata(
    fixture: Fixture, version: int, topics: object, allow_auto_topic_creation: bool = False
) -> object:
    fields: dict[str, object] = {"topics": topics}
    if version >= 4:
        fields["allow_auto_topic_creation"] = allow_auto_topic_creation
    if 8 <= version <= 10:
        fields["include_cluster_authorized_operations"] = False
    if version >= 8:
        fields["include_topic_authorized_operations"] = False
    return await fixture.call(ApiKey.METADATA, version, **fields)


async def test_metadata_lists_live_brokers_at_their_client_endpoints() -> None:
    body = await metadata(Fixture(), 12, None)
    brokers = {(b.node_id, b.host, b.port, b.rack) for b in body.brokers}  # type: ignore[attr-defined]
    assert brokers == {(1, "127.0.0.1", 9092, "r1"), (2, "127.0.0.1", 9192, "r2")}  # 3: fenced
    assert body.cluster_id == CLUSTER_ID  # type: ignore[attr-defined]
    assert body.controller_id == 1  # type: ignore[attr-defined]


async def test_the_controller_shown_is_a_live_broker_when_the_quorum_leader_is_not_one() -> None:
    fixture = Fixture(controller=3)  # fenced: clients could not send it admin requests
    assert (await metadata(fixture, 12, None)).controller_id == 1  # type: ignore[attr-defined]
    fixture.controller = None
    assert (await metadata(fixture, 1, None)).controller_id == 1  # type: ignore[attr-defined]


async def test_metadata_gives_topic_ids_leader_epochs_and_offline_replicas() -> None:
    body = await metadata(Fixture(), 12, (metadata_topic(12, "orders"),))
    [topic] = body.topics  # type: ignore[attr-defined]
    assert topic.error_code is KafkaError.none
    assert topic.topic_id == topic_uuid(topic_id_for("orders"))
    first = topic.partitions[0]
    assert (first.partition_index, first.leader_id, first.leader_epoch) == (0, 1, 3)
    assert first.replica_nodes == (1, 2, 3)
    assert first.offline_replicas == (3,)


async def test_a_leaderless_partition_is_leader_not_available() -> None:
    body = await metadata(Fixture(), 9, (metadata_topic(9, "audit.log"),))
    [partition] = body.topics[0].partitions  # type: ignore[attr-defined]
    assert partition.error_code is KafkaError.leader_not_available
    assert partition.leader_id == -1


async def test_unknown_and_illegal_topic_names_get_their_own_errors() -> None:
    asked = (metadata_topic(12, "nope"), metadata_topic(12, "bad name!"))
    body = await metadata(Fixture(), 12, asked)
    codes = [t.error_code for t in body.topics]  # type: ignore[attr-defined]
    assert codes == [KafkaError.unknown_topic_or_partition, KafkaError.invalid_topic_exception]


async def test_with_auto_create_on_a_metadata_request_creates_the_topic_it_names() -> None:
    """auto.create.topics.enable, as Kafka: the broker defaults' partitions and replicas,
    and the answer describes the new topic."""
    fixture = Fixture(auto_create_topics=True)

    body = await metadata(fixture, 12, (metadata_topic(12, "new"),), allow_auto_topic_creation=True)

    [topic] = body.topics  # type: ignore[attr-defined]
    assert (topic.name, topic.error_code) == ("new", KafkaError.none)
    assert len(topic.partitions) == 1
    assert fixture.admin.calls == [("create_topic", "new", None, None, {})]


async def test_before_v4_a_metadata_request_always_allows_auto_creation() -> None:
    fixture = Fixture(auto_create_topics=True)

    body = await metadata(fixture, 3, (metadata_topic(3, "new"),))

    assert body.topics[0].error_code is KafkaError.none  # type: ignore[attr-defined]
    assert fixture.builder.image.topic("new") is not None


async def test_nothing_is_created_unless_both_the_broker_and_the_request_allow_it() -> None:
    for auto_create_topics, allow in ((True, False), (False, True)):
        fixture = Fixture(auto_create_topics=auto_create_topics)

        body = await metadata(
            fixture, 12, (metadata_topic(12, "new"),), allow_auto_topic_creation=allow
        )

        assert body.topics[0].error_code is KafkaError.unknown_topic_or_partition  # type: ignore[attr-defined]
        assert fixture.admin.calls == []


async def test_internal_and_illegal_names_are_never_auto_created() -> None:
    fixture = Fixture(auto_create_topics=True)
    asked = (metadata_topic(12, "__consumer_offsets"), metadata_topic(12, "bad name!"))

    body = await metadata(fixture, 12, asked, allow_auto_topic_creation=True)

    codes = [t.error_code for t in body.topics]  # type: ignore[attr-defined]
    assert codes == [KafkaError.unknown_topic_or_partition, KafkaError.invalid_topic_exception]
    assert fixture.admin.calls == []


async def test_an_auto_creation_the_controller_refuses_answers_its_code() -> None:
    fixture = Fixture(auto_create_topics=True)
    fixture.admin.error = InvalidReplicationFactorError("replication factor 3 is larger than 2")

    body = await metadata(fixture, 12, (metadata_topic(12, "new"),), allow_auto_topic_creation=True)

    assert body.topics[0].error_code is KafkaError.invalid_replication_factor  # type: ignore[attr-defined]


async def test_one_request_auto_creates_a_bounded_number_of_topics() -> None:
    fixture = Fixture(auto_create_topics=True)
    names = [f"t{n:03d}" for n in range(MAX_AUTO_CREATED_TOPICS_PER_REQUEST + 2)]
    asked = tuple(metadata_topic(12, name) for name in names)

    body = await metadata(fixture, 12, asked, allow_auto_topic_creation=True)

    codes = [t.error_code for t in body.topics]  # type: ignore[attr-defined]
    assert (
        codes
        == [KafkaError.none] * MAX_AUTO_CREATED_TOPICS_PER_REQUEST
        + [KafkaError.leader_not_available] * 2
    )
    assert len(fixture.admin.calls) == MAX_AUTO_CREATED_TOPICS_PER_REQUEST


async def test_an_auto_creation_without_a_controller_is_leader_not_available() -> None:
    """Clients retry LEADER_NOT_AVAILABLE, and the next request tries again."""
    fixture = Fixture(auto_create_topics=True)
    fixture.admin.error = NoLeaderError("no controller")

    body = await metadata(fixture, 12, (metadata_topic(12, "new"),), allow_auto_topic_creation=True)

    assert body.topics[0].error_code is KafkaError.leader_not_available  # type: ignore[attr-defined]


async def test_topics_are_found_by_id_from_v10() -> None:
    known = topic_uuid(topic_id_for("orders"))
    asked = (metadata_topic(12, None, known), metadata_topic(12, None, uuid.uuid4()))
    body = await metadata(Fixture(), 12, asked)
    found, unknown = body.topics  # type: ignore[attr-defined]
    assert (found.name, found.error_code) == ("orders", KafkaError.none)
    assert unknown.error_code is KafkaError.unknown_topic_id


async def test_an_empty_list_means_every_topic_in_v0_and_none_after() -> None:
    names_v0 = {t.name for t in (await metadata(Fixture(), 0, ())).topics}  # type: ignore[attr-defined]
    assert names_v0 == {"orders", "audit.log"}
    assert (await metadata(Fixture(), 1, ())).topics == ()  # type: ignore[attr-defined]


async def test_describe_cluster_lists_brokers_and_refuses_controller_endpoints() -> None:
    fixture = Fixture()
    body = await fixture.call(
        ApiKey.DESCRIBE_CLUSTER, 1, include_cluster_authorized_operations=False, endpoint_type=1
    )
    assert body.error_code is KafkaError.none
    assert [b.broker_id for b in body.brokers] == [1, 2]
    assert body.cluster_id == CLUSTER_ID
    refused = await fixture.call(
        ApiKey.DESCRIBE_CLUSTER, 1, include_cluster_authorized_operations=False, endpoint_type=2
    )
    assert refused.error_code is KafkaError.unsupported_endpoint_type
