"""Topic administration through the controller: create (validate_only), delete, add
partitions, alter configs. A refusal writes nothing and leaves the working image as it was."""

from __future__ import annotations

from collections import Counter

import pytest

from kraft.controller.controller import CreateTopicResponse
from kraft.controller.errors import (
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicNameError,
    TopicExistsError,
    UnknownTopicError,
)
from kraft.controller.records import ConfigRecord, PartitionRecord, TopicRecord
from tests.unit.controller.harness import ControllerHarness


@pytest.fixture
def cluster(harness: ControllerHarness) -> ControllerHarness:
    harness.add_brokers(1, 2, 3)
    return harness


def test_create_topic_writes_topic_partitions_then_configs(cluster: ControllerHarness) -> None:
    before = len(cluster.records)

    topic_id = cluster.create_topic(
        "orders", 2, 3, {"retention.ms": "1000", "cleanup.policy": "compact"}
    )

    records = cluster.records[before:]
    assert records[0] == TopicRecord("orders", topic_id)
    partitions = [r for r in records if isinstance(r, PartitionRecord)]
    assert [p.partition_id for p in partitions] == [0, 1]
    for p in partitions:
        assert (p.leader, p.isr, p.leader_epoch, p.partition_epoch) == (
            p.replicas[0],
            p.replicas,
            0,
            0,
        )
    assert records[3:] == [
        ConfigRecord("topic", "orders", "cleanup.policy", "compact"),
        ConfigRecord("topic", "orders", "retention.ms", "1000"),
    ]


def test_omitted_counts_take_the_cluster_defaults(cluster: ControllerHarness) -> None:
    cluster.create_topic("orders")

    topic = cluster.topic("orders")
    assert len(topic.partitions) == cluster.settings.default_partitions
    assert {len(p.replicas) for p in topic.partitions.values()} == {
        cluster.settings.default_replication_factor
    }


def test_validate_only_checks_everything_and_writes_nothing(cluster: ControllerHarness) -> None:
    result = cluster.controller.create_topic("orders", 4, 2, {}, validate_only=True)

    assert result.records == []
    assert result.response == CreateTopicResponse("orders", None, 4, 2, {})
    assert cluster.image.topic("orders") is None
    with pytest.raises(InvalidReplicationFactorError):
        cluster.controller.create_topic("orders", 4, 5, {}, validate_only=True)


@pytest.mark.parametrize(
    ("name", "partitions", "replication_factor", "configs", "error", "message"),
    [
        ("existing", 1, 1, {}, TopicExistsError, "topic 'existing' already exists"),
        ("exist.ing", 1, 1, {}, InvalidTopicNameError, "collides with existing topic 'exist_ing'"),
        ("bad name", 1, 1, {}, InvalidTopicNameError, "illegal"),
        ("t", 0, 1, {}, InvalidPartitionsError, "number of partitions 0 must be at least 1"),
        ("t", -3, 1, {}, InvalidPartitionsError, "number of partitions -3"),
        ("t", 100_000, 1, {}, InvalidPartitionsError, "above the limit"),
        ("t", 1, 0, {}, InvalidReplicationFactorError, "replication factor 0"),
        ("t", 1, 4, {}, InvalidReplicationFactorError, "4 is larger than the 3 live brokers"),
        ("t", 1, 2, {"min.insync.replicas": "3"}, InvalidConfigError, "replication factor 2"),
        ("t", 1, 2, {"flush.ms": "3"}, InvalidConfigError, "unknown topic config 'flush.ms'"),
    ],
)
def test_invalid_topic_creations_are_refused_and_change_nothing(
    cluster: ControllerHarness,
    name: str,
    partitions: int,
    replication_factor: int,
    configs: dict[str, str],
    error: type[Exception],
    message: str,
) -> None:
    cluster.create_topic("existing", 1, 1)
    cluster.create_topic("exist_ing", 1, 1)
    before = cluster.image.copy()

    with pytest.raises(error, match=message):
        cluster.controller.create_topic(name, partitions, replication_factor, configs, False)

    assert cluster.image == before


def test_replication_factor_counts_only_live_brokers(cluster: ControllerHarness) -> None:
    cluster.expire(3)

    with pytest.raises(InvalidReplicationFactorError, match="3 is larger than the 2 live"):
        cluster.controller.create_topic("orders", 1, 3, {}, validate_only=False)


