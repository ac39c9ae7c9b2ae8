"""FollowerState as specifications: what a follower fetches, how it truncates a divergent
suffix by leader epoch (KIP-101, KIP-279, KIP-320) and never by the high watermark alone,
and its high watermark."""

from __future__ import annotations

import pytest

from broker.replication import (
    AppendRecords,
    EpochEndOffset,
    FetchAnswer,
    FetchRequest,
    FollowerState,
    IgnoreAnswer,
    ReplicationError,
    TruncateFullyAndStartAt,
    TruncateTo,
)
from tests.unit.replication.helpers import LeaderFixture, log_of
from tests.unit.replication.memory_log import MemoryLog, Rec


def follower_of(log: MemoryLog, leader_epoch: int, high_watermark: int = 0) -> FollowerState:
    return FollowerState(
        2, 1, leader_epoch, log.log_end_offset, log.latest_epoch, high_watermark, broker_epoch=4
    )


def answer_to(
    request: FetchRequest,
    high_watermark: int = 0,
    error: ReplicationError = ReplicationError.NONE,
    log_start_offset: int = 0,
    log_end_offset: int = 100,
) -> FetchAnswer:
    return FetchAnswer(
        leader_epoch=request.current_leader_epoch,
        fetch_offset=request.fetch_offset,
        last_fetched_epoch=request.last_fetched_epoch,
        error=error,
        high_watermark=high_watermark,
        log_start_offset=log_start_offset,
        log_end_offset=log_end_offset,
    )


def exchange(leader: LeaderFixture, follower: FollowerState, log: MemoryLog) -> object:
    """One fetch round trip, applied to the follower's log as the shell would."""
    request = follower.next_fetch()
    answer = leader.state.on_fetch(
        request.replica_id, request.fetch_offset, request.last_fetched_epoch,
        leader.log.log_end_offset, 0, current_leader_epoch=request.current_leader_epoch,
        end_offset_for_epoch=leader.log.end_offset_for_epoch,
    )  # fmt: skip
    action = follower.on_fetch_answer(answer, log.end_offset_for_epoch)
    if isinstance(action, AppendRecords):
        log.append_as_follower(action.offset, leader.log.records[action.offset :])
    elif isinstance(action, TruncateTo):
        log.truncate_to(action.offset)
    if not isinstance(action, IgnoreAnswer):
        follower.on_log_changed(log.log_end_offset, log.latest_epoch)
    return action


def test_follower_fetches_from_its_log_end_with_its_last_epoch() -> None:
    follower = follower_of(log_of(0, 0, 3), leader_epoch=4)

    request = follower.next_fetch()

    assert request == FetchRequest(
        replica_id=2, current_leader_epoch=4, fetch_offset=3, last_fetched_epoch=3,
        replica_epoch=4,
    )  # fmt: skip


def test_follower_truncates_divergent_suffix_by_leader_epoch() -> None:
    """KIP-101/KIP-320: the follower's epoch-2 records from offset 3 on never reached the
    leader, whose epoch 2 ends at 3: truncate to min(3, own end of epoch 2 = 5)."""
    leader = LeaderFixture(log_of(0, 0, 2, 4), leader_epoch=5)
    log = log_of(0, 0, 2, 2, 2)
    follower = follower_of(log, leader_epoch=5)

    action = exchange(leader, follower, log)

    assert action == TruncateTo(3)
    assert log.records == leader.log.records[:3]
    assert exchange(leader, follower, log) == AppendRecords(3)
    assert log.records == leader.log.records


def test_follower_without_the_leaders_epoch_truncates_to_its_earlier_epoch_first() -> None:
    """KIP-279: the leader answers epoch 1 (ending at 3), which this follower never saw; it
    truncates to the end of its own largest epoch below (0, ending at 2) and asks again."""
    leader = LeaderFixture(log_of(0, 0, 1, 4), leader_epoch=5)
    log = log_of(0, 0, 3, 3)
    follower = follower_of(log, leader_epoch=5)

    assert exchange(leader, follower, log) == TruncateTo(2)
    assert exchange(leader, follower, log) == AppendRecords(2)
    assert log.records == leader.log.records


def test_follower_never_truncates_by_high_watermark_alone() -> None:
    """A suffix above the high watermark that the new leader also has is kept (truncating to
    the HW, as Kafka before KIP-101 did, would throw away records that may be acknowledged)."""
    leader = LeaderFixture(log_of(0, 0, 0, 0), leader_epoch=1)
    log = log_of(0, 0, 0)
    follower = follower_of(log, leader_epoch=1, high_watermark=1)

    action = exchange(leader, follower, log)

    assert action == AppendRecords(3)
    assert log.log_end_offset == 4


