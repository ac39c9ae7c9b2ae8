"""The peer transport (kraft.rpc.transport) between real sockets: fire-and-forget raft
messages both ways, drop-oldest queues, reconnect with backoff, requests with timeouts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kraft.raft.messages import ErrorCode, FetchRequest, FetchResponse, VoteRequest
from kraft.raft.types import Entry
from kraft.rpc.config import RECONNECT_BACKOFF_INITIAL_S, RECONNECT_BACKOFF_MAX_S
from kraft.rpc.errors import ConnectionLostError, RemoteError, UnknownPeerError
from kraft.rpc.transport import PeerTransport, backoff_delay_s

from .conftest import CLUSTER_ID, OTHER_CLUSTER_ID, StartServer, wait_until

MakeTransport = Callable[..., PeerTransport]


@pytest.fixture
async def make_transport() -> AsyncIterator[MakeTransport]:
    """Builds PeerTransports (seeded backoff jitter); closes them after the test."""
    made: list[PeerTransport] = []

    def make(
        node_id: int, peers: dict[int, tuple[str, int]], cluster_id: str = CLUSTER_ID, **kw: Any
    ) -> PeerTransport:
        transport = PeerTransport(
            node_id, cluster_id, f"dir-{node_id}", peers, rng=random.Random(node_id), **kw
        )
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.close()


def vote(epoch: int, candidate_id: int = 1) -> VoteRequest:
    return VoteRequest(epoch, candidate_id, 0, 0)


async def test_two_transports_exchange_messages_both_ways_in_order(
    start_server: StartServer, make_transport: MakeTransport
) -> None:
    server_1, inbox_1 = await start_server(node_id=1)
    server_2, inbox_2 = await start_server(node_id=2)
    transport_1 = make_transport(1, {2: ("127.0.0.1", server_2.port)})
    transport_2 = make_transport(2, {1: ("127.0.0.1", server_1.port)})
    await transport_1.start()
    await transport_2.start()

    for epoch in range(500):
        transport_1.send(2, vote(epoch, candidate_id=1))
        transport_2.send(1, vote(epoch, candidate_id=2))
    await wait_until(lambda: len(inbox_2.received) == 500, "500 messages at node 2")
    await wait_until(lambda: len(inbox_1.received) == 500, "500 messages at node 1")

    assert inbox_2.received == [(1, vote(epoch, candidate_id=1)) for epoch in range(500)]
    assert inbox_1.received == [(2, vote(epoch, candidate_id=2)) for epoch in range(500)]
    stats = transport_1.stats()
    assert (stats["messages_sent"], stats["messages_dropped"], stats["connects"]) == (500, 0, 1)
    assert stats["bytes_sent"] > 0


async def test_a_large_fetch_response_crosses_intact(
    start_server: StartServer, make_transport: MakeTransport
) -> None:
    server, inbox = await start_server(node_id=2)
    transport = make_transport(1, {2: ("127.0.0.1", server.port)})
    await transport.start()
    entries = tuple(Entry(offset, 3, b"r" * 100) for offset in range(10_000))
    response = FetchResponse(3, 1, 17, ErrorCode.NONE, 10_000, 0, entries)

    transport.send(2, response)
    await wait_until(lambda: len(inbox.received) == 1, "the fetch response")

    assert inbox.received == [(1, response)]


async def test_a_full_queue_drops_the_oldest_messages(
    start_server: StartServer, make_transport: MakeTransport
) -> None:
    server, inbox = await start_server(node_id=2)
    transport = make_transport(1, {2: ("127.0.0.1", server.port)}, queue_max_messages=3)

    for epoch in range(10):  # queued before start: nothing is sent yet
        transport.send(2, vote(epoch))
    await transport.start()
    await wait_until(lambda: len(inbox.received) == 3, "the three newest messages")

    assert [message for _, message in inbox.received] == [vote(7), vote(8), vote(9)]
    assert transport.stats()["messages_dropped"] == 7
    assert transport.peer_stats()[2].messages_dropped == 7


async def test_the_queue_is_bounded_in_bytes_too(make_transport: MakeTransport) -> None:
    transport = make_transport(1, {2: ("127.0.0.1", 9)}, queue_max_bytes=200)

    for epoch in range(20):
        transport.send(2, vote(epoch))

    stats = transport.peer_stats()[2]
    assert stats.queued_bytes <= 200
    assert stats.queued_messages + stats.messages_dropped == 20
    assert stats.messages_dropped > 0


async def test_transport_reconnects_after_the_peer_restarts_on_the_same_port(
    start_server: StartServer, make_transport: MakeTransport, logs: list[dict[str, Any]]
) -> None:
    server, inbox = await start_server(node_id=2)
    port = server.port
    transport = make_transport(1, {2: ("127.0.0.1", port)})
    await transport.start()
    transport.send(2, vote(1))
    await wait_until(lambda: len(inbox.received) == 1, "the first message")

    await server.close()
    await wait_until(lambda: not transport.peer_stats()[2].connected, "the loss to be noticed")
    transport.send(2, vote(2))  # no one listens: connecting fails and backs off
    await wait_until(lambda: transport.stats()["connect_failures"] >= 2, "failed reconnects")
    restarted, inbox_after = await start_server(node_id=2, port=port)

    # Raft retransmits: so does the test, until a message gets through.
    def arrived() -> bool:
        transport.send(2, vote(3))
        return len(inbox_after.received) > 0

    await wait_until(arrived, "a message after the restart")
    stats = transport.stats()
    assert stats["reconnects"] == 1
    assert stats["connects"] == 2
    assert any(e["event"] == "rpc.peer_connect_failed" for e in logs)
    assert inbox_after.received[0][0] == 1


async def test_transport_refuses_a_peer_of_another_cluster_and_keeps_retrying(
    start_server: StartServer, make_transport: MakeTransport, logs: list[dict[str, Any]]
) -> None:
    server, inbox = await start_server(node_id=2)
    transport = make_transport(1, {2: ("127.0.0.1", server.port)}, cluster_id=OTHER_CLUSTER_ID)
    await transport.start()

    transport.send(2, vote(1))
    await wait_until(lambda: transport.stats()["connect_failures"] >= 2, "refused connects")

    assert inbox.received == []
    failures = [e for e in logs if e["event"] == "rpc.peer_connect_failed"]
    assert f"cluster id {OTHER_CLUSTER_ID} does not match" in failures[0]["reason"]


async def test_transport_refuses_a_peer_that_is_not_the_node_it_expected(
    start_server: StartServer, make_transport: MakeTransport, logs: list[dict[str, Any]]
) -> None:
    server, inbox = await start_server(node_id=3)
    transport = make_transport(1, {2: ("127.0.0.1", server.port)})
    await transport.start()

    transport.send(2, vote(1))
    await wait_until(lambda: transport.stats()["connect_failures"] >= 1, "a refused connect")

    failures = [e for e in logs if e["event"] == "rpc.peer_connect_failed"]
    assert f"127.0.0.1:{server.port} is node 3, expected node 2" in failures[0]["reason"]
    assert inbox.received == []


async def test_requests_are_answered_by_correlation_id_out_of_order(
    start_server: StartServer, make_transport: MakeTransport
) -> None:
    async def handler(sender: int | None, body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(body["delay_s"])
        return {"n": body["n"], "sender": sender}

    server, _ = await start_server(node_id=2, on_request=handler)
    transport = make_transport(1, {2: ("127.0.0.1", server.port)})
    await transport.start()

    answers = await asyncio.gather(
        *(
            transport.request(2, {"kind": "work", "n": n, "delay_s": (5 - n) / 200}, 5)
            for n in range(5)
        )
    )

    assert answers == [{"n": n, "sender": 1} for n in range(5)]


async def test_a_request_times_out_and_the_connection_stays_usable(
    start_server: StartServer, make_transport: MakeTransport
) -> None:
    release = asyncio.Event()

    async def handler(sender: int | None, body: dict[str, Any]) -> dict[str, Any]:
        if body["kind"] == "slow":
            await release.wait()
        return {"kind": body["kind"]}

    server, _ = await start_server(node_id=2, on_request=handler)
    transport = make_transport(1, {2: ("127.0.0.1", server.port)})
    await transport.start()

    with pytest.raises(TimeoutError):
        await transport.request(2, {"kind": "slow"}, timeout_s=0.05)
    release.set()  # its late answer arrives and is ignored
    assert await transport.request(2, {"kind": "fast"}, timeout_s=5) == {"kind": "fast"}
    assert transport.stats()["request_timeouts"] == 1


async def test_a_request_carries_the_handlers_error(
    start_server: StartServer, make_transport: MakeTransport
) -> None:
    async def handler(sender: int | None, body: dict[str, Any]) -> dict[str, Any]:
        raise RemoteError("not_leader", "the leader is node 3")

    server, _ = await start_server(node_id=2, on_request=handler)
    transport = make_transport(1, {2: ("127.0.0.1", server.port)})
    await transport.start()

    with pytest.raises(RemoteError, match="not_leader: the leader is node 3"):
        await transport.request(2, {"kind": "propose", "key": "k", "value": b"v"}, timeout_s=5)


async def test_a_request_to_a_peer_that_is_down_fails_fast(
    start_server: StartServer, make_transport: MakeTransport
) -> None:
    server, _ = await start_server(node_id=2)
    port = server.port
    await server.close()
    transport = make_transport(1, {2: ("127.0.0.1", port)})
    await transport.start()

    with pytest.raises(ConnectionLostError, match=f"cannot reach node 2 at 127.0.0.1:{port}"):
        await transport.request(2, {"kind": "x"}, timeout_s=5)


async def test_messages_to_a_node_without_address_are_dropped_and_counted(
    make_transport: MakeTransport, logs: list[dict[str, Any]]
) -> None:
    """send never fails the caller (raft's loop); request does, since its caller waits."""
    transport = make_transport(1, {})

    transport.send(7, vote(1))
    transport.send(7, vote(2))

    assert transport.stats()["messages_unroutable"] == 2
    assert transport.stats()["messages_dropped"] == 2
    assert [e["peer"] for e in logs if e["event"] == "rpc.peer_unknown"] == [7]
    with pytest.raises(UnknownPeerError, match="node 7 is not a known peer of node 1"):
        await transport.request(7, {"kind": "x"}, timeout_s=1)


async def test_a_peer_added_at_run_time_gets_messages(
    start_server: StartServer, make_transport: MakeTransport
) -> None:
    server, inbox = await start_server(node_id=4)
    transport = make_transport(1, {})
    await transport.start()

    transport.set_peer(4, "127.0.0.1", server.port)
    transport.send(4, FetchRequest(1, 1, 1, 0, 0, 1024))
    await wait_until(lambda: len(inbox.received) == 1, "the fetch at the new peer")

    assert inbox.received == [(1, FetchRequest(1, 1, 1, 0, 0, 1024))]


async def test_close_cancels_the_writers_and_closes_the_connections(
    start_server: StartServer, make_transport: MakeTransport
) -> None:
    server, inbox = await start_server(node_id=2)
    transport = make_transport(1, {2: ("127.0.0.1", server.port)})
    await transport.start()
    transport.send(2, vote(1))
    await wait_until(lambda: len(inbox.received) == 1, "the message")

    await transport.close()

    await wait_until(lambda: server.stats().connections_open == 0, "the server to see it go")
    assert not transport.peer_stats()[2].connected
    transport.send(2, vote(2))  # after close: counted as dropped, never raises
    assert transport.stats()["messages_dropped"] == 1


def test_backoff_grows_exponentially_to_its_cap_with_jitter() -> None:
    rng = random.Random(7)
    initial, cap = RECONNECT_BACKOFF_INITIAL_S, RECONNECT_BACKOFF_MAX_S

    delays = [backoff_delay_s(failures, initial, cap, rng) for failures in range(1, 12)]

    for failures, delay in enumerate(delays, start=1):
        ceiling = min(cap, initial * 2 ** (failures - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert delays[-1] > cap / 2
    assert backoff_delay_s(10**6, initial, cap, rng) <= cap
    same = random.Random(7)
    assert delays == [backoff_delay_s(f, initial, cap, same) for f in range(1, 12)]


async def test_a_peer_that_moves_is_reached_at_its_new_address(
    start_server: StartServer, make_transport: MakeTransport
) -> None:
    old_server, old_inbox = await start_server(node_id=2)
    new_server, new_inbox = await start_server(node_id=2)
    transport = make_transport(1, {2: ("127.0.0.1", old_server.port)})
    await transport.start()
    transport.send(2, vote(1))
    await wait_until(lambda: len(old_inbox.received) == 1, "the message at the old address")

    transport.set_peer(2, "127.0.0.1", new_server.port)
    transport.send(2, vote(2))
    await wait_until(lambda: len(new_inbox.received) == 1, "the message at the new address")

    assert new_inbox.received == [(1, vote(2))]
    assert old_inbox.received == [(1, vote(1))]
    await wait_until(lambda: old_server.stats().connections_open == 0, "the old connection to go")


async def test_a_request_after_close_fails(
    start_server: StartServer, make_transport: MakeTransport
) -> None:
    server, _ = await start_server(node_id=2)
    transport = make_transport(1, {2: ("127.0.0.1", server.port)})
    await transport.start()
    await transport.close()

    with pytest.raises(ConnectionLostError, match="transport of node 1 is closed"):
        await transport.request(2, {"kind": "x"}, timeout_s=1)
