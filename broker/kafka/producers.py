"""InitProducerId for idempotent producers, and where their producer ids come from.

Producer ids must be unique cluster-wide and never reused (a reused id would inherit another
producer's sequence state on every partition). Each broker hands them out alone, without a
controller round trip, from its broker epoch: the controller gives every registration of a
new broker incarnation a new epoch from one counter in the metadata log, so
`broker_epoch * 2**20 + n` (n counted in memory from 0) is unique across brokers and
restarts (docs/decisions/0007-producer-ids.md). A broker not registered yet answers
COORDINATOR_LOAD_IN_PROGRESS (clients retry, as they do while Kafka's broker fetches its
first block of ids); one that handed out all 2**20 ids of its epoch answers
COORDINATOR_NOT_AVAILABLE (clients ask again, possibly elsewhere).

Transactions are not served: a request with a transactional id gets
TRANSACTIONAL_ID_AUTHORIZATION_FAILED, what Kafka answers a client that may not use that
transactional id, so the client fails at once with a clear, non-retriable error instead of
looping on a coordinator that never comes. Without a transactional id Kafka ignores a
producer id and epoch sent along (KIP-360: the client asks for a fresh id after an
unrecoverable sequence error) and hands out a new id at epoch 0; so does this broker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.kafka.context import RequestContext
from broker.kafka.errors import KafkaError
from broker.kafka.services import BrokerServices

PRODUCER_ID_COUNTER_BITS = 20
PRODUCER_IDS_PER_BROKER_EPOCH = 2**PRODUCER_ID_COUNTER_BITS
PRODUCER_ID_MAX = 2**63 - 1
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
FIRST_PRODUCER_EPOCH = 0


class ProducerIdsUnavailableError(Exception):
    """No producer id can be handed out now; `code` is what the client is told."""

    def __init__(self, code: KafkaError, message: str) -> None:
        super().__init__(message)
        self.code = code


class ProducerIdAllocator:
    """Producer ids `broker_epoch * 2**20 + n` for this broker incarnation (module docstring).
    `broker_epoch` returns the current registration's epoch, None before the first."""

    def __init__(
        self,
        broker_epoch: Callable[[], int | None],
        ids_per_epoch: int = PRODUCER_IDS_PER_BROKER_EPOCH,
    ) -> None:
        """`ids_per_epoch` below the block size only for tests of exhaustion."""
        assert 0 < ids_per_epoch <= PRODUCER_IDS_PER_BROKER_EPOCH, f"{ids_per_epoch} ids"
        self._broker_epoch = broker_epoch
        self._ids_per_epoch = ids_per_epoch
        self._epoch: int | None = None
        self._next = 0

    def allocate(self) -> int:
        epoch = self._broker_epoch()
        if epoch is None:
            raise ProducerIdsUnavailableError(
                KafkaError.coordinator_load_in_progress,
                "this broker is not registered with the controller yet",
            )
        assert epoch >= 0, f"negative broker epoch {epoch}"
        if epoch != self._epoch:
            # a new registration (epochs are never handed out twice): a fresh block
            self._epoch, self._next = epoch, 0
        if self._next >= self._ids_per_epoch:
            raise ProducerIdsUnavailableError(
                KafkaError.coordinator_not_available,
                f"broker epoch {epoch} handed out all {self._ids_per_epoch} of its "
                "producer ids; a restart of this broker gives it a new block",
            )
        producer_id = (epoch << PRODUCER_ID_COUNTER_BITS) + self._next
        assert producer_id <= PRODUCER_ID_MAX, f"producer id {producer_id} overflows int64"
        self._next += 1
        return producer_id


async def handle_init_producer_id(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    def answer(code: KafkaError, producer_id: int = NO_PRODUCER_ID, epoch: int = -1) -> Any:
        return context.build(
            "InitProducerIdResponse",
            throttle_time=0,
            error_code=code,
            producer_id=producer_id,
            producer_epoch=epoch,
        )

    if request.transactional_id is not None:
        return answer(KafkaError.transactional_id_authorization_failed)
    sent_id = int(getattr(request, "producer_id", NO_PRODUCER_ID))
    sent_epoch = int(getattr(request, "producer_epoch", NO_PRODUCER_EPOCH))
    if (sent_id == NO_PRODUCER_ID) != (sent_epoch == NO_PRODUCER_EPOCH):
        # Kafka: the producer id and epoch come together or not at all
        return answer(KafkaError.invalid_request)
    allocator = services.producer_ids
    if allocator is None:
        return answer(KafkaError.coordinator_not_available)
    try:
        producer_id = allocator.allocate()
    except ProducerIdsUnavailableError as error:
        return answer(error.code)
    return answer(KafkaError.none, producer_id, FIRST_PRODUCER_EPOCH)
