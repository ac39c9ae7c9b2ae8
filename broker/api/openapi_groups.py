"""The OpenAPI paths and schemas of the consumer-group routes (broker/api/consumer_groups),
merged by broker/api/openapi into `/openapi.json`."""

from __future__ import annotations

import copy
from typing import Any

from broker.api.errors import ErrorCode
from broker.api.openapi_admin import (
    _BOOL,
    _CLUSTER_ID,
    _CLUSTER_NOT_FOUND,
    _INT,
    _LINK,
    _NULLABLE_LINK,
    _NULLABLE_STRING,
    _STRING,
    _list,
    _parameter,
    _read,
    _resource,
)
from broker.api.rest_v3 import V3_PREFIXES

_LONG = {"type": "integer", "format": "int64"}
_NULLABLE_LONG = {**_LONG, "nullable": True}
_GROUP_ID = _parameter("group_id", _STRING)
_GROUP_NOT_FOUND = f"unknown consumer group ({int(ErrorCode.KEY_NOT_FOUND)})"
_STATES = ["EMPTY", "PREPARING_REBALANCE", "COMPLETING_REBALANCE", "STABLE", "DEAD", "UNKNOWN"]

SCHEMAS: dict[str, Any] = {
    "KafkaConsumerGroup": _resource(
        "KafkaConsumerGroup",
        {
            "cluster_id": _STRING,
            "consumer_group_id": _STRING,
            "is_simple": _BOOL,
            "partition_assignor": _STRING,
            "state": {"type": "string", "enum": _STATES},
            "coordinator": _LINK,
            "consumer": _LINK,
            "lag_summary": _LINK,
        },
    ),
    "KafkaConsumerGroupList": _list("KafkaConsumerGroupList", "KafkaConsumerGroup"),
    "KafkaConsumer": _resource(
        "KafkaConsumer",
        {
            "cluster_id": _STRING,
            "consumer_group_id": _STRING,
            "consumer_id": _STRING,
            "instance_id": _NULLABLE_STRING,
            "client_id": _STRING,
            "assignments": _LINK,
        },
    ),
    "KafkaConsumerList": _list("KafkaConsumerList", "KafkaConsumer"),
    "KafkaConsumerLag": _resource(
        "KafkaConsumerLag",
        {
            "cluster_id": _STRING,
            "consumer_group_id": _STRING,
            "topic_name": _STRING,
            "partition_id": _INT,
            "current_offset": _LONG,
            "log_end_offset": _LONG,
            "lag": _NULLABLE_LONG,
            "consumer_id": _STRING,
            "instance_id": _NULLABLE_STRING,
            "client_id": _STRING,
        },
    ),
    "KafkaConsumerLagList": _list("KafkaConsumerLagList", "KafkaConsumerLag"),
    "KafkaConsumerGroupLagSummary": _resource(
        "KafkaConsumerGroupLagSummary",
        {
            "cluster_id": _STRING,
            "consumer_group_id": _STRING,
            "max_lag_consumer_id": _STRING,
            "max_lag_instance_id": _NULLABLE_STRING,
            "max_lag_client_id": _STRING,
            "max_lag_topic_name": _STRING,
            "max_lag_partition_id": _INT,
            "max_lag": _LONG,
            "total_lag": _LONG,
            "max_lag_consumer": _NULLABLE_LINK,
            "max_lag_partition": _NULLABLE_LINK,
        },
    ),
}

_GROUPS = "/clusters/{cluster_id}/consumer-groups"
_GROUP = _GROUPS + "/{group_id}"


def _paths(tag: str) -> dict[str, Any]:
    group = [_CLUSTER_ID, _GROUP_ID]
    return {
        _GROUPS: {
            "parameters": [_CLUSTER_ID],
            "get": _read(
                f"listConsumerGroups{tag}",
                "Every consumer group of the cluster (asked of every broker).",
                "KafkaConsumerGroupList",
                _CLUSTER_NOT_FOUND,
            ),
        },
        _GROUP: {
            "parameters": group,
            "get": _read(
                f"getConsumerGroup{tag}",
                "A consumer group, as its coordinator has it.",
                "KafkaConsumerGroup",
                _CLUSTER_NOT_FOUND,
                _GROUP_NOT_FOUND,
            ),
        },
        _GROUP + "/consumers": {
            "parameters": group,
            "get": _read(
                f"listConsumerGroupConsumers{tag}",
                "The group's members.",
                "KafkaConsumerList",
                _CLUSTER_NOT_FOUND,
                _GROUP_NOT_FOUND,
            ),
        },
        _GROUP + "/lag-summary": {
            "parameters": group,
            "get": _read(
                f"getConsumerGroupLagSummary{tag}",
                "The group's largest and total lag.",
                "KafkaConsumerGroupLagSummary",
                _CLUSTER_NOT_FOUND,
                _GROUP_NOT_FOUND,
            ),
        },
        _GROUP + "/lags": {
            "parameters": group,
            "get": _read(
                f"listConsumerGroupLags{tag}",
                "Committed offset, log end offset and lag of each partition the group "
                "committed or is assigned.",
                "KafkaConsumerLagList",
                _CLUSTER_NOT_FOUND,
                _GROUP_NOT_FOUND,
            ),
        },
    }


def group_paths() -> dict[str, Any]:
    tags = {"/v3": "", "/kafka/v3": "Kafka"}
    return copy.deepcopy(
        {
            prefix + path: item
            for prefix in V3_PREFIXES
            for path, item in _paths(tags[prefix]).items()
        }
    )
