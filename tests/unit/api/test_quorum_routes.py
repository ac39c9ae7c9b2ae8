"""`/v1/quorum/status` and `/v1/quorum/replication` (SPEC §4, §5: kafka-metadata-quorum.sh
describe --status / --replication as snake_case JSON)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from broker.api.facade import NoLeaderError
from kraft.raft.types import Role
from tests.unit.api.conftest import MakeClient
from tests.unit.api.fakes import CLUSTER_ID, NOW_UNIX_MS, FakeNode, leader_status


async def test_quorum_status_describes_the_quorum_as_kafka_metadata_quorum_does(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/v1/quorum/status")

    assert response.status == 200
    assert await response.json() == {
        "cluster_id": CLUSTER_ID,
        "leader_id": 1,
        "leader_epoch": 7,
        "high_watermark": 120,
        "max_follower_lag": 30,
        "max_follower_lag_time_ms": 5_000,
        "current_voters": [1, 2, 3],
        "current_observers": [4],
        "node_id": 1,
        "role": "leader",
        "epoch": 7,
    }


async def test_quorum_status_names_the_answering_node_and_its_own_role(
    make_client: MakeClient,
) -> None:
    node = FakeNode(
        node_id=2, status=leader_status(node_id=2, role=Role.FOLLOWER, epoch=7, replicas=())
    )
    client = await make_client(node)

    body = await (await client.get("/v1/quorum/status")).json()

    assert (body["node_id"], body["role"], body["epoch"]) == (2, "follower", 7)
    assert body["leader_id"] == 1


async def test_quorum_replication_lists_leader_then_followers_then_observers(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/v1/quorum/replication")

    assert response.status == 200
    assert await response.json() == {
        "replicas": [
            {
                "node_id": 1,
                "log_end_offset": 130,
                "lag": 0,
                "last_fetch_timestamp": NOW_UNIX_MS,
                "last_caught_up_timestamp": NOW_UNIX_MS,
                "status": "Leader",
            },
            {
                "node_id": 2,
                "log_end_offset": 130,
                "lag": 0,
                "last_fetch_timestamp": NOW_UNIX_MS - 10,
                "last_caught_up_timestamp": NOW_UNIX_MS - 10,
                "status": "Follower",
            },
            {
                "node_id": 3,
                "log_end_offset": 100,
                "lag": 30,
                "last_fetch_timestamp": NOW_UNIX_MS - 100,
                "last_caught_up_timestamp": NOW_UNIX_MS - 5_000,
                "status": "Follower",
            },
            {
                "node_id": 4,
                "log_end_offset": 125,
                "lag": 5,
                "last_fetch_timestamp": NOW_UNIX_MS - 20,
                "last_caught_up_timestamp": NOW_UNIX_MS - 50,
                "status": "Observer",
            },
        ]
    }


async def test_quorum_routes_answer_503_with_retry_after_when_no_leader_is_known(
    make_client: MakeClient,
) -> None:
    """SPEC §5: while no controller is known, 503 with Retry-After; 50003 is retriable."""
    client = await make_client(FakeNode(describe_error=NoLeaderError()))

    for path in ("/v1/quorum/status", "/v1/quorum/replication"):
        response = await client.get(path)

        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        body = await response.json()
        assert body["error_code"] == 50003
        assert "no quorum leader is known" in body["message"]


async def test_quorum_status_answers_50002_when_the_leader_does_not_answer_in_time(
    make_client: MakeClient,
) -> None:
    client = await make_client(FakeNode(describe_error=TimeoutError()))

    response = await client.get("/v1/quorum/status")

    assert response.status == 504
    assert await response.json() == {
        "error_code": 50002,
        "message": "timed out waiting for the leader's description of the quorum",
    }
