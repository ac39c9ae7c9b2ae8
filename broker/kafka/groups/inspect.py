"""A cluster-wide view of consumer groups for the HTTP API and metrics: what
kafka-consumer-groups.sh shows (groups, members, assignments, committed offsets, log end
offsets and lag).

A group lives on one broker, the partitions it reads on others, so this asks the brokers
what they know over their Kafka listener, as a Kafka admin client would: ListGroups to every
live broker, FindCoordinator / DescribeGroups / OffsetFetch to the group's coordinator,
ListOffsets (latest = high watermark) to each partition's leader. Every call has a timeout.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kio.serial import entity_reader, entity_writer

from broker.kafka.apis import ApiKey
from broker.kafka.cluster import client_endpoint, live_brokers
from broker.kafka.codec import build, request_class, response_class, schema_module
from broker.kafka.header import skip_tagged_fields
from kraft.controller.image import MetadataImage

CALL_TIMEOUT_S = 5.0
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
CLIENT_ID = "kraft-group-inspector"
LATEST_TIMESTAMP = -1
CONSUMER_PROTOCOL = "consumer"
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


class InspectError(Exception):
    """A broker could not be asked, or answered with an error; the message says which."""


@dataclass(frozen=True, slots=True)
class GroupListing:
    group_id: str
    state: str
    protocol_type: str
    coordinator_id: int


@dataclass(frozen=True, slots=True)
class GroupMember:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    assignment: dict[str, list[int]]  # topic -> partitions


@dataclass(frozen=True, slots=True)
class GroupDetails:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    coordinator_id: int
    members: list[GroupMember]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    current_offset: int  # -1: nothing committed
    log_end_offset: int  # -1: unknown (no leader)
    member: GroupMember | None

    @property
    def lag(self) -> int | None:
        if self.current_offset < 0 or self.log_end_offset < 0:
            return None
        return max(0, self.log_end_offset - self.current_offset)


def decode_consumer_assignment(data: bytes) -> dict[str, list[int]]:
    """ConsumerProtocolAssignment (every version starts the same way): version int16, then
    an array of (topic string, array of int32 partitions); user data follows and is skipped."""
    if len(data) < 2:
        return {}
    try:
        position = 2
        (count,) = _INT32.unpack_from(data, position)
        position += 4
        assignment: dict[str, list[int]] = {}
        for _ in range(max(count, 0)):
            (length,) = _INT16.unpack_from(data, position)
            position += 2
            topic = data[position : position + length].decode()
            position += length
            (partitions,) = _INT32.unpack_from(data, position)
            position += 4
            values = struct.unpack_from(f">{max(partitions, 0)}i", data, position)
            position += 4 * max(partitions, 0)
            assignment.setdefault(topic, []).extend(values)
    except (struct.error, UnicodeDecodeError) as error:
        raise InspectError(f"a member assignment does not parse: {error}") from None
    return assignment


class KafkaCaller:
    """One request per connection to a broker's Kafka listener (admin traffic is rare)."""

    def __init__(self) -> None:
        self._correlation = itertools.count(1)

    async def call(self, host: str, port: int, api_key: ApiKey, version: int, **values: Any) -> Any:
        body = build(
            schema_module(api_key, version, "request"), api_key.request_class_name, **values
        )
        flexible = bool(request_class(api_key, version).__flexible__)
        correlation_id = next(self._correlation)
        header = struct.pack(">hhih", int(api_key), version, correlation_id, len(CLIENT_ID))
        header += CLIENT_ID.encode() + (b"\x00" if flexible else b"")
        buffer = io.BytesIO()
        entity_writer(type(body))(buffer, body)
        payload = header + buffer.getvalue()
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(_INT32.pack(len(payload)) + payload)
                    await writer.drain()
                    (size,) = _INT32.unpack(await reader.readexactly(4))
                    if not 0 < size <= MAX_RESPONSE_BYTES:
                        raise InspectError(f"{host}:{port} answered a frame of {size} bytes")
                    answer = await reader.readexactly(size)
                finally:
                    writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            raise InspectError(
                f"{api_key.message_name} to {host}:{port} failed: {error!r}"
            ) from None
        position = 4  # the correlation id
        if flexible:
            position = skip_tagged_fields(answer, position)
        response, _ = entity_reader(response_class(api_key, version))(answer, position)
        return response


