"""The rpc listener (SPEC §3): accepts connections from peer nodes and tools.

Each connection handshakes first (kraft.rpc.handshake), then sends one-way raft messages
(delivered to `on_raft_message` with the sender's node id from its hello) and requests
(each answered by `on_request` in a task of its own, so a slow handler holds up neither the
other requests of that connection nor any other connection).

Bad input of any kind (a bad frame, an undecodable message, a refused hello, a frame not
allowed at that point) closes that one connection: the server sends an ERROR frame when it
can, logs `rpc.connection_closed` with the reason, and keeps serving everyone else.

Bounds (kraft.rpc.config): connections (MAX_CONNECTIONS), bytes buffered per connection
(READ_BUFFER_BYTES, plus the frame being read, at most MAX_FRAME_BYTES), requests in flight
per connection (beyond it the server stops reading that connection until one finishes), time
to handshake, idle time, time for a write to drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from kraft.raft.messages import Message
from kraft.rpc.codec import Body, decode_message, validate_body
from kraft.rpc.config import (
    CLOSE_TIMEOUT_S,
    CONNECTION_IDLE_TIMEOUT_S,
    HANDSHAKE_TIMEOUT_S,
    MAX_CONNECTIONS,
    MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION,
    PROTOCOL_VERSION,
    READ_BUFFER_BYTES,
    WRITE_BUFFER_HIGH_BYTES,
    WRITE_TIMEOUT_S,
)
from kraft.rpc.errors import (
    DecodeError,
    FrameError,
    RemoteError,
    UnsupportedVersionError,
)
from kraft.rpc.framing import (
    Frame,
    FrameType,
    RpcErrorCode,
    close_writer,
    encode_frame,
    error_body,
    read_frame,
)
from kraft.rpc.handshake import Hello, decode_hello, refuse_client

log = structlog.get_logger(__name__)

IDLE_DEADLINE_SLACK = 0.1

OnRaftMessage = Callable[[int, Message], None]
OnRequest = Callable[[int | None, Body], Awaitable[Body]]


@dataclass(slots=True)
class ServerStats:
    connections_accepted: int = 0
    connections_open: int = 0
    connections_refused: int = 0  # handshake refused, or too many connections
    connections_closed_on_bad_input: int = 0
    raft_messages_received: int = 0
    requests_received: int = 0
    requests_failed: int = 0  # the handler raised
    bytes_received: int = 0


class _CloseConnection(Exception):
    """Ends one connection: `code` and `reason` go into the ERROR frame and the log."""

    def __init__(self, code: RpcErrorCode | None, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class RpcServer:
    def __init__(
        self,
        host: str,
        port: int,
        cluster_id: str,
        node_id: int,
        on_raft_message: OnRaftMessage,
        on_request: OnRequest,
        *,
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
        idle_timeout_s: float = CONNECTION_IDLE_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        on_peer_hello: Callable[[Hello], None] | None = None,
    ) -> None:
        self.host = host
        self.cluster_id = cluster_id
        self.node_id = node_id
        self._requested_port = port
        self._on_raft_message = on_raft_message
        self._on_request = on_request
        self._on_peer_hello = on_peer_hello
        self._handshake_timeout_s = handshake_timeout_s
        self._idle_timeout_s = idle_timeout_s
        self._max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._bound_port: int | None = None
        self._connection_tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._stats = ServerStats()

    async def start(self) -> None:
        assert self._server is None, "start() called twice"
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self._requested_port, limit=READ_BUFFER_BYTES
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]
        log.info("rpc.server_started", host=self.host, port=self.port, node_id=self.node_id)

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose when constructed with port 0)."""
        assert self._bound_port is not None, "server not started"
        return self._bound_port

    def stats(self) -> ServerStats:
        """A copy of the counters, for metrics."""
        return dataclasses.replace(self._stats)

    async def close(self) -> None:
        """Stops listening, closes every connection, cancels and awaits every task.
        Calling it again does nothing."""
        if self._server is None or self._closing:
            self._closing = True
            return
        self._closing = True
        self._server.close()
        tasks = list(self._connection_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        log.info("rpc.server_closed", port=self.port, node_id=self.node_id)

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback that starts a task of our own, rather than a coroutine asyncio
        # would wrap in its task: the set holds every connection task from its creation, and
        # close() can cancel them without asyncio logging the cancellation as an error.
        if self._closing:
            writer.transport.abort()
            return
        task = asyncio.get_running_loop().create_task(
            self._serve_connection(reader, writer), name="rpc-connection"
        )
        self._connection_tasks.add(task)
        task.add_done_callback(self._connection_tasks.discard)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._stats.connections_accepted += 1
        self._stats.connections_open += 1
        try:
            await _ServerConnection(self, reader, writer).serve()
        finally:
            self._stats.connections_open -= 1


class _ServerConnection:
    """One accepted connection, from handshake to close."""

    def __init__(
        self, server: RpcServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        peername = writer.get_extra_info("peername")
        self.peer = f"{peername[0]}:{peername[1]}" if peername else "unknown"
        self.hello: Hello | None = None
        self.request_slots = asyncio.Semaphore(MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION)
        self.handler_tasks: set[asyncio.Task[None]] = set()
        # Answers finished in one turn of the event loop leave in one write (one syscall)
        self._unsent: list[bytes] = []
        self._flush_scheduled = False

    async def serve(self) -> None:
        stats = self.server._stats
        reason = "peer closed the connection"
        level = log.info  # a warning when the peer did something wrong
        try:
            if len(self.server._connection_tasks) > self.server._max_connections:
                raise _CloseConnection(
                    RpcErrorCode.TOO_MANY_CONNECTIONS,
                    f"{len(self.server._connection_tasks)} connections exceed the limit of "
                    f"{self.server._max_connections}",
                )
            await self._handshake()
            reason = await self._serve_frames()
        except _CloseConnection as close:
            reason = close.reason
            if close.code is not None:
                level = log.warning
                await self._send_error(close.code, close.reason)
                if self.hello is None:
                    stats.connections_refused += 1
                else:
                    stats.connections_closed_on_bad_input += 1
        except asyncio.CancelledError:
            reason = "server closing"
            raise
        except Exception as error:  # noqa: BLE001
            # A bug below us (on_raft_message raised): it costs this connection, not the
            # server; the traceback goes to the log. Peer input never lands here.
            reason = f"internal error: {error!r}"
            log.error("rpc.connection_failed", peer=self.peer, exc_info=True)
        finally:
            await close_writer(self.writer, CLOSE_TIMEOUT_S)
            level(
                "rpc.connection_closed",
                side="server",
                peer=self.peer,
                node_id=None if self.hello is None else self.hello.node_id,
                reason=reason,
            )

    async def _handshake(self) -> None:
        try:
            async with asyncio.timeout(self.server._handshake_timeout_s):
                frame = await self._read_frame()
        except TimeoutError:
            raise _CloseConnection(
                RpcErrorCode.HANDSHAKE_FAILED,
                f"no hello within {self.server._handshake_timeout_s} s",
            ) from None
        if frame is None:
            raise _CloseConnection(None, "peer closed the connection before its hello")
        if frame.frame_type is not FrameType.HELLO:
            raise _CloseConnection(
                RpcErrorCode.HANDSHAKE_FAILED,
                f"expected a HELLO frame first, got {frame.frame_type.name}",
            )
        try:
            hello = decode_hello(frame.body)
        except DecodeError as error:
            raise _CloseConnection(RpcErrorCode.HANDSHAKE_FAILED, f"bad hello: {error}") from None
        refusal = refuse_client(hello, self.server.cluster_id)
        if refusal is not None:
            raise _CloseConnection(*refusal)
        answer = Hello(self.server.cluster_id, self.server.node_id, None, PROTOCOL_VERSION)
        await self._write(encode_frame(FrameType.HELLO, answer.to_wire()))
        self.hello = hello
        if self.server._on_peer_hello is not None and hello.node_id is not None:
            self.server._on_peer_hello(hello)
        log.info(
            "rpc.connection_accepted",
            peer=self.peer,
            node_id=hello.node_id,
            directory_id=hello.directory_id,
        )

    async def _serve_frames(self) -> str:
        """Reads frames until the connection ends; returns why it ended.

        Request handlers run in a TaskGroup. When the peer leaves, they finish (their answers
        are dropped): a handler may be in the middle of something worth finishing. When the
        peer sent bad input, they are cancelled, so that the connection closes now. When the
        server closes, they are cancelled with the connection's task.
        """
        closing: _CloseConnection | None = None
        async with asyncio.TaskGroup() as handlers:
            try:
                return await self._read_until_end(handlers)
            except _CloseConnection as close:
                closing = close  # re-raised below: a TaskGroup would wrap it in a group
                for task in self.handler_tasks:
                    task.cancel()
        assert closing is not None
        raise closing

    async def _read_until_end(self, handlers: asyncio.TaskGroup) -> str:
        loop = asyncio.get_running_loop()
        idle_s = self.server._idle_timeout_s
        try:
            async with asyncio.timeout(idle_s) as idle_deadline:
                while True:
                    frame = await self._read_frame()
                    if frame is None:
                        return "peer closed the connection"
                    # Moving the deadline costs a timer handle; a new asyncio.timeout per
                    # frame was a fifth of the cost of a small message. So the deadline moves
                    # only once it lags by IDLE_DEADLINE_SLACK of the idle time: an idle
                    # connection closes between (1 - slack) and 1 times idle_s after its last
                    # frame.
                    deadline = loop.time() + idle_s
                    when = idle_deadline.when()
                    assert when is not None
                    if deadline - when > idle_s * IDLE_DEADLINE_SLACK:
                        idle_deadline.reschedule(deadline)
                    await self._dispatch(frame, handlers)
        except TimeoutError:
            return f"idle for {idle_s} s"

    async def _read_frame(self) -> Frame | None:
        try:
            frame = await read_frame(self.reader)
        except FrameError as error:
            raise _CloseConnection(_frame_error_code(error), str(error)) from None
        except OSError as error:
            raise _CloseConnection(None, f"connection error: {error!r}") from None
        if frame is not None:
            self.server._stats.bytes_received += frame.size_bytes
        return frame

    async def _dispatch(self, frame: Frame, handlers: asyncio.TaskGroup) -> None:
        assert self.hello is not None
        if frame.frame_type is FrameType.RAFT:
            self._deliver_raft_message(frame, self.hello.node_id)
        elif frame.frame_type is FrameType.REQUEST:
            if frame.correlation_id is None:
                raise _CloseConnection(
                    RpcErrorCode.PROTOCOL_VIOLATION, "REQUEST frame without a correlation id"
                )
            try:
                body = validate_body(frame.body, "request")
            except DecodeError as error:
                raise _CloseConnection(RpcErrorCode.BAD_MESSAGE, str(error)) from None
            self.server._stats.requests_received += 1
            # Backpressure: past the in-flight limit, stop reading this connection.
            await self.request_slots.acquire()
            task = handlers.create_task(self._answer(frame.correlation_id, body))
            self.handler_tasks.add(task)
            task.add_done_callback(self.handler_tasks.discard)
        else:
            raise _CloseConnection(
                RpcErrorCode.PROTOCOL_VIOLATION,
                f"unexpected {frame.frame_type.name} frame after the handshake",
            )

    def _deliver_raft_message(self, frame: Frame, node_id: int | None) -> None:
        if node_id is None:
            raise _CloseConnection(
                RpcErrorCode.PROTOCOL_VIOLATION,
                "raft messages need a node id in the hello; this client sent none",
            )
        try:
            message = decode_message(frame.body)
        except DecodeError as error:
            raise _CloseConnection(RpcErrorCode.BAD_MESSAGE, str(error)) from None
        self.server._stats.raft_messages_received += 1
        self.server._on_raft_message(node_id, message)

    async def _answer(self, correlation_id: int, body: Body) -> None:
        assert self.hello is not None
        try:
            data = await self._call_handler(correlation_id, body)
            await self._write_coalesced(data)
        except _CloseConnection:
            pass  # the write failed and the transport is aborted; the reader sees it
        finally:
            self.request_slots.release()

    async def _call_handler(self, correlation_id: int, body: Body) -> bytes:
        """The frame answering one request: the handler's response, or an ERROR frame."""
        assert self.hello is not None
        kind = body["kind"]
        try:
            response = await self.server._on_request(self.hello.node_id, body)
            validate_body(response, "response", require_kind=False)
            return encode_frame(FrameType.RESPONSE, response, correlation_id)
        except RemoteError as error:
            # The handler's own refusal (e.g. not the controller): passed on as it is.
            return encode_frame(
                FrameType.ERROR, error_body(error.code, error.message), correlation_id
            )
        except Exception as error:  # noqa: BLE001 - a failing handler fails one request only
            self.server._stats.requests_failed += 1
            log.error("rpc.request_failed", peer=self.peer, kind=kind, exc_info=True)
            message = f"{kind} request failed: {type(error).__name__}: {error}"
            return encode_frame(
                FrameType.ERROR, error_body(RpcErrorCode.HANDLER_FAILED, message), correlation_id
            )

    async def _write_coalesced(self, data: bytes) -> None:
        """Queues an answer to leave with the others of this loop turn; waits for the socket
        only when its buffer is past WRITE_BUFFER_HIGH_BYTES (backpressure)."""
        self._unsent.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        if self.writer.transport.get_write_buffer_size() > WRITE_BUFFER_HIGH_BYTES:
            await self._write(b"")

    def _flush(self) -> None:
        self._flush_scheduled = False
        unsent, self._unsent = self._unsent, []
        if unsent and not self.writer.transport.is_closing():
            self.writer.writelines(unsent)

    async def _write(self, data: bytes) -> None:
        try:
            if data:
                self.writer.write(data)
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await self.writer.drain()
        except (OSError, TimeoutError) as error:
            self.writer.transport.abort()
            raise _CloseConnection(None, f"write failed: {error!r}") from None

    async def _send_error(self, code: RpcErrorCode, message: str) -> None:
        """Best effort: the peer may be gone already."""
        with contextlib.suppress(_CloseConnection):
            await self._write(encode_frame(FrameType.ERROR, error_body(code, message)))


def _frame_error_code(error: FrameError) -> RpcErrorCode:
    if isinstance(error, UnsupportedVersionError):
        return RpcErrorCode.UNSUPPORTED_VERSION
    return RpcErrorCode.BAD_FRAME
