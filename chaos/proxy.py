"""The network of a chaos run: one TCP proxy per directed link between nodes, on loopback.

Node A reaches node B's rpc listener at a proxy port unique to the pair (A, B) (A's config
lists B at that port), so a fault can cut one direction of one pair. A link (A, B) carries
the connections A opens to B: A's requests to B and B's answers to A. Each proxy forwards
in one of four modes (pass, blackhole, drop_requests, drop_responses), may delay every chunk
(with jitter, order kept per connection) and may reset a connection with a probability per
chunk (loopback TCP loses no bytes; a lossy link shows to the application as stalls and
resets). Randomness comes from a seeded `random.Random`, one per link.

A dropped chunk leaves its TCP stream broken for good (the bytes after it would be read as
a frame boundary), so when a link starts forwarding again the connections that lost bytes,
and those accepted while blackholed, are reset: both ends reconnect cleanly, as they would
after a real partition whose connections timed out.

`ProxyNetwork` is every link of a cluster with the faults a nemesis asks for (isolate,
partition, one-way, bridge, slow, lossy, heal). `ProxyProcess` runs one in a subprocess
(`python -m chaos.proxy --ports '{"1": 9093, ...}' --seed N`), driven by JSON lines over its
stdin and stdout, so the workload's event loop never delays forwarding.

Protocol of the subprocess: the first line it prints is its port map,
`{"<src>": {"<dst>": <proxy port>, ...}, ...}`. Then each line it reads is a command
`{"id": <int>, "op": "<method>", "args": {...}}` answered by one line
`{"id": <int>, "ok": true, "result": <value or null>}` or
`{"id": <int>, "ok": false, "error": "<message>"}`. It exits after `close` or when its
stdin closes (the harness has gone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import os
import queue
import random
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any

# Proxies listen and connect on loopback only: a chaos run must never touch another address.
LOOPBACK_HOST = "127.0.0.1"
# Bytes read from a socket at once; every delay, drop and loss draw applies to one chunk.
CHUNK_SIZE_BYTES = 64 * 1024
# Chunks waiting for their delivery time per direction of a connection; a full queue stops
# reading that side, so a slow link pushes back on the sender as TCP would.
MAX_QUEUED_CHUNKS = 256
# Connections open at once through one link; a node opens a handful per peer.
MAX_CONNECTIONS_PER_LINK = 64
# A proxy gives up connecting to its target (a killed node) after this long.
CONNECT_TIMEOUT_S = 2.0
# The largest delay (and jitter) a link accepts: beyond it a run tests timeouts, not links.
MAX_DELAY_MS = 60_000
# ProxyProcess: the subprocess must print its port map, and answer each command, in this time.
START_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 5.0
# ProxyProcess.close waits this long for the subprocess to exit before killing it.
CLOSE_TIMEOUT_S = 5.0
# A command line the subprocess accepts; commands are small JSON objects.
MAX_COMMAND_BYTES = 64 * 1024
# Replies buffered between the subprocess's stdout and ProxyProcess (one per command).
MAX_PENDING_REPLIES = 16


class Direction(enum.Enum):
    """A direction of a proxied connection: requests go from the connecting node to the
    target, responses come back."""

    REQUESTS = "requests"
    RESPONSES = "responses"


class LinkMode(enum.Enum):
    """What a link forwards."""

    PASS = "pass"
    BLACKHOLE = "blackhole"  # nothing either way; new connections accepted, then silence
    DROP_REQUESTS = "drop_requests"  # target -> client flows, client -> target dropped
    DROP_RESPONSES = "drop_responses"  # client -> target flows, target -> client dropped

    def drops(self, direction: Direction) -> bool:
        if self is LinkMode.BLACKHOLE:
            return True
        if direction is Direction.REQUESTS:
            return self is LinkMode.DROP_REQUESTS
        return self is LinkMode.DROP_RESPONSES

    @staticmethod
    def dropping(requests: bool, responses: bool) -> LinkMode:
        if requests and responses:
            return LinkMode.BLACKHOLE
        if requests:
            return LinkMode.DROP_REQUESTS
        if responses:
            return LinkMode.DROP_RESPONSES
        return LinkMode.PASS


@dataclass(slots=True)
class LinkCounters:
    """What went through one link since it started."""

    connections: int = 0  # accepted
    connections_refused: int = 0  # beyond MAX_CONNECTIONS_PER_LINK, or while closing
    connect_failures: int = 0  # the target did not accept (a killed node)
    bytes_requests: int = 0  # forwarded client -> target
    bytes_responses: int = 0  # forwarded target -> client
    chunks_dropped_requests: int = 0
    chunks_dropped_responses: int = 0
    resets_injected: int = 0  # connections reset by the loss probability
    closed_on_heal: int = 0  # connections reset because they lost bytes or were stalled

    @property
    def chunks_dropped(self) -> int:
        return self.chunks_dropped_requests + self.chunks_dropped_responses


class FaultSpecError(ValueError):
    """A fault the network cannot apply: unknown node, groups that overlap, a probability
    outside [0, 1]. The message names the value and the rule."""


class _InjectedReset(Exception):
    """Raised inside a connection when the loss draw says: reset it."""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes a socket with an RST (SO_LINGER 0) rather than a FIN: the peer sees
    'connection reset', as when a lossy link makes TCP give up."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Connection:
    """One client connection through a LinkProxy: two directions, each a receiving task
    that stamps chunks with their delivery time and a delivering task that waits for it,
    then forwards, drops or resets according to the link's mode at that moment."""

    def __init__(
        self,
        link: LinkProxy,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
    ) -> None:
        self.link = link
        self.client_reader = client_reader
        self.client_writer = client_writer
        self.target_writer: asyncio.StreamWriter | None = None
        self.task = asyncio.current_task()
        # Accepted while the link was blackholed: never connected to the target.
        self.stalled = False
        # A chunk was dropped: this stream cannot resume and is reset when the link heals.
        self.tainted = False
        self.was_reset = False

    async def run(self) -> None:
        if self.link.mode is LinkMode.BLACKHOLE:
            # A partitioned peer cannot reach the target: accept, read and discard until
            # the link heals (then reset) or the client gives up.
            self.stalled = True
            while await self.client_reader.read(CHUNK_SIZE_BYTES):
                self.link.count_dropped(Direction.REQUESTS)
            return
        try:
            target_reader, target_writer = await asyncio.wait_for(
                asyncio.open_connection(LOOPBACK_HOST, self.link.target_port),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError):
            self.link.counters_live.connect_failures += 1
            self.reset()
            return
        self.target_writer = target_writer
        try:
            async with asyncio.TaskGroup() as tasks:
                for direction, reader, writer in (
                    (Direction.REQUESTS, self.client_reader, target_writer),
                    (Direction.RESPONSES, target_reader, self.client_writer),
                ):
                    chunks: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue(
                        maxsize=MAX_QUEUED_CHUNKS
                    )
                    tasks.create_task(self._receive(reader, chunks))
                    tasks.create_task(self._deliver(direction, chunks, writer))
        except* (OSError, _InjectedReset):
            self.reset()

    async def _receive(
        self,
        reader: asyncio.StreamReader,
        chunks: asyncio.Queue[tuple[bytes, float] | None],
    ) -> None:
        # No read timeout, and no drain timeout below (STYLE §5 departure): the proxy must
        # look like a wire, so an idle or paused (SIGSTOPed) peer looks the same to the other
        # end as without it. Connections end when an end closes, a fault resets them or the
        # proxy closes.
        loop = asyncio.get_running_loop()
        last_delivery = 0.0
        while chunk := await reader.read(CHUNK_SIZE_BYTES):
            # Jitter may draw a shorter delay than the previous chunk's; never overtake it.
            last_delivery = max(last_delivery, loop.time() + self.link.draw_delay_s())
            await chunks.put((chunk, last_delivery))
        await chunks.put(None)

    async def _deliver(
        self,
        direction: Direction,
        chunks: asyncio.Queue[tuple[bytes, float] | None],
        writer: asyncio.StreamWriter,
    ) -> None:
        loop = asyncio.get_running_loop()
        while (item := await chunks.get()) is not None:
            chunk, deliver_at = item
            if (wait_s := deliver_at - loop.time()) > 0:
                await asyncio.sleep(wait_s)
            # The mode is read at delivery: bytes in flight when a partition starts are lost.
            if self.link.mode.drops(direction):
                self.tainted = True
                self.link.count_dropped(direction)
                continue
            if self.link.draw_loss():
                self.link.count_dropped(direction)
                self.link.counters_live.resets_injected += 1
                raise _InjectedReset
            writer.write(chunk)
            self.link.count_forwarded(direction, len(chunk))
            await writer.drain()
        # End of stream: pass the FIN on unless this direction is cut (a FIN is a packet too).
        if self.link.mode.drops(direction):
            self.tainted = True
        elif writer.can_write_eof():
            writer.write_eof()

    def reset(self) -> None:
        """Resets both sockets and stops the connection's tasks; idempotent."""
        if self.was_reset:
            return
        self.was_reset = True
        _reset(self.client_writer)
        if self.target_writer is not None:
            _reset(self.target_writer)
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    def close(self) -> None:
        """Closes both sockets after a clean end of both directions."""
        if self.was_reset:
            return
        self.client_writer.close()
        if self.target_writer is not None:
            self.target_writer.close()


