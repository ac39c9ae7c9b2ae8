"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topic and broker resources.

Topics: every config the controller knows (kraft.controller.configs) is described with its
effective value, the one the data plane applies: set on the topic (DYNAMIC_TOPIC_CONFIG),
else this broker's static setting of the synonym (STATIC_BROKER_CONFIG when the node's
configuration sets it, DEFAULT_CONFIG when it is the built-in default). Writes go through the
controller gateway and return once committed and applied here. AlterConfigs replaces the
topic's whole set (Kafka's semantics: a config left out goes back to its default);
IncrementalAlterConfigs applies SET, DELETE, APPEND and SUBTRACT (the last two for list
configs only) to the set this broker's image holds.

Brokers: the node's effective configuration (Kafka's server.properties names), read-only.
Our broker configs are static: an alter of a broker resource is refused per resource with
INVALID_REQUEST naming why. Other resource types (broker loggers, groups, client metrics)
are refused per resource with INVALID_REQUEST.

The pure part (which entries, which changes) is broker.kafka.config_entries, tested without
a request.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from broker.api.facade import NoLeaderError
from broker.kafka.config_entries import (
    ConfigEntry,
    ConfigRefusal,
    ConfigSource,
    ResourceType,
    TopicConfigChange,
    broker_config_entries,
    effective_broker_config,
    incremental_change,
    replacement,
    selected,
    topic_config_entries,
)
from broker.kafka.context import RequestContext
from broker.kafka.errors import KafkaError, admin_error
from broker.kafka.services import BrokerServices
from kraft.controller.errors import ControllerError, InvalidTopicNameError
from kraft.controller.image import MetadataImage
from kraft.controller.topics import validate_topic_name

MAX_RESOURCES_PER_REQUEST = 1000
CLUSTER_DEFAULT_BROKER = ""  # a broker resource named "": the cluster-wide default

Refusal = tuple[KafkaError, str]
# From the topic's current configs and one request resource, what to ask the controller for.
ChangePlanner = Callable[[Mapping[str, str], Any], TopicConfigChange]


# -- handlers --------------------------------------------------------------------------------


def _resource_type_name(resource_type: int) -> str:
    try:
        return ResourceType(resource_type).name
    except ValueError:
        return "UNKNOWN"


def _unsupported_type(resource_type: int) -> Refusal:
    return (
        KafkaError.invalid_request,
        f"resource type {resource_type} ({_resource_type_name(resource_type)}) has no configs "
        f"here; TOPIC ({ResourceType.TOPIC}) and BROKER ({ResourceType.BROKER}) do",
    )


def _request_refusals(resources: Sequence[Any]) -> list[Refusal | None]:
    """Per resource: too many in the request, or named twice (Kafka: INVALID_REQUEST)."""
    if len(resources) > MAX_RESOURCES_PER_REQUEST:
        too_many = (
            KafkaError.invalid_request,
            f"{len(resources)} resources in one request; the limit is {MAX_RESOURCES_PER_REQUEST}",
        )
        return [too_many] * len(resources)
    keys = Counter((int(r.resource_type), r.resource_name) for r in resources)
    return [
        (KafkaError.invalid_request, f"resource {r.resource_name!r} appears more than once")
        if keys[(int(r.resource_type), r.resource_name)] > 1
        else None
        for r in resources
    ]


def _broker_config(services: BrokerServices) -> dict[str, str]:
    return effective_broker_config(services.broker_config, services.data.settings)


def _topic_refusal(image: MetadataImage, name: str) -> Refusal | None:
    """A topic resource names a valid topic (INVALID_TOPIC_EXCEPTION) that exists."""
    try:
        validate_topic_name(name)
    except InvalidTopicNameError as error:
        return admin_error(error)
    if image.topic(name) is None:
        return KafkaError.unknown_topic_or_partition, f"topic {name!r} does not exist"
    return None


def _broker_refusal(services: BrokerServices, name: str) -> Refusal | None:
    """A broker resource names this broker (or "" for the cluster default)."""
    if name in (str(services.node_id), CLUSTER_DEFAULT_BROKER):
        return None
    return (
        KafkaError.invalid_request,
        f"broker resource {name!r}: this is broker {services.node_id}; ask broker {name} "
        'for its own configs (or name the broker "" for the cluster default)',
    )


