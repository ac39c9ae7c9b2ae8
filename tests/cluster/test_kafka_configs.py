"""Topic and broker configs through the Kafka admin APIs of unmodified clients, against real
node processes: kafka-python's, confluent-kafka's and aiokafka's admin clients describe a topic's
configs, alter them (AlterConfigs and IncrementalAlterConfigs), and the change is committed
by the controller, visible over HTTP on another node and applied by the data plane:
max.message.bytes refuses a larger batch, min.insync.replicas refuses acks=all writes once
the ISR is smaller. Broker resources describe read-only and refuse alters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.dataplane import (
    DATA_PLANE_TIMING,
    batch_of,
    cluster_id,
    create_topic,
    produce,
    wait_for_partition,
    wait_until_ready,
)
from tests.cluster.harness import LocalCluster, NodeProcess, wait_for

pytestmark = pytest.mark.cluster

DEADLINE_S = 60.0
MESSAGE_TOO_LARGE = 10
NOT_ENOUGH_REPLICAS = 19
INVALID_REQUEST = 42


# Set in every node's server.properties, so topics describe it as STATIC_BROKER_CONFIG.
BROKER_MIN_INSYNC_REPLICAS = "2"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(
        Path(tmp_path_factory.mktemp("kafka-configs")),
        extra_config={
            **DATA_PLANE_TIMING,
            "default.replication.factor": "3",
            "min.insync.replicas": BROKER_MIN_INSYNC_REPLICAS,
        },
    )
    try:
        local.up()
        wait_until_ready(local)
        yield local
    finally:
        local.close()


def kafka_bootstrap(cluster: LocalCluster) -> str:
    return ",".join(f"127.0.0.1:{node.client_port}" for node in cluster.nodes.values())


def in_sync_topic(cluster: LocalCluster, topic: str) -> int:
    create_topic(cluster.nodes[1], topic)
    state = wait_for_partition(
        cluster, topic, lambda s: s["leader"] >= 0 and len(s["isr"]) == 3, "all in sync"
    )
    return int(state["leader"])


def http_topic_configs(node: NodeProcess, topic: str) -> dict[str, dict[str, Any]]:
    code, body = node.get(f"/v3/clusters/{cluster_id(node)}/topics/{topic}/configs")
    assert code == 200, body
    return {entry["name"]: entry for entry in body["data"]}


def http_shows(cluster: LocalCluster, topic: str, name: str, value: str | None) -> None:
    """Every node's HTTP API shows `name` = `value` on the topic (None: not set on it)."""
    for node in cluster.nodes.values():
        wait_for(
            lambda node=node: (  # type: ignore[misc]
                http_topic_configs(node, topic)[name]["value"] == value
                and http_topic_configs(node, topic)[name]["is_default"] == (value is None)
            ),
            deadline_s=DEADLINE_S,
            what=f"{name}={value} on node {node.node_id}",
        )


# -- kafka-python ------------------------------------------------------------------------------


def test_kafka_python_describes_and_alters_topic_configs(cluster: LocalCluster) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    topic = "cfg-kp"
    in_sync_topic(cluster, topic)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap(cluster), request_timeout_ms=30_000)
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        described = admin.describe_configs([resource], config_filter="all")["topic"][topic]
        assert described["retention.ms"]["config_source"] == "DEFAULT_CONFIG"
        isr = described["min.insync.replicas"]
        assert (isr["value"], isr["config_source"]) == ("2", "STATIC_BROKER_CONFIG")
        assert not described["retention.ms"]["read_only"]

        changes = {"retention.ms": "123456", "max.message.bytes": "300"}
        result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, changes)])
        assert result == {"topic": {topic: "OK"}}

        described = admin.describe_configs([resource], config_filter="modified")["topic"][topic]
        assert {name: entry["value"] for name, entry in described.items()} == changes
        assert described["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"

        with pytest.raises(ValueError, match="Unrecognized configs"):
            bad = ConfigResource(ConfigResourceType.TOPIC, topic, {"no.such.config": "1"})
            admin.alter_configs([bad])
        invalid = ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "soon"})
        refused = admin.alter_configs([invalid])["topic"][topic]
        assert "InvalidConfigurationError" in refused
        assert "'soon'" in refused
    finally:
        admin.close()
    http_shows(cluster, topic, "retention.ms", "123456")


