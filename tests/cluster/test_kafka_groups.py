"""Consumer groups with unmodified Kafka clients against real node processes (issue 6):
kafka-python, aiokafka and confluent-kafka (librdkafka) consumers form a group on a
six-partition RF=3 topic, get every partition exactly once, take over the partitions of a
member that leaves, commit, and a restarted group resumes from the committed offsets: no
record committed before is read again, none is skipped. Then committed offsets survive a
SIGKILL of the group's coordinator: another broker becomes coordinator and answers
OffsetFetch with them.

Each consumer runs in its own thread (none of the clients may be shared across threads) and
commits synchronously after each batch it polled, so at a rebalance everything it read is
committed.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.kafka.apis import ApiKey
from tests.cluster.harness import LocalCluster, wait_for
from tests.cluster.kafka import bootstrap, ready_cluster
from tests.unit.kafka.helpers import decode_response, encode_request, nested, request

pytestmark = pytest.mark.cluster

PARTITIONS = 6
RECORDS_PER_PHASE = 120
DEADLINE_S = 90.0
SOCKET_TIMEOUT_S = 10.0
POLL_S = 0.2
SESSION_TIMEOUT_MS = 10_000

Received = tuple[int, int, bytes]  # partition, offset, value


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with ready_cluster(
        Path(tmp_path_factory.mktemp("kafka-groups")), {"group.initial.rebalance.delay.ms": "1500"}
    ) as local:
        yield local


def create_topic(cluster: LocalCluster, topic: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap(cluster), request_timeout_ms=30_000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3)])
        wait_for(lambda: topic in admin.list_topics(), deadline_s=DEADLINE_S, what=topic)
    finally:
        admin.close()


def produce(cluster: LocalCluster, topic: str, prefix: str) -> set[Received]:
    """RECORDS_PER_PHASE records spread over every partition, acks=all; what was stored."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap(cluster),
        acks="all",
        enable_idempotence=False,  # InitProducerId is not served on this branch
        retries=10,
        request_timeout_ms=30_000,
    )
    try:
        futures = [
            (value, producer.send(topic, value=value, partition=n % PARTITIONS))
            for n in range(RECORDS_PER_PHASE)
            if (value := f"{prefix}-{n:04d}".encode())
        ]
        producer.flush(timeout=DEADLINE_S)
        stored = set()
        for value, future in futures:
            metadata = future.get(timeout=DEADLINE_S)
            stored.add((metadata.partition, metadata.offset, value))
        return stored
    finally:
        producer.close(timeout=10)


# -- one consumer per thread, whatever the client ----------------------------------------------


class Worker(threading.Thread):
    """Polls in its own thread, records what it reads, commits after every batch; stop()
    commits what is left and leaves the group (close)."""

    def __init__(self, cluster: LocalCluster, topic: str, group: str, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.bootstrap = bootstrap(cluster)
        self.topic = topic
        self.group = group
        self.received: list[Received] = []
        self.assignment: frozenset[int] = frozenset()
        self.committed: dict[int, int] = {}  # partition -> offset of its last acknowledged commit
        self.commit_failures: list[str] = []
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            self.consume()
        except BaseException as error:  # reported by stop()
            self.error = error
        finally:
            self.stopped.set()

    def consume(self) -> None:
        raise NotImplementedError

    def read(self, records: list[Received]) -> dict[int, int]:
        """Notes a polled batch; the offsets to commit: each partition's next offset."""
        self.received += records
        positions: dict[int, int] = {}
        for partition, offset, _ in records:
            positions[partition] = max(positions.get(partition, 0), offset + 1)
        return positions

    def stop(self) -> None:
        self.stopping.set()
        assert self.stopped.wait(DEADLINE_S), f"{self.name} did not stop"
        self.join(timeout=DEADLINE_S)
        if self.error is not None:
            raise AssertionError(f"{self.name} failed: {self.error!r}") from self.error


class KafkaPythonWorker(Worker):
    def consume(self) -> None:
        from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
        from kafka.errors import CommitFailedError, KafkaError

        consumer = KafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1000,
            max_poll_records=40,
        )
        try:
            while not self.stopping.is_set():
                batch = consumer.poll(timeout_ms=int(POLL_S * 1000))
                positions = self.read(
                    [(r.partition, r.offset, r.value) for rs in batch.values() for r in rs]
                )
                if positions:
                    offsets = {
                        TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                        for p, o in positions.items()
                    }
                    try:
                        consumer.commit(offsets)
                        self.committed.update(positions)
                    except (CommitFailedError, KafkaError) as error:
                        self.commit_failures.append(repr(error))
                self.assignment = frozenset(tp.partition for tp in consumer.assignment())
        finally:
            consumer.close(autocommit=False)


