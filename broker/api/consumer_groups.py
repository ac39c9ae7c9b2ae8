"""Consumer groups over HTTP: the Confluent REST v3 consumer-group routes (SPEC §5), read-only,
served under `/v3` and `/kafka/v3` like the other v3 routes.

  GET /clusters/{cluster_id}/consumer-groups                          KafkaConsumerGroupList
  GET /clusters/{cluster_id}/consumer-groups/{group_id}               KafkaConsumerGroup
  GET /clusters/{cluster_id}/consumer-groups/{group_id}/consumers     KafkaConsumerList
  GET /clusters/{cluster_id}/consumer-groups/{group_id}/lag-summary   KafkaConsumerGroupLagSummary
  GET /clusters/{cluster_id}/consumer-groups/{group_id}/lags          KafkaConsumerLagList

The answers come from a GroupInspector (broker/kafka/groups/inspect.py), which asks the
group's coordinator and the partition leaders over the Kafka protocol: any node answers for
every group. A group that does not exist is 404 (40401); a broker that cannot be asked, 503.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from broker.api.errors import ApiError, ErrorCode
from broker.api.rest_v3 import ADMIN, V3_PREFIXES
from broker.kafka.groups.inspect import (
    GroupDetails,
    GroupInspector,
    GroupMember,
    InspectError,
    PartitionLag,
)

GROUPS: web.AppKey[GroupInspector | None] = web.AppKey("groups")

_STATES = {
    "Empty": "EMPTY",
    "PreparingRebalance": "PREPARING_REBALANCE",
    "CompletingRebalance": "COMPLETING_REBALANCE",
    "Stable": "STABLE",
    "Dead": "DEAD",
}


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


def _context(request: web.Request) -> tuple[GroupInspector, str, str]:
    """(inspector, cluster id, base url) once the path's cluster is this one."""
    inspector = request.app.get(GROUPS)
    admin = request.app.get(ADMIN)
    if inspector is None or admin is None:
        raise ApiError(
            ErrorCode.NOT_IMPLEMENTED,
            f"this node serves no consumer groups, so {request.path} cannot be answered",
        )
    cluster_id = request.match_info["cluster_id"]
    if cluster_id != admin.cluster_id:
        raise ApiError(
            ErrorCode.CLUSTER_NOT_FOUND,
            f"cluster {cluster_id!r} not found; this node belongs to cluster {admin.cluster_id!r}",
        )
    prefix = "/kafka/v3" if request.path.startswith("/kafka/v3") else "/v3"
    return inspector, cluster_id, f"{request.url.origin()}{prefix}/clusters/{_segment(cluster_id)}"


def _unavailable(error: InspectError) -> ApiError:
    return ApiError(ErrorCode.RETRIABLE, f"consumer groups cannot be read now: {error}")


async def _group(request: web.Request) -> tuple[GroupInspector, str, str, GroupDetails]:
    inspector, cluster_id, base = _context(request)
    group_id = request.match_info["group_id"]
    try:
        details = await inspector.describe(group_id)
    except InspectError as error:
        raise _unavailable(error) from None
    if details is None:
        raise ApiError(ErrorCode.KEY_NOT_FOUND, f"consumer group {group_id!r} not found")
    return inspector, cluster_id, base, details


def _list(kind: str, url: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"self": url, "next": None}, "data": items}


def _group_url(base: str, group_id: str) -> str:
    return f"{base}/consumer-groups/{_segment(group_id)}"


def _crn(cluster_id: str, group_id: str, *rest: str) -> str:
    return f"crn:///kafka={cluster_id}/consumer-group={group_id}" + "".join(rest)


def group_body(
    base: str,
    cluster_id: str,
    group_id: str,
    state: str,
    protocol_type: str,
    protocol: str,
    coordinator: int,
) -> dict[str, Any]:
    url = _group_url(base, group_id)
    return {
        "kind": "KafkaConsumerGroup",
        "metadata": {"self": url, "resource_name": _crn(cluster_id, group_id)},
        "cluster_id": cluster_id,
        "consumer_group_id": group_id,
        "is_simple": protocol_type == "",
        "partition_assignor": protocol,
        "state": _STATES.get(state, "UNKNOWN"),
        "coordinator": {"related": f"{base}/brokers/{coordinator}"},
        "consumer": {"related": f"{url}/consumers"},
        "lag_summary": {"related": f"{url}/lag-summary"},
    }


def consumer_body(base: str, cluster_id: str, group_id: str, member: GroupMember) -> dict[str, Any]:
    url = f"{_group_url(base, group_id)}/consumers/{_segment(member.member_id)}"
    return {
        "kind": "KafkaConsumer",
        "metadata": {
            "self": url,
            "resource_name": _crn(cluster_id, group_id, f"/consumer={member.member_id}"),
        },
        "cluster_id": cluster_id,
        "consumer_group_id": group_id,
        "consumer_id": member.member_id,
        "instance_id": member.instance_id,
        "client_id": member.client_id,
        "assignments": {"related": f"{url}/assignments"},
    }


