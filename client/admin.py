"""A small synchronous HTTP client for the admin API of a kraft cluster (SPEC §4-§5).

`AdminClient` is given several bootstrap URLs (any node answers admin requests) and fails over
between them: a connection error, a timeout or a 5xx answer moves it to the next address; a
503 (no active controller known yet) is retried after the server's `Retry-After`. Every call
has an overall deadline. Errors the cluster reports (`{"error_code", "message"}`, Confluent's
codes) come back as AdminError; a cluster that never answered in time as ClusterUnreachable.

A write that timed out or met a 5xx may have been applied before the failure; retrying it on
another node may apply it twice. That is harmless for the idempotent writes the command line
makes (kv put of one value, topic configs); a topic create or delete retried that way answers
"topic exists" / "not found" (the write had taken effect); callers that cannot accept it pass
one address.

Cluster administration uses the Confluent REST v3 routes (`/v3/clusters/{id}/...`); the
client learns the cluster id from `GET /v3/clusters` once.

It uses urllib rather than aiohttp: the command line is synchronous from top to bottom and a
request at a time is all it needs.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from typing import Any

V3_PREFIX = "/v3"
LOCAL_BOOTSTRAP = ("http://127.0.0.1:8082", "http://127.0.0.1:8182", "http://127.0.0.1:8282")
BOOTSTRAP_ENV = "KRAFT_BOOTSTRAP"
ADMIN_TOKEN_ENV = "KRAFT_ADMIN_TOKEN"

ADMIN_TIMEOUT_S_DEFAULT = 15.0  # overall deadline of one call, retries included
REQUEST_TIMEOUT_S_DEFAULT = 5.0  # one HTTP exchange with one node
RETRY_AFTER_S_DEFAULT = 0.2  # wait after a 503 without Retry-After, or a full failed round
RETRY_AFTER_S_MAX = 5.0  # a server's Retry-After beyond this is capped
RESPONSE_BYTES_MAX = 16 * 1024 * 1024
ERROR_TEXT_CHARS_MAX = 300

# Confluent's code for a retriable server error, used when no node answered at all.
ERROR_CODE_RETRIABLE = 50003
HTTP_STATUS_NO_ANSWER = 0


class AdminError(Exception):
    """The cluster refused a request: Confluent's `error_code`, its message and the HTTP
    status it came with."""

    def __init__(self, error_code: int, message: str, http_status: int) -> None:
        super().__init__(f"{message} (error_code {error_code}, HTTP {http_status})")
        self.error_code = error_code
        self.message = message
        self.http_status = http_status


class ClusterUnreachable(AdminError):
    """No bootstrap address gave an answer before the deadline."""

    def __init__(self, message: str) -> None:
        super().__init__(ERROR_CODE_RETRIABLE, message, HTTP_STATUS_NO_ANSWER)


def parse_bootstrap(text: str) -> list[str]:
    """`host:port` or URL list, comma-separated -> base URLs ("http://" added, no trailing /)."""
    urls = []
    for part in text.split(","):
        address = part.strip()
        if not address:
            continue
        if "://" not in address:
            address = "http://" + address
        urls.append(address.rstrip("/"))
    if not urls:
        raise ValueError(f"bootstrap {text!r} names no address")
    return urls


def default_bootstrap(environ: Mapping[str, str] = os.environ) -> list[str]:
    """KRAFT_BOOTSTRAP if set, else the local cluster's three HTTP URLs."""
    text = environ.get(BOOTSTRAP_ENV, "").strip()
    return parse_bootstrap(text) if text else list(LOCAL_BOOTSTRAP)


def parse_retry_after(value: str | None, now_unix_s: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_unix_s)


