"""The real Producer and Consumer against in-process brokers speaking decision 0005 over
real sockets: records come back in order with the offsets the producer was told, leadership
moves are followed, and an oversized record fails alone."""

from __future__ import annotations

import asyncio
import random

import pytest

from client.consumer import Consumer, ConsumerRecord
from client.errors import DeliveryTimeoutError, KafkaError, OffsetOutOfRangeError
from client.producer import Producer
from kraft.protocol.errors import ErrorCode
from tests.unit.client.memory_broker import running_cluster

DEADLINE_S = 10.0


async def test_records_come_back_in_order_with_their_acknowledged_offsets() -> None:
    async with asyncio.timeout(DEADLINE_S), running_cluster({"t": 2}, (1, 2)) as cluster:
        async with Producer(cluster.bootstrap(), rng=random.Random(1)) as producer:
            futures = [
                await producer.send("t", f"v{n}".encode(), key=f"k{n % 4}".encode())
                for n in range(50)
            ]
            await producer.flush()
        acknowledged = [future.result() for future in futures]
        async with Consumer(cluster.bootstrap(), auto_offset_reset="earliest") as consumer:
            consumer.assign([("t", 0), ("t", 1)])
            got: list[ConsumerRecord] = []
            while len(got) < 50:
                got += await consumer.poll(timeout_ms=1000)
        by_position = {(r.partition, r.offset): r.value for r in got}
        for n, metadata in enumerate(acknowledged):
            assert by_position[(metadata.partition, metadata.offset)] == f"v{n}".encode()


async def test_on_a_log_append_time_topic_the_metadata_carries_the_brokers_time() -> None:
    async with asyncio.timeout(DEADLINE_S), running_cluster({"t": 1}) as cluster:
        cluster.log_append_time_ms = 1_700_000_000_000
        async with Producer(cluster.bootstrap()) as producer:
            future = await producer.send("t", b"v", timestamp_ms=1_000)
            await producer.flush()

    assert future.result().timestamp == 1_700_000_000_000


def _values(records: list[ConsumerRecord]) -> list[bytes | None]:
    return [record.value for record in records]


async def _poll_until(consumer: Consumer, count: int) -> list[ConsumerRecord]:
    got: list[ConsumerRecord] = []
    while len(got) < count:
        got += await consumer.poll(timeout_ms=1000)
    return got


async def test_the_producer_follows_a_leader_move() -> None:
    """NOT_LEADER_OR_FOLLOWER refreshes the metadata and the batch goes to the new leader."""
    async with asyncio.timeout(DEADLINE_S), running_cluster({"t": 1}, (1, 2)) as cluster:
        async with Producer(cluster.bootstrap(), retry_backoff_ms=10) as producer:
            first = await producer.send_and_wait("t", b"before")
            cluster.move_leader("t", 0, 2)
            second = await producer.send_and_wait("t", b"after")

        assert (first.offset, second.offset) == (0, 1)
        produce_targets = [broker for broker, body in cluster.requests if body["kind"] == "produce"]
        assert produce_targets == [1, 1, 2]  # the second try of "after" went to broker 2
        assert cluster.records("t", 0) == [b"before", b"after"]


async def test_the_consumer_follows_a_leader_move() -> None:
    async with (
        asyncio.timeout(DEADLINE_S),
        running_cluster({"t": 1}, (1, 2)) as cluster,
        Producer(cluster.bootstrap()) as producer,
        Consumer(
            cluster.bootstrap(), auto_offset_reset="earliest", retry_backoff_ms=10
        ) as consumer,
    ):
        await producer.send_and_wait("t", b"a")
        consumer.assign([("t", 0)])
        assert _values(await _poll_until(consumer, 1)) == [b"a"]
        cluster.move_leader("t", 0, 2)
        await producer.send_and_wait("t", b"b")

        assert _values(await _poll_until(consumer, 1)) == [b"b"]
        assert consumer.high_watermark("t", 0) == 2


async def test_a_record_over_the_broker_limit_fails_alone_and_its_batch_mates_are_written() -> None:
    """MESSAGE_TOO_LARGE on a batch of several records splits it; the oversized record's
    future fails without retry, the others are acknowledged in order."""
    async with asyncio.timeout(DEADLINE_S), running_cluster({"t": 1}) as cluster:
        cluster.max_message_bytes = 500
        async with Producer(
            cluster.bootstrap(), linger_ms=1000, batch_size_bytes=64 * 1024
        ) as producer:
            futures = [
                await producer.send("t", value, partition=0)
                for value in (b"small-1", b"x" * 1000, b"small-2")
            ]
            await producer.flush()

        assert futures[0].result().offset == 0
        error = futures[1].exception()
        assert isinstance(error, KafkaError) and error.code == ErrorCode.MESSAGE_TOO_LARGE
        assert futures[2].result().offset == 1
        assert cluster.records("t", 0) == [b"small-1", b"small-2"]


