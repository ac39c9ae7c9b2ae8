"""Replicated partition logs as users run them: three combined nodes, records produced and
fetched over the native protocol, replicas compared on disk, nodes paused and killed with
real signals."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import struct
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.log.batch import CRC_POSITION, MAGIC_POSITION
from kraft.protocol.errors import ErrorCode
from tests.cluster.dataplane import (
    DATA_PLANE_TIMING,
    batch_of,
    cluster_id,
    create_topic,
    data_plane_cluster,
    fetch,
    log_bytes,
    partition_state,
    produce,
    read_values,
    request,
    stored_offsets,
    values_read,
    wait_for_partition,
    wait_until_ready,
)
from tests.cluster.harness import LocalCluster, NodeProcess, http_json, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with data_plane_cluster(tmp_path) as local:
        yield local


def ready_topic(
    cluster: LocalCluster, name: str, configs: dict[str, str] | None = None
) -> dict[str, object]:
    """Creates an RF=3 single-partition topic and waits until every node sees all three
    replicas in sync; returns the partition's state."""
    wait_until_ready(cluster)
    create_topic(cluster.nodes[1], name, configs=configs)
    return wait_for_partition(
        cluster, name, lambda s: s["leader"] >= 0 and len(s["isr"]) == 3, "a led, in-sync topic"
    )


@contextlib.contextmanager
def controllers_and_brokers(
    tmp_path: Path, topic: str
) -> Iterator[tuple[LocalCluster, dict[str, object]]]:
    """Three controllers and three broker-only nodes (4, 5, 6), so two brokers can die while
    the quorum lives on; `topic` (RF=3, min.insync.replicas=2) created and in sync."""
    local = LocalCluster(
        tmp_path, size=3, observers=3, controller_only=True, extra_config=dict(DATA_PLANE_TIMING)
    )
    try:
        local.up()
        wait_for(
            lambda: all(local.nodes[n].get("/v1/status/ready")[0] == 200 for n in (4, 5, 6)),
            what="brokers ready",
        )
        create_topic(local.nodes[4], topic, configs={"min.insync.replicas": "2"})
        state = wait_for_partition(
            local, topic, lambda s: s["leader"] >= 0 and len(s["isr"]) == 3, "in sync"
        )
        yield local, state
    finally:
        local.close()


def node(cluster: LocalCluster, node_id: object) -> NodeProcess:
    assert isinstance(node_id, int)
    return cluster.nodes[node_id]


def test_acks_all_records_are_read_back_in_order_and_replicas_are_identical_on_disk(
    cluster: LocalCluster,
) -> None:
    state = ready_topic(cluster, "orders")
    leader = node(cluster, state["leader"])
    for n in range(50):
        answer = produce(leader, "orders", batch_of(f"a{n}".encode(), f"b{n}".encode()))
        assert answer["error_code"] == 0, answer
        assert answer["base_offset"] == 2 * n
    values = read_values(leader, "orders")
    assert [offset for offset, _ in values] == list(range(100))
    assert [value for _, value in values[:4]] == [b"a0", b"b0", b"a1", b"b1"]

    def identical() -> bool:
        logs = {log_bytes(n, "orders") for n in cluster.running()}
        return len(logs) == 1

    wait_for(identical, what="three byte-identical replica logs")
    assert stored_offsets(leader, "orders") == list(range(100))


def test_a_follower_paused_past_the_lag_time_leaves_the_isr_and_rejoins_after_it_resumes(
    cluster: LocalCluster,
) -> None:
    state = ready_topic(cluster, "paused")
    leader = node(cluster, state["leader"])
    controller_id = cluster.wait_for_leader()
    follower_id = next(n for n in (1, 2, 3) if n != state["leader"] and n != controller_id)
    cluster.pause(follower_id)
    try:
        wait_for_partition(
            cluster,
            "paused",
            lambda s: follower_id not in s["isr"] and len(s["isr"]) == 2,
            f"node {follower_id} out of the ISR",
        )
        # the two remaining replicas still take acks=all writes
        assert produce(leader, "paused", batch_of(b"while paused"))["error_code"] == 0
    finally:
        cluster.resume(follower_id)
    wait_for_partition(
        cluster, "paused", lambda s: sorted(s["isr"]) == [1, 2, 3], f"node {follower_id} back"
    )
    assert read_values(leader, "paused") == [(0, b"while paused")]


