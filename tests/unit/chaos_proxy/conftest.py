"""Shared harness of the proxy tests: echo servers standing for nodes' rpc listeners, client
connections closed at teardown, and waiting on conditions with a deadline instead of
sleeping. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from chaos.proxy import LinkProxy

DEADLINE_S = 10.0
POLL_INTERVAL_S = 0.002
SEED = 20240605


async def wait_until(
    condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S
) -> None:
    """Polls `condition` until it holds; fails naming `what` after timeout_s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL_S)


class EchoServer:
    """Echoes every byte back; optionally greets each connection first (so bytes flow from
    the target without a request). Counts connections and bytes received."""

    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting
        self.connections = 0
        self.bytes_received = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        assert isinstance(port, int)
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            if self.greeting:
                writer.write(self.greeting)
                await writer.drain()
            while data := await reader.read(65536):
                self.bytes_received += len(data)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass  # the proxy reset us: that is what these tests provoke
        finally:
            self._writers.discard(writer)
            writer.close()


class Clients:
    """Opens client connections and closes every one at teardown."""

    def __init__(self) -> None:
        self._writers: list[asyncio.StreamWriter] = []

    async def open(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), DEADLINE_S
        )
        self._writers.append(writer)
        return reader, writer

    def close(self) -> None:
        for writer in self._writers:
            writer.transport.abort()


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Reads until the peer closes or resets the connection; returns what arrived."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while data := await asyncio.wait_for(reader.read(65536), DEADLINE_S):
            received += data
    return received


async def round_trip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes
) -> bytes:
    writer.write(message)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(message)), DEADLINE_S)


@pytest.fixture(autouse=True)
async def no_loop_errors() -> AsyncIterator[None]:
    """Fails a test whose event loop reported an error (a task that died unseen, a callback
    that raised): the proxy must end every connection cleanly."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    yield
    await asyncio.sleep(0)  # let callbacks of the last closes run
    loop.set_exception_handler(None)
    assert errors == []


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def greeting_echo() -> AsyncIterator[EchoServer]:
    server = EchoServer(greeting=b"hello")
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    opened = Clients()
    yield opened
    opened.close()


@contextlib.asynccontextmanager
async def started_link(target_port: int, seed: int = SEED) -> AsyncIterator[LinkProxy]:
    """A LinkProxy to target_port, closed on the way out."""
    link = LinkProxy(target_port, random.Random(seed), name=f"link to {target_port}")
    await link.start()
    try:
        yield link
    finally:
        await link.close()


@pytest.fixture
async def proxy(echo: EchoServer) -> AsyncIterator[LinkProxy]:
    async with started_link(echo.port) as link:
        yield link


@pytest.fixture
async def greeting_proxy(greeting_echo: EchoServer) -> AsyncIterator[LinkProxy]:
    async with started_link(greeting_echo.port) as link:
        yield link
