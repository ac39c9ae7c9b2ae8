"""The OpenAPI paths and schemas of the admin routes (broker/api/rest_v3): the Confluent REST
v3 subset, under both `/v3` and `/kafka/v3`, and the health overview. broker/api/openapi
merges them into the document served at `/openapi.json`.
"""

from __future__ import annotations

import copy
from typing import Any

from broker.api.errors import RETRY_AFTER_SECONDS, ErrorCode
from broker.api.health import MAX_LISTED_PARTITIONS
from broker.api.rest_v3 import HEALTH_OVERVIEW_PATH, V3_PREFIXES
from broker.api.rest_validation import CONFIG_OPERATIONS, INT32_MAX


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": _json_content(_ref("Error")), **extra}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_INT = {"type": "integer", "format": "int32"}
_BOOL = {"type": "boolean"}
_LINK = _object({"related": _STRING})
_NULLABLE_LINK = {**_LINK, "nullable": True}
_METADATA = _object({"self": _STRING, "resource_name": _STRING})
_LIST_METADATA = _object({"self": _STRING, "next": _NULLABLE_STRING})


def _resource(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    return _object({"kind": {"type": "string", "enum": [kind]}, "metadata": _METADATA, **fields})


def _list(kind: str, item: str) -> dict[str, Any]:
    return _object(
        {
            "kind": {"type": "string", "enum": [kind]},
            "metadata": _LIST_METADATA,
            "data": {"type": "array", "items": _ref(item)},
        }
    )


SCHEMAS: dict[str, Any] = {
    "KafkaCluster": _resource(
        "KafkaCluster",
        {
            "cluster_id": _STRING,
            "controller": _NULLABLE_LINK,
            "acls": _LINK,
            "brokers": _LINK,
            "broker_configs": _LINK,
            "consumer_groups": _LINK,
            "topics": _LINK,
            "partition_reassignments": _LINK,
        },
    ),
    "KafkaClusterList": _list("KafkaClusterList", "KafkaCluster"),
    "KafkaBroker": _resource(
        "KafkaBroker",
        {
            "cluster_id": _STRING,
            "broker_id": _INT,
            "host": _NULLABLE_STRING,
            "port": {**_INT, "nullable": True},
            "rack": _NULLABLE_STRING,
            "is_fenced": {**_BOOL, "description": "kraft's addition: missed its session."},
            "is_in_controlled_shutdown": {
                **_BOOL,
                "description": "kraft's addition: moving its leadership away before it stops.",
            },
            "configs": _LINK,
            "partition_replicas": _LINK,
        },
    ),
    "KafkaBrokerList": _list("KafkaBrokerList", "KafkaBroker"),
    "KafkaTopic": _resource(
        "KafkaTopic",
        {
            "cluster_id": _STRING,
            "topic_name": _STRING,
            "topic_id": {
                **_NULLABLE_STRING,
                "description": "kraft's addition; null in a validate_only answer.",
            },
            "is_internal": _BOOL,
            "replication_factor": {**_INT, "nullable": True},
            "partitions_count": {**_INT, "nullable": True},
            "partitions": _LINK,
            "configs": _LINK,
            "partition_reassignments": _LINK,
            "authorized_operations": {"type": "array", "items": _STRING},
        },
    ),
    "KafkaTopicList": _list("KafkaTopicList", "KafkaTopic"),
    "KafkaPartition": _resource(
        "KafkaPartition",
        {
            "cluster_id": _STRING,
            "topic_name": _STRING,
            "partition_id": _INT,
            "leader": {**_NULLABLE_LINK, "description": "null while the partition is offline."},
            "replicas": _LINK,
            "reassignment": _LINK,
        },
    ),
    "KafkaPartitionList": _list("KafkaPartitionList", "KafkaPartition"),
    "KafkaReplica": _resource(
        "KafkaReplica",
        {
            "cluster_id": _STRING,
            "topic_name": _STRING,
            "partition_id": _INT,
            "broker_id": _INT,
            "is_leader": _BOOL,
            "is_in_sync": _BOOL,
            "broker": _LINK,
        },
    ),
    "KafkaReplicaList": _list("KafkaReplicaList", "KafkaReplica"),
    "KafkaTopicConfig": _resource(
        "KafkaTopicConfig",
        {
            "cluster_id": _STRING,
            "topic_name": _STRING,
            "name": _STRING,
            "value": _NULLABLE_STRING,
            "is_default": _BOOL,
            "is_read_only": _BOOL,
            "is_sensitive": _BOOL,
            "source": {
                "type": "string",
                "enum": [
                    "DYNAMIC_TOPIC_CONFIG",
                    "DYNAMIC_DEFAULT_BROKER_CONFIG",
                    "DEFAULT_CONFIG",
                ],
            },
            "synonyms": {
                "type": "array",
                "items": _object({"name": _STRING, "value": _NULLABLE_STRING, "source": _STRING}),
            },
        },
    ),
    "KafkaTopicConfigList": _list("KafkaTopicConfigList", "KafkaTopicConfig"),
    "CreateTopicRequest": {
        **_object(
            {
                "topic_name": {**_STRING, "pattern": "^[a-zA-Z0-9._-]{1,249}$"},
                "partitions_count": {**_INT, "minimum": 1, "maximum": INT32_MAX},
                "replication_factor": {**_INT, "minimum": 1, "maximum": INT32_MAX},
                "configs": {
                    "type": "array",
                    "items": {
                        **_object({"name": _STRING, "value": _STRING}),
                        "additionalProperties": False,
                    },
                },
                "validate_only": _BOOL,
            },
            required=["topic_name"],
        ),
        "additionalProperties": False,
    },
    "UpdatePartitionCountRequest": {
        **_object({"partitions_count": {**_INT, "minimum": 1, "maximum": INT32_MAX}}),
        "additionalProperties": False,
    },
    "UpdateConfigRequest": {**_object({"value": _STRING}), "additionalProperties": False},
    "AlterConfigBatchRequest": {
        **_object(
            {
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        **_object(
                            {
                                "name": _STRING,
                                "value": _NULLABLE_STRING,
                                "operation": {"type": "string", "enum": list(CONFIG_OPERATIONS)},
                            },
                            required=["name"],
                        ),
                        "additionalProperties": False,
                    },
                },
                "validate_only": _BOOL,
            },
            required=["data"],
        ),
        "additionalProperties": False,
    },
    "HealthOverview": _object(
        {
            "is_healthy": _BOOL,
            "unhealthy_reasons": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": [
                        "controller_unavailable",
                        "nodes_down",
                        "leaderless_partitions",
                        "under_replicated_partitions",
                    ],
                },
            },
            "controller_id": {**_INT, "description": "-1 when no controller is known."},
            "all_nodes": {"type": "array", "items": _INT},
            "nodes_down": {"type": "array", "items": _INT},
            "leaderless_count": _INT,
            "under_replicated_count": _INT,
            "leaderless_partitions": {
                "type": "array",
                "items": _STRING,
                "description": f"'kafka/<topic>/<partition>', the first {MAX_LISTED_PARTITIONS}.",
            },
            "under_replicated_partitions": {
                "type": "array",
                "items": _STRING,
                "description": f"'kafka/<topic>/<partition>', the first {MAX_LISTED_PARTITIONS}.",
            },
        }
    ),
}

