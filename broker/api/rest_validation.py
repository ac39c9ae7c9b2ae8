"""Checks of the Confluent REST v3 request bodies and path values (SPEC §5, §7).

Pure functions over already-read bytes and strings; each refusal is an ApiError naming the
field, the value and the rule:

- 40001: the body is not a JSON object, a field is missing, unknown, or of the wrong type;
- 40002: a well-typed value the cluster refuses here already (counts that are not positive
  or beyond Kafka's int32, duplicate config names, an unknown `operation`);
- 40403: a partition id in the path that cannot name a partition.

The rules that need the cluster's state (topic names, live brokers, known configs and their
values) are the controller's; its refusals pass through with their own codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker.api.errors import ApiError, ErrorCode
from broker.api.validation import json_type_name, parse_json_object

# Kafka's partition counts, ids and replication factors are int32 on the wire.
INT32_MAX = 2**31 - 1
MAX_CONFIGS_PER_REQUEST = 1000
CONFIG_OPERATIONS = ("SET", "DELETE")


@dataclass(frozen=True, slots=True)
class CreateTopicRequest:
    topic_name: str
    partitions_count: int | None  # None: the cluster default (num.partitions)
    replication_factor: int | None  # None: the cluster default (default.replication.factor)
    configs: Mapping[str, str]
    validate_only: bool


@dataclass(frozen=True, slots=True)
class AlterConfigsRequest:
    set_configs: Mapping[str, str]
    delete_configs: tuple[str, ...]
    validate_only: bool


def _malformed(message: str) -> ApiError:
    return ApiError(ErrorCode.MALFORMED_REQUEST, message)


def check_fields(
    document: Mapping[str, Any], where: str, allowed: tuple[str, ...], required: tuple[str, ...]
) -> None:
    unknown = sorted(set(document) - set(allowed))
    if unknown:
        names = ", ".join(repr(name) for name in allowed)
        raise _malformed(f"unknown field {where + unknown[0]!r}; the fields are {names}")
    for name in required:
        if name not in document:
            raise _malformed(f"field {where + name!r} is missing")


def string_field(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise _malformed(f"field {field!r} must be a string, got {json_type_name(value)}")
    return value


def _boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _malformed(f"field {field!r} must be a boolean, got {json_type_name(value)}")
    return value


def _positive_int(value: Any, field: str, what: str) -> int:
    # bool is an int in Python, not in JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed(f"field {field!r} must be an integer, got {json_type_name(value)}")
    if value < 1:
        raise ApiError(
            ErrorCode.BAD_REQUEST, f"{what} {value} is not positive; it must be 1 or more"
        )
    if value > INT32_MAX:
        raise ApiError(
            ErrorCode.BAD_REQUEST, f"{what} {value} is larger than the limit of {INT32_MAX}"
        )
    return value


def _optional_positive_int(document: Mapping[str, Any], field: str, what: str) -> int | None:
    value = document.get(field)
    return None if value is None else _positive_int(value, field, what)


def _array(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise _malformed(f"field {field!r} must be an array, got {json_type_name(value)}")
    if len(value) > MAX_CONFIGS_PER_REQUEST:
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"field {field!r} has {len(value)} entries, more than the limit of "
            f"{MAX_CONFIGS_PER_REQUEST}",
        )
    return value


def _entry(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(f"field {field!r} must be an object, got {json_type_name(value)}")
    return value


def _check_unique(name: str, seen: set[str], field: str) -> None:
    if name in seen:
        raise ApiError(ErrorCode.BAD_REQUEST, f"config {name!r} is given twice in {field!r}")
    seen.add(name)


def _create_configs(value: Any) -> dict[str, str]:
    configs: dict[str, str] = {}
    for index, raw in enumerate(_array(value, "configs")):
        field = f"configs[{index}]"
        entry = _entry(raw, field)
        check_fields(entry, f"{field}.", ("name", "value"), ("name", "value"))
        name = string_field(entry["name"], f"{field}.name")
        _check_unique(name, set(configs), "configs")
        configs[name] = string_field(entry["value"], f"{field}.value")
    return configs


def parse_create_topic_body(body: bytes) -> CreateTopicRequest:
    """`POST .../topics`: {"topic_name", "partitions_count"?, "replication_factor"?,
    "configs"?: [{"name", "value"}], "validate_only"?}."""
    document = parse_json_object(body)
    fields = ("topic_name", "partitions_count", "replication_factor", "configs", "validate_only")
    check_fields(document, "", fields, ("topic_name",))
    configs = document.get("configs")
    validate_only = document.get("validate_only")
    return CreateTopicRequest(
        topic_name=string_field(document["topic_name"], "topic_name"),
        partitions_count=_optional_positive_int(document, "partitions_count", "partitions_count"),
        replication_factor=_optional_positive_int(
            document, "replication_factor", "replication_factor"
        ),
        configs={} if configs is None else _create_configs(configs),
        validate_only=False if validate_only is None else _boolean(validate_only, "validate_only"),
    )


def parse_update_partitions_body(body: bytes) -> int:
    """`PATCH .../topics/{t}`: {"partitions_count": N}, the new total."""
    document = parse_json_object(body)
    check_fields(document, "", ("partitions_count",), ("partitions_count",))
    return _positive_int(document["partitions_count"], "partitions_count", "partitions_count")


def parse_update_config_body(body: bytes) -> str:
    """`PUT .../configs/{name}`: {"value": <string>}."""
    document = parse_json_object(body)
    check_fields(document, "", ("value",), ("value",))
    return string_field(document["value"], "value")


def _alter_entry(raw: Any, index: int) -> tuple[str, str | None]:
    """(name, value to set) or (name, None) to delete."""
    field = f"data[{index}]"
    entry = _entry(raw, field)
    check_fields(entry, f"{field}.", ("name", "value", "operation"), ("name",))
    name = string_field(entry["name"], f"{field}.name")
    operation = entry.get("operation")
    operation = "SET" if operation is None else string_field(operation, f"{field}.operation")
    if operation not in CONFIG_OPERATIONS:
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"operation {operation!r} of config {name!r} is not one of SET, DELETE",
        )
    value = entry.get("value")
    if operation == "DELETE":
        if value is not None:
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                f"config {name!r} has operation DELETE and a value; a deleted config takes none",
            )
        return name, None
    if value is None:
        raise _malformed(f"field '{field}.value' is missing; operation SET needs a value")
    return name, string_field(value, f"{field}.value")


def parse_alter_configs_body(body: bytes) -> AlterConfigsRequest:
    """`POST .../configs:alter`: {"data": [{"name", "value"?, "operation"?}],
    "validate_only"?}; the operation is SET (the default, needs a value) or DELETE."""
    document = parse_json_object(body)
    check_fields(document, "", ("data", "validate_only"), ("data",))
    entries = _array(document["data"], "data")
    if not entries:
        raise ApiError(ErrorCode.BAD_REQUEST, "field 'data' is empty; give at least one config")
    set_configs: dict[str, str] = {}
    delete_configs: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(entries):
        name, value = _alter_entry(raw, index)
        _check_unique(name, seen, "data")
        if value is None:
            delete_configs.append(name)
        else:
            set_configs[name] = value
    validate_only = document.get("validate_only")
    return AlterConfigsRequest(
        set_configs=set_configs,
        delete_configs=tuple(delete_configs),
        validate_only=False if validate_only is None else _boolean(validate_only, "validate_only"),
    )


def parse_partition_id(text: str, topic_name: str) -> int:
    """A partition id in a path; one that cannot name a partition is not found (40403)."""
    if not text.isascii() or not text.isdigit() or int(text) > INT32_MAX:
        raise ApiError(
            ErrorCode.TOPIC_OR_PARTITION_NOT_FOUND,
            f"partition {text!r} of topic {topic_name!r} not found: a partition id is an "
            f"integer from 0 to {INT32_MAX}",
        )
    return int(text)


def parse_broker_id(text: str) -> int:
    """A broker id in a path; one that cannot name a broker is not found (40402)."""
    if not text.isascii() or not text.isdigit() or int(text) > INT32_MAX:
        raise ApiError(
            ErrorCode.BROKER_NOT_FOUND,
            f"broker {text!r} not found: a broker id is an integer from 0 to {INT32_MAX}",
        )
    return int(text)
