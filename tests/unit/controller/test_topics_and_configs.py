"""Topic names (SPEC §7, Kafka's Topic.validate) and topic configs (SPEC §2)."""

from __future__ import annotations

import pytest

from kraft.controller.configs import validate_topic_configs
from kraft.controller.errors import InvalidConfigError, InvalidTopicNameError
from kraft.controller.topics import validate_new_topic_name, validate_topic_name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        (".", "not allowed"),
        ("..", "not allowed"),
        ("a" * 250, "250 characters, more than the 249"),
        ("with space", "illegal"),
        ("slash/name", "illegal"),
        ("ünïcode", "illegal"),
        ("tab\t", "illegal"),
        ("star*", "illegal"),
    ],
)
def test_invalid_topic_names(name: str, message: str) -> None:
    with pytest.raises(InvalidTopicNameError, match=message):
        validate_topic_name(name)


@pytest.mark.parametrize("name", ["a", "orders", "Orders.v2", "a_b-c.d", "...", "a" * 249, "-"])
def test_valid_topic_names(name: str) -> None:
    validate_topic_name(name)


def test_names_colliding_modulo_dot_and_underscore_are_refused_naming_both() -> None:
    with pytest.raises(InvalidTopicNameError, match="'a.b' collides with existing topic 'a_b'"):
        validate_new_topic_name("a.b", ["x", "a_b"])


def test_a_name_only_collides_with_another_topic() -> None:
    validate_new_topic_name("a.b", ["a.c", "ab"])


@pytest.mark.parametrize(
    "configs",
    [
        {},
        {"retention.ms": "-1"},
        {"retention.ms": "604800000", "retention.bytes": "-1"},
        {"segment.bytes": "14"},
        {"cleanup.policy": "delete"},
        {"cleanup.policy": "compact"},
        {"cleanup.policy": "compact,delete"},
        {"min.insync.replicas": "3"},
        {"max.message.bytes": "0"},
        {"unclean.leader.election.enable": "true"},
        {"unclean.leader.election.enable": "False"},
        {"segment.ms": "1"},
        {"delete.retention.ms": "0"},
        {"min.compaction.lag.ms": "60000", "max.compaction.lag.ms": "60000"},
        {"min.cleanable.dirty.ratio": "0"},
        {"min.cleanable.dirty.ratio": "0.01"},
        {"min.cleanable.dirty.ratio": "1.0"},
        {"min.cleanable.dirty.ratio": ".5"},
        {"message.timestamp.type": "LogAppendTime"},
        {"message.timestamp.type": "CreateTime"},
    ],
)
def test_valid_topic_configs(configs: dict[str, str]) -> None:
    validate_topic_configs(configs, replication_factor=3)


@pytest.mark.parametrize(
    ("configs", "message"),
    [
        ({"retention.msec": "1"}, "unknown topic config 'retention.msec'"),
        ({"retention.ms": "-2"}, "'-2' for config 'retention.ms': must be an integer from -1"),
        ({"retention.ms": "1h"}, "'1h' for config 'retention.ms'"),
        ({"retention.bytes": "9223372036854775808"}, "retention.bytes"),
        ({"segment.bytes": "13"}, "'13' for config 'segment.bytes': must be an integer from 14"),
        ({"segment.bytes": "2147483648"}, "segment.bytes"),
        ({"cleanup.policy": "keep"}, "'keep' for config 'cleanup.policy'"),
        ({"cleanup.policy": "delete,delete"}, "cleanup.policy"),
        ({"min.insync.replicas": "0"}, "min.insync.replicas"),
        ({"min.insync.replicas": "4"}, "from 1 to the replication factor 3"),
        ({"max.message.bytes": "-1"}, "max.message.bytes"),
        ({"unclean.leader.election.enable": "yes"}, "must be true or false"),
        ({"retention.ms": " 1"}, "retention.ms"),
        ({"segment.ms": "0"}, "'0' for config 'segment.ms': must be an integer from 1"),
        ({"delete.retention.ms": "-1"}, "delete.retention.ms"),
        ({"max.compaction.lag.ms": "0"}, "max.compaction.lag.ms"),
        ({"min.cleanable.dirty.ratio": "1.5"}, "must be a decimal number from 0 to 1"),
        ({"min.cleanable.dirty.ratio": "-0.1"}, "min.cleanable.dirty.ratio"),
        ({"min.cleanable.dirty.ratio": "half"}, "min.cleanable.dirty.ratio"),
        ({"min.cleanable.dirty.ratio": "nan"}, "min.cleanable.dirty.ratio"),
        ({"message.timestamp.type": "logappendtime"}, "must be CreateTime or LogAppendTime"),
    ],
)
def test_invalid_topic_configs_are_refused_naming_key_value_and_rule(
    configs: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        validate_topic_configs(configs, replication_factor=3)
