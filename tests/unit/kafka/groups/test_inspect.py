"""The pieces of the consumer-group view that need no broker: member assignments in Kafka's
ConsumerProtocolAssignment format, lag arithmetic, the Confluent lag summary, and the
kafka-consumer-groups.sh style table of `kraft group describe`."""

from __future__ import annotations

import struct

import pytest

from broker.api.consumer_groups import lag_summary_body
from broker.kafka.groups.inspect import (
    GroupMember,
    InspectError,
    PartitionLag,
    decode_consumer_assignment,
)
from client.rendering import render_group_description


def assignment_bytes(version: int, topics: dict[str, list[int]], user_data: bytes = b"") -> bytes:
    parts = [struct.pack(">hi", version, len(topics))]
    for topic, partitions in topics.items():
        parts.append(struct.pack(">h", len(topic)) + topic.encode())
        parts.append(struct.pack(f">i{len(partitions)}i", len(partitions), *partitions))
    parts.append(struct.pack(">i", len(user_data)) + user_data)
    return b"".join(parts)


@pytest.mark.parametrize("version", [0, 1, 3])
def test_member_assignments_decode_in_every_version(version: int) -> None:
    data = assignment_bytes(version, {"orders": [0, 2], "audit": [1]}, b"sticky")
    assert decode_consumer_assignment(data) == {"orders": [0, 2], "audit": [1]}


def test_an_empty_or_cut_assignment() -> None:
    assert decode_consumer_assignment(b"") == {}
    with pytest.raises(InspectError):
        decode_consumer_assignment(assignment_bytes(0, {"orders": [0, 1]})[:12])


def test_lag_is_log_end_minus_committed_and_unknown_without_a_commit() -> None:
    assert PartitionLag("t", 0, 5, 20, None).lag == 15
    assert PartitionLag("t", 0, -1, 20, None).lag is None
    assert PartitionLag("t", 0, 25, 20, None).lag == 0  # a commit past the high watermark


def test_lag_summary_names_the_worst_partition_and_its_member() -> None:
    member = GroupMember("m-1", None, "client-1", "", {"t": [1]})
    lags = [
        PartitionLag("t", 0, 5, 6, None),
        PartitionLag("t", 1, 0, 9, member),
        PartitionLag("t", 2, -1, 3, None),
    ]
    body = lag_summary_body("http://h/v3/clusters/c", "c", "g", lags)
    assert (body["max_lag"], body["total_lag"], body["max_lag_partition_id"]) == (9, 10, 1)
    assert (body["max_lag_consumer_id"], body["max_lag_client_id"]) == ("m-1", "client-1")


def test_describe_prints_kafka_consumer_groups_columns() -> None:
    group = {"consumer_group_id": "g", "state": "STABLE"}
    lags = [
        {
            "topic_name": "t",
            "partition_id": 1,
            "current_offset": -1,
            "log_end_offset": 4,
            "lag": None,
            "consumer_id": "",
            "client_id": "",
        },
        {
            "topic_name": "t",
            "partition_id": 0,
            "current_offset": 3,
            "log_end_offset": 4,
            "lag": 1,
            "consumer_id": "m-1",
            "client_id": "c1",
        },
    ]
    lines = render_group_description(group, lags).splitlines()
    assert lines[0] == "Consumer group 'g' is STABLE."
    assert lines[2].split() == [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]
    assert lines[3].split() == ["g", "t", "0", "3", "4", "1", "m-1", "-", "c1"]
    assert lines[4].split() == ["g", "t", "1", "-", "4", "-", "-", "-", "-"]


def test_kafka_exporter_series_from_a_snapshot() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from broker.kafka.groups.metrics import GroupSample, families

    class Snapshot:
        def collect(self) -> object:
            samples = [
                GroupSample("g", 2, {("t", 0): (5, 20), ("t", 1): (7, 9), ("u", 0): (3, -1)})
            ]
            return families(samples)

    registry = CollectorRegistry()
    registry.register(Snapshot())  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    assert (
        'kafka_consumergroup_current_offset{consumergroup="g",partition="0",topic="u"} 3.0' in text
    )
    assert 'kafka_consumergroup_lag{consumergroup="g",partition="0",topic="t"} 15.0' in text
    assert (
        'kafka_consumergroup_lag{consumergroup="g",partition="0",topic="u"}' not in text
    )  # unknown end
    assert 'kafka_consumergroup_lag_sum{consumergroup="g",topic="t"} 17.0' in text
    assert 'kafka_consumergroup_members{consumergroup="g"} 2.0' in text
