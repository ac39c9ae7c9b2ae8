"""The OpenAPI paths and schemas of the record routes (broker/api/records): Confluent REST
v3's produce under both `/v3` and `/kafka/v3`, and Redpanda's HTTP-proxy consume.
broker/api/openapi merges them into the document served at `/openapi.json`.
"""

from __future__ import annotations

import copy
from typing import Any

from broker.api.bodies import MAX_REQUEST_BODY_BYTES
from broker.api.errors import RETRY_AFTER_SECONDS, ErrorCode
from broker.api.records import CONSUME_PATH, DELIVERED, PRODUCE_PATH, PRODUCE_TIMEOUT_MS
from broker.api.records_validation import (
    DEFAULT_CONSUME_MAX_BYTES,
    DEFAULT_CONSUME_TIMEOUT_MS,
    INT64_MAX,
    MAX_CONSUME_MAX_BYTES,
    MAX_CONSUME_TIMEOUT_MS,
    MAX_HEADERS_PER_RECORD,
    MAX_RECORDS_PER_PRODUCE_REQUEST,
    RECORD_DATA_TYPES,
    RecordFormat,
)
from broker.api.rest_v3 import V3_PREFIXES
from broker.api.rest_validation import INT32_MAX


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
        **extra,
    }


_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_INT32 = {"type": "integer", "format": "int32"}
_INT64 = {"type": "integer", "format": "int64"}
_ANY_JSON: dict[str, Any] = {"nullable": True, "description": "Any JSON value."}

_RECORD_DATA = {
    **_object(
        {
            "type": {"type": "string", "enum": list(RECORD_DATA_TYPES)},
            "data": {
                **_ANY_JSON,
                "description": "BINARY: base64; STRING: a string; JSON: any JSON value; "
                "null: a null key or value.",
            },
        }
    ),
    "additionalProperties": False,
}
_DATA_REPORT = {
    **_object({"type": {"type": "string", "enum": list(RECORD_DATA_TYPES)}, "size": _INT64}),
    "nullable": True,
    "description": "Null when the record had no key (value) object.",
}

SCHEMAS: dict[str, Any] = {
    "ProduceRequest": {
        **_object(
            {
                "partition_id": {
                    **_INT32,
                    "minimum": 0,
                    "maximum": INT32_MAX,
                    "nullable": True,
                    "description": "Absent: murmur2 of the key, round robin without a key.",
                },
                "headers": {
                    "type": "array",
                    "maxItems": MAX_HEADERS_PER_RECORD,
                    "items": {
                        **_object({"name": _STRING, "value": _NULLABLE_STRING}, ["name"]),
                        "additionalProperties": False,
                        "description": "value: base64, or null.",
                    },
                },
                "key": _ref("ProduceRequestData"),
                "value": _ref("ProduceRequestData"),
                "timestamp": {
                    "description": "ISO 8601 date-time with a zone, or (our addition) "
                    "milliseconds since the Unix epoch; absent: now.",
                    "oneOf": [{"type": "string", "format": "date-time"}, _INT64],
                },
            },
            [],
        ),
        "additionalProperties": False,
    },
    "ProduceRequestData": _RECORD_DATA,
    "ProduceResponse": _object(
        {
            "error_code": {"type": "integer", "enum": [DELIVERED]},
            "cluster_id": _STRING,
            "topic_name": _STRING,
            "partition_id": _INT32,
            "offset": _INT64,
            "timestamp": {**_NULLABLE_STRING, "format": "date-time"},
            "key": _DATA_REPORT,
            "value": _DATA_REPORT,
        }
    ),
    "ConsumedRecord": _object(
        {
            "topic": _STRING,
            "key": {
                **_ANY_JSON,
                "description": "base64 (binary format) or the key as JSON (json format).",
            },
            "value": {
                **_ANY_JSON,
                "description": "base64 (binary format) or the value as JSON (json format).",
            },
            "partition": _INT32,
            "offset": _INT64,
            "timestamp": {**_INT64, "description": "ms since the Unix epoch (our addition)."},
        }
    ),
}

_UNAUTHORIZED = _error(
    f"Admin token configured and the bearer token missing or wrong (error_code "
    f"{int(ErrorCode.UNAUTHORIZED)})."
)
_NOT_IMPLEMENTED = _error(
    f"Node built without the data plane (error_code {int(ErrorCode.NOT_IMPLEMENTED)})."
)
_RETRIABLE = _error(
    f"A retriable Kafka error: no leader, leader moved, not enough in-sync replicas "
    f"(error_code {int(ErrorCode.RETRIABLE)}); retry after the Retry-After header's seconds.",
    headers={"Retry-After": {"schema": {"type": "integer", "example": RETRY_AFTER_SECONDS}}},
)
_TIMED_OUT = _error(
    f"Timed out (error_code {int(ErrorCode.TIMED_OUT)}); a produced record may still be written."
)
_INTERNAL = _error(f"An unexpected Kafka error (error_code {int(ErrorCode.INTERNAL_ERROR)}).")


