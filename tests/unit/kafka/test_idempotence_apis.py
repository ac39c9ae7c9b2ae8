"""InitProducerId (broker/kafka/producers.py) and the producer-state refusals of Produce, as
specifications: ids from the broker epoch (docs/decisions/0007-producer-ids.md), Kafka's
answers for transactional ids and KIP-360 epoch bumps, and Kafka's codes passed through."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from broker.kafka.apis import SUPPORTED_VERSIONS, ApiKey
from broker.kafka.errors import KafkaError
from broker.kafka.producers import (
    PRODUCER_ID_COUNTER_BITS,
    ProducerIdAllocator,
    ProducerIdsUnavailableError,
)
from broker.kafka.services import BrokerServices
from broker.log.batch import Record, build_batch
from broker.partitions.manager import ProduceResult
from broker.replication.producer_state import ProducerError
from tests.unit.kafka.helpers import Fixture, nested

LOW, HIGH = SUPPORTED_VERSIONS[ApiKey.INIT_PRODUCER_ID]
TIMEOUT = datetime.timedelta(milliseconds=60_000)


class BrokerEpoch:
    def __init__(self, value: int | None) -> None:
        self.value = value

    def __call__(self) -> int | None:
        return self.value


@dataclasses.dataclass
class ProducerFixture(Fixture):
    epoch: BrokerEpoch = dataclasses.field(default_factory=lambda: BrokerEpoch(7))
    allocator: ProducerIdAllocator | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.allocator = ProducerIdAllocator(self.epoch)

    @property
    def services(self) -> BrokerServices:
        return dataclasses.replace(super().services, producer_ids=self.allocator)

    async def init(self, version: int = HIGH, **fields: object) -> tuple[KafkaError, int, int]:
        values = {"transactional_id": None, "transaction_timeout": TIMEOUT, **fields}
        body = await self.call(ApiKey.INIT_PRODUCER_ID, version, **values)
        return body.error_code, int(body.producer_id), int(body.producer_epoch)


# -- the allocator ---------------------------------------------------------------------------


def test_producer_ids_are_the_broker_epoch_shifted_plus_a_counter() -> None:
    allocator = ProducerIdAllocator(BrokerEpoch(3))
    assert [allocator.allocate() for _ in range(3)] == [3 << 20, (3 << 20) + 1, (3 << 20) + 2]


def test_a_new_broker_epoch_starts_a_new_block() -> None:
    epoch = BrokerEpoch(3)
    allocator = ProducerIdAllocator(epoch)
    allocator.allocate()
    epoch.value = 9
    assert allocator.allocate() == 9 << PRODUCER_ID_COUNTER_BITS


def test_ids_of_different_broker_epochs_never_meet() -> None:
    """Epochs are unique per broker incarnation cluster-wide, so blocks are disjoint."""
    for epoch in (0, 1, 2, 2**40):
        allocator = ProducerIdAllocator(BrokerEpoch(epoch))
        ids = [allocator.allocate() for _ in range(100)]
        assert all(epoch << 20 <= i < (epoch + 1) << 20 for i in ids)
        assert len(set(ids)) == len(ids)


def test_an_exhausted_block_is_refused_until_the_next_broker_epoch() -> None:
    epoch = BrokerEpoch(2)
    allocator = ProducerIdAllocator(epoch, ids_per_epoch=2)
    allocator.allocate()
    allocator.allocate()
    with pytest.raises(ProducerIdsUnavailableError) as refused:
        allocator.allocate()
    assert refused.value.code is KafkaError.coordinator_not_available
    assert "broker epoch 2" in str(refused.value)
    epoch.value = 5
    assert allocator.allocate() == 5 << PRODUCER_ID_COUNTER_BITS


# -- the handler -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", range(LOW, HIGH + 1))
async def test_init_producer_id_hands_out_fresh_ids_at_epoch_zero(version: int) -> None:
    fixture = ProducerFixture()
    first = await fixture.init(version)
    second = await fixture.init(version)
    assert first == (KafkaError.none, 7 << 20, 0)
    assert second == (KafkaError.none, (7 << 20) + 1, 0)


async def test_the_api_versions_answer_lists_init_producer_id() -> None:
    body = await ProducerFixture().call(
        ApiKey.API_VERSIONS, 3, client_software_name="t", client_software_version="1"
    )
    served = {
        int(key.api_key): (int(key.min_version), int(key.max_version)) for key in body.api_keys
    }
    assert served[22] == (LOW, HIGH)


async def test_a_broker_not_registered_yet_answers_coordinator_load_in_progress() -> None:
    fixture = ProducerFixture(epoch=BrokerEpoch(None))
    assert (await fixture.init())[0] is KafkaError.coordinator_load_in_progress


async def test_a_transactional_id_is_refused_as_kafka_refuses_an_unauthorized_one() -> None:
    fixture = ProducerFixture()
    code, producer_id, _ = await fixture.init(transactional_id="tx-1")
    assert code is KafkaError.transactional_id_authorization_failed
    assert producer_id == -1


async def test_an_epoch_bump_request_gets_a_new_producer_id() -> None:
    """KIP-360: an idempotent producer sends its id and epoch; Kafka ignores them without a
    transactional id and hands out a new id."""
    fixture = ProducerFixture()
    _, old_id, _ = await fixture.init()
    code, new_id, epoch = await fixture.init(producer_id=old_id, producer_epoch=0)
    assert (code, epoch) == (KafkaError.none, 0)
    assert new_id != old_id


@pytest.mark.parametrize(("producer_id", "epoch"), [(5, -1), (-1, 3)])
async def test_a_producer_id_without_its_epoch_is_an_invalid_request(
    producer_id: int, epoch: int
) -> None:
    fixture = ProducerFixture()
    code, _, _ = await fixture.init(producer_id=producer_id, producer_epoch=epoch)
    assert code is KafkaError.invalid_request


async def test_without_an_allocator_the_coordinator_is_not_available() -> None:
    fixture = ProducerFixture()
    fixture.allocator = None
    assert (await fixture.init())[0] is KafkaError.coordinator_not_available


# -- produce ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [ProducerError.OUT_OF_ORDER_SEQUENCE_NUMBER, ProducerError.INVALID_PRODUCER_EPOCH],
)
async def test_producer_state_refusals_reach_the_client_with_kafkas_codes(
    error: ProducerError,
) -> None:
    fixture = ProducerFixture()
    fixture.data.produce_results[("orders", 0)] = ProduceResult(error, "refused")
    batch = build_batch(
        [Record(None, b"v", (), 0)], producer_id=7 << 20, producer_epoch=0, base_sequence=4
    )
    body = await fixture.call(
        ApiKey.PRODUCE,
        9,
        transactional_id=None,
        acks=-1,
        timeout=datetime.timedelta(milliseconds=1000),
        topic_data=(
            nested(
                ApiKey.PRODUCE,
                9,
                "TopicProduceData",
                name="orders",
                partition_data=(
                    nested(ApiKey.PRODUCE, 9, "PartitionProduceData", index=0, records=batch),
                ),
            ),
        ),
    )
    answer = body.responses[0].partition_responses[0]
    assert int(answer.error_code) == int(error)
    assert answer.error_message == "refused"
