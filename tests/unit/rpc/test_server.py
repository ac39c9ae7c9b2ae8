"""The rpc listener (kraft.rpc.server) on real sockets: handshake, raft messages, requests,
and bad input, which closes only the connection it came on, with a logged reason."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kraft.raft.messages import VoteRequest
from kraft.rpc.client import RpcClient
from kraft.rpc.codec import encode_message
from kraft.rpc.config import MAX_FRAME_BYTES
from kraft.rpc.errors import ConnectionLostError, HandshakeError, RemoteError
from kraft.rpc.framing import LENGTH_PREFIX, FrameType, encode_frame

from .conftest import (
    CLUSTER_ID,
    OTHER_CLUSTER_ID,
    RawConnection,
    StartServer,
    closed_reasons,
    node_hello,
    raw_frame,
    wait_until,
)


async def test_raft_messages_reach_the_callback_with_the_sender_of_the_hello(
    start_server: StartServer,
) -> None:
    server, inbox = await start_server(node_id=2)
    connection = await RawConnection.open(server.port, node_hello(node_id=3))

    await connection.send(encode_frame(FrameType.RAFT, encode_message(VoteRequest(4, 3, 1, 10))))
    await wait_until(lambda: len(inbox.received) == 1, "the vote request")

    assert inbox.received == [(3, VoteRequest(4, 3, 1, 10))]
    await connection.close()


async def test_server_answers_the_hello_with_its_node_and_cluster_id(
    start_server: StartServer,
) -> None:
    server, _ = await start_server(node_id=2)
    client = RpcClient("127.0.0.1", server.port, None)

    answer = await client.request({"kind": "ping"}, timeout_s=5)

    assert answer == {"kind": "echo", "sender": None, "body": {"kind": "ping"}}
    assert client.server_hello is not None
    assert (client.server_hello.node_id, client.server_hello.cluster_id) == (2, CLUSTER_ID)
    await client.close()


async def test_wrong_cluster_id_is_refused_naming_both_ids(
    start_server: StartServer, logs: list[dict[str, Any]]
) -> None:
    server, _ = await start_server()
    client = RpcClient("127.0.0.1", server.port, OTHER_CLUSTER_ID)

    with pytest.raises(HandshakeError) as refused:
        await client.connect()

    expected = f"cluster id {OTHER_CLUSTER_ID} does not match this node's {CLUSTER_ID}"
    assert expected in str(refused.value)
    await wait_until(lambda: expected in closed_reasons(logs), "the logged refusal")
    assert server.stats().connections_refused == 1


async def test_unknown_protocol_version_in_the_hello_is_refused(
    start_server: StartServer, logs: list[dict[str, Any]]
) -> None:
    server, _ = await start_server()
    connection = await RawConnection.open(server.port)

    await connection.send(encode_frame(FrameType.HELLO, node_hello() | {"protocol_version": 9}))
    frames = await connection.read_until_closed()

    assert [frame.frame_type for frame in frames] == [FrameType.ERROR]
    assert frames[0].body["code"] == "unsupported_version"
    assert "protocol version 9 is not supported" in frames[0].body["message"]
    await wait_until(lambda: any("version 9" in r for r in closed_reasons(logs)), "the log")
    await connection.close()


@pytest.mark.parametrize(
    ("first_bytes", "reason"),
    [
        (encode_frame(FrameType.RAFT, [1, 1, 1, 1, 1]), "expected a HELLO frame first, got RAFT"),
        (b"GET / HTTP/1.1\r\n\r\n", "exceeds MAX_FRAME_BYTES"),
        (encode_frame(FrameType.HELLO, {"node_id": "one"}), "bad hello: hello.node_id"),
        (encode_frame(FrameType.HELLO, node_hello(cluster_id=None)), "sent no cluster id"),
    ],
)
async def test_a_connection_that_does_not_start_with_a_valid_hello_is_closed(
    start_server: StartServer, logs: list[dict[str, Any]], first_bytes: bytes, reason: str
) -> None:
    server, _ = await start_server()
    bystander = RpcClient("127.0.0.1", server.port, CLUSTER_ID)
    await bystander.connect()
    connection = await RawConnection.open(server.port)

    await connection.send(first_bytes)
    frames = await connection.read_until_closed()

    assert [frame.frame_type for frame in frames] == [FrameType.ERROR]
    await wait_until(lambda: any(reason in r for r in closed_reasons(logs)), reason)
    assert (await bystander.request({"kind": "x"}, timeout_s=5))["kind"] == "echo"
    assert server.stats().connections_refused == 1
    await connection.close()
    await bystander.close()


async def test_a_connection_that_sends_no_hello_in_time_is_closed(
    start_server: StartServer, logs: list[dict[str, Any]]
) -> None:
    server, _ = await start_server(handshake_timeout_s=0.05)
    connection = await RawConnection.open(server.port)

    frames = await connection.read_until_closed()

    assert frames[0].body["message"] == "no hello within 0.05 s"
    assert "no hello within 0.05 s" in closed_reasons(logs)
    await connection.close()


BAD_INPUT_AFTER_HANDSHAKE = [
    pytest.param(b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1", "not valid msgpack", id="garbage"),
    pytest.param(
        LENGTH_PREFIX.pack(MAX_FRAME_BYTES + 1), "exceeds MAX_FRAME_BYTES", id="oversized"
    ),
    pytest.param(
        LENGTH_PREFIX.pack(1000) + b"\x81" * 10, "after 10 of a frame's 1000 bytes", id="truncated"
    ),
    pytest.param(raw_frame({"v": 7, "t": 2, "b": []}), "protocol version 7 is not", id="version"),
    pytest.param(raw_frame({"v": 1, "t": 42, "b": []}), "unknown frame type 42", id="frame-type"),
    pytest.param(raw_frame([1, 2, 3]), "expected a map", id="frame-not-a-map"),
    pytest.param(encode_frame(FrameType.RAFT, [99, 1, 2]), "unknown message tag 99", id="tag"),
    pytest.param(
        encode_frame(FrameType.RAFT, [1, "4", 3, 1, 10]),
        "VoteRequest.epoch: expected int, got str",
        id="malformed-message",
    ),
    pytest.param(
        encode_frame(FrameType.REQUEST, {"key": 1}, 1), "request.kind: missing", id="no-kind"
    ),
    pytest.param(
        encode_frame(FrameType.REQUEST, {"kind": "x"}), "without a correlation id", id="no-id"
    ),
    pytest.param(
        encode_frame(FrameType.HELLO, node_hello()), "unexpected HELLO frame", id="hello-again"
    ),
    pytest.param(
        encode_frame(FrameType.RESPONSE, {}, 1), "unexpected RESPONSE frame", id="response"
    ),
]


@pytest.mark.parametrize(("bad_bytes", "reason"), BAD_INPUT_AFTER_HANDSHAKE)
async def test_bad_input_closes_only_its_connection_with_a_logged_reason(
    start_server: StartServer, logs: list[dict[str, Any]], bad_bytes: bytes, reason: str
) -> None:
    """SPEC §7: bad input gets a precise error, changes nothing, and the node keeps serving
    everyone else."""
    server, inbox = await start_server()
    bystander = RpcClient("127.0.0.1", server.port, CLUSTER_ID)
    await bystander.connect()
    offender = await RawConnection.open(server.port, node_hello(node_id=5))

    await offender.send(bad_bytes)
    if "of a frame's" in reason:
        offender.writer.write_eof()  # the peer goes away in the middle of the frame
    frames = await offender.read_until_closed()

    assert [frame.frame_type for frame in frames] == [FrameType.ERROR]
    assert reason in frames[0].body["message"]
    await wait_until(lambda: any(reason in r for r in closed_reasons(logs)), "the logged reason")
    assert inbox.received == []
    assert await bystander.request({"kind": "still-there"}, timeout_s=5) == {
        "kind": "echo",
        "sender": None,
        "body": {"kind": "still-there"},
    }
    assert server.stats().connections_closed_on_bad_input == 1
    await offender.close()
    await bystander.close()


async def test_a_tool_without_node_id_may_not_send_raft_messages(
    start_server: StartServer, logs: list[dict[str, Any]]
) -> None:
    server, inbox = await start_server()
    tool = await RawConnection.open(server.port, node_hello(node_id=None))

    await tool.send(encode_frame(FrameType.RAFT, encode_message(VoteRequest(1, 1, 0, 0))))
    frames = await tool.read_until_closed()

    assert frames[0].body["code"] == "protocol_violation"
    assert inbox.received == []
    await wait_until(
        lambda: any("need a node id" in r for r in closed_reasons(logs)), "the logged reason"
    )
    await tool.close()


async def test_a_slow_handler_holds_up_neither_other_requests_nor_other_connections(
    start_server: StartServer,
) -> None:
    release = asyncio.Event()

    async def handler(sender: int | None, body: dict[str, Any]) -> dict[str, Any]:
        if body["kind"] == "slow":
            await release.wait()
        return {"kind": body["kind"]}

    server, _ = await start_server(on_request=handler)
    first = RpcClient("127.0.0.1", server.port, CLUSTER_ID)
    second = RpcClient("127.0.0.1", server.port, CLUSTER_ID)
    await first.connect()
    slow = asyncio.create_task(first.request({"kind": "slow"}, timeout_s=5))

    assert await first.request({"kind": "fast"}, timeout_s=5) == {"kind": "fast"}
    assert await second.request({"kind": "fast"}, timeout_s=5) == {"kind": "fast"}
    assert not slow.done()
    release.set()
    assert await slow == {"kind": "slow"}
    await first.close()
    await second.close()


async def test_a_failing_handler_fails_that_request_only(
    start_server: StartServer, logs: list[dict[str, Any]]
) -> None:
    async def handler(sender: int | None, body: dict[str, Any]) -> dict[str, Any]:
        if body["kind"] == "boom":
            raise ValueError("no such key")
        if body["kind"] == "refuse":
            raise RemoteError("not_controller", "the controller is node 3")
        return {"ok": True}

    server, _ = await start_server(on_request=handler)
    client = RpcClient("127.0.0.1", server.port, CLUSTER_ID)

    with pytest.raises(RemoteError) as failed:
        await client.request({"kind": "boom"}, timeout_s=5)
    with pytest.raises(RemoteError) as refused:
        await client.request({"kind": "refuse"}, timeout_s=5)
    answer = await client.request({"kind": "fine"}, timeout_s=5)

    assert failed.value.code == "handler_failed"
    assert failed.value.message == "boom request failed: ValueError: no such key"
    assert (refused.value.code, refused.value.message) == (
        "not_controller",
        "the controller is node 3",
    )
    assert answer == {"ok": True}
    assert [e["kind"] for e in logs if e["event"] == "rpc.request_failed"] == ["boom"]
    await client.close()


async def test_close_ends_every_connection_and_cancels_handlers(
    start_server: StartServer,
) -> None:
    cancelled = asyncio.Event()

    async def handler(sender: int | None, body: dict[str, Any]) -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    server, _ = await start_server(on_request=handler)
    client = RpcClient("127.0.0.1", server.port, CLUSTER_ID)
    pending = asyncio.create_task(client.request({"kind": "forever"}, timeout_s=5))
    await wait_until(lambda: server.stats().requests_received == 1, "the request")

    await server.close()

    assert cancelled.is_set()
    with pytest.raises(ConnectionLostError):
        await pending
    assert server.stats().connections_open == 0
    await client.close()


async def test_connections_beyond_the_limit_are_refused(start_server: StartServer) -> None:
    server, _ = await start_server(max_connections=1)
    first = RpcClient("127.0.0.1", server.port, CLUSTER_ID)
    await first.connect()

    with pytest.raises(HandshakeError, match="too_many_connections"):
        await RpcClient("127.0.0.1", server.port, CLUSTER_ID).connect()
    assert await first.request({"kind": "x"}, timeout_s=5) == {
        "kind": "echo",
        "sender": None,
        "body": {"kind": "x"},
    }
    await first.close()


async def test_an_idle_connection_is_closed(
    start_server: StartServer, logs: list[dict[str, Any]]
) -> None:
    server, _ = await start_server(idle_timeout_s=0.05)
    connection = await RawConnection.open(server.port, node_hello())

    frames = await connection.read_until_closed()

    assert frames == []
    assert "idle for 0.05 s" in closed_reasons(logs)
    await connection.close()


async def test_a_failing_raft_callback_costs_its_connection_only(
    start_server: StartServer, logs: list[dict[str, Any]]
) -> None:
    server, inbox = await start_server()
    server._on_raft_message = _raise_on_epoch_13(inbox)
    bystander = RpcClient("127.0.0.1", server.port, CLUSTER_ID)
    await bystander.connect()
    connection = await RawConnection.open(server.port, node_hello(node_id=3))

    await connection.send(encode_frame(FrameType.RAFT, encode_message(VoteRequest(13, 3, 0, 0))))
    await connection.read_until_closed()

    await wait_until(lambda: any("internal error" in r for r in closed_reasons(logs)), "the log")
    assert any(e["event"] == "rpc.connection_failed" for e in logs)
    assert (await bystander.request({"kind": "x"}, timeout_s=5))["kind"] == "echo"
    await connection.close()
    await bystander.close()


def _raise_on_epoch_13(inbox: Any) -> Any:
    def on_raft_message(sender: int, message: Any) -> None:
        if message.epoch == 13:
            raise RuntimeError("bug in the node")
        inbox(sender, message)

    return on_raft_message
