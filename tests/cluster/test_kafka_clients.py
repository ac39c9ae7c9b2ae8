"""Unmodified Kafka clients against real node processes, on the CLIENT listener (issue 6,
phase 1): kafka-python, aiokafka and confluent-kafka (librdkafka) create a topic with their
admin clients, produce with acks=all and read every record back, in order, with a consumer
assigned to the partitions; kcat (Debian's librdkafka tool) lists
the metadata, produces lines and reads them back. Then bad input at the protocol level: each
kind closes or answers its own connection while the node keeps serving another.

Producers are idempotent (kafka-python's default; aiokafka's asked for);
InitProducerId and the producer state are tested in test_kafka_idempotence.py, consumer
groups in test_kafka_groups.py.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.log.batch import CRC_POSITION, Record, build_batch
from tests.cluster.dataplane import partition_state
from tests.cluster.harness import LocalCluster, wait_for
from tests.cluster.kafka import bootstrap, ready_cluster

pytestmark = pytest.mark.cluster

RECORDS = 300
PARTITIONS = 3
DEADLINE_S = 60.0
SOCKET_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with ready_cluster(Path(tmp_path_factory.mktemp("kafka-clients"))) as local:
        yield local


def values(prefix: str) -> list[bytes]:
    return [f"{prefix}-{n:04d}".encode() for n in range(RECORDS)]


# -- kafka-python ------------------------------------------------------------------------------


def test_kafka_python_creates_produces_acks_all_and_consumes_every_record_in_order(
    cluster: LocalCluster,
) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap(cluster), request_timeout_ms=30_000)
    try:
        admin.create_topics(
            [NewTopic("kp-orders", num_partitions=PARTITIONS, replication_factor=3)]
        )
        wait_for(
            lambda: "kp-orders" in admin.list_topics(), deadline_s=DEADLINE_S, what="the topic"
        )
    finally:
        admin.close()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap(cluster),
        acks="all",
        retries=10,
        request_timeout_ms=30_000,
    )
    sent = values("kp")
    try:
        futures = [
            producer.send("kp-orders", key=str(n % PARTITIONS).encode(), value=value)
            for n, value in enumerate(sent)
        ]
        producer.flush(timeout=DEADLINE_S)
        metadata = [future.get(timeout=DEADLINE_S) for future in futures]
    finally:
        producer.close(timeout=10)
    expected: dict[int, list[bytes]] = {}
    for value, record in zip(sent, metadata, strict=True):
        expected.setdefault(record.partition, []).append(value)
        assert record.offset == len(expected[record.partition]) - 1, "offsets are dense"
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap(cluster), enable_auto_commit=False, group_id=None
    )
    try:
        partitions = [TopicPartition("kp-orders", p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        received: dict[int, list[bytes]] = {}
        give_up_at = time.monotonic() + DEADLINE_S
        while sum(map(len, received.values())) < RECORDS and time.monotonic() < give_up_at:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    assert record.offset == len(received.get(tp.partition, [])), "in order"
                    received.setdefault(tp.partition, []).append(record.value)
    finally:
        consumer.close()
    assert received == expected


# -- confluent-kafka (librdkafka) --------------------------------------------------------------


def test_confluent_kafka_creates_produces_acks_all_and_consumes_every_record_in_order(
    cluster: LocalCluster,
) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap(cluster)})
    futures = admin.create_topics(
        [NewTopic("ck-orders", num_partitions=PARTITIONS, replication_factor=3)]
    )
    futures["ck-orders"].result(timeout=DEADLINE_S)
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap(cluster), "acks": "all", "linger.ms": 5}
    )
    sent = values("ck")
    acknowledged: dict[int, list[tuple[int, bytes]]] = {}
    errors: list[object] = []

    def on_delivery(error: object, message: object) -> None:
        if error is not None:
            errors.append(error)
            return
        acknowledged.setdefault(message.partition(), []).append(  # type: ignore[attr-defined]
            (message.offset(), message.value())  # type: ignore[attr-defined]
        )

    for n, value in enumerate(sent):
        producer.produce("ck-orders", value=value, key=str(n).encode(), on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(DEADLINE_S) == 0, "every record acknowledged"
    assert not errors, errors
    expected = {
        partition: [value for _, value in sorted(entries)]
        for partition, entries in acknowledged.items()
    }
    assert sum(map(len, expected.values())) == RECORDS
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap(cluster),
            "group.id": "unused-assign-only",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    try:
        consumer.assign(
            [
                confluent_kafka.TopicPartition("ck-orders", p, confluent_kafka.OFFSET_BEGINNING)
                for p in range(PARTITIONS)
            ]
        )
        received: dict[int, list[bytes]] = {}
        give_up_at = time.monotonic() + DEADLINE_S
        while sum(map(len, received.values())) < RECORDS and time.monotonic() < give_up_at:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            partition_received = received.setdefault(message.partition(), [])
            assert message.offset() == len(partition_received), "in order, from the start"
            partition_received.append(message.value())
    finally:
        consumer.close()
    assert received == expected


# -- aiokafka ----------------------------------------------------------------------------------


async def test_aiokafka_creates_produces_acks_all_and_consumes_every_record_in_order(
    cluster: LocalCluster,
) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(cluster), request_timeout_ms=30_000)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic("aio-orders", num_partitions=PARTITIONS, replication_factor=3)]
        )
        async with asyncio.timeout(DEADLINE_S):  # the node asked may learn of it a bit later
            while "aio-orders" not in await admin.list_topics():
                await asyncio.sleep(0.05)
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap(cluster),
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=30_000,
    )
    sent = values("aio")
    await producer.start()
    try:
        futures = [
            await producer.send("aio-orders", key=str(n % PARTITIONS).encode(), value=value)
            for n, value in enumerate(sent)
        ]
        async with asyncio.timeout(DEADLINE_S):
            metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    expected: dict[int, list[bytes]] = {}
    for value, record in zip(sent, metadata, strict=True):
        expected.setdefault(record.partition, []).append(value)
        assert record.offset == len(expected[record.partition]) - 1, "offsets are dense"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap(cluster), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition("aio-orders", p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        received: dict[int, list[bytes]] = {}
        give_up_at = time.monotonic() + DEADLINE_S
        while sum(map(len, received.values())) < RECORDS and time.monotonic() < give_up_at:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    assert record.offset == len(received.get(tp.partition, [])), "in order"
                    received.setdefault(tp.partition, []).append(record.value)
    finally:
        await consumer.stop()
    assert received == expected


# -- kcat (librdkafka's command-line tool, from Debian) ----------------------------------------

KCAT = shutil.which("kcat")
needs_kcat = pytest.mark.skipif(
    KCAT is None, reason="kcat is not installed (scripts/bootstrap installs Debian's package)"
)
KCAT_TIMEOUT_S = 60.0


def kcat(cluster: LocalCluster, *args: str, stdin: str | None = None) -> str:
    """kcat's standard output; fails the test, with kcat's standard error, unless it exits 0."""
    assert KCAT is not None
    finished = subprocess.run(
        [KCAT, "-b", bootstrap(cluster), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=KCAT_TIMEOUT_S,
        check=False,
    )
    assert finished.returncode == 0, f"kcat {' '.join(args)}: {finished.stderr}"
    return finished.stdout


def create_topic_with_kafka_python(cluster: LocalCluster, name: str, partitions: int) -> None:
    """kcat has no admin commands: the topic comes from kafka-python's admin client; returns
    once every node's metadata has a leader for every partition."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap(cluster), request_timeout_ms=30_000)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=3)])
    finally:
        admin.close()

    def led_everywhere() -> bool:
        states = [
            partition_state(node, name, partition)
            for node in cluster.nodes.values()
            for partition in range(partitions)
        ]
        return all(state is not None and state["leader"] >= 0 for state in states)

    wait_for(led_everywhere, deadline_s=DEADLINE_S, what=f"{name} led, as every node sees it")


