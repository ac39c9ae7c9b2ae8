"""Broker registration, heartbeats, sessions and fencing (KIP-631), and what fencing does to
partition leadership: elections from the ISR (SPEC §7), controlled shutdown, rebalancing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kraft.controller.controller import (
    PREFERRED_LEADER_ELECTIONS_PER_TICK_MAX,
    HeartbeatResponse,
    QuorumController,
)
from kraft.controller.errors import InvalidRequestError, StaleBrokerEpochError
from kraft.controller.records import NO_LEADER, Endpoint
from tests.unit.controller.harness import SESSION_TIMEOUT_MS, SETTINGS, ControllerHarness

# min.insync.replicas 1: a shrunk ISR is never below it, so no replica becomes an eligible
# leader replica (KIP-966, tests/unit/controller/test_controller_elr.py) and the last
# member of the ISR is the only one that may lead cleanly.
NO_ELR = {"min.insync.replicas": "1"}


def test_a_new_broker_starts_fenced_and_is_unfenced_once_caught_up(
    harness: ControllerHarness,
) -> None:
    """KIP-631: a broker registers fenced and is unfenced once it has caught up."""
    harness.register(1)
    assert harness.image.brokers[1].fenced

    behind = harness.heartbeat(1, caught_up=False)
    caught_up = harness.heartbeat(1)

    assert behind == HeartbeatResponse(
        is_fenced=True, in_controlled_shutdown=False, should_shutdown=False
    )
    assert caught_up.is_fenced is False
    assert harness.image.live_brokers() == [1]


def test_reregistering_the_same_incarnation_returns_the_same_epoch(
    harness: ControllerHarness,
) -> None:
    first = harness.register(1)
    records_before = len(harness.records)

    again = harness.register(1)

    assert again == first
    assert len(harness.records) == records_before


def test_broker_epochs_only_grow(harness: ControllerHarness) -> None:
    epochs = [
        harness.register(1, incarnation="a"),
        harness.register(2),
        harness.register(1, incarnation="b"),
    ]

    assert epochs == sorted(set(epochs))
    assert harness.image.next_broker_epoch > max(epochs)


def test_a_new_incarnation_gets_a_new_epoch_and_gives_up_its_leaderships(
    harness: ControllerHarness,
) -> None:
    """A restarted broker may have lost unflushed data: it leaves every ISR."""
    harness.add_brokers(1, 2, 3)
    harness.create_topic("orders", partitions=3)
    old_epoch = harness.epochs[1]

    new_epoch = harness.register(1, incarnation="b")

    assert new_epoch > old_epoch
    assert harness.image.brokers[1].fenced
    for partition in harness.topic("orders").partitions.values():
        assert partition.leader != 1
        assert 1 not in partition.isr


def test_heartbeat_with_a_stale_broker_epoch_is_rejected(harness: ControllerHarness) -> None:
    harness.add_brokers(1)
    old_epoch = harness.epochs[1]
    harness.register(1, incarnation="b")

    with pytest.raises(StaleBrokerEpochError, match=f"broker epoch {old_epoch} of broker 1"):
        harness.controller.broker_heartbeat(1, old_epoch, 0, 0, False, harness.now_ms)


def test_heartbeat_of_an_unknown_broker_is_rejected(harness: ControllerHarness) -> None:
    with pytest.raises(StaleBrokerEpochError, match="broker 7 is not registered"):
        harness.controller.broker_heartbeat(7, 0, 0, 0, False, harness.now_ms)


@pytest.mark.parametrize(
    ("broker_id", "incarnation", "endpoints", "rack", "message"),
    [
        (-1, "x", (), None, "broker id -1"),
        (1, "", (), None, "incarnation id"),
        (1, "x", (Endpoint("RPC", "h", 1), Endpoint("RPC", "h", 2)), None, "repeat"),
        (1, "x", (Endpoint("RPC", "h", 70000),), None, "port 70000"),
        (1, "x", (), "", "rack"),
    ],
)
def test_invalid_registrations_are_refused(
    harness: ControllerHarness,
    broker_id: int,
    incarnation: str,
    endpoints: tuple[Endpoint, ...],
    rack: str | None,
    message: str,
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        harness.controller.register_broker(broker_id, incarnation, endpoints, rack, 0)
    assert harness.image.brokers == {}


def test_a_broker_whose_session_expires_is_fenced(harness: ControllerHarness) -> None:
    harness.add_brokers(1, 2)

    fenced = harness.expire(2)

    assert fenced == (2,)
    assert harness.image.fenced_brokers() == [2]


def test_heartbeats_keep_a_session_alive(harness: ControllerHarness) -> None:
    harness.add_brokers(1)

    for _ in range(10):
        harness.now_ms += SESSION_TIMEOUT_MS - 1
        harness.heartbeat(1)
        assert harness.tick() == ()

    assert harness.image.live_brokers() == [1]


def test_a_session_lasts_exactly_the_timeout(harness: ControllerHarness) -> None:
    harness.add_brokers(1)

    at_timeout = harness.tick(SESSION_TIMEOUT_MS)
    after_timeout = harness.tick(1)

    assert at_timeout == ()
    assert after_timeout == (1,)


def test_a_new_controller_starts_every_session_afresh(harness: ControllerHarness) -> None:
    """Sessions are not in the log: a failover must not fence brokers that kept heartbeating."""
    harness.add_brokers(1, 2)
    committed = harness.image.copy()

    successor = QuorumController(committed, SETTINGS, lambda: "unused")
    first = successor.tick(10 * SESSION_TIMEOUT_MS)
    later = successor.tick(11 * SESSION_TIMEOUT_MS + 1)

    assert first.records == []
    assert later.response == (1, 2)


def test_fenced_leader_is_replaced_by_an_isr_member(harness: ControllerHarness) -> None:
    """SPEC §7: a new leader comes from the ISR; the fenced broker leaves the ISR."""
    harness.add_brokers(1, 2, 3)
    harness.create_topic("orders", partitions=1)
    before = harness.partition("orders")
    assert before.leader == before.replicas[0]
    fenced_leader = before.leader

    harness.expire(fenced_leader)

    after = harness.partition("orders")
    assert after.leader == before.replicas[1]
    assert after.isr == tuple(b for b in before.replicas if b != fenced_leader)
    assert after.leader_epoch == before.leader_epoch + 1
    assert harness.controller.leader_elections == 1


def test_a_fenced_follower_only_leaves_the_isr(harness: ControllerHarness) -> None:
    harness.add_brokers(1, 2, 3)
    harness.create_topic("orders", partitions=1)
    before = harness.partition("orders")
    follower = before.replicas[2]

    harness.expire(follower)

    after = harness.partition("orders")
    assert after.leader == before.leader
    assert after.leader_epoch == before.leader_epoch
    assert after.isr == before.replicas[:2]
    assert after.partition_epoch == before.partition_epoch + 1


def test_fencing_the_last_isr_member_leaves_the_partition_leaderless_with_it_in_the_isr(
    harness: ControllerHarness,
) -> None:
    """Kafka never empties an ISR: the last member stays, so it can lead again cleanly."""
    harness.add_brokers(1, 2)
    harness.create_topic("orders", partitions=1, replication_factor=2, configs=NO_ELR)
    leader = harness.partition("orders").leader
    harness.alter_isr("orders", 0, (leader,))

    harness.expire(leader)

    after = harness.partition("orders")
    assert after.leader == NO_LEADER
    assert after.isr == (leader,)
    assert harness.image.offline_partitions() == [("orders", 0)]


def test_a_leaderless_partition_gets_its_last_isr_member_back_as_leader(
    harness: ControllerHarness,
) -> None:
    harness.add_brokers(1, 2)
    harness.create_topic("orders", partitions=1, replication_factor=2, configs=NO_ELR)
    leader = harness.partition("orders").leader
    harness.alter_isr("orders", 0, (leader,))
    harness.expire(leader)

    harness.heartbeat(leader)
    harness.tick()

    after = harness.partition("orders")
    assert after.leader == leader
    assert after.isr == (leader,)


def test_unclean_election_only_when_enabled(harness: ControllerHarness) -> None:
    """SPEC §7: a replica outside the ISR may lead only if unclean.leader.election.enable."""
    harness.add_brokers(1, 2)
    harness.create_topic("orders", partitions=1, replication_factor=2, configs=NO_ELR)
    leader = harness.partition("orders").leader
    other = 3 - leader
    harness.alter_isr("orders", 0, (leader,))
    harness.expire(leader)
    assert harness.partition("orders").leader == NO_LEADER

    harness.tick()
    still_leaderless = harness.partition("orders")
    harness.run(
        harness.controller.alter_topic_configs(
            "orders", {"unclean.leader.election.enable": "true"}, (), validate_only=False
        )
    )
    harness.tick()

    assert still_leaderless.leader == NO_LEADER
    after = harness.partition("orders")
    assert after.leader == other
    assert after.isr == (other,)
    assert harness.controller.unclean_leader_elections == 1


def test_unclean_election_from_the_cluster_default() -> None:
    harness = ControllerHarness(replace(SETTINGS, unclean_leader_election_enable=True))
    harness.add_brokers(1, 2)
    harness.create_topic("orders", partitions=1, replication_factor=2, configs=NO_ELR)
    leader = harness.partition("orders").leader
    harness.alter_isr("orders", 0, (leader,))

    harness.expire(leader)

    assert harness.partition("orders").leader == 3 - leader
    assert harness.controller.unclean_leader_elections == 1
    assert harness.replayed() == harness.image


def test_controlled_shutdown_moves_leadership_before_shutdown(
    harness: ControllerHarness,
) -> None:
    """KIP-631: a broker shutting down hands over its leaderships, then may stop."""
    harness.add_brokers(1, 2, 3)
    harness.create_topic("orders", partitions=6)
    led_by_1 = [key for key, leader in harness.leaders().items() if leader == 1]
    assert led_by_1

    response = harness.heartbeat(1, want_shutdown=True)

    assert response == HeartbeatResponse(
        is_fenced=True, in_controlled_shutdown=True, should_shutdown=True
    )
    assert 1 not in harness.leaders().values()
    for name, partition_id in led_by_1:
        assert 1 not in harness.partition(name, partition_id).isr
    assert 1 not in harness.image.live_brokers()


def test_controlled_shutdown_of_the_last_isr_member_leaves_the_partition_leaderless(
    harness: ControllerHarness,
) -> None:
    harness.add_brokers(1, 2)
    harness.create_topic("orders", partitions=1, replication_factor=2, configs=NO_ELR)
    leader = harness.partition("orders").leader
    harness.alter_isr("orders", 0, (leader,))

    response = harness.heartbeat(leader, want_shutdown=True)

    assert response.should_shutdown
    assert harness.partition("orders").leader == NO_LEADER
    assert harness.partition("orders").isr == (leader,)


def test_a_broker_in_controlled_shutdown_is_not_unfenced_or_given_leadership(
    harness: ControllerHarness,
) -> None:
    harness.add_brokers(1, 2)
    harness.create_topic("orders", partitions=2, replication_factor=2)
    harness.heartbeat(1, want_shutdown=True)

    harness.heartbeat(1)
    harness.tick()

    assert 1 not in harness.leaders().values()
    assert harness.image.brokers[1].in_controlled_shutdown


def test_preferred_leader_regains_leadership_after_rejoin(harness: ControllerHarness) -> None:
    harness.add_brokers(1, 2, 3)
    harness.create_topic("orders", partitions=3)
    preferred = {key: harness.partition(*key).preferred_leader for key in harness.leaders()}
    harness.expire(1)
    assert 1 not in harness.leaders().values()

    harness.heartbeat(1)  # caught up: unfenced, but not in any ISR yet
    harness.tick()
    assert 1 not in harness.leaders().values()
    for name, partition_id in preferred:  # each leader sees broker 1 catch up
        harness.alter_isr(name, partition_id, harness.partition(name, partition_id).replicas)
    harness.tick()

    assert harness.leaders() == preferred


def test_rebalancing_moves_a_bounded_number_of_leaders_per_tick(
    harness: ControllerHarness,
) -> None:
    partitions = 2 * PREFERRED_LEADER_ELECTIONS_PER_TICK_MAX + 50  # half prefer broker 1
    harness.add_brokers(1, 2)
    harness.create_topic("big", partitions=partitions, replication_factor=2)
    harness.expire(1)
    harness.heartbeat(1)
    for partition_id in range(partitions):
        harness.alter_isr("big", partition_id, harness.partition("big", partition_id).replicas)

    moved_first = harness.controller.leader_elections
    harness.tick()
    moved_first = harness.controller.leader_elections - moved_first
    moved_second = harness.controller.leader_elections
    harness.tick()
    moved_second = harness.controller.leader_elections - moved_second

    assert moved_first == PREFERRED_LEADER_ELECTIONS_PER_TICK_MAX
    preferring_1 = [p for p in harness.topic("big").partitions.values() if p.preferred_leader == 1]
    assert moved_first + moved_second == len(preferring_1)


def test_fencing_several_brokers_at_once_keeps_the_leaders_last_isr_spot(
    harness: ControllerHarness,
) -> None:
    harness.add_brokers(1, 2, 3)
    harness.create_topic("orders", partitions=1, replication_factor=2, configs=NO_ELR)
    replicas = harness.partition("orders").replicas

    harness.expire(*replicas)

    after = harness.partition("orders")
    assert after.leader == NO_LEADER
    assert after.isr == (replicas[0],)


def test_an_idle_tick_writes_nothing(harness: ControllerHarness) -> None:
    harness.add_brokers(1, 2, 3)
    harness.create_topic("orders")
    harness.tick()
    before = len(harness.records)

    for _ in range(3):
        harness.heartbeat_all_but()
        harness.tick(SESSION_TIMEOUT_MS // 2)

    assert len(harness.records) == before


def test_a_new_controller_starts_the_former_leaders_session_when_it_last_spoke(
    harness: ControllerHarness,
) -> None:
    """A new active controller gives every broker a fresh session, except the former active
    controller, known to have been silent since before the election: its session starts
    then, so its partitions move a fetch timeout sooner."""
    harness.add_brokers(1, 2, 3)
    fresh = QuorumController(harness.image.copy(), SETTINGS, lambda: "unused")
    now_ms = 10_000
    fresh.start_sessions(now_ms, {2: now_ms - 500})
    just_before = fresh.tick(now_ms + SESSION_TIMEOUT_MS - 500)
    assert just_before.response == ()
    fenced = fresh.tick(now_ms + SESSION_TIMEOUT_MS - 499)
    assert fenced.response == (2,)
    assert fresh.tick(now_ms + SESSION_TIMEOUT_MS + 1).response == (1, 3)
