"""Error shape for aiohttp's own errors and unexpected exceptions, and the admin token
(SPEC §5: every route but /live, /v1/status/ready and /metrics needs the bearer token)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from broker.api.errors import ErrorCode
from broker.api.http import build_app
from tests.unit.api.conftest import MakeClient
from tests.unit.api.fakes import FakeNode
from tests.unit.api.test_kv_routes import error_of

TOKEN = "s3cret-token"
UNAUTHORIZED_MISSING = (
    401,
    40101,
    "missing Authorization header; http.admin.token is set on this node, so this route "
    "requires 'Authorization: Bearer <token>'",
)
UNAUTHORIZED_WRONG = (
    401,
    40101,
    "the bearer token does not match this node's http.admin.token",
)


async def test_unknown_route_answers_404_with_40400(client: TestClient[Any, Any]) -> None:
    response = await client.get("/v1/nope")

    assert await error_of(response) == (
        404,
        40400,
        "no route '/v1/nope'; /openapi.json lists the routes of this node",
    )


async def test_wrong_method_answers_405_with_40500_and_allow(
    client: TestClient[Any, Any],
) -> None:
    response = await client.post("/live")

    assert response.headers["Allow"] == "GET, HEAD"
    assert await error_of(response) == (
        405,
        40500,
        "method POST is not allowed on '/live'; allowed: GET, HEAD",
    )


async def test_unexpected_exception_answers_500_with_50001(make_client: MakeClient) -> None:
    class BrokenNode(FakeNode):
        def is_ready(self) -> bool:
            raise RuntimeError("boom")

    client = await make_client(BrokenNode())

    response = await client.get("/v1/status/ready")

    assert await error_of(response) == (
        500,
        50001,
        "unexpected error while serving GET /v1/status/ready; the node logged it",
    )


@pytest.mark.parametrize("path", ["/live", "/v1/status/ready", "/metrics"])
async def test_public_routes_need_no_token(make_client: MakeClient, path: str) -> None:
    client = await make_client(FakeNode(), admin_token=TOKEN)

    response = await client.get(path)

    assert response.status == 200


@pytest.mark.parametrize(
    "path", ["/openapi.json", "/v1/quorum/status", "/v1/quorum/replication", "/v1/kv/a"]
)
async def test_other_routes_answer_401_without_token(make_client: MakeClient, path: str) -> None:
    client = await make_client(FakeNode(kv={"a": "1"}), admin_token=TOKEN)

    response = await client.get(path)

    assert response.headers["WWW-Authenticate"] == 'Bearer realm="kraft"'
    assert await error_of(response) == UNAUTHORIZED_MISSING


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {TOKEN}x", UNAUTHORIZED_WRONG),
        ("Bearer ", UNAUTHORIZED_WRONG),
        ("Bearer sécret", UNAUTHORIZED_WRONG),
        (
            f"Basic {TOKEN}",
            (
                401,
                40101,
                "Authorization scheme 'Basic' is not accepted; use 'Authorization: Bearer <token>'",
            ),
        ),
    ],
)
async def test_put_with_wrong_token_answers_401_and_changes_nothing(
    make_client: MakeClient, header: str, expected: tuple[int, int, str]
) -> None:
    node = FakeNode()
    client = await make_client(node, admin_token=TOKEN)

    response = await client.put("/v1/kv/a", json={"value": "x"}, headers={"Authorization": header})

    assert await error_of(response) == expected
    assert node.put_calls == []
    assert node.kv == {}


async def test_put_with_the_right_token_is_served(make_client: MakeClient) -> None:
    node = FakeNode()
    client = await make_client(node, admin_token=TOKEN)

    response = await client.put(
        "/v1/kv/a", json={"value": "x"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert response.status == 200
    assert node.kv == {"a": "x"}


async def test_unknown_route_needs_the_token_too(make_client: MakeClient) -> None:
    client = await make_client(FakeNode(), admin_token=TOKEN)

    response = await client.get("/v1/nope")

    assert await error_of(response) == UNAUTHORIZED_MISSING


def test_empty_admin_token_is_refused() -> None:
    with pytest.raises(ValueError, match="admin_token is empty"):
        build_app(FakeNode(), CollectorRegistry(), admin_token=" ")


def test_every_error_code_is_answered_with_a_status_of_its_class() -> None:
    for code in ErrorCode:
        assert code.http_status // 100 == int(code) // 10_000, code
    assert ErrorCode.NO_LEADER.http_status == 503
    assert ErrorCode.TIMED_OUT.http_status == 504