@needs_kcat
def test_kcat_lists_our_brokers_and_the_topic_with_its_leaders(cluster: LocalCluster) -> None:
    create_topic_with_kafka_python(cluster, "kcat-listed", PARTITIONS)

    def listing_with_leaders() -> dict[str, object] | None:
        listing: dict[str, object] = json.loads(kcat(cluster, "-L", "-J", "-t", "kcat-listed"))
        [topic] = listing["topics"]  # type: ignore[misc]
        partitions = topic.get("partitions", [])
        ready = len(partitions) == PARTITIONS and all(p["leader"] >= 0 for p in partitions)
        return listing if ready else None

    listing = wait_for(listing_with_leaders, deadline_s=DEADLINE_S, what="every leader")
    brokers = {broker["id"]: broker["name"] for broker in listing["brokers"]}  # type: ignore[attr-defined]
    assert brokers == {
        node.node_id: f"127.0.0.1:{node.client_port}" for node in cluster.nodes.values()
    }
    assert listing["controllerid"] in brokers
    [topic] = listing["topics"]  # type: ignore[misc]
    assert topic["topic"] == "kcat-listed"
    for entry in topic["partitions"]:
        state = partition_state(cluster.nodes[1], "kcat-listed", entry["partition"])
        assert state is not None
        assert entry["leader"] == state["leader"]
        assert [replica["id"] for replica in entry["replicas"]] == state["replicas"]
        assert sorted(isr["id"] for isr in entry["isrs"]) == sorted(state["isr"])


