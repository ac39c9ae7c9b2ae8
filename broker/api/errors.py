"""Error codes and the error shape of the HTTP API (SPEC §5).

Every error answer is `{"error_code": int, "message": str}`. Codes follow Confluent's REST
scheme: the first three digits are the HTTP status, the last two say which error it is.

| code  | HTTP | meaning                                                                  |
|-------|------|--------------------------------------------------------------------------|
| 40001 | 400  | body is not JSON, not an object, or a field is missing, unknown or of the |
|       |      | wrong type (the field is named)                                          |
| 40002 | 400  | reserved by SPEC §5: topic exists / replication factor too large         |
| 40003 | 400  | a well-formed value breaks a rule (kv key characters or length, value    |
|       |      | size); the value and the rule are named                                  |
| 40004 | 413  | request body larger than MAX_REQUEST_BODY_BYTES                          |
| 40005 | 415  | Content-Type is not application/json                                     |
| 40101 | 401  | admin token configured and the bearer token is missing or wrong          |
| 40400 | 404  | no such route                                                            |
| 40401 | 404  | no such key in the demo key-value state machine                          |
| 40403 | 404  | reserved by SPEC §5: unknown topic or partition                          |
| 40500 | 405  | route exists but not for this method                                     |
| 50001 | 500  | unexpected server error (logged with its traceback)                      |
| 50002 | 504  | timed out waiting for the quorum (a commit, or the leader's answer)      |
| 50003 | 503  | no leader known right now; retriable, answered with `Retry-After: 1`     |

Codes of other statuses that aiohttp raises itself become `status * 100`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from aiohttp import web

# Seconds a client should wait before retrying a retriable (503) answer.
RETRY_AFTER_SECONDS = 1


class ErrorCode(enum.IntEnum):
    MALFORMED_REQUEST = 40001
    INVALID_VALUE = 40003
    REQUEST_TOO_LARGE = 40004
    UNSUPPORTED_MEDIA_TYPE = 40005
    UNAUTHORIZED = 40101
    ROUTE_NOT_FOUND = 40400
    KEY_NOT_FOUND = 40401
    METHOD_NOT_ALLOWED = 40500
    INTERNAL_ERROR = 50001
    TIMED_OUT = 50002
    NO_LEADER = 50003

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
