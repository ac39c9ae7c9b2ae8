"""CreateTopics, DeleteTopics and CreatePartitions through the ControllerGateway.

Each topic is handled on its own (one refusal never spoils the others) and answered once the
change is committed and applied on this broker, as the HTTP admin API does. Refusals carry
Kafka's code for the controller's typed error (broker.kafka.errors) and its message. The
request's timeout is not applied: the gateway bounds every call itself (10 s forward, 10 s
apply) and a timeout there answers REQUEST_TIMED_OUT.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from typing import Any

from broker.api.facade import NoLeaderError
from broker.kafka.codec import ZERO_UUID, topic_id_text
from broker.kafka.context import RequestContext
from broker.kafka.errors import KafkaError, admin_error
from broker.kafka.services import BrokerServices
from kraft.controller.errors import ControllerError
from kraft.controller.image import MetadataImage

DEFAULT = -1  # num_partitions / replication_factor: the broker's default
CONFIG_SOURCE_DYNAMIC_TOPIC = 1
MAX_TOPICS_PER_REQUEST = 1000

Refusal = tuple[KafkaError, str]


async def _run(operation: Any) -> Refusal | None:
    try:
        await operation
    except (ControllerError, NoLeaderError, TimeoutError) as error:
        return admin_error(error)
    return None


def _duplicates(names: list[str | None]) -> set[str]:
    return {name for name, count in Counter(names).items() if name is not None and count > 1}


async def _closed(refusal: Refusal | None) -> Refusal | None:
    return refusal


def _too_many(count: int) -> Refusal | None:
    if count > MAX_TOPICS_PER_REQUEST:
        return (
            KafkaError.invalid_request,
            f"{count} topics in one request; the limit is {MAX_TOPICS_PER_REQUEST}",
        )
    return None


# -- CreateTopics ------------------------------------------------------------------------------


async def handle_create_topics(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    names = [topic.name for topic in request.topics]
    duplicates = _duplicates(names)
    too_many = _too_many(len(names))
    validate_only = bool(getattr(request, "validate_only", False))
    operations: list[Awaitable[Refusal | None]] = []
    for topic in request.topics:
        refusal = too_many or _refuse_new_topic(topic, duplicates)
        if refusal is not None:
            operations.append(_closed(refusal))
            continue
        operations.append(
            _run(
                services.admin.create_topic(
                    topic.name,
                    None if topic.num_partitions == DEFAULT else int(topic.num_partitions),
                    None if topic.replication_factor == DEFAULT else int(topic.replication_factor),
                    _configs(topic),
                    validate_only,
                )
            )
        )
    refusals = await asyncio.gather(*operations)
    image = services.image()
    results = tuple(
        _created_topic(context, image, topic, refusal, validate_only)
        for topic, refusal in zip(request.topics, refusals, strict=True)
    )
    return context.build("CreateTopicsResponse", throttle_time=0, topics=results)


def _configs(topic: Any) -> dict[str, str]:
    """The configs to set; a null value means the default, which needs no entry."""
    return {config.name: config.value for config in topic.configs if config.value is not None}


def _refuse_new_topic(topic: Any, duplicates: set[str]) -> Refusal | None:
    if topic.name in duplicates:
        return KafkaError.invalid_request, f"topic {topic.name!r} appears more than once"
    if topic.assignments:
        return (
            KafkaError.invalid_replica_assignment,
            "manual replica assignments are not supported; give num_partitions and "
            "replication_factor (or -1 for the defaults)",
        )
    return None


def _created_topic(
    context: RequestContext,
    image: MetadataImage,
    topic: Any,
    refusal: Refusal | None,
    validate_only: bool,
) -> Any:
    if refusal is not None:
        code, message = refusal
        return context.build(
            "CreatableTopicResult",
            name=topic.name,
            topic_id=ZERO_UUID,
            error_code=code,
            error_message=message,
            num_partitions=-1,
            replication_factor=-1,
            configs=None,
        )
    created = None if validate_only else image.topic(topic.name)
    if created is None:  # validate_only: nothing was created
        return context.build(
            "CreatableTopicResult",
            name=topic.name,
            topic_id=ZERO_UUID,
            error_code=KafkaError.none,
            error_message=None,
            num_partitions=int(topic.num_partitions),
            replication_factor=int(topic.replication_factor),
            configs=None,
        )
    first = created.partitions[min(created.partitions)] if created.partitions else None
    # The answer lists the topic's configs from v5 on (KIP-525); v0-v4 have no such field.
    has_configs = context.response_has("CreatableTopicResult", "configs")
    configs = tuple(
        context.build(
            "CreatableTopicConfigs",
            name=name,
            value=value,
            read_only=False,
            config_source=CONFIG_SOURCE_DYNAMIC_TOPIC,
            is_sensitive=False,
        )
        for name, value in sorted(image.configs("topic", created.name).items())
        if has_configs
    )
    return context.build(
        "CreatableTopicResult",
        name=created.name,
        topic_id=created.topic_id,
        error_code=KafkaError.none,
        error_message=None,
        num_partitions=len(created.partitions),
        replication_factor=-1 if first is None else len(first.replicas),
        configs=configs,
    )


# -- DeleteTopics ------------------------------------------------------------------------------


async def handle_delete_topics(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    image = services.image()
    if hasattr(request, "topic_names"):
        wanted = [(name, None) for name in request.topic_names]
    else:
        wanted = [(state.name, state.topic_id) for state in request.topics]
    # (name or None, topic id or None, refusal or None)
    resolved: list[tuple[str | None, Any, Refusal | None]] = []
    for name, topic_id in wanted:
        if name is None:
            found = None
            if topic_id is not None and topic_id != ZERO_UUID:
                found = image.topics_by_id.get(topic_id_text(topic_id))
            if found is None:
                unknown = (KafkaError.unknown_topic_id, f"no topic has id {topic_id}")
                resolved.append((None, topic_id, unknown))
                continue
            name = found.name
        topic = image.topic(name)
        resolved.append((name, None if topic is None else topic.topic_id, None))
    duplicates = _duplicates([name for name, _, _ in resolved])
    too_many = _too_many(len(resolved))
    operations: list[Awaitable[Refusal | None]] = []
    for name, _, refusal in resolved:
        if refusal is None and too_many is not None:
            refusal = too_many
        if refusal is None and name in duplicates:
            refusal = (KafkaError.invalid_request, f"topic {name!r} appears more than once")
        if refusal is not None or name is None:
            operations.append(_closed(refusal or (KafkaError.invalid_request, "no topic named")))
        else:
            operations.append(_run(services.admin.delete_topic(name)))
    refusals = await asyncio.gather(*operations)
    results = []
    for (name, topic_id, _), refusal in zip(resolved, refusals, strict=True):
        code, message = refusal if refusal is not None else (KafkaError.none, None)
        results.append(
            context.build(
                "DeletableTopicResult",
                name=name,
                topic_id=ZERO_UUID if topic_id is None else topic_id,
                error_code=code,
                error_message=message,
            )
        )
    return context.build("DeleteTopicsResponse", throttle_time=0, responses=tuple(results))


# -- CreatePartitions --------------------------------------------------------------------------


async def handle_create_partitions(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    image = services.image()
    names = [topic.name for topic in request.topics]
    duplicates = _duplicates(names)
    too_many = _too_many(len(names))
    operations: list[Awaitable[Refusal | None]] = []
    for topic in request.topics:
        refusal = too_many or _refuse_new_partitions(image, topic, duplicates)
        if refusal is not None:
            operations.append(_closed(refusal))
        elif request.validate_only:
            operations.append(_closed(None))
        else:
            operations.append(_run(services.admin.create_partitions(topic.name, int(topic.count))))
    refusals = await asyncio.gather(*operations)
    results = []
    for topic, refusal in zip(request.topics, refusals, strict=True):
        code, message = refusal if refusal is not None else (KafkaError.none, None)
        results.append(
            context.build(
                "CreatePartitionsTopicResult",
                name=topic.name,
                error_code=code,
                error_message=message,
            )
        )
    return context.build("CreatePartitionsResponse", throttle_time=0, results=tuple(results))


def _refuse_new_partitions(
    image: MetadataImage, topic: Any, duplicates: set[str]
) -> Refusal | None:
    if topic.name in duplicates:
        return KafkaError.invalid_request, f"topic {topic.name!r} appears more than once"
    if topic.assignments is not None:
        return (
            KafkaError.invalid_replica_assignment,
            "manual replica assignments are not supported; give only the new count",
        )
    existing = image.topic(topic.name)
    if existing is None:
        return KafkaError.unknown_topic_or_partition, f"topic {topic.name!r} does not exist"
    if topic.count <= len(existing.partitions):
        return (
            KafkaError.invalid_partitions,
            f"topic {topic.name!r} has {len(existing.partitions)} partitions; the new count "
            f"{topic.count} must be larger",
        )
    return None
