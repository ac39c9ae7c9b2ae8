"""PartitionLeaderState as specifications: high watermark, ISR shrink and expand through the
controller (KIP-497, KIP-903), fetch answers (KIP-101, KIP-279, KIP-320) and produce acks."""

from __future__ import annotations

import pytest

from broker.replication import (
    MAX_PENDING_PRODUCES,
    Acks,
    AlterPartitionRejection,
    EpochEndOffset,
    ProduceCompletion,
    ReplicationError,
    TooManyPendingProducesError,
)
from broker.replication.leader import INELIGIBLE_EXPANSION_BACKOFF_MS
from tests.unit.replication.helpers import LAG_TIME_MS, LeaderFixture, log_of, registration
from tests.unit.replication.memory_log import MemoryLog

# -- high watermark ---------------------------------------------------------------------------


def test_high_watermark_is_the_minimum_log_end_offset_over_the_isr() -> None:
    """Kafka replication design: a record is committed once every ISR member has it."""
    leader = LeaderFixture(MemoryLog())
    leader.append(5)

    leader.fetch(2, 5)
    leader.fetch(3, 3)

    assert leader.state.high_watermark == 3


def test_high_watermark_waits_until_every_isr_member_fetched_in_the_epoch() -> None:
    """A new leader knows no follower's log end: it may not count a member it has not heard."""
    leader = LeaderFixture(MemoryLog())
    leader.append(4)

    leader.fetch(2, 4)

    assert leader.state.high_watermark == 0
    leader.fetch(3, 4)
    assert leader.state.high_watermark == 4


def test_high_watermark_never_decreases() -> None:
    """A member whose log end goes back (after a restart) does not take the HW back."""
    leader = LeaderFixture(MemoryLog())
    leader.append(4)
    leader.fetch(2, 4)
    leader.fetch(3, 4)

    leader.fetch(3, 2, replica_epoch=7)

    assert leader.state.high_watermark == 4


def test_leader_alone_in_the_isr_advances_the_high_watermark_on_append() -> None:
    leader = LeaderFixture(MemoryLog(), isr=(1,))

    leader.append(3)

    assert leader.state.high_watermark == 3


def test_high_watermark_stays_while_the_isr_is_below_min_insync_replicas() -> None:
    """KIP-966: the replicas that left the ISR meanwhile (the ELR) may be elected; they
    hold every committed record only if the high watermark did not move without them."""
    leader = LeaderFixture(MemoryLog(), isr=(1,))
    leader.state.set_min_insync_replicas(2)

    leader.append(3)

    assert leader.state.high_watermark == 0


def test_high_watermark_moves_when_the_isr_holds_every_replica_below_min_insync() -> None:
    """RF=1 on a cluster whose min.insync.replicas is 2: no replica could be eligible, so
    consumers still read acks=1 records."""
    leader = LeaderFixture(MemoryLog(), isr=(1,), replicas=(1,))
    leader.state.set_min_insync_replicas(2)

    leader.append(3)

    assert leader.state.high_watermark == 3


def test_high_watermark_moves_on_once_min_insync_replicas_is_lowered() -> None:
    leader = LeaderFixture(MemoryLog(), isr=(1,))
    leader.state.set_min_insync_replicas(2)
    leader.append(3)

    leader.state.set_min_insync_replicas(1)

    assert leader.state.high_watermark == 3


def test_fetch_answer_carries_the_high_watermark_after_the_fetch() -> None:
    leader = LeaderFixture(MemoryLog(), isr=(1, 2))
    leader.append(2)

    answer = leader.fetch(2, 2)

    assert answer.has_records
    assert answer.high_watermark == 2


# -- ISR shrink and expand --------------------------------------------------------------------


def test_lagging_follower_leaves_isr_after_lag_time() -> None:
    """replica.lag.time.max.ms: a member behind the leader's log end and not caught up for
    longer than the lag time is proposed out of the ISR (Kafka's maybeShrinkIsr)."""
    leader = LeaderFixture(MemoryLog())
    leader.append(3)
    leader.fetch(2, 3, now_ms=10)
    leader.fetch(3, 1, now_ms=10)

    leader.state.tick(LAG_TIME_MS)
    assert leader.state.take_alter_partition() is None
    leader.state.tick(LAG_TIME_MS + 1)

    request = leader.state.take_alter_partition()
    assert request is not None
    assert request.new_isr == (1, 2)
    assert (request.leader_epoch, request.partition_epoch) == (1, 1)
    assert leader.state.committed_isr == (1, 2, 3), "acted on only once committed"


