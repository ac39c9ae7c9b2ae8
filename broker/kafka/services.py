"""What the Kafka front end needs from the node, as small protocols (tests pass fakes):
the replica manager's data operations, the controller gateway's topic administration, and
read-only views of the metadata image, cluster id and active controller."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from broker.partitions.manager import (
    OffsetLookup,
    PartitionFetch,
    PartitionFetchResult,
    ProduceResult,
)
from kraft.controller.image import MetadataImage

if TYPE_CHECKING:  # the coordinator needs the protocols above
    from broker.kafka.groups.coordinator import GroupCoordinator


class DataOperations(Protocol):
    """broker.partitions.manager.ReplicaManager"""

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


@dataclass(frozen=True, slots=True)
class BrokerServices:
    node_id: int
    data: DataOperations
    admin: AdminOperations
    image: Callable[[], MetadataImage]
    cluster_id: Callable[[], str]
    controller_id: Callable[[], int | None]  # the quorum leader, if known
    groups: GroupCoordinator | None = None  # consumer groups (None: not served)
