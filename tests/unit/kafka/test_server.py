"""The listener over real loopback sockets: answers in request order even when an earlier
request waits longer, and bad input closes only its own connection."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from broker.kafka.apis import ApiKey
from broker.kafka.framing import frame
from broker.kafka.metrics import KafkaListenerMetrics
from broker.kafka.server import (
    COALESCE_LIMIT_BYTES,
    MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION,
    KafkaServer,
    _coalesced,
    _Connection,
)
from broker.partitions.manager import PartitionFetch, PartitionFetchResult
from tests.unit.kafka.helpers import Fixture, encode_request, request
from tests.unit.kafka.test_data_apis import fetch_fields, one_partition, produce_fields

TIMEOUT_S = 5.0


class SlowFetchData:
    """Parks every fetch until released, like a long poll with no new records."""

    def __init__(self, fixture: Fixture) -> None:
        self.inner = fixture.data
        self.release = asyncio.Event()

    async def produce(self, *args: Any) -> Any:
        return await self.inner.produce(*args)

    def list_offset(self, *args: Any) -> Any:
        return self.inner.list_offset(*args)

    async def fetch(
        self, replica_id: int, epoch: int, requests: Sequence[PartitionFetch], *limits: int
    ) -> list[PartitionFetchResult]:
        await self.release.wait()
        return await self.inner.fetch(replica_id, epoch, requests, *limits)


@pytest.fixture
async def served() -> AsyncIterator[tuple[KafkaServer, SlowFetchData]]:
    fixture = Fixture()
    data = SlowFetchData(fixture)
    fixture.data = data  # type: ignore[assignment]
    server = KafkaServer("127.0.0.1", 0, fixture.services)
    await server.start()
    try:
        yield server, data
    finally:
        await server.close()


async def read_answer(reader: asyncio.StreamReader) -> bytes | None:
    try:
        (size,) = struct.unpack(">i", await asyncio.wait_for(reader.readexactly(4), TIMEOUT_S))
        return await asyncio.wait_for(reader.readexactly(size), TIMEOUT_S)
    except (asyncio.IncompleteReadError, ConnectionResetError):
        return None


def metadata_request(correlation_id: int) -> bytes:
    body = request(ApiKey.METADATA, 1, topics=())
    return frame(encode_request(ApiKey.METADATA, 1, body, correlation_id=correlation_id))


async def test_answers_keep_the_request_order_while_a_fetch_is_parked(
    served: tuple[KafkaServer, SlowFetchData],
) -> None:
    server, data = served
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    fetch_body = request(ApiKey.FETCH, 11, **fetch_fields(11, "orders", [one_partition()]))
    writer.write(frame(encode_request(ApiKey.FETCH, 11, fetch_body, correlation_id=1)))
    writer.write(metadata_request(2))
    await writer.drain()
    with pytest.raises(TimeoutError):  # the metadata answer waits behind the fetch
        await asyncio.wait_for(reader.readexactly(4), 0.2)
    data.release.set()
    first, second = await read_answer(reader), await read_answer(reader)
    assert first is not None and second is not None
    assert [struct.unpack_from(">i", a)[0] for a in (first, second)] == [1, 2]
    writer.close()


async def test_a_large_answer_arrives_whole_between_small_ones(
    served: tuple[KafkaServer, SlowFetchData],
) -> None:
    """A fetch answer larger than the socket takes at once (256 KiB) is written whole, and
    the stream stays a sequence of frames in request order."""
    server, data = served
    records = bytes(range(256)) * 1024
    data.inner.fetch_records[("orders", 0)] = records
    data.release.set()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    partition = {**one_partition(), "partition_max_bytes": len(records)}
    fetch_body = request(ApiKey.FETCH, 11, **fetch_fields(11, "orders", [partition]))
    writer.write(metadata_request(1))
    writer.write(frame(encode_request(ApiKey.FETCH, 11, fetch_body, correlation_id=2)))
    writer.write(metadata_request(3))
    await writer.drain()
    answers = [await read_answer(reader) for _ in range(3)]
    assert all(answer is not None for answer in answers)
    assert [struct.unpack_from(">i", a)[0] for a in answers if a] == [1, 2, 3]
    fetch_answer = answers[1]
    assert fetch_answer is not None and len(fetch_answer) > len(records)
    assert records in fetch_answer, "the stored bytes, untouched"
    writer.close()


@pytest.mark.parametrize(
    "bad",
    [
        struct.pack(">i", 2**31 - 1),
        struct.pack(">hhih", 9999, 0, 1, -1),
        frame(struct.pack(">hhih", 3, 1, 1, -1) + b"\xff\xff\xff\x7f"),
    ],
    ids=["oversized-length", "unframed-garbage", "garbage-body"],
)
async def test_bad_input_closes_its_connection_and_others_are_served(
    served: tuple[KafkaServer, SlowFetchData], bad: bytes
) -> None:
    server, _ = served
    good_reader, good_writer = await asyncio.open_connection("127.0.0.1", server.port)
    bad_reader, bad_writer = await asyncio.open_connection("127.0.0.1", server.port)
    bad_writer.write(bad)
    await bad_writer.drain()
    assert await read_answer(bad_reader) is None
    good_writer.write(metadata_request(9))
    await good_writer.drain()
    answer = await read_answer(good_reader)
    assert answer is not None
    assert struct.unpack_from(">i", answer)[0] == 9
    good_writer.close()
    bad_writer.close()


async def test_close_ends_open_connections_and_parked_requests(
    served: tuple[KafkaServer, SlowFetchData],
) -> None:
    server, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    fetch_body = request(ApiKey.FETCH, 11, **fetch_fields(11, "orders", [one_partition()]))
    writer.write(frame(encode_request(ApiKey.FETCH, 11, fetch_body, correlation_id=1)))
    await writer.drain()
    await asyncio.wait_for(_until(lambda: server.connection_count == 1), TIMEOUT_S)
    await asyncio.wait_for(server.close(), TIMEOUT_S)
    assert await read_answer(reader) is None
    assert server.connection_count == 0
    writer.close()


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


class RecordingTransport(asyncio.Transport):
    """Keeps every buffer the listener writes (each write() call apart), to count the sends
    and see which buffers were copied."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[Any] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 9) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def connection_on(
    server: KafkaServer,
) -> tuple[asyncio.Protocol, RecordingTransport]:
    """A connection of `server` writing to a RecordingTransport instead of a socket."""
    protocol = _Connection(server)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def test_answers_done_together_leave_in_one_write_in_request_order(
    served: tuple[KafkaServer, SlowFetchData],
) -> None:
    server, _ = served
    protocol, transport = await connection_on(server)
    protocol.data_received(b"".join(metadata_request(n) for n in range(1, 6)))
    await asyncio.wait_for(_until(lambda: transport.writes), TIMEOUT_S)
    assert len(transport.writes) == 1, "five answers done in one turn: one send"
    stream = asyncio.StreamReader()
    stream.feed_data(transport.writes[0])
    stream.feed_eof()
    answers = [await read_answer(stream) for _ in range(5)]
    assert [struct.unpack_from(">i", a)[0] for a in answers if a] == [1, 2, 3, 4, 5]
    protocol.connection_lost(None)


