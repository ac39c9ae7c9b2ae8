"""`GET /v1/cluster/health_overview` (SPEC §5), as Redpanda's admin API answers it: healthy
only with a known controller, no broker down, no leaderless and no under-replicated
partition; each failing condition listed under Redpanda's reason name."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from broker.api.health import MAX_LISTED_PARTITIONS, health_overview
from kraft.controller.records import NO_LEADER
from tests.unit.api.conftest import MakeClient
from tests.unit.api.fakes import FakeAdmin, FakeNode
from tests.unit.api.images import healthy_builder, sample_builder


def test_a_cluster_with_all_brokers_live_and_in_sync_is_healthy() -> None:
    overview = health_overview(healthy_builder().image, controller_id=2)

    assert overview == {
        "is_healthy": True,
        "unhealthy_reasons": [],
        "controller_id": 2,
        "all_nodes": [1, 2, 3],
        "nodes_down": [],
        "leaderless_count": 0,
        "under_replicated_count": 0,
        "leaderless_partitions": [],
        "under_replicated_partitions": [],
    }


def test_a_fenced_broker_leaderless_and_under_replicated_partitions_are_each_reasons() -> None:
    overview = health_overview(sample_builder().image, controller_id=1)

    assert overview == {
        "is_healthy": False,
        "unhealthy_reasons": [
            "nodes_down",
            "leaderless_partitions",
            "under_replicated_partitions",
        ],
        "controller_id": 1,
        "all_nodes": [1, 2, 3],
        "nodes_down": [3],
        "leaderless_count": 1,
        "under_replicated_count": 1,
        "leaderless_partitions": ["kafka/audit.log/0"],
        "under_replicated_partitions": ["kafka/orders/2"],
    }


def test_no_known_controller_is_unhealthy_with_controller_id_minus_one() -> None:
    overview = health_overview(healthy_builder().image, controller_id=None)

    assert overview["is_healthy"] is False
    assert overview["unhealthy_reasons"] == ["controller_unavailable"]
    assert overview["controller_id"] == -1


def test_under_replication_alone_makes_the_cluster_unhealthy() -> None:
    """As Redpanda since v23: --exit-when-healthy waits until every replica is in sync."""
    builder = healthy_builder()
    builder.topic("events", [(1, 2, 3)], isrs={0: (1, 2)})

    overview = health_overview(builder.image, controller_id=1)

    assert overview["unhealthy_reasons"] == ["under_replicated_partitions"]
    assert overview["under_replicated_partitions"] == ["kafka/events/0"]


def test_a_broker_in_controlled_shutdown_is_not_down() -> None:
    builder = healthy_builder()
    builder.broker(4, in_controlled_shutdown=True)

    overview = health_overview(builder.image, controller_id=1)

    assert overview["all_nodes"] == [1, 2, 3, 4]
    assert overview["nodes_down"] == []
    assert overview["is_healthy"] is True


def test_partition_lists_are_capped_but_counts_are_exact() -> None:
    builder = healthy_builder()
    count = MAX_LISTED_PARTITIONS + 5
    builder.topic("big", [(1,)] * count, leaders=dict.fromkeys(range(count), NO_LEADER))

    overview = health_overview(builder.image, controller_id=1)

    assert overview["leaderless_count"] == count
    assert len(overview["leaderless_partitions"]) == MAX_LISTED_PARTITIONS
    assert overview["leaderless_partitions"][:2] == ["kafka/big/0", "kafka/big/1"]


async def test_health_overview_route_answers_from_this_nodes_image(
    make_client: MakeClient,
) -> None:
    admin = FakeAdmin(builder=healthy_builder(), controller=3)
    client: TestClient[Any, Any] = await make_client(FakeNode(), admin=admin)

    response = await client.get("/v1/cluster/health_overview")

    assert response.status == 200
    body = await response.json()
    assert (body["is_healthy"], body["controller_id"]) == (True, 3)