@needs_kcat
def test_kcat_produces_lines_acks_all_and_reads_them_back_in_order(
    cluster: LocalCluster,
) -> None:
    create_topic_with_kafka_python(cluster, "kcat-lines", PARTITIONS)
    lines = [f"line-{n:04d}" for n in range(RECORDS)]
    # keyless lines spread over the partitions; kcat exits once every one is acknowledged
    kcat(cluster, "-P", "-t", "kcat-lines", "-X", "acks=all", stdin="\n".join(lines) + "\n")
    read = kcat(cluster, "-C", "-t", "kcat-lines", "-o", "beginning", "-e", "-J")
    received: dict[int, list[str]] = {}
    for message in map(json.loads, read.splitlines()):
        partition_received = received.setdefault(message["partition"], [])
        assert message["offset"] == len(partition_received), "dense offsets, in order"
        partition_received.append(message["payload"])
    assert sorted(line for values in received.values() for line in values) == lines
    for partition_lines in received.values():
        assert partition_lines == sorted(partition_lines), "each partition keeps the send order"


# -- bad input ---------------------------------------------------------------------------------


def connect(cluster: LocalCluster) -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", cluster.nodes[1].client_port), timeout=SOCKET_TIMEOUT_S
    )


def request_frame(api_key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation_id, 4) + b"test"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_answer(sock: socket.socket) -> bytes | None:
    """The next frame's payload, or None once the node closed the connection."""
    prefix = _read_exactly(sock, 4)
    if prefix is None:
        return None
    (size,) = struct.unpack(">i", prefix)
    return _read_exactly(sock, size)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def api_versions_v0_works(cluster: LocalCluster) -> bool:
    """A fresh connection is served: ApiVersions v0 answers error code 0."""
    with connect(cluster) as sock:
        sock.sendall(request_frame(18, 0, 99, b""))
        answer = read_answer(sock)
    assert answer is not None
    correlation_id, error_code = struct.unpack_from(">ih", answer)
    return correlation_id == 99 and error_code == 0


def metadata_v1_body(topic: str) -> bytes:
    encoded = topic.encode()
    return struct.pack(">ih", 1, len(encoded)) + encoded


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(struct.pack(">i", 100) + b"\x00\x03\x00", id="truncated-frame"),
        pytest.param(struct.pack(">i", 200 * 1024 * 1024), id="length-over-maximum"),
        pytest.param(struct.pack(">i", -5), id="negative-length"),
        pytest.param(request_frame(9999, 0, 1, b""), id="unknown-api-key"),
        pytest.param(request_frame(3, 99, 1, b""), id="unsupported-version"),
        pytest.param(request_frame(3, 1, 1, b"\xff\xff\xff\x7f garbage"), id="garbage-body"),
    ],
)
def test_bad_frames_close_only_their_connection(cluster: LocalCluster, sent: bytes) -> None:
    with connect(cluster) as sock:
        sock.sendall(sent)
        if sent.startswith(struct.pack(">i", 100)):
            sock.shutdown(socket.SHUT_WR)  # the rest of the frame never comes
        assert read_answer(sock) is None, "the node closed the connection"
    assert api_versions_v0_works(cluster)


