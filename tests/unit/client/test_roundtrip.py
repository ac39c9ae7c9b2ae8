"""The real Producer and Consumer against in-process brokers speaking decision 0005 over
real sockets: records come back in order with the offsets the producer was told, leadership
moves are followed, and an oversized record fails alone."""

from __future__ import annotations

import asyncio
import random

from client.consumer import Consumer
from client.errors import KafkaError
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
            got = []
            while len(got) < 50:
                got += await consumer.poll(timeout_ms=1000)
        by_position = {(r.partition, r.offset): r.value for r in got}
        for n, metadata in enumerate(acknowledged):
            assert by_position[(metadata.partition, metadata.offset)] == f"v{n}".encode()