# --- responses ------------------------------------------------------------------------------

_UNAUTHORIZED = _error(
    f"Admin token configured and the bearer token missing or wrong (error_code "
    f"{int(ErrorCode.UNAUTHORIZED)})."
)
_NOT_IMPLEMENTED = _error(
    f"Node built without the admin API (error_code {int(ErrorCode.NOT_IMPLEMENTED)})."
)
_CLUSTER_NOT_FOUND = (
    f"cluster id of the path is not this cluster's ({int(ErrorCode.CLUSTER_NOT_FOUND)})"
)
_TOPIC_NOT_FOUND = f"unknown topic ({int(ErrorCode.TOPIC_OR_PARTITION_NOT_FOUND)})"
_PARTITION_NOT_FOUND = f"unknown partition ({int(ErrorCode.TOPIC_OR_PARTITION_NOT_FOUND)})"
_BAD_BODY = _error(
    f"Malformed body: not JSON, not an object, a field missing, unknown or of the wrong type "
    f"({int(ErrorCode.MALFORMED_REQUEST)}); a value the cluster refuses: a count not "
    f"positive, topic exists, replication factor above the live brokers, invalid topic name, "
    f"unknown config or invalid value ({int(ErrorCode.BAD_REQUEST)})."
)
_TOO_LARGE = _error(f"Body too large (error_code {int(ErrorCode.REQUEST_TOO_LARGE)}).")
_WRONG_MEDIA = _error(
    f"Body not application/json (error_code {int(ErrorCode.UNSUPPORTED_MEDIA_TYPE)})."
)
_NO_CONTROLLER = _error(
    f"No active controller known, or it moved (error_code {int(ErrorCode.NO_LEADER)}); "
    "retry after the Retry-After header's seconds.",
    headers={"Retry-After": {"schema": {"type": "integer", "example": RETRY_AFTER_SECONDS}}},
)
_TIMED_OUT = _error(
    f"Timed out waiting for the write to commit (error_code {int(ErrorCode.TIMED_OUT)}); it "
    "may still take effect."
)


