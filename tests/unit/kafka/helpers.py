"""Shared pieces of the Kafka front-end tests: an image with real topic ids, a fake
ReplicaManager that records calls, BrokerServices over both, and request/response codecs
(kio's own writers and readers, so the tests speak the protocol independently of the
handlers' code)."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kio.serial import entity_reader, entity_writer

from broker.kafka.apis import ApiKey
from broker.kafka.codec import request_class, response_class, schema_module
from broker.kafka.context import RequestContext
from broker.kafka.dispatch import parse, respond
from broker.kafka.services import BrokerServices
from broker.partitions.manager import (
    OffsetLookup,
    PartitionFetch,
    PartitionFetchResult,
    ProduceResult,
    ReplicaSettings,
)
from kraft.controller.records import PartitionRecord, TopicRecord
from kraft.protocol.errors import ErrorCode
from tests.unit.api.fakes import CLUSTER_ID, FakeAdmin
from tests.unit.api.images import ImageBuilder, sample_builder


def topic_id_for(name: str) -> str:
    """A stable, valid topic id (16 bytes of URL-safe base64, Kafka's text form)."""
    digest = hashlib.sha256(name.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class KafkaImageBuilder(ImageBuilder):
    """ImageBuilder whose topics get ids a Kafka client can read as UUIDs."""

    def topic(
        self,
        name: str,
        assignment: list[tuple[int, ...]],
        *,
        leaders: dict[int, int] | None = None,
        isrs: dict[int, tuple[int, ...]] | None = None,
    ) -> str:
        topic_id = topic_id_for(name)
        self.apply(TopicRecord(name, topic_id))
        for p, replicas in enumerate(assignment):
            isr = (isrs or {}).get(p, replicas)
            leader = (leaders or {}).get(p, isr[0])
            self.apply(PartitionRecord(topic_id, p, replicas, isr, leader, 3, 0))
        return topic_id


def kafka_builder() -> KafkaImageBuilder:
    """sample_builder's cluster (brokers 1, 2 live, 3 fenced; "orders" with 3 partitions,
    "audit.log" leaderless) with valid topic ids and leader epoch 3."""
    builder = KafkaImageBuilder()
    for record in _records_of(sample_builder()):
        builder.apply(record)
    return builder


def _records_of(builder: ImageBuilder) -> list[Any]:
    records = []
    for record in builder.image.to_records():
        if isinstance(record, TopicRecord):
            record = TopicRecord(record.name, topic_id_for(record.name))
        elif isinstance(record, PartitionRecord):
            name = record.topic_id.removesuffix("-id")
            record = PartitionRecord(
                topic_id_for(name),
                record.partition_id,
                record.replicas,
                record.isr,
                record.leader,
                3,
                record.partition_epoch,
            )
        records.append(record)
    return records


@dataclass
class FakeData:
    """A ReplicaManager stand-in: answers from the values set here, records every call."""

    produce_results: dict[tuple[str, int], ProduceResult] = field(default_factory=dict)
    fetch_records: dict[tuple[str, int], bytes] = field(default_factory=dict)
    # a partition's fetch error and the leader it names: (code, leader id, leader epoch)
    fetch_errors: dict[tuple[str, int], tuple[ErrorCode, int, int]] = field(default_factory=dict)
    offsets: dict[tuple[str, int, int], OffsetLookup] = field(default_factory=dict)
    produced: list[tuple[str, int, bytes, int, int]] = field(default_factory=list)
    fetches: list[tuple[int, Sequence[PartitionFetch], int, int, int]] = field(default_factory=list)
    next_offset: int = 0
    settings: ReplicaSettings = field(
        default_factory=lambda: ReplicaSettings(
            broker_id=1,
            log_dir=Path("/data/1"),
            segment_bytes=1 << 30,
            retention_ms=7 * 24 * 3600 * 1000,
            retention_bytes=-1,
            flush_interval_messages=None,
            min_insync_replicas=1,
            replica_lag_time_max_ms=5000,
        )
    )

    async def produce(
        self, topic: str, partition_id: int, records: bytes, acks: int, timeout_ms: int
    ) -> ProduceResult:
        self.produced.append((topic, partition_id, records, acks, timeout_ms))
        result = self.produce_results.get((topic, partition_id))
        if result is None:
            result = ProduceResult(
                ErrorCode.NONE, base_offset=self.next_offset, log_start_offset=0, leader_id=1
            )
            self.next_offset += 1
        return result

    async def fetch(
        self,
        replica_id: int,
        replica_epoch: int,
        requests: Sequence[PartitionFetch],
        max_wait_ms: int,
        min_bytes: int,
        max_bytes: int,
    ) -> list[PartitionFetchResult]:
        del replica_epoch
        self.fetches.append((replica_id, requests, max_wait_ms, min_bytes, max_bytes))
        return [
            PartitionFetchResult(
                r.topic,
                r.partition,
                error[0],
                high_watermark=10,
                log_start_offset=0,
                log_end_offset=10,
                records=self.fetch_records.get((r.topic, r.partition), b""),
                leader_id=error[1],
                leader_epoch=error[2],
            )
            for r in requests
            for error in [self.fetch_errors.get((r.topic, r.partition), (ErrorCode.NONE, 1, 3))]
        ]

    def list_offset(self, topic: str, partition_id: int, timestamp_ms: int) -> OffsetLookup:
        return self.offsets.get(
            (topic, partition_id, timestamp_ms),
            OffsetLookup(ErrorCode.NONE, offset=42, leader_id=1, leader_epoch=3),
        )


@dataclass
class Fixture:
    builder: KafkaImageBuilder = field(default_factory=kafka_builder)
    data: FakeData = field(default_factory=FakeData)
    controller: int | None = 1
    broker_config: dict[str, str] = field(default_factory=dict)  # the node's configuration
    groups: Any = None  # a GroupCoordinator, for the consumer-group APIs
    auto_create_topics: bool = False  # auto.create.topics.enable
    admin: FakeAdmin = field(init=False)

    def __post_init__(self) -> None:
        self.admin = FakeAdmin(builder=self.builder)

    @property
    def services(self) -> BrokerServices:
        return BrokerServices(
            node_id=1,
            data=self.data,
            admin=self.admin,
            image=lambda: self.builder.image,
            cluster_id=lambda: CLUSTER_ID,
            controller_id=lambda: self.controller,
            broker_config=self.broker_config,
            groups=self.groups,
            auto_create_topics=self.auto_create_topics,
        )

    async def call(self, api_key: ApiKey, version: int, **fields: Any) -> Any:
        """Sends a request built from `fields` through parse/respond; returns the decoded
        response body (or the Outcome when there is none)."""
        payload = encode_request(api_key, version, request(api_key, version, **fields))
        answer = await respond(self.services, parse(payload))
        if not isinstance(answer, list):
            return answer
        return decode_response(api_key, version, b"".join(answer))


def request(api_key: ApiKey, version: int, **fields: Any) -> Any:
    return request_class(api_key, version)(**fields)


def nested(api_key: ApiKey, version: int, class_name: str, **fields: Any) -> Any:
    return getattr(schema_module(api_key, version, "request"), class_name)(**fields)


def encode_request(
    api_key: ApiKey, version: int, body: Any, correlation_id: int = 7, client_id: str = "test"
) -> bytes:
    """A request payload (no size prefix) with the header version the API version uses."""
    header = struct.pack(">hhi", int(api_key), version, correlation_id)
    header += struct.pack(">h", len(client_id)) + client_id.encode()
    if type(body).__flexible__:
        header += b"\x00"  # no tagged fields
    buffer = io.BytesIO()
    entity_writer(type(body))(buffer, body)
    return header + buffer.getvalue()


def decode_response(api_key: ApiKey, version: int, payload: bytes) -> Any:
    flexible = response_class(api_key, version).__flexible__
    header_bytes = 4 + (1 if flexible and api_key is not ApiKey.API_VERSIONS else 0)
    response, size = entity_reader(response_class(api_key, version))(payload, header_bytes)
    assert header_bytes + size == len(payload), "the response is exactly its body"
    return response


def context(api_key: ApiKey, version: int) -> RequestContext:
    return RequestContext(api_key, version, 7, "test")


__all__ = ["CLUSTER_ID", "Fixture", "encode_request", "nested", "request"]