def test_max_message_bytes_set_by_a_kafka_client_is_applied_by_the_leader(
    cluster: LocalCluster,
) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    topic = "cfg-limit"
    leader = cluster.nodes[in_sync_topic(cluster, topic)]
    large = batch_of(b"x" * 1000)
    assert produce(leader, topic, large)["error_code"] == 0
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap(cluster), request_timeout_ms=30_000)
    try:
        changes = {"max.message.bytes": "500"}
        result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, changes)])
        assert result == {"topic": {topic: "OK"}}
    finally:
        admin.close()
    wait_for(
        lambda: produce(leader, topic, large)["error_code"] == MESSAGE_TOO_LARGE,
        deadline_s=DEADLINE_S,
        what="the leader applying max.message.bytes=500",
    )
    assert produce(leader, topic, batch_of(b"small"))["error_code"] == 0


# -- confluent-kafka ---------------------------------------------------------------------------


def confluent_admin(cluster: LocalCluster) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_bootstrap(cluster)})


def confluent_describe(admin: Any, restype: Any, name: str) -> dict[str, Any]:
    from confluent_kafka.admin import ConfigResource

    futures = admin.describe_configs([ConfigResource(restype, name)])
    (future,) = futures.values()
    return dict(future.result(timeout=DEADLINE_S))


def confluent_incremental(admin: Any, topic: str, name: str, value: str | None) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    operation = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    entry = ConfigEntry(name, value, incremental_operation=operation)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    (future,) = admin.incremental_alter_configs([resource]).values()
    future.result(timeout=DEADLINE_S)


def test_confluent_kafka_alters_min_insync_replicas_and_the_leader_applies_it(
    cluster: LocalCluster,
) -> None:
    from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

    topic = "cfg-ck"
    leader_id = in_sync_topic(cluster, topic)
    admin = confluent_admin(cluster)
    described = confluent_describe(admin, ResourceType.TOPIC, topic)
    isr = described["min.insync.replicas"]
    assert (isr.value, isr.source) == ("2", ConfigSource.STATIC_BROKER_CONFIG.value)
    assert described["cleanup.policy"].value == "delete"

    confluent_incremental(admin, topic, "min.insync.replicas", "3")
    described = confluent_describe(admin, ResourceType.TOPIC, topic)
    assert described["min.insync.replicas"].value == "3"
    assert described["min.insync.replicas"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    http_shows(cluster, topic, "min.insync.replicas", "3")

    # AlterConfigs replaces the whole set: retention.ms set, min.insync.replicas reset.
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "7000"})
    (future,) = admin.alter_configs([resource]).values()
    future.result(timeout=DEADLINE_S)
    http_shows(cluster, topic, "min.insync.replicas", None)
    http_shows(cluster, topic, "retention.ms", "7000")

    follower_id = next(n for n in cluster.nodes if n != leader_id)
    confluent_incremental(admin, topic, "min.insync.replicas", "3")
    leader = cluster.nodes[leader_id]
    cluster.kill(follower_id)
    try:
        wait_for(
            lambda: produce(leader, topic, batch_of(b"v"))["error_code"] == NOT_ENOUGH_REPLICAS,
            deadline_s=DEADLINE_S,
            what="acks=all refused with the ISR below min.insync.replicas=3",
        )
        confluent_incremental(admin, topic, "min.insync.replicas", None)  # the broker's 2
        wait_for(
            lambda: produce(leader, topic, batch_of(b"v"))["error_code"] == 0,
            deadline_s=DEADLINE_S,
            what="acks=all accepted by the 2 in sync once min.insync.replicas is deleted",
        )
    finally:
        cluster.start(follower_id)
    wait_until_ready(cluster)


