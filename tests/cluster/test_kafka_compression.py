"""Compressed record batches from unmodified Kafka clients, against real node processes:
each client produces with each codec it supports (acks=all, RF 3), every replica stores the
batches as they were sent (still compressed, with the client's codec), and the same records
are read back by a Kafka consumer (librdkafka), the native client Consumer and HTTP consume.

Codecs per client, as installed here: kafka-python only has gzip (its snappy, lz4 and zstd
need python-snappy, lz4 and zstandard, which are not dependencies); confluent-kafka
(librdkafka) has all four and sends plain snappy; aiokafka has all four through cramjam and
sends Xerial-framed snappy, as the Java client does.

Then bad compressed batches: a damaged one answers CORRUPT_MESSAGE, a zip bomb (past
DECOMPRESSED_RECORDS_MAX_BYTES) INVALID_RECORD, an unknown codec the log's refusal code; none
is written and the node keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import crc32c
import pytest

from broker.kafka.apis import SUPPORTED_VERSIONS
from broker.log.batch import (
    BATCH_HEADER_SIZE_BYTES,
    CRC_POSITION,
    CRC_START_POSITION,
    Record,
    build_batch,
    iter_batches,
)
from broker.log.compression import (
    DECOMPRESSED_RECORDS_MAX_BYTES,
    CompressionType,
    UnsupportedCompressionError,
    compress,
)
from broker.partitions.errors import log_error_code
from client.consumer import Consumer
from tests.cluster.dataplane import (
    cluster_id,
    create_topic,
    data_plane_cluster,
    fetch,
    log_bytes,
    wait_for_partition,
    wait_until_ready,
)
from tests.cluster.harness import LocalCluster, http_json, wait_for

pytestmark = pytest.mark.cluster

RECORDS = 200
DEADLINE_S = 60.0
SOCKET_TIMEOUT_S = 10.0
CODEC_IDS = {
    "gzip": CompressionType.GZIP,
    "snappy": CompressionType.SNAPPY,
    "lz4": CompressionType.LZ4,
    "zstd": CompressionType.ZSTD,
}
CASES = [
    ("kafka-python", "gzip"),
    *(("confluent-kafka", codec) for codec in CODEC_IDS),
    *(("aiokafka", codec) for codec in CODEC_IDS),
]

Sent = list[tuple[bytes, bytes]]  # (key, value) in partition order


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with data_plane_cluster(Path(tmp_path_factory.mktemp("kafka-compression"))) as local:
        wait_until_ready(local)
        yield local


def kafka_bootstrap(cluster: LocalCluster) -> str:
    return ",".join(f"127.0.0.1:{node.client_port}" for node in cluster.nodes.values())


def records_for(topic: str) -> Sent:
    # Repetitive values, so every codec makes the batch smaller and every client compresses.
    return [(f"k{n}".encode(), f"{topic}-{n:04d} ".encode() * 8) for n in range(RECORDS)]


def in_sync_topic(cluster: LocalCluster, topic: str) -> int:
    """Creates `topic` (1 partition, RF 3) and returns its leader once all are in sync."""
    create_topic(cluster.nodes[1], topic)
    state = wait_for_partition(
        cluster, topic, lambda s: s["leader"] >= 0 and len(s["isr"]) == 3, "all in sync"
    )
    return int(state["leader"])


# -- producing ---------------------------------------------------------------------------------


def produce_kafka_python(cluster: LocalCluster, topic: str, codec: str, sent: Sent) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap(cluster),
        acks="all",
        compression_type=codec,
        enable_idempotence=False,  # InitProducerId is another part of issue 6
        linger_ms=20,
        request_timeout_ms=30_000,
    )
    try:
        futures = [producer.send(topic, key=k, value=v, partition=0) for k, v in sent]
        producer.flush(timeout=DEADLINE_S)
        for future in futures:
            future.get(timeout=DEADLINE_S)
    finally:
        producer.close(timeout=10)


def produce_confluent(cluster: LocalCluster, topic: str, codec: str, sent: Sent) -> None:
    import confluent_kafka

    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": kafka_bootstrap(cluster),
            "acks": "all",
            "compression.type": codec,
            "linger.ms": 20,
        }
    )
    errors: list[object] = []
    delivered: list[int] = []

    def on_delivery(error: object, message: object) -> None:
        if error is not None:
            errors.append(error)
        else:
            delivered.append(message.offset())  # type: ignore[attr-defined]

    for key, value in sent:
        producer.produce(topic, key=key, value=value, partition=0, on_delivery=on_delivery)
    assert producer.flush(DEADLINE_S) == 0, "every record delivered before the deadline"
    assert not errors, errors
    assert sorted(delivered) == list(range(len(sent)))


def produce_aiokafka(cluster: LocalCluster, topic: str, codec: str, sent: Sent) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap(cluster),
            acks="all",
            compression_type=codec,
            linger_ms=20,
            request_timeout_ms=30_000,
        )
        await producer.start()
        try:
            futures = [await producer.send(topic, key=k, value=v, partition=0) for k, v in sent]
            await asyncio.wait_for(asyncio.gather(*futures), DEADLINE_S)
        finally:
            await producer.stop()

    asyncio.run(run())


PRODUCERS = {
    "kafka-python": produce_kafka_python,
    "confluent-kafka": produce_confluent,
    "aiokafka": produce_aiokafka,
}


# -- reading back ------------------------------------------------------------------------------


def read_with_kafka_consumer(cluster: LocalCluster, topic: str, count: int) -> Sent:
    import confluent_kafka

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": kafka_bootstrap(cluster),
            "group.id": f"reader-{topic}",  # required by librdkafka; offsets are not committed
            "enable.auto.commit": False,
        }
    )
    received: Sent = []
    try:
        consumer.assign(
            [confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)]
        )
        give_up_at = time.monotonic() + DEADLINE_S
        while len(received) < count and time.monotonic() < give_up_at:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            received.append((message.key(), message.value()))
    finally:
        consumer.close()
    return received


def read_with_native_consumer(cluster: LocalCluster, topic: str, count: int) -> Sent:
    bootstrap = [f"127.0.0.1:{node.rpc_port}" for node in cluster.nodes.values()]

    async def run() -> Sent:
        received: Sent = []
        async with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
            consumer.assign([(topic, 0)])
            give_up_at = time.monotonic() + DEADLINE_S
            while len(received) < count and time.monotonic() < give_up_at:
                for record in await consumer.poll(timeout_ms=500):
                    received.append((record.key or b"", record.value or b""))
        return received

    return asyncio.run(run())


def read_over_http(cluster: LocalCluster, topic: str, count: int) -> Sent:
    node = cluster.nodes[1]
    received: Sent = []
    give_up_at = time.monotonic() + DEADLINE_S
    while len(received) < count and time.monotonic() < give_up_at:
        url = f"{node.http_url}/topics/{topic}/partitions/0/records?offset={len(received)}"
        code, answer = http_json("GET", url + "&timeout=500")
        assert code == 200, answer
        for record in answer:
            assert record["offset"] == len(received), "in order, no gaps"
            received.append((base64.b64decode(record["key"]), base64.b64decode(record["value"])))
    return received


def stored_codecs(cluster: LocalCluster, topic: str) -> dict[int, set[int]]:
    """Per replica, the codecs of the batches in its log files."""
    return {
        node_id: {batch.compression for batch in iter_batches(log_bytes(node, topic))}
        for node_id, node in cluster.nodes.items()
    }


# librdkafka enables lz4 only for a broker that serves FindCoordinator (its feature table
# dates lz4 by that API, rdkafka_feature.c); before that it sends lz4 batches uncompressed.
FIND_COORDINATOR = 10
LIBRDKAFKA_SENDS_LZ4 = any(int(key) == FIND_COORDINATOR for key in SUPPORTED_VERSIONS)


def expected_stored_codec(client: str, codec: str) -> CompressionType:
    if client == "confluent-kafka" and codec == "lz4" and not LIBRDKAFKA_SENDS_LZ4:
        return CompressionType.NONE
    return CODEC_IDS[codec]


@pytest.mark.parametrize(("client", "codec"), CASES, ids=[f"{c}-{z}" for c, z in CASES])
def test_compressed_batches_are_stored_as_sent_and_every_reader_gets_the_records(
    cluster: LocalCluster, client: str, codec: str
) -> None:
    topic = f"zip-{client}-{codec}"
    in_sync_topic(cluster, topic)
    sent = records_for(topic)

    PRODUCERS[client](cluster, topic, codec, sent)

    expected_codec = int(expected_stored_codec(client, codec))
    wait_for(
        lambda: stored_codecs(cluster, topic) == {n: {expected_codec} for n in cluster.nodes},
        deadline_s=DEADLINE_S,
        what=f"every replica storing {codec} batches",
    )
    assert read_with_kafka_consumer(cluster, topic, len(sent)) == sent
    assert read_with_native_consumer(cluster, topic, len(sent)) == sent
    assert read_over_http(cluster, topic, len(sent)) == sent


# -- bad input ---------------------------------------------------------------------------------


def produce_frame(topic: str, batch: bytes) -> bytes:
    """A Produce v3 request (acks 1) of one batch to partition 0, with its size prefix."""
    name = topic.encode()
    body = (
        struct.pack(">hhi", -1, 1, 10_000)  # transactional id null, acks 1, timeout
        + struct.pack(">ih", 1, len(name))
        + name
        + struct.pack(">iii", 1, 0, len(batch))
        + batch
    )
    payload = struct.pack(">hhih", 0, 3, 7, 4) + b"test" + body
    return struct.pack(">i", len(payload)) + payload


def produce_error_code(port: int, topic: str, batch: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(produce_frame(topic, batch))
        size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
        answer = sock.recv(size, socket.MSG_WAITALL)
    # correlation id, [topics: 1, name, [partitions: 1, index, error code, ...]]
    (error_code,) = struct.unpack_from(">h", answer, 4 + 4 + 2 + len(topic) + 4 + 4)
    return int(error_code)


def damaged_inside(batch: bytes) -> bytes:
    """The batch with its compressed records zeroed past the codec's first bytes and its CRC
    recomputed: damage only decompressing can find."""
    data = bytearray(batch)
    start = BATCH_HEADER_SIZE_BYTES + 6
    data[start:] = bytes(len(data) - start)
    struct.pack_into(">I", data, CRC_POSITION, crc32c.crc32c(bytes(data[CRC_START_POSITION:])))
    return bytes(data)


def test_a_damaged_compressed_batch_is_refused_as_corrupt_and_nothing_is_written(
    cluster: LocalCluster,
) -> None:
    topic = "zip-damaged"
    leader = in_sync_topic(cluster, topic)
    port = cluster.nodes[leader].client_port
    good = build_batch([Record(None, b"v" * 100, (), 0)], compression=CompressionType.ZSTD)

    assert produce_error_code(port, topic, damaged_inside(good)) == 2  # CORRUPT_MESSAGE

    answer = fetch(cluster.nodes[leader], topic, 0)
    assert (answer["error_code"], answer["high_watermark"]) == (0, 0), "nothing written"
    assert produce_error_code(port, topic, good) == 0, "the node keeps serving"
    code, body = http_json(
        "GET", f"{cluster.nodes[1].http_url}/v3/clusters/{cluster_id(cluster.nodes[1])}"
    )
    assert code == 200, body


def with_records_section(batch: bytes, section: bytes, codec: int) -> bytes:
    """The batch's header over another records section, codec bits, length and CRC fixed."""
    data = bytearray(batch[:BATCH_HEADER_SIZE_BYTES] + section)
    struct.pack_into(">i", data, 8, len(data) - 12)  # batchLength
    struct.pack_into(">h", data, 21, codec)  # attributes
    struct.pack_into(">I", data, CRC_POSITION, crc32c.crc32c(bytes(data[CRC_START_POSITION:])))
    return bytes(data)


