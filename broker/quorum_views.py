"""The quorum as `kraft quorum describe` shows it: the leader's view, and its wire form for
answers forwarded from the leader to the node that was asked."""

from __future__ import annotations

import time
from typing import Any

from broker.api.facade import NoLeaderError, QuorumDescription, ReplicaDescription
from kraft.quorum.runtime import QuorumRuntime
from kraft.raft.types import Role


def describe_as_leader(runtime: QuorumRuntime, cluster_id: str) -> QuorumDescription:
    """The leader's view; NoLeaderError when this node does not lead (any more)."""
    status = runtime.status()
    if status.role is not Role.LEADER:
        raise NoLeaderError("leadership moved while describing the quorum")
    voters = tuple(sorted(status.voters))
    replicas = tuple(
        ReplicaDescription(
            node_id=replica.node_id,
            is_voter=replica.is_voter,
            log_end_offset=replica.log_end_offset,
            last_fetch_unix_ms=_maybe_unix_ms(runtime, replica.last_fetch_tick),
            last_caught_up_unix_ms=_maybe_unix_ms(runtime, replica.last_caught_up_tick),
        )
        for replica in status.replicas
    )
    observers = tuple(sorted(r.node_id for r in replicas if not r.is_voter))
    return QuorumDescription(
        cluster_id=cluster_id,
        leader_id=status.node_id,
        leader_epoch=status.epoch,
        high_watermark=status.high_watermark,
        leader_log_end_offset=status.log_end_offset,
        voters=voters,
        observers=observers,
        replicas=replicas,
        now_unix_ms=int(time.time() * 1000),
    )


def _maybe_unix_ms(runtime: QuorumRuntime, tick: int | None) -> int | None:
    return None if tick is None else runtime.tick_to_unix_ms(tick)


def description_to_wire(description: QuorumDescription) -> dict[str, object]:
    return {
        "cluster_id": description.cluster_id,
        "leader_id": description.leader_id,
        "leader_epoch": description.leader_epoch,
        "high_watermark": description.high_watermark,
        "leader_log_end_offset": description.leader_log_end_offset,
        "voters": list(description.voters),
        "observers": list(description.observers),
        "replicas": [
            [
                r.node_id,
                r.is_voter,
                r.log_end_offset,
                r.last_fetch_unix_ms,
                r.last_caught_up_unix_ms,
            ]
            for r in description.replicas
        ],
        "now_unix_ms": description.now_unix_ms,
    }


def description_from_wire(wire: dict[str, Any]) -> QuorumDescription:
    return QuorumDescription(
        cluster_id=str(wire["cluster_id"]),
        leader_id=int(wire["leader_id"]),
        leader_epoch=int(wire["leader_epoch"]),
        high_watermark=int(wire["high_watermark"]),
        leader_log_end_offset=int(wire["leader_log_end_offset"]),
        voters=tuple(int(v) for v in wire["voters"]),
        observers=tuple(int(o) for o in wire["observers"]),
        replicas=tuple(
            ReplicaDescription(int(n), bool(v), int(leo), fetch_ms, caught_ms)
            for n, v, leo, fetch_ms, caught_ms in wire["replicas"]
        ),
        now_unix_ms=int(wire["now_unix_ms"]),
    )
