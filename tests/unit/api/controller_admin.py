"""An AdminFacade backed by the real pure QuorumController, without the quorum: each write is
decided by a controller over the committed image (as the active controller's service does)
and its records are applied to that image at once, as if committed. Route tests use it to
see the controller's own refusals travel through the HTTP API unchanged."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from kraft.controller.controller import ControllerResult, ControllerSettings, QuorumController
from kraft.controller.image import MetadataImage
from tests.unit.api.fakes import CLUSTER_ID
from tests.unit.api.images import ImageBuilder

SETTINGS = ControllerSettings(
    default_partitions=2,
    default_replication_factor=2,
    min_insync_replicas=1,
    unclean_leader_election_enable=False,
    broker_session_timeout_ms=9000,
)


class ControllerAdmin:
    def __init__(self, builder: ImageBuilder, settings: ControllerSettings = SETTINGS) -> None:
        self.node_id = 1
        self.cluster_id = CLUSTER_ID
        self._builder = builder
        self._settings = settings
        self._topic_ids = (f"topic-{n}" for n in itertools.count(1))

    def metadata_image(self) -> MetadataImage:
        return self._builder.image

    def controller_id(self) -> int | None:
        return 1

    def metadata_lag(self) -> int:
        return 0

    async def catch_up_metadata(self) -> bool:
        return True  # every write commits and applies before it returns

    def _controller(self) -> QuorumController:
        return QuorumController(self._builder.image, self._settings, lambda: next(self._topic_ids))

    def _commit(self, result: ControllerResult) -> None:
        for record in result.records:
            self._builder.apply(record)

    async def create_topic(
        self,
        name: str,
        partitions: int | None,
        replication_factor: int | None,
        configs: Mapping[str, str],
        validate_only: bool = False,
    ) -> None:
        self._commit(
            self._controller().create_topic(
                name, partitions, replication_factor, configs, validate_only
            )
        )

    async def delete_topic(self, name: str) -> None:
        self._commit(self._controller().delete_topic(name))

    async def create_partitions(self, name: str, total_count: int) -> None:
        self._commit(self._controller().create_partitions(name, total_count))

    async def alter_topic_configs(
        self,
        name: str,
        set_configs: Mapping[str, str],
        delete_configs: Sequence[str] = (),
        validate_only: bool = False,
    ) -> None:
        self._commit(
            self._controller().alter_topic_configs(name, set_configs, delete_configs, validate_only)
        )