def test_follower_that_reached_the_previous_log_end_is_not_lagging() -> None:
    """Kafka's Replica.updateFetchState: a follower that now has what the leader had at its
    previous fetch was caught up then, even if appends keep it one step behind."""
    leader = LeaderFixture(MemoryLog(), isr=(1, 2))
    for now_ms in range(0, 5 * LAG_TIME_MS, 100):
        leader.append()
        leader.fetch(2, leader.log.log_end_offset - 1, now_ms=now_ms)

    leader.state.tick(5 * LAG_TIME_MS)

    assert leader.state.take_alter_partition() is None


def test_caught_up_follower_rejoins_isr() -> None:
    """Kafka's maybeExpandIsr: log end at or past the HW and the leader epoch's start."""
    leader = LeaderFixture(MemoryLog(), isr=(1, 2))
    leader.append(4)
    leader.fetch(2, 4)

    leader.fetch(3, 3)
    assert leader.state.take_alter_partition() is None
    leader.fetch(3, 4, replica_epoch=5)

    request = leader.state.take_alter_partition()
    assert request is not None
    assert request.new_isr == (1, 2, 3)
    assert request.new_isr_broker_epochs == (-1, -1, 5), "KIP-903: the added member's epoch"


def test_a_follower_that_rejoins_gets_a_whole_lag_time_before_it_may_leave_again() -> None:
    """It has every committed record when it rejoins; without a fresh caught-up time a
    follower that was out for long would be removed on the next tick, and under load the
    ISR flapped (bench/kafka_bench.py)."""
    leader = LeaderFixture(MemoryLog(), isr=(1, 2))
    leader.append(4)
    leader.fetch(2, 4)
    leader.append(4)  # the log end moves on: the follower will be behind it
    rejoined_ms = 100_000
    leader.fetch(3, 4, replica_epoch=5, now_ms=rejoined_ms)
    assert leader.state.take_alter_partition() is not None
    leader.fetch(2, 8, now_ms=rejoined_ms)  # the other follower keeps up
    leader.state.on_partition_changed(registration(isr=(1, 2, 3), partition_epoch=2))

    leader.state.tick(rejoined_ms + LAG_TIME_MS)
    within_lag_time = leader.state.take_alter_partition()
    leader.state.tick(rejoined_ms + LAG_TIME_MS + 1)
    past_lag_time = leader.state.take_alter_partition()

    assert within_lag_time is None
    assert past_lag_time is not None and 3 not in past_lag_time.new_isr


def test_follower_below_the_leader_epoch_start_does_not_rejoin() -> None:
    """A member must hold the leader's epoch start, not merely the HW."""
    leader = LeaderFixture(log_of(0, 0, 0, 0), isr=(1, 2), high_watermark=2)  # epoch 1 at 4

    leader.fetch(3, 3, last_fetched_epoch=0)

    assert leader.state.high_watermark == 2
    assert leader.state.take_alter_partition() is None
    leader.fetch(3, 4, last_fetched_epoch=0)
    assert leader.state.take_alter_partition() is not None


def test_one_alter_partition_in_flight_at_most() -> None:
    leader = LeaderFixture(MemoryLog(), isr=(1,))
    leader.append(2)
    leader.fetch(2, 2)
    first = leader.state.take_alter_partition()

    leader.fetch(3, 2)

    assert first is not None
    assert first.new_isr == (1, 2)
    assert leader.state.take_alter_partition() is None
    assert leader.state.in_flight_alter_partition == first


