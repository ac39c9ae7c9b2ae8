"""The MetadataImage: what each record does, its invariants, copies and snapshots."""

from __future__ import annotations

import pytest

from kraft.controller.image import MetadataImage, PartitionRegistration
from kraft.controller.records import (
    NO_LEADER,
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnregisterBrokerRecord,
)
from tests.unit.controller.builders import register, replay

TOPIC_RECORDS: list[MetadataRecord] = [
    register(1, 0),
    register(2, 1),
    register(3, 2),
    TopicRecord("orders", "id-orders"),
    PartitionRecord("id-orders", 0, (1, 2, 3), (1, 2, 3), 1, 0, 0),
    PartitionRecord("id-orders", 1, (2, 3, 1), (2, 3, 1), 2, 0, 0),
    ConfigRecord("topic", "orders", "retention.ms", "1000"),
]


def test_a_broker_registration_is_readable_with_its_endpoints() -> None:
    image = replay([register(1, 5, rack="r1")])

    broker = image.brokers[1]
    assert broker.broker_epoch == 5
    assert broker.rack == "r1"
    rpc = broker.endpoint("RPC")
    assert rpc is not None and rpc.port == 9093
    assert broker.endpoint("HTTP") is None
    assert image.next_broker_epoch == 6


def test_a_reregistration_replaces_the_earlier_one() -> None:
    image = replay(
        [register(1, 0), BrokerRegistrationChangeRecord(1, 0, True, True), register(1, 3)]
    )

    broker = image.brokers[1]
    assert broker.broker_epoch == 3
    assert not broker.fenced
    assert not broker.in_controlled_shutdown


def test_a_registration_with_an_older_epoch_is_a_bug() -> None:
    with pytest.raises(AssertionError, match="not above"):
        replay([register(1, 4), register(1, 4)])


def test_live_brokers_are_neither_fenced_nor_shutting_down() -> None:
    image = replay(
        [
            register(1, 0),
            register(2, 1, fenced=True),
            register(3, 2),
            BrokerRegistrationChangeRecord(3, 2, in_controlled_shutdown=True),
            register(4, 3),
        ]
    )

    assert image.live_brokers() == [1, 4]
    assert image.fenced_brokers() == [2]


def test_unregistering_forgets_the_broker_but_not_its_epoch() -> None:
    image = replay([register(1, 0), UnregisterBrokerRecord(1, 0)])

    assert 1 not in image.brokers
    assert image.next_broker_epoch == 1


def test_topics_are_found_by_name_and_id() -> None:
    image = replay(TOPIC_RECORDS)

    topic = image.topic("orders")
    assert topic is not None
    assert image.topics_by_id["id-orders"] is topic
    assert image.topic_names() == ["orders"]
    assert image.partition("id-orders", 1) == PartitionRegistration(
        "id-orders", 1, (2, 3, 1), (2, 3, 1), 2, 0, 0
    )
    assert image.partition("id-orders", 2) is None
    assert image.topic("missing") is None
    assert image.configs("topic", "orders") == {"retention.ms": "1000"}
    assert image.partition_count() == 2


def test_a_partition_change_bumps_the_partition_epoch_and_a_new_leader_the_leader_epoch() -> None:
    """KIP-631: every change bumps the partition epoch; a leader change the leader epoch."""
    image = replay(TOPIC_RECORDS)

    image.apply(PartitionChangeRecord("id-orders", 0, isr=(1, 2)), 100)
    isr_only = image.partition("id-orders", 0)
    image.apply(PartitionChangeRecord("id-orders", 0, leader=2), 101)
    new_leader = image.partition("id-orders", 0)
    image.apply(PartitionChangeRecord("id-orders", 0, leader=2, isr=(2,)), 102)
    same_leader = image.partition("id-orders", 0)

    assert isr_only is not None
    assert (isr_only.leader_epoch, isr_only.partition_epoch) == (0, 1)
    assert new_leader is not None
    assert (new_leader.leader_epoch, new_leader.partition_epoch) == (1, 2)
    assert same_leader is not None
    assert (same_leader.leader_epoch, same_leader.partition_epoch) == (1, 3)
    assert same_leader.isr == (2,)


def test_a_leader_outside_the_isr_is_a_bug() -> None:
    image = replay(TOPIC_RECORDS)

    with pytest.raises(AssertionError, match="not in the ISR"):
        image.apply(PartitionChangeRecord("id-orders", 0, isr=(2, 3)), 100)


