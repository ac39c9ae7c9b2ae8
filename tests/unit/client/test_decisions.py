"""The producer's and the cluster view's pure rules: partition choice (keyed: Kafka's
murmur2, KIP-480 sticky for keyless records), retry classification (Kafka's
RetriableException family; MESSAGE_TOO_LARGE splits, then fails alone), metadata parsing and
the exponential backoff of KIP-580."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from client.accumulator import (
    Outcome,
    StickyPartitioner,
    choose_partition,
    produce_outcome,
    refreshes_metadata,
)
from client.cluster import (
    backoff_ms,
    default_bootstrap_servers,
    parse_bootstrap_servers,
    parse_metadata,
)
from client.errors import KafkaError, MalformedResponseError
from client.producer import ProducerConfig, parse_acks
from kraft.protocol.errors import ErrorCode
from kraft.protocol.partitioner import partition_for_key


def _always_room(_partition: int) -> bool:
    return True


def _never_room(_partition: int) -> bool:
    return False


# --- partition choice -----------------------------------------------------------------------


def test_a_keyed_record_goes_where_kafkas_murmur2_puts_it() -> None:
    sticky = StickyPartitioner(random.Random(0))

    chosen = choose_partition("t", b"foobar", 7, sticky, _always_room)

    assert chosen == partition_for_key(b"foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7


def test_keyless_records_stick_to_one_partition_while_its_batch_has_room() -> None:
    sticky = StickyPartitioner(random.Random(0))

    chosen = {choose_partition("t", None, 5, sticky, _always_room) for _ in range(100)}

    assert len(chosen) == 1


def test_keyless_records_move_round_robin_each_time_the_batch_is_full() -> None:
    sticky = StickyPartitioner(random.Random(0))
    first = sticky.partition("t", 3, _never_room)

    following = [sticky.partition("t", 3, _never_room) for _ in range(6)]

    assert following == [(first + n) % 3 for n in range(1, 7)]


def test_keyless_load_spreads_evenly_over_the_partitions() -> None:
    sticky = StickyPartitioner(random.Random(42))
    records_in_batch = Counter[int]()
    batch_capacity = 10

    def has_room(partition: int) -> bool:
        return records_in_batch[partition] % batch_capacity != 0

    for _ in range(4 * 3 * batch_capacity):
        records_in_batch[sticky.partition("t", 4, has_room)] += 1

    assert sorted(records_in_batch.values()) == [30, 30, 30, 30]


# --- what an answer means --------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode.REQUEST_TIMED_OUT,
        ErrorCode.KAFKA_STORAGE_ERROR,
        ErrorCode.CORRUPT_MESSAGE,
    ],
)
def test_retriable_errors_are_retried(code: ErrorCode) -> None:
    assert produce_outcome(code, record_count=3) is Outcome.RETRY


@pytest.mark.parametrize(
    "code", [ErrorCode.INVALID_RECORD, ErrorCode.INVALID_REQUIRED_ACKS, ErrorCode.INVALID_REQUEST]
)
def test_other_errors_fail_the_batch(code: ErrorCode) -> None:
    assert produce_outcome(code, record_count=3) is Outcome.FAIL


def test_an_unknown_error_code_is_fatal_as_in_kafka() -> None:
    assert produce_outcome(9999, record_count=1) is Outcome.FAIL
    assert not KafkaError(9999).retriable


def test_message_too_large_splits_a_batch_then_fails_the_single_record() -> None:
    assert produce_outcome(ErrorCode.MESSAGE_TOO_LARGE, record_count=2) is Outcome.SPLIT
    assert produce_outcome(ErrorCode.MESSAGE_TOO_LARGE, record_count=1) is Outcome.FAIL


def test_success_is_done() -> None:
    assert produce_outcome(ErrorCode.NONE, record_count=1) is Outcome.DONE


def test_leader_errors_refresh_metadata_and_replica_shortage_does_not() -> None:
    assert refreshes_metadata(ErrorCode.NOT_LEADER_OR_FOLLOWER)
    assert refreshes_metadata(ErrorCode.FENCED_LEADER_EPOCH)
    assert not refreshes_metadata(ErrorCode.NOT_ENOUGH_REPLICAS)
    assert not refreshes_metadata(ErrorCode.REQUEST_TIMED_OUT)


# --- settings --------------------------------------------------------------------------------


def test_acks_take_kafkas_spellings() -> None:
    assert [parse_acks(value) for value in ("all", "-1", "0", "1", 1)] == [-1, -1, 0, 1, 1]
    with pytest.raises(ValueError, match="acks '2'"):
        parse_acks("2")


def test_delivery_timeout_must_cover_linger_and_one_request() -> None:
    config = ProducerConfig(linger_ms=100, request_timeout_ms=1000, delivery_timeout_ms=1050)

    with pytest.raises(ValueError, match="delivery_timeout_ms 1050 is below linger_ms 100"):
        config.validate()


# --- cluster view ----------------------------------------------------------------------------


def test_bootstrap_servers_default_to_the_local_rpc_listeners_or_the_environment() -> None:
    assert default_bootstrap_servers({}) == ["127.0.0.1:9093", "127.0.0.1:9193", "127.0.0.1:9293"]
    assert default_bootstrap_servers({"KRAFT_BOOTSTRAP_SERVERS": "a:1, b:2"}) == ["a:1", "b:2"]
    with pytest.raises(ValueError, match="not host:port"):
        parse_bootstrap_servers("localhost")


def test_metadata_answer_is_parsed_into_leaders_and_brokers() -> None:
    answer = {
        "cluster_id": "c",
        "controller_id": 1,
        "brokers": [{"broker_id": 2, "host": "h", "port": 9193, "rack": None, "fenced": False}],
        "topics": [
            {
                "topic": "t",
                "topic_id": "x",
                "error_code": 0,
                "partitions": [
                    {"partition": 1, "leader": -1, "leader_epoch": 3, "replicas": [2], "isr": []},
                    {"partition": 0, "leader": 2, "leader_epoch": 4, "replicas": [2], "isr": [2]},
                ],
            },
            {"topic": "gone", "topic_id": None, "error_code": 3, "partitions": []},
        ],
    }

    metadata = parse_metadata(answer)

    leader = metadata.leader("t", 0)
    assert leader is not None and leader.address == "h:9193"
    assert metadata.leader("t", 1) is None  # no leader right now
    assert metadata.topics["gone"].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_a_malformed_metadata_answer_names_the_field() -> None:
    with pytest.raises(MalformedResponseError, match=r"metadata.brokers\[0\].port"):
        parse_metadata({"brokers": [{"broker_id": 1, "host": "h", "port": "x"}], "topics": []})


def test_backoff_doubles_from_the_initial_to_the_cap() -> None:
    assert [backoff_ms(n, 100, 1000) for n in range(6)] == [0, 100, 200, 400, 800, 1000]


def test_backoff_jitter_only_shortens_the_delay() -> None:
    rng = random.Random(3)
    delays = [backoff_ms(2, 100, 1000, rng) for _ in range(100)]
    assert all(160 <= delay <= 200 for delay in delays)
