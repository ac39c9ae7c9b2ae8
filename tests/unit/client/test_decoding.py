"""client.consumer.decode_fetched_records: a fetch answer holds whole stored batches, so the
consumer skips records below its fetch offset, steps over control batches, leaves a trailing
partial batch for the next fetch, and trusts no batch that fails its CRC."""

from __future__ import annotations

import pytest

from broker.log.batch import CRC_POSITION, Record, assign_offsets, build_batch
from client.consumer import decode_fetched_records
from client.errors import KafkaError
from kraft.protocol.errors import ErrorCode


def _batch(base_offset: int, values: list[bytes], *, is_control: bool = False) -> bytes:
    records = [Record(b"k", value, (), 1000 + n) for n, value in enumerate(values)]
    return assign_offsets(build_batch(records, is_control=is_control), base_offset, 0)


def test_records_below_the_fetch_offset_in_the_first_batch_are_skipped() -> None:
    data = _batch(10, [b"a", b"b", b"c"]) + _batch(13, [b"d"])

    records, next_offset = decode_fetched_records("t", 0, data, fetch_offset=12)

    assert [(r.offset, r.value) for r in records] == [(12, b"c"), (13, b"d")]
    assert next_offset == 14


def test_a_batch_wholly_below_the_fetch_offset_gives_nothing() -> None:
    records, next_offset = decode_fetched_records("t", 0, _batch(0, [b"a"]), fetch_offset=1)

    assert records == []
    assert next_offset == 1


def test_records_carry_their_topic_partition_key_and_timestamp() -> None:
    (record,), _ = decode_fetched_records("t", 4, _batch(7, [b"v"]), fetch_offset=7)

    assert (record.topic, record.partition, record.offset) == ("t", 4, 7)
    assert (record.key, record.value, record.timestamp) == (b"k", b"v", 1000)


def test_control_batches_are_stepped_over() -> None:
    data = _batch(0, [b"marker"], is_control=True) + _batch(1, [b"a"])

    records, next_offset = decode_fetched_records("t", 0, data, fetch_offset=0)

    assert [r.value for r in records] == [b"a"]
    assert next_offset == 2


def test_a_trailing_partial_batch_is_left_for_the_next_fetch() -> None:
    whole = _batch(0, [b"a"])
    partial = _batch(1, [b"b" * 100])[:40]

    records, next_offset = decode_fetched_records("t", 0, whole + partial, fetch_offset=0)

    assert [r.offset for r in records] == [0]
    assert next_offset == 1


def test_an_answer_without_one_whole_batch_says_the_fetch_size_is_too_small() -> None:
    with pytest.raises(KafkaError) as raised:
        decode_fetched_records("t", 0, _batch(0, [b"b" * 100])[:40], fetch_offset=0)

    assert raised.value.code == ErrorCode.MESSAGE_TOO_LARGE


def test_a_batch_failing_its_crc_is_corrupt() -> None:
    damaged = bytearray(_batch(0, [b"a"]))
    damaged[CRC_POSITION] ^= 0xFF

    with pytest.raises(KafkaError) as raised:
        decode_fetched_records("t", 0, bytes(damaged), fetch_offset=0)

    assert raised.value.code == ErrorCode.CORRUPT_MESSAGE


def test_an_empty_answer_keeps_the_position() -> None:
    assert decode_fetched_records("t", 0, b"", fetch_offset=5) == ([], 5)
