"""Sends raft messages and requests to peer nodes: the real Transport of STYLE.md §2.

`send` never waits: it encodes the message and queues the frame on the peer's bounded queue;
when the queue is full (PEER_QUEUE_MAX_MESSAGES, or PEER_QUEUE_MAX_BYTES of frames) the
OLDEST frame is dropped and counted. Raft retransmits whatever matters (a Fetch that gets no
answer is resent, a leader re-sends BeginQuorumEpoch), and a newer message is worth more than
an older one.

One writer task per peer takes frames off its queue, connects when it has something to send
(lazily), reconnects with exponential backoff and jitter from an injected random.Random, and
writes every frame waiting (up to WRITE_BATCH_MAX_BYTES) with one write and one drain.
Frames in a write that fails are lost and counted; a new connection starts with what is
queued then.

`request` makes a request/response call over the same connection, with a timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from dataclasses import dataclass, field

import structlog

from kraft.raft.messages import Message
from kraft.rpc.client import ClientConnection
from kraft.rpc.codec import Body, encode_message
from kraft.rpc.config import (
    CONNECT_TIMEOUT_S,
    PEER_QUEUE_MAX_BYTES,
    PEER_QUEUE_MAX_MESSAGES,
    PROTOCOL_VERSION,
    RECONNECT_BACKOFF_INITIAL_S,
    RECONNECT_BACKOFF_JITTER_FRACTION,
    RECONNECT_BACKOFF_MAX_S,
    WRITE_BATCH_MAX_BYTES,
)
from kraft.rpc.errors import ConnectionLostError, RpcError, UnknownPeerError
from kraft.rpc.framing import FrameType, encode_frame
from kraft.rpc.handshake import Hello

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class PeerStats:
    """Counters of one peer, for metrics (a copy: it does not change under the caller)."""

    messages_sent: int = 0  # written to the socket and drained
    messages_dropped: int = 0  # dropped from a full queue (the oldest)
    messages_lost: int = 0  # in a write that failed
    bytes_sent: int = 0
    connects: int = 0  # successful handshakes
    reconnects: int = 0  # successful handshakes after the first
    connect_failures: int = 0
    requests_sent: int = 0
    request_timeouts: int = 0
    queued_messages: int = 0
    queued_bytes: int = 0
    connected: bool = False


@dataclass(slots=True)
class _Peer:
    node_id: int
    host: str
    port: int
    queue: asyncio.Queue[bytes]
    queued_bytes: int = 0
    connection: ClientConnection | None = None
    connect_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    consecutive_failures: int = 0
    writer_task: asyncio.Task[None] | None = None
    stats: PeerStats = field(default_factory=PeerStats)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class PeerTransport:
    def __init__(
        self,
        node_id: int,
        cluster_id: str,
        directory_id: str | None,
        peers: dict[int, tuple[str, int]],
        *,
        rng: random.Random | None = None,
        queue_max_messages: int = PEER_QUEUE_MAX_MESSAGES,
        queue_max_bytes: int = PEER_QUEUE_MAX_BYTES,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        backoff_initial_s: float = RECONNECT_BACKOFF_INITIAL_S,
        backoff_max_s: float = RECONNECT_BACKOFF_MAX_S,
        listen_address: str | None = None,
    ) -> None:
        assert node_id not in peers, f"node {node_id} lists itself among its peers"
        assert 0 < backoff_initial_s <= backoff_max_s
        self.node_id = node_id
        self.cluster_id = cluster_id
        self._hello = Hello(cluster_id, node_id, directory_id, PROTOCOL_VERSION, listen_address)
        # A seeded Random makes the backoff of a test reproducible; never the global one.
        self._rng = rng if rng is not None else random.Random()
        self._queue_max_messages = queue_max_messages
        self._queue_max_bytes = queue_max_bytes
        self._connect_timeout_s = connect_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._peers: dict[int, _Peer] = {}
        self._started = False
        self._closed = False
        self._messages_unroutable = 0
        self._unroutable_warned: set[int] = set()  # bounded by the node ids the core knows
        for peer_id, (host, port) in peers.items():
            self._peers[peer_id] = self._new_peer(peer_id, host, port)

    def _new_peer(self, node_id: int, host: str, port: int) -> _Peer:
        return _Peer(node_id, host, port, asyncio.Queue(maxsize=self._queue_max_messages))

    async def start(self) -> None:
        assert not self._started, "start() called twice"
        self._started = True
        for peer in self._peers.values():
            self._start_writer(peer)

    async def close(self) -> None:
        """Cancels and awaits every writer task, then closes every connection."""
        self._closed = True
        tasks = [peer.writer_task for peer in self._peers.values() if peer.writer_task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for peer in self._peers.values():
            peer.writer_task = None
            if peer.connection is not None:
                await peer.connection.close("transport closed")
                peer.connection = None

    def set_peer(self, node_id: int, host: str, port: int) -> None:
        """Adds a peer, or moves one to a new address (its current connection is dropped).

        For nodes learned at run time, e.g. an observer broker the leader answers.
        """
        assert node_id != self.node_id, "a node does not send to itself"
        peer = self._peers.get(node_id)
        if peer is None:
            peer = self._new_peer(node_id, host, port)
            self._peers[node_id] = peer
            if self._started and not self._closed:
                self._start_writer(peer)
            return
        # A connection to the old address is replaced at its next use (_connect_once).
        peer.host, peer.port = host, port

    def send(self, to: int, message: Message) -> None:
        """Queues a raft message for `to`; never waits, never fails for want of a peer.

        A message to a node without an address (say, an observer the node has not learned
        the address of yet: see set_peer) is dropped and counted in `messages_unroutable`,
        with a warning the first time for each node: raft treats it like any lost message.
        Raises FrameTooLargeError for a message above MAX_FRAME_BYTES (a programmer's error:
        the core caps fetches and snapshot chunks far below it).
        """
        peer = self._peers.get(to)
        if peer is None:
            self._messages_unroutable += 1
            if to not in self._unroutable_warned:
                self._unroutable_warned.add(to)
                log.warning("rpc.peer_unknown", peer=to, reason="no address for this node")
            return
        frame = encode_frame(FrameType.RAFT, encode_message(message))
        if self._closed:
            peer.stats.messages_dropped += 1
            return
        while peer.queue.full() or (
            not peer.queue.empty() and peer.queued_bytes + len(frame) > self._queue_max_bytes
        ):
            oldest = peer.queue.get_nowait()
            peer.queued_bytes -= len(oldest)
            peer.stats.messages_dropped += 1
        peer.queue.put_nowait(frame)
        peer.queued_bytes += len(frame)

    async def request(self, to: int, body: Body, timeout_s: float) -> Body:
        """Sends a request (a map with a `kind`) to `to` and returns its answer.

        Raises TimeoutError when no answer came within timeout_s (connecting included),
        RemoteError when the peer answered with an error, ConnectionLostError when it could
        not connect or the connection failed, HandshakeError, UnknownPeerError.
        """
        peer = self._peers.get(to)
        if peer is None:
            raise UnknownPeerError(f"node {to} is not a known peer of node {self.node_id}")
        peer.stats.requests_sent += 1
        try:
            current = peer.connection
            if (
                current is not None
                and current.is_open
                and current.address == peer.address
                and not peer.connect_lock.locked()
            ):
                # connected: the request's own timeout is the only one (a second timer per
                # request was a measurable part of a follower's fetch round trip)
                return await current.request(body, timeout_s)
            async with asyncio.timeout(timeout_s):
                connection = await self._connect_once(peer)
                return await connection.request(body, timeout_s)
        except TimeoutError:
            peer.stats.request_timeouts += 1
            raise
        except OSError as error:
            raise ConnectionLostError(
                f"cannot reach node {to} at {peer.address}: {error!r}"
            ) from error

    def queued_messages(self, to: int) -> int:
        """Frames waiting in the queue of peer `to` (cheap enough to call per send)."""
        return self._peers[to].queue.qsize()

    def peer_stats(self) -> dict[int, PeerStats]:
        """Counters per peer (copies), for metrics labelled by peer."""
        peers = {}
        for node_id, peer in self._peers.items():
            copy = dataclasses.replace(peer.stats)
            copy.queued_messages = peer.queue.qsize()
            copy.queued_bytes = peer.queued_bytes
            copy.connected = peer.connection is not None and peer.connection.is_open
            peers[node_id] = copy
        return peers

    def stats(self) -> dict[str, int]:
        """Counters summed over every peer, for metrics. `messages_dropped` counts every
        message that will not arrive for sure: dropped from a full queue or lost in a failed
        write (the two are also given apart), and messages to nodes without an address."""
        totals: dict[str, int] = {}
        for stats in self.peer_stats().values():
            for name in PeerStats.__slots__:
                totals[name] = totals.get(name, 0) + int(getattr(stats, name))
        totals["peers_connected"] = totals.pop("connected", 0)
        totals["messages_unroutable"] = self._messages_unroutable
        totals["messages_dropped_queue_full"] = totals.get("messages_dropped", 0)
        totals["messages_dropped"] = (
            totals.get("messages_dropped", 0)
            + totals.get("messages_lost", 0)
            + self._messages_unroutable
        )
        return totals

    def _start_writer(self, peer: _Peer) -> None:
        peer.writer_task = asyncio.get_running_loop().create_task(
            self._run_writer(peer), name=f"rpc-writer node {peer.node_id}"
        )

    async def _run_writer(self, peer: _Peer) -> None:
        try:
            await self._write_forever(peer)
        except Exception:
            # A bug, never a network error (those are handled below): say so at once rather
            # than at close(), which is when a silent dead writer would otherwise surface.
            log.error("rpc.peer_writer_crashed", peer=peer.node_id, exc_info=True)
            raise

    async def _write_forever(self, peer: _Peer) -> None:
        while True:
            first = await peer.queue.get()
            peer.queued_bytes -= len(first)
            connection = await self._connect_with_backoff(peer)
            batch = [first]
            batch_bytes = len(first)
            while batch_bytes < WRITE_BATCH_MAX_BYTES and not peer.queue.empty():
                frame = peer.queue.get_nowait()
                peer.queued_bytes -= len(frame)
                batch.append(frame)
                batch_bytes += len(frame)
            try:
                connection.write(batch)
                await connection.drain()
            except (OSError, TimeoutError, ConnectionLostError) as error:
                peer.stats.messages_lost += len(batch)
                log.info(
                    "rpc.peer_write_failed",
                    peer=peer.node_id,
                    address=peer.address,
                    messages=len(batch),
                    reason=repr(error),
                )
                await connection.close(f"write failed: {error!r}")
                continue
            peer.stats.messages_sent += len(batch)
            peer.stats.bytes_sent += batch_bytes

    async def _connect_with_backoff(self, peer: _Peer) -> ClientConnection:
        while True:
            try:
                return await self._connect_once(peer)
            except (OSError, TimeoutError, RpcError) as error:
                peer.consecutive_failures += 1
                peer.stats.connect_failures += 1
                delay_s = self._backoff_delay_s(peer.consecutive_failures)
                # The first failure is news; the next ones, while the peer stays down, are not.
                level = log.warning if peer.consecutive_failures == 1 else log.debug
                level(
                    "rpc.peer_connect_failed",
                    peer=peer.node_id,
                    address=peer.address,
                    attempt=peer.consecutive_failures,
                    retry_in_ms=round(delay_s * 1000),
                    reason=str(error) or repr(error),
                )
                await asyncio.sleep(delay_s)

    async def _connect_once(self, peer: _Peer) -> ClientConnection:
        """The peer's open connection, or a new one (one attempt, under the peer's lock so
        the writer and requests share it)."""
        async with peer.connect_lock:
            current = peer.connection
            if current is not None and current.is_open and current.address == peer.address:
                return current
            if current is not None:
                peer.connection = None
                reason = "replaced" if current.address == peer.address else "peer moved"
                await current.close(reason)
            if self._closed:
                raise ConnectionLostError(f"transport of node {self.node_id} is closed")
            connection = await ClientConnection.open(
                peer.host,
                peer.port,
                self._hello,
                expected_node_id=peer.node_id,
                connect_timeout_s=self._connect_timeout_s,
            )
            if self._closed:  # close() ran while we were connecting
                await connection.close("transport closed")
                raise ConnectionLostError(f"transport of node {self.node_id} is closed")
            peer.connection = connection
            if peer.stats.connects > 0:
                peer.stats.reconnects += 1
            peer.stats.connects += 1
            peer.consecutive_failures = 0
            log.info("rpc.peer_connected", peer=peer.node_id, address=peer.address)
            return connection

    def _backoff_delay_s(self, failures: int) -> float:
        return backoff_delay_s(failures, self._backoff_initial_s, self._backoff_max_s, self._rng)


def backoff_delay_s(failures: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """The wait after `failures` consecutive failed connects: exponential from initial_s,
    capped at max_s, less up to RECONNECT_BACKOFF_JITTER_FRACTION of it at random (so that
    nodes that lost a peer together do not all knock at the same instant)."""
    assert failures >= 1
    exponent = min(failures - 1, 32)
    delay_s = min(max_s, initial_s * 2**exponent)
    return delay_s * (1 - RECONNECT_BACKOFF_JITTER_FRACTION * rng.random())
