"""`GET /v1/cluster/health_overview`, as Redpanda's admin API answers it (SPEC §5).

A pure function of this node's metadata image and the controller it knows. The cluster is
healthy when all of these hold; each one that does not adds its reason, with Redpanda's
names:

- `controller_unavailable`: no active controller is known;
- `nodes_down`: a registered broker is fenced (missed its session, or not yet caught up);
- `leaderless_partitions`: a partition has no leader (offline);
- `under_replicated_partitions`: a partition's ISR is smaller than its replica set.

Under-replication makes the cluster unhealthy, as in Redpanda since v23: `--exit-when-healthy`
then waits until every replica is back in sync, which is what one waits for after a restart.
A broker in controlled shutdown is not down until it is fenced.

Partition lists are Redpanda's `kafka/<topic>/<partition>` strings, the first
MAX_LISTED_PARTITIONS of each (the counts are always exact).
"""

from __future__ import annotations

from typing import Any

from kraft.controller.image import MetadataImage
from kraft.controller.records import NO_LEADER

MAX_LISTED_PARTITIONS = 128  # Redpanda's cap on the listed partitions
NAMESPACE = "kafka"
NO_CONTROLLER = -1  # controller_id when none is known, as Redpanda answers it


def _partition_name(topic: str, partition_id: int) -> str:
    return f"{NAMESPACE}/{topic}/{partition_id}"


def _problem_partitions(image: MetadataImage) -> tuple[list[str], list[str]]:
    """(leaderless, under-replicated) partitions, sorted by topic name then partition."""
    leaderless: list[str] = []
    under_replicated: list[str] = []
    for name in sorted(image.topic_names()):
        topic = image.topic(name)
        if topic is None:
            continue
        for partition_id in sorted(topic.partitions):
            partition = topic.partitions[partition_id]
            if partition.leader == NO_LEADER:
                leaderless.append(_partition_name(name, partition_id))
            if len(partition.isr) < len(partition.replicas):
                under_replicated.append(_partition_name(name, partition_id))
    return leaderless, under_replicated


def health_overview(image: MetadataImage, controller_id: int | None) -> dict[str, Any]:
    all_nodes = sorted(image.brokers)
    nodes_down = [b for b in all_nodes if image.brokers[b].fenced]
    leaderless, under_replicated = _problem_partitions(image)
    reasons = []
    if controller_id is None:
        reasons.append("controller_unavailable")
    if nodes_down:
        reasons.append("nodes_down")
    if leaderless:
        reasons.append("leaderless_partitions")
    if under_replicated:
        reasons.append("under_replicated_partitions")
    return {
        "is_healthy": not reasons,
        "unhealthy_reasons": reasons,
        "controller_id": NO_CONTROLLER if controller_id is None else controller_id,
        "all_nodes": all_nodes,
        "nodes_down": nodes_down,
        "leaderless_count": len(leaderless),
        "under_replicated_count": len(under_replicated),
        "leaderless_partitions": leaderless[:MAX_LISTED_PARTITIONS],
        "under_replicated_partitions": under_replicated[:MAX_LISTED_PARTITIONS],
    }