class AiokafkaWorker(Worker):
    def consume(self) -> None:
        asyncio.run(self._consume())

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.errors import CommitFailedError, KafkaError

        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1000,
            max_poll_records=40,
        )
        await consumer.start()
        try:
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=int(POLL_S * 1000))
                positions = self.read(
                    [(r.partition, r.offset, r.value) for rs in batch.values() for r in rs]
                )
                if positions:
                    offsets = {TopicPartition(self.topic, p): o for p, o in positions.items()}
                    try:
                        await consumer.commit(offsets)
                        self.committed.update(positions)
                    except (CommitFailedError, KafkaError) as error:
                        self.commit_failures.append(repr(error))
                self.assignment = frozenset(tp.partition for tp in consumer.assignment())
        finally:
            await consumer.stop()


class ConfluentWorker(Worker):
    instance_id: str | None = None  # group.instance.id: a static member (KIP-345)
    revocations = 0  # rebalances that took partitions from this member

    def consume(self) -> None:
        import confluent_kafka

        settings = {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "client.id": self.name,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": 1000,
        }
        if self.instance_id is not None:
            settings["group.instance.id"] = self.instance_id
        consumer = confluent_kafka.Consumer(settings)

        def on_revoke(_: object, partitions: list[Any]) -> None:
            if partitions:
                self.revocations += 1

        consumer.subscribe([self.topic], on_revoke=on_revoke)
        try:
            while not self.stopping.is_set():
                messages = consumer.consume(num_messages=40, timeout=POLL_S)
                read = [m for m in messages if m.error() is None]
                positions = self.read([(m.partition(), m.offset(), m.value()) for m in read])
                if positions:
                    offsets = [
                        confluent_kafka.TopicPartition(self.topic, p, o)
                        for p, o in positions.items()
                    ]
                    try:
                        answered = consumer.commit(offsets=offsets, asynchronous=False)
                        if any(tp.error is not None for tp in answered or []):
                            raise confluent_kafka.KafkaException(answered[0].error)
                        self.committed.update(positions)
                    except confluent_kafka.KafkaException as error:
                        self.commit_failures.append(repr(error))
                self.assignment = frozenset(tp.partition for tp in consumer.assignment())
        finally:
            consumer.close()


WORKERS: dict[str, type[Worker]] = {
    "kafka-python": KafkaPythonWorker,
    "aiokafka": AiokafkaWorker,
    "confluent-kafka": ConfluentWorker,
}


def start_workers(
    cluster: LocalCluster, kind: type[Worker], topic: str, group: str, names: list[str]
) -> list[Worker]:
    workers = [kind(cluster, topic, group, name) for name in names]
    for worker in workers:
        worker.start()
    return workers


def assigned_exactly_once(workers: list[Worker]) -> bool:
    """Every partition is assigned to exactly one worker, and each worker has some."""
    assignments = [worker.assignment for worker in workers]
    if any(not assignment for assignment in assignments):
        return False
    every = [p for assignment in assignments for p in assignment]
    return sorted(every) == list(range(PARTITIONS))


def received(workers: list[Worker]) -> list[Received]:
    return [record for worker in workers for record in worker.received]


def wait_until_read(workers: list[Worker], expected: set[Received], what: str) -> None:
    def done() -> bool:
        for worker in workers:
            assert worker.error is None, f"{worker.name}: {worker.error!r}"
        return expected <= set(received(workers))

    wait_for(done, deadline_s=DEADLINE_S, what=what)


# -- a group forms, rebalances, commits and resumes --------------------------------------------


