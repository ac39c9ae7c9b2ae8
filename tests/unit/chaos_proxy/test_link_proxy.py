"""LinkProxy over real sockets on 127.0.0.1: an echo server behind one proxy, each mode
switched while connections are open. No test asserts a duration: conditions are polled
with a deadline and checked through the proxy's counters and the echo server's."""

from __future__ import annotations

import asyncio
import random

import pytest

from chaos.proxy import FaultSpecError, LinkMode, LinkProxy

from .conftest import (
    SEED,
    Clients,
    EchoServer,
    read_until_closed,
    round_trip,
    started_link,
    wait_until,
)


async def test_pass_forwards_both_ways_and_counts_bytes(
    proxy: LinkProxy, echo: EchoServer, clients: Clients
) -> None:
    reader, writer = await clients.open(proxy.port)

    answer = await round_trip(reader, writer, b"ping")

    assert answer == b"ping"
    assert echo.connections == 1
    counters = proxy.counters
    assert counters.connections == 1
    assert counters.bytes_requests == 4
    assert counters.bytes_responses == 4
    assert counters.chunks_dropped == 0


async def test_blackhole_drops_bytes_of_an_open_connection_and_heal_resets_it(
    proxy: LinkProxy, echo: EchoServer, clients: Clients
) -> None:
    reader, writer = await clients.open(proxy.port)
    assert await round_trip(reader, writer, b"before") == b"before"
    proxy.set_mode(LinkMode.BLACKHOLE)

    writer.write(b"lost")
    await writer.drain()
    await wait_until(lambda: proxy.counters.chunks_dropped_requests == 1, "the drop")
    proxy.set_mode(LinkMode.PASS)

    assert await read_until_closed(reader) == b""
    assert echo.bytes_received == len(b"before")
    assert proxy.counters.closed_on_heal == 1
    await wait_until(lambda: proxy.open_connections == 0, "the reset connection to go")


async def test_connection_opened_during_blackhole_never_reaches_the_target_and_heal_resets_it(
    proxy: LinkProxy, echo: EchoServer, clients: Clients
) -> None:
    proxy.set_mode(LinkMode.BLACKHOLE)
    reader, writer = await clients.open(proxy.port)

    writer.write(b"into the void")
    await writer.drain()
    await wait_until(lambda: proxy.counters.chunks_dropped_requests >= 1, "the drop")
    proxy.set_mode(LinkMode.PASS)

    assert await read_until_closed(reader) == b""
    assert echo.connections == 0
    reader, writer = await clients.open(proxy.port)
    assert await round_trip(reader, writer, b"healed") == b"healed"


async def test_idle_connection_survives_a_blackhole(proxy: LinkProxy, clients: Clients) -> None:
    """A connection that sent nothing while cut lost no bytes: as over TCP, it goes on."""
    reader, writer = await clients.open(proxy.port)
    assert await round_trip(reader, writer, b"one") == b"one"

    proxy.set_mode(LinkMode.BLACKHOLE)
    proxy.set_mode(LinkMode.PASS)

    assert await round_trip(reader, writer, b"two") == b"two"
    assert proxy.counters.closed_on_heal == 0


async def test_drop_responses_delivers_requests_but_not_answers(
    proxy: LinkProxy, echo: EchoServer, clients: Clients
) -> None:
    reader, writer = await clients.open(proxy.port)
    proxy.set_mode(LinkMode.DROP_RESPONSES)

    writer.write(b"request")
    await writer.drain()
    await wait_until(lambda: proxy.counters.chunks_dropped_responses == 1, "the dropped echo")

    assert echo.bytes_received == len(b"request")
    assert proxy.counters.bytes_requests == len(b"request")
    assert proxy.counters.bytes_responses == 0
    proxy.set_mode(LinkMode.PASS)
    assert await read_until_closed(reader) == b""


async def test_drop_requests_drops_client_bytes_while_target_bytes_flow(
    greeting_proxy: LinkProxy, greeting_echo: EchoServer, clients: Clients
) -> None:
    greeting_proxy.set_mode(LinkMode.DROP_REQUESTS)
    reader, writer = await clients.open(greeting_proxy.port)

    greeting = await asyncio.wait_for(reader.readexactly(len(b"hello")), 10.0)
    writer.write(b"unheard")
    await writer.drain()
    await wait_until(lambda: greeting_proxy.counters.chunks_dropped_requests == 1, "the drop")

    assert greeting == b"hello"
    assert greeting_echo.bytes_received == 0


