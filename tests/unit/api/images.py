"""Real MetadataImages for the admin route, health and metrics tests, built by applying
metadata records, with short helpers for the usual shapes of a cluster."""

from __future__ import annotations

from kraft.controller.image import MetadataImage
from kraft.controller.records import (
    NO_LEADER,
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    Endpoint,
    MetadataRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
)


class ImageBuilder:
    """Applies records to a fresh image at consecutive offsets."""

    def __init__(self) -> None:
        self.image = MetadataImage()
        self._offset = 0

    def apply(self, record: MetadataRecord) -> None:
        self._offset += 1
        self.image.apply(record, self._offset)

    def broker(
        self,
        broker_id: int,
        *,
        rack: str | None = None,
        fenced: bool = False,
        in_controlled_shutdown: bool = False,
    ) -> None:
        shift = 100 * (broker_id - 1)
        endpoints = (
            Endpoint("CLIENT", "127.0.0.1", 9092 + shift),
            Endpoint("RPC", "127.0.0.1", 9093 + shift),
            Endpoint("HTTP", "127.0.0.1", 8082 + shift),
        )
        epoch = self._offset + 1
        self.apply(
            RegisterBrokerRecord(broker_id, f"inc-{broker_id}", epoch, endpoints, rack, fenced)
        )
        if in_controlled_shutdown:
            self.apply(
                BrokerRegistrationChangeRecord(broker_id, epoch, in_controlled_shutdown=True)
            )

    def topic(
        self,
        name: str,
        assignment: list[tuple[int, ...]],
        *,
        leaders: dict[int, int] | None = None,
        isrs: dict[int, tuple[int, ...]] | None = None,
    ) -> str:
        """Partition p gets replicas assignment[p], led by its first replica and fully in
        sync unless `leaders` / `isrs` say otherwise. Returns the topic id."""
        topic_id = f"{name}-id"
        self.apply(TopicRecord(name, topic_id))
        for p, replicas in enumerate(assignment):
            isr = (isrs or {}).get(p, replicas)
            leader = (leaders or {}).get(p, isr[0])
            self.apply(PartitionRecord(topic_id, p, replicas, isr, leader, 0, 0))
        return topic_id

    def remove_topic(self, name: str) -> None:
        topic = self.image.topic(name)
        assert topic is not None
        self.apply(RemoveTopicRecord(topic.topic_id))

    def config(self, resource_type: str, resource_name: str, name: str, value: str | None) -> None:
        self.apply(ConfigRecord(resource_type, resource_name, name, value))


def sample_builder() -> ImageBuilder:
    """Brokers 1 (rack r1), 2 (rack r2) and 3 (fenced). Topic "orders": 3 partitions of
    RF 3, each led by its preferred leader, partition 2 under-replicated (ISR 3,1). Topic
    "audit.log": one partition on broker 3 only, leaderless. "orders" sets
    retention.ms=60000."""
    builder = ImageBuilder()
    builder.broker(1, rack="r1")
    builder.broker(2, rack="r2")
    builder.broker(3, fenced=True)
    builder.topic("orders", [(1, 2, 3), (2, 3, 1), (3, 1, 2)], isrs={2: (3, 1)})
    builder.topic("audit.log", [(3,)], leaders={0: NO_LEADER})
    builder.config("topic", "orders", "retention.ms", "60000")
    return builder


def healthy_builder() -> ImageBuilder:
    """Brokers 1, 2, 3, all live; topic "orders" with 2 partitions of RF 3, all in sync and
    led by their preferred leaders."""
    builder = ImageBuilder()
    for broker_id in (1, 2, 3):
        builder.broker(broker_id)
    builder.topic("orders", [(1, 2, 3), (2, 3, 1)])
    return builder
