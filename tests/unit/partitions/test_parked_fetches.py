"""Parked fetches on a partition leader (Kafka's DelayedFetch): a follower's fetch at the
log end waits for an append, a consumer's at the high watermark waits for the high watermark
to move. Each is woken only by what it waits for: at one acks=all record per produce, a
follower woken by every high watermark move (and a consumer by every append) would read the
partition again for nothing once per record."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from broker.log.batch import Record, build_batch
from broker.partitions.manager import PartitionFetch, PartitionFetchResult, ReplicaManager
from kraft.protocol.errors import ErrorCode
from kraft.protocol.native import CONSUMER_REPLICA_ID
from tests.unit.api.images import ImageBuilder
from tests.unit.partitions.helpers import single_broker_manager

LONG_WAIT_MS = 30_000
MAX_BYTES = 1 << 20


def fetch(
    replicas: ReplicaManager, replica_id: int, offset: int
) -> asyncio.Task[list[PartitionFetchResult]]:
    request = PartitionFetch("t", 0, offset, MAX_BYTES, current_leader_epoch=0)
    return asyncio.create_task(replicas.fetch(replica_id, 1, [request], LONG_WAIT_MS, 1, MAX_BYTES))


async def append(replicas: ReplicaManager, count: int) -> None:
    batch = build_batch([Record(None, b"v%d" % i, (), 1_000) for i in range(count)])
    result = await replicas.produce("t", 0, batch, 1, 5000)
    assert result.error_code is ErrorCode.NONE, result


def count_reads(replicas: ReplicaManager) -> dict[int, int]:
    """How many times the leader read the partition for each replica id."""
    reads: dict[int, int] = {}
    read_all = replicas._read_all

    def counted(replica_id: int, *args: Any) -> Any:
        reads[replica_id] = reads.get(replica_id, 0) + 1
        return read_all(replica_id, *args)

    replicas._read_all = counted  # type: ignore[method-assign]
    return reads


def leader_with_one_follower(tmp_path: Path) -> ReplicaManager:
    """Broker 1 leading partition t-0, with broker 2 its follower (ISR 1, 2)."""
    builder = ImageBuilder()
    for broker_id in (1, 2):
        builder.broker(broker_id)
    builder.topic("t", [(1, 2)])
    replicas = single_broker_manager(builder, tmp_path)
    replicas._reconcile()
    return replicas


async def settle() -> None:
    """Lets every task woken so far run to its next wait."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_high_watermark_move_answers_parked_consumers_but_not_parked_followers(
    tmp_path: Path,
) -> None:
    builder = ImageBuilder()
    for broker_id in (1, 2, 3):
        builder.broker(broker_id)
    builder.topic("t", [(1, 2, 3)])  # leader 1, ISR 1, 2, 3
    replicas = single_broker_manager(builder, tmp_path)
    replicas._reconcile()
    await append(replicas, 3)  # offsets 0-2; the high watermark waits for both followers
    (first,) = await fetch(replicas, 2, 0)
    assert first.records and first.high_watermark == 0
    reads = count_reads(replicas)
    follower_2 = fetch(replicas, 2, 3)  # follower 2 holds offsets 0-2 and waits for more
    consumer = fetch(replicas, CONSUMER_REPLICA_ID, 0)
    await settle()
    assert not follower_2.done() and not consumer.done()
    assert reads[2] == 1

    follower_3 = fetch(replicas, 3, 3)  # follower 3 too: the high watermark moves to 3
    (read,) = await asyncio.wait_for(consumer, 5)
    assert read.records and read.high_watermark == 3
    await settle()
    assert not follower_2.done()
    assert reads[2] == 1, "a high watermark move alone does not wake a follower's fetch"

    await append(replicas, 1)  # offset 3
    for follower in (follower_2, follower_3):
        (replicated,) = await asyncio.wait_for(follower, 5)
        assert replicated.records and replicated.log_end_offset == 4
    await replicas.close()


