"""Partition leader and ISR decisions: pure functions from a partition to its change record.

- A leader is chosen from the ISR members that are live, in replica order (the preferred
  leader first). Only when none is live, and unclean election is enabled, may a live replica
  outside the ISR lead; the ISR then becomes that replica alone (SPEC §7, Kafka semantics).
- Brokers that leave (fenced, shutting down, restarted) leave every ISR, but an ISR never
  becomes empty: when the last member leaves, the partition goes leaderless with that member
  as its ISR, so it can lead again, cleanly, when it comes back (Kafka does the same).
- Each function returns None when nothing would change: no record for a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

from kraft.controller.image import PartitionRegistration
from kraft.controller.records import NO_LEADER, PartitionChangeRecord


@dataclass(frozen=True, slots=True)
class LeaderChoice:
    leader: int  # NO_LEADER when no replica may lead
    isr: tuple[int, ...]
    unclean: bool


def choose_leader(
    replicas: tuple[int, ...],
    isr: tuple[int, ...],
    live: frozenset[int],
    unclean_allowed: bool,
) -> LeaderChoice:
    for broker in replicas:
        if broker in isr and broker in live:
            return LeaderChoice(broker, isr, unclean=False)
    if unclean_allowed:
        for broker in replicas:
            if broker in live:
                return LeaderChoice(broker, (broker,), unclean=True)
    return LeaderChoice(NO_LEADER, isr, unclean=False)


def change_record(
    partition: PartitionRegistration, leader: int, isr: tuple[int, ...], unclean: bool = False
) -> PartitionChangeRecord | None:
    """The record that moves `partition` to (leader, isr); None if that is where it is."""
    if leader == partition.leader and isr == partition.isr:
        return None
    return PartitionChangeRecord(
        topic_id=partition.topic_id,
        partition_id=partition.partition_id,
        leader=None if leader == partition.leader else leader,
        isr=None if isr == partition.isr else isr,
        unclean=unclean,
    )


def without_brokers(
    partition: PartitionRegistration,
    gone: frozenset[int],
    live: frozenset[int],
    unclean_allowed: bool,
) -> PartitionChangeRecord | None:
    """`gone` brokers leave the partition's leadership and ISR (`live` excludes them)."""
    assert not gone & live, f"brokers {sorted(gone & live)} both gone and live"
    isr = tuple(broker for broker in partition.isr if broker not in gone)
    leader = partition.leader
    unclean = False
    if leader in gone:
        choice = choose_leader(partition.replicas, isr, live, unclean_allowed)
        leader, isr, unclean = choice.leader, choice.isr, choice.unclean
    if not isr:  # never empty: keep the member that held the data last
        isr = (partition.leader,) if partition.leader in partition.isr else partition.isr[:1]
    return change_record(partition, leader, isr, unclean)


def elect_leaderless(
    partition: PartitionRegistration, live: frozenset[int], unclean_allowed: bool
) -> PartitionChangeRecord | None:
    """A leader for a partition that has none, if a replica may lead now."""
    if partition.has_leader:
        return None
    choice = choose_leader(partition.replicas, partition.isr, live, unclean_allowed)
    if choice.leader == NO_LEADER:
        return None
    # Members still offline leave the ISR as the partition comes back (the leader stays).
    isr = tuple(broker for broker in choice.isr if broker in live)
    return change_record(partition, choice.leader, isr, choice.unclean)


def elect_preferred(
    partition: PartitionRegistration, live: frozenset[int]
) -> PartitionChangeRecord | None:
    """Leadership back to the preferred leader when it is live and in the ISR."""
    preferred = partition.preferred_leader
    if partition.leader == preferred or preferred not in partition.isr or preferred not in live:
        return None
    return change_record(partition, preferred, partition.isr)
