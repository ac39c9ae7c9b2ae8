"""The records of the cluster metadata log (after Kafka's metadata record schemas).

Every change to the cluster is one of these, proposed by the active controller through the
quorum and applied, in log order, to the MetadataImage of every node. They are plain frozen
values; kraft.controller.serde turns them into bytes (a type tag, a version, the fields).
Tags and field order are part of the on-disk format: never reuse or renumber a tag; add fields
at the end with a default and bump the record's version.
"""

from __future__ import annotations

from dataclasses import dataclass

# Partition leader id when no replica can lead (Kafka's NO_LEADER).
NO_LEADER = -1


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # listener name: CLIENT, RPC or HTTP
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class RegisterBrokerRecord:
    """A broker (re)registered. A new broker epoch is the offset of this record, so each
    registration of a broker process is distinguishable; the broker starts fenced."""

    broker_id: int
    incarnation_id: str  # random per process start: tells a restart from a retry
    broker_epoch: int
    endpoints: tuple[Endpoint, ...]
    rack: str | None = None
    fenced: bool = True
    # version 1: the directory.id of the broker's log directory (meta.properties). A new
    # one for a registered broker means its partition data is gone (a new or wiped disk).
    log_dir_id: str | None = None


@dataclass(frozen=True, slots=True)
class UnregisterBrokerRecord:
    broker_id: int
    broker_epoch: int


@dataclass(frozen=True, slots=True)
class BrokerRegistrationChangeRecord:
    """Fencing, unfencing and controlled shutdown of a registered broker. None = unchanged."""

    broker_id: int
    broker_epoch: int
    fenced: bool | None = None
    in_controlled_shutdown: bool | None = None


@dataclass(frozen=True, slots=True)
class TopicRecord:
    name: str
    topic_id: str  # 22-character base64 uuid, like Kafka's


@dataclass(frozen=True, slots=True)
class PartitionRecord:
    """A partition as created (or fully re-stated)."""

    topic_id: str
    partition_id: int
    replicas: tuple[int, ...]  # the first is the preferred leader
    isr: tuple[int, ...]
    leader: int  # NO_LEADER when none
    leader_epoch: int
    partition_epoch: int
    elr: tuple[int, ...] = ()  # version 1: eligible leader replicas (KIP-966)


@dataclass(frozen=True, slots=True)
class PartitionChangeRecord:
    """A change of leader, ISR or replicas. None = unchanged. Applying it bumps the
    partition epoch; a change of leader also bumps the leader epoch."""

    topic_id: str
    partition_id: int
    leader: int | None = None
    isr: tuple[int, ...] | None = None
    replicas: tuple[int, ...] | None = None
    unclean: bool = False  # the new leader was not in the ISR (unclean election)
    elr: tuple[int, ...] | None = None  # version 1: eligible leader replicas (KIP-966)


@dataclass(frozen=True, slots=True)
class RemoveTopicRecord:
    topic_id: str


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    """Sets (value) or deletes (value None) one config of a resource."""

    resource_type: str  # "topic" or "broker"
    resource_name: str  # topic name, or broker id as text ("" = cluster default)
    name: str
    value: str | None


MetadataRecord = (
    RegisterBrokerRecord
    | UnregisterBrokerRecord
    | BrokerRegistrationChangeRecord
    | TopicRecord
    | PartitionRecord
    | PartitionChangeRecord
    | RemoveTopicRecord
    | ConfigRecord
)

# Wire tags (on-disk format): never reuse or renumber.
RECORD_TYPES: dict[int, type] = {
    1: RegisterBrokerRecord,
    2: UnregisterBrokerRecord,
    3: BrokerRegistrationChangeRecord,
    4: TopicRecord,
    5: PartitionRecord,
    6: PartitionChangeRecord,
    7: RemoveTopicRecord,
    8: ConfigRecord,
}