def _path_parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_parameter(
    name: str, minimum: int, maximum: int, description: str, default: int | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {**_INT64, "minimum": minimum, "maximum": maximum}
    if default is not None:
        schema["default"] = default
    return {
        "name": name,
        "in": "query",
        "required": default is None,
        "description": description,
        "schema": schema,
    }


_TOPIC_NAME = _path_parameter("topic_name", _STRING)
_PARTITION_ID = _path_parameter("partition_id", {**_INT32, "minimum": 0})


def _produce(operation_id: str) -> dict[str, Any]:
    single = {"oneOf": [_ref("ProduceResponse"), _ref("Error")]}
    return {
        "summary": "Produces records (acks=all); one delivery report per record.",
        "description": (
            "The body is one ProduceRequest, a JSON array of them, or several concatenated "
            "(Confluent's streaming form), at most "
            f"{MAX_RECORDS_PER_PRODUCE_REQUEST} records and {MAX_REQUEST_BODY_BYTES} bytes. "
            "One record: 200 with its ProduceResponse, or the error's status and shape. An "
            "array: 200 with an array of reports. Concatenated records: 200 with one report a "
            "line. A report of a refused record is {error_code, message}. The partition "
            f"leader waits up to {PRODUCE_TIMEOUT_MS} ms for the in-sync replicas. A bad "
            "record refuses the whole request; nothing is written."
        ),
        "operationId": operation_id,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            _ref("ProduceRequest"),
                            {"type": "array", "items": _ref("ProduceRequest")},
                        ]
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": "Delivery reports (error_code 200: written).",
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [single, {"type": "array", "items": single}]}
                    }
                },
            },
            "400": _error(
                f"Malformed body or record ({int(ErrorCode.MALFORMED_REQUEST)}); a record "
                f"refused: type needing a Schema Registry, negative partition or timestamp, "
                f"too many records or headers, invalid topic name, record too large "
                f"({int(ErrorCode.BAD_REQUEST)})."
            ),
            "401": _UNAUTHORIZED,
            "404": _error(
                f"Not found: cluster id of the path is not this cluster's "
                f"({int(ErrorCode.CLUSTER_NOT_FOUND)}); unknown topic or partition "
                f"({int(ErrorCode.TOPIC_OR_PARTITION_NOT_FOUND)})."
            ),
            "413": _error(f"Body too large (error_code {int(ErrorCode.REQUEST_TOO_LARGE)})."),
            "415": _error(
                f"Body not application/json (error_code {int(ErrorCode.UNSUPPORTED_MEDIA_TYPE)})."
            ),
            "500": _INTERNAL,
            "501": _NOT_IMPLEMENTED,
            "503": _RETRIABLE,
            "504": _TIMED_OUT,
        },
    }


_CONSUME: dict[str, Any] = {
    "parameters": [_TOPIC_NAME, _PARTITION_ID],
    "get": {
        "summary": "Reads records of a partition from an offset, up to the high watermark.",
        "description": (
            "As Redpanda's HTTP proxy. Accept "
            f"{RecordFormat.BINARY.media_type} (the default) shows keys and values in "
            f"base64, {RecordFormat.JSON.media_type} as JSON."
        ),
        "operationId": "consumeRecords",
        "parameters": [
            _query_parameter("offset", 0, INT64_MAX, "The first offset to read."),
            _query_parameter(
                "max_bytes",
                1,
                MAX_CONSUME_MAX_BYTES,
                "About how many bytes of records to read (at least one batch).",
                DEFAULT_CONSUME_MAX_BYTES,
            ),
            _query_parameter(
                "timeout",
                0,
                MAX_CONSUME_TIMEOUT_MS,
                "Milliseconds to wait for records when there are none yet.",
                DEFAULT_CONSUME_TIMEOUT_MS,
            ),
        ],
        "responses": {
            "200": {
                "description": "The records, oldest first; [] when none came in time.",
                "content": {
                    record_format.media_type: {
                        "schema": {"type": "array", "items": _ref("ConsumedRecord")}
                    }
                    for record_format in RecordFormat
                },
            },
            "400": _error(
                f"A query parameter missing, repeated, unknown or not an integer "
                f"({int(ErrorCode.MALFORMED_REQUEST)}); out of its bounds, or an invalid "
                f"topic name ({int(ErrorCode.BAD_REQUEST)})."
            ),
            "401": _UNAUTHORIZED,
            "404": _error(
                f"Unknown topic or partition ({int(ErrorCode.TOPIC_OR_PARTITION_NOT_FOUND)})."
            ),
            "406": _error(
                f"The Accept header names no format served, or a record is not JSON under "
                f"the JSON format (error_code {int(ErrorCode.NOT_ACCEPTABLE)})."
            ),
            "416": _error(
                f"The offset is outside the log; the message names the log start offset and "
                f"the high watermark (error_code {int(ErrorCode.OFFSET_OUT_OF_RANGE)})."
            ),
            "500": _INTERNAL,
            "501": _NOT_IMPLEMENTED,
            "503": _RETRIABLE,
            "504": _TIMED_OUT,
        },
    },
}


def record_paths() -> dict[str, Any]:
    """The record routes' path items, keyed by full path."""
    tags = {"/v3": "", "/kafka/v3": "Kafka"}
    paths: dict[str, Any] = {
        prefix + PRODUCE_PATH: {
            "parameters": [_path_parameter("cluster_id", _STRING), _TOPIC_NAME],
            "post": _produce(f"produceRecords{tags[prefix]}"),
        }
        for prefix in V3_PREFIXES
    }
    paths[CONSUME_PATH] = _CONSUME
    return copy.deepcopy(paths)
