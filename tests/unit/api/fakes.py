"""NodeFacade and AdminFacade fakes for the HTTP route tests, and sample quorum values."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from broker.api.facade import QuorumDescription, ReplicaDescription
from kraft.controller.configs import validate_config_name, validate_topic_configs
from kraft.controller.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    TopicExistsError,
    UnknownTopicError,
)
from kraft.controller.image import MetadataImage, TopicImage
from kraft.controller.records import PartitionRecord
from kraft.controller.topics import validate_topic_name
from kraft.raft.types import QuorumStatus, ReplicaStatus, Role
from tests.unit.api.images import ImageBuilder, sample_builder

CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qk"
NOW_UNIX_MS = 1_764_000_000_000


def leader_status(**changes: object) -> QuorumStatus:
    """Node 1 leading epoch 7 of a three-voter quorum with one observer (node 4)."""
    values: dict[str, object] = {
        "node_id": 1,
        "role": Role.LEADER,
        "epoch": 7,
        "leader_id": 1,
        "voted_id": 1,
        "high_watermark": 120,
        "log_start_offset": 5,
        "log_end_offset": 130,
        "voters": (1, 2, 3),
        "tick": 1000,
        "replicas": (
            ReplicaStatus(1, True, 130, 1000, 1000),
            ReplicaStatus(2, True, 130, 999, 999),
            ReplicaStatus(3, True, 100, 990, 900),
            ReplicaStatus(4, False, 125, 998, 995),
        ),
    }
    values.update(changes)
    return QuorumStatus(**values)  # type: ignore[arg-type]


def description(
    replicas: tuple[ReplicaDescription, ...] | None = None,
    leader_log_end_offset: int = 130,
) -> QuorumDescription:
    """The leader's view matching leader_status(): node 3 lags by 30 since 5 s ago."""
    if replicas is None:
        replicas = (
            ReplicaDescription(3, True, 100, NOW_UNIX_MS - 100, NOW_UNIX_MS - 5_000),
            ReplicaDescription(4, False, 125, NOW_UNIX_MS - 20, NOW_UNIX_MS - 50),
            ReplicaDescription(1, True, 130, NOW_UNIX_MS, NOW_UNIX_MS),
            ReplicaDescription(2, True, 130, NOW_UNIX_MS - 10, NOW_UNIX_MS - 10),
        )
    return QuorumDescription(
        cluster_id=CLUSTER_ID,
        leader_id=1,
        leader_epoch=7,
        high_watermark=120,
        leader_log_end_offset=leader_log_end_offset,
        voters=(1, 2, 3),
        observers=(4,),
        replicas=replicas,
        now_unix_ms=NOW_UNIX_MS,
    )


@dataclass
class FakeNode:
    """Answers from fixed values; `*_error` fields make the matching call raise."""

    node_id: int = 1
    cluster_id: str = CLUSTER_ID
    ready: bool = True
    status: QuorumStatus = field(default_factory=leader_status)
    quorum: QuorumDescription = field(default_factory=description)
    describe_error: BaseException | None = None
    put_error: BaseException | None = None
    kv: dict[str, str] = field(default_factory=dict)
    next_offset: int = 130
    put_calls: list[tuple[str, str]] = field(default_factory=list)

    def quorum_status(self) -> QuorumStatus:
        return self.status

    def tick_to_unix_ms(self, tick: int) -> int:
        return NOW_UNIX_MS - (self.status.tick - tick) * 10

    async def describe_quorum(self) -> QuorumDescription:
        if self.describe_error is not None:
            raise self.describe_error
        return self.quorum

    def is_ready(self) -> bool:
        return self.ready

    async def kv_put(self, key: str, value: str) -> int:
        self.put_calls.append((key, value))
        if self.put_error is not None:
            raise self.put_error
        self.kv[key] = value
        offset = self.next_offset
        self.next_offset += 1
        return offset

    def kv_get(self, key: str) -> str | None:
        return self.kv.get(key)