async def handle_describe_configs(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    # Admin clients send a describe to any broker, often not the one that took the alter
    # before it: catch up to the controller first so the describe reads that write.
    await services.admin.catch_up_metadata()
    image = services.image()
    broker_config = _broker_config(services)
    refusals = _request_refusals(request.resources)
    results = []
    for resource, refusal in zip(request.resources, refusals, strict=True):
        resource_type, name = int(resource.resource_type), resource.resource_name
        entries: list[ConfigEntry] = []
        if refusal is None and resource_type == ResourceType.TOPIC:
            refusal = _topic_refusal(image, name)
            if refusal is None:
                entries = topic_config_entries(image.configs("topic", name), broker_config)
        elif refusal is None and resource_type == ResourceType.BROKER:
            refusal = _broker_refusal(services, name)
            if refusal is None and name != CLUSTER_DEFAULT_BROKER:
                entries = broker_config_entries(broker_config)
        elif refusal is None:
            refusal = _unsupported_type(resource_type)
        entries = selected(entries, resource.configuration_keys)
        results.append(_described(context, request, resource, refusal, entries))
    return context.build("DescribeConfigsResponse", throttle_time=0, results=tuple(results))


def _described(
    context: RequestContext,
    request: Any,
    resource: Any,
    refusal: Refusal | None,
    entries: list[ConfigEntry],
) -> Any:
    code, message = refusal if refusal is not None else (KafkaError.none, None)
    include_synonyms = bool(getattr(request, "include_synonyms", False))
    include_documentation = bool(getattr(request, "include_documentation", False))
    configs = tuple(
        context.build(
            "DescribeConfigsResourceResult",
            name=entry.name,
            value=entry.value,
            read_only=entry.read_only,
            is_default=entry.source is ConfigSource.DEFAULT_CONFIG,
            config_source=int(entry.source),
            is_sensitive=entry.is_sensitive,
            synonyms=tuple(
                context.build(
                    "DescribeConfigsSynonym",
                    name=synonym.name,
                    value=synonym.value,
                    source=int(synonym.source),
                )
                for synonym in (entry.synonyms if include_synonyms else ())
            ),
            config_type=int(entry.config_type),
            documentation=entry.documentation if include_documentation else None,
        )
        for entry in (entries if refusal is None else ())
    )
    return context.build(
        "DescribeConfigsResult",
        error_code=code,
        error_message=message,
        resource_type=int(resource.resource_type),
        resource_name=resource.resource_name,
        configs=configs,
    )


async def handle_alter_configs(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    def change(current: Mapping[str, str], resource: Any) -> TopicConfigChange:
        return replacement(current, [(c.name, c.value) for c in resource.configs])

    return await _alter(services, context, request, change, "AlterConfigsResponse")


async def handle_incremental_alter_configs(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    broker_config = _broker_config(services)

    def change(current: Mapping[str, str], resource: Any) -> TopicConfigChange:
        operations = [(c.name, int(c.config_operation), c.value) for c in resource.configs]
        return incremental_change(current, operations, broker_config)

    return await _alter(services, context, request, change, "IncrementalAlterConfigsResponse")


async def _alter(
    services: BrokerServices,
    context: RequestContext,
    request: Any,
    change: ChangePlanner,
    response: str,
) -> Any:
    """Each resource on its own: a refusal of one never spoils the others."""
    validate_only = bool(request.validate_only)
    operations: list[Awaitable[Refusal | None]] = []
    for resource, refusal in zip(
        request.resources, _request_refusals(request.resources), strict=True
    ):
        if refusal is None:
            operations.append(_alter_resource(services, resource, change, validate_only))
        else:
            operations.append(_closed(refusal))
    refusals = await asyncio.gather(*operations)
    responses = tuple(
        context.build(
            "AlterConfigsResourceResponse",
            error_code=KafkaError.none if refusal is None else refusal[0],
            error_message=None if refusal is None else refusal[1],
            resource_type=int(resource.resource_type),
            resource_name=resource.resource_name,
        )
        for resource, refusal in zip(request.resources, refusals, strict=True)
    )
    return context.build(response, throttle_time=0, responses=responses)


async def _closed(refusal: Refusal | None) -> Refusal | None:
    return refusal


async def _alter_resource(
    services: BrokerServices, resource: Any, change: ChangePlanner, validate_only: bool
) -> Refusal | None:
    resource_type, name = int(resource.resource_type), resource.resource_name
    if resource_type == ResourceType.BROKER:
        keys = ", ".join(repr(c.name) for c in resource.configs) or "none"
        return (
            KafkaError.invalid_request,
            f"broker configs are static here (server.properties, KRAFT_CFG_* or --override, "
            f"read at startup): broker resource {name!r} cannot change at run time "
            f"(configs {keys}); change the node's configuration and restart it",
        )
    if resource_type != ResourceType.TOPIC:
        return _unsupported_type(resource_type)
    image = services.image()
    topic_refusal = _topic_refusal(image, name)
    if topic_refusal is not None:
        return topic_refusal
    try:
        planned = change(image.configs("topic", name), resource)
        await services.admin.alter_topic_configs(
            name, planned.set_configs, planned.delete_configs, validate_only
        )
    except ConfigRefusal as refusal:
        return refusal.code, refusal.message
    except (ControllerError, NoLeaderError, TimeoutError) as error:
        return admin_error(error)
    return None