def _not_found(*what: str) -> dict[str, Any]:
    return _error("Not found: " + "; ".join(what) + ".")


def _ok(schema: str, description: str = "OK.") -> dict[str, Any]:
    return {"description": description, "content": _json_content(_ref(schema))}


def _read(operation_id: str, summary: str, schema: str, *not_found: str) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _ok(schema), "401": _UNAUTHORIZED}
    if not_found:
        responses["404"] = _not_found(*not_found)
    responses["501"] = _NOT_IMPLEMENTED
    return {"summary": summary, "operationId": operation_id, "responses": responses}


def _write(
    operation_id: str,
    summary: str,
    success: dict[str, Any],
    request_schema: str | None,
    *not_found: str,
) -> dict[str, Any]:
    responses: dict[str, Any] = {**success, "400": _BAD_BODY, "401": _UNAUTHORIZED}
    responses["404"] = _not_found(_CLUSTER_NOT_FOUND, *not_found)
    if request_schema is not None:
        responses["413"] = _TOO_LARGE
        responses["415"] = _WRONG_MEDIA
    responses.update({"501": _NOT_IMPLEMENTED, "503": _NO_CONTROLLER, "504": _TIMED_OUT})
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": operation_id,
        "responses": responses,
    }
    if request_schema is not None:
        operation["requestBody"] = {
            "required": True,
            "content": _json_content(_ref(request_schema)),
        }
    return operation


def _parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_CLUSTER_ID = _parameter("cluster_id", _STRING)
_TOPIC_NAME = _parameter("topic_name", _STRING)
_PARTITION_ID = _parameter("partition_id", {**_INT, "minimum": 0})
_BROKER_ID = _parameter("broker_id", {**_INT, "minimum": 0})
_CONFIG_NAME = _parameter("config_name", _STRING)
_NO_CONTENT = {"204": {"description": "Done; no body."}}

_CLUSTER = "/clusters/{cluster_id}"
_TOPIC = _CLUSTER + "/topics/{topic_name}"
_PARTITION = _TOPIC + "/partitions/{partition_id}"


