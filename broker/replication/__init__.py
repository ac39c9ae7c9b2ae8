"""Partition replication of the data plane, pure (STYLE §1): `PartitionLeaderState` (leader.py)
tracks followers, the high watermark, ISR changes and waiting produces of a partition this
broker leads; `FollowerState` (follower.py) decides what a follower fetches and how it
applies answers, truncating divergent suffixes by leader epoch. types.py holds the values
exchanged with the I/O shell. No asyncio, sockets, files, clock or global random here: time
is the `now_ms` argument.
"""

from __future__ import annotations

from broker.replication.follower import FollowerState
from broker.replication.leader import (
    MAX_PENDING_PRODUCES,
    REPLICA_LAG_TIME_MAX_MS,
    FollowerProgress,
    PartitionLeaderState,
    TooManyPendingProducesError,
)
from broker.replication.types import (
    NO_BROKER_EPOCH,
    UNDEFINED_EPOCH,
    UNDEFINED_EPOCH_OFFSET,
    Acks,
    AlterPartitionRejection,
    AlterPartitionRequest,
    AppendRecords,
    EndOffsetForEpoch,
    EpochEndOffset,
    FetchAnswer,
    FetchRequest,
    FollowerAction,
    IgnoreAnswer,
    ProduceCompletion,
    ReplicationError,
    TruncateFullyAndStartAt,
    TruncateTo,
)

__all__ = [
    "MAX_PENDING_PRODUCES",
    "NO_BROKER_EPOCH",
    "REPLICA_LAG_TIME_MAX_MS",
    "UNDEFINED_EPOCH",
    "UNDEFINED_EPOCH_OFFSET",
    "Acks",
    "AlterPartitionRejection",
    "AlterPartitionRequest",
    "AppendRecords",
    "EndOffsetForEpoch",
    "EpochEndOffset",
    "FetchAnswer",
    "FetchRequest",
    "FollowerAction",
    "FollowerProgress",
    "FollowerState",
    "IgnoreAnswer",
    "PartitionLeaderState",
    "ProduceCompletion",
    "ReplicationError",
    "TooManyPendingProducesError",
    "TruncateFullyAndStartAt",
    "TruncateTo",
]