async def test_records_over_the_coalescing_limit_are_written_alone_without_a_copy(
    served: tuple[KafkaServer, SlowFetchData],
) -> None:
    """A fetch answer's records go to the socket as the log returned them, in a write of
    their own; the small chunks before and after them are joined."""
    server, data = served
    records = bytes(range(256)) * 1024
    assert len(records) > COALESCE_LIMIT_BYTES
    data.inner.fetch_records[("orders", 0)] = records
    data.release.set()
    protocol, transport = await connection_on(server)
    partition = {**one_partition(), "partition_max_bytes": len(records)}
    fetch_body = request(ApiKey.FETCH, 11, **fetch_fields(11, "orders", [partition]))
    protocol.data_received(
        metadata_request(1)
        + frame(encode_request(ApiKey.FETCH, 11, fetch_body, correlation_id=2))
        + metadata_request(3)
    )
    await asyncio.wait_for(_until(lambda: len(transport.writes) >= 3), TIMEOUT_S)
    assert [len(buffer) for buffer in transport.writes].count(len(records)) == 1
    assert any(buffer is records for buffer in transport.writes), "the stored bytes, uncopied"
    stream = asyncio.StreamReader()
    stream.feed_data(b"".join(bytes(buffer) for buffer in transport.writes))
    stream.feed_eof()
    answers = [await read_answer(stream) for _ in range(3)]
    assert [struct.unpack_from(">i", a)[0] for a in answers if a] == [1, 2, 3]
    protocol.connection_lost(None)


def test_small_chunks_are_joined_and_large_ones_left_as_they_are() -> None:
    large = memoryview(b"L" * (COALESCE_LIMIT_BYTES + 1))
    buffers = _coalesced([b"a", b"b", large, b"c", b"d"])
    assert buffers[0] == b"ab" and buffers[1] is large and buffers[2] == b"cd"


async def test_requests_are_counted_and_timed_by_api_and_bad_input_closes_are_counted(
    served: tuple[KafkaServer, SlowFetchData],
) -> None:
    server, _ = served
    registry = CollectorRegistry()
    server.metrics = KafkaListenerMetrics(registry, lambda: server.connection_count)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    for correlation_id in (1, 2):
        writer.write(metadata_request(correlation_id))
        await writer.drain()
        assert await read_answer(reader) is not None
    assert registry.get_sample_value("kraft_kafka_requests_total", {"api": "Metadata"}) == 2
    assert (
        registry.get_sample_value("kraft_kafka_request_latency_seconds_count", {"api": "Metadata"})
        == 2
    )
    assert registry.get_sample_value("kraft_kafka_connections") == 1
    writer.write(b"\x7f\xff\xff\xff")  # a frame larger than any request may be
    await writer.drain()
    assert await read_answer(reader) is None
    await _until(
        lambda: registry.get_sample_value("kraft_kafka_connections_closed_for_bad_input_total") == 1
    )
    writer.close()


