"""Log compaction against real node processes (cleanup.policy=compact, RF 3): every replica's
cleaner keeps the latest record of each key and drops the older ones, offsets do not move,
and unmodified Kafka consumers (librdkafka, kafka-python, aiokafka) and the native Consumer
read the compacted partition from its start to its end: thinned batches, the empty batches
left for runs of obsolete records, and the offsets that records no longer fill."""

from __future__ import annotations

import asyncio
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.log.batch import iter_batches, iter_records
from client.consumer import Consumer
from tests.cluster.dataplane import (
    DATA_PLANE_TIMING,
    create_topic,
    log_bytes,
    partition_dir,
    wait_for_partition,
    wait_until_ready,
)
from tests.cluster.harness import LocalCluster, NodeProcess, wait_for
from tests.cluster.kafka import bootstrap, ready_cluster

pytestmark = pytest.mark.cluster

DEADLINE_S = 60.0
TOPIC = "changelog"
KEYS = 8
UPDATES = 240  # 30 per key
FILLERS = 40  # distinct keys after the updates: they roll the segments the updates are in

Row = tuple[int, bytes, bytes | None]  # offset, key, value


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    config = {**DATA_PLANE_TIMING, "log.cleaner.backoff.ms": "300"}
    with ready_cluster(Path(tmp_path_factory.mktemp("kafka-compaction")), config) as local:
        yield local


def produce(cluster: LocalCluster, pairs: list[tuple[bytes, bytes | None]]) -> list[int]:
    """acks=all, one record per request (so each is its own batch); their offsets."""
    import confluent_kafka

    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap(cluster), "acks": "all", "batch.num.messages": 1}
    )
    offsets: list[int] = []
    errors: list[object] = []

    def on_delivery(error: object, message: object) -> None:
        if error is not None:
            errors.append(error)
        else:
            offsets.append(message.offset())  # type: ignore[attr-defined]

    for key, value in pairs:
        producer.produce(TOPIC, key=key, value=value, partition=0, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(DEADLINE_S) == 0, "every record delivered before the deadline"
    assert not errors, errors
    return sorted(offsets)


def stored_rows(node: NodeProcess, topic: str = TOPIC) -> list[Row]:
    rows: list[Row] = []
    for batch in iter_batches(log_bytes(node, topic)):
        batch.validate(compacted=True)
        rows += [(r.offset, r.key or b"", r.value) for r in iter_records(batch)]
    return rows


def compacted(rows: list[Row], end: int) -> list[Row]:
    """Below `end`, only the latest record of each key."""
    latest = {key: offset for offset, key, _ in rows if offset < end}
    return [row for row in rows if row[0] >= end or latest[row[1]] == row[0]]


def short_of(rows: list[Row], last_offset: int, give_up_at: float) -> bool:
    """A reader goes on until it has the record at last_offset, or the deadline."""
    return (not rows or rows[-1][0] < last_offset) and time.monotonic() < give_up_at


def read_confluent(cluster: LocalCluster, last_offset: int, topic: str = TOPIC) -> list[Row]:
    import confluent_kafka

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap(cluster),
            "group.id": "compaction-reader",  # required by librdkafka; nothing is committed
            "enable.auto.commit": False,
        }
    )
    rows: list[Row] = []
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, 0, 0)])
        give_up_at = time.monotonic() + DEADLINE_S
        while short_of(rows, last_offset, give_up_at):
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            rows.append((message.offset(), message.key(), message.value()))
    finally:
        consumer.close()
    return rows


def read_kafka_python(cluster: LocalCluster, last_offset: int) -> list[Row]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap(cluster), enable_auto_commit=False, group_id=None
    )
    rows: list[Row] = []
    try:
        partition = TopicPartition(TOPIC, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        give_up_at = time.monotonic() + DEADLINE_S
        while short_of(rows, last_offset, give_up_at):
            for messages in consumer.poll(timeout_ms=500).values():
                rows += [(m.offset, m.key, m.value) for m in messages]
    finally:
        consumer.close()
    return rows


def read_aiokafka(cluster: LocalCluster, last_offset: int) -> list[Row]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> list[Row]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(cluster), enable_auto_commit=False)
        await consumer.start()
        rows: list[Row] = []
        try:
            partition = TopicPartition(TOPIC, 0)
            consumer.assign([partition])
            consumer.seek(partition, 0)
            give_up_at = time.monotonic() + DEADLINE_S
            while short_of(rows, last_offset, give_up_at):
                batches = await consumer.getmany(partition, timeout_ms=500)
                for messages in batches.values():
                    rows += [(m.offset, m.key, m.value) for m in messages]
        finally:
            await consumer.stop()
        return rows

    return asyncio.run(run())


