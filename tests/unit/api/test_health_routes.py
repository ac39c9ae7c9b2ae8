"""Health, readiness and metrics routes (SPEC §5)."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from broker.api.http import build_app, start_http_server
from tests.unit.api.conftest import MakeClient
from tests.unit.api.fakes import FakeNode


async def test_live_answers_live(client: TestClient[Any, Any]) -> None:
    response = await client.get("/live")

    assert response.status == 200
    assert await response.json() == {"status": "live"}


async def test_ready_answers_ready_once_node_is_ready(client: TestClient[Any, Any]) -> None:
    response = await client.get("/v1/status/ready")

    assert response.status == 200
    assert await response.json() == {"status": "ready"}


async def test_ready_answers_503_booting_while_node_boots(make_client: MakeClient) -> None:
    """SPEC §5: `{"status": "booting"}`, 503 while booting."""
    client = await make_client(FakeNode(ready=False))

    response = await client.get("/v1/status/ready")

    assert response.status == 503
    assert await response.json() == {"status": "booting"}


async def test_metrics_serves_the_registry_in_prometheus_text_format(
    make_client: MakeClient, node: FakeNode
) -> None:
    registry = CollectorRegistry()
    Counter("kraft_test_events", "Events of the test.", registry=registry).inc(3)
    client = await make_client(node, registry=registry)

    response = await client.get("/metrics")

    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }
    assert samples["kraft_test_events_total"] == 3


async def test_head_on_a_get_route_answers_without_body(client: TestClient[Any, Any]) -> None:
    response = await client.head("/live")

    assert response.status == 200
    assert await response.read() == b""


async def test_start_http_server_serves_until_cleanup(node: FakeNode) -> None:
    runner = await start_http_server(build_app(node, CollectorRegistry()), "127.0.0.1", 0)
    try:
        host, port = runner.addresses[0][:2]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{host}:{port}/live") as response,
        ):
            assert response.status == 200
            assert await response.json() == {"status": "live"}
    finally:
        await runner.cleanup()

    assert runner.addresses == []
