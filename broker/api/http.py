"""The HTTP listener of a node (SPEC §5): health, metrics, quorum description, the demo
key-value state machine, the OpenAPI document, from broker/api/rest_v3 the cluster
administration routes (Confluent REST v3 subset, health overview) and from broker/api/records
produce and consume.

`build_app` wires routes to a NodeFacade; nothing here reaches further into the node. Three
middlewares wrap every route, outermost first: a debug-level request log, the error
middleware that gives every failure the `{"error_code", "message"}` shape (codes in
broker/api/errors.py), and, when an admin token is configured, the bearer-token check.
"""

from __future__ import annotations

import asyncio
import hmac
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from broker.api.bodies import MAX_REQUEST_BODY_BYTES, read_json_body, too_large
from broker.api.consumer_groups import GROUPS, consumer_group_routes
from broker.api.errors import (
    ApiError,
    ErrorCode,
    controller_error,
    error_response,
    no_leader_error,
    timed_out_error,
)
from broker.api.facade import (
    AdminFacade,
    DataPlaneFacade,
    NodeFacade,
    NoLeaderError,
    QuorumDescription,
)
from broker.api.openapi import openapi_document
from broker.api.quorum import replication_body, status_body
from broker.api.records import DATA, RECORDS_CLUSTER_ID, record_routes
from broker.api.rest_v3 import ADMIN, ADMIN_TIMEOUT_SECONDS, admin_routes
from broker.api.validation import parse_kv_put_body, validate_kv_key
from broker.kafka.groups.inspect import GroupInspector
from kraft.controller.errors import ControllerError

log = structlog.get_logger(__name__)

# A backstop above the node's own timeouts: no handler waits on the quorum longer than this.
QUORUM_REQUEST_TIMEOUT_SECONDS = 30.0
# Routes served without the admin token even when one is configured (SPEC §5).
PUBLIC_PATHS = frozenset({"/live", "/v1/status/ready", "/metrics"})

NODE: web.AppKey[NodeFacade] = web.AppKey("node")
METRICS_REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("metrics_registry", CollectorRegistry)
QUORUM_TIMEOUT_SECONDS: web.AppKey[float] = web.AppKey("quorum_timeout_seconds", float)

# --- middlewares -------------------------------------------------------------------------


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        log.debug(
            "http request",
            method=request.method,
            path=request.path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )


def _from_http_exception(request: web.Request, error: web.HTTPException) -> web.Response:
    """aiohttp's own errors (no route, wrong method, body too large) in our error shape."""
    if isinstance(error, web.HTTPNotFound):
        return error_response(
            404,
            ErrorCode.ROUTE_NOT_FOUND,
            f"no route {request.path!r}; /openapi.json lists the routes of this node",
        )
    if isinstance(error, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(error.allowed_methods))
        return error_response(
            405,
            ErrorCode.METHOD_NOT_ALLOWED,
            f"method {request.method} is not allowed on {request.path!r}; allowed: {allowed}",
            headers={"Allow": allowed},
        )
    if isinstance(error, web.HTTPRequestEntityTooLarge):
        return too_large(request).response()
    return error_response(error.status, error.status * 100, error.reason)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error.response()
    except ControllerError as error:
        return controller_error(error).response()
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _from_http_exception(request, error)
    except NoLeaderError:
        return no_leader_error(f"{request.method} {request.path}").response()
    except TimeoutError:
        return timed_out_error(
            f"timed out waiting for the quorum while serving {request.method} {request.path}"
        ).response()
    except Exception:
        log.exception(
            "unexpected error serving http request", method=request.method, path=request.path
        )
        return error_response(
            500,
            ErrorCode.INTERNAL_ERROR,
            f"unexpected error while serving {request.method} {request.path}; the node logged it",
        )


def auth_middleware(admin_token: str) -> Middleware:
    """Requires `Authorization: Bearer <admin_token>` on every route but PUBLIC_PATHS."""
    expected = admin_token.encode("utf-8")
    challenge = {"WWW-Authenticate": 'Bearer realm="kraft"'}

    def refuse(message: str) -> ApiError:
        return ApiError(ErrorCode.UNAUTHORIZED, message, headers=challenge)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Decided by the route that will serve the request, not by the raw path text.
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical in PUBLIC_PATHS:
            return await handler(request)
        header = request.headers.get("Authorization")
        if header is None:
            raise refuse(
                "missing Authorization header; http.admin.token is set on this node, so "
                "this route requires 'Authorization: Bearer <token>'"
            )
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise refuse(
                f"Authorization scheme {scheme!r} is not accepted; use "
                "'Authorization: Bearer <token>'"
            )
        if not hmac.compare_digest(credentials.strip().encode("utf-8"), expected):
            raise refuse("the bearer token does not match this node's http.admin.token")
        return await handler(request)

    return middleware