async def test_a_retriable_error_is_retried_and_a_fatal_one_is_not() -> None:
    async with asyncio.timeout(DEADLINE_S), running_cluster({"t": 2}) as cluster:
        cluster.fail_next("produce", "t", 0, ErrorCode.NOT_ENOUGH_REPLICAS)
        cluster.fail_next("produce", "t", 1, ErrorCode.INVALID_RECORD)
        async with Producer(cluster.bootstrap(), retry_backoff_ms=10) as producer:
            retried = await producer.send("t", b"r", partition=0)
            failed = await producer.send("t", b"f", partition=1)
            await producer.flush()

        assert retried.result().offset == 0
        error = failed.exception()
        assert isinstance(error, KafkaError) and error.code == ErrorCode.INVALID_RECORD
        assert cluster.records("t", 1) == []


async def test_retries_stop_at_the_delivery_timeout() -> None:
    async with asyncio.timeout(DEADLINE_S), running_cluster({"t": 1}) as cluster:
        for _ in range(1000):
            cluster.fail_next("produce", "t", 0, ErrorCode.NOT_ENOUGH_REPLICAS)
        async with Producer(
            cluster.bootstrap(),
            linger_ms=0,
            retry_backoff_ms=10,
            retry_backoff_max_ms=20,
            request_timeout_ms=100,
            delivery_timeout_ms=200,
        ) as producer:
            future = await producer.send("t", b"never", partition=0)
            await producer.flush()

        error = future.exception()
        assert isinstance(error, DeliveryTimeoutError)
        assert "NOT_ENOUGH_REPLICAS" in str(error)


async def test_an_out_of_range_position_is_reset_or_raised_by_policy() -> None:
    async with asyncio.timeout(DEADLINE_S), running_cluster({"t": 1}) as cluster:
        async with Producer(cluster.bootstrap()) as producer:
            await producer.send_and_wait("t", b"a")
        async with Consumer(cluster.bootstrap(), auto_offset_reset="earliest") as resetting:
            resetting.assign([("t", 0)])
            resetting.seek("t", 0, 1000)
            assert _values(await _poll_until(resetting, 1)) == [b"a"]
        async with Consumer(cluster.bootstrap(), auto_offset_reset="none") as strict:
            strict.assign([("t", 0)])
            strict.seek("t", 0, 1000)
            with pytest.raises(OffsetOutOfRangeError, match="offset 1000 of t-0"):
                await _poll_until(strict, 1)


async def test_a_long_poll_returns_as_soon_as_a_record_arrives() -> None:
    async with (
        asyncio.timeout(DEADLINE_S),
        running_cluster({"t": 1}) as cluster,
        Consumer(cluster.bootstrap(), fetch_max_wait_ms=5000) as consumer,
    ):
        consumer.assign([("t", 0)])
        await consumer.seek_to_end()
        poll = asyncio.create_task(consumer.poll(timeout_ms=8000))
        async with Producer(cluster.bootstrap()) as producer:
            await producer.send_and_wait("t", b"late")

        assert _values(await poll) == [b"late"]
        assert await consumer.position("t", 0) == 1


async def test_the_producer_refreshes_metadata_after_a_connection_failure() -> None:
    """A leader that cannot be reached (killed) says no error code at all: the failed
    connection alone must lead the producer to ask for new metadata and find the new leader
    (found against a real cluster: it used to retry the dead address until the deadline)."""
    async with asyncio.timeout(DEADLINE_S), running_cluster({"t": 1}, (1, 2)) as cluster:
        async with Producer(
            cluster.bootstrap(),
            retry_backoff_ms=10,
            request_timeout_ms=1000,
            delivery_timeout_ms=3000,
        ) as producer:
            await producer.send_and_wait("t", b"before")
            await cluster.servers[1].close()
            cluster.move_leader("t", 0, 2)

            after = await producer.send_and_wait("t", b"after")

        assert after.offset == 1
        assert cluster.records("t", 0) == [b"before", b"after"]


async def test_position_counts_records_fetched_but_not_yet_returned() -> None:
    """position() is the offset of the next record poll() returns, not where the next fetch
    starts (found against a real cluster: the console consumer stopped after 500 records)."""
    async with asyncio.timeout(DEADLINE_S), running_cluster({"t": 1}) as cluster:
        async with Producer(cluster.bootstrap(), linger_ms=1000) as producer:
            for n in range(10):
                await producer.send("t", bytes([n]))
            await producer.flush()
        async with Consumer(cluster.bootstrap(), auto_offset_reset="earliest") as consumer:
            consumer.assign([("t", 0)])

            first = await consumer.poll(timeout_ms=5000, max_records=3)

            assert [record.offset for record in first] == [0, 1, 2]
            assert await consumer.position("t", 0) == 3


async def test_a_retried_record_waits_out_a_partition_without_leader_and_is_then_written() -> None:
    """Regression (kraft chaos --mixed): a batch retried after NOT_LEADER whose partition
    then had no leader at all used to wait for a wakeup that never came."""
    async with asyncio.timeout(DEADLINE_S), running_cluster({"t": 1}, (1, 2)) as cluster:
        async with Producer(cluster.bootstrap(), retry_backoff_ms=50) as producer:
            await producer.send_and_wait("t", b"before")
            cluster.move_leader("t", 0, -1)  # an election under way: no leader
            asyncio.get_running_loop().call_later(0.3, cluster.move_leader, "t", 0, 2)
            after = await producer.send_and_wait("t", b"after")

        assert after.offset == 1
        assert cluster.records("t", 0) == [b"before", b"after"]
