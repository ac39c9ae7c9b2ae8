"""A real ReplicaManager for broker 1 over a metadata image the test builds, for partitions
it alone replicates (nothing is asked of the controller or of other brokers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from broker.partitions.manager import ReplicaManager, ReplicaSettings
from tests.unit.api.images import ImageBuilder


async def _never(*_: Any) -> dict[str, Any]:
    raise AssertionError("a single-replica leader asks nobody")


def single_broker_manager(
    builder: ImageBuilder, log_dir: Path, *, retention_ms: int = -1
) -> ReplicaManager:
    settings = ReplicaSettings(
        broker_id=1,
        log_dir=log_dir,
        segment_bytes=1 << 20,
        retention_ms=retention_ms,
        retention_bytes=-1,
        flush_interval_messages=None,
        min_insync_replicas=1,
        replica_lag_time_max_ms=5000,
    )
    return ReplicaManager(
        settings,
        image=lambda: builder.image,
        metadata_caught_up=lambda: True,
        broker_epoch=lambda: 1,
        ask_controller=_never,
        request_broker=_never,
    )
