"""The admin routes over the real pure QuorumController (no quorum): placement shows through
the v3 shapes, and each refusal of the controller reaches the client with its code and
message while the metadata stays as it was (SPEC §5, §7)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.unit.api.conftest import MakeClient
from tests.unit.api.controller_admin import ControllerAdmin
from tests.unit.api.fakes import CLUSTER_ID, FakeNode
from tests.unit.api.images import healthy_builder
from tests.unit.api.test_kv_routes import error_of

TOPICS = f"/v3/clusters/{CLUSTER_ID}/topics"


@pytest.fixture
def admin() -> ControllerAdmin:
    return ControllerAdmin(healthy_builder())


@pytest.fixture
async def api(make_client: MakeClient, admin: ControllerAdmin) -> TestClient[Any, Any]:
    return await make_client(FakeNode(), admin=admin)


def records_applied(admin: ControllerAdmin) -> int:
    return admin.metadata_image().applied_offset


async def test_an_rf3_topic_gets_three_in_sync_replicas_per_partition(
    api: TestClient[Any, Any],
) -> None:
    created = await api.post(
        TOPICS, json={"topic_name": "events", "partitions_count": 3, "replication_factor": 3}
    )

    assert created.status == 201
    body = await created.json()
    assert (body["partitions_count"], body["replication_factor"]) == (3, 3)
    leaders = set()
    for partition in range(3):
        answer = await api.get(f"{TOPICS}/events/partitions/{partition}/replicas")
        replicas = (await answer.json())["data"]
        assert sorted(r["broker_id"] for r in replicas) == [1, 2, 3]
        assert all(r["is_in_sync"] for r in replicas)
        [leader] = [r["broker_id"] for r in replicas if r["is_leader"]]
        leaders.add(leader)
    assert leaders == {1, 2, 3}  # leaders spread over the brokers


async def test_defaults_come_from_the_controller_settings(api: TestClient[Any, Any]) -> None:
    created = await api.post(TOPICS, json={"topic_name": "events"})

    body = await created.json()
    assert (body["partitions_count"], body["replication_factor"]) == (2, 2)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"topic_name": "orders"}, "topic 'orders' already exists"),
        ({"topic_name": "t", "replication_factor": 4}, None),
        ({"topic_name": "a b"}, None),
        ({"topic_name": "x" * 250}, None),
        ({"topic_name": "t", "configs": [{"name": "retention.mss", "value": "1"}]}, None),
        ({"topic_name": "t", "configs": [{"name": "min.insync.replicas", "value": "3"}]}, None),
    ],
)
async def test_controller_refusals_answer_40002_and_change_nothing(
    api: TestClient[Any, Any], admin: ControllerAdmin, body: dict[str, Any], message: str | None
) -> None:
    before = records_applied(admin)

    response = await api.post(TOPICS, json=body)

    status, code, text = await error_of(response)
    assert (status, code) == (400, 40002), text
    if message is not None:
        assert text == message
    assert records_applied(admin) == before


async def test_grow_delete_and_configs_go_through_the_controller(
    api: TestClient[Any, Any], admin: ControllerAdmin
) -> None:
    grown = await api.patch(f"{TOPICS}/orders", json={"partitions_count": 4})
    configured = await api.post(
        f"{TOPICS}/orders/configs:alter",
        json={"data": [{"name": "cleanup.policy", "value": "compact"}]},
    )
    shrink = await api.patch(f"{TOPICS}/orders", json={"partitions_count": 1})

    assert (await grown.json())["partitions_count"] == 4
    assert configured.status == 204
    assert admin.metadata_image().configs("topic", "orders") == {"cleanup.policy": "compact"}
    assert (await error_of(shrink))[:2] == (400, 40002)
    deleted = await api.delete(f"{TOPICS}/orders")
    assert deleted.status == 204
    assert admin.metadata_image().topic("orders") is None
    again = await api.delete(f"{TOPICS}/orders")
    assert (await error_of(again))[:2] == (404, 40403)
