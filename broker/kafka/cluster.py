"""ApiVersions, Metadata and DescribeCluster: answered from this broker's own metadata image.

A Metadata request naming a topic that does not exist creates it when the broker's
auto.create.topics.enable is on and the request allows it (allow_auto_topic_creation, v4+;
always before), as Kafka: num.partitions partitions of default.replication.factor replicas.
The answer waits for the creation (at most AUTO_CREATE_TIMEOUT_S) and describes the new
topic; LEADER_NOT_AVAILABLE, which clients retry, when it is not done in time.

Brokers are listed with their CLIENT endpoint (the Kafka listener) and only while unfenced, as
Kafka lists live brokers. The "controller" a KRaft cluster shows its clients is a broker they
can reach (clients send topic administration there, and any broker forwards it to the active
controller): the quorum leader when it is a live broker, else the lowest live broker id.
"""

from __future__ import annotations

import asyncio
import functools
import re
import uuid
from typing import Any

import structlog

from broker.api.facade import NoLeaderError
from broker.kafka.apis import SUPPORTED_VERSIONS, ApiKey
from broker.kafka.codec import ZERO_UUID, topic_id_text
from broker.kafka.context import AUTHORIZED_OPERATIONS_OMITTED, RequestContext
from broker.kafka.errors import KafkaError, admin_error
from broker.kafka.groups.offsets_topic import OFFSETS_TOPIC
from broker.kafka.services import BrokerServices
from kraft.controller.errors import ControllerError, InvalidTopicNameError, TopicExistsError
from kraft.controller.image import BrokerRegistration, MetadataImage, TopicImage
from kraft.controller.topics import validate_topic_name

log = structlog.get_logger(__name__)

CLIENT_LISTENER = "CLIENT"
# How long a Metadata request waits for the topics it auto-creates.
AUTO_CREATE_TIMEOUT_S = 5.0
# Topics one Metadata request may auto-create; the others it names answer
# LEADER_NOT_AVAILABLE, and the client's retry creates the next ones.
MAX_AUTO_CREATED_TOPICS_PER_REQUEST = 100
# KIP-511: client software name and version in ApiVersions v3+
_SOFTWARE_FIELD = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")
ENDPOINT_TYPE_BROKER = 1


# -- ApiVersions -----------------------------------------------------------------------------


# Kafka marks these internal in Metadata (clients leave them out of pattern subscriptions).
INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC})


def api_versions_answer(context: RequestContext, error: KafkaError) -> Any:
    return _api_versions_answer(context.version, error)


@functools.cache
def _api_versions_answer(version: int, error: KafkaError) -> Any:
    """Built once per version and error: every new client connection asks, and the list
    (one entry per API) cost 60 us to build. kio's entities are frozen, so one is shared."""
    context = RequestContext(ApiKey.API_VERSIONS, version, 0, None)
    api_keys = tuple(
        context.build("ApiVersion", api_key=int(key), min_version=low, max_version=high)
        for key, (low, high) in sorted(SUPPORTED_VERSIONS.items())
    )
    return context.build(
        "ApiVersionsResponse", error_code=error, api_keys=api_keys, throttle_time=0
    )


def unsupported_api_versions_answer(correlation_id: int, client_id: str | None) -> Any:
    """The v0 answer to an ApiVersions version this broker does not know (KIP-511): the
    client reads UNSUPPORTED_VERSION and the list, then asks again with a version from it."""
    context = RequestContext(ApiKey.API_VERSIONS, 0, correlation_id, client_id)
    return api_versions_answer(context, KafkaError.unsupported_version)


