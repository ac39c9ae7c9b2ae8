"""The client side of an rpc connection: handshake, requests with correlation ids, and a
reader task that routes answers to their waiting requests.

ClientConnection is shared by the peer transport (one per peer, carrying raft messages and
requests) and RpcClient, the small standalone client for tools (the CLI) that only makes
requests. A connection never reconnects by itself; its owner opens a new one.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import structlog

from kraft.rpc.codec import Body, validate_body
from kraft.rpc.config import (
    CLOSE_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    HANDSHAKE_TIMEOUT_S,
    MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION,
    PROTOCOL_VERSION,
    READ_BUFFER_BYTES,
    WRITE_TIMEOUT_S,
)
from kraft.rpc.errors import (
    ConnectionLostError,
    DecodeError,
    FrameError,
    HandshakeError,
    RemoteError,
)
from kraft.rpc.framing import (
    Frame,
    FrameType,
    close_writer,
    encode_frame,
    read_frame,
)
from kraft.rpc.handshake import Hello, decode_hello, refuse_server

log = structlog.get_logger(__name__)


class ClientConnection:
    """One open, handshaken outbound connection. Create it with `open`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        server_hello: Hello,
        address: str,
    ) -> None:
        self.server_hello = server_hello
        self.address = address  # "host:port" as connected to
        node_id = server_hello.node_id
        peer = address if node_id is None else f"node {node_id} at {address}"
        self.peer = peer  # for logs: "node 2 at 127.0.0.1:9193"
        self._reader = reader
        self._writer = writer
        self._pending: dict[int, asyncio.Future[Body]] = {}
        self._correlation_ids = itertools.count(1)
        self._request_slots = asyncio.Semaphore(MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION)
        self._closed_reason: str | None = None
        # The reader waits for frames as long as the connection lives, so it has no timeout
        # of its own: close() (or the server's idle timeout) ends it.
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"rpc-read {peer}")

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        hello: Hello,
        *,
        expected_node_id: int | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
    ) -> ClientConnection:
        """Connects and handshakes. Raises OSError or TimeoutError (cannot connect),
        HandshakeError (refused, or the server is not who we expected)."""
        address = f"{host}:{port}"
        async with asyncio.timeout(connect_timeout_s):
            reader, writer = await asyncio.open_connection(host, port, limit=READ_BUFFER_BYTES)
        try:
            async with asyncio.timeout(handshake_timeout_s):
                writer.write(encode_frame(FrameType.HELLO, hello.to_wire()))
                await writer.drain()
                answer = await _read_handshake_answer(reader, address)
            server_hello = _check_server_hello(answer, hello.cluster_id, expected_node_id, address)
        except BaseException:
            writer.transport.abort()
            raise
        return cls(reader, writer, server_hello, address)

    @property
    def is_open(self) -> bool:
        return self._closed_reason is None

    @property
    def closed_reason(self) -> str | None:
        return self._closed_reason

    def write(self, frames: list[bytes]) -> None:
        """Buffers encoded frames for sending; drain() waits until they are on their way."""
        if self._closed_reason is not None:
            raise ConnectionLostError(f"connection to {self.peer} closed: {self._closed_reason}")
        self._writer.writelines(frames)

    async def drain(self) -> None:
        """Waits (at most WRITE_TIMEOUT_S) for the socket buffer to go below its high mark."""
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await self._writer.drain()

    async def request(self, body: Body, timeout_s: float) -> Body:
        """Sends a request and waits for its answer. Raises TimeoutError, RemoteError (the
        server answered with an error), ConnectionLostError."""
        validate_body(body, "request")
        async with asyncio.timeout(timeout_s), self._request_slots:
            correlation_id = next(self._correlation_ids)
            answer: asyncio.Future[Body] = asyncio.get_running_loop().create_future()
            self._pending[correlation_id] = answer
            try:
                self.write([encode_frame(FrameType.REQUEST, body, correlation_id)])
                await self._writer.drain()
                return await answer
            except OSError as error:  # the socket failed under the write
                raise ConnectionLostError(f"connection to {self.peer} failed: {error!r}") from error
            finally:
                del self._pending[correlation_id]

    async def close(self, reason: str = "closed by this side") -> None:
        """Closes the socket, fails waiting requests, and awaits the reader task."""
        self._mark_closed(reason)
        self._reader_task.cancel()
        await asyncio.gather(self._reader_task, return_exceptions=True)
        await close_writer(self._writer, CLOSE_TIMEOUT_S)

    async def _read_loop(self) -> None:
        reason = "server closed the connection"
        try:
            while True:
                frame = await read_frame(self._reader)
                if frame is None:
                    break
                problem = self._dispatch(frame)
                if problem is not None:
                    reason = problem
                    break
        except (FrameError, DecodeError) as error:
            reason = f"bad frame from server: {error}"
        except OSError as error:
            reason = f"connection error: {error!r}"
        finally:
            self._mark_closed(reason)

    def _dispatch(self, frame: Frame) -> str | None:
        """Routes one frame; returns why the connection must close, or None."""
        if frame.frame_type is FrameType.ERROR and frame.correlation_id is None:
            code, message = _error_fields(frame.body)
            return f"server closed the connection: {code}: {message}"
        if frame.frame_type not in (FrameType.RESPONSE, FrameType.ERROR):
            return f"unexpected {frame.frame_type.name} frame from server"
        if frame.correlation_id is None:
            return "RESPONSE frame without a correlation id"
        answer = self._pending.get(frame.correlation_id)
        if answer is None or answer.done():
            return None  # the request timed out or was cancelled; its answer is late
        if frame.frame_type is FrameType.ERROR:
            code, message = _error_fields(frame.body)
            answer.set_exception(RemoteError(code, message))
        else:
            answer.set_result(validate_body(frame.body, "response", require_kind=False))
        return None

    def _mark_closed(self, reason: str) -> None:
        if self._closed_reason is not None:
            return
        self._closed_reason = reason
        log.info("rpc.connection_closed", side="client", peer=self.peer, reason=reason)
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(
                    ConnectionLostError(f"connection to {self.peer} closed: {reason}")
                )
        self._writer.close()