@pytest.mark.parametrize("client", list(WORKERS))
def test_group_shares_partitions_takes_over_a_leaver_and_resumes_from_commits(
    cluster: LocalCluster, client: str
) -> None:
    if client == "confluent-kafka":
        pytest.importorskip("confluent_kafka")
    kind = WORKERS[client]
    topic, group = f"{client}-events", f"{client}-group"
    create_topic(cluster, topic)
    phase_a = produce(cluster, topic, "a")

    workers = start_workers(cluster, kind, topic, group, [f"{client}-{n}" for n in (1, 2, 3)])
    try:
        wait_for(
            lambda: assigned_exactly_once(workers),
            deadline_s=DEADLINE_S,
            what="every partition assigned to exactly one of three members",
        )
        wait_until_read(workers, phase_a, "phase a read by the group")
        leaver, survivors = workers[2], workers[:2]
        leaver_partitions = leaver.assignment
        marks = [len(worker.received) for worker in survivors]
        committed_before = group_commits(survivors)
        leaver.stop()  # it committed after each batch; close() leaves the group
        wait_for(
            lambda: (
                assigned_exactly_once(survivors)
                and leaver_partitions <= survivors[0].assignment | survivors[1].assignment
            ),
            deadline_s=DEADLINE_S,
            what="the two others take over the leaver's partitions",
        )
        phase_b = produce(cluster, topic, "b")
        wait_until_read(survivors, phase_b, "phase b read by the two left")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.stop()
    # the members that took over resumed exactly at the last commit of each partition
    taken_over = [
        record
        for worker, mark in zip(survivors, marks, strict=True)
        for record in worker.received[mark:]
        if record[0] in leaver_partitions
    ]
    for partition in leaver_partitions:
        start = max(leaver.committed.get(partition, 0), committed_before.get(partition, 0))
        assert resumed_at(taken_over, partition) == start, f"partition {partition}"
    first_session = group_commits(workers)
    assert sorted(first_session) == list(range(PARTITIONS)), "every partition committed"

    phase_c = produce(cluster, topic, "c")
    restarted = start_workers(cluster, kind, topic, group, [f"{client}-r1", f"{client}-r2"])
    try:
        wait_for(
            lambda: assigned_exactly_once(restarted),
            deadline_s=DEADLINE_S,
            what="the restarted group shares the partitions",
        )
        wait_until_read(restarted, phase_c, "phase c read by the restarted group")
    finally:
        for worker in restarted:
            worker.stop()
    again = received(restarted)
    for partition in range(PARTITIONS):
        assert resumed_at(again, partition) == first_session[partition], f"partition {partition}"
    if not any(worker.commit_failures for worker in restarted):
        # every commit went through: no rebalance can have handed a record out twice
        assert len({(p, o) for p, o, _ in again}) == len(again), "a record read twice"


def group_commits(workers: list[Worker]) -> dict[int, int]:
    """partition -> the group's committed offset, as its members saw their commits acknowledged."""
    commits: dict[int, int] = {}
    for worker in workers:
        for partition, offset in worker.committed.items():
            commits[partition] = max(commits.get(partition, 0), offset)
    return commits


def resumed_at(records: list[Received], partition: int) -> int:
    """Where reading of a partition started, after checking no offset from there on was
    skipped."""
    offsets = sorted({offset for p, offset, _ in records if p == partition})
    assert offsets, f"nothing read from partition {partition}"
    assert offsets == list(range(offsets[0], offsets[-1] + 1)), f"partition {partition} skipped"
    return offsets[0]


# -- committed offsets survive the loss of the coordinator -------------------------------------


def kafka_call(port: int, api_key: ApiKey, version: int, **fields: Any) -> Any:
    """One request over a fresh connection; the decoded response body."""
    payload = encode_request(api_key, version, request(api_key, version, **fields))
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", _read_exactly(sock, 4))[0]
        return decode_response(api_key, version, _read_exactly(sock, size))


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the node closed the connection")
        data += chunk
    return data


def find_coordinator(port: int, group: str) -> int | None:
    body = kafka_call(port, ApiKey.FIND_COORDINATOR, 3, key=group, key_type=0)
    return int(body.node_id) if int(body.error_code) == 0 else None


def fetch_offsets(port: int, group: str, topic: str) -> dict[int, int] | None:
    wanted = nested(
        ApiKey.OFFSET_FETCH,
        7,
        "OffsetFetchRequestTopic",
        name=topic,
        partition_indexes=tuple(range(PARTITIONS)),
    )
    body = kafka_call(port, ApiKey.OFFSET_FETCH, 7, group_id=group, topics=(wanted,))
    if int(body.error_code) != 0:
        return None
    return {
        int(p.partition_index): int(p.committed_offset) for t in body.topics for p in t.partitions
    }