def test_acks_all_is_refused_below_min_insync_replicas_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    with controllers_and_brokers(tmp_path, "strict") as (local, state):
        leader = node(local, state["leader"])
        assert produce(leader, "strict", batch_of(b"kept"))["error_code"] == 0
        for broker_id in (4, 5, 6):
            if broker_id != leader.node_id:
                local.kill(broker_id)
        wait_for_partition(
            local, "strict", lambda s: s["isr"] == [leader.node_id], "ISR of the leader alone"
        )
        refused = produce(leader, "strict", batch_of(b"refused"))
        assert refused["error_code"] == ErrorCode.NOT_ENOUGH_REPLICAS, refused
        before = fetch(leader, "strict", 0)["log_end_offset"]
        assert before == 1, "the refused batch was not appended"
        # acks=1 does not wait for the ISR: it is taken, but consumers see it only once the
        # ISR is back at min.insync.replicas (KIP-966: the high watermark stays meanwhile)
        assert produce(leader, "strict", batch_of(b"acks1"), acks=1)["error_code"] == 0
        assert fetch(leader, "strict", 0)["log_end_offset"] == 2
        assert [v for _, v in read_values(leader, "strict")] == [b"kept"]


def wipe_and_restart(cluster: LocalCluster, node_id: int) -> None:
    """SIGKILL, the node's data directory lost for good, formatted anew, started."""
    cluster.kill(node_id)
    shutil.rmtree(cluster.nodes[node_id].directory / "data")
    cluster.kraft(
        "storage",
        "format",
        "--config",
        str(cluster.nodes[node_id].config_path),
        "--cluster-id",
        cluster.cluster_id,
        "--ignore-formatted",
    )
    cluster.start(node_id)


def test_a_last_isr_member_that_lost_its_log_never_leads_and_an_eligible_replica_keeps_every_record(
    tmp_path: Path,
) -> None:
    """The regression of kraft chaos --mixed seed 202 (KIP-966). The ISR shrinks to the
    leader alone (the others die: they become eligible leader replicas), then the leader's
    disk is lost. Before the fix it came back, was elected from the ISR with an empty log,
    and every acknowledged record was gone."""
    with controllers_and_brokers(tmp_path, "precious") as (local, state):
        leader_id = state["leader"]
        leader = node(local, leader_id)
        expected = [f"p{n}".encode() for n in range(20)]
        for value in expected:
            assert produce(leader, "precious", batch_of(value))["error_code"] == 0
        others = [n for n in (4, 5, 6) if n != leader_id]
        for broker_id in others:
            local.kill(broker_id)
        wait_for_partition(local, "precious", lambda s: s["isr"] == [leader_id], "leader alone")

        wipe_and_restart(local, leader_id)
        wait_for(lambda: leader.get("/v1/status/ready")[0] == 200, what="the wiped node ready")
        # registered and unfenced, it is the only live replica, and it may not lead
        wiped_view = partition_state(leader, "precious")
        assert wiped_view is not None and wiped_view["leader"] == -1, wiped_view

        for broker_id in others:
            local.start(broker_id)
        back = wait_for_partition(
            local,
            "precious",
            lambda s: s["leader"] == s["replicas"][0] and sorted(s["isr"]) == [4, 5, 6],
            "every replica in sync again, the preferred one leading",
        )
        new_leader = node(local, back["leader"])
        # a leader's high watermark moves once every ISR member fetched in its epoch
        wait_for(
            lambda: values_read(new_leader, "precious") == expected,
            what="every acknowledged record below the high watermark",
        )

        def identical() -> bool:
            return len({log_bytes(n, "precious") for n in local.running() if n.node_id > 3}) == 1

        wait_for(identical, what="three byte-identical replica logs")


