"""Eligible leader replicas (KIP-966) and brokers that lost their data.

The controller keeps, per partition, the replicas that left the ISR while it was smaller than
min.insync.replicas. Leaders do not advance the high watermark then, so these replicas hold
every committed record and may lead cleanly when no ISR member can. A broker that registers
with a new log directory (a new or wiped disk) lost its data: it may never be elected
cleanly, even as the last ISR member. The chaos harness found the gap this closes (kraft chaos
--mixed, seed 202): the last ISR member lost its log, came back, led with an empty log, and
acknowledged records were gone.
"""

from __future__ import annotations

from dataclasses import replace

from kraft.controller.records import NO_LEADER
from tests.unit.controller.harness import SETTINGS, ControllerHarness

# SETTINGS: min.insync.replicas 2, unclean leader election off.
DISK = "disk-a"
NEW_DISK = "disk-b"


def three_brokers_one_topic(harness: ControllerHarness) -> None:
    for broker_id in (1, 2, 3):
        harness.register(broker_id, log_dir_id=DISK)
        harness.heartbeat(broker_id)
    harness.create_topic("orders", partitions=1, replication_factor=3)


def shrink_to_leader(harness: ControllerHarness) -> tuple[int, int, int]:
    """The leader alone in the ISR, the others in the ELR; returns (leader, b, c)."""
    partition = harness.partition("orders")
    leader = partition.leader
    others = [b for b in partition.replicas if b != leader]
    harness.alter_isr("orders", 0, (leader, others[0]))
    harness.alter_isr("orders", 0, (leader,))
    return leader, others[0], others[1]


def only_the_leader_holds_the_data(harness: ControllerHarness) -> int:
    """min.insync.replicas 1 and the ISR shrunk to the leader: nobody else is eligible."""
    three_brokers_one_topic(harness)
    harness.run(
        harness.controller.alter_topic_configs(
            "orders", {"min.insync.replicas": "1"}, (), validate_only=False
        )
    )
    leader = harness.partition("orders").leader
    harness.alter_isr("orders", 0, (leader,))
    return leader


def come_back(harness: ControllerHarness, broker_id: int, incarnation: str, disk: str) -> None:
    harness.register(broker_id, incarnation=incarnation, log_dir_id=disk)
    harness.heartbeat(broker_id)
    harness.tick()


def test_members_that_leave_an_isr_below_min_insync_replicas_join_the_elr(
    harness: ControllerHarness,
) -> None:
    three_brokers_one_topic(harness)
    leader = harness.partition("orders").leader
    b, c = [x for x in harness.partition("orders").replicas if x != leader]

    harness.alter_isr("orders", 0, (leader, b))
    at_min_insync = harness.partition("orders")
    harness.alter_isr("orders", 0, (leader,))

    assert at_min_insync.elr == ()  # the ISR is still large enough: c stays out
    assert harness.partition("orders").elr == (b,)
    assert harness.replayed() == harness.image


def test_an_isr_back_at_min_insync_replicas_clears_the_elr(harness: ControllerHarness) -> None:
    """Once the ISR is large enough the high watermark moves on without the ELR members."""
    three_brokers_one_topic(harness)
    leader, b, _ = shrink_to_leader(harness)

    harness.alter_isr("orders", 0, (leader, b))

    assert harness.partition("orders").elr == ()


def test_a_member_rejoining_an_isr_still_below_min_insync_leaves_the_elr() -> None:
    harness = ControllerHarness(replace(SETTINGS, min_insync_replicas=3))
    three_brokers_one_topic(harness)
    leader, b, c = shrink_to_leader(harness)
    assert set(harness.partition("orders").elr) == {b, c}

    harness.alter_isr("orders", 0, (leader, b))

    assert harness.partition("orders").elr == (c,)


def test_when_the_last_isr_member_fails_a_live_elr_member_leads_cleanly(
    harness: ControllerHarness,
) -> None:
    three_brokers_one_topic(harness)
    leader, b, _ = shrink_to_leader(harness)

    harness.expire(leader)

    after = harness.partition("orders")
    assert after.leader == b  # c left while the ISR was large enough: it may lack records
    assert after.isr == (b,)
    assert after.elr == (leader,)  # the old leader kept its data: it may lead later
    assert harness.controller.unclean_leader_elections == 0
    assert harness.replayed() == harness.image


