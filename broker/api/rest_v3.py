"""Cluster administration over HTTP: the Confluent REST v3 subset and the health overview
(SPEC §5), wired to an AdminFacade.

Every v3 route is served under both `/v3` and `/kafka/v3`; links in the answers keep the
prefix and host the request came in on. Reads come from this node's metadata image; writes
go through the facade to the active controller and are answered once committed and applied
here, so a read that follows a write on the same node sees it. Bodies and shapes live in
rest_validation and rest_shapes; controller refusals (ControllerError) are turned into
answers by the error middleware in broker/api/http.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from broker.api import rest_shapes as shapes
from broker.api.bodies import read_json_body
from broker.api.errors import ApiError, ErrorCode, timed_out_error
from broker.api.facade import AdminFacade
from broker.api.health import health_overview
from broker.api.rest_validation import (
    parse_alter_configs_body,
    parse_broker_id,
    parse_create_topic_body,
    parse_partition_id,
    parse_update_config_body,
    parse_update_partitions_body,
)
from kraft.controller.image import MetadataImage, PartitionRegistration, TopicImage

ADMIN: web.AppKey[AdminFacade | None] = web.AppKey("admin")
ADMIN_TIMEOUT_SECONDS: web.AppKey[float] = web.AppKey("admin_timeout_seconds", float)

V3_PREFIXES = ("/v3", "/kafka/v3")
HEALTH_OVERVIEW_PATH = "/v1/cluster/health_overview"

# --- request helpers ---------------------------------------------------------------------


def _admin(request: web.Request) -> AdminFacade:
    admin = request.app[ADMIN]
    if admin is None:
        raise ApiError(
            ErrorCode.NOT_IMPLEMENTED,
            f"this node was built without the admin API, so {request.method} "
            f"{request.path} cannot be served",
        )
    return admin


def _base(request: web.Request) -> str:
    """Scheme, host and the v3 prefix the request used: the root of every link we answer."""
    prefix = "/kafka/v3" if request.path.startswith("/kafka/v3") else "/v3"
    return f"{request.url.origin()}{prefix}"


def _cluster(request: web.Request) -> tuple[AdminFacade, str]:
    """The facade, once the path's cluster id is this cluster's (else 40401)."""
    admin = _admin(request)
    cluster_id = request.match_info["cluster_id"]
    if cluster_id != admin.cluster_id:
        raise ApiError(
            ErrorCode.CLUSTER_NOT_FOUND,
            f"cluster {cluster_id!r} not found; this node belongs to cluster {admin.cluster_id!r}",
        )
    return admin, cluster_id


async def _caught_up_image(admin: AdminFacade) -> MetadataImage:
    """This node's image once it holds every write the controller had committed (a write
    acknowledged by another node included); as it is when no controller answers in time."""
    await admin.catch_up_metadata()
    return admin.metadata_image()


def _topic(image: MetadataImage, name: str) -> TopicImage:
    topic = image.topic(name)
    if topic is None:
        raise ApiError(
            ErrorCode.TOPIC_OR_PARTITION_NOT_FOUND, f"topic {name!r} not found in this cluster"
        )
    return topic


def _partition(request: web.Request, topic: TopicImage) -> PartitionRegistration:
    partition_id = parse_partition_id(request.match_info["partition_id"], topic.name)
    partition = topic.partitions.get(partition_id)
    if partition is None:
        raise ApiError(
            ErrorCode.TOPIC_OR_PARTITION_NOT_FOUND,
            f"partition {partition_id} of topic {topic.name!r} not found; the topic has "
            f"partitions 0 to {len(topic.partitions) - 1}",
        )
    return partition


async def _write(request: web.Request, operation: Awaitable[None]) -> None:
    """Waits for a write, at most the app's admin timeout (504 after it, or after the
    facade's own commit timeout)."""
    timeout_seconds = request.app[ADMIN_TIMEOUT_SECONDS]
    try:
        async with asyncio.timeout(timeout_seconds):
            await operation
    except TimeoutError:
        raise timed_out_error(
            f"timed out waiting for {request.method} {request.path} to commit (at most "
            f"{timeout_seconds:g} s); the write may still take effect"
        ) from None


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


