"""The rpc listener (SPEC §3): accepts connections from peer nodes and tools.

Each connection handshakes first (kraft.rpc.handshake), then sends one-way raft messages
(delivered to `on_raft_message` with the sender's node id from its hello) and requests
(each answered by `on_request` in a task of its own, so a slow handler holds up neither the
other requests of that connection nor any other connection).

Bad input of any kind (a bad frame, an undecodable message, a refused hello, a frame not
allowed at that point) closes that one connection: the server sends an ERROR frame when it
can, logs `rpc.connection_closed` with the reason, and keeps serving everyone else.

Bounds (kraft.rpc.config): connections (MAX_CONNECTIONS), bytes buffered per connection
(the frame being read, at most MAX_FRAME_BYTES, and the requests of one read not started
yet), requests in flight per connection (beyond it the server stops reading that connection
until one finishes), time to handshake, idle time, time for the peer to read our answers
(WRITE_BUFFER_HIGH_BYTES unsent for WRITE_TIMEOUT_S).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

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
    WRITE_BUFFER_HIGH_BYTES,
    WRITE_TIMEOUT_S,
)
from kraft.rpc.errors import (
    DecodeError,
    FrameError,
    RemoteError,
    UnsupportedVersionError,
)
from kraft.rpc.flow import ReadGate
from kraft.rpc.framing import (
    Frame,
    FrameType,
    RpcErrorCode,
    decode_frame,
    encode_frame,
    error_body,
    frame_splitter,
)
from kraft.rpc.handshake import Hello, decode_hello, refuse_client

log = structlog.get_logger(__name__)

# The coarsest timer resolution of the event loops the node runs on (uvloop: 1 ms)
TIMER_RESOLUTION_S = 0.001

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
        self._connections: set[_ServerConnection] = set()
        self._closing = False
        self._stats = ServerStats()

    async def start(self) -> None:
        assert self._server is None, "start() called twice"
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ServerConnection(self), self.host, self._requested_port
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
        """Stops listening, closes every connection, cancels and awaits every handler.
        Calling it again does nothing."""
        if self._server is None or self._closing:
            self._closing = True
            return
        self._closing = True
        self._server.close()
        connections = list(self._connections)
        handlers = [task for connection in connections for task in connection.handlers]
        for connection in connections:
            connection.close(None, "server closing", cancel_handlers=True)
        await asyncio.gather(*handlers, return_exceptions=True)
        deadline = asyncio.get_running_loop().time() + CLOSE_TIMEOUT_S
        while self._connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)  # their sockets flush what was written, then close
        for connection in list(self._connections):
            connection.abort()
        await self._server.wait_closed()
        log.info("rpc.server_closed", port=self.port, node_id=self.node_id)


class _ServerConnection(asyncio.Protocol):
    """One accepted connection, from handshake to close: an asyncio.Protocol, so each frame
    is handled where its bytes arrive (a raft message is delivered there; a request starts
    its handler's task there), with no reader task to wake per frame.

    Requests run in tasks of their own. When the peer leaves, they finish (their answers
    are dropped): a handler may be in the middle of something worth finishing. When the peer
    sent bad input or the server closes, they are cancelled, so the connection closes now."""

    def __init__(self, server: RpcServer) -> None:
        self.server = server
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self.peer = "unknown"
        self.hello: Hello | None = None
        self.handlers: set[asyncio.Task[None]] = set()
        self._frames = frame_splitter()
        self._unstarted: collections.deque[tuple[int, Body]] = collections.deque()
        # Answers finished in one turn of the event loop leave in one write (one syscall)
        self._unsent: list[bytes] = []
        self._flush_scheduled = False
        self._gate: ReadGate | None = None  # once connected
        self._closed = False
        self._close_reason = "peer closed the connection"
        self._close_level = log.info  # a warning when the peer did something wrong
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_frame_at = 0.0

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        self._transport = cast(asyncio.Transport, transport)
        self._transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH_BYTES)
        self._gate = ReadGate(
            self._transport,
            MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION,
            WRITE_TIMEOUT_S,
            lambda: self._abort_for(f"write failed: the peer read nothing for {WRITE_TIMEOUT_S} s"),
        )
        peername = self._transport.get_extra_info("peername")
        self.peer = f"{peername[0]}:{peername[1]}" if peername else "unknown"
        server = self.server
        server._stats.connections_accepted += 1
        server._stats.connections_open += 1
        server._connections.add(self)
        if server._closing:
            self.close(None, "server closing")
            return
        if len(server._connections) > server._max_connections:
            self.close(
                RpcErrorCode.TOO_MANY_CONNECTIONS,
                f"{len(server._connections)} connections exceed the limit of "
                f"{server._max_connections}",
            )
            return
        self._handshake_timer = self._loop.call_later(
            server._handshake_timeout_s, self._handshake_expired
        )

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            payloads = self._frames.feed(data)
            if payloads:  # idle means no frame: bytes trickling in do not keep it open
                self._last_frame_at = self._loop.time()
            for payload in payloads:
                frame = decode_frame(payload)
                self.server._stats.bytes_received += frame.size_bytes
                if self.hello is None:
                    self._handshake(frame)
                else:
                    self._dispatch(frame)
                if self._closed:
                    return
        except FrameError as error:
            self.close(_frame_error_code(error), str(error))
        except _CloseConnection as close:
            self.close(close.code, close.reason)
        except Exception as error:  # noqa: BLE001
            # A bug below us (on_raft_message raised): it costs this connection, not the
            # server; the traceback goes to the log. Peer input never lands here.
            log.error("rpc.connection_failed", peer=self.peer, exc_info=True)
            self.close(None, f"internal error: {error!r}", cancel_handlers=True)

    def eof_received(self) -> bool:
        if self._frames.partial:
            self.close(RpcErrorCode.BAD_FRAME, self._frames.describe_partial())
        elif self.hello is None and not self._closed:
            self.close(None, "peer closed the connection before its hello")
        return False  # the transport closes; handlers finish, their answers are dropped

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed:
            self._closed = True
            if exc is not None:
                self._close_reason = f"connection error: {exc!r}"
        self._cancel_timers()
        self._unstarted.clear()
        server = self.server
        server._connections.discard(self)
        server._stats.connections_open -= 1
        self._close_level(
            "rpc.connection_closed",
            side="server",
            peer=self.peer,
            node_id=None if self.hello is None else self.hello.node_id,
            reason=self._close_reason,
        )

    def pause_writing(self) -> None:
        # the peer does not read as fast as we answer: take no new request meanwhile, and
        # give up on it after WRITE_TIMEOUT_S
        if self._gate is not None:
            self._gate.writing_paused(len(self._unstarted), len(self.handlers))

    def resume_writing(self) -> None:
        if self._gate is not None:
            self._gate.writing_resumed(len(self._unstarted), len(self.handlers))

    # -- handshake ----------------------------------------------------------------------

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        if self.hello is None and not self._closed:
            self.close(
                RpcErrorCode.HANDSHAKE_FAILED,
                f"no hello within {self.server._handshake_timeout_s} s",
            )

    def _handshake(self, frame: Frame) -> None:
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
        self._send(encode_frame(FrameType.HELLO, answer.to_wire()))
        self.hello = hello
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self._last_frame_at = self._loop.time()
        self._arm_idle_timer(self.server._idle_timeout_s)
        if self.server._on_peer_hello is not None and hello.node_id is not None:
            self.server._on_peer_hello(hello)
        log.info(
            "rpc.connection_accepted",
            peer=self.peer,
            node_id=hello.node_id,
            directory_id=hello.directory_id,
        )

    # -- frames after the handshake -----------------------------------------------------

    def _dispatch(self, frame: Frame) -> None:
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
            self._unstarted.append((frame.correlation_id, body))
            self._start_requests()
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

    def _start_requests(self) -> None:
        """Starts the requests received and not started yet, up to the in-flight limit
        (backpressure: past it, the connection is not read until one finishes)."""
        while self._unstarted and len(self.handlers) < MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION:
            correlation_id, body = self._unstarted.popleft()
            task = self._loop.create_task(self._answer(correlation_id, body))
            self.handlers.add(task)
            task.add_done_callback(self._handler_done)
        self._update_reading()

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self.handlers.discard(task)
        if not self._closed:
            self._start_requests()

    async def _answer(self, correlation_id: int, body: Body) -> None:
        data = await self._call_handler(correlation_id, body)
        if self._closed:
            return  # the peer left: the answer has nobody to go to
        # Queued to leave with the others of this loop turn
        self._unsent.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

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

    def _flush(self) -> None:
        self._flush_scheduled = False
        unsent, self._unsent = self._unsent, []
        if unsent and not self._closed:
            self._send_all(unsent)

    def _send(self, data: bytes) -> None:
        self._send_all([data])

    def _send_all(self, frames: list[bytes]) -> None:
        assert self._transport is not None
        if not self._transport.is_closing():
            self._transport.writelines(frames)

    def _update_reading(self) -> None:
        if self._gate is not None and not self._closed:
            self._gate.update(len(self._unstarted), len(self.handlers))

    # -- idle limit and closing ---------------------------------------------------------

    def _arm_idle_timer(self, delay_s: float) -> None:
        # one timer, re-armed when it fires: frames only note their time (a timer moved per
        # frame was a fifth of the cost of a small message)
        self._idle_timer = self._loop.call_later(max(delay_s, TIMER_RESOLUTION_S), self._check_idle)

    def _check_idle(self) -> None:
        self._idle_timer = None
        if self._closed:
            return
        idle_s = self.server._idle_timeout_s
        left_s = self._last_frame_at + idle_s - self._loop.time()
        if left_s > TIMER_RESOLUTION_S:
            self._arm_idle_timer(left_s)
        else:
            self.close(None, f"idle for {idle_s} s")

    def close(
        self, code: RpcErrorCode | None, reason: str, *, cancel_handlers: bool = False
    ) -> None:
        """Closes the connection once what was written is sent: with an ERROR frame first
        when `code` is given (the peer did something wrong: its handlers are cancelled)."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        stats = self.server._stats
        if code is not None:
            self._close_level = log.warning
            if self.hello is None:
                stats.connections_refused += 1
            else:
                stats.connections_closed_on_bad_input += 1
            self._unsent.append(encode_frame(FrameType.ERROR, error_body(code, reason)))
            cancel_handlers = True
        self._cancel_timers()
        self._unstarted.clear()
        if self._unsent:
            self._send_all(self._unsent)  # answers done before, then the error, in order
            self._unsent = []
        if cancel_handlers:
            for task in self.handlers:
                task.cancel()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _abort_for(self, reason: str) -> None:
        self.close(None, reason, cancel_handlers=True)
        self.abort()

    def _cancel_timers(self) -> None:
        for timer in (self._handshake_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        self._handshake_timer = self._idle_timer = None
        if self._gate is not None:
            self._gate.stop()


def _frame_error_code(error: FrameError) -> RpcErrorCode:
    if isinstance(error, UnsupportedVersionError):
        return RpcErrorCode.UNSUPPORTED_VERSION
    return RpcErrorCode.BAD_FRAME