def test_the_listener_counts_requests_by_api_and_connections_closed_for_bad_input(
    cluster: LocalCluster,
) -> None:
    def sample(name: str, labels: str = "") -> float:
        text = urllib.request.urlopen(
            cluster.nodes[1].http_url + "/metrics", timeout=SOCKET_TIMEOUT_S
        ).read()
        for line in text.decode().splitlines():
            if line.startswith(f"{name}{labels} "):
                return float(line.split()[-1])
        return 0.0

    requests_before = sample("kraft_kafka_requests_total", '{api="ApiVersions"}')
    closed_before = sample("kraft_kafka_connections_closed_for_bad_input_total")
    assert api_versions_v0_works(cluster)
    with connect(cluster) as sock:
        sock.sendall(request_frame(9999, 0, 1, b""))  # an API key nobody serves
        assert read_answer(sock) is None
    assert sample("kraft_kafka_requests_total", '{api="ApiVersions"}') >= requests_before + 1
    assert sample("kraft_kafka_request_latency_seconds_count", '{api="ApiVersions"}') >= 1
    wait_for(
        lambda: sample("kraft_kafka_connections_closed_for_bad_input_total") >= closed_before + 1,
        what="the bad connection counted",
    )


def test_an_unsupported_api_versions_version_answers_v0_with_the_supported_list(
    cluster: LocalCluster,
) -> None:
    with connect(cluster) as sock:
        sock.sendall(request_frame(18, 77, 5, b"\x00"))
        answer = read_answer(sock)
    assert answer is not None
    correlation_id, error_code, count = struct.unpack_from(">ihi", answer)
    assert (correlation_id, error_code) == (5, 35)  # UNSUPPORTED_VERSION
    keys = {struct.unpack_from(">hhh", answer, 10 + 6 * n)[0] for n in range(count)}
    assert {0, 1, 2, 3, 18} <= keys


def test_a_produce_with_a_corrupt_batch_answers_corrupt_message(cluster: LocalCluster) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap(cluster), request_timeout_ms=30_000)
    try:
        admin.create_topics([NewTopic("corrupt", num_partitions=1, replication_factor=1)])

        def leader_of_partition() -> int | None:
            [topic] = admin.describe_topics(["corrupt"])
            if not topic["partitions"]:  # the node asked does not know the topic yet
                return None
            leader = int(topic["partitions"][0]["leader_id"])
            return leader if leader >= 0 else None

        leader = wait_for(leader_of_partition, deadline_s=DEADLINE_S, what="a leader")
    finally:
        admin.close()
    batch = bytearray(build_batch([Record(None, b"value", (), 0)]))
    batch[CRC_POSITION] ^= 0xFF
    topic = b"corrupt"
    body = (
        struct.pack(">hhi", -1, 1, 10_000)  # transactional id null, acks 1, timeout
        + struct.pack(">i", 1)
        + struct.pack(">h", len(topic))
        + topic
        + struct.pack(">i", 1)
        + struct.pack(">i", 0)
        + struct.pack(">i", len(batch))
        + bytes(batch)
    )
    port = cluster.nodes[leader].client_port
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(request_frame(0, 3, 7, body))
        answer = read_answer(sock)
    assert answer is not None
    # correlation id, [topics: 1, name, [partitions: 1, index, error code, ...]]
    position = 4 + 4 + 2 + len(topic) + 4 + 4
    (error_code,) = struct.unpack_from(">h", answer, position)
    assert error_code == 2  # CORRUPT_MESSAGE
    assert api_versions_v0_works(cluster)


def test_a_producer_sending_to_a_missing_topic_creates_it(cluster: LocalCluster) -> None:
    """auto.create.topics.enable (on by default, as Kafka): librdkafka's metadata request
    for the topic creates it with the broker defaults (here one partition, one replica)."""
    confluent_kafka = pytest.importorskip("confluent_kafka")
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap(cluster), "acks": "all"})
    delivered: list[tuple[object, int]] = []
    producer.produce(
        "auto-made",
        value=b"first",
        on_delivery=lambda error, message: delivered.append((error, message.offset())),
    )
    assert producer.flush(DEADLINE_S) == 0
    assert delivered == [(None, 0)]
    state = wait_for(
        lambda: partition_state(cluster.nodes[1], "auto-made", 0),
        deadline_s=DEADLINE_S,
        what="auto-made on node 1",
    )
    assert len(state["replicas"]) == 1
