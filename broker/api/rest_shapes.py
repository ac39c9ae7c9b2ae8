"""JSON bodies of the Confluent REST v3 subset (SPEC §5), built from a MetadataImage.

Pure functions: each takes the base URL the request came in on (scheme, host and the
`/v3` or `/kafka/v3` prefix, so that `metadata.self` links lead back through the same
prefix) and values of the image, and returns Confluent's shape: `kind`, `metadata.self`,
`metadata.resource_name` (a CRN, `crn:///kafka=<cluster>/topic=<name>`), the resource's
fields, and `related` links. Lists are `{"kind": "...List", "metadata": {"self", "next"},
"data": [...]}`; we never page, so `next` is always null.

Our additions to Confluent's shapes, which Confluent clients ignore: `topic_id` on a topic,
`is_fenced` and `is_in_controlled_shutdown` on a broker (the command line's broker status).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from broker.kafka.groups.offsets_topic import OFFSETS_TOPIC
from kraft.controller.configs import TOPIC_CONFIG_CHECKS
from kraft.controller.image import (
    BrokerRegistration,
    MetadataImage,
    PartitionRegistration,
    TopicImage,
)
from kraft.controller.records import NO_LEADER

# The listener whose address a KafkaBroker shows: the one clients produce and fetch on.
BROKER_LISTENER = "CLIENT"

# Topic configs a topic answers for even when not set on it (then with its default source):
# every config the controller knows.
KNOWN_TOPIC_CONFIGS = tuple(sorted(TOPIC_CONFIG_CHECKS))
# The broker config whose value is the default of each topic config (Kafka's synonyms).
TOPIC_CONFIG_BROKER_SYNONYMS = {
    "cleanup.policy": "log.cleanup.policy",
    "max.message.bytes": "message.max.bytes",
    "min.insync.replicas": "min.insync.replicas",
    "retention.bytes": "log.retention.bytes",
    "retention.ms": "log.retention.ms",
    "segment.bytes": "log.segment.bytes",
    "unclean.leader.election.enable": "unclean.leader.election.enable",
    "segment.ms": "log.roll.ms",
    "delete.retention.ms": "log.cleaner.delete.retention.ms",
    "min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms",
    "max.compaction.lag.ms": "log.cleaner.max.compaction.lag.ms",
    "min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
    "message.timestamp.type": "log.message.timestamp.type",
}
# resource_name of the cluster-wide broker configs in the image ("" = cluster default).
CLUSTER_DEFAULT_BROKER = ""


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


def _link(url: str) -> dict[str, str]:
    return {"related": url}


def _metadata(self_url: str, resource_name: str) -> dict[str, Any]:
    return {"self": self_url, "resource_name": resource_name}


def resource_list(kind: str, self_url: str, items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"self": self_url, "next": None}, "data": list(items)}


def cluster_url(base: str, cluster_id: str) -> str:
    return f"{base}/clusters/{_segment(cluster_id)}"


def broker_url(base: str, cluster_id: str, broker_id: int) -> str:
    return f"{cluster_url(base, cluster_id)}/brokers/{broker_id}"


def topic_url(base: str, cluster_id: str, topic_name: str) -> str:
    return f"{cluster_url(base, cluster_id)}/topics/{_segment(topic_name)}"


def partition_url(base: str, cluster_id: str, topic_name: str, partition_id: int) -> str:
    return f"{topic_url(base, cluster_id, topic_name)}/partitions/{partition_id}"


def replica_url(
    base: str, cluster_id: str, topic_name: str, partition_id: int, broker_id: int
) -> str:
    return f"{partition_url(base, cluster_id, topic_name, partition_id)}/replicas/{broker_id}"


def _crn(cluster_id: str, *parts: tuple[str, str | int]) -> str:
    path = "".join(f"/{kind}={value}" for kind, value in parts)
    return f"crn:///kafka={cluster_id}{path}"


# --- clusters and brokers ------------------------------------------------------------------


def cluster_body(base: str, cluster_id: str, controller_id: int | None) -> dict[str, Any]:
    url = cluster_url(base, cluster_id)
    controller = None
    if controller_id is not None:
        controller = _link(broker_url(base, cluster_id, controller_id))
    return {
        "kind": "KafkaCluster",
        "metadata": _metadata(url, _crn(cluster_id)),
        "cluster_id": cluster_id,
        "controller": controller,
        "acls": _link(f"{url}/acls"),
        "brokers": _link(f"{url}/brokers"),
        "broker_configs": _link(f"{url}/broker-configs"),
        "consumer_groups": _link(f"{url}/consumer-groups"),
        "topics": _link(f"{url}/topics"),
        "partition_reassignments": _link(f"{url}/topics/-/partitions/-/reassignment"),
    }


def broker_body(base: str, cluster_id: str, broker: BrokerRegistration) -> dict[str, Any]:
    url = broker_url(base, cluster_id, broker.broker_id)
    endpoint = broker.endpoint(BROKER_LISTENER)
    if endpoint is None and broker.endpoints:
        endpoint = broker.endpoints[0]
    return {
        "kind": "KafkaBroker",
        "metadata": _metadata(url, _crn(cluster_id, ("broker", broker.broker_id))),
        "cluster_id": cluster_id,
        "broker_id": broker.broker_id,
        "host": None if endpoint is None else endpoint.host,
        "port": None if endpoint is None else endpoint.port,
        "rack": broker.rack,
        "is_fenced": broker.fenced,
        "is_in_controlled_shutdown": broker.in_controlled_shutdown,
        "configs": _link(f"{url}/configs"),
        "partition_replicas": _link(f"{url}/partition-replicas"),
    }


def broker_list_body(base: str, cluster_id: str, image: MetadataImage) -> dict[str, Any]:
    brokers = (image.brokers[broker_id] for broker_id in sorted(image.brokers))
    return resource_list(
        "KafkaBrokerList",
        f"{cluster_url(base, cluster_id)}/brokers",
        (broker_body(base, cluster_id, broker) for broker in brokers),
    )


# --- topics, partitions, replicas -----------------------------------------------------------


def replication_factor(topic: TopicImage) -> int:
    """Replicas of partition 0, as Kafka's tools report it (all partitions share it unless
    a reassignment changed one); 0 for a topic without partitions."""
    first = topic.partitions.get(0)
    if first is None:
        return 0
    return len(first.replicas)


def topic_body(
    base: str,
    cluster_id: str,
    name: str,
    *,
    topic_id: str | None,
    partitions_count: int | None,
    replication_factor: int | None,
) -> dict[str, Any]:
    url = topic_url(base, cluster_id, name)
    return {
        "kind": "KafkaTopic",
        "metadata": _metadata(url, _crn(cluster_id, ("topic", name))),
        "cluster_id": cluster_id,
        "topic_name": name,
        "topic_id": topic_id,
        "is_internal": name == OFFSETS_TOPIC,  # as Kafka's Metadata marks it
        "replication_factor": replication_factor,
        "partitions_count": partitions_count,
        "partitions": _link(f"{url}/partitions"),
        "configs": _link(f"{url}/configs"),
        "partition_reassignments": _link(f"{url}/partitions/-/reassignment"),
        "authorized_operations": [],
    }


def topic_image_body(base: str, cluster_id: str, topic: TopicImage) -> dict[str, Any]:
    return topic_body(
        base,
        cluster_id,
        topic.name,
        topic_id=topic.topic_id,
        partitions_count=len(topic.partitions),
        replication_factor=replication_factor(topic),
    )


def topic_list_body(base: str, cluster_id: str, image: MetadataImage) -> dict[str, Any]:
    topics = (image.topic(name) for name in sorted(image.topic_names()))
    return resource_list(
        "KafkaTopicList",
        f"{cluster_url(base, cluster_id)}/topics",
        (topic_image_body(base, cluster_id, topic) for topic in topics if topic is not None),
    )


def partition_body(
    base: str, cluster_id: str, topic_name: str, partition: PartitionRegistration
) -> dict[str, Any]:
    partition_id = partition.partition_id
    url = partition_url(base, cluster_id, topic_name, partition_id)
    leader = None
    if partition.leader != NO_LEADER:
        leader = _link(replica_url(base, cluster_id, topic_name, partition_id, partition.leader))
    return {
        "kind": "KafkaPartition",
        "metadata": _metadata(
            url, _crn(cluster_id, ("topic", topic_name), ("partition", partition_id))
        ),
        "cluster_id": cluster_id,
        "topic_name": topic_name,
        "partition_id": partition_id,
        "leader": leader,
        "replicas": _link(f"{url}/replicas"),
        "reassignment": _link(f"{url}/reassignment"),
    }


def partition_list_body(base: str, cluster_id: str, topic: TopicImage) -> dict[str, Any]:
    partitions = (topic.partitions[p] for p in sorted(topic.partitions))
    return resource_list(
        "KafkaPartitionList",
        f"{topic_url(base, cluster_id, topic.name)}/partitions",
        (partition_body(base, cluster_id, topic.name, p) for p in partitions),
    )


def replica_body(
    base: str,
    cluster_id: str,
    topic_name: str,
    partition: PartitionRegistration,
    broker_id: int,
) -> dict[str, Any]:
    partition_id = partition.partition_id
    url = replica_url(base, cluster_id, topic_name, partition_id, broker_id)
    return {
        "kind": "KafkaReplica",
        "metadata": _metadata(
            url,
            _crn(
                cluster_id,
                ("topic", topic_name),
                ("partition", partition_id),
                ("replica", broker_id),
            ),
        ),
        "cluster_id": cluster_id,
        "topic_name": topic_name,
        "partition_id": partition_id,
        "broker_id": broker_id,
        "is_leader": partition.leader == broker_id,
        "is_in_sync": broker_id in partition.isr,
        "broker": _link(broker_url(base, cluster_id, broker_id)),
    }


def replica_list_body(
    base: str, cluster_id: str, topic_name: str, partition: PartitionRegistration
) -> dict[str, Any]:
    # In the order of the replica list: the first is the preferred leader.
    return resource_list(
        "KafkaReplicaList",
        f"{partition_url(base, cluster_id, topic_name, partition.partition_id)}/replicas",
        (replica_body(base, cluster_id, topic_name, partition, b) for b in partition.replicas),
    )


# --- topic configs --------------------------------------------------------------------------


def topic_config_body(
    base: str,
    cluster_id: str,
    topic_name: str,
    name: str,
    image: MetadataImage,
) -> dict[str, Any]:
    """One config of a topic: its own value when set on the topic (source
    DYNAMIC_TOPIC_CONFIG), else the cluster-wide broker default when one is set
    (DYNAMIC_DEFAULT_BROKER_CONFIG), else the built-in default, which this API does not know
    (value null, DEFAULT_CONFIG)."""
    own = image.configs("topic", topic_name)
    defaults = image.configs("broker", CLUSTER_DEFAULT_BROKER)
    synonym = TOPIC_CONFIG_BROKER_SYNONYMS.get(name)
    synonyms: list[dict[str, Any]] = []
    if name in own:
        synonyms.append({"name": name, "value": own[name], "source": "DYNAMIC_TOPIC_CONFIG"})
    if synonym is not None and synonym in defaults:
        synonyms.append(
            {"name": synonym, "value": defaults[synonym], "source": "DYNAMIC_DEFAULT_BROKER_CONFIG"}
        )
    if synonyms:
        value, source = synonyms[0]["value"], synonyms[0]["source"]
    else:
        value, source = None, "DEFAULT_CONFIG"
    url = f"{topic_url(base, cluster_id, topic_name)}/configs/{_segment(name)}"
    return {
        "kind": "KafkaTopicConfig",
        "metadata": _metadata(url, _crn(cluster_id, ("topic", topic_name), ("config", name))),
        "cluster_id": cluster_id,
        "topic_name": topic_name,
        "name": name,
        "value": value,
        "is_default": source != "DYNAMIC_TOPIC_CONFIG",
        "is_read_only": False,
        "is_sensitive": False,
        "source": source,
        "synonyms": synonyms,
    }


def topic_config_names(topic_configs: Mapping[str, str]) -> list[str]:
    """The known topic configs and any other set on the topic, sorted by name."""
    return sorted(set(KNOWN_TOPIC_CONFIGS) | set(topic_configs))


def topic_config_list_body(
    base: str, cluster_id: str, topic_name: str, image: MetadataImage
) -> dict[str, Any]:
    names = topic_config_names(image.configs("topic", topic_name))
    return resource_list(
        "KafkaTopicConfigList",
        f"{topic_url(base, cluster_id, topic_name)}/configs",
        (topic_config_body(base, cluster_id, topic_name, name, image) for name in names),
    )