class GroupInspector:
    def __init__(
        self, image: Callable[[], MetadataImage], caller: KafkaCaller | None = None
    ) -> None:
        self._image = image
        self._caller = caller or KafkaCaller()

    def _endpoint(self, broker_id: int) -> tuple[str, int]:
        endpoint = client_endpoint(self._image(), broker_id)
        if endpoint is None:
            raise InspectError(f"broker {broker_id} has no client listener in the metadata")
        return endpoint

    async def _call(self, broker_id: int, api_key: ApiKey, version: int, **values: Any) -> Any:
        return await self._caller.call(*self._endpoint(broker_id), api_key, version, **values)

    async def list_groups(self) -> list[GroupListing]:
        brokers = [broker.broker_id for broker, _, _ in live_brokers(self._image())]
        answers = await asyncio.gather(
            *(self._call(b, ApiKey.LIST_GROUPS, 4, states_filter=()) for b in brokers),
            return_exceptions=True,
        )
        listings = []
        for broker_id, answer in zip(brokers, answers, strict=True):
            if isinstance(answer, BaseException):
                raise answer
            listings += [
                GroupListing(g.group_id, g.group_state, g.protocol_type, broker_id)
                for g in answer.groups
            ]
        return sorted(listings, key=lambda g: g.group_id)

    async def coordinator(self, group_id: str) -> int:
        broker = live_brokers(self._image())
        if not broker:
            raise InspectError("no live broker to ask")
        answer = await self._call(
            broker[0][0].broker_id, ApiKey.FIND_COORDINATOR, 3, key=group_id, key_type=0
        )
        if int(answer.error_code) != 0:
            raise InspectError(f"no coordinator for group {group_id!r}: {answer.error_message}")
        return int(answer.node_id)

    async def describe(self, group_id: str) -> GroupDetails | None:
        """The group as its coordinator has it; None if it does not exist."""
        coordinator = await self.coordinator(group_id)
        answer = await self._call(
            coordinator,
            ApiKey.DESCRIBE_GROUPS,
            5,
            groups=(group_id,),
            include_authorized_operations=False,
        )
        (group,) = answer.groups
        if int(group.error_code) != 0:
            raise InspectError(f"DescribeGroups of {group_id!r} failed: error {group.error_code}")
        if group.group_state == "Dead":
            return None
        members = [
            GroupMember(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                decode_consumer_assignment(bytes(m.member_assignment))
                if group.protocol_type == CONSUMER_PROTOCOL
                else {},
            )
            for m in group.members
        ]
        return GroupDetails(
            group_id,
            group.group_state,
            group.protocol_type,
            group.protocol_data,
            coordinator,
            members,
        )

    async def lags(self, details: GroupDetails) -> list[PartitionLag]:
        """Committed offsets, log end offsets and lag of every partition the group has
        committed or is assigned, by topic and partition."""
        answer = await self._call(
            details.coordinator_id, ApiKey.OFFSET_FETCH, 7, group_id=details.group_id, topics=None
        )
        if int(answer.error_code) != 0:
            raise InspectError(f"OffsetFetch of {details.group_id!r} failed: {answer.error_code}")
        committed = {
            (t.name, int(p.partition_index)): int(p.committed_offset)
            for t in answer.topics
            for p in t.partitions
        }
        owners = {
            (topic, partition): member
            for member in details.members
            for topic, partitions in member.assignment.items()
            for partition in partitions
        }
        keys = sorted(set(committed) | set(owners))
        ends = await self.log_end_offsets(keys)
        return [
            PartitionLag(
                topic,
                partition,
                committed.get((topic, partition), -1),
                ends.get((topic, partition), -1),
                owners.get((topic, partition)),
            )
            for topic, partition in keys
        ]

    async def log_end_offsets(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        image = self._image()
        by_leader: dict[int, list[tuple[str, int]]] = {}
        for topic_name, partition in keys:
            topic = image.topic(topic_name)
            registration = None if topic is None else topic.partitions.get(partition)
            if registration is not None and registration.has_leader:
                by_leader.setdefault(registration.leader, []).append((topic_name, partition))
        ends: dict[tuple[str, int], int] = {}
        for leader, partitions in by_leader.items():
            module = schema_module(ApiKey.LIST_OFFSETS, 4, "request")
            topics: dict[str, list[Any]] = {}
            for topic_name, partition in partitions:
                topics.setdefault(topic_name, []).append(
                    build(
                        module,
                        "ListOffsetsPartition",
                        partition_index=partition,
                        current_leader_epoch=-1,
                        timestamp=LATEST_TIMESTAMP,
                    )
                )
            answer = await self._call(
                leader,
                ApiKey.LIST_OFFSETS,
                4,
                replica_id=-1,
                isolation_level=0,
                topics=tuple(
                    build(module, "ListOffsetsTopic", name=name, partitions=tuple(parts))
                    for name, parts in topics.items()
                ),
            )
            for topic in answer.topics:
                for p in topic.partitions:
                    if int(p.error_code) == 0:
                        ends[(topic.name, int(p.partition_index))] = int(p.offset)
        return ends