@dataclass
class FakeAdmin:
    """An AdminFacade over a real MetadataImage that its writes change by applying records,
    refusing as the controller does (the refusals the routes must pass through). `error`
    makes every write raise it; `calls` records each write that reached the facade;
    `elsewhere` holds writes committed through other nodes, applied here on catch-up."""

    builder: ImageBuilder = field(default_factory=sample_builder)
    node_id: int = 1
    cluster_id: str = CLUSTER_ID
    controller: int | None = 1
    lag: int = 0
    error: BaseException | None = None
    calls: list[tuple[object, ...]] = field(default_factory=list)
    elsewhere: list[Callable[[ImageBuilder], object]] = field(default_factory=list)

    def metadata_image(self) -> MetadataImage:
        return self.builder.image

    def controller_id(self) -> int | None:
        return self.controller

    def metadata_lag(self) -> int:
        return self.lag

    async def catch_up_metadata(self) -> bool:
        """Applies the writes made through other nodes (`elsewhere`) that this node has
        not applied yet; False, applying nothing, when `controller` is None."""
        if self.controller is None:
            return False
        while self.elsewhere:
            self.elsewhere.pop(0)(self.builder)
        return True

    def _begin(self, *call: object) -> None:
        self.calls.append(call)
        if self.error is not None:
            raise self.error

    def _existing(self, name: str) -> TopicImage:
        topic = self.builder.image.topic(name)
        if topic is None:
            raise UnknownTopicError(f"topic {name!r} not found")
        return topic

    async def create_topic(
        self,
        name: str,
        partitions: int | None,
        replication_factor: int | None,
        configs: Mapping[str, str],
        validate_only: bool = False,
    ) -> None:
        self._begin("create_topic", name, partitions, replication_factor, dict(configs))
        image = self.builder.image
        validate_topic_name(name)
        if image.topic(name) is not None:
            raise TopicExistsError(f"topic {name!r} already exists")
        live = image.live_brokers()
        replicas = replication_factor or 1
        if replicas > len(live):
            raise InvalidReplicationFactorError(
                f"replication factor {replicas} is larger than the {len(live)} live brokers"
            )
        validate_topic_configs(configs, replicas)
        if validate_only:
            return
        count = partitions or 1
        assignment = [
            tuple(live[(p + r) % len(live)] for r in range(replicas)) for p in range(count)
        ]
        self.builder.topic(name, assignment)
        for key, value in configs.items():
            self.builder.config("topic", name, key, value)

    async def delete_topic(self, name: str) -> None:
        self._begin("delete_topic", name)
        self._existing(name)
        self.builder.remove_topic(name)

    async def create_partitions(self, name: str, total_count: int) -> None:
        self._begin("create_partitions", name, total_count)
        topic = self._existing(name)
        if total_count <= len(topic.partitions):
            raise InvalidPartitionsError(
                f"topic {name!r} has {len(topic.partitions)} partitions; {total_count} "
                "would not grow it"
            )
        first = topic.partitions[0]
        for p in range(len(topic.partitions), total_count):
            self.builder.apply(
                PartitionRecord(
                    topic.topic_id, p, first.replicas, first.replicas, first.replicas[0], 0, 0
                )
            )

    async def alter_topic_configs(
        self,
        name: str,
        set_configs: Mapping[str, str],
        delete_configs: Sequence[str] = (),
        validate_only: bool = False,
    ) -> None:
        self._begin("alter_topic_configs", name, dict(set_configs), list(delete_configs))
        topic = self._existing(name)
        for key in delete_configs:
            validate_config_name(key)
        validate_topic_configs(set_configs, len(topic.partitions[0].replicas))
        if validate_only:
            return
        for key, value in set_configs.items():
            self.builder.config("topic", name, key, value)
        for key in delete_configs:
            self.builder.config("topic", name, key, None)
