"""A partition leader cut off from the rest of the cluster (its clients can still reach it)
must stop taking writes once the controller has moved its leadership, instead of holding
produces until they time out; the new leader takes them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.log.batch import Record, build_batch
from chaos.cluster import ChaosCluster
from chaos.proxy import ProxyProcess
from client.admin import AdminClient
from kraft.protocol.errors import ErrorCode
from kraft.rpc.client import RpcClient
from tests.cluster.harness import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[ChaosCluster, ProxyProcess]]:
    cluster = ChaosCluster(tmp_path / "cluster", 3)
    proxies = ProxyProcess(cluster.rpc_ports(), seed=1, stderr_path=tmp_path / "proxy.log")
    try:
        proxies.start()
        cluster.proxy_ports = {
            (src, dst): port
            for src, ports in proxies.port_map.items()
            for dst, port in ports.items()
        }
        cluster.up()
        yield cluster, proxies
    finally:
        cluster.close()
        proxies.close()


def ask(port: int, body: dict[str, Any]) -> Any:
    async def send() -> Any:
        client = RpcClient("127.0.0.1", port, None)
        try:
            return await client.request(body, 10.0)
        finally:
            await client.close()

    return asyncio.run(send())


def produce(port: int, value: bytes) -> dict[str, Any]:
    batch = build_batch([Record(None, value, (), 0)])
    answer = ask(
        port,
        {
            "kind": "produce",
            "acks": -1,
            "timeout_ms": 5000,
            "partitions": [{"topic": "cut", "partition": 0, "records": batch}],
        },
    )
    return dict(answer["partitions"][0])


def leader_seen_by(port: int) -> int | None:
    try:
        answer = ask(port, {"kind": "metadata", "topics": ["cut"]})
    except (OSError, TimeoutError, ConnectionError):
        return None
    partitions = answer["topics"][0]["partitions"]
    return int(partitions[0]["leader"]) if partitions else None


def test_an_isolated_partition_leader_refuses_writes_and_the_new_leader_takes_them(
    cluster: tuple[ChaosCluster, ProxyProcess],
) -> None:
    chaos_cluster, proxies = cluster
    nodes = chaos_cluster.nodes
    wait_for(
        lambda: all(
            (n.get_json("/v1/status/ready") or {}).get("status") == "ready" for n in nodes.values()
        ),
        what="three ready nodes",
    )
    AdminClient([n.http_url for n in nodes.values()]).create_topic(
        "cut", 1, 3, {"min.insync.replicas": "2"}
    )
    old = wait_for(lambda: leader_seen_by(nodes[1].rpc_port), what="a leader")
    # (if it is also the active controller, the cut moves the controller too: same outcome)
    assert produce(nodes[old].rpc_port, b"before")["error_code"] == 0

    proxies.isolate(old)
    others = [n for n in nodes if n != old]
    new = wait_for(
        lambda: (
            leader_seen_by(nodes[others[0]].rpc_port) not in (None, old)
            and leader_seen_by(nodes[others[0]].rpc_port)
        ),
        what="a new leader on the majority side",
    )
    wait_for(
        lambda: (
            (answer := produce(nodes[old].rpc_port, b"to the old leader"))["error_code"]
            == ErrorCode.NOT_LEADER_OR_FOLLOWER
            and answer
        ),
        what="the cut-off leader refusing writes",
    )
    assert produce(nodes[new].rpc_port, b"after")["error_code"] == 0
    proxies.heal()