async def limited_server(
    idle_timeout_ms: int, frame_read_timeout_ms: int
) -> tuple[KafkaServer, CollectorRegistry]:
    server = KafkaServer(
        "127.0.0.1",
        0,
        Fixture().services,
        idle_timeout_ms=idle_timeout_ms,
        frame_read_timeout_ms=frame_read_timeout_ms,
    )
    registry = CollectorRegistry()
    server.metrics = KafkaListenerMetrics(registry, lambda: server.connection_count)
    await server.start()
    return server, registry


def bad_input_closes(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("kraft_kafka_connections_closed_for_bad_input_total")


async def test_a_connection_idle_past_its_limit_is_closed_but_not_for_bad_input() -> None:
    """Requests in time keep the connection; one idle limit after the last, it closes."""
    server, registry = await limited_server(idle_timeout_ms=100, frame_read_timeout_ms=100)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for correlation_id in range(3):
            writer.write(metadata_request(correlation_id))
            await writer.drain()
            assert await read_answer(reader) is not None
            await asyncio.sleep(0.06)  # less than the limit between two requests
        assert await read_answer(reader) is None, "closed once idle for 100 ms"
        assert bad_input_closes(registry) == 0
        writer.close()
    finally:
        await server.close()


async def test_a_frame_stalling_midway_closes_its_connection_on_its_own_limit() -> None:
    """The frame's limit (shorter than the idle one) holds even though the timer was armed
    for the idle wait."""
    server, registry = await limited_server(idle_timeout_ms=10_000, frame_read_timeout_ms=50)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await asyncio.sleep(0.1)  # idle, within its limit
        writer.write(struct.pack(">i", 20) + b"partial")
        await writer.drain()
        assert await read_answer(reader) is None
        await _until(lambda: bad_input_closes(registry) == 1)
        writer.close()
    finally:
        await server.close()


async def test_a_connection_ending_inside_a_frame_is_bad_input() -> None:
    server, registry = await limited_server(idle_timeout_ms=10_000, frame_read_timeout_ms=10_000)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(struct.pack(">i", 20) + b"partial")
        writer.write_eof()
        await writer.drain()
        await asyncio.wait_for(_until(lambda: bad_input_closes(registry) == 1), TIMEOUT_S)
        await asyncio.wait_for(_until(lambda: server.connection_count == 0), TIMEOUT_S)
        writer.close()
    finally:
        await server.close()


async def test_a_client_past_the_in_flight_limit_is_read_no_further_until_answered(
    served: tuple[KafkaServer, SlowFetchData],
) -> None:
    """Requests beyond MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION wait unparsed while the parked
    fetches hold the line; all are answered, in order, once the fetches complete."""
    server, data = served
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    fetch_body = request(ApiKey.FETCH, 11, **fetch_fields(11, "orders", [one_partition()]))
    limit = MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION
    for correlation_id in range(limit + 10):
        writer.write(
            frame(encode_request(ApiKey.FETCH, 11, fetch_body, correlation_id=correlation_id))
        )
    await writer.drain()
    await asyncio.wait_for(_until(lambda: len(server._requests) == limit), TIMEOUT_S)
    await asyncio.sleep(0.05)
    assert len(server._requests) == limit, "no request past the limit was started"
    data.release.set()
    answers = [await read_answer(reader) for _ in range(limit + 10)]
    assert [struct.unpack_from(">i", a)[0] for a in answers if a] == list(range(limit + 10))
    writer.close()


async def test_a_failed_acks_0_produce_closes_the_connection_after_the_answers_before_it(
    served: tuple[KafkaServer, SlowFetchData],
) -> None:
    """acks=0 gets no answer, so a refused one closes the connection (as Kafka does): the
    client learns of it. What was answered before it still arrives, in order."""
    server, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    produce_body = request(ApiKey.PRODUCE, 8, **produce_fields(8, 0, {0: None}, topic="nowhere"))
    writer.write(metadata_request(1))
    writer.write(frame(encode_request(ApiKey.PRODUCE, 8, produce_body, correlation_id=2)))
    writer.write(metadata_request(3))
    await writer.drain()
    answer = await read_answer(reader)
    assert answer is not None and struct.unpack_from(">i", answer)[0] == 1
    assert await read_answer(reader) is None, "closed, and nothing after the failed produce"
    writer.close()
