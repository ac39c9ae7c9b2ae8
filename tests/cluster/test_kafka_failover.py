"""Failover with unmodified Kafka clients against real node processes (issue 6): an idempotent
acks=all producer writes unique values to a 3-partition RF=3 topic while a consumer group of
two members reads and commits; meanwhile the node leading partition 0 and the node
coordinating the group are SIGKILLed, one at a time, and restarted (when one node is both,
another node leading a partition is the second victim; the group id is picked so that each
case is tested on purpose). In the end:

- every acknowledged value is stored exactly once (the partitions are read back in full);
- the group has read every acknowledged value; a value read twice is counted, not refused
  (a rebalance before a commit hands records out again), and every read matches what is
  stored at its offset (no consumer saw a record the log later dropped);
- the group's committed offsets are the partitions' log end offsets.

kafka-python consumers validate their position with OffsetForLeaderEpoch after each leader
change (KIP-320) and stop fetching a partition until it is answered: reading everything
shows broker/kafka/epochs.py at work. Last, the OffsetForLeaderEpoch answers themselves
across a leader change, over raw requests.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from broker.kafka.apis import ApiKey
from broker.kafka.errors import KafkaError
from broker.log import iter_records
from broker.log.batch import Record, build_batch
from tests.cluster.harness import LocalCluster, wait_for
from tests.cluster.kafka import bootstrap, ready_cluster
from tests.cluster.test_kafka_groups import (
    AiokafkaWorker,
    ConfluentWorker,
    KafkaPythonWorker,
    Worker,
    find_coordinator,
    kafka_call,
    received,
    start_workers,
)
from tests.cluster.test_kafka_idempotence import (
    create_topic,
    metadata_leader,
    produce_raw,
    stored_batches,
)
from tests.unit.kafka.helpers import nested

pytestmark = pytest.mark.cluster

PARTITIONS = 3
RECORDS = 1200
CHUNKS = 4  # one before the first kill, one in flight at each kill, one after
DEADLINE_S = 60.0
MAX_GROUP_CANDIDATES = 200  # group ids tried for a coordinator where the test wants it

Stored = dict[tuple[int, int], bytes]  # (partition, offset) -> value


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with ready_cluster(
        Path(tmp_path_factory.mktemp("kafka-failover")),
        {"group.initial.rebalance.delay.ms": "1500"},
    ) as local:
        yield local


# -- idempotent producers, driven from the test's thread ----------------------------------------


class Producer(Protocol):
    def send(self, values: list[bytes]) -> None:
        """Sends each value to partition n % PARTITIONS, n its place in the whole run."""

    def acknowledged(self) -> list[bytes]:
        """The values acknowledged so far (serves the client's callbacks)."""

    def close(self) -> list[object]:
        """Flushes, closes; the delivery errors seen."""


class ConfluentProducer:
    def __init__(self, cluster: LocalCluster, topic: str) -> None:
        import confluent_kafka

        self.topic = topic
        self.sent = 0
        self.done: list[bytes] = []
        self.errors: list[object] = []
        self.client = confluent_kafka.Producer(
            {
                "bootstrap.servers": bootstrap(cluster),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 2,
                "batch.num.messages": 20,
                "message.timeout.ms": 120_000,
            }
        )

    def _delivered(self, error: object, message: Any) -> None:
        if error is not None:
            self.errors.append(error)
        else:
            self.done.append(message.value())

    def send(self, values: list[bytes]) -> None:
        for value in values:
            partition = self.sent % PARTITIONS
            self.sent += 1
            self.client.produce(
                self.topic, value=value, partition=partition, on_delivery=self._delivered
            )
            self.client.poll(0)

    def acknowledged(self) -> list[bytes]:
        self.client.poll(0.05)
        return list(self.done)

    def close(self) -> list[object]:
        assert self.client.flush(2 * DEADLINE_S) == 0, "every record acknowledged in the end"
        return self.errors


class KafkaPythonProducer:
    def __init__(self, cluster: LocalCluster, topic: str) -> None:
        from kafka import KafkaProducer

        self.topic = topic
        self.sent = 0
        self.done: list[bytes] = []
        self.errors: list[object] = []
        self.client = KafkaProducer(
            bootstrap_servers=bootstrap(cluster),
            acks="all",  # idempotent: kafka-python's default
            linger_ms=2,
            batch_size=4096,
            request_timeout_ms=10_000,
            delivery_timeout_ms=120_000,
        )

    def send(self, values: list[bytes]) -> None:
        for value in values:
            partition = self.sent % PARTITIONS
            self.sent += 1
            future = self.client.send(self.topic, value=value, partition=partition)
            future.add_callback(lambda _, value=value: self.done.append(value))
            future.add_errback(self.errors.append)

    def acknowledged(self) -> list[bytes]:
        return list(self.done)

    def close(self) -> list[object]:
        try:
            self.client.flush(timeout=2 * DEADLINE_S)
        finally:
            self.client.close(timeout=10)
        return self.errors


PRODUCERS: dict[str, type[ConfluentProducer] | type[KafkaPythonProducer]] = {
    "confluent-kafka": ConfluentProducer,
    "kafka-python": KafkaPythonProducer,
}


# -- the cluster's view ------------------------------------------------------------------------


def coordinator_of(cluster: LocalCluster, group: str, not_on: int | None = None) -> int | None:
    """The group's coordinator as a running node answers (None: not known, or still `not_on`)."""
    for node in cluster.running():
        found = find_coordinator(node.client_port, group)
        if found is not None and found != not_on:
            return found
    return None


def leaders(cluster: LocalCluster, topic: str) -> dict[int, int | None]:
    return {p: metadata_leader(cluster, topic, p) for p in range(PARTITIONS)}


def another_leader(cluster: LocalCluster, topic: str, not_node: int) -> int:
    """A node other than `not_node` that leads a partition of the topic (preferred leaders
    spread the topic's partitions over the nodes)."""
    current = leaders(cluster, topic).values()
    others = [leader for leader in current if leader is not None and leader != not_node]
    assert others, f"node {not_node} leads every partition of {topic}"
    return others[0]


def committed_offsets(cluster: LocalCluster, group: str, topic: str) -> dict[int, int] | None:
    """The group's committed offsets as its coordinator answers OffsetFetch (None: no answer)."""
    coordinator = coordinator_of(cluster, group)
    if coordinator is None:
        return None
    wanted = nested(
        ApiKey.OFFSET_FETCH,
        7,
        "OffsetFetchRequestTopic",
        name=topic,
        partition_indexes=tuple(range(PARTITIONS)),
    )
    port = cluster.nodes[coordinator].client_port
    body = kafka_call(port, ApiKey.OFFSET_FETCH, 7, group_id=group, topics=(wanted,))
    if int(body.error_code) != 0:
        return None
    return {
        int(p.partition_index): int(p.committed_offset) for t in body.topics for p in t.partitions
    }


def settled(cluster: LocalCluster) -> bool:
    """Every partition of every topic (__consumer_offsets too) is led by its preferred
    replica with every replica in sync: the controller moves no leader until a node dies."""
    port = cluster.running()[0].client_port
    body = kafka_call(port, ApiKey.METADATA, 4, topics=None, allow_auto_topic_creation=False)
    partitions = [p for t in body.topics for p in t.partitions]
    return bool(partitions) and all(
        int(p.leader_id) == int(p.replica_nodes[0])
        and {int(n) for n in p.isr_nodes} == set(cluster.nodes)
        for p in partitions
    )


def group_placed(cluster: LocalCluster, topic: str, prefix: str, coinciding: bool) -> str:
    """A group id whose coordinator is (coinciding) or is not the leader of partition 0:
    both cases of the scenario, on purpose rather than by chance of the group id's hash."""
    leader = metadata_leader(cluster, topic, 0)
    port = cluster.running()[0].client_port
    for n in range(MAX_GROUP_CANDIDATES):
        group = f"{prefix}-{n}"
        if (find_coordinator(port, group) == leader) == coinciding:
            return group
    raise AssertionError(f"no group id coordinated {'on' if coinciding else 'off'} node {leader}")


def stored(cluster: LocalCluster, topic: str) -> tuple[Stored, dict[int, int]]:
    """Every record of every partition read back from its leader, and each log end offset."""
    values: Stored = {}
    ends: dict[int, int] = {}
    for partition in range(PARTITIONS):
        ends[partition] = 0
        for batch in stored_batches(cluster, topic, partition):
            assert batch.producer_id >= 0, "the producer was idempotent"
            for record in iter_records(batch):
                values[(partition, record.offset)] = record.value or b""
            ends[partition] = batch.next_offset
    return values, ends


def shared(workers: list[Worker]) -> bool:
    """Each member has partitions and together they have each exactly once."""
    if any(not worker.assignment for worker in workers):
        return False
    every = sorted(p for worker in workers for p in worker.assignment)
    return every == list(range(PARTITIONS))


def check_workers(workers: list[Worker]) -> None:
    for worker in workers:
        assert worker.error is None, f"{worker.name}: {worker.error!r}"


# -- the scenario ----------------------------------------------------------------------------


def kill_and_restart(
    cluster: LocalCluster, victim: int, topic: str, group: str, producer: Producer, sent: int
) -> None:
    """SIGKILLs `victim` while records are in flight; waits until its partitions and the group
    have moved elsewhere and what was sent is acknowledged; restarts it and waits until every
    replica is back in every ISR (so the next kill never takes the last in-sync copy)."""
    led = {p for p, leader in leaders(cluster, topic).items() if leader == victim}
    cluster.kill(victim)
    wait_for(
        lambda: all(
            leader is not None and leader != victim
            for p, leader in leaders(cluster, topic).items()
            if p in led
        ),
        deadline_s=DEADLINE_S,
        what=f"new leaders for the partitions node {victim} led",
    )
    wait_for(
        lambda: coordinator_of(cluster, group, not_on=victim),
        deadline_s=DEADLINE_S,
        what="a live coordinator",
    )
    wait_for(
        lambda: len(producer.acknowledged()) >= sent,
        deadline_s=DEADLINE_S,
        what="what was in flight acknowledged by the new leaders",
    )
    cluster.start(victim)
    wait_for(
        lambda: cluster.nodes[victim].get("/v1/status/ready")[0] == 200,
        deadline_s=DEADLINE_S,
        what=f"node {victim} back",
    )
    wait_for(
        lambda: settled(cluster),
        deadline_s=DEADLINE_S,
        what=f"node {victim} back in every ISR and leading what it prefers to lead",
    )


def run_failover(
    cluster: LocalCluster,
    producer_kind: str,
    worker_kind: type[Worker],
    name: str,
    *,
    coinciding: bool,
) -> None:
    topic = f"failover-{name}"
    create_topic(cluster, topic, PARTITIONS)
    wait_for(lambda: settled(cluster), deadline_s=DEADLINE_S, what="leaders settled")
    group = group_placed(cluster, topic, f"{topic}-group", coinciding)
    values = [f"{name}-{n:05d}".encode() for n in range(RECORDS)]
    size = RECORDS // CHUNKS
    chunks = [values[n * size : (n + 1) * size] for n in range(CHUNKS)]
    started = time.monotonic()
    workers = start_workers(cluster, worker_kind, topic, group, [f"{name}-1", f"{name}-2"])
    producer: Producer = PRODUCERS[producer_kind](cluster, topic)
    victims: list[int] = []
    try:
        wait_for(lambda: shared(workers), deadline_s=DEADLINE_S, what="the group formed")
        producer.send(chunks[0])
        wait_for(
            lambda: len(producer.acknowledged()) >= size,
            deadline_s=DEADLINE_S,
            what="the first chunk acknowledged",
        )
        first = wait_for(
            lambda: metadata_leader(cluster, topic, 0), deadline_s=DEADLINE_S, what="leader"
        )
        coordinator = wait_for(
            lambda: coordinator_of(cluster, group), deadline_s=DEADLINE_S, what="coordinator"
        )
        assert (coordinator == first) == coinciding, "placed by group_placed, nothing moved"
        producer.send(chunks[1])
        kill_and_restart(cluster, first, topic, group, producer, 2 * size)
        victims.append(first)
        # the same node led partition 0 and the group: another node leading a partition dies
        second = another_leader(cluster, topic, first) if coordinator == first else coordinator
        producer.send(chunks[2])
        kill_and_restart(cluster, second, topic, group, producer, 3 * size)
        victims.append(second)
        producer.send(chunks[3])
        errors = producer.close()
        assert not errors, errors
        acknowledged = producer.acknowledged()
        assert sorted(acknowledged) == sorted(values), "every value acknowledged once"

        def read_everything() -> bool:
            check_workers(workers)
            return set(acknowledged) <= {value for _, _, value in received(workers)}

        wait_for(read_everything, deadline_s=DEADLINE_S, what="every value read by the group")
        records, ends = stored(cluster, topic)
        wait_for(
            lambda: committed_offsets(cluster, group, topic) == ends,
            deadline_s=DEADLINE_S,
            what=f"the group's commits at the log end offsets {ends}",
        )
    finally:
        for worker in workers:
            worker.stop()
    # stored exactly once
    counts = Counter(records.values())
    assert [v for v, n in counts.items() if n > 1] == [], "no value is stored twice"
    assert set(counts) == set(values), "every acknowledged value is stored, and nothing else"
    # read at least once, each read what is stored at its offset
    reads = received(workers)
    for partition, offset, value in reads:
        assert records.get((partition, offset)) == value, f"read {partition}/{offset}"
    duplicates = len(reads) - len({(p, o) for p, o, _ in reads})
    print(
        f"{name}: killed {victims} (coordinator first: {coordinator}); {len(records)} stored, "
        f"{len(reads)} read, {duplicates} read twice; {time.monotonic() - started:.1f} s"
    )


def test_confluent_producer_and_kafka_python_group_survive_leader_and_coordinator_kills(
    cluster: LocalCluster,
) -> None:
    """The leader of partition 0 dies, then (on another node) the group's coordinator."""
    pytest.importorskip("confluent_kafka")
    run_failover(cluster, "confluent-kafka", KafkaPythonWorker, "ck-kp", coinciding=False)


def test_kafka_python_producer_and_group_survive_a_node_leading_both_then_the_next_leader(
    cluster: LocalCluster,
) -> None:
    """One node leads partition 0 and coordinates the group; it dies, then another leader:
    kafka-python consumers validate their position after each leader change."""
    run_failover(cluster, "kafka-python", KafkaPythonWorker, "kp-kp", coinciding=True)


def test_kafka_python_producer_and_confluent_group_survive_leader_and_coordinator_kills(
    cluster: LocalCluster,
) -> None:
    pytest.importorskip("confluent_kafka")
    run_failover(cluster, "kafka-python", ConfluentWorker, "kp-ck", coinciding=True)


def test_confluent_producer_and_aiokafka_group_survive_leader_and_coordinator_kills(
    cluster: LocalCluster,
) -> None:
    """aiokafka's heartbeat treats COORDINATOR_LOAD_IN_PROGRESS as fatal: a coordinator
    still loading the group answers heartbeats NONE, as Kafka does."""
    pytest.importorskip("confluent_kafka")
    run_failover(cluster, "confluent-kafka", AiokafkaWorker, "ck-aio", coinciding=False)


# -- OffsetForLeaderEpoch across a leader change, over raw requests ---------------------------


def leader_and_epoch(cluster: LocalCluster, topic: str) -> tuple[int, int] | None:
    """(leader, leader epoch) of partition 0 as a running node's Metadata v9 has it."""
    wanted = nested(ApiKey.METADATA, 9, "MetadataRequestTopic", name=topic)
    port = cluster.running()[0].client_port
    body = kafka_call(
        port,
        ApiKey.METADATA,
        9,
        topics=(wanted,),
        allow_auto_topic_creation=False,
        include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False,
    )
    [partition] = [p for p in body.topics[0].partitions if int(p.partition_index) == 0]
    leader = int(partition.leader_id)
    return None if leader < 0 else (leader, int(partition.leader_epoch))


def end_offset(
    cluster: LocalCluster, node: int, topic: str, current_epoch: int, epoch: int
) -> tuple[int, int, int]:
    """(error code, leader epoch, end offset) of an OffsetForLeaderEpoch v4 for partition 0."""
    api = ApiKey.OFFSET_FOR_LEADER_EPOCH
    wanted = nested(
        api,
        4,
        "OffsetForLeaderTopic",
        topic=topic,
        partitions=(
            nested(
                api,
                4,
                "OffsetForLeaderPartition",
                partition=0,
                current_leader_epoch=current_epoch,
                leader_epoch=epoch,
            ),
        ),
    )
    body = kafka_call(cluster.nodes[node].client_port, api, 4, replica_id=-1, topics=(wanted,))
    [answer] = body.topics[0].partitions
    return int(answer.error_code), int(answer.leader_epoch), int(answer.end_offset)


def produce_values(cluster: LocalCluster, topic: str, count: int) -> int:
    """One acks=all batch of `count` records to partition 0 (retried while leadership
    moves); its base offset."""
    batch = build_batch([Record(None, b"x", (), 0) for _ in range(count)])

    def attempt() -> int | None:
        found = leader_and_epoch(cluster, topic)
        if found is None:
            return None
        code, base_offset = produce_raw(cluster.nodes[found[0]].client_port, topic, batch)
        return base_offset + 1 if code == 0 else None  # +1: offset 0 is truthy this way

    return wait_for(attempt, deadline_s=DEADLINE_S, what="a produce acknowledged") - 1


def test_offset_for_leader_epoch_names_where_each_epoch_ended_after_a_leader_change(
    cluster: LocalCluster,
) -> None:
    """The answers kafka-python and librdkafka validate their positions with: the new leader
    knows where the old epoch ended and that its own runs to the log end; a consumer with an
    old or a future epoch is fenced; only the leader answers."""
    topic = "epochs-raw"
    create_topic(cluster, topic, 1)
    wait_for(lambda: settled(cluster), deadline_s=DEADLINE_S, what="leaders settled")
    assert produce_values(cluster, topic, 10) == 0
    first, first_epoch = wait_for(
        lambda: leader_and_epoch(cluster, topic), deadline_s=DEADLINE_S, what="leader"
    )
    follower = next(node for node in cluster.nodes if node != first)
    assert end_offset(cluster, first, topic, first_epoch, first_epoch) == (0, first_epoch, 10)
    assert end_offset(cluster, first, topic, -1, first_epoch + 1) == (0, -1, -1)
    future = end_offset(cluster, first, topic, first_epoch + 1, first_epoch)
    assert future[0] == KafkaError.unknown_leader_epoch
    not_leader = end_offset(cluster, follower, topic, first_epoch, first_epoch)
    assert not_leader[0] == KafkaError.not_leader_or_follower
    unknown = end_offset(cluster, first, "no-such-topic", -1, 0)
    assert unknown[0] == KafkaError.unknown_topic_or_partition

    cluster.kill(first)
    try:
        second, second_epoch = wait_for(
            lambda: (found := leader_and_epoch(cluster, topic)) and found[0] != first and found,
            deadline_s=DEADLINE_S,
            what="a new leader",
        )
        assert second_epoch > first_epoch
        assert produce_values(cluster, topic, 5) == 10
        assert end_offset(cluster, second, topic, second_epoch, first_epoch) == (
            0,
            first_epoch,
            10,
        ), "the old epoch ended where the new one starts"
        assert end_offset(cluster, second, topic, second_epoch, second_epoch) == (
            0,
            second_epoch,
            15,
        ), "the current epoch runs to the log end"
        stale = end_offset(cluster, second, topic, first_epoch, first_epoch)
        assert stale[0] == KafkaError.fenced_leader_epoch
    finally:
        cluster.start(first)
        wait_for(lambda: settled(cluster), deadline_s=DEADLINE_S, what="node back, settled")
