"""Shared harness of the rpc tests: servers that close themselves, raw sockets that speak
(or mangle) the protocol, and waiting on conditions with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgpack
import pytest
import structlog

from kraft.raft.messages import Message
from kraft.rpc.config import PROTOCOL_VERSION
from kraft.rpc.framing import (
    LENGTH_PREFIX,
    Frame,
    FrameType,
    decode_frame,
    encode_frame,
    frame_splitter,
)
from kraft.rpc.server import RpcServer

CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qk"
OTHER_CLUSTER_ID = "T3RoZXJDbHVzdGVySWQxMj"
DEADLINE_S = 5.0


async def wait_until(
    condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S
) -> None:
    """Polls `condition` until it holds; fails naming `what` after timeout_s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.002)


class Inbox:
    """The on_raft_message callback of a test server: records (sender, message)."""

    def __init__(self) -> None:
        self.received: list[tuple[int, Message]] = []

    def __call__(self, sender: int, message: Message) -> None:
        self.received.append((sender, message))

    def messages_from(self, sender: int) -> list[Message]:
        return [message for from_id, message in self.received if from_id == sender]


async def echo(sender: int | None, body: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "echo", "sender": sender, "body": body}


StartServer = Callable[..., Awaitable[tuple[RpcServer, Inbox]]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Starts RpcServers on 127.0.0.1 (port 0 unless given); closes them after the test."""
    started: list[RpcServer] = []

    async def start(
        node_id: int = 2,
        port: int = 0,
        on_request: Callable[[int | None, dict[str, Any]], Awaitable[dict[str, Any]]] = echo,
        **options: Any,
    ) -> tuple[RpcServer, Inbox]:
        inbox = Inbox()
        server = RpcServer("127.0.0.1", port, CLUSTER_ID, node_id, inbox, on_request, **options)
        await server.start()
        started.append(server)
        return server, inbox

    yield start
    for server in started:
        await server.close()


@pytest.fixture
def logs() -> Any:
    with structlog.testing.capture_logs() as captured:
        yield captured


def closed_reasons(captured: list[dict[str, Any]], side: str = "server") -> list[str]:
    return [
        str(event["reason"])
        for event in captured
        if event["event"] == "rpc.connection_closed" and event.get("side") == side
    ]


def node_hello(node_id: int | None = 1, cluster_id: str | None = CLUSTER_ID) -> dict[str, Any]:
    return {
        "cluster_id": cluster_id,
        "node_id": node_id,
        "directory_id": "dir-1",
        "protocol_version": PROTOCOL_VERSION,
    }


def raw_frame(frame: Any) -> bytes:
    """A frame map packed as it is, so tests can send versions and types we never would."""
    packed: bytes = msgpack.packb(frame, use_bin_type=True)
    return LENGTH_PREFIX.pack(len(packed)) + packed


class RawConnection:
    """A socket that speaks the protocol by hand, to send what a real client never would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._frames = frame_splitter()  # cut as the servers and clients cut them
        self._payloads: list[bytes] = []

    @classmethod
    async def open(cls, port: int, hello: dict[str, Any] | None = None) -> RawConnection:
        """Connects; with `hello`, handshakes and checks the server answered with its own."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connection = cls(reader, writer)
        if hello is not None:
            await connection.send(encode_frame(FrameType.HELLO, hello))
            answer = await connection.read()
            assert answer is not None and answer.frame_type is FrameType.HELLO, answer
        return connection

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self) -> Frame | None:
        """The next frame; None when the server closed the connection between frames."""
        async with asyncio.timeout(DEADLINE_S):
            while not self._payloads:
                data = await self.reader.read(65536)
                if not data:
                    assert not self._frames.partial, self._frames.describe_partial()
                    return None
                self._payloads.extend(self._frames.feed(data))
            return decode_frame(self._payloads.pop(0))

    async def read_until_closed(self) -> list[Frame]:
        """Every frame until the server closes the connection (fails if it does not)."""
        frames = []
        while True:
            try:
                frame = await self.read()
            except ConnectionResetError:
                return frames
            if frame is None:
                return frames
            frames.append(frame)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
