"""Replica placement (Kafka's AdminUtils.assignReplicasToBrokers): even and rack-aware."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kraft.controller.errors import InvalidPartitionsError, InvalidReplicationFactorError
from kraft.controller.placement import place_replicas, rack_alternated

NO_RACKS: dict[int, str | None] = {}


def test_leaders_are_spread_evenly_across_brokers() -> None:
    placements = place_replicas([1, 2, 3, 4], NO_RACKS, 12, 3, start_index=0)

    leaders = Counter(replicas[0] for replicas in placements)

    assert leaders == {1: 3, 2: 3, 3: 3, 4: 3}


def test_replicas_are_spread_evenly_across_brokers() -> None:
    placements = place_replicas([1, 2, 3, 4, 5], NO_RACKS, 20, 3, start_index=2)

    replicas = Counter(broker for placement in placements for broker in placement)
    followers = Counter(broker for placement in placements for broker in placement[1:])

    assert set(replicas.values()) == {12}
    assert set(followers.values()) == {8}


def test_placement_follows_kafkas_round_robin_with_a_shifting_follower_offset() -> None:
    """AdminUtils' example: 5 brokers, 10 partitions, RF 3, start index 0."""
    placements = place_replicas([0, 1, 2, 3, 4], NO_RACKS, 10, 3, start_index=0)

    assert placements == [
        (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 0), (4, 0, 1),
        (0, 2, 3), (1, 3, 4), (2, 4, 0), (3, 0, 1), (4, 1, 2),
    ]  # fmt: skip


def test_rack_aware_placement_puts_replicas_on_distinct_racks() -> None:
    racks: dict[int, str | None] = {1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"}

    placements = place_replicas(list(racks), racks, 12, 3, start_index=1)

    for replicas in placements:
        assert len({racks[broker] for broker in replicas}) == 3, replicas
    assert set(Counter(replicas[0] for replicas in placements).values()) == {2}


def test_rack_aware_placement_with_fewer_racks_than_replicas_uses_every_rack() -> None:
    racks: dict[int, str | None] = {1: "a", 2: "a", 3: "b", 4: "b"}

    placements = place_replicas(list(racks), racks, 8, 3, start_index=0)

    for replicas in placements:
        assert len(set(replicas)) == 3
        assert {racks[broker] for broker in replicas} == {"a", "b"}


def test_brokers_alternate_racks_in_rack_aware_order() -> None:
    racks: dict[int, str | None] = {1: "a", 2: "a", 3: "b", 4: "c", 5: "b"}

    assert rack_alternated([1, 2, 3, 4, 5], racks) == [1, 3, 4, 2, 5]


def test_placement_is_rack_unaware_unless_every_broker_has_a_rack() -> None:
    racks: dict[int, str | None] = {1: "a", 2: "a", 3: None}

    assert place_replicas([1, 2, 3], racks, 3, 2, 0) == place_replicas([1, 2, 3], {}, 3, 2, 0)


def test_the_least_loaded_broker_leads_the_first_new_partition() -> None:
    placements = place_replicas([1, 2, 3], NO_RACKS, 1, 2, 0, leader_counts={1: 4, 2: 1, 3: 2})

    assert placements[0][0] == 2


def test_replication_factor_above_live_brokers_is_refused_with_counts() -> None:
    with pytest.raises(
        InvalidReplicationFactorError, match="replication factor 5 is larger than the 3 live"
    ):
        place_replicas([1, 2, 3], NO_RACKS, 1, 5, 0)


def test_zero_partitions_or_replicas_are_refused() -> None:
    with pytest.raises(InvalidPartitionsError, match="number of partitions 0"):
        place_replicas([1], NO_RACKS, 0, 1, 0)
    with pytest.raises(InvalidReplicationFactorError, match="replication factor 0"):
        place_replicas([1], NO_RACKS, 1, 0, 0)


@given(
    brokers=st.sets(st.integers(0, 50), min_size=1, max_size=8),
    rack_count=st.integers(0, 4),
    partitions=st.integers(1, 30),
    data=st.data(),
)
def test_every_placement_has_distinct_live_replicas_and_is_deterministic(
    brokers: set[int], rack_count: int, partitions: int, data: st.DataObject
) -> None:
    broker_ids = sorted(brokers)
    racks: dict[int, str | None] = (
        {b: f"r{i % rack_count}" for i, b in enumerate(broker_ids)} if rack_count else {}
    )
    replication_factor = data.draw(st.integers(1, len(broker_ids)))
    start = data.draw(st.integers(0, 100))
    first_id = data.draw(st.integers(0, 10))

    placements = place_replicas(broker_ids, racks, partitions, replication_factor, start, first_id)

    assert len(placements) == partitions
    for replicas in placements:
        assert len(replicas) == replication_factor
        assert len(set(replicas)) == replication_factor
        assert set(replicas) <= brokers
        if rack_count:
            distinct = min(replication_factor, len(set(racks.values())))
            assert len({racks[b] for b in replicas}) == distinct
    again = place_replicas(broker_ids, racks, partitions, replication_factor, start, first_id)
    assert again == placements