def commit_offsets(port: int, group: str, topic: str, offsets: dict[int, int]) -> list[int]:
    partitions = tuple(
        nested(
            ApiKey.OFFSET_COMMIT,
            8,
            "OffsetCommitRequestPartition",
            partition_index=p,
            committed_offset=offset,
            committed_leader_epoch=-1,
            committed_metadata="",
        )
        for p, offset in offsets.items()
    )
    body = kafka_call(
        port,
        ApiKey.OFFSET_COMMIT,
        8,
        group_id=group,
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        topics=(
            nested(
                ApiKey.OFFSET_COMMIT,
                8,
                "OffsetCommitRequestTopic",
                name=topic,
                partitions=partitions,
            ),
        ),
    )
    return [int(p.error_code) for t in body.topics for p in t.partitions]


def test_committed_offsets_survive_a_sigkill_of_the_coordinator(cluster: LocalCluster) -> None:
    topic, group = "failover-events", "failover-group"
    create_topic(cluster, topic)
    produce(cluster, topic, "f")
    any_port = cluster.nodes[1].client_port
    coordinator = wait_for(
        lambda: find_coordinator(any_port, group), deadline_s=DEADLINE_S, what="a coordinator"
    )
    port = cluster.nodes[coordinator].client_port
    committed = {p: 7 + p for p in range(PARTITIONS)}
    wait_for(
        lambda: commit_offsets(port, group, topic, committed) == [0] * PARTITIONS,
        deadline_s=DEADLINE_S,
        what="a commit accepted by the coordinator",
    )
    assert fetch_offsets(port, group, topic) == committed

    cluster.kill(coordinator)
    try:
        survivor = next(n for n in cluster.nodes.values() if n.node_id != coordinator)

        def new_coordinator() -> int | None:
            found = find_coordinator(survivor.client_port, group)
            return found if found is not None and found != coordinator else None

        successor = wait_for(new_coordinator, deadline_s=DEADLINE_S, what="a new coordinator")
        fetched = wait_for(
            lambda: fetch_offsets(cluster.nodes[successor].client_port, group, topic),
            deadline_s=DEADLINE_S,
            what="OffsetFetch answered by the new coordinator",
        )
        assert fetched == committed
    finally:
        cluster.start(coordinator)
        wait_for(
            lambda: cluster.nodes[coordinator].get("/v1/status/ready")[0] == 200,
            deadline_s=DEADLINE_S,
            what="the killed node back",
        )


# -- consumer groups over HTTP and the command line ---------------------------------------------


def metrics_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=SOCKET_TIMEOUT_S) as response:
        return str(response.read().decode())


