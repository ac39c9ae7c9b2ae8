"""Metadata records survive encoding; bytes that are not a record are refused by name."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kraft.controller.records import (
    ConfigRecord,
    Endpoint,
    MetadataRecord,
    PartitionRecord,
    RegisterBrokerRecord,
)
from kraft.controller.serde import (
    MAX_RECORD_BYTES,
    RecordDecodeError,
    decode_record,
    encode_record,
)
from tests.unit.controller.strategies import records


@given(records)
def test_every_record_survives_a_round_trip(record: MetadataRecord) -> None:
    assert decode_record(encode_record(record)) == record


@given(st.binary(max_size=200))
def test_random_bytes_decode_to_a_record_or_a_decode_error(data: bytes) -> None:
    with contextlib.suppress(RecordDecodeError):
        decode_record(data)


def test_record_layout_is_tag_version_then_fields_in_order() -> None:
    record = RegisterBrokerRecord(1, "inc", 7, (Endpoint("RPC", "127.0.0.1", 9093),), "r1")

    decoded = msgpack.unpackb(encode_record(record))

    assert decoded == [1, 1, 1, "inc", 7, [["RPC", "127.0.0.1", 9093]], "r1", True, None]


def test_an_older_record_without_trailing_defaults_decodes_with_the_defaults() -> None:
    data = msgpack.packb([1, 0, 1, "inc", 7, []])

    assert decode_record(data) == RegisterBrokerRecord(1, "inc", 7, (), rack=None, fenced=True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([99, 0], "tag: unknown record type 99"),
        ([5, 2, "t", 0, [1], [1], 1, 0, 0], "PartitionRecord version 2"),
        ([5, 0, "t", 0, [1], [1], 1, 0], "PartitionRecord.partition_epoch: missing"),
        ([5, 0, "t", "0", [1], [1], 1, 0, 0], "PartitionRecord.partition_id: expected int"),
        ([5, 0, "t", 0, [1, True], [1], 1, 0, 0], "PartitionRecord.replicas[1]: expected int"),
        ([5, 0, "t", 0, 1, [1], 1, 0, 0], "PartitionRecord.replicas: expected an array"),
        ([8, 0, "topic", "t", "k", None, 1], "ConfigRecord: 5 fields, at most 4"),
        ([8, 0, "topic", "t", None, "v"], "ConfigRecord.name: expected str, got NoneType"),
        ([1, 0, 1, "i", 2, [["RPC", "h"]]], "RegisterBrokerRecord.endpoints[0].port: missing"),
        ({"a": 1}, "a record is an array"),
    ],
)
def test_malformed_records_are_refused_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(RecordDecodeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode_record(msgpack.packb(value))


def test_oversized_bytes_are_refused_before_decoding() -> None:
    with pytest.raises(RecordDecodeError, match="exceeds"):
        decode_record(b"\x00" * (MAX_RECORD_BYTES + 1))


def test_a_config_deletion_keeps_its_none_value() -> None:
    record = ConfigRecord("topic", "t", "retention.ms", None)

    assert decode_record(encode_record(record)) == record


def test_partition_tuples_decode_as_tuples() -> None:
    record = PartitionRecord("t", 0, (1, 2), (1,), 1, 0, 0)

    decoded = decode_record(encode_record(record))

    assert isinstance(decoded, PartitionRecord)
    assert isinstance(decoded.replicas, tuple)