def _v3_paths(tag: str) -> dict[str, Any]:
    """Paths below a v3 prefix; `tag` keeps operation ids unique across the two prefixes."""
    cluster = [_CLUSTER_ID]
    topic = [_CLUSTER_ID, _TOPIC_NAME]
    partition = [*topic, _PARTITION_ID]
    config = [*topic, _CONFIG_NAME]
    return {
        "/clusters": {
            "get": _read(
                f"listClusters{tag}", "This cluster, as a list of one.", "KafkaClusterList"
            )
        },
        _CLUSTER: {
            "parameters": cluster,
            "get": _read(f"getCluster{tag}", "The cluster.", "KafkaCluster", _CLUSTER_NOT_FOUND),
        },
        _CLUSTER + "/brokers": {
            "parameters": cluster,
            "get": _read(
                f"listBrokers{tag}", "Registered brokers.", "KafkaBrokerList", _CLUSTER_NOT_FOUND
            ),
        },
        _CLUSTER + "/brokers/{broker_id}": {
            "parameters": [*cluster, _BROKER_ID],
            "get": _read(
                f"getBroker{tag}",
                "A registered broker.",
                "KafkaBroker",
                _CLUSTER_NOT_FOUND,
                f"unknown broker ({int(ErrorCode.BROKER_NOT_FOUND)})",
            ),
        },
        _CLUSTER + "/topics": {
            "parameters": cluster,
            "get": _read(f"listTopics{tag}", "Topics.", "KafkaTopicList", _CLUSTER_NOT_FOUND),
            "post": _write(
                f"createTopic{tag}",
                "Creates a topic (committed and applied on this node when answered).",
                {
                    "201": _ok("KafkaTopic", "Created."),
                    "200": _ok("KafkaTopic", "validate_only: valid, nothing created."),
                },
                "CreateTopicRequest",
            ),
        },
        _TOPIC: {
            "parameters": topic,
            "get": _read(
                f"getTopic{tag}", "A topic.", "KafkaTopic", _CLUSTER_NOT_FOUND, _TOPIC_NOT_FOUND
            ),
            "delete": _write(
                f"deleteTopic{tag}", "Deletes a topic.", _NO_CONTENT, None, _TOPIC_NOT_FOUND
            ),
            "patch": _write(
                f"updatePartitionCount{tag}",
                "Grows the topic to partitions_count partitions (never shrinks).",
                {"200": _ok("KafkaTopic")},
                "UpdatePartitionCountRequest",
                _TOPIC_NOT_FOUND,
            ),
        },
        _TOPIC + "/partitions": {
            "parameters": topic,
            "get": _read(
                f"listPartitions{tag}",
                "Partitions of a topic.",
                "KafkaPartitionList",
                _CLUSTER_NOT_FOUND,
                _TOPIC_NOT_FOUND,
            ),
        },
        _PARTITION: {
            "parameters": partition,
            "get": _read(
                f"getPartition{tag}",
                "A partition.",
                "KafkaPartition",
                _CLUSTER_NOT_FOUND,
                _TOPIC_NOT_FOUND,
                _PARTITION_NOT_FOUND,
            ),
        },
        _PARTITION + "/replicas": {
            "parameters": partition,
            "get": _read(
                f"listReplicas{tag}",
                "Replicas of a partition, the preferred leader first.",
                "KafkaReplicaList",
                _CLUSTER_NOT_FOUND,
                _TOPIC_NOT_FOUND,
                _PARTITION_NOT_FOUND,
            ),
        },
        _PARTITION + "/replicas/{broker_id}": {
            "parameters": [*partition, _BROKER_ID],
            "get": _read(
                f"getReplica{tag}",
                "The replica of a partition on a broker.",
                "KafkaReplica",
                _CLUSTER_NOT_FOUND,
                _TOPIC_NOT_FOUND,
                _PARTITION_NOT_FOUND + " or no replica on that broker",
            ),
        },
        _TOPIC + "/configs": {
            "parameters": topic,
            "get": _read(
                f"listTopicConfigs{tag}",
                "The topic's configs: those it sets and the known topic configs.",
                "KafkaTopicConfigList",
                _CLUSTER_NOT_FOUND,
                _TOPIC_NOT_FOUND,
            ),
        },
        _TOPIC + "/configs/{config_name}": {
            "parameters": config,
            "get": _read(
                f"getTopicConfig{tag}",
                "One config of a topic.",
                "KafkaTopicConfig",
                _CLUSTER_NOT_FOUND,
                _TOPIC_NOT_FOUND,
                f"unknown config ({int(ErrorCode.CONFIG_NOT_FOUND)})",
            ),
            "put": _write(
                f"updateTopicConfig{tag}",
                "Sets one config of a topic.",
                _NO_CONTENT,
                "UpdateConfigRequest",
                _TOPIC_NOT_FOUND,
            ),
            "delete": _write(
                f"resetTopicConfig{tag}",
                "Resets one config of a topic to its default.",
                _NO_CONTENT,
                None,
                _TOPIC_NOT_FOUND,
            ),
        },
        _TOPIC + "/configs:alter": {
            "parameters": topic,
            "post": _write(
                f"alterTopicConfigs{tag}",
                "Sets and deletes several configs of a topic at once (all or none).",
                _NO_CONTENT,
                "AlterConfigBatchRequest",
                _TOPIC_NOT_FOUND,
            ),
        },
    }


_HEALTH_OVERVIEW: dict[str, Any] = {
    "get": {
        "summary": "Cluster health, as Redpanda's health overview.",
        "operationId": "getHealthOverview",
        "responses": {
            "200": _ok("HealthOverview"),
            "401": _UNAUTHORIZED,
            "501": _NOT_IMPLEMENTED,
        },
    }
}


def admin_paths() -> dict[str, Any]:
    """The admin routes' path items, keyed by full path."""
    paths: dict[str, Any] = {}
    tags = {"/v3": "", "/kafka/v3": "Kafka"}
    for prefix in V3_PREFIXES:
        for path, item in _v3_paths(tags[prefix]).items():
            paths[prefix + path] = item
    paths[HEALTH_OVERVIEW_PATH] = _HEALTH_OVERVIEW
    return copy.deepcopy(paths)