def test_groups_and_their_lag_over_rest_v3_and_kraft_group_describe(cluster: LocalCluster) -> None:
    """Confluent REST v3 consumer-group routes and `kraft group`, from any node: an empty
    group with commits (lag = log end - committed) and a live member with its assignment."""
    topic, idle, live = "lag-events", "lag-idle-group", "lag-live-group"
    create_topic(cluster, topic)
    stored = produce(cluster, topic, "l")
    # each partition's log end (20 records each, more if a producer retry stored one twice)
    ends = {p: max(o for q, o, _ in stored if q == p) + 1 for p in range(PARTITIONS)}
    any_port = cluster.nodes[1].client_port
    coordinator = wait_for(
        lambda: find_coordinator(any_port, idle), deadline_s=DEADLINE_S, what="a coordinator"
    )
    wait_for(
        lambda: (
            commit_offsets(
                cluster.nodes[coordinator].client_port,
                idle,
                topic,
                dict.fromkeys(range(PARTITIONS), 5),
            )
            == [0] * PARTITIONS
        ),
        deadline_s=DEADLINE_S,
        what="a commit",
    )
    worker = KafkaPythonWorker(cluster, topic, live, "lag-live-1")
    worker.start()
    try:
        wait_for(
            lambda: len(worker.assignment) == PARTITIONS, deadline_s=DEADLINE_S, what="assigned"
        )
        node = cluster.nodes[3]
        base = f"/v3/clusters/{cluster.cluster_id}/consumer-groups"
        status, listed = node.get(base)
        assert status == 200, listed
        states = {g["consumer_group_id"]: g["state"] for g in listed["data"]}
        assert states[idle] == "EMPTY"
        assert states[live] in ("STABLE", "COMPLETING_REBALANCE", "PREPARING_REBALANCE")

        status, lags = node.get(f"{base}/{idle}/lags")
        assert status == 200, lags
        rows = {
            (lag["partition_id"], lag["current_offset"], lag["log_end_offset"], lag["lag"])
            for lag in lags["data"]
        }
        assert rows == {(p, 5, ends[p], ends[p] - 5) for p in range(PARTITIONS)}
        status, summary = node.get(f"{base}/{idle}/lag-summary")
        assert (status, summary["total_lag"], summary["max_lag"]) == (
            200,
            sum(ends.values()) - 5 * PARTITIONS,
            max(ends.values()) - 5,
        )

        wait_for(
            lambda: node.get(f"{base}/{live}")[1].get("state") == "STABLE",
            deadline_s=DEADLINE_S,
            what="stable",
        )
        status, consumers = node.get(f"{base}/{live}/consumers")
        assert status == 200, consumers
        assert [c["client_id"] for c in consumers["data"]] == ["lag-live-1"]
        assert node.get(f"{base}/no-such-group")[0] == 404

        described = cluster.kraft("group", "describe", idle, "--bootstrap", node.http_url)
        lines = described.stdout.splitlines()
        assert lines[0] == f"Consumer group '{idle}' is EMPTY."
        assert lines[2].split() == [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ]
        assert [line.split()[:6] for line in lines[3:]] == [
            [idle, topic, str(p), "5", str(ends[p]), str(ends[p] - 5)] for p in range(PARTITIONS)
        ]
        listed_text = cluster.kraft("group", "list", "--bootstrap", node.http_url).stdout.split()
        assert idle in listed_text and live in listed_text

        # kafka_exporter's series, from the coordinator's /metrics (refreshed every 5 s)
        expected = [
            f'kafka_consumergroup_lag{{consumergroup="{idle}",partition="{p}",topic="{topic}"}} '
            f"{float(ends[p] - 5)}"
            for p in range(PARTITIONS)
        ]
        expected.append(
            f'kafka_consumergroup_lag_sum{{consumergroup="{idle}",topic="{topic}"}} '
            f"{float(sum(ends.values()) - 5 * PARTITIONS)}"
        )
        expected.append(f'kafka_consumergroup_members{{consumergroup="{live}"}} 1.0')
        metrics_url = cluster.nodes[coordinator].http_url + "/metrics"
        wait_for(
            lambda: all(line in metrics_text(metrics_url) for line in expected[:-1]),
            deadline_s=DEADLINE_S,
            what="consumer-group lag metrics",
        )
        live_coordinator = wait_for(
            lambda: find_coordinator(any_port, live), deadline_s=DEADLINE_S, what="a coordinator"
        )
        wait_for(
            lambda: (
                expected[-1] in metrics_text(cluster.nodes[live_coordinator].http_url + "/metrics")
            ),
            deadline_s=DEADLINE_S,
            what="the member count metric",
        )
    finally:
        worker.stop()


# -- a member that dies without leaving --------------------------------------------------------

CRASHING_CONSUMER = """
import sys, time
from kafka import KafkaConsumer
consumer = KafkaConsumer(
    sys.argv[2], bootstrap_servers=sys.argv[1], group_id=sys.argv[3], client_id="crasher",
    enable_auto_commit=False, auto_offset_reset="earliest", session_timeout_ms=6000,
    heartbeat_interval_ms=1000,
)
while True:
    consumer.poll(timeout_ms=200)
"""


