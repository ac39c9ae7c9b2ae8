"""What the Kafka front end needs from the node, as small protocols (tests pass fakes):
the replica manager's data operations, the controller gateway's topic administration, and
read-only views of the metadata image, cluster id, active controller and node configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from broker.partitions.manager import (
    EpochEndOffset,
    OffsetLookup,
    PartitionFetch,
    PartitionFetchResult,
    ProduceResult,
    ReplicaSettings,
)
from kraft.controller.image import MetadataImage

if TYPE_CHECKING:  # the coordinator needs the protocols above
    from broker.kafka.groups.coordinator import GroupCoordinator


class DataOperations(Protocol):
    """broker.partitions.manager.ReplicaManager"""

    @property
    def settings(self) -> ReplicaSettings:
        """The broker-wide defaults of topic configs, as the data plane applies them."""
        ...

    async def produce(
        self, topic: str, partition_id: int, records: bytes, acks: int, timeout_ms: int
    ) -> ProduceResult: ...

    async def fetch(
        self,
        replica_id: int,
        replica_epoch: int,
        requests: Sequence[PartitionFetch],
        max_wait_ms: int,
        min_bytes: int,
        max_bytes: int,
    ) -> list[PartitionFetchResult]: ...

    def list_offset(self, topic: str, partition_id: int, timestamp_ms: int) -> OffsetLookup: ...

    def end_offset_for_epoch(
        self, topic: str, partition_id: int, current_leader_epoch: int, leader_epoch: int
    ) -> EpochEndOffset: ...


class AdminOperations(Protocol):
    """broker.controller_gateway.ControllerGateway; refusals raise ControllerError."""

    async def create_topic(
        self,
        name: str,
        partitions: int | None,
        replication_factor: int | None,
        configs: Mapping[str, str],
        validate_only: bool = False,
    ) -> None: ...

    async def delete_topic(self, name: str) -> None: ...

    async def create_partitions(self, name: str, total_count: int) -> None: ...

    async def alter_topic_configs(
        self,
        name: str,
        set_configs: Mapping[str, str],
        delete_configs: Sequence[str] = (),
        validate_only: bool = False,
    ) -> None: ...

    async def catch_up_metadata(self) -> bool:
        """See broker.api.facade.AdminFacade.catch_up_metadata."""
        ...


class ProducerIds(Protocol):
    """broker.kafka.producers.ProducerIdAllocator; refusals raise ProducerIdsUnavailableError."""

    def allocate(self) -> int: ...


@dataclass(frozen=True, slots=True)
class BrokerServices:
    node_id: int
    data: DataOperations
    admin: AdminOperations
    image: Callable[[], MetadataImage]
    cluster_id: Callable[[], str]
    controller_id: Callable[[], int | None]  # the quorum leader, if known
    # The node's effective configuration (kraft.config NodeConfig.raw), for DescribeConfigs;
    # empty: what data.settings shows is all that is known.
    broker_config: Mapping[str, str] = field(default_factory=dict)
    producer_ids: ProducerIds | None = None  # InitProducerId (None: COORDINATOR_NOT_AVAILABLE)
    groups: GroupCoordinator | None = None  # consumer groups (None: not served)
    # auto.create.topics.enable: a Metadata request may create the topics it names
    auto_create_topics: bool = False