class LinkProxy:
    """A TCP proxy on 127.0.0.1:<port> (0: the system picks; see `port`) forwarding to
    127.0.0.1:<target_port>, in a mode, delay and loss probability settable at any time."""

    def __init__(self, target_port: int, rng: random.Random, *, port: int = 0, name: str = ""):
        if not 0 < target_port < 65536:
            raise FaultSpecError(f"target port {target_port} is outside 1..65535")
        if not 0 <= port < 65536:
            raise FaultSpecError(f"proxy port {port} is outside 0..65535")
        self.target_port = target_port
        self.name = name or f"proxy to {target_port}"
        self._requested_port = port
        self._rng = rng
        self._mode = LinkMode.PASS
        self._delay_ms = 0.0
        self._jitter_ms = 0.0
        self._loss_probability = 0.0
        self.counters_live = LinkCounters()
        self._connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._closing = False

    @property
    def port(self) -> int:
        """The port it listens on (still known after close, for the report)."""
        assert self._port is not None, f"{self.name}: port asked before start()"
        return self._port

    @property
    def mode(self) -> LinkMode:
        return self._mode

    @property
    def delay_ms(self) -> float:
        return self._delay_ms

    @property
    def jitter_ms(self) -> float:
        return self._jitter_ms

    @property
    def loss_probability(self) -> float:
        return self._loss_probability

    @property
    def counters(self) -> LinkCounters:
        """A copy of the counters."""
        return replace(self.counters_live)

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        assert self._server is None, f"{self.name}: started twice"
        self._server = await asyncio.start_server(
            self._serve_client, LOOPBACK_HOST, self._requested_port
        )
        port = self._server.sockets[0].getsockname()[1]
        assert isinstance(port, int)
        self._port = port

    async def close(self) -> None:
        """Stops listening, resets every connection and waits for their tasks to end."""
        self._closing = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks = [c.task for c in self._connections if c.task is not None]
        for connection in list(self._connections):
            connection.reset()
        await asyncio.gather(*tasks, return_exceptions=True)

    def set_mode(self, mode: LinkMode) -> None:
        """Switches the mode. A direction that starts forwarding again resets every
        connection that lost bytes or was stalled: its stream cannot resume."""
        previous, self._mode = self._mode, mode
        if not any(previous.drops(d) and not mode.drops(d) for d in Direction):
            return
        for connection in list(self._connections):
            if connection.stalled or connection.tainted:
                self.counters_live.closed_on_heal += 1
                connection.reset()

    def set_delay(self, delay_ms: float, jitter_ms: float = 0.0) -> None:
        """Every chunk waits delay_ms, plus or minus up to jitter_ms (uniform), never less
        than zero nor less than the chunk before it on its connection."""
        for label, value in (("delay_ms", delay_ms), ("jitter_ms", jitter_ms)):
            if not 0 <= value <= MAX_DELAY_MS:
                raise FaultSpecError(f"{self.name}: {label} {value} is outside 0..{MAX_DELAY_MS}")
        self._delay_ms = float(delay_ms)
        self._jitter_ms = float(jitter_ms)

    def set_loss(self, probability: float) -> None:
        """Each chunk resets its connection with this probability."""
        if not 0.0 <= probability <= 1.0:
            raise FaultSpecError(f"{self.name}: loss probability {probability} is outside 0..1")
        self._loss_probability = float(probability)

    def heal(self) -> None:
        """Back to pass, no delay, no loss."""
        self.set_mode(LinkMode.PASS)
        self.set_delay(0.0, 0.0)
        self.set_loss(0.0)

    def describe(self) -> str:
        parts = [self._mode.value]
        if self._delay_ms or self._jitter_ms:
            parts.append(f"delay {self._delay_ms:g}±{self._jitter_ms:g} ms")
        if self._loss_probability:
            parts.append(f"loss {self._loss_probability:g}")
        c = self.counters_live
        return (
            f"{self.name}: {', '.join(parts)}; {c.connections} connections, "
            f"{c.bytes_requests} B requests / {c.bytes_responses} B responses, "
            f"{c.chunks_dropped} chunks dropped, {c.resets_injected} resets injected, "
            f"{c.closed_on_heal} closed on heal"
        )

    # Called by connections. Draws happen only when the setting is on, so a link without
    # jitter or loss leaves its rng untouched and the draws of a run depend on its faults.
    def draw_delay_s(self) -> float:
        delay_ms = self._delay_ms
        if self._jitter_ms:
            delay_ms += self._rng.uniform(-self._jitter_ms, self._jitter_ms)
        return max(0.0, delay_ms) / 1000.0

    def draw_loss(self) -> bool:
        return self._loss_probability > 0 and self._rng.random() < self._loss_probability

    def count_dropped(self, direction: Direction) -> None:
        if direction is Direction.REQUESTS:
            self.counters_live.chunks_dropped_requests += 1
        else:
            self.counters_live.chunks_dropped_responses += 1

    def count_forwarded(self, direction: Direction, size_bytes: int) -> None:
        if direction is Direction.REQUESTS:
            self.counters_live.bytes_requests += size_bytes
        else:
            self.counters_live.bytes_responses += size_bytes

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._closing or len(self._connections) >= MAX_CONNECTIONS_PER_LINK:
            self.counters_live.connections_refused += 1
            _reset(writer)
            return
        connection = _Connection(self, reader, writer)
        self._connections.add(connection)
        self.counters_live.connections += 1
        try:
            await connection.run()
        except (OSError, _InjectedReset):
            connection.reset()
        except asyncio.CancelledError:
            if not connection.was_reset:
                raise  # not ours: the loop is going down
            # Our reset cancelled this handler. End it normally: asyncio.streams logs a
            # handler task that ends cancelled as an error (Python 3.11).
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
        finally:
            self._connections.discard(connection)
            connection.close()


