"""Keys land where Kafka's default partitioner puts them (vectors from Kafka's UtilsTest)."""

from __future__ import annotations

import pytest

from kraft.protocol.errors import ErrorCode, error_name
from kraft.protocol.partitioner import murmur2, partition_for_key

KAFKA_MURMUR2_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("key", "expected"), KAFKA_MURMUR2_VECTORS)
def test_murmur2_matches_kafka(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_partition_is_the_positive_hash_modulo_the_count() -> None:
    assert partition_for_key(b"foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7


def test_every_key_maps_into_the_topic() -> None:
    for n in range(200):
        assert 0 <= partition_for_key(str(n).encode(), 3) < 3


def test_empty_key_is_a_key_too() -> None:
    assert partition_for_key(b"", 5) == (murmur2(b"") & 0x7FFFFFFF) % 5


def test_error_codes_are_kafkas_numbers() -> None:
    assert ErrorCode.NOT_LEADER_OR_FOLLOWER == 6
    assert ErrorCode.NOT_ENOUGH_REPLICAS == 19
    assert ErrorCode.NOT_LEADER_OR_FOLLOWER.is_retriable
    assert not ErrorCode.MESSAGE_TOO_LARGE.is_retriable
    assert error_name(10) == "MESSAGE_TOO_LARGE"
    assert error_name(9999) == "UNKNOWN_ERROR_9999"