# --- clusters and brokers ------------------------------------------------------------------


async def list_clusters(request: web.Request) -> web.Response:
    admin = _admin(request)
    base = _base(request)
    cluster = shapes.cluster_body(base, admin.cluster_id, admin.controller_id())
    return _json(shapes.resource_list("KafkaClusterList", f"{base}/clusters", [cluster]))


async def get_cluster(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    return _json(shapes.cluster_body(_base(request), cluster_id, admin.controller_id()))


async def list_brokers(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    return _json(shapes.broker_list_body(_base(request), cluster_id, await _caught_up_image(admin)))


async def get_broker(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    broker_id = parse_broker_id(request.match_info["broker_id"])
    broker = (await _caught_up_image(admin)).brokers.get(broker_id)
    if broker is None:
        raise ApiError(ErrorCode.BROKER_NOT_FOUND, f"broker {broker_id} not found in this cluster")
    return _json(shapes.broker_body(_base(request), cluster_id, broker))


# --- topics ----------------------------------------------------------------------------------


async def list_topics(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    return _json(shapes.topic_list_body(_base(request), cluster_id, await _caught_up_image(admin)))


async def create_topic(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    body = parse_create_topic_body(await read_json_body(request))
    await _write(
        request,
        admin.create_topic(
            body.topic_name,
            body.partitions_count,
            body.replication_factor,
            body.configs,
            validate_only=body.validate_only,
        ),
    )
    base = _base(request)
    topic = None if body.validate_only else admin.metadata_image().topic(body.topic_name)
    if topic is not None:
        return _json(shapes.topic_image_body(base, cluster_id, topic), status=201)
    # validate_only (nothing was created: 200), or deleted again before we could read it.
    answer = shapes.topic_body(
        base,
        cluster_id,
        body.topic_name,
        topic_id=None,
        partitions_count=body.partitions_count,
        replication_factor=body.replication_factor,
    )
    return _json(answer, status=200 if body.validate_only else 201)


async def get_topic(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    topic = _topic(await _caught_up_image(admin), request.match_info["topic_name"])
    return _json(shapes.topic_image_body(_base(request), cluster_id, topic))


async def delete_topic(request: web.Request) -> web.Response:
    admin, _ = _cluster(request)
    await _write(request, admin.delete_topic(request.match_info["topic_name"]))
    return web.Response(status=204)


async def update_partitions_count(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    name = request.match_info["topic_name"]
    total = parse_update_partitions_body(await read_json_body(request))
    await _write(request, admin.create_partitions(name, total))
    topic = _topic(admin.metadata_image(), name)
    return _json(shapes.topic_image_body(_base(request), cluster_id, topic))


# --- partitions and replicas -----------------------------------------------------------------


async def list_partitions(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    topic = _topic(await _caught_up_image(admin), request.match_info["topic_name"])
    return _json(shapes.partition_list_body(_base(request), cluster_id, topic))


async def get_partition(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    topic = _topic(await _caught_up_image(admin), request.match_info["topic_name"])
    partition = _partition(request, topic)
    return _json(shapes.partition_body(_base(request), cluster_id, topic.name, partition))


async def list_replicas(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    topic = _topic(await _caught_up_image(admin), request.match_info["topic_name"])
    partition = _partition(request, topic)
    return _json(shapes.replica_list_body(_base(request), cluster_id, topic.name, partition))


async def get_replica(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    topic = _topic(await _caught_up_image(admin), request.match_info["topic_name"])
    partition = _partition(request, topic)
    broker_id = parse_broker_id(request.match_info["broker_id"])
    if broker_id not in partition.replicas:
        raise ApiError(
            ErrorCode.TOPIC_OR_PARTITION_NOT_FOUND,
            f"broker {broker_id} holds no replica of partition {partition.partition_id} of "
            f"topic {topic.name!r}; its replicas are "
            f"{', '.join(str(b) for b in partition.replicas)}",
        )
    body = shapes.replica_body(_base(request), cluster_id, topic.name, partition, broker_id)
    return _json(body)


# --- topic configs ---------------------------------------------------------------------------


async def list_topic_configs(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    image = await _caught_up_image(admin)
    topic = _topic(image, request.match_info["topic_name"])
    return _json(shapes.topic_config_list_body(_base(request), cluster_id, topic.name, image))


async def get_topic_config(request: web.Request) -> web.Response:
    admin, cluster_id = _cluster(request)
    image = await _caught_up_image(admin)
    topic = _topic(image, request.match_info["topic_name"])
    name = request.match_info["config_name"]
    if name not in shapes.topic_config_names(image.configs("topic", topic.name)):
        raise ApiError(
            ErrorCode.CONFIG_NOT_FOUND,
            f"config {name!r} not found for topic {topic.name!r}; the topic configs are "
            f"{', '.join(shapes.KNOWN_TOPIC_CONFIGS)}",
        )
    return _json(shapes.topic_config_body(_base(request), cluster_id, topic.name, name, image))


async def update_topic_config(request: web.Request) -> web.Response:
    admin, _ = _cluster(request)
    name = request.match_info["config_name"]
    value = parse_update_config_body(await read_json_body(request))
    await _write(
        request, admin.alter_topic_configs(request.match_info["topic_name"], {name: value})
    )
    return web.Response(status=204)


async def reset_topic_config(request: web.Request) -> web.Response:
    """DELETE of a config: back to its default (the topic no longer sets it)."""
    admin, _ = _cluster(request)
    name = request.match_info["config_name"]
    await _write(request, admin.alter_topic_configs(request.match_info["topic_name"], {}, [name]))
    return web.Response(status=204)


async def alter_topic_configs(request: web.Request) -> web.Response:
    admin, _ = _cluster(request)
    body = parse_alter_configs_body(await read_json_body(request))
    await _write(
        request,
        admin.alter_topic_configs(
            request.match_info["topic_name"],
            body.set_configs,
            body.delete_configs,
            validate_only=body.validate_only,
        ),
    )
    return web.Response(status=204)


# --- health ----------------------------------------------------------------------------------


async def get_health_overview(request: web.Request) -> web.Response:
    admin = _admin(request)
    return _json(health_overview(admin.metadata_image(), admin.controller_id()))


# --- routes ----------------------------------------------------------------------------------

_CLUSTER = "/clusters/{cluster_id}"
_TOPIC = _CLUSTER + "/topics/{topic_name}"
_PARTITION = _TOPIC + "/partitions/{partition_id}"

# (method, path below the v3 prefix, handler)
V3_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/clusters", list_clusters),
    ("GET", _CLUSTER, get_cluster),
    ("GET", _CLUSTER + "/brokers", list_brokers),
    ("GET", _CLUSTER + "/brokers/{broker_id}", get_broker),
    ("GET", _CLUSTER + "/topics", list_topics),
    ("POST", _CLUSTER + "/topics", create_topic),
    ("GET", _TOPIC, get_topic),
    ("DELETE", _TOPIC, delete_topic),
    ("PATCH", _TOPIC, update_partitions_count),
    ("GET", _TOPIC + "/partitions", list_partitions),
    ("GET", _PARTITION, get_partition),
    ("GET", _PARTITION + "/replicas", list_replicas),
    ("GET", _PARTITION + "/replicas/{broker_id}", get_replica),
    ("GET", _TOPIC + "/configs", list_topic_configs),
    ("GET", _TOPIC + "/configs/{config_name}", get_topic_config),
    ("PUT", _TOPIC + "/configs/{config_name}", update_topic_config),
    ("DELETE", _TOPIC + "/configs/{config_name}", reset_topic_config),
    ("POST", _TOPIC + "/configs:alter", alter_topic_configs),
)


def admin_routes() -> list[tuple[str, str, Handler]]:
    """Every admin route with its full path: the v3 routes under each prefix, the health
    overview."""
    routes = [
        (method, prefix + path, handler)
        for prefix in V3_PREFIXES
        for method, path, handler in V3_ROUTES
    ]
    routes.append(("GET", HEALTH_OVERVIEW_PATH, get_health_overview))
    return routes
