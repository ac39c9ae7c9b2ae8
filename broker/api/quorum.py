"""JSON bodies of `/v1/quorum/status` and `/v1/quorum/replication`, from the leader's view.

Pure functions of a QuorumDescription, computed as `kafka-metadata-quorum.sh describe`
computes its columns (SPEC §4), with snake_case keys (SPEC §5).
"""

from __future__ import annotations

from typing import Any

from broker.api.facade import QuorumDescription, ReplicaDescription
from kraft.raft.types import QuorumStatus

# What Kafka prints for a lag time it cannot know (a lagging follower never caught up).
UNKNOWN_LAG_TIME_MS = -1


def follower_lag(description: QuorumDescription, replica: ReplicaDescription) -> int:
    """Entries the replica is behind the leader's log end offset."""
    return description.leader_log_end_offset - replica.log_end_offset


def _followers(description: QuorumDescription) -> list[ReplicaDescription]:
    """Voters other than the leader."""
    return [
        replica
        for replica in description.replicas
        if replica.is_voter and replica.node_id != description.leader_id
    ]


def max_follower_lag(description: QuorumDescription) -> int:
    """Largest lag among the voters other than the leader; 0 when there are none."""
    return max((follower_lag(description, f) for f in _followers(description)), default=0)


def max_follower_lag_time_ms(description: QuorumDescription) -> int:
    """How long ago the longest-lagging voter was last caught up; 0 when all are caught up.

    Kafka takes the lag time of its most-lagging follower; we take the oldest
    `last_caught_up` among the followers that lag now, which is the same follower unless a
    follower with a smaller lag has been behind for longer (then we report the longer time,
    the one an alert cares about). -1, as Kafka prints it, when a lagging follower has never
    been caught up.
    """
    lagging = [f for f in _followers(description) if follower_lag(description, f) > 0]
    if not lagging:
        return 0
    caught_up_times = [f.last_caught_up_unix_ms for f in lagging]
    if any(t is None for t in caught_up_times):
        return UNKNOWN_LAG_TIME_MS
    oldest = min(t for t in caught_up_times if t is not None)
    # Clocks of different calls may disagree by a millisecond; a lag time is never negative.
    return max(0, description.now_unix_ms - oldest)


def status_body(description: QuorumDescription, local: QuorumStatus) -> dict[str, Any]:
    """`kraft quorum describe --status`, plus the answering node's own id, role and epoch."""
    return {
        "cluster_id": description.cluster_id,
        "leader_id": description.leader_id,
        "leader_epoch": description.leader_epoch,
        "high_watermark": description.high_watermark,
        "max_follower_lag": max_follower_lag(description),
        "max_follower_lag_time_ms": max_follower_lag_time_ms(description),
        "current_voters": list(description.voters),
        "current_observers": list(description.observers),
        "node_id": local.node_id,
        "role": local.role.value,
        "epoch": local.epoch,
    }


def replica_status(description: QuorumDescription, replica: ReplicaDescription) -> str:
    if replica.node_id == description.leader_id:
        return "Leader"
    return "Follower" if replica.is_voter else "Observer"


def _replica_order(description: QuorumDescription, replica: ReplicaDescription) -> tuple[int, int]:
    # As kafka-metadata-quorum.sh prints them: the leader, then followers, then observers.
    rank = {"Leader": 0, "Follower": 1, "Observer": 2}[replica_status(description, replica)]
    return (rank, replica.node_id)


def replication_body(description: QuorumDescription) -> dict[str, Any]:
    """`kraft quorum describe --replication`: one row per replica, the leader first."""
    replicas = sorted(description.replicas, key=lambda r: _replica_order(description, r))
    return {
        "replicas": [
            {
                "node_id": replica.node_id,
                "log_end_offset": replica.log_end_offset,
                "lag": follower_lag(description, replica),
                "last_fetch_timestamp": replica.last_fetch_unix_ms,
                "last_caught_up_timestamp": replica.last_caught_up_unix_ms,
                "status": replica_status(description, replica),
            }
            for replica in replicas
        ]
    }
