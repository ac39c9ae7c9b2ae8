"""Helpers of the data-plane process tests: raw native-protocol requests (docs/decisions/
0005) to one node's rpc listener, topics over HTTP, partition state as the nodes report it,
and the replica logs on disk."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from broker.log.batch import Record, build_batch, iter_batches, iter_records
from kraft.rpc.client import RpcClient
from tests.cluster.harness import LocalCluster, NodeProcess, http_json, wait_for

REQUEST_TIMEOUT_S = 15.0
# Fast fencing and ISR shrink, so the fault tests take seconds; both stay well above what a
# loaded test machine needs between two heartbeats or two fetches.
DATA_PLANE_TIMING = {
    "broker.session.timeout.ms": "1500",
    "broker.heartbeat.interval.ms": "300",
    "replica.lag.time.max.ms": "1500",
}


@contextlib.contextmanager
def data_plane_cluster(root: Path, **options: Any) -> Iterator[LocalCluster]:
    """A running three-node cluster with DATA_PLANE_TIMING, closed afterwards."""
    local = LocalCluster(root, extra_config=dict(DATA_PLANE_TIMING), **options)
    try:
        yield local.up()
    finally:
        local.close()


def wait_until_ready(cluster: LocalCluster, deadline_s: float = 60.0) -> None:
    """Every running node answers /v1/status/ready with 200 (caught up, unfenced)."""
    wait_for(
        lambda: all(n.get("/v1/status/ready")[0] == 200 for n in cluster.running()),
        deadline_s=deadline_s,
        what="every running node ready",
    )


def request(node: NodeProcess, body: dict[str, Any], timeout_s: float = REQUEST_TIMEOUT_S) -> Any:
    """One native request to `node`'s rpc listener, as a tool (no node id) sends it."""

    async def send() -> Any:
        client = RpcClient("127.0.0.1", node.rpc_port, None)
        try:
            return await client.request(body, timeout_s)
        finally:
            await client.close()

    return asyncio.run(send())


def cluster_id(node: NodeProcess) -> str:
    code, body = node.get("/v3/clusters")
    assert code == 200, body
    return str(body["data"][0]["cluster_id"])


def create_topic(
    node: NodeProcess,
    name: str,
    partitions: int = 1,
    factor: int = 3,
    configs: dict[str, str] | None = None,
) -> None:
    body: dict[str, Any] = {
        "topic_name": name,
        "partitions_count": partitions,
        "replication_factor": factor,
        "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()],
    }
    url = f"{node.http_url}/v3/clusters/{cluster_id(node)}/topics"
    code, answer = http_json("POST", url, body)
    assert code == 201, answer


def partition_state(node: NodeProcess, topic: str, partition: int = 0) -> dict[str, Any] | None:
    """{leader, leader_epoch, replicas, isr} of a partition in `node`'s metadata image."""
    try:
        answer = request(node, {"kind": "metadata", "topics": [topic]}, 5.0)
    except (OSError, TimeoutError, ConnectionError):
        return None
    for entry in answer["topics"][0]["partitions"]:
        if entry["partition"] == partition:
            return dict(entry)
    return None


def wait_for_partition(
    cluster: LocalCluster, topic: str, condition: Any, what: str, partition: int = 0
) -> dict[str, Any]:
    """Waits until every running broker reports a state of the partition meeting condition."""
    states: dict[int, dict[str, Any] | None] = {}

    def agreed() -> dict[str, Any] | None:
        states.clear()
        for node in cluster.running():
            if cluster.roles_of(node) == "controller":
                continue
            states[node.node_id] = partition_state(node, topic, partition)
        values = list(states.values())
        first = values[0] if values else None
        if first is None or any(value != first for value in values) or not condition(first):
            return None
        return first

    return wait_for(agreed, what=f"{what} (states: {states})")


def batch_of(*values: bytes, key: bytes | None = None) -> bytes:
    now = time.time_ns() // 1_000_000
    return build_batch([Record(key, value, (), now) for value in values])


def produce(
    node: NodeProcess,
    topic: str,
    records: bytes,
    acks: int = -1,
    partition: int = 0,
    timeout_ms: int = 5000,
) -> dict[str, Any]:
    answer = request(
        node,
        {
            "kind": "produce",
            "acks": acks,
            "timeout_ms": timeout_ms,
            "partitions": [{"topic": topic, "partition": partition, "records": records}],
        },
    )
    return dict(answer["partitions"][0])


def fetch(
    node: NodeProcess, topic: str, offset: int, partition: int = 0, max_bytes: int = 1 << 20
) -> dict[str, Any]:
    answer = request(
        node,
        {
            "kind": "fetch",
            "replica_id": -1,
            "max_wait_ms": 0,
            "min_bytes": 0,
            "max_bytes": max_bytes,
            "partitions": [
                {
                    "topic": topic,
                    "partition": partition,
                    "fetch_offset": offset,
                    "partition_max_bytes": max_bytes,
                }
            ],
        },
    )
    return dict(answer["partitions"][0])


def read_values(node: NodeProcess, topic: str, partition: int = 0) -> list[tuple[int, bytes]]:
    """(offset, value) of every record below the high watermark, read from the leader."""
    values: list[tuple[int, bytes]] = []
    offset = 0
    while True:
        answer = fetch(node, topic, offset, partition)
        assert answer["error_code"] == 0, answer
        records = [
            (record.offset, record.value or b"")
            for batch in iter_batches(answer["records"])
            for record in iter_records(batch)
            if record.offset >= offset
        ]
        if not records:
            return values
        values.extend(records)
        offset = records[-1][0] + 1


def values_read(node: NodeProcess, topic: str, partition: int = 0) -> list[bytes] | None:
    """The values below the high watermark, as read from `node`; None while it cannot answer
    (leadership moving): for wait_for."""
    try:
        return [value for _, value in read_values(node, topic, partition)]
    except (AssertionError, OSError, TimeoutError, ConnectionError):
        return None


def partition_dir(node: NodeProcess, topic: str, partition: int = 0) -> Path:
    return node.directory / "data" / f"{topic}-{partition}"


def log_bytes(node: NodeProcess, topic: str, partition: int = 0) -> bytes:
    """The replica's record batches, all segments in order, as stored on disk."""
    directory = partition_dir(node, topic, partition)
    return b"".join(path.read_bytes() for path in sorted(directory.glob("*.log")))


def stored_offsets(node: NodeProcess, topic: str, partition: int = 0) -> list[int]:
    return [
        record.offset
        for batch in iter_batches(log_bytes(node, topic, partition))
        for record in iter_records(batch)
    ]