def test_bad_produce_and_fetch_requests_get_precise_errors_and_change_nothing(
    cluster: LocalCluster,
) -> None:
    state = ready_topic(cluster, "guarded")
    leader = node(cluster, state["leader"])
    assert produce(leader, "guarded", batch_of(b"first"))["error_code"] == 0
    good = batch_of(b"x" * 100)

    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    assert produce(leader, "guarded", bytes(bad_crc))["error_code"] == ErrorCode.CORRUPT_MESSAGE
    wrong_magic = bytearray(good)
    wrong_magic[MAGIC_POSITION] = 1
    assert produce(leader, "guarded", bytes(wrong_magic))["error_code"] == ErrorCode.CORRUPT_MESSAGE
    truncated = good[: len(good) - 10]
    assert produce(leader, "guarded", truncated)["error_code"] == ErrorCode.CORRUPT_MESSAGE
    zeroed_crc = bytearray(good)
    struct.pack_into(">I", zeroed_crc, CRC_POSITION, 0)
    assert produce(leader, "guarded", bytes(zeroed_crc))["error_code"] == ErrorCode.CORRUPT_MESSAGE
    oversized = batch_of(os.urandom(2 * 1024 * 1024))
    assert produce(leader, "guarded", oversized)["error_code"] == ErrorCode.MESSAGE_TOO_LARGE
    assert (
        produce(leader, "guarded", good, partition=7)["error_code"]
        == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    )
    assert produce(leader, "nope", good)["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    follower = node(cluster, next(n for n in (1, 2, 3) if n != state["leader"]))
    not_leader = produce(follower, "guarded", good)
    assert not_leader["error_code"] == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert not_leader["leader_id"] == state["leader"], "the answer names the leader"

    assert fetch(leader, "guarded", 5)["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
    for malformed in (
        {"kind": "produce", "acks": 2, "timeout_ms": 100, "partitions": []},
        {"kind": "produce", "acks": -1, "timeout_ms": 100, "partitions": [{"topic": "g"}]},
        {
            "kind": "fetch",
            "replica_id": -1,
            "max_wait_ms": 0,
            "max_bytes": 10,
            "partitions": [
                {"topic": "guarded", "partition": 0, "fetch_offset": -1, "partition_max_bytes": 10}
            ],
        },
        {
            "kind": "fetch",
            "replica_id": 2,
            "max_wait_ms": 0,
            "max_bytes": 10,
            "partitions": [
                {"topic": "guarded", "partition": 0, "fetch_offset": 0, "partition_max_bytes": 10}
            ],
        },
        {"kind": "list_offsets", "partitions": "all"},
        {"kind": "no_such_kind"},
    ):
        answer = request(leader, malformed)
        assert answer["error_code"] == ErrorCode.INVALID_REQUEST, (malformed, answer)
        assert answer["error_message"]
    # nothing above changed the log, and the node still serves
    assert read_values(leader, "guarded") == [(0, b"first")]
    assert fetch(leader, "guarded", 0)["log_end_offset"] == 1


def test_a_killed_partition_leader_is_replaced_and_rejoins_as_follower_and_preferred_leader(
    cluster: LocalCluster,
) -> None:
    state = ready_topic(cluster, "failover")
    first_leader = node(cluster, state["leader"])
    for n in range(20):
        assert produce(first_leader, "failover", batch_of(f"r{n}".encode()))["error_code"] == 0
    cluster.kill(first_leader.node_id)
    moved = wait_for_partition(
        cluster,
        "failover",
        lambda s: s["leader"] not in (-1, first_leader.node_id),
        "a new leader",
    )
    new_leader = node(cluster, moved["leader"])
    # every acknowledged record survived the leader's SIGKILL; the new leader's high
    # watermark reaches them once every ISR member fetched in its epoch
    wait_for(
        lambda: values_read(new_leader, "failover") == [f"r{n}".encode() for n in range(20)],
        what="every acknowledged record below the new leader's high watermark",
    )
    assert produce(new_leader, "failover", batch_of(b"after"))["error_code"] == 0

    cluster.start(first_leader.node_id)
    # it catches up, rejoins the ISR, and the controller gives it its preferred leadership back
    back = wait_for_partition(
        cluster,
        "failover",
        lambda s: sorted(s["isr"]) == [1, 2, 3] and s["leader"] == s["replicas"][0],
        "the preferred leader back in charge",
    )
    assert back["leader"] == state["replicas"][0]  # type: ignore[index]
    leader = node(cluster, back["leader"])
    values = read_values(leader, "failover")
    assert [v for _, v in values] == [f"r{n}".encode() for n in range(20)] + [b"after"]


def test_records_produced_and_consumed_over_http_on_any_node_show_in_the_metrics(
    cluster: LocalCluster,
) -> None:
    state = ready_topic(cluster, "web")
    follower = node(cluster, next(n for n in (1, 2, 3) if n != state["leader"]))
    url = f"{follower.http_url}/v3/clusters/{cluster_id(follower)}/topics/web/records"
    for n in range(3):
        record = {"partition_id": 0, "value": {"type": "STRING", "data": f"hello {n}"}}
        code, answer = http_json("POST", url, record)
        assert code == 200, answer
        assert (answer["error_code"], answer["partition_id"], answer["offset"]) == (200, 0, n)
    code, answer = http_json(
        "GET", f"{follower.http_url}/topics/web/partitions/0/records?offset=1&timeout=100"
    )
    assert code == 200, answer
    assert [(r["offset"], base64.b64decode(r["value"])) for r in answer] == [
        (1, b"hello 1"),
        (2, b"hello 2"),
    ]
    leader = node(cluster, state["leader"])
    metrics = urllib.request.urlopen(f"{leader.http_url}/metrics", timeout=5).read().decode()
    assert 'kraft_partition_high_watermark{partition="0",topic="web"} 3.0' in metrics
    assert "kafka_server_replicamanager_leadercount 1.0" in metrics
    assert "kafka_server_brokertopicmetrics_messagesin_total" in metrics


def test_bad_http_produce_and_consume_requests_get_precise_errors_and_change_nothing(
    cluster: LocalCluster,
) -> None:
    state = ready_topic(cluster, "webguard")
    some_node = cluster.nodes[1]
    base = f"{some_node.http_url}/v3/clusters/{cluster_id(some_node)}/topics"
    record = {"value": {"type": "STRING", "data": "kept"}}
    assert http_json("POST", f"{base}/webguard/records", record)[0] == 200
    refusals = [
        ("POST", f"{base}/nope/records", record, 404, 40403),
        ("POST", f"{base}/webguard/records", {**record, "partition_id": 5}, 404, 40403),
        ("POST", f"{base}/webguard/records", {"value": {"type": "BINARY", "data": "!!"}}, 400, 0),
        ("POST", f"{base}/webguard/records", {"value": {"type": "NOPE", "data": "x"}}, 400, 0),
        (
            "GET",
            f"{some_node.http_url}/topics/nope/partitions/0/records?offset=0",
            None,
            404,
            40403,
        ),
        (
            "GET",
            f"{some_node.http_url}/topics/webguard/partitions/0/records?offset=-1",
            None,
            400,
            0,
        ),
        (
            "GET",
            f"{some_node.http_url}/topics/webguard/partitions/0/records?offset=99",
            None,
            416,
            0,
        ),
    ]
    for method, url, body, status, code in refusals:
        answer_status, answer = http_json(method, url, body)
        assert answer_status == status, (method, url, body, answer)
        assert "message" in answer and (code == 0 or answer["error_code"] == code), answer
    leader = node(cluster, state["leader"])
    assert read_values(leader, "webguard") == [(0, b"kept")], "nothing else was written"


def test_a_leader_restarted_at_once_with_a_wiped_log_does_not_lead_and_loses_nothing(
    cluster: LocalCluster,
) -> None:
    """The permanent loss of one replica (SPEC §7): the old incarnation's partitions move to
    the ISR when the new one registers, before it can act on the metadata naming it leader;
    it then refills its log from the new leader."""
    state = ready_topic(cluster, "wiped")
    leader_id = state["leader"]
    assert isinstance(leader_id, int)
    leader = node(cluster, leader_id)
    for n in range(20):
        assert produce(leader, "wiped", batch_of(f"w{n}".encode()))["error_code"] == 0
    cluster.kill(leader_id)
    shutil.rmtree(leader.directory / "data")
    cluster.kraft(
        "storage",
        "format",
        "--config",
        str(leader.config_path),
        "--cluster-id",
        cluster.cluster_id,
        "--ignore-formatted",
    )
    cluster.start(leader_id)  # well within the broker session: never fenced
    first_epoch = state["leader_epoch"]
    assert isinstance(first_epoch, int)
    back = wait_for_partition(
        cluster,
        "wiped",
        # a later leader epoch: the state from before the kill does not count
        lambda s: sorted(s["isr"]) == [1, 2, 3] and s["leader_epoch"] > first_epoch,
        "the wiped replica back in the ISR",
    )
    expected = [f"w{n}".encode() for n in range(20)]

    def read_from_the_leader() -> list[bytes] | None:
        """From whoever leads now: once back in the ISR, the wiped replica is the preferred
        leader again, and leadership may move back to it at any time."""
        state = partition_state(node(cluster, back["leader"]), "wiped")
        leader_now = back["leader"] if state is None else state["leader"]
        return values_read(node(cluster, leader_now), "wiped")

    wait_for(
        lambda: read_from_the_leader() == expected,
        what="every acknowledged record below the high watermark",
    )

    def identical() -> bool:
        return len({log_bytes(n, "wiped") for n in cluster.running()}) == 1

    wait_for(identical, what="three byte-identical replica logs")
