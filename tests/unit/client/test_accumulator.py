"""client.accumulator: how records gather into batches and when a batch is ready to go
(Kafka's RecordAccumulator: batch.size, linger.ms, one batch in flight per partition)."""

from __future__ import annotations

import asyncio

from broker.log.batch import BATCH_HEADER_SIZE_BYTES, Record, RecordBatch, iter_records
from client.accumulator import (
    RECORD_OVERHEAD_MAX_BYTES,
    RecordAccumulator,
    RecordMetadata,
    record_size_bytes,
)

TP = ("t", 0)
OTHER_TP = ("t", 1)
LINGER_MS = 5
LEADER = 1


def _future() -> asyncio.Future[RecordMetadata]:
    return asyncio.get_running_loop().create_future()


def _record(value_bytes: int = 10) -> Record:
    return Record(None, b"x" * value_bytes)


def _leader(_tp: tuple[str, int]) -> int | None:
    return LEADER


def _no_leader(_tp: tuple[str, int]) -> int | None:
    return None


def _accumulator(records_per_batch: int = 3, value_bytes: int = 10) -> RecordAccumulator:
    size = BATCH_HEADER_SIZE_BYTES + records_per_batch * record_size_bytes(_record(value_bytes))
    return RecordAccumulator(size, LINGER_MS)


async def test_records_share_a_batch_until_it_is_full() -> None:
    accumulator = _accumulator(records_per_batch=3)

    started = [accumulator.append(TP, _record(), _future(), now_ms=0) for _ in range(4)]

    assert started == [True, False, False, True]
    assert [len(batch.records) for batch in accumulator] == [3, 1]


async def test_a_record_larger_than_the_batch_size_gets_a_batch_of_its_own() -> None:
    accumulator = _accumulator(records_per_batch=1, value_bytes=10)

    accumulator.append(TP, _record(10_000), _future(), now_ms=0)
    accumulator.append(TP, _record(10), _future(), now_ms=0)

    assert [len(batch.records) for batch in accumulator] == [1, 1]


async def test_a_batch_waits_for_linger_unless_full() -> None:
    accumulator = _accumulator(records_per_batch=3)
    accumulator.append(TP, _record(), _future(), now_ms=100)

    early, _ = accumulator.drain(100 + LINGER_MS - 1, _leader, max_request_bytes=1 << 20)
    on_time, _ = accumulator.drain(100 + LINGER_MS, _leader, max_request_bytes=1 << 20)

    assert early == {}
    assert [len(batch.records) for batch in on_time[LEADER]] == [1]


async def test_a_full_batch_is_ready_before_its_linger() -> None:
    accumulator = _accumulator(records_per_batch=2)
    for _ in range(3):
        accumulator.append(TP, _record(), _future(), now_ms=0)

    drained, _ = accumulator.drain(0, _leader, max_request_bytes=1 << 20)

    assert [len(batch.records) for batch in drained[LEADER]] == [2]


async def test_flush_makes_every_batch_ready_at_once() -> None:
    accumulator = _accumulator()
    accumulator.append(TP, _record(), _future(), now_ms=0)
    accumulator.flushes_in_progress += 1

    drained, _ = accumulator.drain(0, _leader, max_request_bytes=1 << 20)

    assert len(drained[LEADER]) == 1


async def test_one_batch_per_partition_is_in_flight_and_partitions_share_a_request() -> None:
    accumulator = _accumulator(records_per_batch=1)
    for tp in (TP, TP, OTHER_TP):
        accumulator.append(tp, _record(), _future(), now_ms=0)

    first, _ = accumulator.drain(0, _leader, max_request_bytes=1 << 20)
    second, _ = accumulator.drain(0, _leader, max_request_bytes=1 << 20)
    accumulator.complete(first[LEADER][0])
    third, _ = accumulator.drain(0, _leader, max_request_bytes=1 << 20)

    assert sorted(batch.topic_partition for batch in first[LEADER]) == [TP, OTHER_TP]
    assert second == {}
    assert [batch.topic_partition for batch in third[LEADER]] == [TP]


