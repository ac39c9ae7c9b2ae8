"""Partition leader, ISR and ELR decisions: pure functions from a partition to its change record.

- A leader is chosen from the ISR members that are live, in replica order (the preferred
  leader first); when none is, from the live eligible leader replicas (ELR, KIP-966). Only
  when neither has a live member, and unclean election is enabled, may any live replica
  lead; the ISR then becomes that replica alone (SPEC §7, Kafka semantics).
- The ELR (KIP-966): a member that leaves the ISR while the ISR left behind is smaller than
  min.insync.replicas joins the ELR. Leaders do not advance the high watermark while their
  ISR is below min.insync.replicas, so every ELR member holds every committed record. Once
  the ISR reaches min.insync.replicas again the ELR is cleared (the high watermark moves on
  without its members); a member that rejoins the ISR leaves it.
- Brokers that leave (fenced, shutting down, restarted) leave every ISR, but an ISR never
  becomes empty through them: when the last member leaves, the partition goes leaderless
  with that member as its ISR, so it can lead again, cleanly, when it comes back (Kafka
  does the same). A broker whose log directory is new (its data is gone) leaves the ISR and
  the ELR for good, the last member too: it may never be elected cleanly from data it lost.
- Each function returns None when nothing would change: no record for a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    elr: tuple[int, ...] = (),
) -> LeaderChoice:
    for broker in replicas:
        if broker in isr and broker in live:
            return LeaderChoice(broker, isr, unclean=False)
    for broker in replicas:
        if broker in elr and broker in live:
            return LeaderChoice(broker, (broker,), unclean=False)
    if unclean_allowed:
        for broker in replicas:
            if broker in live:
                return LeaderChoice(broker, (broker,), unclean=True)
    return LeaderChoice(NO_LEADER, isr, unclean=False)


def next_elr(
    partition: PartitionRegistration,
    isr: tuple[int, ...],
    min_insync_replicas: int,
    unclean: bool = False,
    lost_data: frozenset[int] = frozenset(),
) -> tuple[int, ...]:
    """The ELR once the ISR becomes `isr` (see the module docstring), in replica order."""
    if unclean or len(isr) >= min_insync_replicas:
        return ()  # an unclean leader's log is the truth now; or the ISR is enough again
    eligible = (set(partition.elr) | set(partition.isr)) - set(isr) - lost_data
    return tuple(broker for broker in partition.replicas if broker in eligible)


def change_record(
    partition: PartitionRegistration,
    leader: int,
    isr: tuple[int, ...],
    unclean: bool = False,
    elr: tuple[int, ...] | None = None,
) -> PartitionChangeRecord | None:
    """The record that moves `partition` to (leader, isr, elr); None if that is where it is.
    `elr` None keeps the partition's ELR."""
    elr = partition.elr if elr is None else elr
    if leader == partition.leader and isr == partition.isr and elr == partition.elr:
        return None
    return PartitionChangeRecord(
        topic_id=partition.topic_id,
        partition_id=partition.partition_id,
        leader=None if leader == partition.leader else leader,
        isr=None if isr == partition.isr else isr,
        unclean=unclean,
        elr=None if elr == partition.elr else elr,
    )


def without_brokers(
    partition: PartitionRegistration,
    gone: frozenset[int],
    live: frozenset[int],
    unclean_allowed: bool,
    min_insync_replicas: int,
    lost_data: frozenset[int] = frozenset(),
) -> PartitionChangeRecord | None:
    """`gone` brokers leave the partition's leadership and ISR (`live` excludes them);
    those of them in `lost_data` also leave its ELR, and may empty its ISR."""
    assert not gone & live, f"brokers {sorted(gone & live)} both gone and live"
    assert lost_data <= gone, f"brokers {sorted(lost_data - gone)} lost data but are not gone"
    isr = tuple(broker for broker in partition.isr if broker not in gone)
    leader = partition.leader
    unclean = False
    elr = tuple(broker for broker in partition.elr if broker not in lost_data)
    if leader in gone or (not isr and leader == NO_LEADER):
        choice = choose_leader(partition.replicas, isr, live, unclean_allowed, elr)
        leader, isr, unclean = choice.leader, choice.isr, choice.unclean
    if not isr:  # keep the member that held the data last, unless its data is gone
        kept = (partition.leader,) if partition.leader in partition.isr else partition.isr[:1]
        isr = tuple(broker for broker in kept if broker not in lost_data)
    bookkeeping = partition if not lost_data else _without_elr(partition, lost_data)
    return change_record(
        partition,
        leader,
        isr,
        unclean,
        next_elr(bookkeeping, isr, min_insync_replicas, unclean, lost_data),
    )


def elect_leaderless(
    partition: PartitionRegistration,
    live: frozenset[int],
    unclean_allowed: bool,
    min_insync_replicas: int,
) -> PartitionChangeRecord | None:
    """A leader for a partition that has none, if a replica may lead now."""
    if partition.has_leader:
        return None
    choice = choose_leader(partition.replicas, partition.isr, live, unclean_allowed, partition.elr)
    if choice.leader == NO_LEADER:
        return None
    # Members still offline leave the ISR as the partition comes back (the leader stays).
    isr = tuple(broker for broker in choice.isr if broker in live)
    elr = next_elr(partition, isr, min_insync_replicas, choice.unclean)
    return change_record(partition, choice.leader, isr, choice.unclean, elr)


def with_min_insync_replicas_changed(
    partition: PartitionRegistration,
) -> PartitionChangeRecord | None:
    """min.insync.replicas of the topic changed: the ELR is cleared (KIP-966), since
    leaders may have advanced the high watermark under the old value."""
    return change_record(partition, partition.leader, partition.isr, elr=())


def _without_elr(
    partition: PartitionRegistration, brokers: frozenset[int]
) -> PartitionRegistration:
    return replace(partition, elr=tuple(b for b in partition.elr if b not in brokers))


def elect_preferred(
    partition: PartitionRegistration, live: frozenset[int]
) -> PartitionChangeRecord | None:
    """Leadership back to the preferred leader when it is live and in the ISR."""
    preferred = partition.preferred_leader
    if partition.leader == preferred or preferred not in partition.isr or preferred not in live:
        return None
    return change_record(partition, preferred, partition.isr)
