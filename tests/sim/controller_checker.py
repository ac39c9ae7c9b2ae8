"""The invariants of the controller simulation, over the committed metadata log.

The checker replays the global committed log (the entries the quorum checker has seen
committed, in offset order) into its own reference MetadataImage, decoding every DATA
entry with the real serde, and keeps the image as it stood after every committed offset.
Against that history it checks:

1. every node's image, whenever it applies an entry or loads a snapshot, equals the
   reference image at the node's applied end, applied_offset included;
2. in every committed image, a partition's ISR is within its replicas and empty only while
   it has no leader (KIP-966: its last member lost its data), its ELR is within its replicas
   and apart from its ISR, and its leader is NO_LEADER or an ISR member (checked for every
   partition a record touches);
3. no two different leaders ever share (topic id, partition id, leader epoch) in the
   committed history;
4. a partition's leader epoch and partition epoch never decrease in the committed history;
5. a clean leader change names a member of the partition's ISR or ELR (KIP-966) as it was
   just before;
6. a broker that registers with a new log directory (its data is gone) is in no ISR and no
   ELR once that entry is applied: it may never be elected cleanly from what it lost.

Each check raises InvariantViolation naming one fact; the simulation adds seed and event.
"""

from __future__ import annotations

from kraft.controller.image import MetadataImage, PartitionRegistration
from kraft.controller.records import (
    NO_LEADER,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
)
from kraft.controller.serde import decode_entry
from kraft.raft.types import EntryKind
from tests.sim.checker import CommittedEntry, InvariantViolation

PartitionKey = tuple[str, int]


def check_partition(partition: PartitionRegistration, where: str) -> None:
    """Invariant 2, one fact per check."""
    name = f"partition {partition.topic_id}/{partition.partition_id} {where}"
    if not partition.isr and partition.leader != NO_LEADER:
        raise InvariantViolation(f"{name} has an empty ISR and leader {partition.leader}")
    both = sorted(set(partition.elr) & set(partition.isr))
    if both:
        raise InvariantViolation(f"{name} has {both} in both its ISR and its ELR")
    stray = sorted(set(partition.elr) - set(partition.replicas))
    if stray:
        raise InvariantViolation(f"{name} has ELR members {stray} outside its replicas")
    outside = sorted(set(partition.isr) - set(partition.replicas))
    if outside:
        raise InvariantViolation(
            f"{name} has ISR members {outside} outside its replicas {list(partition.replicas)}"
        )
    if partition.leader != NO_LEADER and partition.leader not in partition.isr:
        raise InvariantViolation(
            f"{name} has leader {partition.leader} outside its ISR {list(partition.isr)} "
            f"(leader epoch {partition.leader_epoch})"
        )


def touched_partition(record: MetadataRecord) -> PartitionKey | None:
    if isinstance(record, PartitionRecord | PartitionChangeRecord):
        return (record.topic_id, record.partition_id)
    return None