def test_a_member_killed_without_leaving_is_expired_after_its_session_timeout(
    cluster: LocalCluster,
) -> None:
    """SIGKILL sends no LeaveGroup: the coordinator removes the member once its session
    timeout (6 s) passes without a heartbeat, and the survivor takes all its partitions."""
    topic, group = "expiry-events", "expiry-group"
    create_topic(cluster, topic)
    survivor = KafkaPythonWorker(cluster, topic, group, "expiry-survivor")
    crasher = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CONSUMER, bootstrap(cluster), topic, group],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    survivor.start()
    try:
        wait_for(
            lambda: len(survivor.assignment) == PARTITIONS // 2,
            deadline_s=DEADLINE_S,
            what="the partitions shared between the two members",
        )
        crasher.kill()
        crasher.wait(timeout=10)
        killed_at = time.monotonic()
        wait_for(
            lambda: len(survivor.assignment) == PARTITIONS,
            deadline_s=DEADLINE_S,
            what="the survivor owning every partition",
        )
        taken_over_s = time.monotonic() - killed_at
        assert taken_over_s >= 4.0, (
            f"taken over after {taken_over_s:.1f} s: before the session ended?"
        )
    finally:
        if crasher.poll() is None:
            crasher.kill()
            crasher.wait(timeout=10)
        survivor.stop()


# -- kcat ----------------------------------------------------------------------------------------


def test_kcat_group_commits_a_second_run_resumes_and_a_deleted_group_starts_over(
    cluster: LocalCluster,
) -> None:
    """kcat -G (librdkafka's KafkaConsumer, auto-commit): the first run reads every record
    and commits on exit; the second, in the same group, starts at the commits. Once the
    group is deleted (DeleteGroups from confluent-kafka's admin client) a third reads all."""
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.skip("kcat is not installed")
    topic, group = "kcat-events", "kcat-group"
    create_topic(cluster, topic)
    stored = produce(cluster, topic, "k")

    def run() -> set[tuple[int, int, bytes]]:
        command = [kcat, "-b", bootstrap(cluster), "-G", group, "-X", "auto.offset.reset=earliest"]
        command += ["-e", "-q", "-f", "%p %o %s\\n", topic]
        done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_S)
        assert done.returncode == 0, done.stderr
        rows = [line.split(" ", 2) for line in done.stdout.splitlines()]
        return {(int(p), int(o), value.encode()) for p, o, value in rows}

    first = run()
    # by value: a producer retry after a lost answer may have stored a record twice
    assert {value for _, _, value in first} == {value for _, _, value in stored}
    assert run() == set(), "the second run read committed records again"
    coordinator = wait_for(
        lambda: find_coordinator(cluster.nodes[1].client_port, group),
        deadline_s=DEADLINE_S,
        what="a coordinator",
    )
    ends = {p: max(o for q, o, _ in first if q == p) + 1 for p in range(PARTITIONS)}
    assert fetch_offsets(cluster.nodes[coordinator].client_port, group, topic) == ends

    # DeleteGroups through an admin client: the commits are gone, a new run reads everything
    confluent_admin = pytest.importorskip("confluent_kafka.admin")
    admin = confluent_admin.AdminClient({"bootstrap.servers": bootstrap(cluster)})
    admin.delete_consumer_groups([group])[group].result(timeout=DEADLINE_S)
    assert run() == first


# -- static membership ---------------------------------------------------------------------------


def test_a_restarted_static_member_gets_its_partitions_back_without_a_rebalance(
    cluster: LocalCluster,
) -> None:
    """KIP-345 with librdkafka's group.instance.id: a static member that closes (no
    LeaveGroup) and comes back within its session takes its place and partitions back; the
    other member is not rebalanced."""
    pytest.importorskip("confluent_kafka")
    topic, group = "static-events", "static-group"
    create_topic(cluster, topic)

    def static_worker(name: str, instance_id: str) -> ConfluentWorker:
        worker = ConfluentWorker(cluster, topic, group, name)
        worker.instance_id = instance_id
        worker.start()
        return worker

    steady = static_worker("static-1", "instance-1")
    restarting = static_worker("static-2", "instance-2")
    try:
        wait_for(
            lambda: assigned_exactly_once([steady, restarting]),
            deadline_s=DEADLINE_S,
            what="two static members sharing the partitions",
        )
        before = (steady.assignment, restarting.assignment)
        revocations = steady.revocations  # the group may have formed in two generations
        restarting.stop()
        restarting = static_worker("static-2-again", "instance-2")
        wait_for(
            lambda: restarting.assignment == before[1],
            deadline_s=DEADLINE_S,
            what="the restarted static member owning its partitions again",
        )
        assert steady.assignment == before[0]
        assert steady.revocations == revocations, "the steady member was rebalanced"
    finally:
        for worker in (steady, restarting):
            if worker.is_alive():
                worker.stop()


