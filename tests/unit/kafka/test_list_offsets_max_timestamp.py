"""ListOffsets v7 and v8 (KIP-734 MAX_TIMESTAMP -3, KIP-405 EARLIEST_LOCAL_TIMESTAMP -4):
which version may ask what, and the record's timestamp in the answer."""

from __future__ import annotations

import pytest

from broker.kafka.apis import SUPPORTED_VERSIONS, ApiKey
from broker.kafka.errors import KafkaError
from broker.partitions.manager import OffsetLookup
from kraft.protocol.errors import ErrorCode
from tests.unit.kafka.helpers import Fixture
from tests.unit.kafka.test_data_apis import list_offsets_fields


def test_list_offsets_is_served_up_to_v8() -> None:
    assert SUPPORTED_VERSIONS[ApiKey.LIST_OFFSETS] == (1, 8)


async def test_max_timestamp_answers_the_record_with_its_timestamp() -> None:
    fixture = Fixture()
    fixture.data.offsets[("orders", 0, -3)] = OffsetLookup(
        ErrorCode.NONE, offset=17, timestamp_ms=1_700_000_000_123, leader_id=1, leader_epoch=3
    )
    body = await fixture.call(ApiKey.LIST_OFFSETS, 7, **list_offsets_fields(7, -3))
    [answer] = body.topics[0].partitions
    assert (answer.error_code, answer.offset, answer.timestamp) == (
        KafkaError.none,
        17,
        1_700_000_000_123,
    )


@pytest.mark.parametrize(
    ("version", "timestamp", "served"),
    [(6, -3, False), (7, -3, True), (7, -4, False), (8, -4, True), (8, -5, False)],
)
async def test_each_special_timestamp_needs_the_version_that_brought_it(
    version: int, timestamp: int, served: bool
) -> None:
    fixture = Fixture()
    body = await fixture.call(
        ApiKey.LIST_OFFSETS, version, **list_offsets_fields(version, timestamp)
    )
    code = body.topics[0].partitions[0].error_code
    assert (code is KafkaError.none) is served
    assert (code is KafkaError.unsupported_version) is not served