def read_native(cluster: LocalCluster, last_offset: int) -> list[Row]:
    servers = [f"127.0.0.1:{node.rpc_port}" for node in cluster.nodes.values()]

    async def run() -> list[Row]:
        rows: list[Row] = []
        async with Consumer(servers, auto_offset_reset="earliest") as consumer:
            consumer.assign([(TOPIC, 0)])
            give_up_at = time.monotonic() + DEADLINE_S
            while short_of(rows, last_offset, give_up_at):
                for record in await consumer.poll(timeout_ms=500):
                    rows.append((record.offset, record.key or b"", record.value))
        return rows

    return asyncio.run(run())


READERS = {
    "confluent-kafka": read_confluent,
    "kafka-python": read_kafka_python,
    "aiokafka": read_aiokafka,
    "native": read_native,
}


@pytest.fixture(scope="module")
def compacted_topic(cluster: LocalCluster) -> tuple[list[Row], int]:
    """The topic once every replica compacted it: (the records as produced, the end of the
    part below which each key must appear once)."""
    configs = {"cleanup.policy": "compact", "segment.bytes": "1024"}
    create_topic(cluster.nodes[1], TOPIC, configs=configs)
    wait_for_partition(cluster, TOPIC, lambda s: len(s["isr"]) == 3, "all in sync")
    updates = [(b"key-%d" % (n % KEYS), b"value-%d" % n) for n in range(UPDATES)]
    updates[-1] = (updates[-1][0], None)  # the last update of its key deletes it
    fillers = [(b"filler-%d" % n, b"f" * 40) for n in range(FILLERS)]
    offsets = produce(cluster, updates + fillers)
    assert offsets == list(range(UPDATES + FILLERS))
    produced = [
        (offset, key, value)
        for offset, (key, value) in zip(offsets, updates + fillers, strict=True)
    ]
    # all updates lie in segments the fillers rolled: every replica's first pass covers them
    expected = compacted(produced, UPDATES)

    def every_replica_compacted() -> bool:
        return all(
            [row for row in stored_rows(node) if row[0] < UPDATES] == expected[:KEYS]
            for node in cluster.running()
        )

    wait_for(every_replica_compacted, deadline_s=DEADLINE_S, what="every replica compacted")
    return produced, UPDATES


def test_every_replica_keeps_the_latest_record_of_each_key_at_its_offset(
    cluster: LocalCluster, compacted_topic: tuple[list[Row], int]
) -> None:
    produced, end = compacted_topic
    for node in cluster.running():
        rows = stored_rows(node)
        below = [row for row in rows if row[0] < end]
        assert len({key for _, key, _ in below}) == len(below) == KEYS, "each key once"
        assert below == compacted(produced, end)[:KEYS]
        assert below[-1] == (UPDATES - 1, b"key-%d" % ((UPDATES - 1) % KEYS), None)
        assert [row for row in rows if row[0] >= end] == [r for r in produced if r[0] >= end]
        assert cleaner_records_removed(node) == UPDATES - KEYS


def cleaner_records_removed(node: NodeProcess) -> float:
    url = f"{node.http_url}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    (line,) = [
        x for x in text.splitlines() if x.startswith("kraft_log_cleaner_records_removed_total ")
    ]
    return float(line.split()[-1])


@pytest.mark.parametrize("reader", list(READERS))
def test_consumers_read_the_compacted_partition_to_its_end(
    cluster: LocalCluster, compacted_topic: tuple[list[Row], int], reader: str
) -> None:
    produced, end = compacted_topic
    rows = READERS[reader](cluster, produced[-1][0])
    assert rows == compacted(produced, end)


def test_a_record_without_a_key_is_refused_as_invalid(
    cluster: LocalCluster, compacted_topic: tuple[list[Row], int]
) -> None:
    """As Kafka: the cleaner could never supersede it. The partition takes the next one."""
    import confluent_kafka

    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap(cluster), "acks": "all", "retries": 0}
    )
    errors: list[Any] = []
    producer.produce(TOPIC, value=b"no key", partition=0, on_delivery=lambda e, _: errors.append(e))
    assert producer.flush(DEADLINE_S) == 0
    assert [error.code() for error in errors] == [confluent_kafka.KafkaError.INVALID_RECORD]
    produced, _ = compacted_topic
    assert produce(cluster, [(b"key-0", b"after the refusal")]) == [produced[-1][0] + 1]