# A selection of links: None (every link), node ids (every link into or out of each) or
# (src, dst) pairs.
LinkTargets = Iterable[int] | Iterable[tuple[int, int]] | None
Link = tuple[int, int]


class ProxyNetwork:
    """Every directed link between the nodes of a cluster, and the faults on them.

    The cut is a set of directed pairs (x, y): bytes from x to y are dropped, on the link
    (x, y) as requests and on the link (y, x) as responses. isolate, partition, bridge and
    one_way add to the cut (as Jepsen's grudges add to the dropped routes); heal_partitions
    clears it. slow and lossy set the delay and loss of the chosen links; heal_slow_links
    clears them. heal does both."""

    def __init__(self, node_rpc_ports: Mapping[int, int], rng: random.Random) -> None:
        if len(node_rpc_ports) < 2:
            raise FaultSpecError(f"a network needs 2 nodes or more, got {len(node_rpc_ports)}")
        self.nodes = sorted(node_rpc_ports)
        self._links: dict[Link, LinkProxy] = {}
        for src in self.nodes:
            for dst in self.nodes:
                if src != dst:
                    # One rng per link, drawn in a fixed order: a link's draws do not depend
                    # on the traffic of the others.
                    link_rng = random.Random(rng.getrandbits(64))
                    name = f"link {src}->{dst}"
                    self._links[(src, dst)] = LinkProxy(node_rpc_ports[dst], link_rng, name=name)
        self._cut: set[Link] = set()

    async def start(self) -> None:
        started: list[LinkProxy] = []
        try:
            for link in self._links.values():
                await link.start()
                started.append(link)
        except BaseException:
            for link in started:
                await link.close()
            raise

    async def close(self) -> None:
        for link in self._links.values():
            await link.close()

    def port_for(self, src: int, dst: int) -> int:
        """The proxy port node src must use to reach node dst's rpc listener."""
        return self.link(src, dst).port

    def port_map(self) -> dict[int, dict[int, int]]:
        return {
            src: {dst: self.port_for(src, dst) for dst in self.nodes if dst != src}
            for src in self.nodes
        }

    def link(self, src: int, dst: int) -> LinkProxy:
        if (src, dst) not in self._links:
            raise FaultSpecError(f"no link {src}->{dst}: nodes are {self.nodes}")
        return self._links[(src, dst)]

    @property
    def cut(self) -> frozenset[Link]:
        return frozenset(self._cut)

    def isolate(self, node: int) -> None:
        """node can neither reach nor be reached by any other node."""
        self._check_nodes([node], "isolate")
        self.partition([{node}, set(self.nodes) - {node}])

    def partition(self, groups: Sequence[Iterable[int]]) -> None:
        """Nodes in different groups cannot talk, either way. Every node is in exactly one
        group."""
        group_sets = [set(group) for group in groups]
        self._check_cover(group_sets, "partition")
        for index, group in enumerate(group_sets):
            for other in group_sets[index + 1 :]:
                self._cut_between(group, other)
        self._apply()

    def bridge(self, a_group: Iterable[int], bridge_node: int, b_group: Iterable[int]) -> None:
        """Jepsen's bridge: the two groups cannot talk to each other; bridge_node talks to
        both, so the halves only hear of each other through it."""
        a_set, b_set = set(a_group), set(b_group)
        self._check_cover([a_set, {bridge_node}, b_set], "bridge")
        self._cut_between(a_set, b_set)
        self._apply()

    def one_way(self, src: int, dst: int) -> None:
        """src's bytes to dst are dropped (on both links of the pair); dst's to src flow."""
        self._check_nodes([src, dst], "one_way")
        if src == dst:
            raise FaultSpecError(f"one_way: src and dst are both node {src}")
        self._cut.add((src, dst))
        self._apply()

    def slow(self, targets: LinkTargets, delay_ms: float, jitter_ms: float = 0.0) -> None:
        """Delays every chunk of the chosen links (both directions of their connections)."""
        for src, dst in self._select(targets):
            self._links[(src, dst)].set_delay(delay_ms, jitter_ms)

    def lossy(self, targets: LinkTargets, probability: float) -> None:
        """Each chunk on the chosen links resets its connection with this probability."""
        for src, dst in self._select(targets):
            self._links[(src, dst)].set_loss(probability)

    def heal_partitions(self) -> None:
        self._cut.clear()
        self._apply()

    def heal_slow_links(self) -> None:
        for link in self._links.values():
            link.set_delay(0.0, 0.0)
            link.set_loss(0.0)

    def heal(self) -> None:
        """Every link back to pass, no delay, no loss."""
        self._cut.clear()
        for link in self._links.values():
            link.heal()

    def counters(self) -> dict[str, LinkCounters]:
        return {f"{src}->{dst}": link.counters for (src, dst), link in self._links.items()}

    def describe(self) -> str:
        """The state of the network for the report: the cut, then one line per link."""
        cut = ", ".join(f"{src}->{dst}" for src, dst in sorted(self._cut)) or "none"
        lines = [f"network of nodes {self.nodes}; cut (bytes dropped from x to y): {cut}"]
        lines.extend(link.describe() for link in self._links.values())
        return "\n".join(lines)

    def _apply(self) -> None:
        for (src, dst), link in self._links.items():
            link.set_mode(LinkMode.dropping((src, dst) in self._cut, (dst, src) in self._cut))

    def _cut_between(self, group: set[int], other: set[int]) -> None:
        for a in group:
            for b in other:
                self._cut.add((a, b))
                self._cut.add((b, a))

    def _check_nodes(self, nodes: Iterable[int], fault: str) -> None:
        for node in nodes:
            if node not in self.nodes:
                raise FaultSpecError(f"{fault}: node {node} is not one of {self.nodes}")

    def _check_cover(self, groups: list[set[int]], fault: str) -> None:
        seen: set[int] = set()
        for group in groups:
            self._check_nodes(group, fault)
            if not group:
                raise FaultSpecError(f"{fault}: a group is empty")
            if overlap := seen & group:
                raise FaultSpecError(f"{fault}: nodes {sorted(overlap)} are in two groups")
            seen |= group
        if missing := set(self.nodes) - seen:
            raise FaultSpecError(f"{fault}: nodes {sorted(missing)} are in no group")

    def _select(self, targets: LinkTargets) -> list[Link]:
        if targets is None:
            return sorted(self._links)
        selected: set[Link] = set()
        for target in targets:
            if isinstance(target, int):
                self._check_nodes([target], "link selection")
                selected.update(link for link in self._links if target in link)
            else:
                src, dst = target
                self.link(src, dst)  # raises on an unknown link
                selected.add((src, dst))
        return sorted(selected)