def test_leaders_of_single_partition_topics_are_spread_evenly(cluster: ControllerHarness) -> None:
    for index in range(9):
        cluster.create_topic(f"t{index}", 1, 2)

    assert Counter(cluster.leaders().values()) == {1: 3, 2: 3, 3: 3}


def test_delete_topic_removes_it_and_its_configs(cluster: ControllerHarness) -> None:
    topic_id = cluster.create_topic("orders", 2, 2, {"retention.ms": "5"})

    response = cluster.run(cluster.controller.delete_topic("orders"))

    assert response == topic_id
    assert cluster.image.topic("orders") is None
    assert cluster.image.configs("topic", "orders") == {}
    cluster.create_topic("orders", 1, 1)  # the name is free again
    assert cluster.image.configs("topic", "orders") == {}


def test_unknown_topics_are_refused(cluster: ControllerHarness) -> None:
    with pytest.raises(UnknownTopicError, match="topic 'nope' does not exist"):
        cluster.controller.delete_topic("nope")
    with pytest.raises(UnknownTopicError):
        cluster.controller.create_partitions("nope", 3)
    with pytest.raises(UnknownTopicError):
        cluster.controller.alter_topic_configs("nope", {}, (), False)


def test_create_partitions_adds_partitions_with_the_topics_replication_factor(
    cluster: ControllerHarness,
) -> None:
    cluster.create_topic("orders", 2, 2)

    response = cluster.run(cluster.controller.create_partitions("orders", 5))

    topic = cluster.topic("orders")
    assert response == 5
    assert sorted(topic.partitions) == [0, 1, 2, 3, 4]
    assert {len(p.replicas) for p in topic.partitions.values()} == {2}


@pytest.mark.parametrize("total", [2, 1, 0])
def test_partition_count_can_only_grow(cluster: ControllerHarness, total: int) -> None:
    cluster.create_topic("orders", 2, 2)

    with pytest.raises(InvalidPartitionsError, match=f"has 2 partitions; .* not become {total}"):
        cluster.controller.create_partitions("orders", total)


def test_alter_configs_sets_and_deletes(cluster: ControllerHarness) -> None:
    cluster.create_topic("orders", 1, 3, {"retention.ms": "5", "segment.bytes": "1000"})

    response = cluster.run(
        cluster.controller.alter_topic_configs(
            "orders", {"retention.ms": "6", "min.insync.replicas": "2"}, ("segment.bytes",), False
        )
    )

    expected = {"retention.ms": "6", "min.insync.replicas": "2"}
    assert response == expected
    assert cluster.image.configs("topic", "orders") == expected


def test_a_topic_cannot_be_created_with_min_compaction_lag_above_max(
    cluster: ControllerHarness,
) -> None:
    configs = {"min.compaction.lag.ms": "2", "max.compaction.lag.ms": "1"}

    with pytest.raises(InvalidConfigError, match="conflict: min.compaction.lag.ms=2 is above"):
        cluster.controller.create_topic("orders", 1, 3, configs, False)

    assert cluster.image.topic("orders") is None


def test_alter_configs_validate_only_writes_nothing(cluster: ControllerHarness) -> None:
    cluster.create_topic("orders", 1, 3)

    result = cluster.controller.alter_topic_configs("orders", {"retention.ms": "6"}, (), True)

    assert result.records == []
    assert result.response == {"retention.ms": "6"}
    assert cluster.image.configs("topic", "orders") == {}


@pytest.mark.parametrize(
    ("set_configs", "delete_configs", "message"),
    [
        ({"retention.ms": "x"}, (), "'x' for config 'retention.ms'"),
        ({"min.insync.replicas": "3"}, (), "replication factor 2"),
        ({}, ("nope",), "unknown topic config 'nope'"),
        ({"retention.ms": "1"}, ("retention.ms",), "both set and deleted"),
        # with the topic's max.compaction.lag.ms of 60000 (set at creation, below)
        ({"min.compaction.lag.ms": "60001"}, (), "conflict: min.compaction.lag.ms=60001"),
    ],
)
def test_invalid_config_changes_are_refused(
    cluster: ControllerHarness,
    set_configs: dict[str, str],
    delete_configs: tuple[str, ...],
    message: str,
) -> None:
    cluster.create_topic("orders", 1, 2, {"retention.ms": "5", "max.compaction.lag.ms": "60000"})
    before = cluster.image.copy()

    with pytest.raises(InvalidConfigError, match=message):
        cluster.controller.alter_topic_configs("orders", set_configs, delete_configs, False)

    assert cluster.image == before