def test_an_isr_outside_the_replicas_is_a_bug() -> None:
    image = replay(TOPIC_RECORDS)

    with pytest.raises(AssertionError, match="ISR outside the replicas"):
        image.apply(PartitionChangeRecord("id-orders", 0, isr=(1, 4)), 100)


def test_an_empty_isr_with_a_leader_is_a_bug() -> None:
    image = replay(TOPIC_RECORDS)

    with pytest.raises(AssertionError, match="empty ISR with a leader"):
        image.apply(PartitionChangeRecord("id-orders", 0, isr=()), 100)


def test_an_empty_isr_of_a_leaderless_partition_is_allowed() -> None:
    """KIP-966: when the last ISR member lost its data, nothing may lead cleanly."""
    image = replay(TOPIC_RECORDS)

    image.apply(PartitionChangeRecord("id-orders", 0, leader=NO_LEADER, isr=()), 100)

    assert image.offline_partitions() == [("orders", 0)]


def test_an_elr_member_in_the_isr_is_a_bug() -> None:
    image = replay(TOPIC_RECORDS)
    isr = image.topics_by_id["id-orders"].partitions[0].isr

    with pytest.raises(AssertionError, match="ELR member in the ISR"):
        image.apply(PartitionChangeRecord("id-orders", 0, elr=isr[:1]), 100)


def test_offsets_must_increase() -> None:
    image = replay(TOPIC_RECORDS)

    with pytest.raises(AssertionError, match="after offset"):
        image.apply(ConfigRecord("topic", "orders", "retention.ms", "1"), image.applied_offset)


def test_removing_a_topic_drops_its_partitions_and_configs() -> None:
    image = replay([*TOPIC_RECORDS, RemoveTopicRecord("id-orders")])

    assert image.topic("orders") is None
    assert image.topics_by_id == {}
    assert image.configs("topic", "orders") == {}
    assert image.partition_count() == 0


def test_a_config_record_with_no_value_deletes_the_config() -> None:
    image = replay([*TOPIC_RECORDS, ConfigRecord("topic", "orders", "retention.ms", None)])

    assert image.configs("topic", "orders") == {}


def test_health_aggregates_count_offline_and_under_replicated_partitions() -> None:
    image = replay(
        [
            *TOPIC_RECORDS,
            BrokerRegistrationChangeRecord(1, 0, fenced=True),
            PartitionChangeRecord("id-orders", 0, leader=NO_LEADER, isr=(1,)),
            PartitionChangeRecord("id-orders", 1, isr=(2, 3)),
        ]
    )

    assert image.offline_partitions() == [("orders", 0)]
    assert image.under_replicated_partitions() == [("orders", 0), ("orders", 1)]
    assert image.fenced_brokers() == [1]


def test_applying_to_a_copy_never_changes_the_original() -> None:
    original = replay(TOPIC_RECORDS)
    topic_before = original.topic("orders")

    copy = original.copy()
    copy.apply(PartitionChangeRecord("id-orders", 0, isr=(1, 2)), 100)
    copy.apply(BrokerRegistrationChangeRecord(3, 2, fenced=True), 101)
    copy.apply(ConfigRecord("topic", "orders", "retention.ms", "5"), 102)
    copy.apply(TopicRecord("other", "id-other"), 103)

    assert original == replay(TOPIC_RECORDS)
    assert original.topic("orders") is topic_before
    assert original.applied_offset == len(TOPIC_RECORDS) - 1
    assert copy != original


def test_to_records_rebuilds_an_equal_image() -> None:
    image = replay(
        [
            *TOPIC_RECORDS,
            BrokerRegistrationChangeRecord(2, 1, in_controlled_shutdown=True),
            PartitionChangeRecord("id-orders", 0, leader=3, isr=(3, 1)),
            register(4, 9),
            UnregisterBrokerRecord(4, 9),
            ConfigRecord("broker", "", "log.retention.ms", "7"),
        ]
    )

    rebuilt = MetadataImage.from_records(
        image.to_records(), image.applied_offset, image.next_broker_epoch
    )

    assert rebuilt == image
    assert rebuilt.applied_offset == image.applied_offset
    assert rebuilt.partition("id-orders", 0) == image.partition("id-orders", 0)


def test_equality_ignores_the_offsets_the_records_were_applied_at() -> None:
    assert replay(TOPIC_RECORDS, start_offset=0) == replay(TOPIC_RECORDS, start_offset=50)
