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
from broker.kafka.context import Outcome
from broker.kafka.framing import frame
from broker.kafka.metrics import KafkaListenerMetrics
from broker.kafka.server import COALESCE_LIMIT_BYTES, KafkaServer, _write_answers
from broker.partitions.manager import PartitionFetch, PartitionFetchResult
from tests.unit.kafka.helpers import Fixture, encode_request, request
from tests.unit.kafka.test_data_apis import fetch_fields, one_partition

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


class RecordingTransport:
    def get_write_buffer_size(self) -> int:
        return 0  # every write went out at once


class RecordingWriter:
    """A StreamWriter stand-in that keeps every buffer written, grouped by send round (a
    drain ends a round), to count the rounds and see which buffers were copied."""

    def __init__(self) -> None:
        self.rounds: list[list[Any]] = [[]]
        self.transport = RecordingTransport()

    def write(self, data: Any) -> None:
        self.rounds[-1].append(data)

    async def drain(self) -> None:
        self.rounds.append([])

    @property
    def writes(self) -> list[bytes]:
        """What each round sent, joined."""
        return [b"".join(bytes(buffer) for buffer in sent) for sent in self.rounds if sent]


async def _answered(answer: list[bytes] | Outcome) -> list[bytes] | Outcome:
    return answer


async def write_all_answers(
    answers: list[bytes | Outcome],
) -> tuple[RecordingWriter, str]:
    """Runs _write_answers over tasks already done (each bytes answer a one-chunk answer);
    returns the writer and why it stopped."""
    queue: asyncio.Queue[asyncio.Task[Any]] = asyncio.Queue(maxsize=len(answers))
    for answer in answers:
        chunks = [answer] if isinstance(answer, bytes) else answer
        queue.put_nowait(asyncio.create_task(_answered(chunks)))
    await asyncio.sleep(0)  # every task runs to its end
    writer = RecordingWriter()
    reason = await asyncio.wait_for(_write_answers(queue, writer), TIMEOUT_S)  # type: ignore[arg-type]
    return writer, reason


async def test_answers_already_done_leave_in_one_write_in_request_order() -> None:
    small = [struct.pack(">i", n) + b"answer" for n in range(5)]
    writer, reason = await write_all_answers([*small, Outcome.CLOSE_CONNECTION])
    assert writer.rounds[0] == [b"".join(frame(answer) for answer in small)], "one buffer"
    assert writer.writes == [b"".join(frame(answer) for answer in small)]
    assert "closed after a failed request" in reason


async def test_an_answer_over_the_coalescing_limit_is_written_alone() -> None:
    large = b"L" * (COALESCE_LIMIT_BYTES + 1)
    answers: list[bytes | Outcome] = [b"first-01", large, Outcome.NO_RESPONSE, b"after-02"]
    writer, _ = await write_all_answers([*answers, Outcome.CLOSE_CONNECTION])
    assert writer.writes == [frame(b"first-01"), frame(large), frame(b"after-02")]


async def test_records_over_the_coalescing_limit_are_written_without_a_copy() -> None:
    """A fetch answer's records chunk goes to the socket as the log returned it; the small
    chunks around it are joined."""
    records = memoryview(b"R" * (COALESCE_LIMIT_BYTES + 1))
    answer: Any = [b"head", records, b"tail"]
    writer, _ = await write_all_answers([answer, Outcome.CLOSE_CONNECTION])
    (sent,) = [round_ for round_ in writer.rounds if round_]
    assert len(sent) == 3
    assert sent[1] is records
    assert b"".join(bytes(b) for b in sent) == frame(b"head" + bytes(records) + b"tail")


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