async def test_mode_change_that_resumes_no_direction_keeps_tainted_connections(
    proxy: LinkProxy, clients: Clients
) -> None:
    """drop_requests -> blackhole forwards nothing new; only leaving both resets."""
    reader, writer = await clients.open(proxy.port)
    proxy.set_mode(LinkMode.DROP_REQUESTS)
    writer.write(b"lost")
    await writer.drain()
    await wait_until(lambda: proxy.counters.chunks_dropped_requests == 1, "the drop")

    proxy.set_mode(LinkMode.BLACKHOLE)
    assert proxy.counters.closed_on_heal == 0
    assert proxy.open_connections == 1
    proxy.set_mode(LinkMode.PASS)

    assert await read_until_closed(reader) == b""
    assert proxy.counters.closed_on_heal == 1


async def test_delay_with_jitter_keeps_order_within_a_connection(
    proxy: LinkProxy, clients: Clients
) -> None:
    proxy.set_delay(delay_ms=3, jitter_ms=3)
    reader, writer = await clients.open(proxy.port)
    messages = [f"message {index:03d};".encode() for index in range(60)]

    for message in messages:
        writer.write(message)
        await writer.drain()
        await asyncio.sleep(0)  # let the proxy read each write as its own chunk
    received = await asyncio.wait_for(reader.readexactly(sum(map(len, messages))), 10.0)

    assert received == b"".join(messages)
    assert proxy.counters.chunks_dropped == 0


async def test_loss_of_one_resets_the_connection_on_its_first_chunk(
    proxy: LinkProxy, echo: EchoServer, clients: Clients
) -> None:
    proxy.set_loss(1.0)
    reader, writer = await clients.open(proxy.port)

    writer.write(b"doomed")
    await writer.drain()

    assert await read_until_closed(reader) == b""
    assert proxy.counters.resets_injected == 1
    assert proxy.counters.chunks_dropped_requests == 1
    assert echo.bytes_received == 0


async def _round_trips_until_reset(target_port: int, seed: int, probability: float) -> int:
    completed = 0
    async with started_link(target_port, seed) as link:
        link.set_loss(probability)
        reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
        try:
            for index in range(200):
                await round_trip(reader, writer, b"ping %03d" % index)
                completed += 1
        except (OSError, asyncio.IncompleteReadError):
            pass  # the injected reset
        finally:
            writer.transport.abort()
    assert link.counters.resets_injected == 1
    return completed


async def test_loss_draws_one_number_per_chunk_from_the_seeded_rng(echo: EchoServer) -> None:
    """One round trip is two chunks (request, echo); the first draw below the probability
    resets the connection, so the seed alone says how many round trips complete."""
    probability = 0.2
    draws = random.Random(SEED)
    first_lost_chunk = next(i for i in range(10_000) if draws.random() < probability)

    first = await _round_trips_until_reset(echo.port, SEED, probability)
    second = await _round_trips_until_reset(echo.port, SEED, probability)

    assert first_lost_chunk >= 4  # the seed lets a few round trips through first
    assert first == first_lost_chunk // 2
    assert second == first


async def test_unreachable_target_closes_the_client_and_counts_a_connect_failure(
    clients: Clients,
) -> None:
    closed_server = EchoServer()
    await closed_server.start()
    target_port = closed_server.port
    await closed_server.close()
    async with started_link(target_port) as link:
        reader, _ = await clients.open(link.port)

        assert await read_until_closed(reader) == b""
        assert link.counters.connect_failures == 1


async def test_close_resets_open_connections(echo: EchoServer, clients: Clients) -> None:
    async with started_link(echo.port) as link:
        reader, writer = await clients.open(link.port)
        assert await round_trip(reader, writer, b"up") == b"up"

        await link.close()

    assert await read_until_closed(reader) == b""
    assert link.open_connections == 0


def test_settings_outside_their_range_are_refused() -> None:
    link = LinkProxy(9093, random.Random(SEED), name="link 1->2")

    with pytest.raises(FaultSpecError, match="loss probability 1.5 is outside 0..1"):
        link.set_loss(1.5)
    with pytest.raises(FaultSpecError, match="delay_ms -1 is outside"):
        link.set_delay(-1)
    with pytest.raises(FaultSpecError, match="jitter_ms"):
        link.set_delay(10, 10**9)
    with pytest.raises(FaultSpecError, match="target port 0"):
        LinkProxy(0, random.Random(SEED))
