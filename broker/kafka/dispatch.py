"""From a request frame to a response frame: header, API key and version, body, handler.

`parse()` runs in the connection's reader, synchronously, and refuses what Kafka refuses by
closing the connection (ProtocolViolation): an API key or version this broker does not serve
(except ApiVersions, which answers an unknown version with v0 and UNSUPPORTED_VERSION), a
header or body that does not parse. `respond()` runs the handler and encodes its answer.

Produce and Fetch, on every record's path, are read and written by the hand-written codecs
of broker.kafka.wire; every other API by kio (broker.kafka.codec).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import structlog

from broker.kafka import admin, cluster, configs, data, epochs, producers
from broker.kafka.apis import ApiKey, is_supported
from broker.kafka.codec import BodyDecodeError, decode_request, encode_response, is_flexible
from broker.kafka.context import Outcome, RequestContext
from broker.kafka.groups import handlers as groups
from broker.kafka.header import (
    HeaderError,
    encode_response_header,
    parse_request_header,
    peek_header,
    request_header_version,
    response_header_version,
)
from broker.kafka.services import BrokerServices
from broker.kafka.wire import fetch, produce
from broker.kafka.wire.primitives import Chunk

log = structlog.get_logger(__name__)

Handler = Callable[[BrokerServices, RequestContext, Any], Awaitable[Any]]

HANDLERS: dict[ApiKey, Handler] = {
    ApiKey.PRODUCE: data.handle_produce,
    ApiKey.FETCH: data.handle_fetch,
    ApiKey.LIST_OFFSETS: data.handle_list_offsets,
    ApiKey.METADATA: cluster.handle_metadata,
    ApiKey.API_VERSIONS: cluster.handle_api_versions,
    ApiKey.CREATE_TOPICS: admin.handle_create_topics,
    ApiKey.DELETE_TOPICS: admin.handle_delete_topics,
    ApiKey.INIT_PRODUCER_ID: producers.handle_init_producer_id,
    ApiKey.OFFSET_FOR_LEADER_EPOCH: epochs.handle_offset_for_leader_epoch,
    ApiKey.CREATE_PARTITIONS: admin.handle_create_partitions,
    ApiKey.DESCRIBE_CONFIGS: configs.handle_describe_configs,
    ApiKey.ALTER_CONFIGS: configs.handle_alter_configs,
    ApiKey.INCREMENTAL_ALTER_CONFIGS: configs.handle_incremental_alter_configs,
    ApiKey.DESCRIBE_CLUSTER: cluster.handle_describe_cluster,
    ApiKey.OFFSET_COMMIT: groups.handle_offset_commit,
    ApiKey.OFFSET_FETCH: groups.handle_offset_fetch,
    ApiKey.FIND_COORDINATOR: groups.handle_find_coordinator,
    ApiKey.JOIN_GROUP: groups.handle_join_group,
    ApiKey.HEARTBEAT: groups.handle_heartbeat,
    ApiKey.LEAVE_GROUP: groups.handle_leave_group,
    ApiKey.SYNC_GROUP: groups.handle_sync_group,
    ApiKey.DESCRIBE_GROUPS: groups.handle_describe_groups,
    ApiKey.LIST_GROUPS: groups.handle_list_groups,
    ApiKey.DELETE_GROUPS: groups.handle_delete_groups,
    ApiKey.OFFSET_DELETE: groups.handle_offset_delete,
}


# The hand-written codecs: (version, payload, body start) -> request; (version,
# correlation id, answer) -> the response payload's chunks, header included.
WIRE_DECODERS: dict[ApiKey, Callable[[int, bytes, int], Any]] = {
    ApiKey.PRODUCE: produce.decode_request,
    ApiKey.FETCH: fetch.decode_request,
}
WIRE_ENCODERS: dict[ApiKey, Callable[[int, int, Any], list[Chunk]]] = {
    ApiKey.PRODUCE: produce.encode_response,
    ApiKey.FETCH: fetch.encode_response,
}

# A response frame's payload as chunks to write in order (header, fields, raw records).
Answer: TypeAlias = list[Chunk]


class ProtocolViolation(Exception):
    """The request cannot be answered; as Kafka does, the connection is closed."""


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    context: RequestContext
    # kio's request dataclass, or broker.kafka.wire's named tuple for Produce and Fetch;
    # None for an ApiVersions of an unknown version
    body: Any


def parse(payload: bytes, client_host: str = "") -> ParsedRequest:
    """The request in one frame's payload; client_host is the connection's (see
    RequestContext)."""
    try:
        fixed = peek_header(payload)
    except HeaderError as error:
        raise ProtocolViolation(str(error)) from None
    if not is_supported(fixed.api_key, fixed.api_version):
        if fixed.api_key == ApiKey.API_VERSIONS:
            # KIP-511: answered in v0 whatever the client's header holds after the fixed part
            context = RequestContext(
                ApiKey.API_VERSIONS, 0, fixed.correlation_id, None, client_host
            )
            return ParsedRequest(context, None)
        raise ProtocolViolation(
            f"api key {fixed.api_key} version {fixed.api_version} is not served here "
            "(ApiVersions lists what is)"
        )
    api_key = ApiKey(fixed.api_key)
    flexible = is_flexible(api_key, fixed.api_version)
    try:
        header = parse_request_header(payload, request_header_version(api_key, flexible))
        wire_decoder = WIRE_DECODERS.get(api_key)
        if wire_decoder is not None:
            body = wire_decoder(fixed.api_version, payload, header.size_bytes)
        else:
            body = decode_request(
                api_key, fixed.api_version, memoryview(payload)[header.size_bytes :]
            )
    except (HeaderError, BodyDecodeError) as error:
        raise ProtocolViolation(str(error)) from None
    context = RequestContext(
        api_key, fixed.api_version, fixed.correlation_id, header.client_id, client_host
    )
    return ParsedRequest(context, body)


async def respond(services: BrokerServices, request: ParsedRequest) -> Answer | Outcome:
    """The response frame's payload (header and body) as chunks, or what to do instead."""
    context = request.context
    if request.body is None:
        response = cluster.unsupported_api_versions_answer(context.correlation_id, None)
    else:
        outcome = await HANDLERS[context.api_key](services, context, request.body)
        if isinstance(outcome, Outcome):
            return outcome
        wire_encoder = WIRE_ENCODERS.get(context.api_key)
        if wire_encoder is not None:
            return wire_encoder(context.version, context.correlation_id, outcome)
        response = outcome
    flexible = bool(type(response).__flexible__)
    header = encode_response_header(
        context.correlation_id, response_header_version(context.api_key, flexible)
    )
    return [header, encode_response(response)]  # written one after the other, not joined
