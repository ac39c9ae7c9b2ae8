"""Replica placement for new partitions: Kafka's round-robin assignment (AdminUtils).

Partition p's first replica (its preferred leader) is broker (start_index + p) mod n of the
broker list, so leaders spread evenly; followers follow at a shift that grows by one every n
partitions, so followers spread evenly too. When every broker has a rack, the broker list
alternates racks first (r1, r2, r3, r1, ...) and a follower is taken only from a rack that
holds no replica of the partition yet, while such racks remain.

Pure and deterministic: the caller chooses `start_index` (no global random).
"""

from __future__ import annotations

from collections.abc import Mapping

from kraft.controller.errors import InvalidPartitionsError, InvalidReplicationFactorError


def place_replicas(
    broker_ids: list[int],
    racks: Mapping[int, str | None],
    partitions: int,
    replication_factor: int,
    start_index: int,
    start_partition_id: int = 0,
    leader_counts: Mapping[int, int] | None = None,
) -> list[tuple[int, ...]]:
    """Replica lists of partitions start_partition_id .. start_partition_id + partitions - 1;
    `broker_ids` are the brokers that may hold them (the live ones).

    With `leader_counts` (partitions each broker leads now), the first partition's leader is
    the broker that leads fewest (ties: the first from `start_index` on), so leaders stay
    spread across topics; `start_index` still sets the followers' shift."""
    if partitions < 1:
        raise InvalidPartitionsError(f"number of partitions {partitions} must be at least 1")
    if replication_factor < 1:
        raise InvalidReplicationFactorError(
            f"replication factor {replication_factor} must be at least 1"
        )
    if replication_factor > len(broker_ids):
        raise InvalidReplicationFactorError(
            f"replication factor {replication_factor} is larger than the "
            f"{len(broker_ids)} live brokers"
        )
    assert len(set(broker_ids)) == len(broker_ids), f"duplicate broker ids {broker_ids}"
    assert start_index >= 0 and start_partition_id >= 0
    rack_aware = all(racks.get(broker) is not None for broker in broker_ids)
    brokers = rack_alternated(broker_ids, racks) if rack_aware else sorted(broker_ids)
    first_index = start_index
    if leader_counts is not None:
        first_index = _least_loaded_index(brokers, leader_counts, start_index, start_partition_id)
    start = (first_index, start_index)
    if rack_aware:
        return _place_rack_aware(
            brokers, racks, partitions, replication_factor, start, start_partition_id
        )
    return _place(brokers, partitions, replication_factor, start, start_partition_id)


def _least_loaded_index(
    brokers: list[int], leader_counts: Mapping[int, int], start_index: int, first_id: int
) -> int:
    """The start index that makes partition `first_id` led by the least-loaded broker."""
    count = len(brokers)
    rotation = [(start_index + first_id + i) % count for i in range(count)]
    best = min(rotation, key=lambda index: leader_counts.get(brokers[index], 0))
    return (best - first_id) % count


def _replica_index(first_index: int, shift: int, replica: int, broker_count: int) -> int:
    return (first_index + 1 + (shift + replica) % (broker_count - 1)) % broker_count


def _place(
    brokers: list[int],
    partitions: int,
    replication_factor: int,
    start: tuple[int, int],  # (index of the first leader, initial follower shift)
    first_id: int,
) -> list[tuple[int, ...]]:
    count = len(brokers)
    start_index, shift = start
    placements: list[tuple[int, ...]] = []
    for partition_id in range(first_id, first_id + partitions):
        if partition_id > 0 and partition_id % count == 0:
            shift += 1
        first = (partition_id + start_index) % count
        followers = [
            brokers[_replica_index(first, shift, j, count)] for j in range(replication_factor - 1)
        ]
        placements.append((brokers[first], *followers))
    return placements


def rack_alternated(broker_ids: list[int], racks: Mapping[int, str | None]) -> list[int]:
    """Brokers ordered r1, r2, r3, r1, r2, ... (racks and brokers within a rack sorted)."""
    by_rack: dict[str, list[int]] = {}
    for broker in sorted(broker_ids):
        by_rack.setdefault(str(racks[broker]), []).append(broker)
    ordered: list[int] = []
    rack_names = sorted(by_rack)
    for round_index in range(max(len(brokers) for brokers in by_rack.values())):
        for rack in rack_names:
            if round_index < len(by_rack[rack]):
                ordered.append(by_rack[rack][round_index])
    return ordered


def _place_rack_aware(
    brokers: list[int],  # rack-alternated
    racks: Mapping[int, str | None],
    partitions: int,
    replication_factor: int,
    start: tuple[int, int],  # (index of the first leader, initial follower shift)
    first_id: int,
) -> list[tuple[int, ...]]:
    count = len(brokers)
    rack_count = len({racks[broker] for broker in brokers})
    start_index, shift = start
    placements: list[tuple[int, ...]] = []
    for partition_id in range(first_id, first_id + partitions):
        if partition_id > 0 and partition_id % count == 0:
            shift += 1
        first = (partition_id + start_index) % count
        replicas = [brokers[first]]
        racks_used = {racks[brokers[first]]}
        k = 0
        while len(replicas) < replication_factor:
            # One pass over the brokers always finds one: there are at least rf of them.
            assert k < count * (replication_factor + 1), "rack-aware placement found no broker"
            broker = brokers[_replica_index(first, shift * rack_count, k, count)]
            k += 1
            rack_is_new = racks[broker] not in racks_used or len(racks_used) == rack_count
            if rack_is_new and broker not in replicas:
                replicas.append(broker)
                racks_used.add(racks[broker])
        placements.append(tuple(replicas))
    return placements
