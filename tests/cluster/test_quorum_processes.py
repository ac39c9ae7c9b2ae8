"""The metadata quorum as users run it: three `kraft server` processes on loopback, real
sockets and data directories, faults by real signals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.harness import LocalCluster, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path)
    try:
        yield local.up()
    except BaseException:
        print(local.logs())
        raise
    finally:
        local.close()


def followers_of(cluster: LocalCluster, leader_id: int) -> list[int]:
    return [node_id for node_id in cluster.nodes if node_id != leader_id]


def wait_until_everyone_reads(cluster: LocalCluster, key: str, value: str) -> None:
    for node in cluster.running():
        wait_for(
            lambda node_id=node.node_id: cluster.get(node_id, key) == value,
            what=f"node {node.node_id} to read {key}={value}",
        )


def test_three_voters_elect_one_leader_that_every_node_names(cluster: LocalCluster) -> None:
    leader_id = cluster.wait_for_leader()
    statuses = [cluster.status_of(node_id) for node_id in cluster.nodes]
    assert {s["leader_id"] for s in statuses if s} == {leader_id}
    assert all(s and s["current_voters"] == [1, 2, 3] for s in statuses)
    code, body = cluster.nodes[leader_id].get("/v1/quorum/replication")
    assert code == 200
    assert sorted(r["node_id"] for r in body["replicas"]) == [1, 2, 3]


def test_a_write_through_a_follower_is_committed_and_read_on_every_node(
    cluster: LocalCluster,
) -> None:
    leader_id = cluster.wait_for_leader()
    follower = cluster.nodes[followers_of(cluster, leader_id)[0]]
    code, body = follower.put("/v1/kv/color", {"value": "blue"})
    assert code == 200, body
    assert body["value"] == "blue"
    wait_until_everyone_reads(cluster, "color", "blue")


def test_committed_writes_survive_sigkill_of_the_leader_and_a_new_leader_takes_over(
    cluster: LocalCluster,
) -> None:
    old_leader = cluster.wait_for_leader()
    for index in range(20):
        cluster.put(f"k{index}", f"v{index}")
    cluster.kill(old_leader)
    new_leader = cluster.wait_for_leader(excluding=old_leader)
    assert new_leader != old_leader
    cluster.put("after", "failover")
    for index in range(20):
        assert cluster.get(new_leader, f"k{index}") == f"v{index}"
    cluster.start(old_leader)
    wait_until_everyone_reads(cluster, "after", "failover")
    assert cluster.get(old_leader, "k19") == "v19"


def test_committed_writes_survive_sigkill_of_a_follower_which_catches_up_on_restart(
    cluster: LocalCluster,
) -> None:
    leader_id = cluster.wait_for_leader()
    follower = followers_of(cluster, leader_id)[0]
    cluster.put("before", "1")
    cluster.kill(follower)
    for index in range(50):
        cluster.put(f"while-down-{index}", str(index))
    cluster.start(follower)
    wait_for(
        lambda: cluster.get(follower, "while-down-49") == "49",
        what="the restarted follower to catch up",
    )
    assert cluster.get(follower, "before") == "1"


def test_a_paused_leader_is_replaced_and_steps_down_without_disturbing_the_new_epoch(
    cluster: LocalCluster,
) -> None:
    old_leader = cluster.wait_for_leader()
    cluster.put("before-pause", "x")
    cluster.pause(old_leader)
    new_leader = cluster.wait_for_leader(excluding=old_leader)
    new_epoch = cluster.status_of(new_leader)["leader_epoch"]  # type: ignore[index]
    cluster.put("during-pause", "y")
    cluster.resume(old_leader)

    def old_leader_follows_new_epoch() -> bool:
        status = cluster.status_of(old_leader)
        return bool(
            status and status["leader_id"] == new_leader and status["leader_epoch"] == new_epoch
        )

    wait_for(old_leader_follows_new_epoch, what="the resumed old leader to follow")
    assert cluster.get(old_leader, "during-pause") == "y" or wait_for(
        lambda: cluster.get(old_leader, "during-pause") == "y", what="old leader catches up"
    )
    assert cluster.status_of(new_leader)["leader_epoch"] == new_epoch  # type: ignore[index]


def test_a_gracefully_stopped_leader_hands_over_and_exits_cleanly(
    cluster: LocalCluster,
) -> None:
    old_leader = cluster.wait_for_leader()
    cluster.put("before-stop", "1")
    assert cluster.terminate(old_leader) == 0
    new_leader = cluster.wait_for_leader(excluding=old_leader)
    cluster.put("after-stop", "2")
    assert cluster.get(new_leader, "before-stop") == "1"


def test_a_node_that_lost_its_data_refuses_to_start_until_reformatted_then_observes(
    cluster: LocalCluster,
) -> None:
    """docs/decisions/0001: a wiped voter never comes back as a voter by itself."""
    leader_id = cluster.wait_for_leader()
    victim = followers_of(cluster, leader_id)[0]
    cluster.put("kept", "yes")
    cluster.kill(victim)
    cluster.wipe(victim)

    cluster.start(victim)
    process = cluster.nodes[victim].process
    assert process is not None
    assert process.wait(timeout=30) != 0
    cluster.nodes[victim].process = None
    assert "not formatted" in cluster.nodes[victim].log_path.read_text()

    cluster.format(victim, initial=False)
    cluster.start(victim)
    wait_for(lambda: cluster.get(victim, "kept") == "yes", what="the replacement to catch up")
    status = cluster.status_of(victim)
    assert status is not None
    assert status["role"] == "observer"


def test_a_broker_only_node_observes_the_quorum_without_being_a_voter(tmp_path: Path) -> None:
    local = LocalCluster(tmp_path, observers=1)
    try:
        local.up()
        leader_id = local.wait_for_leader()
        local.put("seen-by-observer", "yes")
        wait_for(lambda: local.get(4, "seen-by-observer") == "yes", what="the observer to apply")
        code, status = local.nodes[leader_id].get("/v1/quorum/status")
        assert code == 200
        assert status["current_voters"] == [1, 2, 3]
        assert status["current_observers"] == [4]
        observer_status = local.status_of(4)
        assert observer_status is not None
        assert observer_status["role"] == "observer"
        code, body = local.nodes[4].put("/v1/kv/through-observer", {"value": "forwarded"})
        assert code == 200, body
    finally:
        local.close()


def test_a_follower_that_missed_a_snapshot_catches_up_from_it(tmp_path: Path) -> None:
    """KIP-630: the leader snapshots every 50 records and compacts its log; a follower that
    was down meanwhile is behind the log start and loads the snapshot."""
    local = LocalCluster(
        tmp_path, extra_config={"metadata.log.max.snapshot.interval.records": "50"}
    )
    try:
        local.up()
        leader_id = local.wait_for_leader()
        follower = followers_of(local, leader_id)[0]
        local.kill(follower)
        for index in range(200):
            local.put(f"snap-{index}", str(index))
        snapshots = list((local.nodes[leader_id].directory / "metadata").rglob("*.checkpoint"))
        assert any(path.name[0].isdigit() for path in snapshots), snapshots
        local.start(follower)
        wait_for(lambda: local.get(follower, "snap-199") == "199", what="catch-up by snapshot")
        assert local.get(follower, "snap-0") == "0"
        log = local.nodes[follower].log_path.read_text()
        assert "quorum.snapshot_loaded" in log
    finally:
        local.close()