def test_an_elr_member_that_comes_back_leads_a_partition_whose_isr_is_down(
    harness: ControllerHarness,
) -> None:
    three_brokers_one_topic(harness)
    leader = harness.partition("orders").leader
    b, c = [x for x in harness.partition("orders").replicas if x != leader]
    harness.expire(b, c)  # the controller takes them out: ISR (leader,), ELR (b, c)
    assert set(harness.partition("orders").elr) == {b, c}
    harness.expire(leader, b, c)
    assert harness.partition("orders").leader == NO_LEADER

    come_back(harness, c, "second", DISK)

    after = harness.partition("orders")
    assert after.leader == c
    assert after.isr == (c,)
    assert set(after.elr) == {leader, b}
    assert harness.controller.unclean_leader_elections == 0


def test_a_last_isr_member_that_lost_its_log_is_never_elected_and_an_elr_member_leads(
    harness: ControllerHarness,
) -> None:
    """The regression of kraft chaos --mixed seed 202: the last ISR member's data directory
    was wiped; it came back with an empty log and was elected from the ISR."""
    three_brokers_one_topic(harness)
    leader = harness.partition("orders").leader
    b, c = [x for x in harness.partition("orders").replicas if x != leader]
    harness.expire(b, c)
    harness.expire(leader, b, c)

    come_back(harness, leader, "wiped", NEW_DISK)
    wiped_back = harness.partition("orders")
    come_back(harness, b, "second", DISK)

    assert wiped_back.leader == NO_LEADER  # live, unfenced, and not elected
    assert wiped_back.isr == ()
    assert leader not in wiped_back.elr
    after = harness.partition("orders")
    assert after.leader == b
    assert after.isr == (b,)
    assert after.elr == (c,)  # the wiped broker is not eligible: it has nothing
    assert harness.controller.unclean_leader_elections == 0
    assert harness.replayed() == harness.image


def test_a_partition_whose_only_copies_were_lost_stays_offline_without_unclean_election(
    harness: ControllerHarness,
) -> None:
    leader = only_the_leader_holds_the_data(harness)
    assert harness.partition("orders").elr == ()  # min.insync 1: nobody else is eligible
    harness.expire(leader)

    come_back(harness, leader, "wiped", NEW_DISK)

    assert harness.partition("orders").leader == NO_LEADER
    assert harness.image.offline_partitions() == [("orders", 0)]


def test_unclean_election_may_still_bring_back_a_partition_whose_copies_were_lost(
    harness: ControllerHarness,
) -> None:
    leader = only_the_leader_holds_the_data(harness)
    harness.expire(leader)
    come_back(harness, leader, "wiped", NEW_DISK)

    harness.run(
        harness.controller.alter_topic_configs(
            "orders", {"unclean.leader.election.enable": "true"}, (), validate_only=False
        )
    )
    harness.tick()

    after = harness.partition("orders")
    assert after.leader != NO_LEADER
    assert after.elr == ()
    assert harness.controller.unclean_leader_elections == 1


def test_a_restart_with_the_same_log_directory_keeps_the_last_member_eligible(
    harness: ControllerHarness,
) -> None:
    three_brokers_one_topic(harness)
    leader = harness.partition("orders").leader
    b, c = [x for x in harness.partition("orders").replicas if x != leader]
    harness.expire(b, c)
    harness.expire(leader, b, c)

    come_back(harness, leader, "second", DISK)

    after = harness.partition("orders")
    assert after.leader == leader
    assert after.isr == (leader,)


def test_a_lost_log_removes_the_broker_from_the_elr(harness: ControllerHarness) -> None:
    three_brokers_one_topic(harness)
    _, b, _ = shrink_to_leader(harness)
    assert b in harness.partition("orders").elr
    harness.expire(b)

    come_back(harness, b, "wiped", NEW_DISK)

    assert b not in harness.partition("orders").elr
    assert harness.replayed() == harness.image


def test_changing_min_insync_replicas_clears_the_elr(harness: ControllerHarness) -> None:
    """KIP-966: leaders may have advanced the high watermark under the old value."""
    three_brokers_one_topic(harness)
    shrink_to_leader(harness)

    harness.run(
        harness.controller.alter_topic_configs(
            "orders", {"min.insync.replicas": "3"}, (), validate_only=False
        )
    )

    assert harness.partition("orders").elr == ()
    assert harness.replayed() == harness.image
