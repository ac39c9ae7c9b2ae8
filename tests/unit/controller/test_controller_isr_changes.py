"""ISR changes asked by partition leaders (KIP-497 AlterPartition): accepted only from the
current leader at the current leader and partition epochs, for live replicas."""

from __future__ import annotations

import pytest

from kraft.controller.errors import (
    IneligibleReplicaError,
    InvalidRequestError,
    NotPartitionLeaderError,
    StaleBrokerEpochError,
    StaleEpochError,
    UnknownPartitionError,
    UnknownTopicError,
)
from kraft.controller.image import PartitionRegistration
from tests.unit.controller.harness import ControllerHarness


@pytest.fixture
def cluster(harness: ControllerHarness) -> ControllerHarness:
    harness.add_brokers(1, 2, 3)
    harness.create_topic("orders", 1, 3)
    return harness


def ask(
    cluster: ControllerHarness,
    isr: tuple[int, ...],
    *,
    broker_id: int | None = None,
    broker_epoch: int | None = None,
    leader_epoch_delta: int = 0,
    partition_epoch_delta: int = 0,
) -> object:
    partition = cluster.partition("orders")
    broker_id = partition.leader if broker_id is None else broker_id
    return cluster.run(
        cluster.controller.alter_partition(
            broker_id,
            cluster.epochs[broker_id] if broker_epoch is None else broker_epoch,
            partition.topic_id,
            0,
            partition.leader_epoch + leader_epoch_delta,
            partition.partition_epoch + partition_epoch_delta,
            isr,
        )
    )


def test_isr_change_from_the_leader_is_accepted_and_bumps_the_partition_epoch(
    cluster: ControllerHarness,
) -> None:
    before = cluster.partition("orders")
    shrunk = (before.leader, before.replicas[1])

    response = ask(cluster, shrunk)

    assert isinstance(response, PartitionRegistration)
    assert response.isr == shrunk
    assert response.partition_epoch == before.partition_epoch + 1
    assert response.leader_epoch == before.leader_epoch
    assert cluster.partition("orders") == response


def test_the_new_isr_is_kept_in_replica_order(cluster: ControllerHarness) -> None:
    replicas = cluster.partition("orders").replicas

    response = ask(cluster, tuple(reversed(replicas)))

    assert isinstance(response, PartitionRegistration)
    assert response.isr == replicas


def test_stale_partition_epoch_isr_change_is_rejected(cluster: ControllerHarness) -> None:
    """KIP-497: a request built on an older partition state must not overwrite a newer one."""
    leader = cluster.partition("orders").leader
    ask(cluster, (leader,))

    with pytest.raises(StaleEpochError, match="partition epoch 0 .* is not the current 1"):
        ask(cluster, cluster.partition("orders").replicas, partition_epoch_delta=-1)


def test_stale_leader_epoch_isr_change_is_rejected(cluster: ControllerHarness) -> None:
    with pytest.raises(StaleEpochError, match="leader epoch -1"):
        ask(cluster, cluster.partition("orders").replicas, leader_epoch_delta=-1)


def test_isr_change_from_a_broker_that_is_not_the_leader_is_rejected(
    cluster: ControllerHarness,
) -> None:
    follower = cluster.partition("orders").replicas[1]

    with pytest.raises(NotPartitionLeaderError, match=f"broker {follower} does not lead"):
        ask(cluster, (follower,), broker_id=follower)


def test_isr_change_from_a_deposed_leader_is_rejected(cluster: ControllerHarness) -> None:
    old = cluster.partition("orders")
    cluster.expire(old.leader)
    cluster.heartbeat(old.leader)

    with pytest.raises(NotPartitionLeaderError):
        cluster.run(
            cluster.controller.alter_partition(
                old.leader, cluster.epochs[old.leader], old.topic_id, 0,
                old.leader_epoch, old.partition_epoch, old.replicas,
            )
        )  # fmt: skip


def test_isr_change_with_a_stale_broker_epoch_is_rejected(cluster: ControllerHarness) -> None:
    leader = cluster.partition("orders").leader

    with pytest.raises(StaleBrokerEpochError):
        ask(cluster, (leader,), broker_epoch=cluster.epochs[leader] - 100)


def test_isr_change_of_unknown_topic_or_partition_is_rejected(cluster: ControllerHarness) -> None:
    leader = cluster.partition("orders").leader
    epoch = cluster.epochs[leader]

    with pytest.raises(UnknownTopicError):
        cluster.controller.alter_partition(leader, epoch, "nope", 0, 0, 0, (leader,))
    with pytest.raises(UnknownPartitionError, match="partition 5 of topic 'orders'"):
        cluster.controller.alter_partition(
            leader, epoch, cluster.partition("orders").topic_id, 5, 0, 0, (leader,)
        )


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("without the leader", "must contain its leader"),
        ("with a non-replica", "broker 9 .* is not a replica"),
        ("with a repeat", "repeats a broker"),
    ],
)
def test_malformed_isrs_are_rejected(cluster: ControllerHarness, kind: str, message: str) -> None:
    partition = cluster.partition("orders")
    leader = partition.leader
    isr = {
        "without the leader": tuple(b for b in partition.replicas if b != leader),
        "with a non-replica": (leader, 9),
        "with a repeat": (leader, leader),
    }[kind]

    with pytest.raises(InvalidRequestError, match=message):
        ask(cluster, isr)

    assert cluster.partition("orders") == partition


def test_a_fenced_broker_may_not_join_the_isr(cluster: ControllerHarness) -> None:
    partition = cluster.partition("orders")
    follower = partition.replicas[2]
    cluster.expire(follower)

    with pytest.raises(IneligibleReplicaError, match=f"broker {follower} may not join"):
        ask(cluster, partition.replicas)


def test_an_unchanged_isr_writes_nothing(cluster: ControllerHarness) -> None:
    before = len(cluster.records)

    response = ask(cluster, cluster.partition("orders").isr)

    assert len(cluster.records) == before
    assert response == cluster.partition("orders")


def test_isr_expansion_with_a_stale_broker_epoch_of_the_joining_member_is_refused(
    harness: ControllerHarness,
) -> None:
    """KIP-903: a member rejoins the ISR only with the broker epoch its leader saw it fetch
    with, so a late or resent expansion cannot re-admit a replica that restarted since."""
    from kraft.controller.errors import StaleBrokerEpochError

    harness.add_brokers(1, 2, 3)
    harness.create_topic("orders", partitions=1, replication_factor=3)
    partition = harness.partition("orders")
    follower = next(r for r in partition.replicas if r != partition.leader)
    shrunk = tuple(r for r in partition.isr if r != follower)
    harness.alter_isr("orders", 0, shrunk)
    partition = harness.partition("orders")
    before = harness.image.copy()

    def expand(epochs: dict[int, int]) -> object:
        return harness.run(
            harness.controller.alter_partition(
                partition.leader,
                harness.epochs[partition.leader],
                partition.topic_id,
                0,
                partition.leader_epoch,
                partition.partition_epoch,
                partition.replicas,
                epochs,
            )
        )

    with pytest.raises(StaleBrokerEpochError):
        expand({follower: harness.epochs[follower] - 1})
    assert harness.image == before
    expand({follower: harness.epochs[follower]})
    assert follower in harness.partition("orders").isr
