"""Values exchanged between the pure replication core (leader.py, follower.py) and the I/O
shell that drives it: acks, error codes, fetch requests and answers, AlterPartition requests,
produce completions and the actions a follower asks of its shell. They carry no behaviour
beyond small invariant checks; record bytes never enter the core (the shell reads them from
the log for an answer and appends them for a follower).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

# As Kafka's leader-epoch cache answers for an unknown epoch (broker.log.UNDEFINED_EPOCH).
UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1

NO_BROKER_EPOCH = -1  # not known: the controller does not check it

# end_offset_for_epoch(epoch) -> (epoch, end offset), as PartitionLog.end_offset_for_epoch.
EndOffsetForEpoch = Callable[[int], tuple[int, int]]


class Acks(enum.IntEnum):
    """Kafka's produce `acks` values."""

    NONE = 0
    LEADER = 1
    ALL = -1


class ReplicationError(enum.Enum):
    """Error codes the core hands back (Kafka's names)."""

    NONE = "NONE"
    NOT_LEADER = "NOT_LEADER_OR_FOLLOWER"
    NOT_ENOUGH_REPLICAS = "NOT_ENOUGH_REPLICAS"
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
    OFFSET_OUT_OF_RANGE = "OFFSET_OUT_OF_RANGE"
    FENCED_LEADER_EPOCH = "FENCED_LEADER_EPOCH"  # the fetcher's leader epoch is older
    UNKNOWN_LEADER_EPOCH = "UNKNOWN_LEADER_EPOCH"  # the fetcher knows a newer epoch than us


class AlterPartitionRejection(enum.Enum):
    """Why the controller refused an AlterPartition request.

    STALE_EPOCH and NOT_LEADER may also answer a resent duplicate of a request that was
    applied, so the leader waits for the metadata to show the outcome. INELIGIBLE_REPLICA and
    INVALID_REQUEST say the change was certainly not made: it is dropped at once."""

    STALE_EPOCH = "STALE_EPOCH"
    NOT_LEADER = "NOT_LEADER"
    INELIGIBLE_REPLICA = "INELIGIBLE_REPLICA"
    INVALID_REQUEST = "INVALID_REQUEST"


@dataclass(frozen=True, slots=True)
class EpochEndOffset:
    """The leader's (epoch, end offset) answer to a fetch whose last fetched epoch diverges
    (KIP-101, KIP-279, KIP-320): the follower truncates by it."""

    epoch: int
    end_offset: int


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """What a follower asks its leader: records from `fetch_offset` (its log end offset); the
    epoch of its last record lets the leader detect a divergent suffix. `replica_epoch` is
    the follower's broker epoch (KIP-903), so an ISR expansion names the incarnation that
    caught up."""

    replica_id: int
    current_leader_epoch: int
    fetch_offset: int
    last_fetched_epoch: int
    replica_epoch: int = NO_BROKER_EPOCH

    def __post_init__(self) -> None:
        assert self.fetch_offset >= 0, f"negative fetch offset {self.fetch_offset}"
        assert self.last_fetched_epoch >= UNDEFINED_EPOCH, "last fetched epoch below -1"


@dataclass(frozen=True, slots=True)
class FetchAnswer:
    """The leader's answer to one FetchRequest. With error NONE and no diverging epoch the
    shell attaches the records read from `fetch_offset` (possibly none)."""

    leader_epoch: int
    fetch_offset: int  # the request's, so a follower can drop stale or duplicate answers
    last_fetched_epoch: int  # the request's, likewise
    error: ReplicationError
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    diverging_epoch: EpochEndOffset | None = None

    @property
    def has_records(self) -> bool:
        """True when the shell should read records from fetch_offset into the answer."""
        return self.error is ReplicationError.NONE and self.diverging_epoch is None


@dataclass(frozen=True, slots=True)
class AlterPartitionRequest:
    """An ISR change the leader asks of the controller (KIP-497), at the epochs it knows.
    `new_isr_broker_epochs[i]` is the broker epoch of `new_isr[i]` as its fetches showed it
    (NO_BROKER_EPOCH for the leader itself or when unknown). KIP-903: the controller must
    refuse the change if a member's broker epoch is no longer current, or a late or resent
    request could put a restarted replica that lost records into the ISR."""

    topic_id: str
    partition_id: int
    leader_id: int
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[int, ...]
    new_isr_broker_epochs: tuple[int, ...]

    def __post_init__(self) -> None:
        assert self.leader_id in self.new_isr, "the leader stays in the ISR it asks for"
        assert len(set(self.new_isr)) == len(self.new_isr), "an ISR member repeats"
        assert len(self.new_isr_broker_epochs) == len(self.new_isr), "one epoch per member"


@dataclass(frozen=True, slots=True)
class ProduceCompletion:
    """A produce the shell may now answer: its id from register_pending_produce."""

    produce_id: int
    last_offset: int
    error: ReplicationError


# -- what a follower asks its shell to do with a fetch answer --------------------------------


@dataclass(frozen=True, slots=True)
class IgnoreAnswer:
    """A stale, duplicate or failed answer: change nothing (fetch again, maybe after a
    backoff when `backoff` is set)."""

    backoff: bool = False


@dataclass(frozen=True, slots=True)
class AppendRecords:
    """Append the answer's records; they start at `offset`, the follower's log end offset.
    Then call FollowerState.on_log_changed."""

    offset: int


@dataclass(frozen=True, slots=True)
class TruncateTo:
    """Truncate the log to `offset` (drop offsets >= it), then call on_log_changed. Epoch
    entries starting at or above `offset` go too, even when `offset` is the log end (Kafka's
    UnifiedLog.truncateTo: a former leader may hold an entry for an epoch in which it wrote
    nothing; keeping it would make the follower ask for the same truncation forever)."""

    offset: int


@dataclass(frozen=True, slots=True)
class TruncateFullyAndStartAt:
    """The follower is below the leader's log start: empty the log and start it at
    `offset`, then call on_log_changed."""

    offset: int


FollowerAction = IgnoreAnswer | AppendRecords | TruncateTo | TruncateFullyAndStartAt