def test_pending_shrink_keeps_counting_the_removed_member_for_the_high_watermark() -> None:
    """Kafka's PendingShrinkIsr: until the shrink is committed, the larger ISR counts."""
    leader = LeaderFixture(MemoryLog())
    leader.append(2)
    leader.fetch(2, 2)
    leader.fetch(3, 0)
    leader.append(2)
    leader.fetch(2, 4, now_ms=2 * LAG_TIME_MS)
    leader.state.tick(2 * LAG_TIME_MS)
    assert leader.state.take_alter_partition() is not None

    leader.fetch(2, 4, now_ms=2 * LAG_TIME_MS)
    assert leader.state.high_watermark == 0

    leader.state.on_partition_changed(registration(isr=(1, 2), partition_epoch=2))
    assert leader.state.high_watermark == 4


def test_pending_expand_counts_the_new_member_for_the_high_watermark() -> None:
    """Kafka's PendingExpandIsr: the controller may already have committed the member, so
    the HW must not pass what it lacks."""
    leader = LeaderFixture(MemoryLog(), isr=(1,))
    leader.append(2)
    leader.fetch(2, 2)
    assert leader.state.take_alter_partition() is not None

    leader.append(3)

    assert leader.state.high_watermark == 2
    leader.fetch(2, 5)
    assert leader.state.high_watermark == 5


def test_stale_alter_partition_is_dropped() -> None:
    """A refusal for stale epochs: nothing is proposed until the newer registration arrives;
    then the ISR is re-evaluated against it, at its epochs."""
    leader = LeaderFixture(MemoryLog())
    leader.append(2)
    leader.fetch(2, 2)
    leader.fetch(3, 0)
    leader.state.tick(2 * LAG_TIME_MS)
    request = leader.state.take_alter_partition()
    assert request is not None

    leader.state.on_alter_partition_rejected(request, AlterPartitionRejection.STALE_EPOCH)
    leader.state.tick(3 * LAG_TIME_MS)
    assert leader.state.take_alter_partition() is None
    leader.state.on_partition_changed(registration(isr=(1, 2, 3), partition_epoch=5))
    leader.state.tick(3 * LAG_TIME_MS)

    again = leader.state.take_alter_partition()
    assert again is not None
    assert again.new_isr == (1, 2)
    assert again.partition_epoch == 5


def test_refusal_for_an_ineligible_replica_is_dropped_at_once() -> None:
    leader = LeaderFixture(MemoryLog(), isr=(1, 2))
    leader.fetch(2, 0)
    leader.fetch(3, 0, replica_epoch=3)
    request = leader.state.take_alter_partition()
    assert request is not None

    leader.state.on_alter_partition_rejected(request, AlterPartitionRejection.INELIGIBLE_REPLICA)

    assert leader.state.in_flight_alter_partition is None
    assert leader.state.maximal_isr == {1, 2}


def test_a_refused_replica_is_proposed_again_only_after_a_backoff() -> None:
    """Its fetches keep coming every few ms; each must not send another doomed request."""
    leader = LeaderFixture(MemoryLog(), isr=(1, 2))
    leader.fetch(2, 0)
    leader.fetch(3, 0, replica_epoch=3, now_ms=1_000)
    request = leader.state.take_alter_partition()
    assert request is not None
    leader.state.on_alter_partition_rejected(request, AlterPartitionRejection.INELIGIBLE_REPLICA)

    leader.fetch(3, 0, replica_epoch=3, now_ms=1_000 + INELIGIBLE_EXPANSION_BACKOFF_MS - 1)
    during_backoff = leader.state.take_alter_partition()
    leader.fetch(3, 0, replica_epoch=3, now_ms=1_000 + INELIGIBLE_EXPANSION_BACKOFF_MS)
    after_backoff = leader.state.take_alter_partition()

    assert during_backoff is None
    assert after_backoff is not None and 3 in after_backoff.new_isr


def test_committed_registration_settles_the_in_flight_request() -> None:
    leader = LeaderFixture(MemoryLog(), isr=(1, 2))
    leader.fetch(2, 0)
    leader.fetch(3, 0)
    assert leader.state.take_alter_partition() is not None

    still_leading = leader.state.on_partition_changed(
        registration(isr=(1, 2, 3), partition_epoch=2)
    )

    assert still_leading
    assert leader.state.in_flight_alter_partition is None
    assert leader.state.committed_isr == (1, 2, 3)


