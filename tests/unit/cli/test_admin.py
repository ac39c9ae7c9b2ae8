"""client.admin: failover between bootstrap URLs, Retry-After, deadlines, typed errors
(SPEC §4: admin commands fail over between the addresses; §5: 503 + Retry-After, error JSON)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from client.admin import (
    LOCAL_BOOTSTRAP,
    RETRY_AFTER_S_MAX,
    AdminClient,
    AdminError,
    ClusterUnreachable,
    default_bootstrap,
    parse_bootstrap,
    parse_retry_after,
)
from tests.unit.cli.conftest import ServerFactory


class FakeTime:
    """A monotonic clock that only moves when the client sleeps: no real waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(bootstrap: list[str], clock: FakeTime, **options: Any) -> AdminClient:
    return AdminClient(bootstrap, sleep=clock.sleep, monotonic=clock.monotonic, **options)


def ok(body: dict[str, Any]) -> web.Response:
    return web.json_response(body)


async def test_client_fails_over_from_a_refused_address(
    serve: ServerFactory, refused_url: str
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return ok({"leader_id": 2})

    url = await serve(handler)
    clock = FakeTime()
    client = make_client([refused_url, url], clock)
    status = await asyncio.to_thread(client.quorum_status)
    assert status == {"leader_id": 2}
    assert clock.sleeps == []  # failing over is immediate


async def test_client_fails_over_on_a_server_error_and_remembers_the_good_address(
    serve: ServerFactory,
) -> None:
    hits = {"bad": 0, "good": 0}

    async def bad(request: web.Request) -> web.Response:
        hits["bad"] += 1
        return web.json_response({"error_code": 50001, "message": "boom"}, status=500)

    async def good(request: web.Request) -> web.Response:
        hits["good"] += 1
        return ok({"value": "blue"})

    client = make_client([await serve(bad), await serve(good)], FakeTime())
    assert await asyncio.to_thread(client.kv_get, "color") == {"value": "blue"}
    assert await asyncio.to_thread(client.kv_get, "color") == {"value": "blue"}
    assert hits == {"bad": 1, "good": 2}


async def test_client_retries_503_after_the_servers_retry_after(serve: ServerFactory) -> None:
    calls: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.path)
        if len(calls) == 1:
            return web.json_response(
                {"error_code": 50003, "message": "no controller"},
                status=503,
                headers={"Retry-After": "2"},
            )
        return ok({"key": "k", "value": "v", "offset": 7})

    clock = FakeTime()
    client = make_client([await serve(handler)], clock)
    answer = await asyncio.to_thread(client.kv_put, "k", "v")
    assert answer["offset"] == 7
    assert clock.sleeps == [2.0]
    assert calls == ["/v1/kv/k", "/v1/kv/k"]


async def test_client_caps_a_long_retry_after(serve: ServerFactory) -> None:
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.Response(status=503, headers={"Retry-After": "3600"})
        return ok({})

    clock = FakeTime()
    await asyncio.to_thread(make_client([await serve(handler)], clock, timeout_s=60).get, "/x")
    assert clock.sleeps == [RETRY_AFTER_S_MAX]


async def test_client_gives_up_at_the_deadline_with_the_last_503(serve: ServerFactory) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(
            {"error_code": 50003, "message": "no controller"},
            status=503,
            headers={"Retry-After": "1"},
        )

    clock = FakeTime()
    client = make_client([await serve(handler)], clock, timeout_s=3.5)
    with pytest.raises(AdminError) as raised:
        await asyncio.to_thread(client.quorum_status)
    assert (raised.value.error_code, raised.value.http_status) == (50003, 503)
    assert raised.value.message == "no controller"
    assert clock.sleeps == [1.0, 1.0, 1.0, 0.5]  # the last wait is cut at the deadline


async def test_client_does_not_fail_over_on_a_bad_request(serve: ServerFactory) -> None:
    second_hits = 0

    async def missing(request: web.Request) -> web.Response:
        body = {"error_code": 40403, "message": "topic 't' does not exist"}
        return web.json_response(body, status=404)

    async def second(request: web.Request) -> web.Response:
        nonlocal second_hits
        second_hits += 1
        return ok({})

    client = make_client([await serve(missing), await serve(second)], FakeTime())
    with pytest.raises(AdminError) as raised:
        await asyncio.to_thread(client.get, "/v3/clusters/c/topics/t")
    assert raised.value.error_code == 40403
    assert raised.value.http_status == 404
    assert raised.value.message == "topic 't' does not exist"
    assert second_hits == 0


async def test_error_without_json_body_still_gets_a_code(serve: ServerFactory) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=400, text="nope")

    with pytest.raises(AdminError) as raised:
        await asyncio.to_thread(make_client([await serve(handler)], FakeTime()).get, "/x")
    assert (raised.value.error_code, raised.value.message) == (40000, "nope")


def test_unreachable_cluster_raises_after_the_deadline_naming_the_addresses(
    refused_url: str,
) -> None:
    clock = FakeTime()
    client = make_client([refused_url, refused_url], clock, timeout_s=1.0)
    with pytest.raises(ClusterUnreachable) as raised:
        client.get("/v1/quorum/status")
    assert refused_url in raised.value.message
    assert "within 1s" in raised.value.message
    assert raised.value.http_status == 0
    assert clock.now == pytest.approx(1.0)  # it backed off between rounds until the deadline


async def test_client_sends_the_bearer_token(serve: ServerFactory) -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return ok({})

    client = make_client([await serve(handler)], FakeTime(), token="s3cret")
    await asyncio.to_thread(client.get, "/v1/quorum/status")
    assert seen == ["Bearer s3cret"]


async def test_kv_key_is_quoted_in_the_path(serve: ServerFactory) -> None:
    paths: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        paths.append(request.raw_path)
        return ok({"value": "x"})

    await asyncio.to_thread(make_client([await serve(handler)], FakeTime()).kv_get, "a/b c")
    assert paths == ["/v1/kv/a%2Fb%20c"]


def test_parse_bootstrap_adds_scheme_and_drops_trailing_slash() -> None:
    assert parse_bootstrap("localhost:8082, http://h:1/") == ["http://localhost:8082", "http://h:1"]
    with pytest.raises(ValueError, match="names no address"):
        parse_bootstrap(" , ")


def test_default_bootstrap_is_the_environment_else_the_local_cluster() -> None:
    assert default_bootstrap({}) == list(LOCAL_BOOTSTRAP)
    assert LOCAL_BOOTSTRAP == (
        "http://127.0.0.1:8082",
        "http://127.0.0.1:8182",
        "http://127.0.0.1:8282",
    )
    assert default_bootstrap({"KRAFT_BOOTSTRAP": "a:1,b:2"}) == ["http://a:1", "http://b:2"]


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3", now_unix_s=0) == 3.0
    assert parse_retry_after(None, now_unix_s=0) is None
    assert parse_retry_after("soon", now_unix_s=0) is None
    # Thu, 01 Jan 1970 00:00:10 GMT is 10 s after the epoch.
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now_unix_s=4) == 6.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now_unix_s=40) == 0.0
