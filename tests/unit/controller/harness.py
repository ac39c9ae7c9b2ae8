"""ControllerHarness: a QuorumController with a clock, broker bookkeeping and a record log.

Every record a call returns is kept, so a test (or the `harness` fixture, after every test)
can check that replaying them into the starting image gives the controller's working image.
"""

from __future__ import annotations

from collections.abc import Mapping

from kraft.controller.controller import (
    ControllerResult,
    ControllerSettings,
    CreateTopicResponse,
    HeartbeatResponse,
    QuorumController,
)
from kraft.controller.image import MetadataImage, PartitionRegistration, TopicImage
from kraft.controller.records import MetadataRecord
from tests.unit.controller.builders import endpoints_of

SESSION_TIMEOUT_MS = 1_000

SETTINGS = ControllerSettings(
    default_partitions=3,
    default_replication_factor=3,
    min_insync_replicas=2,
    unclean_leader_election_enable=False,
    broker_session_timeout_ms=SESSION_TIMEOUT_MS,
)


class ControllerHarness:
    def __init__(
        self, settings: ControllerSettings = SETTINGS, image: MetadataImage | None = None
    ) -> None:
        self.start_image = (image or MetadataImage()).copy()
        self.settings = settings
        self.controller = QuorumController(self.start_image, settings, self._next_topic_id)
        self.records: list[MetadataRecord] = []
        self.epochs: dict[int, int] = {}
        self.now_ms = 0
        self._topic_count = 0

    def _next_topic_id(self) -> str:
        self._topic_count += 1
        return f"topic-id-{self._topic_count}"

    @property
    def image(self) -> MetadataImage:
        return self.controller.image

    def run(self, result: ControllerResult) -> object:
        self.records.extend(result.records)
        return result.response

    # -- brokers -------------------------------------------------------------------------------

    def register(
        self,
        broker_id: int,
        rack: str | None = None,
        incarnation: str = "a",
        log_dir_id: str | None = None,
    ) -> int:
        epoch = self.run(
            self.controller.register_broker(
                broker_id,
                f"{broker_id}-{incarnation}",
                endpoints_of(broker_id),
                rack,
                self.now_ms,
                log_dir_id,
            )
        )
        assert isinstance(epoch, int)
        self.epochs[broker_id] = epoch
        return epoch

    def heartbeat(
        self, broker_id: int, *, want_shutdown: bool = False, caught_up: bool = True
    ) -> HeartbeatResponse:
        response = self.run(
            self.controller.broker_heartbeat(
                broker_id,
                self.epochs[broker_id],
                applied_offset=100 if caught_up else 50,
                committed_offset=100,
                want_shutdown=want_shutdown,
                now_ms=self.now_ms,
            )
        )
        assert isinstance(response, HeartbeatResponse)
        return response

    def add_brokers(self, *broker_ids: int, racks: Mapping[int, str] | None = None) -> None:
        """Registered and unfenced (caught up)."""
        for broker_id in broker_ids:
            self.register(broker_id, rack=(racks or {}).get(broker_id))
            self.heartbeat(broker_id)

    def heartbeat_all_but(self, *silent: int) -> None:
        for broker_id in sorted(self.image.brokers):
            if broker_id not in silent and broker_id in self.epochs:
                self.heartbeat(broker_id)

    def tick(self, advance_ms: int = 0) -> tuple[int, ...]:
        self.now_ms += advance_ms
        fenced = self.run(self.controller.tick(self.now_ms))
        assert isinstance(fenced, tuple)
        return fenced

    def expire(self, *broker_ids: int) -> tuple[int, ...]:
        """Everyone else heartbeats; `broker_ids` go silent past their session timeout."""
        self.now_ms += SESSION_TIMEOUT_MS // 2
        self.heartbeat_all_but(*broker_ids)
        self.now_ms += SESSION_TIMEOUT_MS // 2 + 1
        self.heartbeat_all_but(*broker_ids)
        return self.tick()

    # -- topics and partitions -----------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int | None = None,
        replication_factor: int | None = None,
        configs: Mapping[str, str] | None = None,
    ) -> str:
        response = self.run(
            self.controller.create_topic(
                name, partitions, replication_factor, configs or {}, validate_only=False
            )
        )
        assert isinstance(response, CreateTopicResponse) and response.topic_id is not None
        return response.topic_id

    def topic(self, name: str) -> TopicImage:
        topic = self.image.topic(name)
        assert topic is not None, f"no topic {name!r}"
        return topic

    def partition(self, name: str, partition_id: int = 0) -> PartitionRegistration:
        return self.topic(name).partitions[partition_id]

    def alter_isr(self, name: str, partition_id: int, isr: tuple[int, ...]) -> object:
        """The ISR change as the partition's current leader asks it."""
        partition = self.partition(name, partition_id)
        return self.run(
            self.controller.alter_partition(
                partition.leader,
                self.epochs[partition.leader],
                partition.topic_id,
                partition_id,
                partition.leader_epoch,
                partition.partition_epoch,
                isr,
            )
        )

    def leaders(self) -> dict[tuple[str, int], int]:
        return {
            (name, partition_id): self.partition(name, partition_id).leader
            for name in self.image.topic_names()
            for partition_id in self.topic(name).partitions
        }

    # -- the replay check ----------------------------------------------------------------------

    def replayed(self) -> MetadataImage:
        """The starting image with every record applied, at offsets unlike the controller's."""
        image = self.start_image.copy()
        for index, record in enumerate(self.records):
            image.apply(record, self.start_image.applied_offset + 1000 + 3 * index)
        return image