def test_older_registration_changes_nothing() -> None:
    leader = LeaderFixture(MemoryLog())

    assert leader.state.on_partition_changed(registration(isr=(1,), partition_epoch=0))

    assert leader.state.committed_isr == (1, 2, 3)


# -- fetch answers ----------------------------------------------------------------------------


def test_fetch_with_a_diverging_epoch_gets_the_leaders_end_of_that_epoch() -> None:
    """KIP-320: the follower's last epoch 2 ends at 3 here; its suffix from 3 diverges."""
    leader = LeaderFixture(log_of(0, 0, 2, 4), leader_epoch=5)

    answer = leader.fetch(2, 5, last_fetched_epoch=2)

    assert answer.diverging_epoch == EpochEndOffset(2, 3)
    assert not answer.has_records
    assert leader.state.follower_log_end_offset(2) is None, "no progress from a divergent fetch"


def test_fetch_of_an_epoch_unknown_here_gets_the_largest_earlier_epoch() -> None:
    """KIP-279: epoch 3 never wrote here; the answer is epoch 2, ending where 4 starts."""
    leader = LeaderFixture(log_of(0, 2, 4), leader_epoch=5)

    answer = leader.fetch(2, 3, last_fetched_epoch=3)

    assert answer.diverging_epoch == EpochEndOffset(2, 2)


def test_consistent_fetch_gets_records() -> None:
    leader = LeaderFixture(log_of(0, 0, 2), leader_epoch=3)

    answer = leader.fetch(2, 2, last_fetched_epoch=0)

    assert answer.diverging_epoch is None
    assert answer.error is ReplicationError.NONE
    assert answer.has_records
    assert leader.state.follower_log_end_offset(2) == 2


@pytest.mark.parametrize(
    ("current_leader_epoch", "error"),
    [(1, ReplicationError.FENCED_LEADER_EPOCH), (3, ReplicationError.UNKNOWN_LEADER_EPOCH)],
)
def test_fetch_at_another_leader_epoch_is_refused(
    current_leader_epoch: int, error: ReplicationError
) -> None:
    """KIP-320: a follower at an older epoch is fenced; one at a newer epoch retries later."""
    leader = LeaderFixture(MemoryLog(), leader_epoch=2)

    answer = leader.state.on_fetch(
        2, 0, -1, 0, 0, current_leader_epoch=current_leader_epoch,
        end_offset_for_epoch=leader.log.end_offset_for_epoch,
    )  # fmt: skip

    assert answer.error is error
    assert leader.state.follower_log_end_offset(2) is None


def test_fetch_outside_the_log_is_out_of_range() -> None:
    leader = LeaderFixture(MemoryLog())
    leader.append(2)

    answer = leader.fetch(2, 5, last_fetched_epoch=-1)

    assert answer.error is ReplicationError.OFFSET_OUT_OF_RANGE
    assert (answer.log_start_offset, answer.log_end_offset) == (0, 2)


def test_restarted_follower_is_tracked_afresh() -> None:
    """A new broker epoch in the fetch (KIP-903): the old incarnation's log end is void."""
    leader = LeaderFixture(MemoryLog(), isr=(1, 2))
    leader.append(3)
    leader.fetch(3, 3, replica_epoch=1)

    leader.fetch(3, 1, replica_epoch=2)

    assert leader.state.follower_log_end_offset(3) == 1
    assert leader.state.followers[3].broker_epoch == 2


# -- produces ---------------------------------------------------------------------------------


def test_acks_all_refused_below_min_insync() -> None:
    """SPEC §7: NOT_ENOUGH_REPLICAS before anything is appended."""
    leader = LeaderFixture(MemoryLog(), isr=(1,))

    assert leader.state.check_produce(Acks.ALL, 2) is ReplicationError.NOT_ENOUGH_REPLICAS
    assert leader.state.check_produce(Acks.LEADER, 2) is ReplicationError.NONE
    assert leader.state.check_produce(Acks.ALL, 1) is ReplicationError.NONE