async def test_a_request_holds_at_most_max_request_bytes_but_never_less_than_one_batch() -> None:
    accumulator = _accumulator(records_per_batch=1)
    accumulator.append(TP, _record(), _future(), now_ms=0)
    accumulator.append(OTHER_TP, _record(), _future(), now_ms=0)

    drained, _ = accumulator.drain(LINGER_MS, _leader, max_request_bytes=1)

    assert len(drained[LEADER]) == 1


async def test_partitions_without_a_known_leader_are_reported_not_drained() -> None:
    accumulator = _accumulator()
    accumulator.append(TP, _record(), _future(), now_ms=0)

    drained, leaderless = accumulator.drain(LINGER_MS, _no_leader, max_request_bytes=1 << 20)

    assert drained == {}
    assert leaderless == {TP}
    assert accumulator.next_ready_delay_ms(LINGER_MS, _no_leader) is None


async def test_a_retried_batch_goes_first_after_its_backoff_and_takes_no_new_records() -> None:
    accumulator = _accumulator(records_per_batch=3)
    accumulator.append(TP, _record(), _future(), now_ms=0)
    drained, _ = accumulator.drain(LINGER_MS, _leader, 1 << 20)
    (sent,) = drained[LEADER]
    accumulator.append(TP, _record(), _future(), now_ms=LINGER_MS)

    accumulator.reenqueue([sent], retry_at_ms=100)
    accumulator.append(TP, _record(), _future(), now_ms=LINGER_MS)
    before, _ = accumulator.drain(99, _leader, 1 << 20)
    after, _ = accumulator.drain(100, _leader, 1 << 20)

    assert before == {}
    assert after[LEADER] == [sent]
    assert len(sent.records) == 1
    assert [len(batch.records) for batch in accumulator] == [2]


async def test_the_next_wakeup_is_the_earliest_linger_end() -> None:
    accumulator = _accumulator()
    accumulator.append(TP, _record(), _future(), now_ms=10)
    accumulator.append(OTHER_TP, _record(), _future(), now_ms=12)

    assert accumulator.next_ready_delay_ms(11, _leader) == 10 + LINGER_MS - 11


async def test_batches_past_the_delivery_timeout_expire_and_release_their_bytes() -> None:
    accumulator = _accumulator(records_per_batch=1)
    accumulator.append(TP, _record(), _future(), now_ms=0)
    accumulator.append(TP, _record(), _future(), now_ms=50)

    expired = accumulator.expire(now_ms=100, delivery_timeout_ms=100)

    assert [batch.created_ms for batch in expired] == [0]
    assert accumulator.buffered_bytes == record_size_bytes(_record())


async def test_the_size_estimate_bounds_the_encoded_batch() -> None:
    records = [Record(b"k" * n, b"v" * (n * 7), (("h", b"x" * n),)) for n in range(0, 300, 17)]
    accumulator = RecordAccumulator(1 << 20, LINGER_MS)
    for record in records:
        accumulator.append(TP, record, _future(), now_ms=0)
    (batch,) = list(accumulator)

    encoded = batch.encode()

    assert len(encoded) <= batch.size_bytes
    assert [r.value for r in iter_records(RecordBatch(encoded))] == [r.value for r in records]
    assert record_size_bytes(Record(None, None)) == RECORD_OVERHEAD_MAX_BYTES


async def test_split_keeps_order_creation_time_and_futures() -> None:
    accumulator = _accumulator(records_per_batch=3)
    futures = [_future() for _ in range(3)]
    for n, future in enumerate(futures):
        accumulator.append(TP, Record(None, bytes([n])), future, now_ms=7)
    (batch,) = list(accumulator)

    parts = batch.split()

    assert [part.records[0].value for part in parts] == [b"\x00", b"\x01", b"\x02"]
    assert [part.futures[0] for part in parts] == futures
    assert {part.created_ms for part in parts} == {7}