# ---------------------------------------------------------------------------------------
# The subprocess: `python -m chaos.proxy --ports '{"1": 9093}' --seed N`.


def _targets_from_json(value: Any) -> LinkTargets:
    """null, [node, ...] or [[src, dst], ...] from a JSON command."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise FaultSpecError(f"targets {value!r} is neither null nor a list")
    if all(isinstance(item, int) for item in value):
        return [int(item) for item in value]
    if all(isinstance(item, list) and len(item) == 2 for item in value):
        return [(int(item[0]), int(item[1])) for item in value]
    raise FaultSpecError(f"targets {value!r} mixes nodes and [src, dst] links")


def _run_command(network: ProxyNetwork, op: str, args: dict[str, Any]) -> Any:
    """Applies one command; returns its result (None for faults)."""
    match op:
        case "isolate":
            network.isolate(int(args["node"]))
        case "partition":
            network.partition([[int(node) for node in group] for group in args["groups"]])
        case "one_way":
            network.one_way(int(args["src"]), int(args["dst"]))
        case "bridge":
            network.bridge(
                [int(node) for node in args["a_group"]],
                int(args["bridge_node"]),
                [int(node) for node in args["b_group"]],
            )
        case "slow":
            targets = _targets_from_json(args.get("targets"))
            network.slow(targets, float(args["delay_ms"]), float(args.get("jitter_ms", 0.0)))
        case "lossy":
            network.lossy(_targets_from_json(args.get("targets")), float(args["probability"]))
        case "heal":
            network.heal()
        case "heal_partitions":
            network.heal_partitions()
        case "heal_slow_links":
            network.heal_slow_links()
        case "describe":
            return network.describe()
        case "counters":
            return {name: asdict(c) for name, c in network.counters().items()}
        case _:
            raise FaultSpecError(f"unknown command {op!r}")
    return None


def _reply_to(network: ProxyNetwork, line: bytes) -> dict[str, Any]:
    command_id: Any = None
    try:
        command = json.loads(line)
        if not isinstance(command, dict):
            raise FaultSpecError(f"a command is a JSON object, got {command!r}")
        command_id = command.get("id")
        op = str(command.get("op"))
        args = command.get("args") or {}
        if not isinstance(args, dict):
            raise FaultSpecError(f"{op}: args {args!r} is not an object")
        result = _run_command(network, op, args)
    except (ValueError, TypeError, KeyError) as error:  # bad JSON, bad or missing argument
        return {"id": command_id, "ok": False, "error": f"{type(error).__name__}: {error}"}
    return {"id": command_id, "ok": True, "result": result}


def _close_command_id(line: bytes) -> int | None:
    """The id of a well-formed close command, else None."""
    with contextlib.suppress(ValueError):
        command = json.loads(line)
        if isinstance(command, dict) and command.get("op") == "close":
            return int(command.get("id") or 0)
    return None


def _emit(stream: IO[str], message: Any) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


async def _serve(node_rpc_ports: dict[int, int], seed: int) -> None:
    network = ProxyNetwork(node_rpc_ports, random.Random(seed))
    await network.start()
    try:
        port_map = network.port_map()
        _emit(sys.stdout, {str(s): {str(d): p for d, p in m.items()} for s, m in port_map.items()})
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_COMMAND_BYTES)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # longer than MAX_COMMAND_BYTES; the reader dropped it
                _emit(sys.stdout, {"id": None, "ok": False, "error": "command too long"})
                continue
            if not line:
                return  # stdin closed: the harness has gone
            if (close_id := _close_command_id(line)) is not None:
                # Close the proxies before answering: once the harness has its answer, the
                # ports are free.
                await network.close()
                _emit(sys.stdout, {"id": close_id, "ok": True, "result": None})
                return
            _emit(sys.stdout, _reply_to(network, line))
    finally:
        await network.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.proxy", description="The proxies of a chaos run's network."
    )
    parser.add_argument("--ports", required=True, help='node id -> rpc port: {"1": 9093, ...}')
    parser.add_argument("--seed", type=int, required=True, help="seeds delay jitter and loss")
    args = parser.parse_args(argv)
    ports = {int(node): int(port) for node, port in json.loads(args.ports).items()}
    asyncio.run(_serve(ports, args.seed))
    return 0


class ProxyError(Exception):
    """The proxy subprocess did not answer, died, or answered out of turn."""


class ProxyCommandError(ProxyError):
    """The proxy subprocess refused a command; the message is its error."""


class ProxyProcess:
    """A ProxyNetwork in a subprocess, driven by synchronous calls with the network's
    method names. Calls are serialized (a lock); each waits COMMAND_TIMEOUT_S for its
    answer. After a timeout the process is unusable (a late answer would be taken for the
    next command's), so close it."""

    def __init__(
        self,
        node_rpc_ports: Mapping[int, int],
        seed: int,
        *,
        stderr_path: Path | None = None,
    ) -> None:
        self.node_rpc_ports = dict(node_rpc_ports)
        self.seed = seed
        self.stderr_path = stderr_path
        self._process: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[str | None] = queue.Queue(maxsize=MAX_PENDING_REPLIES)
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._next_id = 0
        self._broken: str | None = None
        self._port_map: dict[int, dict[int, int]] = {}

    def start(self) -> None:
        assert self._process is None, "ProxyProcess started twice"
        repo_root = Path(__file__).resolve().parent.parent
        env = dict(os.environ)
        # `python -m chaos.proxy` must import this checkout whatever the caller's cwd.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root), env.get("PYTHONPATH")]))
        ports = json.dumps({str(node): port for node, port in self.node_rpc_ports.items()})
        command = [sys.executable, "-m", "chaos.proxy", "--ports", ports, "--seed", str(self.seed)]
        with contextlib.ExitStack() as stack:
            stderr = stack.enter_context(self.stderr_path.open("a")) if self.stderr_path else None
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=env,
                cwd=repo_root,
            )
        self._reader = threading.Thread(target=self._read_replies, name="proxy-replies")
        self._reader.daemon = True  # blocked on the pipe at most until the process exits
        self._reader.start()
        try:
            first = self._next_reply(START_TIMEOUT_S, "its port map")
        except ProxyError:
            self.close()  # kills it if it hangs; a `with` block would not reach __exit__
            raise
        self._port_map = {
            int(src): {int(dst): int(port) for dst, port in ports_of.items()}
            for src, ports_of in json.loads(first).items()
        }

    @property
    def port_map(self) -> dict[int, dict[int, int]]:
        return {src: dict(ports) for src, ports in self._port_map.items()}

    def port_for(self, src: int, dst: int) -> int:
        if dst not in self._port_map.get(src, {}):
            raise FaultSpecError(f"no link {src}->{dst}: nodes are {sorted(self._port_map)}")
        return self._port_map[src][dst]

    def isolate(self, node: int) -> None:
        self._call("isolate", node=node)

    def partition(self, groups: Sequence[Iterable[int]]) -> None:
        self._call("partition", groups=[sorted(group) for group in groups])

    def one_way(self, src: int, dst: int) -> None:
        self._call("one_way", src=src, dst=dst)

    def bridge(self, a_group: Iterable[int], bridge_node: int, b_group: Iterable[int]) -> None:
        self._call(
            "bridge", a_group=sorted(a_group), bridge_node=bridge_node, b_group=sorted(b_group)
        )

    def slow(self, targets: LinkTargets, delay_ms: float, jitter_ms: float = 0.0) -> None:
        self._call(
            "slow", targets=_targets_to_json(targets), delay_ms=delay_ms, jitter_ms=jitter_ms
        )

    def lossy(self, targets: LinkTargets, probability: float) -> None:
        self._call("lossy", targets=_targets_to_json(targets), probability=probability)

    def heal(self) -> None:
        self._call("heal")

    def heal_partitions(self) -> None:
        self._call("heal_partitions")

    def heal_slow_links(self) -> None:
        self._call("heal_slow_links")

    def describe(self) -> str:
        return str(self._call("describe"))

    def counters(self) -> dict[str, LinkCounters]:
        result = self._call("counters")
        return {name: LinkCounters(**values) for name, values in result.items()}

    def close(self) -> None:
        """Asks the subprocess to close its proxies and exit; kills it if it does not within
        CLOSE_TIMEOUT_S. Idempotent."""
        process = self._process
        if process is None or self._broken == "closed":
            return
        if self._broken is None and process.poll() is None:
            with contextlib.suppress(ProxyError, OSError):
                self._call("close")
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=CLOSE_TIMEOUT_S)
        if self._reader is not None:
            self._reader.join(timeout=CLOSE_TIMEOUT_S)
        assert process.stdout is not None
        process.stdout.close()
        self._broken = "closed"

    def __enter__(self) -> ProxyProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, op: str, **args: Any) -> Any:
        with self._lock:
            process = self._process
            if process is None:
                raise ProxyError(f"proxy process: {op} before start()")
            if self._broken is not None:
                raise ProxyError(f"proxy process: {op} after it {self._broken}")
            self._next_id += 1
            command_id = self._next_id
            assert process.stdin is not None
            try:
                _emit(process.stdin, {"id": command_id, "op": op, "args": args})
            except OSError as error:
                self._broken = f"could not be written to ({error})"
                raise ProxyError(f"proxy process: {op}: {error}") from error
            reply = json.loads(self._next_reply(COMMAND_TIMEOUT_S, op))
        if reply.get("id") != command_id:
            self._broken = f"answered command {reply.get('id')} to command {command_id}"
            raise ProxyError(f"proxy process: {op}: {self._broken}")
        if not reply.get("ok"):
            raise ProxyCommandError(f"proxy process refused {op}: {reply.get('error')}")
        return reply.get("result")

    def _next_reply(self, timeout_s: float, what: str) -> str:
        try:
            line = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            self._broken = f"did not answer {what} within {timeout_s} s"
            raise ProxyError(f"proxy process {self._broken}") from None
        if line is None:
            assert self._process is not None
            # Its stdout closed: it is exiting. Wait a moment, so the error names its code.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=CLOSE_TIMEOUT_S)
            code = self._process.returncode
            self._broken = f"exited (code {code}) before answering {what}"
            raise ProxyError(f"proxy process {self._broken}")
        return line

    def _read_replies(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._replies.put(line)
        self._replies.put(None)


def _targets_to_json(targets: LinkTargets) -> list[Any] | None:
    if targets is None:
        return None
    return [target if isinstance(target, int) else list(target) for target in targets]


if __name__ == "__main__":
    sys.exit(main())
