"""Error codes and the error shape of the HTTP API (SPEC §5).

Every error answer is `{"error_code": int, "message": str}`. Codes follow Confluent's REST
scheme: the first three digits are the HTTP status, the last two say which error it is.

| code  | HTTP | meaning                                                                  |
|-------|------|--------------------------------------------------------------------------|
| 40001 | 400  | body is not JSON, not an object, or a field is missing, unknown or of the |
|       |      | wrong type (the field is named)                                          |
| 40002 | 400  | a request the cluster refuses: counts that are not positive, topic       |
|       |      | exists, replication factor larger than the live brokers, invalid topic   |
|       |      | name or config (the controller's refusals carry their own code)          |
| 40003 | 400  | a well-formed value breaks a rule (kv key characters or length, value    |
|       |      | size); the value and the rule are named                                  |
| 40004 | 413  | request body larger than MAX_REQUEST_BODY_BYTES                          |
| 40005 | 415  | Content-Type is not application/json                                     |
| 40101 | 401  | admin token configured and the bearer token is missing or wrong          |
| 40400 | 404  | no such route                                                            |
| 40401 | 404  | no such key in the demo key-value state machine; no such cluster id      |
| 40402 | 404  | no such broker                                                           |
| 40403 | 404  | unknown topic or partition (SPEC §5), or replica of a partition          |
| 40404 | 404  | no such config of a topic                                                |
| 40500 | 405  | route exists but not for this method                                     |
| 40601 | 406  | consume: the Accept header names no record format we serve, or a record  |
|       |      | cannot be shown in the format asked for (not JSON under the JSON format) |
| 41601 | 416  | consume: the offset is outside the partition's log (Kafka's              |
|       |      | OFFSET_OUT_OF_RANGE); the answer names the log start and high watermark  |
| 50001 | 500  | unexpected server error (logged with its traceback)                      |
| 50002 | 504  | timed out waiting for the quorum (a commit, or the leader's answer)      |
| 50003 | 503  | no leader known right now, or a retriable Kafka error of a partition     |
|       |      | (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, ...); answered with        |
|       |      | `Retry-After: 1`                                                         |
| 50101 | 501  | the admin or record routes on a node built without that API (tests only) |

Codes of other statuses that aiohttp raises itself become `status * 100`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from aiohttp import web

from kraft.controller.errors import ControllerError

# Seconds a client should wait before retrying a retriable (503) answer.
RETRY_AFTER_SECONDS = 1


class ErrorCode(enum.IntEnum):
    MALFORMED_REQUEST = 40001
    BAD_REQUEST = 40002
    INVALID_VALUE = 40003
    REQUEST_TOO_LARGE = 40004
    UNSUPPORTED_MEDIA_TYPE = 40005
    UNAUTHORIZED = 40101
    ROUTE_NOT_FOUND = 40400
    KEY_NOT_FOUND = 40401
    CLUSTER_NOT_FOUND = 40401  # an alias: Confluent's code for an unknown cluster id
    BROKER_NOT_FOUND = 40402
    TOPIC_OR_PARTITION_NOT_FOUND = 40403
    CONFIG_NOT_FOUND = 40404
    METHOD_NOT_ALLOWED = 40500
    NOT_ACCEPTABLE = 40601
    OFFSET_OUT_OF_RANGE = 41601
    INTERNAL_ERROR = 50001
    TIMED_OUT = 50002
    NO_LEADER = 50003
    RETRIABLE = 50003  # an alias: Confluent's code for any retriable Kafka error
    NOT_IMPLEMENTED = 50101

    @property
    def http_status(self) -> int:
        """The HTTP status a code is answered with; for most, its first three digits."""
        return _HTTP_STATUS_OVERRIDES.get(self, int(self) // 100)


# Codes answered with another status than their first three digits: the codes keep
# Confluent's numbering, while the status tells clients and proxies what kind of failure it
# is (413, 415) and whether to retry (503) or that only the wait ran out (504).
_HTTP_STATUS_OVERRIDES = {
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.TIMED_OUT: 504,
    ErrorCode.NO_LEADER: 503,
    ErrorCode.NOT_IMPLEMENTED: 501,
}


class ApiError(Exception):
    """An error answer: the error middleware turns it into the JSON error shape."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.error_code = int(code)
        self.message = message
        self.http_status = code.http_status
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return error_response(self.http_status, self.error_code, self.message, self.headers)


def error_response(
    http_status: int,
    error_code: int,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        {"error_code": error_code, "message": message},
        status=http_status,
        headers=headers,
    )


def no_leader_error(what: str) -> ApiError:
    return ApiError(
        ErrorCode.NO_LEADER,
        f"no quorum leader is known right now, so {what} cannot be served; "
        f"retry after {RETRY_AFTER_SECONDS} s",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def timed_out_error(message: str) -> ApiError:
    # 504: the request was valid and may still take effect; only our wait ran out.
    return ApiError(ErrorCode.TIMED_OUT, message)


class _ControllerRefusal(ApiError):
    """A ControllerError as an answer: its own Confluent code, and the status of that code
    (its first three digits, but 503 for the retriable 50003)."""

    def __init__(self, error: ControllerError) -> None:
        Exception.__init__(self, error.message)
        self.error_code = error.error_code
        self.message = error.message
        # Our own status for a code we know (50003 is retriable: 503, not 500).
        known = error.error_code in ErrorCode._value2member_map_
        status = ErrorCode(error.error_code).http_status if known else error.error_code // 100
        self.http_status = status
        self.headers = {}
        if status == 503:  # NotControllerError: the controller moved; retry
            self.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)


def controller_error(error: ControllerError) -> ApiError:
    """The answer to a refusal of the controller (kraft.controller.errors)."""
    assert 40000 <= error.error_code < 60000, f"error_code {error.error_code} of {error!r}"
    return _ControllerRefusal(error)
