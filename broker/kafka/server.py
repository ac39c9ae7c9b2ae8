"""The Kafka listener: one task per connection reads frames, starts a task per request (in
arrival order) and queues it; a writer sends the answers in that same order, as the protocol
requires. Requests of one connection thus run concurrently (a parked fetch does not hold up
the rest) while their answers keep the order of the requests.

Whatever a connection sends — a frame size out of bounds, a truncated frame, an unknown API
key or version, a body that does not parse — closes only that connection; a handler that
fails unexpectedly is logged and closes its connection; the node goes on serving the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog

from broker.kafka.context import Outcome
from broker.kafka.dispatch import Answer, ParsedRequest, ProtocolViolation, parse, respond
from broker.kafka.framing import SIZE_PREFIX, ConnectionEnded, FrameError, FrameReader
from broker.kafka.metrics import KafkaListenerMetrics
from broker.kafka.services import BrokerServices
from broker.kafka.wire.primitives import Chunk

log = structlog.get_logger(__name__)

# Requests of one connection whose answers are not written yet; the reader stops reading
# (TCP pushes back on the client) at this many. Kafka producers keep at most 5 in flight.
MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION = 64
MAX_CONNECTIONS = 1000
RESPONSE_WRITE_TIMEOUT_MS = 30_000
CLOSE_TIMEOUT_S = 1.0
# Answers already done are written together up to this many bytes (one send, see
# _write_answers); a larger answer goes alone, and a chunk larger than this (a fetch's
# records) is written as it is, never copied into a bigger buffer.
COALESCE_LIMIT_BYTES = 64 * 1024


class KafkaServer:
    def __init__(self, host: str, port: int, services: BrokerServices) -> None:
        self.host = host
        self.port = port
        self._services = services
        self.metrics: KafkaListenerMetrics | None = None  # set by the node (its registry)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._requests: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]  # the bound port when asked for 0
        log.info("kafka.listening", host=self.host, port=self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # a connection being cancelled may still start a request: repeat until none is left
        while self._connections or self._requests:
            tasks = [*self._connections, *self._requests]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= MAX_CONNECTIONS:
            log.warning("kafka.connection_refused", reason=f"{MAX_CONNECTIONS} connections open")
            await _close(writer)
            return
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._connections.discard(task)
            await _close(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        answers: asyncio.Queue[asyncio.Task[Answer | Outcome]] = asyncio.Queue(
            maxsize=MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION
        )
        reading = asyncio.create_task(self._read_requests(reader, answers))
        writing = asyncio.create_task(_write_answers(answers, writer))
        try:
            done, _ = await asyncio.wait({reading, writing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reading, writing):
                task.cancel()
            await asyncio.gather(reading, writing, return_exceptions=True)
        reasons: list[object] = []
        if reading in done and not reading.cancelled():
            reasons.append(reading.exception())  # None: the client closed the connection
        if writing in done and not writing.cancelled():
            error = writing.exception()
            reasons.append(writing.result() if error is None else error)
        for reason in reasons:
            if reason is not None:
                log.info("kafka.connection_closed", peer=str(peer), reason=str(reason))
            if isinstance(reason, FrameError | ProtocolViolation) and self.metrics is not None:
                self.metrics.count_bad_input()

    async def _read_requests(
        self,
        reader: asyncio.StreamReader,
        answers: asyncio.Queue[asyncio.Task[Answer | Outcome]],
    ) -> None:
        """Returns at a clean end of the stream; raises FrameError or ProtocolViolation."""
        frames = FrameReader(reader)
        try:
            while True:
                try:
                    payload = await frames.read_frame()
                except ConnectionEnded:
                    return
                read_at = time.perf_counter()
                request = parse(payload)
                task = asyncio.create_task(self._respond(request, read_at))
                self._requests.add(task)
                task.add_done_callback(self._requests.discard)
                await answers.put(task)
        finally:
            frames.close()

    async def _respond(self, request: ParsedRequest, read_at: float) -> Answer | Outcome:
        try:
            answer = await respond(self._services, request)
            if self.metrics is not None:
                self.metrics.observe_request(request.context.api_key, time.perf_counter() - read_at)
            return answer
        except Exception:  # a bug answering one request closes that connection only
            log.exception(
                "kafka.request_failed",
                api_key=request.context.api_key.name,
                api_version=request.context.version,
                client_id=request.context.client_id,
            )
            return Outcome.CLOSE_CONNECTION


async def _write_answers(
    answers: asyncio.Queue[asyncio.Task[Answer | Outcome]], writer: asyncio.StreamWriter
) -> str:
    """Writes each answer in request order; returns why the connection must close.

    Answers already done behind the one awaited leave in the same write, up to
    COALESCE_LIMIT_BYTES: on loopback every send also runs the receiver's side of TCP and its
    wake-up, and acks=all produces completed by one high watermark move are answered
    together (14 % fewer sends on a node at 1,000 single-record produces/s,
    docs/benchmarks.md)."""
    # taken from the queue but not written yet: the in-flight bound is the queue's plus one
    waiting: asyncio.Task[Answer | Outcome] | None = None
    while True:
        task = waiting if waiting is not None else await answers.get()
        waiting = None
        answer = await task
        chunks: list[Chunk] = []
        buffered_bytes = 0
        while True:
            if answer is Outcome.CLOSE_CONNECTION:
                await _send(writer, chunks)  # what came before still goes out, in order
                return "closed after a failed request (acks=0 produce error or server error)"
            if answer is not Outcome.NO_RESPONSE:
                assert isinstance(answer, list)
                size_bytes = _size_bytes(answer)
                chunks.append(SIZE_PREFIX.pack(size_bytes))
                chunks.extend(answer)
                buffered_bytes += size_bytes
            if answers.empty():
                break
            following = answers.get_nowait()
            if not following.done() or (
                buffered_bytes + _size_bytes(following.result()) > COALESCE_LIMIT_BYTES
            ):
                waiting = following  # awaited (or written alone) first in the next round
                break
            answer = following.result()
        error = await _send(writer, chunks)
        if error is not None:
            return error


def _size_bytes(answer: Answer | Outcome) -> int:
    return sum(len(chunk) for chunk in answer) if isinstance(answer, list) else 0


def _coalesced(chunks: list[Chunk]) -> list[Chunk]:
    """The chunks with each run of small ones joined; a chunk above COALESCE_LIMIT_BYTES
    (a fetch's records) stays as it is, uncopied."""
    buffers: list[Chunk] = []
    small: list[Chunk] = []
    for chunk in chunks:
        if len(chunk) <= COALESCE_LIMIT_BYTES:
            small.append(chunk)
            continue
        if small:
            buffers.append(small[0] if len(small) == 1 else b"".join(small))
            small = []
        buffers.append(chunk)
    if small:
        buffers.append(small[0] if len(small) == 1 else b"".join(small))
    return buffers


async def _send(writer: asyncio.StreamWriter, chunks: list[Chunk]) -> str | None:
    """Writes the chunks, small ones joined; the reason to close the connection, or None.

    One write per buffer, not writelines: Python 3.11's transports implement writelines by
    joining (a copy of every record), while write() sends at once when nothing is queued."""
    if not chunks:
        return None
    for buffer in _coalesced(chunks):
        writer.write(buffer)
    try:
        if writer.transport.get_write_buffer_size() == 0:
            await writer.drain()  # all sent already: drain returns at once, no timer needed
        else:
            async with asyncio.timeout(RESPONSE_WRITE_TIMEOUT_MS / 1000):
                await writer.drain()
    except TimeoutError:
        return f"the client read no answer for {RESPONSE_WRITE_TIMEOUT_MS} ms"
    except ConnectionError as error:
        return f"the client went away: {error}"
    return None


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError, OSError):
        await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT_S)


__all__ = ["FrameError", "KafkaServer", "ProtocolViolation"]
