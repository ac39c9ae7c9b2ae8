"""Fixtures: an HTTP test client on build_app over a FakeNode."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from broker.api.http import build_app
from tests.unit.api.fakes import FakeNode

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient[Any, Any]] = []

    async def make(
        node: FakeNode,
        *,
        registry: CollectorRegistry | None = None,
        admin_token: str | None = None,
        **options: Any,
    ) -> TestClient[Any, Any]:
        app = build_app(node, registry or CollectorRegistry(), admin_token=admin_token, **options)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()


@pytest.fixture
async def client(make_client: MakeClient, node: FakeNode) -> TestClient[Any, Any]:
    return await make_client(node)
