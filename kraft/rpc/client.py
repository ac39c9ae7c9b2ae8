"""The client side of an rpc connection: handshake, requests with correlation ids, and an
asyncio.Protocol that routes each answer to its waiting request as it arrives (no reader
task: an answer wakes only the request waiting for it).

ClientConnection is shared by the peer transport (one per peer, carrying raft messages and
requests) and RpcClient, the small standalone client for tools (the CLI) that only makes
requests. A connection never reconnects by itself; its owner opens a new one.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, cast

import structlog

from kraft.rpc.codec import Body, validate_body
from kraft.rpc.config import (
    CLOSE_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    HANDSHAKE_TIMEOUT_S,
    MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION,
    PROTOCOL_VERSION,
    WRITE_TIMEOUT_S,
)
from kraft.rpc.errors import (
    ConnectionLostError,
    DecodeError,
    FrameError,
    HandshakeError,
    RemoteError,
)
from kraft.rpc.framing import Frame, FrameType, decode_frame, encode_frame, frame_splitter
from kraft.rpc.handshake import Hello, decode_hello, refuse_server

log = structlog.get_logger(__name__)


class _ClientProtocol(asyncio.Protocol):
    """The socket side of a ClientConnection: frames are cut and routed where they arrive.

    The first frame is the server's hello answer (`first_frame`); every later one goes to
    the connection's _dispatch."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.connection: ClientConnection | None = None  # once handshaken
        loop = asyncio.get_running_loop()
        self.first_frame: asyncio.Future[Frame] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self._frames = frame_splitter()
        self._reason: str | None = None  # why this side closes, when it does
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._reason is not None:
            return
        try:
            for payload in self._frames.feed(data):
                frame = decode_frame(payload)
                if not self.first_frame.done():
                    self.first_frame.set_result(frame)
                    continue
                if self.connection is None:
                    self.close(f"{frame.frame_type.name} frame before the handshake ended")
                    return
                problem = self.connection._dispatch(frame)
                if problem is not None:
                    self.close(problem)
                    return
        except (FrameError, DecodeError) as error:
            self.close(f"bad frame from server: {error}")

    def eof_received(self) -> bool:
        if self._frames.partial:
            self.close(f"bad frame from server: {self._frames.describe_partial()}")
        else:
            self.close("server closed the connection")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._reason is None:
            self._reason = (
                "server closed the connection" if exc is None else f"connection error: {exc!r}"
            )
        self._ended(self._reason)
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_drain_waiters(None)

    async def drain(self) -> None:
        """Returns once the socket's buffer is below its high mark (at once when it is)."""
        if self._reason is not None:
            raise ConnectionLostError(f"connection to {self.address} closed: {self._reason}")
        if not self._writing_paused:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def close(self, reason: str) -> None:
        """Closes the socket for `reason` (once what was written is sent)."""
        if self._reason is None:
            self._reason = reason
            self._ended(reason)
        if self.transport is not None:
            self.transport.close()

    def _ended(self, reason: str) -> None:
        if not self.first_frame.done():
            self.first_frame.set_exception(
                HandshakeError(f"server at {self.address} ended the handshake: {reason}")
            )
        if self.connection is not None:
            self.connection._mark_closed(reason)
        self._wake_drain_waiters(
            ConnectionLostError(f"connection to {self.address} closed: {reason}")
        )

    def _wake_drain_waiters(self, error: Exception | None) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


class ClientConnection:
    """One open, handshaken outbound connection. Create it with `open`."""

    def __init__(self, protocol: _ClientProtocol, server_hello: Hello, address: str) -> None:
        assert protocol.transport is not None, "a connected protocol"
        self.server_hello = server_hello
        self.address = address  # "host:port" as connected to
        node_id = server_hello.node_id
        peer = address if node_id is None else f"node {node_id} at {address}"
        self.peer = peer  # for logs: "node 2 at 127.0.0.1:9193"
        self._protocol = protocol
        self._transport = protocol.transport
        self._pending: dict[int, asyncio.Future[Body]] = {}
        self._correlation_ids = itertools.count(1)
        self._request_slots = asyncio.Semaphore(MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION)
        self._closed_reason: str | None = None
        protocol.connection = self

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
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(connect_timeout_s):
            transport, protocol = await loop.create_connection(
                lambda: _ClientProtocol(address), host, port
            )
        try:
            async with asyncio.timeout(handshake_timeout_s):
                transport.write(encode_frame(FrameType.HELLO, hello.to_wire()))
                answer = await protocol.first_frame
            server_hello = _check_server_hello(answer, hello.cluster_id, expected_node_id, address)
        except BaseException:
            if not protocol.first_frame.done():
                protocol.first_frame.cancel()  # nobody waits for it any more
            transport.abort()
            raise
        connection = cls(protocol, server_hello, address)
        if protocol.lost.done():  # closed right after its hello
            connection._mark_closed("server closed the connection")
        return connection

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
        self._transport.writelines(frames)

    async def drain(self) -> None:
        """Waits (at most WRITE_TIMEOUT_S) for the socket buffer to go below its high mark."""
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await self._protocol.drain()

    async def request(self, body: Body, timeout_s: float) -> Body:
        """Sends a request and waits for its answer. Raises TimeoutError, RemoteError (the
        server answered with an error), ConnectionLostError.

        One timer bounds the whole request (a second timer per request, or an
        asyncio.timeout, was a measurable part of a follower's fetch round trip)."""
        validate_body(body, "request")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if self._request_slots.locked():  # past the in-flight limit: wait for a slot
            async with asyncio.timeout_at(deadline):
                await self._request_slots.acquire()
        else:
            await self._request_slots.acquire()  # free: returns without suspending
        try:
            correlation_id = next(self._correlation_ids)
            answer: asyncio.Future[Body] = loop.create_future()
            self._pending[correlation_id] = answer
            timer = loop.call_at(deadline, _time_out, answer)
            try:
                self.write([encode_frame(FrameType.REQUEST, body, correlation_id)])
                await self._protocol.drain()
                return await answer
            finally:
                timer.cancel()
                del self._pending[correlation_id]
        finally:
            self._request_slots.release()

    async def close(self, reason: str = "closed by this side") -> None:
        """Closes the socket (what was written still goes out, for at most CLOSE_TIMEOUT_S)
        and fails waiting requests."""
        self._protocol.close(reason)
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await asyncio.shield(self._protocol.lost)
        except TimeoutError:
            self._transport.abort()

    def _dispatch(self, frame: Frame) -> str | None:
        """Routes one frame; returns why the connection must close, or None. Raises
        DecodeError for a response body that is not a valid one."""
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
        self._protocol.close(reason)


def _time_out(answer: asyncio.Future[Body]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())


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