def test_a_zip_bomb_and_an_unknown_codec_are_refused_and_nothing_is_written(
    cluster: LocalCluster,
) -> None:
    topic = "zip-refused"
    leader = in_sync_topic(cluster, topic)
    port = cluster.nodes[leader].client_port
    one = build_batch([Record(None, b"v", (), 0)])
    bomb = with_records_section(
        one, compress(CompressionType.GZIP, bytes(DECOMPRESSED_RECORDS_MAX_BYTES + 1)), 1
    )
    assert len(bomb) < 1024 * 1024, "small enough for max.message.bytes"
    unknown = with_records_section(one, one[BATCH_HEADER_SIZE_BYTES:], 5)

    assert produce_error_code(port, topic, bomb) == 87  # INVALID_RECORD
    # The code the partition log's refusal maps to (UNSUPPORTED_COMPRESSION_TYPE once
    # broker/partitions/errors.py maps UnsupportedCompressionError; INVALID_RECORD until then).
    expected = int(log_error_code(UnsupportedCompressionError(5)))
    assert produce_error_code(port, topic, unknown) == expected

    answer = fetch(cluster.nodes[leader], topic, 0)
    assert (answer["error_code"], answer["high_watermark"]) == (0, 0), "nothing written"
    assert produce_error_code(port, topic, one) == 0, "the node keeps serving"