def lag_body(base: str, cluster_id: str, group_id: str, lag: PartitionLag) -> dict[str, Any]:
    url = f"{_group_url(base, group_id)}/lags/{_segment(lag.topic)}/partitions/{lag.partition}"
    member = lag.member
    return {
        "kind": "KafkaConsumerLag",
        "metadata": {
            "self": url,
            "resource_name": _crn(
                cluster_id, group_id, f"/lag={lag.topic}/partition={lag.partition}"
            ),
        },
        "cluster_id": cluster_id,
        "consumer_group_id": group_id,
        "topic_name": lag.topic,
        "partition_id": lag.partition,
        "current_offset": lag.current_offset,
        "log_end_offset": lag.log_end_offset,
        "lag": lag.lag,
        "consumer_id": "" if member is None else member.member_id,
        "instance_id": None if member is None else member.instance_id,
        "client_id": "" if member is None else member.client_id,
    }


def lag_summary_body(
    base: str, cluster_id: str, group_id: str, lags: list[PartitionLag]
) -> dict[str, Any]:
    known = [lag for lag in lags if lag.lag is not None]
    worst = max(known, key=lambda lag: lag.lag or 0, default=None)
    url = _group_url(base, group_id)
    member = None if worst is None else worst.member
    return {
        "kind": "KafkaConsumerGroupLagSummary",
        "metadata": {
            "self": f"{url}/lag-summary",
            "resource_name": _crn(cluster_id, group_id, "/lag-summary"),
        },
        "cluster_id": cluster_id,
        "consumer_group_id": group_id,
        "max_lag_consumer_id": "" if member is None else member.member_id,
        "max_lag_instance_id": None if member is None else member.instance_id,
        "max_lag_client_id": "" if member is None else member.client_id,
        "max_lag_topic_name": "" if worst is None else worst.topic,
        "max_lag_partition_id": -1 if worst is None else worst.partition,
        "max_lag": 0 if worst is None else worst.lag,
        "total_lag": sum(lag.lag or 0 for lag in known),
        "max_lag_consumer": None
        if member is None
        else {"related": f"{url}/consumers/{_segment(member.member_id)}"},
        "max_lag_partition": None
        if worst is None
        else {"related": f"{base}/topics/{_segment(worst.topic)}/partitions/{worst.partition}"},
    }


# -- handlers ----------------------------------------------------------------------------------


async def list_groups(request: web.Request) -> web.Response:
    inspector, cluster_id, base = _context(request)
    try:
        listings = await inspector.list_groups()
    except InspectError as error:
        raise _unavailable(error) from None
    items = [
        group_body(base, cluster_id, g.group_id, g.state, g.protocol_type, "", g.coordinator_id)
        for g in listings
    ]
    return web.json_response(_list("KafkaConsumerGroupList", f"{base}/consumer-groups", items))


async def get_group(request: web.Request) -> web.Response:
    _, cluster_id, base, d = await _group(request)
    body = group_body(
        base, cluster_id, d.group_id, d.state, d.protocol_type, d.protocol, d.coordinator_id
    )
    return web.json_response(body)


async def list_consumers(request: web.Request) -> web.Response:
    _, cluster_id, base, details = await _group(request)
    items = [consumer_body(base, cluster_id, details.group_id, m) for m in details.members]
    url = f"{_group_url(base, details.group_id)}/consumers"
    return web.json_response(_list("KafkaConsumerList", url, items))


async def _lags(request: web.Request) -> tuple[str, str, GroupDetails, list[PartitionLag]]:
    inspector, cluster_id, base, details = await _group(request)
    try:
        lags = await inspector.lags(details)
    except InspectError as error:
        raise _unavailable(error) from None
    return cluster_id, base, details, lags


async def get_lag_summary(request: web.Request) -> web.Response:
    cluster_id, base, details, lags = await _lags(request)
    return web.json_response(lag_summary_body(base, cluster_id, details.group_id, lags))


async def list_lags(request: web.Request) -> web.Response:
    cluster_id, base, details, lags = await _lags(request)
    items = [lag_body(base, cluster_id, details.group_id, lag) for lag in lags]
    url = f"{_group_url(base, details.group_id)}/lags"
    return web.json_response(_list("KafkaConsumerLagList", url, items))


_GROUPS = "/clusters/{cluster_id}/consumer-groups"
_GROUP = _GROUPS + "/{group_id}"
_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", _GROUPS, list_groups),
    ("GET", _GROUP, get_group),
    ("GET", _GROUP + "/consumers", list_consumers),
    ("GET", _GROUP + "/lag-summary", get_lag_summary),
    ("GET", _GROUP + "/lags", list_lags),
)


def consumer_group_routes() -> list[tuple[str, str, Handler]]:
    return [
        (method, prefix + path, handler)
        for prefix in V3_PREFIXES
        for method, path, handler in _ROUTES
    ]
