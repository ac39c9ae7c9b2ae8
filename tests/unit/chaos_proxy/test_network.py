"""ProxyNetwork: one proxy per directed pair of nodes, and the faults a nemesis asks for.
Three echo servers stand for the rpc listeners of nodes 1, 2 and 3; each greets a new
connection with its node id, so a test sees which node a proxy port reaches."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from chaos.proxy import FaultSpecError, LinkMode, ProxyNetwork

from .conftest import SEED, Clients, EchoServer, read_until_closed, round_trip, wait_until

NODES = (1, 2, 3)
PASS, BLACKHOLE = LinkMode.PASS, LinkMode.BLACKHOLE


@pytest.fixture
async def nodes() -> AsyncIterator[dict[int, EchoServer]]:
    servers = {node: EchoServer(greeting=f"node {node};".encode()) for node in NODES}
    for server in servers.values():
        await server.start()
    yield servers
    for server in servers.values():
        await server.close()


@pytest.fixture
async def network(nodes: dict[int, EchoServer]) -> AsyncIterator[ProxyNetwork]:
    proxies = ProxyNetwork(
        {node: server.port for node, server in nodes.items()}, random.Random(SEED)
    )
    await proxies.start()
    yield proxies
    await proxies.close()


def modes(network: ProxyNetwork) -> dict[tuple[int, int], LinkMode]:
    return {(src, dst): network.link(src, dst).mode for src in NODES for dst in NODES if src != dst}


async def greeting_through(network: ProxyNetwork, clients: Clients, src: int, dst: int) -> bytes:
    reader, _ = await clients.open(network.port_for(src, dst))
    return await asyncio.wait_for(reader.readexactly(len(b"node 1;")), 10.0)


async def test_each_pair_has_its_own_port_reaching_the_destination(
    network: ProxyNetwork, clients: Clients
) -> None:
    ports = network.port_map()

    assert sorted(ports) == [1, 2, 3]
    assert len({port for by_dst in ports.values() for port in by_dst.values()}) == 6
    for src in NODES:
        for dst in NODES:
            if src != dst:
                assert ports[src][dst] == network.port_for(src, dst)
                assert await greeting_through(network, clients, src, dst) == f"node {dst};".encode()


async def test_partition_blackholes_exactly_the_links_across_groups(
    network: ProxyNetwork, nodes: dict[int, EchoServer], clients: Clients
) -> None:
    network.partition([{1}, {2, 3}])

    assert modes(network) == {
        (1, 2): BLACKHOLE, (2, 1): BLACKHOLE, (1, 3): BLACKHOLE, (3, 1): BLACKHOLE,
        (2, 3): PASS, (3, 2): PASS,
    }  # fmt: skip
    assert await greeting_through(network, clients, 2, 3) == b"node 3;"
    reader, writer = await clients.open(network.port_for(1, 2))
    writer.write(b"hello?")
    await writer.drain()
    link = network.link(1, 2)
    await wait_until(lambda: link.counters.chunks_dropped_requests == 1, "the drop on 1->2")
    assert nodes[2].connections == 0


async def test_heal_resets_connections_stalled_by_a_partition(
    network: ProxyNetwork, clients: Clients
) -> None:
    network.isolate(1)
    reader, writer = await clients.open(network.port_for(2, 1))
    writer.write(b"anyone?")
    await writer.drain()
    await wait_until(lambda: network.link(2, 1).counters.chunks_dropped == 1, "the drop")

    network.heal()

    assert await read_until_closed(reader) == b""
    assert await greeting_through(network, clients, 2, 1) == b"node 1;"


async def test_bridge_cuts_the_halves_apart_but_not_from_the_bridge(
    network: ProxyNetwork, clients: Clients
) -> None:
    network.bridge({1}, 3, {2})

    assert modes(network) == {
        (1, 2): BLACKHOLE, (2, 1): BLACKHOLE,
        (1, 3): PASS, (3, 1): PASS, (2, 3): PASS, (3, 2): PASS,
    }  # fmt: skip
    assert await greeting_through(network, clients, 1, 3) == b"node 3;"
    assert await greeting_through(network, clients, 3, 2) == b"node 2;"


async def test_one_way_drops_what_src_sends_on_both_links_of_the_pair(
    network: ProxyNetwork, nodes: dict[int, EchoServer], clients: Clients
) -> None:
    network.one_way(1, 2)

    assert modes(network)[(1, 2)] is LinkMode.DROP_REQUESTS
    assert modes(network)[(2, 1)] is LinkMode.DROP_RESPONSES
    assert {mode for link, mode in modes(network).items() if set(link) != {1, 2}} == {PASS}
    # 2 -> 1 flows: node 1 gets 2's bytes, but its greeting and echo back to 2 are dropped.
    _, writer = await clients.open(network.port_for(2, 1))
    writer.write(b"from 2")
    await writer.drain()
    await wait_until(lambda: nodes[1].bytes_received == len(b"from 2"), "2's bytes at node 1")
    await wait_until(
        lambda: network.link(2, 1).counters.chunks_dropped_responses >= 1, "1's answer dropped"
    )


async def test_faults_add_up_until_heal_partitions(network: ProxyNetwork) -> None:
    network.one_way(2, 3)
    network.one_way(3, 2)
    network.isolate(1)

    assert set(modes(network).values()) == {BLACKHOLE}
    network.heal_partitions()
    assert set(modes(network).values()) == {PASS}
    assert network.cut == frozenset()


async def test_slow_and_lossy_select_links_by_node_or_pair(network: ProxyNetwork) -> None:
    network.slow([1], delay_ms=20, jitter_ms=5)
    network.slow([(2, 3)], delay_ms=7)
    network.lossy(None, probability=0.1)
    network.partition([{1, 2}, {3}])

    delays = {link: network.link(*link).delay_ms for link in modes(network)}
    assert delays == {
        (1, 2): 20, (2, 1): 20, (1, 3): 20, (3, 1): 20, (2, 3): 7, (3, 2): 0,
    }  # fmt: skip
    assert {network.link(*link).loss_probability for link in modes(network)} == {0.1}
    network.heal_slow_links()
    assert {network.link(*link).delay_ms for link in modes(network)} == {0}
    assert modes(network)[(1, 3)] is BLACKHOLE
    network.heal()
    assert set(modes(network).values()) == {PASS}


async def test_describe_names_the_cut_and_every_link(network: ProxyNetwork) -> None:
    network.one_way(3, 1)
    network.slow([(1, 2)], delay_ms=50, jitter_ms=10)

    text = network.describe()

    assert "cut (bytes dropped from x to y): 3->1" in text
    assert "link 3->1: drop_requests" in text
    assert "link 1->3: drop_responses" in text
    assert "link 1->2: pass, delay 50±10 ms" in text
    assert len(text.splitlines()) == 1 + 6


async def test_slow_links_still_deliver_in_order(network: ProxyNetwork, clients: Clients) -> None:
    network.slow(None, delay_ms=2, jitter_ms=2)
    reader, writer = await clients.open(network.port_for(1, 2))
    assert await asyncio.wait_for(reader.readexactly(len(b"node 2;")), 10.0) == b"node 2;"

    answers = [await round_trip(reader, writer, b"#%02d" % index) for index in range(10)]

    assert answers == [b"#%02d" % index for index in range(10)]


def test_faults_naming_unknown_or_overlapping_nodes_are_refused() -> None:
    network = ProxyNetwork({1: 9001, 2: 9002, 3: 9003}, random.Random(SEED))

    with pytest.raises(FaultSpecError, match=r"partition: nodes \[3\] are in no group"):
        network.partition([{1}, {2}])
    with pytest.raises(FaultSpecError, match=r"nodes \[2\] are in two groups"):
        network.partition([{1, 2}, {2, 3}])
    with pytest.raises(FaultSpecError, match=r"isolate: node 7 is not one of \[1, 2, 3\]"):
        network.isolate(7)
    with pytest.raises(FaultSpecError, match=r"bridge: nodes \[2\] are in two groups"):
        network.bridge({1, 2}, 2, {3})
    with pytest.raises(FaultSpecError, match="src and dst are both node 1"):
        network.one_way(1, 1)
    with pytest.raises(FaultSpecError, match="no link 1->1"):
        network.slow([(1, 1)], delay_ms=5)
    with pytest.raises(FaultSpecError, match="2 nodes or more"):
        ProxyNetwork({1: 9001}, random.Random(SEED))
    assert network.cut == frozenset()