# --- request helpers ---------------------------------------------------------------------


async def _describe_quorum(request: web.Request) -> QuorumDescription:
    node = request.app[NODE]
    try:
        async with asyncio.timeout(request.app[QUORUM_TIMEOUT_SECONDS]):
            return await node.describe_quorum()
    except NoLeaderError:
        raise no_leader_error("the quorum description") from None
    except TimeoutError:
        raise timed_out_error(
            "timed out waiting for the leader's description of the quorum"
        ) from None


# --- handlers ----------------------------------------------------------------------------


async def get_live(request: web.Request) -> web.Response:
    return web.json_response({"status": "live"})


async def get_ready(request: web.Request) -> web.Response:
    if request.app[NODE].is_ready():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "booting"}, status=503)


async def get_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def get_quorum_status(request: web.Request) -> web.Response:
    description = await _describe_quorum(request)
    return web.json_response(status_body(description, request.app[NODE].quorum_status()))


async def get_quorum_replication(request: web.Request) -> web.Response:
    return web.json_response(replication_body(await _describe_quorum(request)))


async def get_kv(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    validate_kv_key(key)
    node = request.app[NODE]
    value = node.kv_get(key)
    if value is None:
        raise ApiError(
            ErrorCode.KEY_NOT_FOUND,
            f"key {key!r} not found in the key-value state machine as applied on node "
            f"{node.node_id}",
        )
    return web.json_response({"key": key, "value": value})


async def put_kv(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    validate_kv_key(key)
    value = parse_kv_put_body(await read_json_body(request))
    try:
        async with asyncio.timeout(request.app[QUORUM_TIMEOUT_SECONDS]):
            offset = await request.app[NODE].kv_put(key, value)
    except NoLeaderError:
        raise no_leader_error(f"the write of key {key!r}") from None
    except TimeoutError:
        raise timed_out_error(
            f"timed out waiting for commit of key {key!r}; the write may still take effect"
        ) from None
    return web.json_response({"key": key, "value": value, "offset": offset})


# --- application -------------------------------------------------------------------------

ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/live", get_live),
    ("GET", "/v1/status/ready", get_ready),
    ("GET", "/metrics", get_metrics),
    ("GET", "/openapi.json", get_openapi),
    ("GET", "/v1/quorum/status", get_quorum_status),
    ("GET", "/v1/quorum/replication", get_quorum_replication),
    ("GET", "/v1/kv/{key}", get_kv),
    ("PUT", "/v1/kv/{key}", put_kv),
)


def build_app(
    node: NodeFacade,
    metrics_registry: CollectorRegistry,
    *,
    admin: AdminFacade | None = None,
    data: DataPlaneFacade | None = None,
    groups: GroupInspector | None = None,
    admin_token: str | None = None,
    quorum_timeout_seconds: float = QUORUM_REQUEST_TIMEOUT_SECONDS,
) -> web.Application:
    """The node's HTTP application. Serve it with `start_http_server`.

    `admin` serves the Confluent REST v3 routes and the health overview (broker/api/rest_v3);
    the routes are registered either way, so that /openapi.json is the same on every node,
    and answer 501 (error_code 50101) without it. Admin writes wait at most
    `quorum_timeout_seconds`, as quorum requests do.

    `data` serves produce and consume (broker/api/records); likewise registered either way
    and answering 501 (50101) without it.
    """
    if admin_token is not None and not admin_token.strip():
        raise ValueError("admin_token is empty; leave it unset to serve without a token")
    assert quorum_timeout_seconds > 0, f"quorum timeout {quorum_timeout_seconds} s"
    middlewares: list[Middleware] = [request_log_middleware, error_middleware]
    if admin_token is not None:
        middlewares.append(auth_middleware(admin_token))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_REQUEST_BODY_BYTES)
    app[NODE] = node
    app[METRICS_REGISTRY] = metrics_registry
    app[QUORUM_TIMEOUT_SECONDS] = quorum_timeout_seconds
    app[ADMIN] = admin
    app[ADMIN_TIMEOUT_SECONDS] = quorum_timeout_seconds
    app[DATA] = data
    app[GROUPS] = groups
    app[RECORDS_CLUSTER_ID] = node.cluster_id
    for method, path, handler in (
        *ROUTES,
        *admin_routes(),
        *record_routes(),
        *consumer_group_routes(),
    ):
        if method == "GET":
            app.router.add_get(path, handler)  # also answers HEAD
        else:
            app.router.add_route(method, path, handler)
    return app


async def start_http_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serves `app` on host:port; stop it with `await runner.cleanup()`.

    aiohttp's access log is off: requests are logged at debug level by the app itself.
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
