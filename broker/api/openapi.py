"""The OpenAPI 3.0 document served at `/openapi.json`, written by hand (the admin routes'
part in broker/api/openapi_admin, the record routes' in broker/api/openapi_records).

Every route build_app registers has an operation here; tests/unit/api checks both ways.
"""

from __future__ import annotations

import copy
from typing import Any

from broker.api.errors import RETRY_AFTER_SECONDS, ErrorCode
from broker.api.openapi_admin import SCHEMAS as ADMIN_SCHEMAS
from broker.api.openapi_admin import admin_paths
from broker.api.openapi_groups import SCHEMAS as GROUP_SCHEMAS
from broker.api.openapi_groups import group_paths
from broker.api.openapi_records import SCHEMAS as RECORD_SCHEMAS
from broker.api.openapi_records import record_paths
from broker.api.validation import MAX_KV_KEY_CHARS, MAX_KV_VALUE_BYTES

OPENAPI_VERSION = "3.0.3"
API_VERSION = "0.1.0"

_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": _json_content(_ERROR_REF), **extra}


def _object(properties: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


_INT = {"type": "integer", "format": "int64"}
_NULLABLE_UNIX_MS = {"type": "integer", "format": "int64", "nullable": True}
_NODE_IDS = {"type": "array", "items": {"type": "integer"}}

_NO_LEADER = _error(
    f"No quorum leader is known (error_code {int(ErrorCode.NO_LEADER)}); retry after "
    "the Retry-After header's seconds.",
    headers={"Retry-After": {"schema": {"type": "integer", "example": RETRY_AFTER_SECONDS}}},
)
_TIMED_OUT = _error(f"Timed out waiting for the quorum (error_code {int(ErrorCode.TIMED_OUT)}).")
_UNAUTHORIZED = _error(
    f"Admin token configured and the bearer token missing or wrong (error_code "
    f"{int(ErrorCode.UNAUTHORIZED)})."
)
_BAD_KEY = _error(
    f"Key breaks the key rule (error_code {int(ErrorCode.INVALID_VALUE)}), or the body is "
    f"malformed (error_code {int(ErrorCode.MALFORMED_REQUEST)})."
)

_KEY_PARAMETER = {
    "name": "key",
    "in": "path",
    "required": True,
    "schema": {
        "type": "string",
        "pattern": "^[a-zA-Z0-9._-]+$",
        "minLength": 1,
        "maxLength": MAX_KV_KEY_CHARS,
    },
}

_QUORUM_STATUS = _object(
    {
        "cluster_id": {"type": "string"},
        "leader_id": {"type": "integer"},
        "leader_epoch": _INT,
        "high_watermark": _INT,
        "max_follower_lag": _INT,
        "max_follower_lag_time_ms": {
            **_INT,
            "description": "-1 when a lagging follower has never been caught up.",
        },
        "current_voters": _NODE_IDS,
        "current_observers": _NODE_IDS,
        "node_id": {"type": "integer", "description": "The node that answered."},
        "role": {
            "type": "string",
            "description": "The answering node's role in the quorum.",
            "enum": [
                "unattached",
                "voted",
                "prospective",
                "candidate",
                "leader",
                "follower",
                "resigned",
                "observer",
            ],  # fmt: skip
        },
        "epoch": {**_INT, "description": "The answering node's epoch."},
    }
)

_REPLICA = _object(
    {
        "node_id": {"type": "integer"},
        "log_end_offset": _INT,
        "lag": _INT,
        "last_fetch_timestamp": _NULLABLE_UNIX_MS,
        "last_caught_up_timestamp": _NULLABLE_UNIX_MS,
        "status": {"type": "string", "enum": ["Leader", "Follower", "Observer"]},
    }
)


def _public(operation: dict[str, Any]) -> dict[str, Any]:
    """An operation that needs no admin token."""
    return {**operation, "security": []}


_LIVE: dict[str, Any] = {
    "get": _public(
        {
            "summary": "Liveness: the process serves HTTP.",
            "operationId": "getLive",
            "responses": {
                "200": {
                    "description": "Alive.",
                    "content": _json_content(
                        _object({"status": {"type": "string", "enum": ["live"]}})
                    ),
                }
            },
        }
    )
}

_READY: dict[str, Any] = {
    "get": _public(
        {
            "summary": "Readiness: a leader is known and the log applied.",
            "operationId": "getReady",
            "responses": {
                "200": {
                    "description": "Ready.",
                    "content": _json_content(
                        _object({"status": {"type": "string", "enum": ["ready"]}})
                    ),
                },
                "503": {
                    "description": "Still booting.",
                    "content": _json_content(
                        _object({"status": {"type": "string", "enum": ["booting"]}})
                    ),
                },
            },
        }
    )
}

_METRICS: dict[str, Any] = {
    "get": _public(
        {
            "summary": "Prometheus metrics (SPEC §6).",
            "operationId": "getMetrics",
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    )
}

_OPENAPI: dict[str, Any] = {
    "get": {
        "summary": "This document.",
        "operationId": "getOpenApi",
        "responses": {
            "200": {
                "description": "The OpenAPI document.",
                "content": _json_content({"type": "object"}),
            },
            "401": _UNAUTHORIZED,
        },
    }
}

_QUORUM_STATUS_PATH: dict[str, Any] = {
    "get": {
        "summary": "The metadata quorum, as kafka-metadata-quorum.sh describe --status.",
        "operationId": "getQuorumStatus",
        "responses": {
            "200": {
                "description": "The leader's view of the quorum.",
                "content": _json_content(_QUORUM_STATUS),
            },
            "401": _UNAUTHORIZED,
            "503": _NO_LEADER,
            "504": _TIMED_OUT,
        },
    }
}

_QUORUM_REPLICATION_PATH: dict[str, Any] = {
    "get": {
        "summary": "Replicas of the metadata log, as describe --replication.",
        "operationId": "getQuorumReplication",
        "responses": {
            "200": {
                "description": "One row per replica, the leader first.",
                "content": _json_content(
                    _object({"replicas": {"type": "array", "items": _REPLICA}})
                ),
            },
            "401": _UNAUTHORIZED,
            "503": _NO_LEADER,
            "504": _TIMED_OUT,
        },
    }
}

_KV_PATH: dict[str, Any] = {
    "parameters": [_KEY_PARAMETER],
    "get": {
        "summary": "Reads a key of the demo key-value state machine on this node.",
        "operationId": "getKv",
        "responses": {
            "200": {
                "description": "The committed value as applied on this node.",
                "content": _json_content(
                    _object({"key": {"type": "string"}, "value": {"type": "string"}})
                ),
            },
            "400": _BAD_KEY,
            "401": _UNAUTHORIZED,
            "404": _error(f"No such key (error_code {int(ErrorCode.KEY_NOT_FOUND)})."),
        },
    },
    "put": {
        "summary": "Writes a key through the quorum; answers once committed and applied.",
        "operationId": "putKv",
        "requestBody": {
            "required": True,
            "content": _json_content(
                {
                    **_object({"value": {"type": "string"}}),
                    "additionalProperties": False,
                    "description": f"value: at most {MAX_KV_VALUE_BYTES} bytes in UTF-8",
                }
            ),
        },
        "responses": {
            "200": {
                "description": "Committed at `offset` and applied on this node.",
                "content": _json_content(
                    _object(
                        {
                            "key": {"type": "string"},
                            "value": {"type": "string"},
                            "offset": _INT,
                        }
                    )
                ),
            },
            "400": _BAD_KEY,
            "401": _UNAUTHORIZED,
            "413": _error(f"Body too large (error_code {int(ErrorCode.REQUEST_TOO_LARGE)})."),
            "415": _error(
                f"Body not application/json (error_code {int(ErrorCode.UNSUPPORTED_MEDIA_TYPE)})."
            ),
            "503": _NO_LEADER,
            "504": _TIMED_OUT,
        },
    },
}

_PATHS: dict[str, Any] = {
    "/live": _LIVE,
    "/v1/status/ready": _READY,
    "/metrics": _METRICS,
    "/openapi.json": _OPENAPI,
    "/v1/quorum/status": _QUORUM_STATUS_PATH,
    "/v1/quorum/replication": _QUORUM_REPLICATION_PATH,
    "/v1/kv/{key}": _KV_PATH,
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may change it)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "kraft node HTTP API",
            "version": API_VERSION,
            "description": (
                "Admin, health and metrics API of a kraft node (SPEC §5). Errors are "
                '{"error_code": int, "message": str}; codes are listed in '
                "broker/api/errors.py."
            ),
        },
        "paths": {**copy.deepcopy(_PATHS), **admin_paths(), **record_paths(), **group_paths()},
        "components": {
            "schemas": {
                "Error": _object(
                    {"error_code": {"type": "integer"}, "message": {"type": "string"}}
                ),
                **copy.deepcopy(ADMIN_SCHEMAS),
                **copy.deepcopy(RECORD_SCHEMAS),
                **copy.deepcopy(GROUP_SCHEMAS),
            },
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
        # Applies only when http.admin.token is set; public operations override it.
        "security": [{"adminToken": []}],
    }
