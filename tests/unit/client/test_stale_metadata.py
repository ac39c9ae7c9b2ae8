"""A broker cut off from the controller answers metadata with an old view; the client keeps
the newer leader it already knows (KIP-320) and asks again."""

from __future__ import annotations

from client.cluster import Metadata, PartitionInfo, TopicInfo, without_stale_partitions


def metadata(leader: int, epoch: int, topic_id: str = "id-1", partitions: int = 1) -> Metadata:
    parts = tuple(
        PartitionInfo("t", p, leader, epoch, (1, 2, 3), (1, 2, 3)) for p in range(partitions)
    )
    return Metadata("c", 1, {}, {"t": TopicInfo("t", 0, parts, topic_id)})


def test_an_answer_at_an_older_leader_epoch_keeps_the_known_leader_and_asks_again() -> None:
    merged, stale = without_stale_partitions(metadata(2, 5), metadata(1, 4))
    assert stale
    assert merged.topics["t"].partitions[0].leader == 2


def test_a_newer_or_equal_epoch_is_taken_as_is() -> None:
    fresh = metadata(3, 6)
    assert without_stale_partitions(metadata(2, 5), fresh) == (fresh, False)
    same = metadata(2, 5)
    assert without_stale_partitions(metadata(2, 5), same) == (same, False)


def test_a_recreated_topic_starts_its_epochs_afresh() -> None:
    fresh = metadata(1, 0, topic_id="id-2")
    assert without_stale_partitions(metadata(2, 5), fresh) == (fresh, False)


def test_a_grown_topic_is_taken_as_is() -> None:
    fresh = metadata(1, 0, partitions=2)
    assert without_stale_partitions(metadata(2, 5), fresh) == (fresh, False)