def http_json(
    method: str,
    url: str,
    body: object | None = None,
    *,
    token: str | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S_DEFAULT,
) -> tuple[int, Any, Mapping[str, str]]:
    """One HTTP exchange: (status, JSON body or None, headers). HTTP error statuses are
    returned, not raised; connection errors and timeouts raise OSError."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            payload = response.read(RESPONSE_BYTES_MAX + 1)
            status, headers = response.status, dict(response.headers.items())
    except urllib.error.HTTPError as error:
        payload = error.read(RESPONSE_BYTES_MAX + 1)
        status, headers = error.code, dict(error.headers.items())
    except urllib.error.URLError as error:
        reason = error.reason
        raise OSError(f"{url}: {reason}") from error
    except TimeoutError as error:
        raise OSError(f"{url}: timed out after {timeout_s:g}s") from error
    except http.client.HTTPException as error:  # a garbled or cut-short answer
        raise OSError(f"{url}: bad HTTP answer: {error!r}") from error
    if len(payload) > RESPONSE_BYTES_MAX:
        raise OSError(f"{url}: response larger than {RESPONSE_BYTES_MAX} bytes")
    return status, _decode(payload), headers


def _decode(payload: bytes) -> Any:
    if not payload:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", errors="replace")


def error_from_answer(status: int, body: Any) -> AdminError:
    if isinstance(body, dict) and "error_code" in body:
        return AdminError(int(body["error_code"]), str(body.get("message", "")), status)
    text = "" if body is None else str(body)[:ERROR_TEXT_CHARS_MAX]
    return AdminError(status * 100, text or f"HTTP {status}", status)


class AdminClient:
    """Admin API calls with failover between `bootstrap` URLs and an overall deadline.

    `sleep` and `monotonic` are injectable so that tests check the waits without waiting.
    """

    def __init__(
        self,
        bootstrap: Sequence[str],
        token: str | None = None,
        timeout_s: float = ADMIN_TIMEOUT_S_DEFAULT,
        *,
        request_timeout_s: float = REQUEST_TIMEOUT_S_DEFAULT,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        assert bootstrap, "at least one bootstrap URL is needed"
        assert timeout_s > 0, f"timeout_s {timeout_s} must be positive"
        self.bootstrap = [url.rstrip("/") for url in bootstrap]
        self.token = token
        self.timeout_s = timeout_s
        self.request_timeout_s = request_timeout_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._preferred = 0  # index of the address that answered last
        self._cluster_id: str | None = None  # learnt from GET /v3/clusters

    def request(self, method: str, path: str, body: object | None = None) -> Any:
        """Sends one request, failing over and retrying until an answer or the deadline.
        Returns the JSON body of a 2xx answer; raises AdminError otherwise."""
        assert path.startswith("/"), f"path {path!r} must start with /"
        deadline = self._monotonic() + self.timeout_s
        attempt = 0
        last_failure = "no attempt made"
        last_error: AdminError | None = None
        while True:
            index = (self._preferred + attempt) % len(self.bootstrap)
            url = self.bootstrap[index] + path
            attempt += 1
            remaining_s = deadline - self._monotonic()
            if remaining_s <= 0:
                break
            try:
                status, answer, headers = http_json(
                    method,
                    url,
                    body,
                    token=self.token,
                    timeout_s=min(self.request_timeout_s, remaining_s),
                )
            except OSError as failure:
                last_failure = str(failure)
                self._maybe_pause_after_round(attempt, deadline)
                continue
            if 200 <= status < 300:
                self._preferred = index
                return answer
            error = error_from_answer(status, answer)
            if status < 500:
                raise error  # the request itself is wrong: another node would say the same
            last_error = error
            last_failure = f"{url}: {error}"
            if status == 503:
                self._pause(self._retry_after_s(headers), deadline)
            else:
                self._maybe_pause_after_round(attempt, deadline)
        if last_error is not None:
            raise last_error
        raise ClusterUnreachable(
            f"no answer from {', '.join(self.bootstrap)} within {self.timeout_s:g}s "
            f"(last: {last_failure})"
        )

    def _retry_after_s(self, headers: Mapping[str, str]) -> float:
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        wait_s = parse_retry_after(value, time.time())
        return RETRY_AFTER_S_DEFAULT if wait_s is None else min(wait_s, RETRY_AFTER_S_MAX)

    def _maybe_pause_after_round(self, attempt: int, deadline: float) -> None:
        # Failing over is immediate; only after every address failed in a row do we back off.
        if attempt % len(self.bootstrap) == 0:
            self._pause(RETRY_AFTER_S_DEFAULT, deadline)

    def _pause(self, wait_s: float, deadline: float) -> None:
        wait_s = min(wait_s, deadline - self._monotonic())
        if wait_s > 0:
            self._sleep(wait_s)

    # --- the calls the command line makes ---------------------------------------------------

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def quorum_status(self) -> dict[str, Any]:
        return _expect_object(self.get("/v1/quorum/status"), "/v1/quorum/status")

    def quorum_replication(self) -> dict[str, Any]:
        return _expect_object(self.get("/v1/quorum/replication"), "/v1/quorum/replication")

    def health_overview(self) -> dict[str, Any]:
        path = "/v1/cluster/health_overview"
        return _expect_object(self.get(path), path)

    # --- Confluent REST v3 (SPEC §5) ---------------------------------------------------------

    def cluster(self) -> dict[str, Any]:
        """The cluster, from `GET /v3/clusters` (a list of one); remembers its id."""
        answer = _expect_object(self.get(V3_PREFIX + "/clusters"), V3_PREFIX + "/clusters")
        clusters = _expect_list(answer, V3_PREFIX + "/clusters")
        if not clusters or not isinstance(clusters[0], dict):
            raise AdminError(50000, f"{V3_PREFIX}/clusters answered no cluster", 200)
        self._cluster_id = str(clusters[0].get("cluster_id", ""))
        return clusters[0]

    def cluster_id(self) -> str:
        if self._cluster_id is None:
            self.cluster()
        assert self._cluster_id is not None
        return self._cluster_id

    def _cluster_path(self, *segments: str | int) -> str:
        path = f"{V3_PREFIX}/clusters/{_quote(self.cluster_id())}"
        return path + "".join("/" + _quote(segment) for segment in segments)

    def _list(self, *segments: str | int) -> list[dict[str, Any]]:
        path = self._cluster_path(*segments)
        return _expect_list(_expect_object(self.get(path), path), path)

    def _object(self, *segments: str | int) -> dict[str, Any]:
        path = self._cluster_path(*segments)
        return _expect_object(self.get(path), path)

    def brokers(self) -> list[dict[str, Any]]:
        return self._list("brokers")

    def topics(self) -> list[dict[str, Any]]:
        return self._list("topics")

    def topic(self, name: str) -> dict[str, Any]:
        return self._object("topics", name)

    def partitions(self, topic: str) -> list[dict[str, Any]]:
        return self._list("topics", topic, "partitions")

    def replicas(self, topic: str, partition_id: int) -> list[dict[str, Any]]:
        return self._list("topics", topic, "partitions", partition_id, "replicas")

    def topic_configs(self, topic: str) -> list[dict[str, Any]]:
        return self._list("topics", topic, "configs")

    def consumer_groups(self) -> list[dict[str, Any]]:
        return self._list("consumer-groups")

    def consumer_group(self, group_id: str) -> dict[str, Any]:
        return self._object("consumer-groups", group_id)

    def consumer_group_lags(self, group_id: str) -> list[dict[str, Any]]:
        return self._list("consumer-groups", group_id, "lags")

    def create_topic(
        self,
        name: str,
        partitions: int | None,
        replication_factor: int | None,
        configs: Mapping[str, str],
    ) -> dict[str, Any]:
        """Creates a topic; None counts are the cluster's defaults. If a node failed after
        the topic was created, the retry on another node answers 40002 (topic exists)."""
        body: dict[str, Any] = {"topic_name": name}
        if partitions is not None:
            body["partitions_count"] = partitions
        if replication_factor is not None:
            body["replication_factor"] = replication_factor
        if configs:
            body["configs"] = [{"name": key, "value": value} for key, value in configs.items()]
        path = self._cluster_path("topics")
        return _expect_object(self.request("POST", path, body), path)

    def delete_topic(self, name: str) -> None:
        self.request("DELETE", self._cluster_path("topics", name))

    def alter_topic_configs(
        self, name: str, set_configs: Mapping[str, str], delete_configs: Sequence[str] = ()
    ) -> None:
        """Sets and deletes configs of a topic in one request (all or none)."""
        data: list[dict[str, Any]] = [
            {"name": key, "value": value, "operation": "SET"} for key, value in set_configs.items()
        ]
        data.extend({"name": key, "operation": "DELETE"} for key in delete_configs)
        self.request("POST", self._cluster_path("topics", name) + "/configs:alter", {"data": data})

    # --- the demo key-value state machine ---------------------------------------------------

    def kv_put(self, key: str, value: str) -> dict[str, Any]:
        path = "/v1/kv/" + urllib.parse.quote(key, safe="")
        return _expect_object(self.request("PUT", path, {"value": value}), path)

    def kv_get(self, key: str) -> dict[str, Any]:
        path = "/v1/kv/" + urllib.parse.quote(key, safe="")
        return _expect_object(self.get(path), path)


def _quote(segment: str | int) -> str:
    return urllib.parse.quote(str(segment), safe="")


def _expect_list(answer: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The `data` array of a Confluent list answer."""
    data = answer.get("data")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise AdminError(50000, f"{path} answered no 'data' array of objects", 200)
    return data


def _expect_object(answer: Any, path: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise AdminError(50000, f"{path} answered {str(answer)[:80]!r}, not a JSON object", 200)
    return answer