def test_broker_configs_describe_read_only_and_refuse_alters(cluster: LocalCluster) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource, ResourceType

    admin = confluent_admin(cluster)
    described = confluent_describe(admin, ResourceType.BROKER, "2")
    assert described["node.id"].value == "2"
    assert all(entry.is_read_only for entry in described.values())

    resource = ConfigResource(ResourceType.BROKER, "2", set_config={"log.retention.ms": "1"})
    (future,) = admin.alter_configs([resource]).values()
    with pytest.raises(KafkaException) as raised:
        future.result(timeout=DEADLINE_S)
    error = raised.value.args[0]
    assert error.code() == INVALID_REQUEST
    assert "broker configs are static" in error.str()


# -- aiokafka ----------------------------------------------------------------------------------


def test_aiokafka_describes_and_alters_topic_configs(cluster: LocalCluster) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    topic = "cfg-aio"
    in_sync_topic(cluster, topic)

    async def run() -> tuple[Any, Any, Any]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap(cluster))
        await admin.start()
        try:
            changes = {"retention.ms": "5000", "cleanup.policy": "compact,delete"}
            resource = ConfigResource(ConfigResourceType.TOPIC, topic, changes)
            (altered,) = await admin.alter_configs([resource])
            wanted = ConfigResource(ConfigResourceType.TOPIC, topic, dict.fromkeys(changes))
            (described,) = await admin.describe_configs([wanted], include_synonyms=True)
            invalid = ConfigResource(ConfigResourceType.TOPIC, topic, {"segment.bytes": "1"})
            (refused,) = await admin.alter_configs([invalid])
            return altered, described, refused
        finally:
            await admin.close()

    altered, described, refused = asyncio.run(run())
    assert [entry[0] for entry in altered.resources] == [0]
    (resource,) = described.resources
    entries = {entry[0]: entry for entry in resource[4]}
    assert entries["retention.ms"][1] == "5000"
    assert entries["retention.ms"][3] == 1  # DYNAMIC_TOPIC_CONFIG
    assert [synonym[0] for synonym in entries["retention.ms"][5]] == [
        "retention.ms",
        "log.retention.ms",
    ]
    assert entries["cleanup.policy"][1] == "compact,delete"
    ((error_code, message, *_),) = refused.resources
    assert error_code == 40  # INVALID_CONFIG
    assert "'segment.bytes'" in message
    http_shows(cluster, topic, "retention.ms", "5000")


def test_a_log_append_time_topic_gives_librdkafka_the_brokers_append_time(
    cluster: LocalCluster,
) -> None:
    """message.timestamp.type=LogAppendTime: the delivery report and the consumer both see
    the leader's append time, not the producer's (old) timestamp."""
    import confluent_kafka
    from confluent_kafka.admin import NewTopic

    topic = "cfg-append-time"
    admin = confluent_admin(cluster)
    config = {"message.timestamp.type": "LogAppendTime"}
    (future,) = admin.create_topics([NewTopic(topic, 1, 3, config=config)]).values()
    future.result(timeout=DEADLINE_S)
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_bootstrap(cluster)})
    delivered: list[tuple[int, int]] = []
    producer.produce(
        topic,
        value=b"v",
        timestamp=1_000,
        on_delivery=lambda error, message: delivered.append(message.timestamp()),
    )
    assert producer.flush(DEADLINE_S) == 0
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": kafka_bootstrap(cluster), "group.id": "append-time"}
    )
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, 0, 0)])
        message = wait_for(
            lambda: next(
                (m for m in [consumer.poll(0.5)] if m is not None and m.error() is None), None
            ),
            deadline_s=DEADLINE_S,
            what="the record",
        )
    finally:
        consumer.close()
    ((timestamp_type, append_time),) = delivered
    assert timestamp_type == confluent_kafka.TIMESTAMP_LOG_APPEND_TIME
    assert append_time > 1_000
    assert message.timestamp() == (confluent_kafka.TIMESTAMP_LOG_APPEND_TIME, append_time)
