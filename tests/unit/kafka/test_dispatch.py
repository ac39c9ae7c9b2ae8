"""Dispatch by API key and version: what is served, what closes the connection as Kafka
closes it (unknown keys, unsupported versions, bodies that do not parse), and the ApiVersions
fallback of KIP-511."""

from __future__ import annotations

import struct

import pytest
from kio.schema.errors import ErrorCode as KafkaError

from broker.kafka.apis import SUPPORTED_VERSIONS, ApiKey
from broker.kafka.codec import request_class, response_class
from broker.kafka.dispatch import HANDLERS, ProtocolViolation, parse, respond
from tests.unit.kafka.helpers import Fixture, decode_response, encode_request, request


def test_every_advertised_version_has_a_handler_and_kio_schemas() -> None:
    assert set(HANDLERS) == set(SUPPORTED_VERSIONS)
    for api_key, (low, high) in SUPPORTED_VERSIONS.items():
        for version in range(low, high + 1):
            assert request_class(api_key, version).__api_key__ == api_key
            assert response_class(api_key, version).__version__ == version


@pytest.mark.parametrize(
    ("payload", "fact"),
    [
        (struct.pack(">hhih", 9999, 0, 1, -1), "api key 9999 version 0 is not served"),
        (struct.pack(">hhih", 3, 99, 1, -1), "api key 3 version 99 is not served"),
        (struct.pack(">hhih", 0, 2, 1, -1), "api key 0 version 2 is not served"),
        (struct.pack(">hhih", 11, 10, 1, -1), "api key 11 version 10 is not served"),  # JoinGroup
        (struct.pack(">hhih", 3, 1, 1, -1) + b"\xff\xff\xff\x7f", "does not parse"),
        (struct.pack(">hhih", 3, 1, 1, -1) + b"\x00\x00\x00\x00zz", "2 bytes after its end"),
        (struct.pack(">hhih", 3, 9, 1, -1) + b"\x00", "does not parse"),
        (b"\x00\x03", "no room for its header"),
    ],
)
def test_requests_that_cannot_be_answered_close_the_connection(payload: bytes, fact: str) -> None:
    with pytest.raises(ProtocolViolation, match=fact):
        parse(payload)


async def test_an_unknown_api_versions_version_gets_v0_with_unsupported_version() -> None:
    """KIP-511: the client learns the supported range and asks again."""
    payload = struct.pack(">hhih", 18, 42, 31, 3) + b"new" + b"\x00garbage-the-broker-skips"
    chunks = await respond(Fixture().services, parse(payload))
    assert isinstance(chunks, list)
    answer = b"".join(chunks)
    assert struct.unpack_from(">i", answer)[0] == 31  # header v0: the correlation id only
    body = decode_response(ApiKey.API_VERSIONS, 0, answer)
    assert body.error_code is KafkaError.unsupported_version
    listed = {key.api_key: (key.min_version, key.max_version) for key in body.api_keys}
    assert listed == {int(key): versions for key, versions in SUPPORTED_VERSIONS.items()}


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
async def test_api_versions_lists_every_served_api(version: int) -> None:
    fields = (
        {"client_software_name": "kafka-python", "client_software_version": "3.0.12"}
        if version >= 3
        else {}
    )
    body = await Fixture().call(ApiKey.API_VERSIONS, version, **fields)
    assert body.error_code is KafkaError.none
    assert {key.api_key for key in body.api_keys} == {int(key) for key in SUPPORTED_VERSIONS}


async def test_api_versions_refuses_an_invalid_client_software_name() -> None:
    body = await Fixture().call(
        ApiKey.API_VERSIONS, 3, client_software_name="-bad name", client_software_version="1"
    )
    assert body.error_code is KafkaError.invalid_request
    assert body.api_keys == ()


async def test_the_response_carries_the_request_correlation_id() -> None:
    body = request(ApiKey.METADATA, 1, topics=())
    payload = encode_request(ApiKey.METADATA, 1, body, correlation_id=123456)
    chunks = await respond(Fixture().services, parse(payload))
    assert isinstance(chunks, list)
    answer = b"".join(chunks)
    assert struct.unpack_from(">i", answer)[0] == 123456
