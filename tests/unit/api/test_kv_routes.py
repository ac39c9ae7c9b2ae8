"""The demo key-value state machine over HTTP: `PUT` and `GET /v1/kv/{key}`.

Every refused request must change nothing (SPEC §7): the fake records each kv_put call.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.api.facade import NoLeaderError
from broker.api.http import MAX_REQUEST_BODY_BYTES
from broker.api.validation import MAX_KV_VALUE_BYTES
from tests.unit.api.conftest import MakeClient
from tests.unit.api.fakes import FakeNode


async def error_of(response: Any) -> tuple[int, int, str]:
    body = await response.json()
    assert set(body) == {"error_code", "message"}, body
    assert isinstance(body["message"], str)
    return response.status, body["error_code"], body["message"]


async def test_put_then_get_returns_the_committed_value(
    client: TestClient[Any, Any], node: FakeNode
) -> None:
    put = await client.put("/v1/kv/color.v1", json={"value": "blue"})

    assert put.status == 200
    assert await put.json() == {"key": "color.v1", "value": "blue", "offset": 130}
    assert node.put_calls == [("color.v1", "blue")]
    got = await client.get("/v1/kv/color.v1")
    assert got.status == 200
    assert await got.json() == {"key": "color.v1", "value": "blue"}


async def test_put_accepts_a_json_content_type_with_charset(
    client: TestClient[Any, Any], node: FakeNode
) -> None:
    response = await client.put(
        "/v1/kv/a",
        data=json.dumps({"value": "ü"}).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    assert response.status == 200
    assert node.kv == {"a": "ü"}


async def test_put_accepts_key_and_value_at_their_limits(
    client: TestClient[Any, Any], node: FakeNode
) -> None:
    key = "k" * 255
    value = "v" * MAX_KV_VALUE_BYTES

    response = await client.put(f"/v1/kv/{key}", json={"value": value})

    assert response.status == 200
    assert node.kv == {key: value}


async def test_get_of_unknown_key_answers_40401(client: TestClient[Any, Any]) -> None:
    response = await client.get("/v1/kv/missing")

    assert await error_of(response) == (
        404,
        40401,
        "key 'missing' not found in the key-value state machine as applied on node 1",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "request body is not valid JSON: Expecting property name enclosed in "
         "double quotes: line 1 column 2 (char 1)"),
        (b"", "request body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"\xff\xfe", "request body is not valid UTF-8: byte 0xff at position 0"),
        (b'["value"]', "request body must be a JSON object, got array"),
        (b'{"value": 5}', "field 'value' must be a string, got number"),
        (b'{"value": null}', "field 'value' must be a string, got null"),
        (b'{"value": {"a": 1}}', "field 'value' must be a string, got object"),
        (b"{}", 'field \'value\' is missing; the body is {"value": <string>}'),
        (b'{"value": "x", "ttl": 3}', 'unknown field \'ttl\'; the body is {"value": <string>}'),
    ],
)  # fmt: skip
async def test_put_with_malformed_body_answers_40001_naming_the_field(
    client: TestClient[Any, Any], node: FakeNode, body: bytes, message: str
) -> None:
    response = await client.put("/v1/kv/a", data=body, headers={"Content-Type": "application/json"})

    assert await error_of(response) == (400, 40001, message)
    assert node.put_calls == []
    assert node.kv == {}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("a%20b", "key 'a b' contains ' ' at position 1; a key may only contain letters a-z "
         "and A-Z, digits 0-9, '.', '_' and '-'"),
        ("caf%C3%A9", "key 'café' contains 'é' at position 3; a key may only contain letters "
         "a-z and A-Z, digits 0-9, '.', '_' and '-'"),
        ("k" * 256, f"key {'k' * 64!r}... (256 characters) has 256 characters, more than the "
         "limit of 255"),
    ],
)  # fmt: skip
async def test_bad_key_answers_40003_naming_key_and_rule(
    client: TestClient[Any, Any], node: FakeNode, key: str, message: str
) -> None:
    put = await client.put(f"/v1/kv/{key}", json={"value": "x"})
    got = await client.get(f"/v1/kv/{key}")

    assert await error_of(put) == (400, 40003, message)
    assert await error_of(got) == (400, 40003, message)
    assert node.put_calls == []


async def test_value_over_64_kib_answers_40003_with_size_and_limit(
    client: TestClient[Any, Any], node: FakeNode
) -> None:
    value = "é" * (MAX_KV_VALUE_BYTES // 2 + 1)  # two bytes each in UTF-8

    response = await client.put("/v1/kv/a", json={"value": value})

    assert await error_of(response) == (
        400,
        40003,
        f"field 'value' is {MAX_KV_VALUE_BYTES + 2} bytes in UTF-8, more than the limit of "
        f"{MAX_KV_VALUE_BYTES} bytes",
    )
    assert node.put_calls == []


async def test_value_with_a_lone_surrogate_answers_40003(
    client: TestClient[Any, Any], node: FakeNode
) -> None:
    response = await client.put(
        "/v1/kv/a", data=b'{"value": "ab\\ud800"}', headers={"Content-Type": "application/json"}
    )

    assert await error_of(response) == (
        400,
        40003,
        "field 'value' is not valid Unicode: it holds the lone surrogate '\\ud800' at position 2",
    )
    assert node.put_calls == []


async def test_body_over_the_request_limit_answers_413_with_40004(
    client: TestClient[Any, Any], node: FakeNode
) -> None:
    body = json.dumps({"value": "x" * MAX_REQUEST_BODY_BYTES}).encode()

    response = await client.put("/v1/kv/a", data=body, headers={"Content-Type": "application/json"})

    assert await error_of(response) == (
        413,
        40004,
        f"request body of {len(body)} bytes is larger than the limit of "
        f"{MAX_REQUEST_BODY_BYTES} bytes",
    )
    assert node.put_calls == []


async def test_chunked_body_over_the_request_limit_answers_413_with_40004(
    client: TestClient[Any, Any], node: FakeNode
) -> None:
    async def chunks() -> Any:
        for _ in range(MAX_REQUEST_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    response = await client.put(
        "/v1/kv/a", data=chunks(), headers={"Content-Type": "application/json"}
    )

    assert await error_of(response) == (
        413,
        40004,
        f"request body is larger than the limit of {MAX_REQUEST_BODY_BYTES} bytes",
    )
    assert node.put_calls == []


async def test_put_with_another_content_type_answers_415_with_40005(
    client: TestClient[Any, Any], node: FakeNode
) -> None:
    response = await client.put(
        "/v1/kv/a", data=b'{"value": "x"}', headers={"Content-Type": "text/plain"}
    )

    assert await error_of(response) == (
        415,
        40005,
        "Content-Type 'text/plain' is not accepted; send the body as application/json",
    )
    assert node.put_calls == []


async def test_put_without_leader_answers_503_50003_with_retry_after(
    make_client: MakeClient,
) -> None:
    node = FakeNode(put_error=NoLeaderError())
    client = await make_client(node)

    response = await client.put("/v1/kv/a", json={"value": "x"})

    assert response.headers["Retry-After"] == "1"
    assert await error_of(response) == (
        503,
        50003,
        "no quorum leader is known right now, so the write of key 'a' cannot be served; "
        "retry after 1 s",
    )
    assert node.kv == {}


async def test_put_that_does_not_commit_in_time_answers_504_50002(
    make_client: MakeClient,
) -> None:
    node = FakeNode(put_error=TimeoutError())
    client = await make_client(node)

    response = await client.put("/v1/kv/a", json={"value": "x"})

    assert await error_of(response) == (
        504,
        50002,
        "timed out waiting for commit of key 'a'; the write may still take effect",
    )


async def test_put_is_bounded_by_the_quorum_timeout_even_if_the_node_never_answers(
    make_client: MakeClient,
) -> None:
    class StuckNode(FakeNode):
        async def kv_put(self, key: str, value: str) -> int:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    client = await make_client(StuckNode(), quorum_timeout_seconds=0.05)

    response = await client.put("/v1/kv/a", json={"value": "x"})

    status, code, _ = await error_of(response)
    assert (status, code) == (504, 50002)