class ReferenceReplay:
    """The committed history replayed into reference images, and invariants 1-4."""

    def __init__(self) -> None:
        self.image = MetadataImage()
        self.end = 0  # every committed offset below it is replayed
        self.images: dict[int, MetadataImage] = {0: self.image.copy()}  # end -> image
        self.leader_of: dict[tuple[str, int, int], int] = {}  # (topic, partition, epoch)
        self.last_epochs: dict[PartitionKey, tuple[int, int]] = {}
        self.records_replayed = 0

    def advance(self, committed: dict[int, CommittedEntry], committed_end: int) -> None:
        """Replays every newly committed offset below `committed_end`."""
        while self.end < committed_end:
            entry = committed[self.end]
            if entry.kind == EntryKind.DATA:
                self._apply(decode_entry(entry.data), self.end)
                self.images[self.end + 1] = self.image.copy()
            else:
                self.images[self.end + 1] = self.images[self.end]  # unchanged, shared
            self.end += 1

    def _apply(self, records: list[MetadataRecord], offset: int) -> None:
        """One committed entry: the records of one batch of controller decisions."""
        lost_data = self._check_elections(records, offset)
        try:
            self.image.apply_batch(records, offset)
        except AssertionError as error:
            raise InvariantViolation(
                f"the committed entry at offset {offset} does not apply to the image replayed "
                f"from the committed log: {error} ({records!r})"
            ) from error
        self.records_replayed += len(records)
        for key in sorted({key for key in map(touched_partition, records) if key is not None}):
            partition = self.image.partition(*key)
            if partition is None:
                continue  # its topic was deleted later in the same entry
            check_partition(partition, f"after committed offset {offset}")
            self._check_history(key, partition, offset)
        for broker_id in lost_data:
            self._check_left_everything(broker_id, offset)

    def _check_elections(self, records: list[MetadataRecord], offset: int) -> list[int]:
        """Invariant 5, record by record on a scratch image; returns the brokers that
        registered with a new log directory in this entry (for invariant 6)."""
        scratch = self.image.copy()
        lost_data: list[int] = []
        for record in records:
            if isinstance(record, RegisterBrokerRecord):
                before = scratch.brokers.get(record.broker_id)
                if (
                    before is not None
                    and before.log_dir_id is not None
                    and record.log_dir_id is not None
                    and before.log_dir_id != record.log_dir_id
                ):
                    lost_data.append(record.broker_id)
            if isinstance(record, PartitionChangeRecord) and not record.unclean:
                previous = scratch.partition(record.topic_id, record.partition_id)
                leader = record.leader
                eligible = () if previous is None else (*previous.isr, *previous.elr)
                changed = previous is not None and leader not in (None, NO_LEADER, previous.leader)
                if changed and leader not in eligible:
                    raise InvariantViolation(
                        f"partition {record.topic_id}/{record.partition_id} elected {leader} "
                        f"cleanly at committed offset {offset}, outside its ISR and ELR "
                        f"{list(eligible)}"
                    )
            try:
                scratch.apply(record, scratch.applied_offset + 1)
            except AssertionError:
                break  # _apply reports it, with the whole entry
        return lost_data

    def _check_left_everything(self, broker_id: int, offset: int) -> None:
        """Invariant 6."""
        for topic in self.image.topics_by_id.values():
            for partition in topic.partitions.values():
                if broker_id in partition.isr or broker_id in partition.elr:
                    raise InvariantViolation(
                        f"broker {broker_id} registered with a new log directory at committed "
                        f"offset {offset} but is still in partition {topic.topic_id}/"
                        f"{partition.partition_id}: ISR {list(partition.isr)}, ELR "
                        f"{list(partition.elr)}"
                    )

    def _check_history(
        self, key: PartitionKey, partition: PartitionRegistration, offset: int
    ) -> None:
        name = f"partition {key[0]}/{key[1]}"
        epoch_key = (key[0], key[1], partition.leader_epoch)
        leader = self.leader_of.setdefault(epoch_key, partition.leader)
        if leader != partition.leader:
            raise InvariantViolation(
                f"{name} has two leaders in leader epoch {partition.leader_epoch}: {leader} "
                f"and then {partition.leader} (committed offset {offset})"
            )
        previous = self.last_epochs.get(key)
        current = (partition.leader_epoch, partition.partition_epoch)
        if previous is not None:
            if current[0] < previous[0]:
                raise InvariantViolation(
                    f"{name} leader epoch went back from {previous[0]} to {current[0]} at "
                    f"committed offset {offset}"
                )
            if current[1] < previous[1]:
                raise InvariantViolation(
                    f"{name} partition epoch went back from {previous[1]} to {current[1]} at "
                    f"committed offset {offset}"
                )
        self.last_epochs[key] = current

    def check_node_image(
        self, node_id: int, image: MetadataImage, applied_end: int, how: str
    ) -> None:
        """Invariant 1: a node's image equals the reference at its applied end."""
        reference = self.images.get(applied_end)
        if reference is None:
            raise InvariantViolation(
                f"node {node_id} {how} up to offset {applied_end}, but only offsets below "
                f"{self.end} were ever committed"
            )
        if image.applied_offset != reference.applied_offset:
            raise InvariantViolation(
                f"node {node_id} {how} up to offset {applied_end} with image applied_offset "
                f"{image.applied_offset}; the committed log gives {reference.applied_offset}"
            )
        if image != reference:
            raise InvariantViolation(
                f"node {node_id} {how} up to offset {applied_end}: its image differs from the "
                f"committed log's: {describe_difference(image, reference)}"
            )


def describe_difference(image: MetadataImage, reference: MetadataImage) -> str:
    """The first difference between two images, for a failure message."""
    if image.next_broker_epoch != reference.next_broker_epoch:
        return f"next broker epoch {image.next_broker_epoch} vs {reference.next_broker_epoch}"
    for broker_id in sorted(set(image.brokers) | set(reference.brokers)):
        mine, theirs = image.brokers.get(broker_id), reference.brokers.get(broker_id)
        if mine != theirs:
            return f"broker {broker_id}: {mine} vs {theirs}"
    for topic_id in sorted(set(image.topics_by_id) | set(reference.topics_by_id)):
        mine_topic = image.topics_by_id.get(topic_id)
        theirs_topic = reference.topics_by_id.get(topic_id)
        if mine_topic != theirs_topic:
            return f"topic {topic_id}: {mine_topic} vs {theirs_topic}"
    return "configs differ"