def test_a_replica_that_lost_its_log_copies_the_compacted_one(
    cluster: LocalCluster, compacted_topic: tuple[list[Row], int]
) -> None:
    """SIGKILL a follower and delete its copy: it fetches the leader's compacted batches
    (thinned ones, empty ones) from offset 0 and ends with the same records."""
    produced, end = compacted_topic
    state = wait_for_partition(cluster, TOPIC, lambda s: len(s["isr"]) == 3, "all in sync")
    victim = next(node_id for node_id in cluster.nodes if node_id != state["leader"])
    cluster.kill(victim)
    shutil.rmtree(partition_dir(cluster.nodes[victim], TOPIC, 0))
    cluster.start(victim)
    wait_for_partition(cluster, TOPIC, lambda s: len(s["isr"]) == 3, "the copy back in sync")
    leader = cluster.nodes[state["leader"]]

    def copied() -> bool:
        rows = stored_rows(cluster.nodes[victim])
        below = [row for row in rows if row[0] < end]
        return below == compacted(produced, end)[:KEYS] and rows == stored_rows(leader)

    wait_for(copied, deadline_s=DEADLINE_S, what="the new copy holding the compacted records")


def latest_values(rows: list[Row]) -> dict[bytes, int]:
    """Each key's last value, checking that every key's values rise with their offsets."""
    latest: dict[bytes, int] = {}
    for _, key, value in rows:
        assert value is not None
        number = int(value)
        assert number > latest.get(key, -1), f"{key!r}: {number} after {latest[key]}"
        latest[key] = number
    return latest


def test_each_keys_latest_acknowledged_write_survives_compaction_and_a_leader_kill(
    cluster: LocalCluster,
) -> None:
    """An idempotent producer updates 20 keys while every replica compacts and the leader
    is SIGKILLed halfway: read from the start, every key ends at its last acknowledged
    value or a later one, its values rise with their offsets, and every replica's copy
    ends each key at the same value."""
    import confluent_kafka

    topic = "changelog-failover"
    configs = {"cleanup.policy": "compact", "segment.bytes": "1024", "min.insync.replicas": "2"}
    wait_until_ready(cluster)  # the node an earlier test restarted is registered again
    create_topic(cluster.nodes[1], topic, configs=configs)
    state = wait_for_partition(
        cluster, topic, lambda s: len(s["isr"]) == 3, "all in sync", partition=0
    )
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap(cluster),
            "acks": "all",
            "enable.idempotence": True,
            "batch.num.messages": 1,
        }
    )
    acknowledged: dict[bytes, int] = {}
    failures: list[Any] = []

    def on_delivery(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(error)
            return
        key, number = message.key(), int(message.value())
        acknowledged[key] = max(acknowledged.get(key, -1), number)

    for number in range(600):
        producer.produce(
            topic,
            key=b"k%d" % (number % 20),
            value=b"%d" % number,
            partition=0,
            on_delivery=on_delivery,
        )
        producer.poll(0)
        if number == 300:
            assert producer.flush(DEADLINE_S) == 0
            cluster.kill(state["leader"])
    assert producer.flush(DEADLINE_S) == 0, "every record answered before the deadline"
    assert not failures, failures
    cluster.start(state["leader"])
    wait_for_partition(cluster, topic, lambda s: len(s["isr"]) == 3, "all back in sync")

    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap(cluster), "group.id": "x"})
    try:
        _, end = consumer.get_watermark_offsets(
            confluent_kafka.TopicPartition(topic, 0), timeout=DEADLINE_S
        )
    finally:
        consumer.close()
    latest = latest_values(read_confluent(cluster, end - 1, topic))
    for key, number in acknowledged.items():
        assert latest[key] >= number, f"{key!r}: read {latest[key]}, acknowledged {number}"
    wait_for(
        lambda: all(
            latest_values(stored_rows(node, topic)) == latest for node in cluster.running()
        ),
        deadline_s=DEADLINE_S,
        what="every replica ending each key at the value read",
    )
