"""The native data protocol on the rpc listener (docs/decisions/0005): validates each
request, runs it on the ReplicaManager and shapes the answer. A malformed request is
answered INVALID_REQUEST as a whole, with nothing done; one bad partition never spoils the
others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from broker.partitions.fetch_sessions import (
    FULL_FETCH_EPOCH,
    NO_SESSION_ID,
    SESSION_EPOCH_MAX,
    SESSION_ID_MAX,
    FetchSessionError,
    LeaderFetchSessions,
)
from broker.partitions.manager import (
    OffsetLookup,
    PartitionFetch,
    PartitionFetchResult,
    ProduceResult,
    ReplicaManager,
)
from kraft.controller.image import MetadataImage
from kraft.protocol.errors import ErrorCode
from kraft.protocol.native import (
    CONSUMER_REPLICA_ID,
    KIND_FETCH,
    KIND_LIST_OFFSETS,
    KIND_METADATA,
    KIND_PRODUCE,
    MAX_FETCH_BYTES,
    MAX_FETCH_WAIT_MS,
    MAX_PARTITIONS_PER_REQUEST,
    MAX_PRODUCE_TIMEOUT_MS,
    MAX_TOPIC_NAME_LENGTH,
    NO_LEADER,
)

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class InvalidRequest(Exception):
    """The request as a whole breaks the protocol; the message says where."""


def invalid_request_answer(message: str) -> dict[str, Any]:
    return {"error_code": int(ErrorCode.INVALID_REQUEST), "error_message": message}


class NativeProtocolHandler:
    def __init__(
        self,
        manager: ReplicaManager,
        image: Callable[[], MetadataImage],
        cluster_id: Callable[[], str],
        controller_id: Callable[[], int | None],
    ) -> None:
        self._manager = manager
        self._image = image
        self._cluster_id = cluster_id
        self._controller_id = controller_id
        self._fetch_sessions = LeaderFetchSessions()  # of the followers fetching from us

    async def handle(self, sender: int | None, body: Mapping[str, Any]) -> dict[str, Any]:
        kind = body.get("kind")
        try:
            if kind == KIND_PRODUCE:
                return await self._produce(body)
            if kind == KIND_FETCH:
                return await self._fetch(sender, body)
            if kind == KIND_LIST_OFFSETS:
                return self._list_offsets(body)
            if kind == KIND_METADATA:
                return self._metadata(body)
        except InvalidRequest as error:
            return invalid_request_answer(str(error))
        return invalid_request_answer(f"unknown request kind {kind!r}")

    # -- produce -----------------------------------------------------------------------------

    async def _produce(self, body: Mapping[str, Any]) -> dict[str, Any]:
        acks = _int(body, "acks", -1, 1)
        timeout_ms = _int(body, "timeout_ms", 0, MAX_PRODUCE_TIMEOUT_MS)
        entries = _partition_list(body)
        parsed = []
        for entry in entries:
            records = entry.get("records")
            if not isinstance(records, bytes):
                raise InvalidRequest("each produce partition needs 'records' as bytes")
            parsed.append((_topic(entry), _int(entry, "partition", 0, INT32_MAX), records))
        results = await asyncio.gather(
            *(
                self._manager.produce(topic, partition, records, acks, timeout_ms)
                for topic, partition, records in parsed
            )
        )
        return {
            "partitions": [
                _produce_answer(topic, partition, result)
                for (topic, partition, _), result in zip(parsed, results, strict=True)
            ]
        }

    # -- fetch -------------------------------------------------------------------------------

    async def _fetch(self, sender: int | None, body: Mapping[str, Any]) -> dict[str, Any]:
        replica_id = _int(body, "replica_id", CONSUMER_REPLICA_ID, INT32_MAX)
        if replica_id != CONSUMER_REPLICA_ID and replica_id != sender:
            raise InvalidRequest(
                f"replica_id {replica_id} fetches only come from that broker (this "
                f"connection is {'a client' if sender is None else f'node {sender}'})"
            )
        replica_epoch = _int(body, "replica_epoch", -1, INT64_MAX, default=-1)
        max_wait_ms = _int(body, "max_wait_ms", 0, MAX_FETCH_WAIT_MS)
        min_bytes = _int(body, "min_bytes", 0, MAX_FETCH_BYTES, default=1)
        max_bytes = min(_int(body, "max_bytes", 1, INT32_MAX), MAX_FETCH_BYTES)
        if "session_epoch" not in body:  # sessionless: every partition, both ways
            requests = _partition_fetches(_partition_list(body))
            results = await self._manager.fetch(
                replica_id, replica_epoch, requests, max_wait_ms, min_bytes, max_bytes
            )
            return {"partitions": [_fetch_answer(result) for result in results]}
        if replica_id == CONSUMER_REPLICA_ID:
            raise InvalidRequest("fetch sessions are for followers (a replica_id >= 0)")
        epoch = _int(body, "session_epoch", 0, SESSION_EPOCH_MAX)
        if epoch == FULL_FETCH_EPOCH:
            session = self._fetch_sessions.open(
                replica_id, _partition_fetches(_partition_list(body))
            )
        else:
            session_id = _int(body, "session_id", 1, SESSION_ID_MAX)
            changed = _partition_fetches(_partition_list(body, may_be_empty=True))
            forgotten = _forgotten(body)
            try:
                session = self._fetch_sessions.resume(
                    replica_id, session_id, epoch, changed, forgotten
                )
            except FetchSessionError as error:
                return {
                    "error_code": int(error.code),
                    "error_message": str(error),
                    "session_id": NO_SESSION_ID,
                    "partitions": [],
                }
        results = await self._manager.fetch(
            replica_id, replica_epoch, session.requests(), max_wait_ms, min_bytes, max_bytes
        )
        news = session.news(results, everything=epoch == FULL_FETCH_EPOCH)
        return {
            "session_id": session.session_id,
            "partitions": [_fetch_answer(result) for result in news],
        }

    # -- list offsets ------------------------------------------------------------------------

    def _list_offsets(self, body: Mapping[str, Any]) -> dict[str, Any]:
        answers = []
        for entry in _partition_list(body):
            topic = _topic(entry)
            partition = _int(entry, "partition", 0, INT32_MAX)
            timestamp = _int(entry, "timestamp", -2, INT64_MAX)
            lookup = self._manager.list_offset(topic, partition, timestamp)
            answers.append(_offset_answer(topic, partition, lookup))
        return {"partitions": answers}

    # -- metadata ----------------------------------------------------------------------------

    def _metadata(self, body: Mapping[str, Any]) -> dict[str, Any]:
        names = body.get("topics")
        if names is not None and (
            not isinstance(names, list)
            or len(names) > MAX_PARTITIONS_PER_REQUEST
            or not all(isinstance(name, str) for name in names)
        ):
            raise InvalidRequest(
                f"'topics' is nil or a list of at most {MAX_PARTITIONS_PER_REQUEST} names"
            )
        image = self._image()
        brokers = []
        for broker in sorted(image.brokers.values(), key=lambda b: b.broker_id):
            endpoint = broker.endpoint("RPC")
            if endpoint is None:
                continue
            brokers.append(
                {
                    "broker_id": broker.broker_id,
                    "host": endpoint.host,
                    "port": endpoint.port,
                    "rack": broker.rack,
                    "fenced": broker.fenced,
                }
            )
        topics: list[dict[str, Any]] = []
        for name in image.topic_names() if names is None else names:
            topic = image.topic(name)
            if topic is None:
                topics.append(
                    {
                        "topic": name,
                        "topic_id": None,
                        "error_code": int(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
                        "partitions": [],
                    }
                )
                continue
            topics.append(
                {
                    "topic": name,
                    "topic_id": topic.topic_id,
                    "error_code": int(ErrorCode.NONE),
                    "partitions": [
                        {
                            "partition": partition.partition_id,
                            "leader": partition.leader if partition.has_leader else NO_LEADER,
                            "leader_epoch": partition.leader_epoch,
                            "replicas": list(partition.replicas),
                            "isr": list(partition.isr),
                        }
                        for partition in sorted(
                            topic.partitions.values(), key=lambda p: p.partition_id
                        )
                    ],
                }
            )
        return {
            "cluster_id": self._cluster_id(),
            "controller_id": self._controller_id(),
            "brokers": brokers,
            "topics": topics,
        }


# -- answers -------------------------------------------------------------------------------


def _produce_answer(topic: str, partition: int, result: ProduceResult) -> dict[str, Any]:
    return {
        "topic": topic,
        "partition": partition,
        "error_code": int(result.error_code),
        "error_message": result.error_message,
        "base_offset": result.base_offset,
        "log_start_offset": result.log_start_offset,
        "leader_id": result.leader_id,
        "leader_epoch": result.leader_epoch,
        "log_append_time_ms": result.log_append_time_ms,
    }


def _fetch_answer(result: PartitionFetchResult) -> dict[str, Any]:
    return {
        "topic": result.topic,
        "partition": result.partition,
        "error_code": int(result.error_code),
        "error_message": result.error_message,
        "high_watermark": result.high_watermark,
        "log_start_offset": result.log_start_offset,
        "log_end_offset": result.log_end_offset,
        "diverging_epoch": None if result.diverging_epoch is None else list(result.diverging_epoch),
        "records": result.records,
        "leader_id": result.leader_id,
        "leader_epoch": result.leader_epoch,
    }


def _offset_answer(topic: str, partition: int, lookup: OffsetLookup) -> dict[str, Any]:
    return {
        "topic": topic,
        "partition": partition,
        "error_code": int(lookup.error_code),
        "error_message": lookup.error_message,
        "offset": lookup.offset,
        "timestamp": lookup.timestamp_ms,
        "leader_id": lookup.leader_id,
        "leader_epoch": lookup.leader_epoch,
    }


# -- validation ------------------------------------------------------------------------------


_MISSING = object()


def _int(
    body: Mapping[str, Any], key: str, minimum: int, maximum: int, default: object = _MISSING
) -> int:
    value = body.get(key, default)
    if value is _MISSING:
        raise InvalidRequest(f"'{key}' is missing")
    if type(value) is not int:  # bool is an int subclass: refused too
        raise InvalidRequest(f"'{key}' must be an integer, not {value!r}")
    if not minimum <= value <= maximum:
        raise InvalidRequest(f"'{key}'={value} is outside [{minimum}, {maximum}]")
    return value


def _topic(entry: Mapping[str, Any]) -> str:
    topic = entry.get("topic")
    if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC_NAME_LENGTH:
        raise InvalidRequest(
            f"'topic' must be a name of 1 to {MAX_TOPIC_NAME_LENGTH} characters, not {topic!r}"
        )
    return topic


def _partition_list(
    body: Mapping[str, Any], *, may_be_empty: bool = False
) -> list[Mapping[str, Any]]:
    entries = body.get("partitions")
    if not isinstance(entries, list) or not (entries or may_be_empty):
        raise InvalidRequest("'partitions' must be a non-empty list")
    if len(entries) > MAX_PARTITIONS_PER_REQUEST:
        raise InvalidRequest(
            f"{len(entries)} partitions in one request; the limit is {MAX_PARTITIONS_PER_REQUEST}"
        )
    if not all(isinstance(entry, dict) for entry in entries):
        raise InvalidRequest("each entry of 'partitions' must be a map")
    return entries


def _partition_fetches(entries: list[Mapping[str, Any]]) -> list[PartitionFetch]:
    requests = []
    for entry in entries:
        topic_id = entry.get("topic_id")
        if topic_id is not None and not isinstance(topic_id, str):
            raise InvalidRequest("'topic_id' is a string or nil")
        requests.append(
            PartitionFetch(
                topic=_topic(entry),
                partition=_int(entry, "partition", 0, INT32_MAX),
                fetch_offset=_int(entry, "fetch_offset", 0, INT64_MAX),
                max_bytes=_int(entry, "partition_max_bytes", 1, INT32_MAX),
                current_leader_epoch=_int(entry, "current_leader_epoch", -1, INT32_MAX, default=-1),
                last_fetched_epoch=_int(entry, "last_fetched_epoch", -1, INT32_MAX, default=-1),
                topic_id=topic_id,
            )
        )
    return requests


def _forgotten(body: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The `forgotten` partitions of an incremental fetch: [{"topic", "partition"}, ...]."""
    entries = body.get("forgotten", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise InvalidRequest("'forgotten' must be a list of maps")
    if len(entries) > MAX_PARTITIONS_PER_REQUEST:
        raise InvalidRequest(
            f"{len(entries)} forgotten partitions; the limit is {MAX_PARTITIONS_PER_REQUEST}"
        )
    return [(_topic(entry), _int(entry, "partition", 0, INT32_MAX)) for entry in entries]