def test_pending_isr_does_not_count_for_min_insync() -> None:
    leader = LeaderFixture(MemoryLog(), isr=(1,))
    leader.fetch(2, 0)
    assert leader.state.in_flight_alter_partition is not None

    assert leader.state.check_produce(Acks.ALL, 2) is ReplicationError.NOT_ENOUGH_REPLICAS


def test_acks_all_completes_only_when_every_isr_member_has_it() -> None:
    """SPEC §7: answered once the HW passes the produce's last offset."""
    leader = LeaderFixture(MemoryLog())
    produce_id = leader.produce(Acks.ALL, count=3)

    leader.fetch(2, 3)
    assert leader.state.completed_produces() == []
    leader.fetch(3, 2)
    assert leader.state.completed_produces() == []
    leader.fetch(3, 3)

    assert leader.state.completed_produces() == [
        ProduceCompletion(produce_id or 0, 2, ReplicationError.NONE)
    ]
    assert leader.state.completed_produces() == [], "each completion is listed once"


def test_acks_all_whose_isr_shrank_below_min_insync_fails_after_append() -> None:
    """Kafka: NOT_ENOUGH_REPLICAS_AFTER_APPEND when the HW passes but the ISR is too small."""
    leader = LeaderFixture(MemoryLog(), isr=(1, 2))
    produce_id = leader.produce(Acks.ALL)

    leader.state.on_partition_changed(registration(isr=(1,), partition_epoch=2))

    assert leader.state.completed_produces() == [
        ProduceCompletion(produce_id or 0, 0, ReplicationError.NOT_ENOUGH_REPLICAS_AFTER_APPEND)
    ]


def test_acks_one_completes_at_append_and_acks_zero_never_answers() -> None:
    leader = LeaderFixture(MemoryLog())

    assert leader.produce(Acks.NONE) is None
    produce_id = leader.produce(Acks.LEADER)

    assert leader.state.completed_produces() == [
        ProduceCompletion(produce_id or 0, 1, ReplicationError.NONE)
    ]


def test_lost_leadership_fails_waiting_produces_with_not_leader() -> None:
    """An old leader that learns of a new epoch stops at once; its waiting acks=all fail."""
    leader = LeaderFixture(MemoryLog())
    first = leader.produce(Acks.ALL)
    second = leader.produce(Acks.ALL)

    still_leading = leader.state.on_partition_changed(
        registration(leader=2, leader_epoch=2, partition_epoch=2)
    )

    assert not still_leading
    assert leader.state.resigned
    assert [(c.produce_id, c.error) for c in leader.state.completed_produces()] == [
        (first, ReplicationError.NOT_LEADER),
        (second, ReplicationError.NOT_LEADER),
    ]
    with pytest.raises(AssertionError):
        leader.state.check_produce(Acks.ALL, 1)


def test_cancelled_produce_is_not_answered() -> None:
    leader = LeaderFixture(MemoryLog())
    produce_id = leader.produce(Acks.ALL)
    assert produce_id is not None

    assert leader.state.cancel_produce(produce_id)
    leader.fetch(2, 1)
    leader.fetch(3, 1)

    assert leader.state.completed_produces() == []
    assert not leader.state.cancel_produce(produce_id)


def test_waiting_produces_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("broker.replication.leader.MAX_PENDING_PRODUCES", 2)
    leader = LeaderFixture(MemoryLog())
    leader.produce(Acks.ALL)
    leader.produce(Acks.ALL)

    with pytest.raises(TooManyPendingProducesError, match="limit 2"):
        leader.produce(Acks.ALL)
    assert MAX_PENDING_PRODUCES > 2


def test_fetch_from_a_broker_without_a_replica_is_refused() -> None:
    leader = LeaderFixture(MemoryLog())

    answer = leader.fetch(9, 0)

    assert answer.error is ReplicationError.NOT_LEADER


def test_fetch_naming_a_last_epoch_newer_than_the_leaders_is_refused() -> None:
    """Bad input changes nothing and does not stop the broker."""
    leader = LeaderFixture(MemoryLog(), leader_epoch=2)

    answer = leader.fetch(2, 0, last_fetched_epoch=3)

    assert answer.error is ReplicationError.UNKNOWN_LEADER_EPOCH
    assert leader.state.follower_log_end_offset(2) is None
