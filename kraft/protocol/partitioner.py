"""Kafka's default key partitioner: murmur2 of the key bytes, made positive, modulo the
partition count (org.apache.kafka.common.utils.Utils.murmur2 / toPositive), so a keyed
record lands on the partition a Java, librdkafka (murmur2_random) or kafka-python producer
would choose for it."""

from __future__ import annotations

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK_32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of `data` as a signed 32-bit int, exactly as Utils.murmur2."""
    length = len(data)
    h = (_SEED ^ length) & _MASK_32
    whole_words = length // 4
    for i in range(whole_words):
        k = int.from_bytes(data[i * 4 : i * 4 + 4], "little")
        k = (k * _M) & _MASK_32
        k ^= k >> 24
        k = (k * _M) & _MASK_32
        h = (h * _M) & _MASK_32
        h ^= k
    tail = length & 3
    index = whole_words * 4
    if tail == 3:
        h ^= data[index + 2] << 16
    if tail >= 2:
        h ^= data[index + 1] << 8
    if tail >= 1:
        h ^= data[index]
        h = (h * _M) & _MASK_32
    h ^= h >> 13
    h = (h * _M) & _MASK_32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partition_count: int) -> int:
    """The partition Kafka's default partitioner picks for a non-null key."""
    assert partition_count > 0, f"a topic has at least one partition, not {partition_count}"
    return (murmur2(key) & 0x7FFFFFFF) % partition_count