def test_follower_truncation_never_goes_below_its_high_watermark() -> None:
    """KIP-101: what is below the HW is on the new leader; an answer saying otherwise is a
    bug and stops the broker."""
    log = log_of(0, 0, 0)
    follower = follower_of(log, leader_epoch=2, high_watermark=3)
    request = follower.next_fetch()
    answer = FetchAnswer(
        leader_epoch=2, fetch_offset=3, last_fetched_epoch=0, error=ReplicationError.NONE,
        high_watermark=3, log_start_offset=0, log_end_offset=5,
        diverging_epoch=EpochEndOffset(0, 1),
    )  # fmt: skip

    assert request.fetch_offset == 3
    with pytest.raises(AssertionError, match="below the high watermark"):
        follower.on_fetch_answer(answer, log.end_offset_for_epoch)


def test_follower_high_watermark_is_min_of_leaders_and_own_log_end() -> None:
    log = MemoryLog()
    follower = follower_of(log, leader_epoch=1)
    request = follower.next_fetch()

    action = follower.on_fetch_answer(
        answer_to(request, high_watermark=10), log.end_offset_for_epoch
    )
    assert action == AppendRecords(0)
    log.append_as_follower(0, [Rec(1, "a"), Rec(1, "b")])
    follower.on_log_changed(log.log_end_offset, log.latest_epoch)

    assert follower.high_watermark == 2
    request = follower.next_fetch()
    follower.on_fetch_answer(answer_to(request, high_watermark=1), log.end_offset_for_epoch)
    follower.on_log_changed(log.log_end_offset, log.latest_epoch)
    assert follower.high_watermark == 2, "it does not go back"


def test_follower_ignores_stale_and_duplicate_answers() -> None:
    """Only the answer to the fetch in flight counts: a duplicate could truncate a log that
    was refilled since."""
    log = MemoryLog()
    follower = follower_of(log, leader_epoch=1)
    request = follower.next_fetch()
    answer = answer_to(request)
    follower.on_fetch_answer(answer, log.end_offset_for_epoch)
    follower.on_log_changed(0, -1)

    assert follower.on_fetch_answer(answer, log.end_offset_for_epoch) == IgnoreAnswer()
    follower.next_fetch()
    other_epoch = FetchAnswer(
        leader_epoch=0, fetch_offset=0, last_fetched_epoch=-1, error=ReplicationError.NONE,
        high_watermark=0, log_start_offset=0, log_end_offset=0,
    )  # fmt: skip
    assert follower.on_fetch_answer(other_epoch, log.end_offset_for_epoch) == IgnoreAnswer()


@pytest.mark.parametrize(
    "error",
    [
        ReplicationError.FENCED_LEADER_EPOCH,
        ReplicationError.UNKNOWN_LEADER_EPOCH,
        ReplicationError.NOT_LEADER,
    ],
)
def test_follower_backs_off_on_leadership_errors(error: ReplicationError) -> None:
    log = MemoryLog()
    follower = follower_of(log, leader_epoch=1)
    request = follower.next_fetch()

    action = follower.on_fetch_answer(answer_to(request, error=error), log.end_offset_for_epoch)

    assert action == IgnoreAnswer(backoff=True)
    assert follower.next_fetch() == request


def test_new_leader_epoch_truncates_by_epoch_on_the_first_fetch() -> None:
    """Broker 2, former leader of epoch 1, whose last records never replicated follows the leader of
    epoch 2: its first fetch names epoch 1, and the answer cuts that suffix."""
    old_leader_log = log_of(0, 1, 1, 1)
    new_leader = LeaderFixture(log_of(0, 1), leader_epoch=2)
    follower = FollowerState(2, 1, 2, 4, old_leader_log.latest_epoch, 2)

    assert follower.next_fetch().last_fetched_epoch == 1
    follower.on_fetch_failed()
    assert exchange(new_leader, follower, old_leader_log) == TruncateTo(2)


def test_epoch_entry_without_records_at_the_log_end_is_truncated() -> None:
    """A former leader assigned epoch 2 at its log end but wrote nothing: the truncation to
    its log end must drop that entry (Kafka's UnifiedLog.truncateTo), else it loops."""
    log = log_of(0, 1)
    log.assign_epoch(2)
    leader = LeaderFixture(log_of(0, 1, 3), leader_epoch=4)
    follower = follower_of(log, leader_epoch=4)

    assert exchange(leader, follower, log) == TruncateTo(2)
    assert log.latest_epoch == 1
    assert exchange(leader, follower, log) == AppendRecords(2)


def test_follower_below_the_leaders_log_start_restarts_there() -> None:
    log = MemoryLog()
    follower = follower_of(log, leader_epoch=1)
    request = follower.next_fetch()
    answer = answer_to(
        request, error=ReplicationError.OFFSET_OUT_OF_RANGE, log_start_offset=7, log_end_offset=9
    )

    action = follower.on_fetch_answer(answer, log.end_offset_for_epoch)

    assert action == TruncateFullyAndStartAt(7)
    follower.on_log_changed(7, -1)
    assert follower.next_fetch().fetch_offset == 7
