"""OffsetForLeaderEpoch (KIP-101, KIP-320) for consumers: where did a leader epoch end?

After a leader change a consumer asks the new leader for the end offset of the epoch of the
last record it consumed; if that end lies below its position, the log was truncated under
it and it seeks back (kafka-python and librdkafka stop fetching a partition until this is
answered). The partition leader answers from its leader-epoch cache, with the current
leader epoch checked as a consumer's fetch checks it. Followers replicate over the rpc
listener and never ask here: a request with a replica id is INVALID_REQUEST.
"""

from __future__ import annotations

from typing import Any

from broker.kafka.context import RequestContext
from broker.kafka.data import MAX_PARTITIONS_PER_REQUEST
from broker.kafka.errors import KafkaError, from_broker_code
from broker.kafka.services import BrokerServices

# v2 has no replica id: Kafka reads it as the debugging consumer (-2)
DEBUGGING_REPLICA_ID = -2


async def handle_offset_for_leader_epoch(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    replica_id = int(getattr(request, "replica_id", DEBUGGING_REPLICA_ID))
    count = sum(len(topic.partitions) for topic in request.topics)
    # The response has no top-level error: a refusal is every partition's error.
    refused = replica_id >= 0 or count > MAX_PARTITIONS_PER_REQUEST
    refusal = KafkaError.invalid_request if refused else None
    topics = tuple(
        context.build(
            "OffsetForLeaderTopicResult",
            topic=topic.topic,
            partitions=tuple(
                _end_offset(services, context, topic.topic, partition, refusal)
                for partition in topic.partitions
            ),
        )
        for topic in request.topics
    )
    return context.build("OffsetForLeaderEpochResponse", throttle_time=0, topics=topics)


def _end_offset(
    services: BrokerServices,
    context: RequestContext,
    topic: str,
    partition: Any,
    refusal: KafkaError | None,
) -> Any:
    index = int(partition.partition)
    if refusal is not None:
        return context.build("EpochEndOffset", error_code=refusal, partition=index)
    found = services.data.end_offset_for_epoch(
        topic, index, int(partition.current_leader_epoch), int(partition.leader_epoch)
    )
    code = from_broker_code(found.error_code)
    if code is not KafkaError.none:
        return context.build("EpochEndOffset", error_code=code, partition=index)
    return context.build(
        "EpochEndOffset",
        error_code=KafkaError.none,
        partition=index,
        leader_epoch=found.leader_epoch,
        end_offset=found.end_offset,
    )
