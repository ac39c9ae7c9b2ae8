"""The MetadataImage: the cluster's metadata as the records of the metadata log build it.

Pure and deterministic: the same records in the same order give an equal image on every node.
`apply` asserts each record's invariants (leader in the ISR, ISR within the replicas, epochs
never going back): the controller validates before it proposes, so a record that breaks one
is a bug, and the node must stop rather than diverge from the others.

Values handed out (registrations, TopicImage and its partitions map) are immutable: applying a
record replaces them, never changes them in place, so a reader may keep what it got. `copy()`
copies only the top-level maps (copy-on-write per broker, topic and config resource).

Equality compares content (brokers, topics, configs, next_broker_epoch), not `applied_offset`:
the controller's working image and an image replayed from the committed log hold the same
records at different offsets (the log also holds the quorum's control entries).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from kraft.controller.records import (
    NO_LEADER,
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    Endpoint,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnregisterBrokerRecord,
)

TOPIC_RESOURCE = "topic"
BROKER_RESOURCE = "broker"


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    broker_id: int
    incarnation_id: str
    broker_epoch: int
    endpoints: tuple[Endpoint, ...]
    rack: str | None
    fenced: bool
    in_controlled_shutdown: bool
    log_dir_id: str | None = None  # directory.id of its log directory, when it said

    def endpoint(self, name: str) -> Endpoint | None:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        return None


@dataclass(frozen=True, slots=True)
class PartitionRegistration:
    topic_id: str
    partition_id: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    # Eligible leader replicas (KIP-966): replicas that left the ISR while it was smaller
    # than min.insync.replicas. The high watermark does not advance then, so each holds
    # every committed record and may lead cleanly when no ISR member can.
    elr: tuple[int, ...] = ()

    @property
    def has_leader(self) -> bool:
        return self.leader != NO_LEADER

    @property
    def preferred_leader(self) -> int:
        return self.replicas[0]


@dataclass(frozen=True, slots=True)
class TopicImage:
    name: str
    topic_id: str
    partitions: Mapping[int, PartitionRegistration]  # never mutated: replaced on change


def check_partition_invariants(partition: PartitionRegistration) -> None:
    """Asserts what must hold of every partition of every image (one fact per assert)."""
    name = f"partition {partition.topic_id}/{partition.partition_id}"
    assert partition.partition_id >= 0, f"{name}: negative partition id"
    assert partition.replicas, f"{name}: no replicas"
    assert len(set(partition.replicas)) == len(partition.replicas), f"{name}: duplicate replica"
    # Empty only when the last member lost its data (KIP-966): nothing may lead cleanly.
    assert partition.isr or partition.leader == NO_LEADER, f"{name}: empty ISR with a leader"
    assert len(set(partition.isr)) == len(partition.isr), f"{name}: duplicate ISR member"
    assert set(partition.isr) <= set(partition.replicas), f"{name}: ISR outside the replicas"
    assert partition.leader == NO_LEADER or partition.leader in partition.isr, (
        f"{name}: leader {partition.leader} not in the ISR {partition.isr}"
    )
    assert len(set(partition.elr)) == len(partition.elr), f"{name}: duplicate ELR member"
    assert set(partition.elr) <= set(partition.replicas), f"{name}: ELR outside the replicas"
    assert not set(partition.elr) & set(partition.isr), f"{name}: ELR member in the ISR"
    assert partition.leader_epoch >= 0, f"{name}: negative leader epoch"
    assert partition.partition_epoch >= 0, f"{name}: negative partition epoch"


class MetadataImage:
    def __init__(self) -> None:
        self._brokers: dict[int, BrokerRegistration] = {}
        self._topics_by_id: dict[str, TopicImage] = {}
        self._topic_ids_by_name: dict[str, str] = {}
        # (resource type, resource name) -> configs; inner maps are replaced, never mutated
        self._configs: dict[tuple[str, str], dict[str, str]] = {}
        self.applied_offset = -1
        self.next_broker_epoch = 0

    # -- reads -------------------------------------------------------------------------------

    @property
    def brokers(self) -> Mapping[int, BrokerRegistration]:
        return self._brokers

    @property
    def topics_by_id(self) -> Mapping[str, TopicImage]:
        return self._topics_by_id

    def topic(self, name: str) -> TopicImage | None:
        topic_id = self._topic_ids_by_name.get(name)
        return None if topic_id is None else self._topics_by_id[topic_id]

    def topic_names(self) -> list[str]:
        return sorted(self._topic_ids_by_name)

    def configs(self, resource_type: str, resource_name: str) -> Mapping[str, str]:
        return self._configs.get((resource_type, resource_name), {})

    def partition(self, topic_id: str, partition_id: int) -> PartitionRegistration | None:
        topic = self._topics_by_id.get(topic_id)
        return None if topic is None else topic.partitions.get(partition_id)

    def live_brokers(self) -> list[int]:
        """Registered, not fenced, not in controlled shutdown: may lead and join ISRs."""
        return sorted(
            broker.broker_id
            for broker in self._brokers.values()
            if not broker.fenced and not broker.in_controlled_shutdown
        )

    def fenced_brokers(self) -> list[int]:
        return sorted(broker.broker_id for broker in self._brokers.values() if broker.fenced)

    def partition_count(self) -> int:
        return sum(len(topic.partitions) for topic in self._topics_by_id.values())

    def offline_partitions(self) -> list[tuple[str, int]]:
        """(topic name, partition id) of every partition without a leader, sorted."""
        return self._partitions_where(lambda partition: not partition.has_leader)

    def under_replicated_partitions(self) -> list[tuple[str, int]]:
        """(topic name, partition id) of every partition whose ISR is smaller than its
        replicas, sorted."""
        return self._partitions_where(
            lambda partition: len(partition.isr) < len(partition.replicas)
        )

    def _partitions_where(
        self, predicate: Callable[[PartitionRegistration], bool]
    ) -> list[tuple[str, int]]:
        return sorted(
            (topic.name, partition.partition_id)
            for topic in self._topics_by_id.values()
            for partition in topic.partitions.values()
            if predicate(partition)
        )

    # -- copies, snapshots, equality ---------------------------------------------------------

    def copy(self) -> MetadataImage:
        """An image that later applies never share: O(brokers + topics), values are shared."""
        other = MetadataImage()
        other._brokers = dict(self._brokers)
        other._topics_by_id = dict(self._topics_by_id)
        other._topic_ids_by_name = dict(self._topic_ids_by_name)
        other._configs = dict(self._configs)
        other.applied_offset = self.applied_offset
        other.next_broker_epoch = self.next_broker_epoch
        return other

    def to_records(self) -> list[MetadataRecord]:
        """A minimal list of records that rebuilds an equal image (with `next_broker_epoch`
        restored separately: an unregistered broker's epoch is in no record)."""
        records: list[MetadataRecord] = []
        for broker in sorted(self._brokers.values(), key=lambda b: b.broker_id):
            records.extend(_broker_records(broker))
        for name in self.topic_names():
            topic = self._topics_by_id[self._topic_ids_by_name[name]]
            records.append(TopicRecord(name=topic.name, topic_id=topic.topic_id))
            records.extend(_partition_record(topic.partitions[i]) for i in sorted(topic.partitions))
        for resource_type, resource_name in sorted(self._configs):
            configs = self._configs[(resource_type, resource_name)]
            records.extend(
                ConfigRecord(resource_type, resource_name, key, configs[key])
                for key in sorted(configs)
            )
        return records

    @staticmethod
    def from_records(
        records: list[MetadataRecord], applied_offset: int, next_broker_epoch: int
    ) -> MetadataImage:
        """The image a snapshot describes: `records` from to_records() at `applied_offset`."""
        image = MetadataImage()
        for record in records:
            image._apply(record)
        assert next_broker_epoch >= image.next_broker_epoch, (
            f"next broker epoch {next_broker_epoch} below a registered broker's epoch"
        )
        image.applied_offset = applied_offset
        image.next_broker_epoch = next_broker_epoch
        return image

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetadataImage):
            return NotImplemented
        return (
            self._brokers == other._brokers
            and self._topics_by_id == other._topics_by_id
            and self._configs == other._configs
            and self.next_broker_epoch == other.next_broker_epoch
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"MetadataImage(applied_offset={self.applied_offset}, brokers={len(self._brokers)}, "
            f"topics={len(self._topics_by_id)}, partitions={self.partition_count()})"
        )

    # -- applying records --------------------------------------------------------------------

    def apply(self, record: MetadataRecord, offset: int) -> None:
        self.apply_batch((record,), offset)

    def apply_batch(self, records: Sequence[MetadataRecord], offset: int) -> None:
        """Applies the records of one log entry (one controller decision) in order."""
        assert offset > self.applied_offset, (
            f"record at offset {offset} after offset {self.applied_offset}"
        )
        for record in records:
            self._apply(record)
        self.applied_offset = offset

    def _apply(self, record: MetadataRecord) -> None:
        if isinstance(record, RegisterBrokerRecord):
            self._register_broker(record)
        elif isinstance(record, UnregisterBrokerRecord):
            self._unregister_broker(record)
        elif isinstance(record, BrokerRegistrationChangeRecord):
            self._change_broker(record)
        elif isinstance(record, TopicRecord):
            self._add_topic(record)
        elif isinstance(record, PartitionRecord):
            self._put_partition(record)
        elif isinstance(record, PartitionChangeRecord):
            self._change_partition(record)
        elif isinstance(record, RemoveTopicRecord):
            self._remove_topic(record)
        else:
            assert isinstance(record, ConfigRecord), f"unknown record {record!r}"
            self._set_config(record)

    def _register_broker(self, record: RegisterBrokerRecord) -> None:
        assert record.broker_id >= 0, f"negative broker id {record.broker_id}"
        assert record.broker_epoch >= 0, f"negative broker epoch {record.broker_epoch}"
        previous = self._brokers.get(record.broker_id)
        assert previous is None or record.broker_epoch > previous.broker_epoch, (
            f"broker {record.broker_id} registered with epoch {record.broker_epoch}, "
            f"not above its epoch {previous.broker_epoch}"
        )
        self._brokers[record.broker_id] = BrokerRegistration(
            broker_id=record.broker_id,
            incarnation_id=record.incarnation_id,
            broker_epoch=record.broker_epoch,
            endpoints=record.endpoints,
            rack=record.rack,
            fenced=record.fenced,
            in_controlled_shutdown=False,
            log_dir_id=record.log_dir_id,
        )
        self.next_broker_epoch = max(self.next_broker_epoch, record.broker_epoch + 1)

    def _registered(self, broker_id: int, broker_epoch: int) -> BrokerRegistration:
        broker = self._brokers.get(broker_id)
        assert broker is not None, f"broker {broker_id} is not registered"
        assert broker.broker_epoch == broker_epoch, (
            f"broker {broker_id} has epoch {broker.broker_epoch}, record says {broker_epoch}"
        )
        return broker

    def _unregister_broker(self, record: UnregisterBrokerRecord) -> None:
        self._registered(record.broker_id, record.broker_epoch)
        del self._brokers[record.broker_id]

    def _change_broker(self, record: BrokerRegistrationChangeRecord) -> None:
        broker = self._registered(record.broker_id, record.broker_epoch)
        if record.fenced is not None:
            broker = replace(broker, fenced=record.fenced)
        if record.in_controlled_shutdown is not None:
            broker = replace(broker, in_controlled_shutdown=record.in_controlled_shutdown)
        self._brokers[record.broker_id] = broker

    def _add_topic(self, record: TopicRecord) -> None:
        assert record.name not in self._topic_ids_by_name, f"topic {record.name!r} exists"
        assert record.topic_id not in self._topics_by_id, f"topic id {record.topic_id} exists"
        self._topics_by_id[record.topic_id] = TopicImage(record.name, record.topic_id, {})
        self._topic_ids_by_name[record.name] = record.topic_id

    def _put_partition(self, record: PartitionRecord) -> None:
        topic = self._topics_by_id.get(record.topic_id)
        assert topic is not None, f"partition of unknown topic {record.topic_id}"
        partition = PartitionRegistration(
            topic_id=record.topic_id,
            partition_id=record.partition_id,
            replicas=record.replicas,
            isr=record.isr,
            leader=record.leader,
            leader_epoch=record.leader_epoch,
            partition_epoch=record.partition_epoch,
            elr=record.elr,
        )
        previous = topic.partitions.get(record.partition_id)
        if previous is not None:  # a re-statement: epochs never go back
            assert partition.leader_epoch >= previous.leader_epoch, "leader epoch went back"
            assert partition.partition_epoch > previous.partition_epoch, "partition epoch"
        self._replace_partition(topic, partition)

    def _change_partition(self, record: PartitionChangeRecord) -> None:
        topic = self._topics_by_id.get(record.topic_id)
        assert topic is not None, f"change of unknown topic {record.topic_id}"
        previous = topic.partitions.get(record.partition_id)
        assert previous is not None, f"change of unknown partition {record.partition_id}"
        leader_changed = record.leader is not None and record.leader != previous.leader
        partition = replace(
            previous,
            replicas=previous.replicas if record.replicas is None else record.replicas,
            isr=previous.isr if record.isr is None else record.isr,
            leader=previous.leader if record.leader is None else record.leader,
            leader_epoch=previous.leader_epoch + (1 if leader_changed else 0),
            partition_epoch=previous.partition_epoch + 1,
            elr=previous.elr if record.elr is None else record.elr,
        )
        assert not record.unclean or (leader_changed and partition.leader not in previous.isr), (
            "an unclean election names a new leader from outside the previous ISR"
        )
        self._replace_partition(topic, partition)

    def _replace_partition(self, topic: TopicImage, partition: PartitionRegistration) -> None:
        check_partition_invariants(partition)
        partitions = dict(topic.partitions)
        partitions[partition.partition_id] = partition
        self._topics_by_id[topic.topic_id] = replace(topic, partitions=partitions)

    def _remove_topic(self, record: RemoveTopicRecord) -> None:
        topic = self._topics_by_id.pop(record.topic_id, None)
        assert topic is not None, f"removal of unknown topic {record.topic_id}"
        del self._topic_ids_by_name[topic.name]
        self._configs.pop((TOPIC_RESOURCE, topic.name), None)

    def _set_config(self, record: ConfigRecord) -> None:
        key = (record.resource_type, record.resource_name)
        assert record.resource_type in (TOPIC_RESOURCE, BROKER_RESOURCE), (
            f"unknown resource type {record.resource_type!r}"
        )
        assert record.resource_type != TOPIC_RESOURCE or record.resource_name in (
            self._topic_ids_by_name
        ), f"config of unknown topic {record.resource_name!r}"
        configs = dict(self._configs.get(key, {}))
        if record.value is None:
            configs.pop(record.name, None)
        else:
            configs[record.name] = record.value
        if configs:
            self._configs[key] = configs
        else:
            self._configs.pop(key, None)


def _broker_records(broker: BrokerRegistration) -> list[MetadataRecord]:
    records: list[MetadataRecord] = [
        RegisterBrokerRecord(
            broker_id=broker.broker_id,
            incarnation_id=broker.incarnation_id,
            broker_epoch=broker.broker_epoch,
            endpoints=broker.endpoints,
            rack=broker.rack,
            fenced=broker.fenced,
            log_dir_id=broker.log_dir_id,
        )
    ]
    if broker.in_controlled_shutdown:
        records.append(
            BrokerRegistrationChangeRecord(
                broker.broker_id, broker.broker_epoch, in_controlled_shutdown=True
            )
        )
    return records


def _partition_record(partition: PartitionRegistration) -> PartitionRecord:
    return PartitionRecord(
        topic_id=partition.topic_id,
        partition_id=partition.partition_id,
        replicas=partition.replicas,
        isr=partition.isr,
        leader=partition.leader,
        leader_epoch=partition.leader_epoch,
        partition_epoch=partition.partition_epoch,
        elr=partition.elr,
    )
