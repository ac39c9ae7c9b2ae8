"""Produce, Fetch and ListOffsets: the ReplicaManager's operations with Kafka's shapes.

Record batches pass through untouched: a produce hands each partition's bytes to the
partition leader (exactly one batch v2 per partition, as Kafka requires from Produce v3), a
fetch returns the stored batches. Errors are per partition, with Kafka's codes; a partition
led elsewhere answers NOT_LEADER_OR_FOLLOWER with the current leader where the version has
room for it (KIP-951), so clients move without a metadata round trip.

Order: a connection's requests are handled as tasks started in arrival order, and a produce
starts its appends (ReplicaManager.produce appends before its first await) in its task's
first step, so pipelined produces to one partition are appended in the order sent. The
idempotent producer's sequence checks run in that same step, right before each append
(ReplicaManager._append_as_leader), so they too see the batches in the order sent: an
idempotent client with 5 requests in flight is never refused OUT_OF_ORDER_SEQUENCE_NUMBER
for a reordering of ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

from broker.kafka.cluster import client_endpoint
from broker.kafka.codec import topic_id_text
from broker.kafka.context import Outcome, RequestContext
from broker.kafka.errors import KafkaError, from_broker_code
from broker.kafka.services import BrokerServices
from broker.kafka.wire.fetch import (
    FetchAnswer,
    FetchPartitionData,
    FetchRequestData,
    FetchTopicData,
    PartitionFetchAnswer,
    TopicFetchAnswer,
)
from broker.kafka.wire.produce import (
    PartitionProduceAnswer,
    ProduceAnswer,
    ProducePartitionData,
    ProduceRequestData,
    ProduceTopicData,
    TopicProduceAnswer,
)
from broker.kafka.wire.shared import LeaderIdAndEpoch, NodeEndpoint
from broker.log.batch import BATCH_HEADER_SIZE_BYTES, RecordBatch
from broker.log.errors import CorruptRecordError
from broker.partitions.manager import (
    EARLIEST_LOCAL_TIMESTAMP,
    MAX_TIMESTAMP,
    PartitionFetch,
    PartitionFetchResult,
    ProduceResult,
)
from kraft.controller.image import MetadataImage
from kraft.protocol.native import (
    CONSUMER_REPLICA_ID,
    EARLIEST_TIMESTAMP,
    MAX_PRODUCE_TIMEOUT_MS,
)

# Bounds (STYLE §5); the frame size (framing.MAX_REQUEST_BYTES) bounds the rest.
MAX_PARTITIONS_PER_REQUEST = 10_000
MAX_FETCH_WAIT_MS = 30_000  # clients ask for 500 ms by default
# Kafka's broker-side fetch.max.bytes default (55 MiB): a fetch answer holds at most this
MAX_FETCH_RESPONSE_BYTES = 55 * 1024 * 1024
VALID_ACKS = (-1, 0, 1)
# KIP-951, as Kafka answers it: the errors that carry the current leader and its endpoint,
# for Produce v10+ and Fetch v16+ (the versions with node_endpoints). Fetch v12-15 have a
# current_leader field but no endpoints: a client told of a leader it has no address for
# (kafka-python 3 after that broker's restart) sends its next fetch nowhere and fails.
_PRODUCE_LEADER_MOVED = frozenset({KafkaError.not_leader_or_follower})
_FETCH_LEADER_MOVED = frozenset({KafkaError.not_leader_or_follower, KafkaError.fenced_leader_epoch})
FETCH_LEADER_HINT_MIN_VERSION = 16


# -- Produce -----------------------------------------------------------------------------------


async def handle_produce(
    services: BrokerServices, context: RequestContext, request: ProduceRequestData
) -> ProduceAnswer | Outcome:
    acks = request.acks
    timeout_ms = max(0, min(request.timeout_ms, MAX_PRODUCE_TIMEOUT_MS))
    entries = [(topic, partition) for topic in request.topics for partition in topic.partitions]
    refusal = _refuse_produce(request, acks, len(entries))
    # Every append starts here, before this task's first await (see the module docstring).
    pending = [
        _produce_partition(
            services, topic.name, partition.partition_index, partition.records, acks, timeout_ms
        )
        if refusal is None
        else _refused(*refusal)
        for topic, partition in entries
    ]
    # one partition (what clients send at low rates) is awaited in this task: gather would
    # wrap it in a task of its own and cost two more turns of the loop before the answer
    results = [await pending[0]] if len(pending) == 1 else await asyncio.gather(*pending)
    if acks == 0:
        failed = any(result.error_code is not KafkaError.none for result in results)
        return Outcome.CLOSE_CONNECTION if failed else Outcome.NO_RESPONSE
    return _produce_response(services, entries, results)


def _refuse_produce(
    request: ProduceRequestData, acks: int, count: int
) -> tuple[KafkaError, str] | None:
    if acks not in VALID_ACKS:
        return KafkaError.invalid_required_acks, f"acks={acks} is not one of -1, 0, 1"
    if count > MAX_PARTITIONS_PER_REQUEST:
        return (
            KafkaError.invalid_request,
            f"{count} partitions in one produce; the limit is {MAX_PARTITIONS_PER_REQUEST}",
        )
    if request.transactional_id is not None:
        return (
            KafkaError.transactional_id_not_found,
            f"transactional id {request.transactional_id!r} is unknown: this broker does not "
            "serve transactions yet",
        )
    return None


async def _refused(code: KafkaError, message: str) -> _PartitionOutcome:
    return _PartitionOutcome(code, message, None)


class _PartitionOutcome:
    __slots__ = ("error_code", "error_message", "result")

    def __init__(self, code: KafkaError, message: str | None, result: ProduceResult | None):
        self.error_code = code
        self.error_message = message
        self.result = result


def _produce_partition(
    services: BrokerServices,
    topic: str,
    partition: int,
    records: memoryview | None,
    acks: int,
    timeout_ms: int,
) -> Awaitable[_PartitionOutcome]:
    """An awaitable outcome for one partition; the append itself starts in the caller's step
    (asyncio.gather makes each coroutine a task at once, in order). Produce v3-11 name their
    topics (topic ids come with v13)."""
    if not records:
        return _refused(
            KafkaError.invalid_record,
            f"a produce to {topic}-{partition} carries no record batch; it needs exactly one",
        )
    batch = bytes(records)  # the request frame's slice, copied once for the log
    refusal = _refuse_transactional_batch(batch)
    if refusal is not None:
        return _refused(*refusal)
    return _append(services, topic, partition, batch, acks, timeout_ms)


async def _append(
    services: BrokerServices, topic: str, partition: int, records: bytes, acks: int, timeout_ms: int
) -> _PartitionOutcome:
    result = await services.data.produce(topic, partition, records, acks, timeout_ms)
    # producer-state refusals (OUT_OF_ORDER_SEQUENCE_NUMBER, ...) carry Kafka's codes too
    code = KafkaError(int(result.error_code))
    return _PartitionOutcome(code, result.error_message, result)


def _refuse_transactional_batch(records: bytes) -> tuple[KafkaError, str] | None:
    """Transactional batches need a transaction coordinator this broker does not have;
    idempotent ones are checked by the partition leader's producer state (a duplicate is
    answered with its original offsets, a gap with OUT_OF_ORDER_SEQUENCE_NUMBER)."""
    if len(records) < BATCH_HEADER_SIZE_BYTES:
        return None  # the log names what is wrong with it
    try:
        batch = RecordBatch(records)
    except CorruptRecordError:
        return None
    if batch.is_transactional:
        return KafkaError.invalid_txn_state, "transactional batches are not served yet"
    return None


def _produce_response(
    services: BrokerServices,
    entries: list[tuple[ProduceTopicData, ProducePartitionData]],
    outcomes: list[_PartitionOutcome],
) -> ProduceAnswer:
    by_topic: dict[int, TopicProduceAnswer] = {}
    leaders: set[int] = set()
    for (topic, partition), outcome in zip(entries, outcomes, strict=True):
        result = outcome.result
        current_leader = None
        if (
            result is not None
            and outcome.error_code in _PRODUCE_LEADER_MOVED
            and result.leader_id >= 0
        ):
            leaders.add(result.leader_id)
            current_leader = LeaderIdAndEpoch(result.leader_id, result.leader_epoch)
        answer = PartitionProduceAnswer(
            partition_index=partition.partition_index,
            error_code=outcome.error_code,
            base_offset=-1 if result is None else result.base_offset,
            log_append_time_ms=-1 if result is None else result.log_append_time_ms,
            log_start_offset=-1 if result is None else result.log_start_offset,
            record_errors=(),
            error_message=outcome.error_message,
            current_leader=current_leader,
        )
        answers = by_topic.get(id(topic))
        if answers is None:
            answers = by_topic[id(topic)] = TopicProduceAnswer(topic.name, [])
        answers.partitions.append(answer)
    endpoints = _node_endpoints(services.image(), leaders) if leaders else ()
    return ProduceAnswer(list(by_topic.values()), throttle_time_ms=0, node_endpoints=endpoints)


def _node_endpoints(image: MetadataImage, ids: Iterable[int]) -> tuple[NodeEndpoint, ...]:
    endpoints = []
    for broker_id in sorted(ids):
        address = client_endpoint(image, broker_id)
        if address is not None:
            broker = image.brokers[broker_id]
            endpoints.append(NodeEndpoint(broker_id, address[0], address[1], broker.rack))
    return tuple(endpoints)


# -- Fetch -------------------------------------------------------------------------------------


async def handle_fetch(
    services: BrokerServices, context: RequestContext, request: FetchRequestData
) -> FetchAnswer:
    image = services.image()
    # (topic entry, partition entry, topic name or None for an unknown topic id)
    entries = [
        (topic, partition, _fetch_topic_name(image, topic))
        for topic in request.topics
        for partition in topic.partitions
    ]
    refusal = _refuse_fetch(context, request, len(entries))
    if refusal is not None:
        code, _ = refusal  # a fetch answer has no room for the message
        return _fetch_response(context.version, image, entries, [], code, top_level_error=code)
    fetches = [
        PartitionFetch(
            topic=name,
            partition=partition.partition,
            fetch_offset=partition.fetch_offset,
            max_bytes=max(0, partition.partition_max_bytes),
            current_leader_epoch=partition.current_leader_epoch,
        )
        for _, partition, name in entries
        if name is not None
    ]
    results = await services.data.fetch(
        CONSUMER_REPLICA_ID,
        -1,
        fetches,
        max(0, min(request.max_wait_ms, MAX_FETCH_WAIT_MS)),
        max(0, request.min_bytes),
        max(0, min(request.max_bytes, MAX_FETCH_RESPONSE_BYTES)),
    )
    assert len(results) == len(fetches), "one result per partition fetched"
    return _fetch_response(context.version, image, entries, results, KafkaError.none)


def _fetch_topic_name(image: MetadataImage, topic: FetchTopicData) -> str | None:
    if topic.name is not None:
        return topic.name
    assert topic.topic_id is not None, "a fetch names its topics or gives their ids"
    found = image.topics_by_id.get(topic_id_text(topic.topic_id))
    return None if found is None else found.name


def _refuse_fetch(
    context: RequestContext, request: FetchRequestData, count: int
) -> tuple[KafkaError, str] | None:
    if request.replica_id >= 0:
        return (
            KafkaError.invalid_request,
            f"replica {request.replica_id} fetches on the Kafka listener; followers use the "
            "rpc listener",
        )
    if count > MAX_PARTITIONS_PER_REQUEST:
        return (
            KafkaError.invalid_request,
            f"{count} partitions in one fetch; the limit is {MAX_PARTITIONS_PER_REQUEST}",
        )
    if context.version >= 7:
        # sessionless only (KIP-227): a full fetch (epoch 0 or -1) on session 0
        if request.session_id != 0:
            return KafkaError.fetch_session_id_not_found, "this broker keeps no fetch sessions"
        if request.session_epoch not in (0, -1):
            return KafkaError.invalid_fetch_session_epoch, "a sessionless fetch has epoch 0 or -1"
    return None


def _fetch_response(
    version: int,
    image: MetadataImage,
    entries: list[tuple[FetchTopicData, FetchPartitionData, str | None]],
    results: list[PartitionFetchResult],
    refused: KafkaError,
    top_level_error: KafkaError = KafkaError.none,
) -> FetchAnswer:
    by_topic: dict[int, TopicFetchAnswer] = {}
    leaders: set[int] | None = set() if version >= FETCH_LEADER_HINT_MIN_VERSION else None
    in_order = iter(results)  # one per entry of a known topic, in request order
    for topic, partition, name in entries:
        result = None
        if name is not None and refused is KafkaError.none:
            result = next(in_order)
        answer = _partition_data(partition, name, result, refused, leaders)
        answers = by_topic.get(id(topic))
        if answers is None:
            answers = by_topic[id(topic)] = TopicFetchAnswer(topic.name, topic.topic_id, [])
        answers.partitions.append(answer)
    return FetchAnswer(
        throttle_time_ms=0,
        error_code=top_level_error,
        session_id=0,
        topics=list(by_topic.values()),
        node_endpoints=_node_endpoints(image, leaders) if leaders else (),
    )


def _partition_data(
    partition: FetchPartitionData,
    name: str | None,
    result: PartitionFetchResult | None,
    refused: KafkaError,
    leaders: set[int] | None,
) -> PartitionFetchAnswer:
    """One partition's answer; `leaders` collects the leaders hinted at (None: this version
    gets no hints)."""
    if result is None:
        code = KafkaError.unknown_topic_id if name is None else refused
        return PartitionFetchAnswer(
            partition_index=partition.partition,
            error_code=code,
            high_watermark=-1,
            last_stable_offset=-1,
            log_start_offset=-1,
            aborted_transactions=None,
            preferred_read_replica=-1,
            records=None,
        )
    code = from_broker_code(result.error_code)
    current_leader = None
    if leaders is not None and code in _FETCH_LEADER_MOVED and result.leader_id >= 0:
        leaders.add(result.leader_id)
        current_leader = LeaderIdAndEpoch(result.leader_id, result.leader_epoch)
    return PartitionFetchAnswer(
        partition_index=partition.partition,
        error_code=code,
        high_watermark=result.high_watermark,
        # no transactions: everything below the high watermark is stable
        last_stable_offset=result.high_watermark,
        log_start_offset=result.log_start_offset,
        aborted_transactions=None,
        preferred_read_replica=-1,
        records=result.records,
        current_leader=current_leader,
    )


# -- ListOffsets -------------------------------------------------------------------------------


async def handle_list_offsets(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    topics = []
    for topic in request.topics:
        answers = []
        for partition in topic.partitions:
            answers.append(_list_offset(services, context, topic.name, partition))
        topics.append(
            context.build("ListOffsetsTopicResponse", name=topic.name, partitions=tuple(answers))
        )
    return context.build("ListOffsetsResponse", throttle_time=0, topics=tuple(topics))


def _list_offset(
    services: BrokerServices, context: RequestContext, topic: str, partition: Any
) -> Any:
    timestamp = int(partition.timestamp)
    index = int(partition.partition_index)

    def answer(code: KafkaError, offset: int = -1, found_at: int = -1, epoch: int = -1) -> Any:
        return context.build(
            "ListOffsetsPartitionResponse",
            partition_index=index,
            error_code=code,
            timestamp=found_at,
            offset=offset,
            leader_epoch=epoch,
        )

    if timestamp < _lowest_special_timestamp(context.version):
        return answer(KafkaError.unsupported_version)
    lookup = services.data.list_offset(topic, index, timestamp)
    code = from_broker_code(lookup.error_code)
    if code is not KafkaError.none:
        return answer(code)
    requested_epoch = int(getattr(partition, "current_leader_epoch", -1))
    if 0 <= requested_epoch < lookup.leader_epoch:
        return answer(KafkaError.fenced_leader_epoch)
    if requested_epoch > lookup.leader_epoch:
        return answer(KafkaError.unknown_leader_epoch)
    # the manager answers -1 for earliest and latest, the record's time for max timestamp
    return answer(KafkaError.none, lookup.offset, lookup.timestamp_ms, lookup.leader_epoch)


def _lowest_special_timestamp(version: int) -> int:
    """-3 (MAX_TIMESTAMP) came with ListOffsets v7 (KIP-734), -4 (EARLIEST_LOCAL) with v8
    (KIP-405); -5 (tiered storage, v9) and anything lower are not served."""
    if version >= 8:
        return EARLIEST_LOCAL_TIMESTAMP
    if version >= 7:
        return MAX_TIMESTAMP
    return EARLIEST_TIMESTAMP