async def handle_api_versions(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    del services
    if context.version >= 3:
        for value in (request.client_software_name, request.client_software_version):
            if _SOFTWARE_FIELD.fullmatch(value) is None:
                # Kafka answers INVALID_REQUEST with an empty list
                return context.build(
                    "ApiVersionsResponse",
                    error_code=KafkaError.invalid_request,
                    api_keys=(),
                    throttle_time=0,
                )
    return api_versions_answer(context, KafkaError.none)


# -- brokers -----------------------------------------------------------------------------------


def live_brokers(image: MetadataImage) -> list[tuple[BrokerRegistration, str, int]]:
    """(registration, host, port) of each unfenced broker with a CLIENT endpoint."""
    brokers = []
    for broker in sorted(image.brokers.values(), key=lambda b: b.broker_id):
        endpoint = broker.endpoint(CLIENT_LISTENER)
        if endpoint is not None and not broker.fenced:
            brokers.append((broker, endpoint.host, endpoint.port))
    return brokers


def advertised_controller_id(services: BrokerServices, image: MetadataImage) -> int:
    live_ids = [broker.broker_id for broker, _, _ in live_brokers(image)]
    leader = services.controller_id()
    if leader is not None and leader in live_ids:
        return leader
    return live_ids[0] if live_ids else -1


def client_endpoint(image: MetadataImage, broker_id: int) -> tuple[str, int] | None:
    broker = image.brokers.get(broker_id)
    endpoint = None if broker is None else broker.endpoint(CLIENT_LISTENER)
    return None if endpoint is None else (endpoint.host, endpoint.port)


# -- Metadata ----------------------------------------------------------------------------------


async def handle_metadata(services: BrokerServices, context: RequestContext, request: Any) -> Any:
    image = services.image()
    brokers = tuple(
        context.build(
            "MetadataResponseBroker",
            node_id=broker.broker_id,
            host=host,
            port=port,
            rack=broker.rack,
        )
        for broker, host, port in live_brokers(image)
    )
    live_ids = {broker.broker_id for broker, _, _ in live_brokers(image)}
    requested = request.topics
    if requested is None or (context.version == 0 and not requested):
        # null asks for every topic (v1+); v0 says it with an empty list
        topics = tuple(
            _topic_answer(context, topic, live_ids)
            for name in image.topic_names()
            if (topic := image.topic(name)) is not None
        )
    else:
        refusals = await _auto_create(services, request, image)
        if refusals is not None:
            image = services.image()
        topics = tuple(
            _requested_topic(context, image, entry, live_ids, refusals) for entry in requested
        )
    return context.build(
        "MetadataResponse",
        throttle_time=0,
        brokers=brokers,
        cluster_id=services.cluster_id(),
        controller_id=advertised_controller_id(services, image),
        topics=topics,
        cluster_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
    )


async def _auto_create(
    services: BrokerServices, request: Any, image: MetadataImage
) -> dict[str, KafkaError] | None:
    """Creates the requested topics that do not exist, if this broker and the request allow
    it; None when none was to be created, else for each one not created the code to answer
    it with (an empty map when all were)."""
    if not services.auto_create_topics or not getattr(request, "allow_auto_topic_creation", True):
        return None
    missing = sorted(
        {
            entry.name
            for entry in request.topics
            if entry.name is not None
            and image.topic(entry.name) is None
            and entry.name not in INTERNAL_TOPICS
            and _is_valid_topic_name(entry.name)
        }
    )
    if not missing:
        return None
    now = missing[:MAX_AUTO_CREATED_TOPICS_PER_REQUEST]
    later = missing[MAX_AUTO_CREATED_TOPICS_PER_REQUEST:]
    outcomes = await asyncio.gather(*(_create(services, name) for name in now))
    refusals = {name: code for name, code in zip(now, outcomes, strict=True) if code is not None}
    refusals.update(dict.fromkeys(later, KafkaError.leader_not_available))
    return refusals


async def _create(services: BrokerServices, name: str) -> KafkaError | None:
    try:
        async with asyncio.timeout(AUTO_CREATE_TIMEOUT_S):
            await services.admin.create_topic(name, None, None, {})
    except TopicExistsError:
        return None  # another request created it meanwhile
    except (NoLeaderError, TimeoutError) as error:
        log.info("topic.auto_create_pending", topic=name, reason=str(error) or "timed out")
        return KafkaError.leader_not_available
    except ControllerError as error:
        code, message = admin_error(error)
        log.warning("topic.auto_create_refused", topic=name, error=code.name, message=message)
        return code
    log.info("topic.auto_created", topic=name)
    return None


def _is_valid_topic_name(name: str) -> bool:
    try:
        validate_topic_name(name)
    except InvalidTopicNameError:
        return False
    return True


def _requested_topic(
    context: RequestContext,
    image: MetadataImage,
    entry: Any,
    live_ids: set[int],
    auto_create_refusals: dict[str, KafkaError] | None = None,
) -> Any:
    name: str | None = entry.name
    topic_id: uuid.UUID | None = getattr(entry, "topic_id", None)
    if name is None:
        if topic_id is None or topic_id == ZERO_UUID:
            return _topic_error(context, None, ZERO_UUID, KafkaError.invalid_request)
        topic = image.topics_by_id.get(topic_id_text(topic_id))
        if topic is None:
            return _topic_error(context, None, topic_id, KafkaError.unknown_topic_id)
        return _topic_answer(context, topic, live_ids)
    try:
        validate_topic_name(name)
    except InvalidTopicNameError:
        return _topic_error(context, name, ZERO_UUID, KafkaError.invalid_topic_exception)
    topic = image.topic(name)
    if topic is None:
        error = KafkaError.unknown_topic_or_partition
        if auto_create_refusals is not None and name not in INTERNAL_TOPICS:
            # created, but not applied here yet: a moment more (clients retry this code)
            error = auto_create_refusals.get(name, KafkaError.leader_not_available)
        return _topic_error(context, name, ZERO_UUID, error)
    return _topic_answer(context, topic, live_ids)


def _topic_error(
    context: RequestContext, name: str | None, topic_id: uuid.UUID, error: KafkaError
) -> Any:
    return context.build(
        "MetadataResponseTopic",
        error_code=error,
        name=name,
        topic_id=topic_id,
        is_internal=False,
        partitions=(),
        topic_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
    )


def _topic_answer(context: RequestContext, topic: TopicImage, live_ids: set[int]) -> Any:
    partitions = []
    for partition in sorted(topic.partitions.values(), key=lambda p: p.partition_id):
        partitions.append(
            context.build(
                "MetadataResponsePartition",
                error_code=KafkaError.none
                if partition.has_leader
                else KafkaError.leader_not_available,
                partition_index=partition.partition_id,
                leader_id=partition.leader if partition.has_leader else -1,
                leader_epoch=partition.leader_epoch,
                replica_nodes=tuple(partition.replicas),
                isr_nodes=tuple(partition.isr),
                offline_replicas=tuple(r for r in partition.replicas if r not in live_ids),
            )
        )
    return context.build(
        "MetadataResponseTopic",
        error_code=KafkaError.none,
        name=topic.name,
        topic_id=topic.topic_id,
        is_internal=topic.name in INTERNAL_TOPICS,  # pattern subscriptions skip these
        partitions=tuple(partitions),
        topic_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
    )


# -- DescribeCluster ---------------------------------------------------------------------------


async def handle_describe_cluster(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    image = services.image()
    endpoint_type = getattr(request, "endpoint_type", ENDPOINT_TYPE_BROKER)
    if endpoint_type != ENDPOINT_TYPE_BROKER:
        return context.build(
            "DescribeClusterResponse",
            throttle_time=0,
            error_code=KafkaError.unsupported_endpoint_type,
            error_message=f"endpoint type {endpoint_type} is not served here; brokers (1) are",
            endpoint_type=endpoint_type,
            cluster_id=services.cluster_id(),
            controller_id=-1,
            brokers=(),
            cluster_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
        )
    brokers = tuple(
        context.build(
            "DescribeClusterBroker",
            broker_id=broker.broker_id,
            host=host,
            port=port,
            rack=broker.rack,
        )
        for broker, host, port in live_brokers(image)
    )
    return context.build(
        "DescribeClusterResponse",
        throttle_time=0,
        error_code=KafkaError.none,
        error_message=None,
        endpoint_type=ENDPOINT_TYPE_BROKER,
        cluster_id=services.cluster_id(),
        controller_id=advertised_controller_id(services, image),
        brokers=brokers,
        cluster_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
    )


__all__ = [
    "advertised_controller_id",
    "client_endpoint",
    "handle_api_versions",
    "handle_describe_cluster",
    "handle_metadata",
    "unsupported_api_versions_answer",
]