# -- a live group while its coordinator is SIGKILLed ---------------------------------------------


def test_a_live_group_carries_on_when_its_coordinator_is_sigkilled(cluster: LocalCluster) -> None:
    """Two confluent-kafka members read and commit; the coordinator's node (which also leads
    some of the topic's partitions) is SIGKILLed. The members find the new coordinator, which
    loaded the group from __consumer_offsets, and go on: every record produced after the
    kill is read, no partition skips an offset, and commits keep being acknowledged."""
    topic, group = "live-failover-events", "live-failover-group"
    create_topic(cluster, topic)
    phase_a = produce(cluster, topic, "a")
    pytest.importorskip("confluent_kafka")
    # librdkafka here; kafka-python and aiokafka groups go through coordinator and leader
    # kills in tests/cluster/test_kafka_failover.py
    workers = start_workers(cluster, ConfluentWorker, topic, group, ["live-1", "live-2"])
    coordinator = None
    try:
        wait_for(lambda: assigned_exactly_once(workers), deadline_s=DEADLINE_S, what="assigned")
        wait_until_read(workers, phase_a, "phase a read")
        coordinator = wait_for(
            lambda: find_coordinator(cluster.nodes[1].client_port, group),
            deadline_s=DEADLINE_S,
            what="the coordinator",
        )
        committed_before = group_commits(workers)
        cluster.kill(coordinator)
        phase_b = produce(cluster, topic, "b")
        wait_until_read(workers, phase_b, "phase b read after the coordinator died")
        wait_for(
            lambda: any(
                group_commits(workers).get(p, 0) > committed_before.get(p, 0)
                for p in range(PARTITIONS)
            ),
            deadline_s=DEADLINE_S,
            what="a commit acknowledged by the new coordinator",
        )
    finally:
        for worker in workers:
            worker.stop()
        if coordinator is not None:
            cluster.start(coordinator)
            wait_for(
                lambda: cluster.nodes[coordinator].get("/v1/status/ready")[0] == 200,
                deadline_s=DEADLINE_S,
                what="the killed node back",
            )
    everything = received(workers)
    for partition in range(PARTITIONS):
        resumed_at(everything, partition)  # asserts no offset was skipped
    assert {v for _, _, v in phase_b} <= {v for _, _, v in everything}


def test_kafka_python_deletes_the_offsets_of_topics_its_group_no_longer_reads(
    cluster: LocalCluster,
) -> None:
    """OffsetDelete (kafka-consumer-groups --delete-offsets) through kafka-python's admin
    client: refused for a topic a live member subscribes to, done for one it does not, and
    done for every topic once the group is empty."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.errors import GroupSubscribedToTopicError, NoError
    from kafka.structs import OffsetAndMetadata

    read, dropped, group = "offsets-read", "offsets-dropped", "offset-deleter"
    create_topic(cluster, read)
    create_topic(cluster, dropped)
    consumer = KafkaConsumer(
        read,
        bootstrap_servers=bootstrap(cluster),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    admin = KafkaAdminClient(bootstrap_servers=bootstrap(cluster), request_timeout_ms=30_000)
    try:
        wait_for(
            lambda: consumer.poll(timeout_ms=200) is not None and consumer.assignment(),
            deadline_s=DEADLINE_S,
            what="the consumer assigned its partitions",
        )
        consumer.commit(
            {
                TopicPartition(read, 0): OffsetAndMetadata(5, "", -1),
                TopicPartition(dropped, 0): OffsetAndMetadata(9, "", -1),
            }
        )
        both = [TopicPartition(read, 0), TopicPartition(dropped, 0)]
        answer = admin.delete_group_offsets(group, both)
        assert {tp.topic: error for tp, error in answer.items()} == {
            read: GroupSubscribedToTopicError,
            dropped: NoError,
        }
        left = admin.list_group_offsets(group)[group]
        assert {tp: meta.offset for tp, meta in left.items()} == {TopicPartition(read, 0): 5}
        consumer.close()  # leaves the group: empty now
        answer = admin.delete_group_offsets(group, [TopicPartition(read, 0)])
        assert list(answer.values()) == [NoError]
        assert admin.list_group_offsets(group)[group] == {}
    finally:
        consumer.close()
        admin.close()