async def _read_handshake_answer(reader: asyncio.StreamReader, address: str) -> Frame:
    try:
        frame = await read_frame(reader)
    except FrameError as error:
        raise HandshakeError(f"bad hello answer from {address}: {error}") from error
    if frame is None:
        raise HandshakeError(f"server at {address} closed the connection during the handshake")
    return frame


def _check_server_hello(
    frame: Frame, cluster_id: str | None, expected_node_id: int | None, address: str
) -> Hello:
    if frame.frame_type is FrameType.ERROR:
        code, message = _error_fields(frame.body)
        raise HandshakeError(f"server at {address} refused the handshake: {code}: {message}")
    if frame.frame_type is not FrameType.HELLO:
        raise HandshakeError(f"server at {address} answered the hello with {frame.frame_type.name}")
    try:
        hello = decode_hello(frame.body)
    except DecodeError as error:
        raise HandshakeError(f"bad hello from {address}: {error}") from error
    refusal = refuse_server(hello, cluster_id, expected_node_id, address)
    if refusal is not None:
        raise HandshakeError(refusal)
    return hello


def _error_fields(body: Any) -> tuple[str, str]:
    """(code, message) of an error body, tolerating a malformed one."""
    if type(body) is not dict:
        return "unknown", repr(body)
    return str(body.get("code", "unknown")), str(body.get("message", ""))


class RpcClient:
    """A standalone client for tools: connect, request, close.

    It sends a hello without a node id, so the server accepts requests only (no raft
    messages). With cluster_id None it accepts any cluster and reports the server's.
    """

    def __init__(
        self,
        host: str,
        port: int,
        cluster_id: str | None,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.host = host
        self.port = port
        self.cluster_id = cluster_id
        self._connect_timeout_s = connect_timeout_s
        self._connection: ClientConnection | None = None

    async def connect(self) -> None:
        """Connects and handshakes; raises OSError, TimeoutError or HandshakeError."""
        if self._connection is not None and self._connection.is_open:
            return
        hello = Hello(self.cluster_id, None, None, PROTOCOL_VERSION)
        self._connection = await ClientConnection.open(
            self.host, self.port, hello, connect_timeout_s=self._connect_timeout_s
        )

    @property
    def server_hello(self) -> Hello | None:
        return None if self._connection is None else self._connection.server_hello

    async def request(self, body: Body, timeout_s: float) -> Body:
        """Connects if needed, sends `body` (a map with a `kind`), returns the answer.

        Raises TimeoutError after timeout_s (connecting included), RemoteError,
        ConnectionLostError, HandshakeError, OSError.
        """
        async with asyncio.timeout(timeout_s):
            await self.connect()
            assert self._connection is not None
            return await self._connection.request(body, timeout_s)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def __aenter__(self) -> RpcClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
