"""The idempotent producer against real node processes (issue 6): kafka-python (idempotence
on by default), aiokafka and confluent-kafka (librdkafka) produce with acks=all and every
record is stored exactly once, in order, in batches that carry their producer id. Over a
raw socket: a batch sent twice gets the same offset twice and is stored once, a sequence
gap gets OUT_OF_ORDER_SEQUENCE_NUMBER, an older producer epoch INVALID_PRODUCER_EPOCH,
pipelined produces are checked in the order sent, and a retry is still recognised by a new
leader and after every node restarted. Idempotent confluent-kafka and kafka-python
producers keep producing while the partition leader is SIGKILLed and restarted: nothing
acknowledged is lost, nothing is stored twice. Last, ListOffsets MAX_TIMESTAMP (v7+).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.kafka.apis import ApiKey
from broker.log.batch import Record, RecordBatch, build_batch, iter_batches
from tests.cluster.harness import DeadlineExceeded, LocalCluster, wait_for
from tests.cluster.kafka import bootstrap, ready_cluster
from tests.unit.kafka.helpers import decode_response, encode_request, nested, request

pytestmark = pytest.mark.cluster

RECORDS = 300
PARTITIONS = 3
DEADLINE_S = 60.0
SOCKET_TIMEOUT_S = 10.0
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
FAILOVER_RECORDS = 3000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with ready_cluster(Path(tmp_path_factory.mktemp("kafka-idempotence"))) as local:
        yield local


def values(prefix: str, count: int = RECORDS) -> list[bytes]:
    return [f"{prefix}-{n:05d}".encode() for n in range(count)]


# -- raw requests --------------------------------------------------------------------------------


def call(port: int, api_key: ApiKey, version: int, body: Any, correlation_id: int = 1) -> Any:
    """One request over a fresh connection; the decoded response."""
    payload = encode_request(api_key, version, body, correlation_id)
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        answer = _read_frame(sock)
    return decode_response(api_key, version, answer)


def _read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", _read_exactly(sock, 4))
    return _read_exactly(sock, size)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the node closed the connection"
        data += chunk
    return data


def metadata_leader(cluster: LocalCluster, topic: str, partition: int) -> int | None:
    """The partition's leader as some running node's metadata has it (None: no leader)."""
    node = cluster.running()[0]
    body = request(
        ApiKey.METADATA,
        4,
        topics=(nested(ApiKey.METADATA, 4, "MetadataRequestTopic", name=topic),),
        allow_auto_topic_creation=False,
    )
    answer = call(node.client_port, ApiKey.METADATA, 4, body)
    for found in answer.topics:
        for entry in found.partitions:
            if int(entry.partition_index) == partition and int(entry.leader_id) >= 0:
                return int(entry.leader_id)
    return None


def wait_for_leader(cluster: LocalCluster, topic: str, partition: int = 0) -> int:
    return wait_for(
        lambda: metadata_leader(cluster, topic, partition),
        deadline_s=DEADLINE_S,
        what=f"a leader of {topic}-{partition}",
    )


def create_topic(cluster: LocalCluster, topic: str, partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap(cluster), request_timeout_ms=30_000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=3)])
    finally:
        admin.close()
    for partition in range(partitions):
        wait_for_leader(cluster, topic, partition)


def init_producer_id(port: int) -> tuple[int, int]:
    body = request(
        ApiKey.INIT_PRODUCER_ID,
        1,
        transactional_id=None,
        transaction_timeout=datetime.timedelta(milliseconds=60_000),
    )
    answer = call(port, ApiKey.INIT_PRODUCER_ID, 1, body)
    assert int(answer.error_code) == 0, answer
    return int(answer.producer_id), int(answer.producer_epoch)


def produce_raw(port: int, topic: str, batch: bytes) -> tuple[int, int]:
    """(error code, base offset) of an acks=all Produce v3 of one batch to partition 0."""
    answer = call(port, ApiKey.PRODUCE, 3, produce_body(topic, batch))
    result = answer.responses[0].partition_responses[0]
    return int(result.error_code), int(result.base_offset)


def stored_batches(cluster: LocalCluster, topic: str, partition: int) -> list[RecordBatch]:
    """Every batch of the partition up to its high watermark, fetched from its leader."""
    batches: list[RecordBatch] = []
    offset = 0
    while True:
        leader = wait_for_leader(cluster, topic, partition)
        body = request(
            ApiKey.FETCH,
            4,
            replica_id=-1,
            max_wait=datetime.timedelta(milliseconds=0),
            min_bytes=0,
            max_bytes=8 * 1024 * 1024,
            isolation_level=0,
            topics=(
                nested(
                    ApiKey.FETCH,
                    4,
                    "FetchTopic",
                    topic=topic,
                    partitions=(
                        nested(
                            ApiKey.FETCH,
                            4,
                            "FetchPartition",
                            partition=partition,
                            fetch_offset=offset,
                            partition_max_bytes=4 * 1024 * 1024,
                        ),
                    ),
                ),
            ),
        )
        answer = call(cluster.nodes[leader].client_port, ApiKey.FETCH, 4, body)
        data = answer.responses[0].partitions[0]
        assert int(data.error_code) == 0, data
        records = bytes(data.records or b"")
        if not records:
            return batches
        for batch in iter_batches(records):
            batch = RecordBatch(bytes(batch.buffer))
            if batch.base_offset >= offset:
                batches.append(batch)
            offset = batch.next_offset


def stored_values(batches: list[RecordBatch]) -> list[bytes]:
    from broker.log import iter_records

    return [record.value or b"" for batch in batches for record in iter_records(batch)]


def check_exactly_once_in_order(
    cluster: LocalCluster, topic: str, partitions: int, sent: list[bytes]
) -> None:
    """Every sent value is stored once; within a partition in the order sent; every batch
    carries a producer id (the client did produce idempotently)."""
    position = {value: n for n, value in enumerate(sent)}
    stored: list[bytes] = []
    for partition in range(partitions):
        batches = stored_batches(cluster, topic, partition)
        assert all(batch.producer_id >= 0 for batch in batches), "idempotent batches"
        in_partition = stored_values(batches)
        ranks = [position[value] for value in in_partition]
        assert ranks == sorted(ranks), f"partition {partition} holds the records in order"
        stored.extend(in_partition)
    assert len(stored) == len(set(stored)), "no record is stored twice"
    assert sorted(stored) == sorted(sent), "every record is stored"


# -- the three clients ---------------------------------------------------------------------------


def test_kafka_python_with_default_idempotence_stores_every_record_once_in_order(
    cluster: LocalCluster,
) -> None:
    from kafka import KafkaProducer

    create_topic(cluster, "idem-kp", PARTITIONS)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap(cluster), acks="all", request_timeout_ms=30_000
    )
    sent = values("kp")
    try:
        futures = [
            producer.send("idem-kp", key=str(n % PARTITIONS).encode(), value=value)
            for n, value in enumerate(sent)
        ]
        producer.flush(timeout=DEADLINE_S)
        for future in futures:
            future.get(timeout=DEADLINE_S)
    finally:
        producer.close(timeout=10)
    check_exactly_once_in_order(cluster, "idem-kp", PARTITIONS, sent)


def test_aiokafka_with_idempotence_stores_every_record_once_in_order(
    cluster: LocalCluster,
) -> None:
    from aiokafka import AIOKafkaProducer

    create_topic(cluster, "idem-aio", PARTITIONS)
    sent = values("aio")

    async def produce() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap(cluster),
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=30_000,
        )
        await producer.start()
        try:
            futures = [
                await producer.send("idem-aio", key=str(n % PARTITIONS).encode(), value=value)
                for n, value in enumerate(sent)
            ]
            await asyncio.wait_for(asyncio.gather(*futures), DEADLINE_S)
        finally:
            await producer.stop()

    asyncio.run(produce())
    check_exactly_once_in_order(cluster, "idem-aio", PARTITIONS, sent)


def test_confluent_kafka_with_idempotence_stores_every_record_once_in_order(
    cluster: LocalCluster,
) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    create_topic(cluster, "idem-ck", PARTITIONS)
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap(cluster),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
        }
    )
    sent = values("ck")
    errors: list[object] = []
    for n, value in enumerate(sent):
        producer.produce(
            "idem-ck",
            value=value,
            key=str(n % PARTITIONS).encode(),
            on_delivery=lambda error, _: error is None or errors.append(error),
        )
        producer.poll(0)
    assert producer.flush(DEADLINE_S) == 0, "every record acknowledged"
    assert not errors, errors
    check_exactly_once_in_order(cluster, "idem-ck", PARTITIONS, sent)


# -- raw batches -----------------------------------------------------------------------------------


def idempotent_batch(producer_id: int, epoch: int, sequence: int, count: int, prefix: str) -> bytes:
    records = [Record(None, f"{prefix}-{n}".encode(), (), 0) for n in range(count)]
    return build_batch(
        records, producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence
    )


def test_a_batch_sent_twice_gets_its_offset_twice_and_is_stored_once(
    cluster: LocalCluster,
) -> None:
    create_topic(cluster, "idem-raw", 1)
    port = cluster.nodes[wait_for_leader(cluster, "idem-raw")].client_port
    producer_id, epoch = init_producer_id(port)
    first = idempotent_batch(producer_id, epoch, 0, 3, "a")
    second = idempotent_batch(producer_id, epoch, 3, 2, "b")
    assert produce_raw(port, "idem-raw", first) == (0, 0)
    assert produce_raw(port, "idem-raw", second) == (0, 3)
    assert produce_raw(port, "idem-raw", first) == (0, 0), "the retry gets the first offset"
    assert produce_raw(port, "idem-raw", second) == (0, 3)
    batches = stored_batches(cluster, "idem-raw", 0)
    assert stored_values(batches) == [b"a-0", b"a-1", b"a-2", b"b-0", b"b-1"]
    gap = idempotent_batch(producer_id, epoch, 7, 1, "gap")
    assert produce_raw(port, "idem-raw", gap)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    newer = idempotent_batch(producer_id, epoch + 1, 0, 1, "new")
    assert produce_raw(port, "idem-raw", newer) == (0, 5)
    older = idempotent_batch(producer_id, epoch, 5, 1, "old")
    assert produce_raw(port, "idem-raw", older)[0] == INVALID_PRODUCER_EPOCH
    assert len(stored_values(stored_batches(cluster, "idem-raw", 0))) == 6, "refusals store none"


def produce_body(topic: str, batch: bytes) -> Any:
    """An acks=all Produce v3 of one batch to partition 0."""
    return request(
        ApiKey.PRODUCE,
        3,
        transactional_id=None,
        acks=-1,
        timeout=datetime.timedelta(milliseconds=30_000),
        topic_data=(
            nested(
                ApiKey.PRODUCE,
                3,
                "TopicProduceData",
                name=topic,
                partition_data=(
                    nested(ApiKey.PRODUCE, 3, "PartitionProduceData", index=0, records=batch),
                ),
            ),
        ),
    )


def test_pipelined_produces_are_checked_and_appended_in_the_order_sent(
    cluster: LocalCluster,
) -> None:
    """Every request is on the wire before the first answer: the sequence checks see the
    batches in arrival order (broker/kafka/data.py), so none is refused as out of order."""
    create_topic(cluster, "idem-pipelined", 1)
    port = cluster.nodes[wait_for_leader(cluster, "idem-pipelined")].client_port
    producer_id, epoch = init_producer_id(port)
    count = 40
    frames = b""
    for n in range(count):
        batch = idempotent_batch(producer_id, epoch, n, 1, "p")
        payload = encode_request(ApiKey.PRODUCE, 3, produce_body("idem-pipelined", batch), n)
        frames += struct.pack(">i", len(payload)) + payload
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(frames)
        answers = [decode_response(ApiKey.PRODUCE, 3, _read_frame(sock)) for _ in range(count)]
    results = [
        (
            int(a.responses[0].partition_responses[0].error_code),
            int(a.responses[0].partition_responses[0].base_offset),
        )
        for a in answers
    ]
    assert results == [(0, n) for n in range(count)]


def test_producer_ids_are_unique_across_brokers(cluster: LocalCluster) -> None:
    ids = [init_producer_id(node.client_port)[0] for node in cluster.running() for _ in range(3)]
    assert len(set(ids)) == len(ids), ids


def test_a_transactional_init_producer_id_is_refused(cluster: LocalCluster) -> None:
    body = request(
        ApiKey.INIT_PRODUCER_ID,
        4,
        transactional_id="tx-1",
        transaction_timeout=datetime.timedelta(milliseconds=60_000),
    )
    answer = call(cluster.running()[0].client_port, ApiKey.INIT_PRODUCER_ID, 4, body)
    assert int(answer.error_code) == 53  # TRANSACTIONAL_ID_AUTHORIZATION_FAILED


# -- the leader dies -------------------------------------------------------------------------------


def test_an_idempotent_producer_survives_the_leader_being_killed_without_loss_or_duplicates(
    cluster: LocalCluster,
) -> None:
    """librdkafka retries what the dead leader did not acknowledge at the new leader, which
    holds the producer state (as a follower it kept it): batches the old leader had appended
    and replicated are answered as duplicates, not stored again."""
    confluent_kafka = pytest.importorskip("confluent_kafka")
    create_topic(cluster, "idem-failover", 1)
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap(cluster),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.num.messages": 20,
            "message.timeout.ms": 120_000,
        }
    )
    sent = values("fo", FAILOVER_RECORDS)
    acknowledged: list[bytes] = []
    errors: list[object] = []

    def on_delivery(error: object, message: Any) -> None:
        if error is not None:
            errors.append(error)
        else:
            acknowledged.append(message.value())

    third = FAILOVER_RECORDS // 3

    def produce(batch: list[bytes]) -> None:
        for value in batch:
            producer.produce("idem-failover", value=value, partition=0, on_delivery=on_delivery)
            producer.poll(0)

    def acknowledged_at_least(count: int) -> bool:
        producer.poll(0.05)  # serves the delivery callbacks
        return len(acknowledged) >= count

    produce(sent[:third])
    wait_for(lambda: acknowledged_at_least(third), deadline_s=DEADLINE_S, what="a third acked")
    produce(sent[third : third + 100])  # in flight when the leader dies
    killed = wait_for_leader(cluster, "idem-failover")
    cluster.kill(killed)
    produce(sent[third + 100 : 2 * third])
    wait_for(
        lambda: acknowledged_at_least(2 * third),
        deadline_s=2 * DEADLINE_S,
        what="two thirds acked, by the new leader",
    )
    assert wait_for_leader(cluster, "idem-failover") != killed
    cluster.start(killed)
    produce(sent[2 * third :])
    assert producer.flush(120) == 0, "every record acknowledged in the end"
    assert not errors, errors
    node = cluster.nodes[killed]
    wait_for(lambda: node.get("/v1/status/ready")[0] == 200, what="the killed node back")
    stored = stored_values(stored_batches(cluster, "idem-failover", 0))
    assert len(stored) == len(set(stored)), "no record is stored twice"
    assert set(acknowledged) <= set(stored), "nothing acknowledged is lost"
    assert stored == sent, "every record once, in the order sent"


def test_kafka_python_with_default_idempotence_survives_the_leader_being_killed(
    cluster: LocalCluster,
) -> None:
    """The same with kafka-python, whose producers are idempotent unless told otherwise."""
    from kafka import KafkaProducer

    create_topic(cluster, "idem-failover-kp", 1)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap(cluster),
        acks="all",
        linger_ms=2,
        batch_size=4096,
        request_timeout_ms=10_000,
        delivery_timeout_ms=120_000,
    )
    count = FAILOVER_RECORDS // 2
    third = count // 3
    sent = values("kfo", count)
    try:
        futures = [producer.send("idem-failover-kp", value=v, partition=0) for v in sent[:third]]
        for future in futures:
            future.get(timeout=DEADLINE_S)
        futures += [
            producer.send("idem-failover-kp", value=v, partition=0)
            for v in sent[third : third + 100]
        ]
        killed = wait_for_leader(cluster, "idem-failover-kp")
        cluster.kill(killed)
        futures += [
            producer.send("idem-failover-kp", value=v, partition=0)
            for v in sent[third + 100 : 2 * third]
        ]
        for future in futures:
            future.get(timeout=2 * DEADLINE_S)
        assert wait_for_leader(cluster, "idem-failover-kp") != killed
        cluster.start(killed)
        futures += [
            producer.send("idem-failover-kp", value=v, partition=0) for v in sent[2 * third :]
        ]
        producer.flush(timeout=2 * DEADLINE_S)
        acknowledged = [future.get(timeout=DEADLINE_S) for future in futures]
    finally:
        producer.close(timeout=10)
    assert len(acknowledged) == count
    node = cluster.nodes[killed]
    wait_for(lambda: node.get("/v1/status/ready")[0] == 200, what="the killed node back")
    stored = stored_values(stored_batches(cluster, "idem-failover-kp", 0))
    assert stored == sent, "every record once, in the order sent"


# -- ListOffsets MAX_TIMESTAMP -----------------------------------------------------------------


def test_list_offsets_max_timestamp_names_the_record_with_the_largest_timestamp(
    cluster: LocalCluster,
) -> None:
    """KIP-734 through librdkafka's admin client (ListOffsets v7+): the offset and timestamp
    of the record with the largest timestamp, wherever it is in the log."""
    confluent_kafka = pytest.importorskip("confluent_kafka")
    from confluent_kafka.admin import AdminClient, OffsetSpec

    create_topic(cluster, "max-timestamp", 1)
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap(cluster), "acks": "all", "enable.idempotence": True}
    )
    for timestamp in (1_000, 9_000, 3_000, 9_000, 2_000):
        producer.produce("max-timestamp", value=b"v", partition=0, timestamp=timestamp)
        producer.flush(DEADLINE_S)  # one batch each: the answer is a record inside the log
    admin = AdminClient({"bootstrap.servers": bootstrap(cluster)})
    partition = confluent_kafka.TopicPartition("max-timestamp", 0)
    answers = {}
    for name, spec in (
        ("max", OffsetSpec.max_timestamp()),
        ("earliest", OffsetSpec.earliest()),
        ("latest", OffsetSpec.latest()),
    ):
        result = admin.list_offsets({partition: spec})[partition].result(timeout=DEADLINE_S)
        answers[name] = (result.offset, result.timestamp)
    assert answers["max"] == (1, 9_000), "the first record with the largest timestamp"
    assert answers["earliest"][0] == 0
    assert answers["latest"][0] == 5


# -- state that survives leader changes and restarts (keep last: it restarts the cluster) ---------


def isr_of(cluster: LocalCluster, topic: str, partition: int) -> set[int]:
    node = cluster.running()[0]
    body = request(
        ApiKey.METADATA,
        4,
        topics=(nested(ApiKey.METADATA, 4, "MetadataRequestTopic", name=topic),),
        allow_auto_topic_creation=False,
    )
    answer = call(node.client_port, ApiKey.METADATA, 4, body)
    [entry] = [p for p in answer.topics[0].partitions if int(p.partition_index) == partition]
    return {int(member) for member in entry.isr_nodes}


def test_a_retry_gets_its_original_offset_from_a_new_leader_and_after_a_full_restart(
    cluster: LocalCluster,
) -> None:
    """The follower kept the producer state, so the new leader recognises the retry; after
    every node was SIGKILLed and restarted the state is rebuilt from its snapshot and the log
    after it (an unknown producer would be accepted at any sequence: the gap shows it is
    known)."""
    create_topic(cluster, "idem-survive", 1)
    first_leader = wait_for_leader(cluster, "idem-survive")
    port = cluster.nodes[first_leader].client_port
    producer_id, epoch = init_producer_id(port)
    first = idempotent_batch(producer_id, epoch, 0, 3, "a")
    second = idempotent_batch(producer_id, epoch, 3, 2, "b")
    assert produce_raw(port, "idem-survive", first) == (0, 0)
    assert produce_raw(port, "idem-survive", second) == (0, 3)
    wait_for(
        lambda: isr_of(cluster, "idem-survive", 0) == set(cluster.nodes),
        deadline_s=DEADLINE_S,
        what="every replica in the ISR",
    )

    cluster.kill(first_leader)
    new_leader = wait_for(
        lambda: (leader := metadata_leader(cluster, "idem-survive", 0)) != first_leader and leader,
        deadline_s=DEADLINE_S,
        what="a new leader",
    )
    port = cluster.nodes[new_leader].client_port
    assert produce_raw(port, "idem-survive", second) == (0, 3), "the new leader knows it"
    assert produce_raw(port, "idem-survive", first) == (0, 0)
    third = idempotent_batch(producer_id, epoch, 5, 1, "c")
    assert produce_raw(port, "idem-survive", third) == (0, 5)

    cluster.start(first_leader)
    wait_for(
        lambda: isr_of(cluster, "idem-survive", 0) == set(cluster.nodes),
        deadline_s=DEADLINE_S,
        what="the restarted replica back in the ISR",
    )

    def snapshots_everywhere() -> bool:
        """Every replica wrote a producer snapshot (each checkpoint interval, 5 s)."""
        directories = [n.directory / "data" / "idem-survive-0" for n in cluster.nodes.values()]
        return all(any(directory.glob("*.snapshot")) for directory in directories)

    wait_for(snapshots_everywhere, deadline_s=DEADLINE_S, what="producer snapshots")
    port = cluster.nodes[wait_for_leader(cluster, "idem-survive")].client_port
    fourth = idempotent_batch(producer_id, epoch, 6, 1, "d")  # after the snapshot: replayed
    assert produce_raw(port, "idem-survive", fourth) == (0, 6)
    for node_id in list(cluster.nodes):
        cluster.kill(node_id)
    for node_id in list(cluster.nodes):
        cluster.start(node_id)
    wait_for(
        lambda: all(n.get("/v1/status/ready")[0] == 200 for n in cluster.running()),
        deadline_s=DEADLINE_S,
        what="every node ready again",
    )

    def retried() -> tuple[int, int] | None:
        leader = metadata_leader(cluster, "idem-survive", 0)
        if leader is None:
            return None
        answer = produce_raw(cluster.nodes[leader].client_port, "idem-survive", third)
        return answer if answer[0] == 0 else None  # NOT_LEADER while leadership settles

    assert wait_for(retried, deadline_s=DEADLINE_S, what="the retry answered") == (0, 5)
    port = cluster.nodes[wait_for_leader(cluster, "idem-survive")].client_port
    assert produce_raw(port, "idem-survive", fourth) == (0, 6)
    gap = idempotent_batch(producer_id, epoch, 9, 1, "gap")
    assert produce_raw(port, "idem-survive", gap)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    expected = [b"a-0", b"a-1", b"a-2", b"b-0", b"b-1", b"c-0", b"d-0"]
    # A leader elected just now serves consumers up to its high watermark once its followers
    # fetched in its epoch, and leadership may still move (back to the preferred replica)
    # between two reads: read until the records are exactly these, then compare what was
    # read last (a duplicate or a lost record never matches, and shows in the diff).
    last_read: list[bytes] = []

    def exactly_expected() -> bool:
        last_read[:] = stored_values(stored_batches(cluster, "idem-survive", 0))
        return last_read == expected

    with contextlib.suppress(DeadlineExceeded):
        wait_for(exactly_expected, deadline_s=DEADLINE_S, what="every record, once")
    assert last_read == expected
