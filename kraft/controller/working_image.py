"""The controller's working image, with the indexes its decisions consult on every request.

The committed image plus the records the controller has decided, applied at once (at
consecutive offsets after the committed image's, not the ones the log will give them). Beside
the image it keeps, updated record by record rather than recomputed by scanning every
partition: how many partitions each broker leads (placement, controlled shutdown), the
topic names by collision key (Kafka's '.' vs '_' rule), and whether anything changed since
the last election scan (so an idle tick does not walk every partition).
"""

from __future__ import annotations

from collections import Counter

from kraft.controller.image import MetadataImage
from kraft.controller.records import (
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RemoveTopicRecord,
    TopicRecord,
)
from kraft.controller.topics import collision_key


class WorkingImage:
    def __init__(self, committed: MetadataImage) -> None:
        self.image = committed.copy()  # the committed image stays as it was
        self._leader_counts: Counter[int] = Counter()  # NO_LEADER counts leaderless ones
        self._names_by_collision_key: dict[str, str] = {}
        for topic in self.image.topics_by_id.values():
            self._names_by_collision_key[collision_key(topic.name)] = topic.name
            self._leader_counts.update(p.leader for p in topic.partitions.values())
        self.changed_since_scan = True

    def apply(self, record: MetadataRecord) -> None:
        if isinstance(record, PartitionRecord | PartitionChangeRecord):
            before = self.image.partition(record.topic_id, record.partition_id)
            if before is not None:
                self._leader_counts[before.leader] -= 1
        elif isinstance(record, RemoveTopicRecord):
            topic = self.image.topics_by_id[record.topic_id]
            self._leader_counts.subtract(p.leader for p in topic.partitions.values())
            if self._names_by_collision_key.get(collision_key(topic.name)) == topic.name:
                del self._names_by_collision_key[collision_key(topic.name)]
        elif isinstance(record, TopicRecord):
            self._names_by_collision_key[collision_key(record.name)] = record.name
        self.image.apply(record, self.image.applied_offset + 1)
        if isinstance(record, PartitionRecord | PartitionChangeRecord):
            after = self.image.partition(record.topic_id, record.partition_id)
            assert after is not None
            self._leader_counts[after.leader] += 1
        # New topics and partitions start led by their live preferred replica with a full
        # ISR, and removing a topic makes nothing electable: only other records (fencing,
        # ISR and leader changes, configs such as unclean election) can leave a partition
        # that the next tick should elect for. Skipping the scan for the rest keeps topic
        # creation fast with many topics (bench/controller_topic_create.py).
        if not isinstance(record, TopicRecord | PartitionRecord | RemoveTopicRecord):
            self.changed_since_scan = True

    def leader_counts(self) -> Counter[int]:
        """Partitions led per broker id (NO_LEADER: leaderless ones). Do not mutate."""
        return self._leader_counts

    def leads_any(self, broker_id: int) -> bool:
        return self._leader_counts[broker_id] > 0

    def partition_count(self) -> int:
        return sum(self._leader_counts.values())

    def colliding_topic(self, name: str) -> str | None:
        """The existing topic, other than `name`, whose name collides with it."""
        existing = self._names_by_collision_key.get(collision_key(name))
        return None if existing == name else existing