async def test_an_append_does_not_answer_a_consumer_parked_at_the_high_watermark(
    tmp_path: Path,
) -> None:
    replicas = leader_with_one_follower(tmp_path)
    reads = count_reads(replicas)
    consumer = fetch(replicas, CONSUMER_REPLICA_ID, 0)
    await settle()
    await append(replicas, 2)  # not replicated yet: nothing a consumer may read
    await settle()
    assert not consumer.done()
    assert reads[CONSUMER_REPLICA_ID] == 1, "an append alone does not wake a consumer's fetch"
    await fetch(replicas, 2, 0)
    follower = fetch(replicas, 2, 2)  # the follower holds both: the high watermark is 2
    (read,) = await asyncio.wait_for(consumer, 5)
    assert read.records and read.high_watermark == 2
    follower.cancel()
    await replicas.close()


async def test_a_high_watermark_move_wakes_the_consumer_before_it_answers_the_producer(
    tmp_path: Path,
) -> None:
    replicas = leader_with_one_follower(tmp_path)
    finished: list[str] = []
    consumer = fetch(replicas, CONSUMER_REPLICA_ID, 0)
    consumer.add_done_callback(lambda _: finished.append("consumer"))
    await settle()
    batch = build_batch([Record(None, b"v", (), 1_000)])
    producer = asyncio.create_task(replicas.produce("t", 0, batch, -1, 5000))
    producer.add_done_callback(lambda _: finished.append("producer"))
    await settle()
    assert finished == []
    follower = fetch(replicas, 2, 1)  # the follower holds the record: the high watermark is 1
    await asyncio.wait_for(asyncio.gather(consumer, producer), 5)
    # Kafka's order (checkAndCompleteAll): a record's end-to-end time ends at its consumer
    assert finished == ["consumer", "producer"]
    follower.cancel()
    await replicas.close()


async def test_fetches_that_run_out_of_time_leave_no_waiter_behind(tmp_path: Path) -> None:
    builder = ImageBuilder()
    builder.broker(1)
    builder.topic("t", [(1,)])
    replicas = single_broker_manager(builder, tmp_path)
    replicas._reconcile()
    request = PartitionFetch("t", 0, 0, MAX_BYTES, current_leader_epoch=0)
    for _ in range(50):  # an idle partition long-polled again and again
        (answer,) = await replicas.fetch(CONSUMER_REPLICA_ID, -1, [request], 1, 1, MAX_BYTES)
        assert answer.error_code is ErrorCode.NONE and not answer.records
    partition = replicas.find("t", 0)
    assert partition is not None
    assert not partition._consumer_fetch_waiters and not partition._replica_fetch_waiters
    await replicas.close()


async def test_a_fetch_woken_by_one_partition_reads_only_that_one_again(tmp_path: Path) -> None:
    builder = ImageBuilder()
    for broker_id in (1, 2):
        builder.broker(broker_id)
    builder.topic("t", [(1, 2)])
    builder.topic("idle", [(1, 2)])
    replicas = single_broker_manager(builder, tmp_path)
    replicas._reconcile()
    reads: list[str] = []
    read_partition = replicas._read_partition

    def counted(replica_id: int, replica_epoch: int, request: PartitionFetch, *rest: Any) -> Any:
        reads.append(request.topic)
        return read_partition(replica_id, replica_epoch, request, *rest)

    replicas._read_partition = counted  # type: ignore[method-assign]
    requests = [
        PartitionFetch(topic, 0, 0, MAX_BYTES, current_leader_epoch=0) for topic in ("t", "idle")
    ]
    parked = asyncio.create_task(replicas.fetch(2, 1, requests, LONG_WAIT_MS, 1, MAX_BYTES))
    await settle()
    assert sorted(reads) == ["idle", "t"]
    await append(replicas, 1)
    fresh, idle = await asyncio.wait_for(parked, 5)
    assert fresh.records and not idle.records
    assert sorted(reads) == ["idle", "t", "t"]
    await replicas.close()
