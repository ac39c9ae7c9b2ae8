"""Lag columns of `kraft quorum describe`, as kafka-metadata-quorum.sh computes them."""

from __future__ import annotations

from broker.api.facade import ReplicaDescription
from broker.api.quorum import max_follower_lag, max_follower_lag_time_ms
from tests.unit.api.fakes import NOW_UNIX_MS, description


def replica(
    node_id: int, log_end_offset: int, caught_up_ms_ago: int | None, *, is_voter: bool = True
) -> ReplicaDescription:
    caught_up = None if caught_up_ms_ago is None else NOW_UNIX_MS - caught_up_ms_ago
    return ReplicaDescription(node_id, is_voter, log_end_offset, NOW_UNIX_MS, caught_up)


def test_lag_is_zero_with_a_single_voter() -> None:
    quorum = description(replicas=(replica(1, 130, 0),))

    assert max_follower_lag(quorum) == 0
    assert max_follower_lag_time_ms(quorum) == 0


def test_lag_is_zero_when_every_follower_is_caught_up() -> None:
    quorum = description(replicas=(replica(1, 130, 0), replica(2, 130, 3), replica(3, 130, 7)))

    assert max_follower_lag(quorum) == 0
    assert max_follower_lag_time_ms(quorum) == 0


def test_observers_do_not_count_as_followers() -> None:
    quorum = description(
        replicas=(replica(1, 130, 0), replica(2, 130, 0), replica(4, 10, 9_000, is_voter=False))
    )

    assert max_follower_lag(quorum) == 0
    assert max_follower_lag_time_ms(quorum) == 0


def test_lag_time_is_since_the_oldest_catch_up_of_a_lagging_follower() -> None:
    quorum = description(
        replicas=(replica(1, 130, 0), replica(2, 120, 8_000), replica(3, 100, 2_000))
    )

    assert max_follower_lag(quorum) == 30
    assert max_follower_lag_time_ms(quorum) == 8_000


def test_lag_time_is_minus_one_when_a_lagging_follower_never_caught_up() -> None:
    quorum = description(replicas=(replica(1, 130, 0), replica(2, 0, None)))

    assert max_follower_lag(quorum) == 130
    assert max_follower_lag_time_ms(quorum) == -1
