"""Partition replication of the data plane, pure (STYLE §1): `PartitionLeaderState` (leader.py)
tracks followers, the high watermark, ISR changes and waiting produces of a partition this
broker leads; `FollowerState` (follower.py) decides what a follower fetches and how it
applies answers, truncating divergent suffixes by leader epoch. types.py holds the values
exchanged with the I/O shell. No asyncio, sockets, files, clock or global random here: time
is the `now_ms` argument.

API CONTRACT (the I/O shell is written against it; tests/unit/replication/simulation.py is
a complete in-memory shell):

Leading (the committed registration names this broker leader in epoch E):
    log.epoch_cache.assign(E, log.log_end_offset)     # shell: the epoch starts at the log end
    state = PartitionLeaderState(broker_id, registration, log.log_end_offset,
                                 high_watermark, now_ms, replica_lag_time_max_ms)
    state.check_produce(acks, min_insync_replicas) -> ReplicationError   # before appending
    state.on_local_append(log.log_end_offset)                  # after each leader append
    state.register_pending_produce(last_offset, acks, min_insync_replicas) -> produce id | None
    state.cancel_produce(produce_id) -> bool                   # the request timed out
    state.completed_produces() -> list[ProduceCompletion]      # answer these now
    state.on_fetch(replica_id, fetch_offset, last_fetched_epoch, log.log_end_offset, now_ms,
                   current_leader_epoch=..., end_offset_for_epoch=log.end_offset_for_epoch,
                   leader_log_start_offset=..., replica_epoch=...) -> FetchAnswer
        # if answer.has_records: attach log.read(fetch_offset, max_bytes) (and cap it at the
        # high watermark for consumers; followers read to the log end)
    state.tick(now_ms)                                         # ISR shrink check
    state.take_alter_partition() -> AlterPartitionRequest | None   # send it once
    state.in_flight_alter_partition                            # resend this on a timeout
    state.on_alter_partition_rejected(request, AlterPartitionRejection)
    state.on_partition_changed(registration) -> bool           # False: drop the state (after
                                                               # draining completed_produces)
    state.high_watermark, state.log_end_offset, state.committed_isr, state.maximal_isr,
    state.leader_epoch, state.followers, state.pending_produce_count   (read-only)
    After every call, drain completed_produces() and take_alter_partition().

Following (the registration names another leader in epoch E; a new epoch, a new state):
    follower = FollowerState(broker_id, leader_id, E, log.log_end_offset, latest_epoch,
                             high_watermark, broker_epoch=...)
    request = follower.next_fetch() -> FetchRequest      # one in flight; resend on timeout
    action = follower.on_fetch_answer(answer, log.end_offset_for_epoch) -> FollowerAction
        IgnoreAnswer(backoff) | AppendRecords(offset) | TruncateTo(offset)
        | TruncateFullyAndStartAt(offset)
    follower.on_log_changed(log.log_end_offset, latest_epoch)   # after any non-Ignore action
    follower.on_fetch_failed()                                  # timeout or failed action
    follower.high_watermark, follower.log_end_offset, follower.latest_epoch   (read-only)

Idempotent producers (producer_state.py, imported from there; both roles):
    table = ProducerStateTable()       # rebuilt by the shell from a snapshot + the log
    table.check(ProducerBatch) -> AppendBatch | DuplicateBatch(original) | RefuseBatch
        # leader, right before appending (no await in between: arrival order)
    table.on_append(ProducerBatch, first_offset, last_offset)   # every appended producer
                                                                # batch, leader or follower
    table.remove_before(log_start_offset); table.to_rows(); ProducerStateTable.from_rows()

`latest_epoch` is the log's latest epoch (UNDEFINED_EPOCH when it has none). TruncateTo must
also drop epoch entries at or above the offset when the offset is the log end (see
types.TruncateTo). The controller must check `AlterPartitionRequest.new_isr_broker_epochs`
(KIP-903) or a late, resent request can return a restarted replica that lost records to
the ISR.
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
