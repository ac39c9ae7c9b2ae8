"""DescribeConfigs (KIP-133, KIP-226 sources and synonyms, KIP-569 types and docs),
AlterConfigs (replaces a resource's configs) and IncrementalAlterConfigs (KIP-339: SET,
DELETE, APPEND, SUBTRACT) over the fake controller gateway and a real metadata image."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from kio.schema.errors import ErrorCode as KafkaError

from broker.api.facade import NoLeaderError
from broker.kafka.apis import SUPPORTED_VERSIONS, ApiKey
from broker.kafka.config_entries import (
    AlterOp,
    ConfigRefusal,
    ConfigSource,
    ConfigType,
    ResourceType,
    incremental_change,
    replacement,
)
from tests.unit.kafka.helpers import Fixture, nested

TOPIC = int(ResourceType.TOPIC)
BROKER = int(ResourceType.BROKER)
NODE_CONFIG = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "log.dirs": "/data/1",
    "log.retention.ms": "3600000",
    "log.retention.bytes": "-1",
    "log.segment.bytes": "1073741824",
    "min.insync.replicas": "2",
    "http.admin.token": "secret",
}


def describe_resource(version: int, resource_type: int, name: str, keys: Any = None) -> Any:
    return nested(
        ApiKey.DESCRIBE_CONFIGS,
        version,
        "DescribeConfigsResource",
        resource_type=resource_type,
        resource_name=name,
        configuration_keys=keys,
    )


async def describe(fixture: Fixture, version: int, *resources: Any, **flags: Any) -> Any:
    return await fixture.call(ApiKey.DESCRIBE_CONFIGS, version, resources=resources, **flags)


def by_name(result: Any) -> dict[str, Any]:
    return {config.name: config for config in result.configs}


def alter_resource(version: int, resource_type: int, name: str, **configs: str | None) -> Any:
    entries = tuple(
        nested(ApiKey.ALTER_CONFIGS, version, "AlterableConfig", name=key, value=value)
        for key, value in configs.items()
    )
    return nested(
        ApiKey.ALTER_CONFIGS,
        version,
        "AlterConfigsResource",
        resource_type=resource_type,
        resource_name=name,
        configs=entries,
    )


def incremental_resource(
    version: int, resource_type: int, name: str, *operations: tuple[str, int, str | None]
) -> Any:
    entries = tuple(
        nested(
            ApiKey.INCREMENTAL_ALTER_CONFIGS,
            version,
            "AlterableConfig",
            name=key,
            config_operation=op,
            value=value,
        )
        for key, op, value in operations
    )
    return nested(
        ApiKey.INCREMENTAL_ALTER_CONFIGS,
        version,
        "AlterConfigsResource",
        resource_type=resource_type,
        resource_name=name,
        configs=entries,
    )


def topic_configs(fixture: Fixture, name: str = "orders") -> dict[str, str]:
    return dict(fixture.builder.image.configs("topic", name))


# -- DescribeConfigs ---------------------------------------------------------------------------


def test_config_apis_are_advertised_with_their_versions() -> None:
    assert SUPPORTED_VERSIONS[ApiKey.DESCRIBE_CONFIGS] == (1, 4)
    assert SUPPORTED_VERSIONS[ApiKey.ALTER_CONFIGS] == (0, 2)
    assert SUPPORTED_VERSIONS[ApiKey.INCREMENTAL_ALTER_CONFIGS] == (0, 1)


async def test_describe_topic_gives_every_topic_config_with_its_source() -> None:
    fixture = Fixture(broker_config=dict(NODE_CONFIG))
    body = await describe(
        fixture,
        4,
        describe_resource(4, TOPIC, "orders"),
        include_synonyms=True,
        include_documentation=True,
    )
    (result,) = body.results
    assert result.error_code == KafkaError.none
    configs = by_name(result)
    assert set(configs) == {
        "cleanup.policy",
        "delete.retention.ms",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.timestamp.type",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.ms",
        "unclean.leader.election.enable",
    }
    retention = configs["retention.ms"]
    assert (retention.value, retention.config_source) == (
        "60000",
        ConfigSource.DYNAMIC_TOPIC_CONFIG,
    )
    assert [(s.name, s.value, s.source) for s in retention.synonyms] == [
        ("retention.ms", "60000", ConfigSource.DYNAMIC_TOPIC_CONFIG),
        ("log.retention.ms", "3600000", ConfigSource.STATIC_BROKER_CONFIG),
    ]
    assert retention.config_type == ConfigType.LONG
    assert retention.documentation
    assert not retention.read_only
    isr = configs["min.insync.replicas"]
    assert (isr.value, isr.config_source) == ("2", ConfigSource.STATIC_BROKER_CONFIG)
    segment = configs["segment.bytes"]
    assert (segment.value, segment.config_source) == ("1073741824", ConfigSource.DEFAULT_CONFIG)
    policy = configs["cleanup.policy"]
    assert (policy.value, policy.config_source, policy.config_type) == (
        "delete",
        ConfigSource.DEFAULT_CONFIG,
        ConfigType.LIST,
    )
    ratio = configs["min.cleanable.dirty.ratio"]
    assert (ratio.value, ratio.config_source, ratio.config_type) == (
        "0.5",
        ConfigSource.DEFAULT_CONFIG,
        ConfigType.DOUBLE,
    )
    assert [(s.name, s.value) for s in configs["delete.retention.ms"].synonyms] == [
        ("log.cleaner.delete.retention.ms", "86400000")
    ]


async def test_describe_v1_omits_synonyms_unless_asked_and_filters_by_key() -> None:
    fixture = Fixture()
    keys = ("retention.ms", "no.such.config")
    body = await describe(fixture, 1, describe_resource(1, TOPIC, "orders", keys))
    (result,) = body.results
    assert [c.name for c in result.configs] == ["retention.ms"]
    assert result.configs[0].synonyms == ()
    empty = await describe(fixture, 1, describe_resource(1, TOPIC, "orders", ()))
    assert empty.results[0].configs == (), "an empty key list asks for no config"


async def test_describe_unknown_topic_is_refused_for_that_resource_only() -> None:
    fixture = Fixture()
    body = await describe(
        fixture, 2, describe_resource(2, TOPIC, "nope"), describe_resource(2, TOPIC, "orders")
    )
    missing, found = body.results
    assert missing.error_code == KafkaError.unknown_topic_or_partition
    assert missing.error_message == "topic 'nope' does not exist"
    assert missing.configs == ()
    assert found.error_code == KafkaError.none
    assert len(found.configs) == 13


async def test_describe_reads_an_alter_committed_through_another_broker() -> None:
    fixture = Fixture()
    fixture.admin.elsewhere.append(lambda b: b.config("topic", "orders", "retention.ms", "5000"))

    body = await describe(fixture, 2, describe_resource(2, TOPIC, "orders", ["retention.ms"]))

    assert by_name(body.results[0])["retention.ms"].value == "5000"


async def test_describe_or_alter_an_invalid_topic_name_is_invalid_topic() -> None:
    fixture = Fixture()
    body = await describe(fixture, 4, describe_resource(4, TOPIC, "bad name!"))
    assert body.results[0].error_code == KafkaError.invalid_topic_exception
    assert "bad name!" in str(body.results[0].error_message)
    resource = alter_resource(2, TOPIC, "..", **{"retention.ms": "5"})
    body = await fixture.call(ApiKey.ALTER_CONFIGS, 2, resources=(resource,), validate_only=False)
    assert body.responses[0].error_code == KafkaError.invalid_topic_exception


async def test_describe_broker_gives_the_node_configuration_read_only() -> None:
    fixture = Fixture(broker_config=dict(NODE_CONFIG))
    body = await describe(fixture, 3, describe_resource(3, BROKER, "1"))
    configs = by_name(body.results[0])
    assert configs["node.id"].value == "1"
    assert configs["log.retention.ms"].config_source == ConfigSource.STATIC_BROKER_CONFIG
    assert all(config.read_only for config in configs.values())
    token = configs["http.admin.token"]
    assert (token.value, token.is_sensitive, token.config_type) == (
        None,
        True,
        ConfigType.PASSWORD,
    )
    assert configs["process.roles"].config_type == ConfigType.LIST


async def test_without_node_configuration_the_data_plane_settings_are_described() -> None:
    fixture = Fixture()
    fixture.data.settings = dataclasses.replace(fixture.data.settings, min_insync_replicas=2)
    body = await describe(fixture, 1, describe_resource(1, BROKER, "1"))
    configs = by_name(body.results[0])
    assert (configs["node.id"].value, configs["node.id"].config_source) == (
        "1",
        ConfigSource.STATIC_BROKER_CONFIG,
    )
    assert "listeners" not in configs, "not known, so not described"
    body = await describe(fixture, 1, describe_resource(1, TOPIC, "orders"))
    isr = by_name(body.results[0])["min.insync.replicas"]
    assert (isr.value, isr.config_source) == ("2", ConfigSource.STATIC_BROKER_CONFIG)


async def test_describe_another_broker_or_an_unsupported_type_is_invalid_request() -> None:
    fixture = Fixture()
    body = await describe(
        fixture, 4, describe_resource(4, BROKER, "2"), describe_resource(4, 8, "1")
    )
    other, logger = body.results
    assert other.error_code == KafkaError.invalid_request
    assert "this is broker 1; ask broker 2" in str(other.error_message)
    assert logger.error_code == KafkaError.invalid_request
    assert "resource type 8 (BROKER_LOGGER)" in str(logger.error_message)


# -- AlterConfigs ------------------------------------------------------------------------------


async def test_alter_configs_replaces_the_topic_configs() -> None:
    fixture = Fixture()
    resource = alter_resource(2, TOPIC, "orders", **{"min.insync.replicas": "2"})
    body = await fixture.call(ApiKey.ALTER_CONFIGS, 2, resources=(resource,), validate_only=False)
    (response,) = body.responses
    assert (response.error_code, response.resource_name) == (KafkaError.none, "orders")
    assert topic_configs(fixture) == {"min.insync.replicas": "2"}, "retention.ms was reset"


async def test_alter_configs_invalid_value_names_key_and_value() -> None:
    fixture = Fixture()
    resource = alter_resource(0, TOPIC, "orders", **{"retention.ms": "soon"})
    body = await fixture.call(ApiKey.ALTER_CONFIGS, 0, resources=(resource,), validate_only=False)
    (response,) = body.responses
    assert response.error_code == KafkaError.invalid_config
    assert "'soon'" in str(response.error_message)
    assert "'retention.ms'" in str(response.error_message)
    assert topic_configs(fixture) == {"retention.ms": "60000"}, "nothing changed"


async def test_alter_configs_unknown_key_is_invalid_config() -> None:
    fixture = Fixture()
    resource = alter_resource(1, TOPIC, "orders", **{"flush.ms": "10"})
    body = await fixture.call(ApiKey.ALTER_CONFIGS, 1, resources=(resource,), validate_only=False)
    assert body.responses[0].error_code == KafkaError.invalid_config
    assert "unknown topic config 'flush.ms'" in str(body.responses[0].error_message)


async def test_alter_configs_validate_only_changes_nothing() -> None:
    fixture = Fixture()
    resource = alter_resource(2, TOPIC, "orders", **{"retention.ms": "1000"})
    body = await fixture.call(ApiKey.ALTER_CONFIGS, 2, resources=(resource,), validate_only=True)
    assert body.responses[0].error_code == KafkaError.none
    assert topic_configs(fixture) == {"retention.ms": "60000"}


async def test_alter_broker_resource_is_refused_as_static() -> None:
    fixture = Fixture()
    broker = alter_resource(2, BROKER, "1", **{"log.retention.ms": "1"})
    topic = alter_resource(2, TOPIC, "orders", **{"retention.ms": "5"})
    body = await fixture.call(
        ApiKey.ALTER_CONFIGS, 2, resources=(broker, topic), validate_only=False
    )
    refused, done = body.responses
    assert refused.error_code == KafkaError.invalid_request
    assert "broker configs are static" in str(refused.error_message)
    assert "'log.retention.ms'" in str(refused.error_message)
    assert done.error_code == KafkaError.none
    assert topic_configs(fixture) == {"retention.ms": "5"}


async def test_alter_unknown_topic_and_duplicate_resources_are_refused_per_resource() -> None:
    fixture = Fixture()
    missing = alter_resource(2, TOPIC, "nope", **{"retention.ms": "5"})
    twice = alter_resource(2, TOPIC, "audit.log", **{"retention.ms": "5"})
    body = await fixture.call(
        ApiKey.ALTER_CONFIGS, 2, resources=(missing, twice, twice), validate_only=False
    )
    codes = [response.error_code for response in body.responses]
    assert codes == [
        KafkaError.unknown_topic_or_partition,
        KafkaError.invalid_request,
        KafkaError.invalid_request,
    ]


async def test_alter_answers_not_controller_when_no_controller_is_known() -> None:
    fixture = Fixture()
    fixture.admin.error = NoLeaderError("no active controller is known")
    resource = alter_resource(2, TOPIC, "orders", **{"retention.ms": "5"})
    body = await fixture.call(ApiKey.ALTER_CONFIGS, 2, resources=(resource,), validate_only=False)
    assert body.responses[0].error_code == KafkaError.not_controller


# -- IncrementalAlterConfigs -------------------------------------------------------------------


async def test_incremental_alter_sets_and_deletes_one_config_each() -> None:
    fixture = Fixture()
    resource = incremental_resource(
        1,
        TOPIC,
        "orders",
        ("retention.ms", AlterOp.DELETE, None),
        ("min.insync.replicas", AlterOp.SET, "2"),
    )
    body = await fixture.call(
        ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, resources=(resource,), validate_only=False
    )
    assert body.responses[0].error_code == KafkaError.none
    assert topic_configs(fixture) == {"min.insync.replicas": "2"}


async def test_incremental_append_starts_from_the_default_of_a_list_config() -> None:
    fixture = Fixture()
    resource = incremental_resource(
        0, TOPIC, "orders", ("cleanup.policy", AlterOp.APPEND, "compact")
    )
    body = await fixture.call(
        ApiKey.INCREMENTAL_ALTER_CONFIGS, 0, resources=(resource,), validate_only=False
    )
    assert body.responses[0].error_code == KafkaError.none
    assert topic_configs(fixture)["cleanup.policy"] == "delete,compact"


async def test_incremental_append_to_a_number_is_invalid_config() -> None:
    fixture = Fixture()
    resource = incremental_resource(1, TOPIC, "orders", ("retention.ms", AlterOp.APPEND, "5"))
    body = await fixture.call(
        ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, resources=(resource,), validate_only=False
    )
    assert body.responses[0].error_code == KafkaError.invalid_config
    assert "'retention.ms' is not a list" in str(body.responses[0].error_message)
    assert topic_configs(fixture) == {"retention.ms": "60000"}


async def test_incremental_unknown_operation_is_invalid_request() -> None:
    fixture = Fixture()
    resource = incremental_resource(1, TOPIC, "orders", ("retention.ms", 9, "5"))
    body = await fixture.call(
        ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, resources=(resource,), validate_only=False
    )
    assert body.responses[0].error_code == KafkaError.invalid_request
    assert "operation 9 is not SET (0)" in str(body.responses[0].error_message)


# -- the pure part -----------------------------------------------------------------------------


def test_replacement_sets_what_changed_and_deletes_what_is_left_out() -> None:
    change = replacement({"a": "1", "b": "2"}, [("a", "1"), ("c", "3"), ("d", None)])
    assert change.set_configs == {"c": "3"}
    assert change.delete_configs == ("b",)


def test_incremental_subtract_removes_items_of_a_list_config() -> None:
    change = incremental_change(
        {"cleanup.policy": "compact,delete"}, [("cleanup.policy", AlterOp.SUBTRACT, "delete")], {}
    )
    assert change.set_configs == {"cleanup.policy": "compact"}
    assert change.delete_configs == ()


def test_incremental_operations_on_one_key_twice_are_refused() -> None:
    with pytest.raises(ConfigRefusal, match="appears more than once"):
        incremental_change({}, [("a", AlterOp.SET, "1"), ("a", AlterOp.DELETE, None)], {})


def test_incremental_set_without_value_is_invalid_config() -> None:
    with pytest.raises(ConfigRefusal, match="SET needs a value") as raised:
        incremental_change({}, [("retention.ms", AlterOp.SET, None)], {})
    assert raised.value.code == KafkaError.invalid_config
