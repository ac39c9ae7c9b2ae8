"""Metadata records to bytes and back: msgpack arrays [tag, version, field values in order].

The tag comes from RECORD_TYPES, the fields in the order the record class declares them.
A nested Endpoint is the array [name, host, port]; a tuple is an array. Decoding checks every
field against the record class's type hints and raises RecordDecodeError naming the field, so
bytes that are not a record never reach the image. A record written by an older version (fewer
trailing fields) decodes with the defaults of the missing fields; a newer version is refused.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from kraft.controller.records import (
    RECORD_TYPES,
    Endpoint,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
)

# Larger than any record the controller writes (a broker registration with its endpoints).
MAX_RECORD_BYTES = 1024 * 1024

# The current version of each record type; bump it when a field is added (at the end).
RECORD_VERSIONS: dict[type, int] = {record_type: 0 for record_type in RECORD_TYPES.values()}
# version 1: the log directory id of a registration; the ELR of a partition (KIP-966)
RECORD_VERSIONS.update({RegisterBrokerRecord: 1, PartitionRecord: 1, PartitionChangeRecord: 1})
TAGS_BY_TYPE: dict[type, int] = {record_type: tag for tag, record_type in RECORD_TYPES.items()}


class RecordDecodeError(ValueError):
    """Bytes that are not a valid metadata record; the message names the field at fault."""


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    hint: Any
    required: bool  # no default: an older writer always wrote it


def _field_specs(record_type: type) -> tuple[_FieldSpec, ...]:
    hints = typing.get_type_hints(record_type)
    return tuple(
        _FieldSpec(
            name=field.name,
            hint=hints[field.name],
            required=field.default is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING,
        )
        for field in dataclasses.fields(record_type)
    )


_SPECS: dict[type, tuple[_FieldSpec, ...]] = {
    record_type: _field_specs(record_type) for record_type in (*RECORD_TYPES.values(), Endpoint)
}


def _to_wire(value: object) -> object:
    if isinstance(value, Endpoint):
        return [value.name, value.host, value.port]
    if isinstance(value, tuple):
        return [_to_wire(item) for item in value]
    return value


def encode_record(record: MetadataRecord) -> bytes:
    tag = TAGS_BY_TYPE.get(type(record))
    assert tag is not None, f"not a metadata record: {type(record).__name__}"
    values = [_to_wire(getattr(record, spec.name)) for spec in _SPECS[type(record)]]
    data = bytes(msgpack.packb([tag, RECORD_VERSIONS[type(record)], *values]))
    assert len(data) <= MAX_RECORD_BYTES, f"record of {len(data)} bytes is over the limit"
    return data


def decode_record(data: bytes) -> MetadataRecord:
    if len(data) > MAX_RECORD_BYTES:
        raise RecordDecodeError(f"record of {len(data)} bytes exceeds {MAX_RECORD_BYTES} bytes")
    try:
        decoded = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        raise RecordDecodeError("not a msgpack value") from None
    if not isinstance(decoded, list) or len(decoded) < 2:
        raise RecordDecodeError("a record is an array [tag, version, fields...]")
    tag, version, *values = decoded
    record_type = RECORD_TYPES.get(tag) if _is_int(tag) else None
    if record_type is None:
        raise RecordDecodeError(f"tag: unknown record type {tag!r}")
    if not _is_int(version) or not 0 <= version <= RECORD_VERSIONS[record_type]:
        raise RecordDecodeError(
            f"version: {record_type.__name__} version {version!r} is not between 0 and "
            f"{RECORD_VERSIONS[record_type]}"
        )
    record = _decode_fields(record_type, values, record_type.__name__)
    return typing.cast(MetadataRecord, record)


Decoder = Callable[[Any, str], Any]  # (wire value, field path for errors) -> value


def _decode_fields(record_type: type, values: list[Any], path: str) -> object:
    specs = _SPECS[record_type]
    if len(values) > len(specs):
        raise RecordDecodeError(f"{path}: {len(values)} fields, at most {len(specs)} known")
    missing = [spec.name for spec in specs[len(values) :] if spec.required]
    if missing:
        raise RecordDecodeError(f"{path}.{missing[0]}: missing")
    decoders = _DECODERS[record_type]
    arguments = {
        spec.name: decoder(value, path)
        for spec, decoder, value in zip(specs, decoders, values, strict=False)
    }
    return record_type(**arguments)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decoder(hint: Any, name: str) -> Decoder:
    """A decoder for one field type, built once (decoding a snapshot calls it a lot)."""
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        arguments = [argument for argument in typing.get_args(hint) if argument is not type(None)]
        assert len(arguments) == 1, f"{name}: only `X | None` unions are supported"
        inner = _decoder(arguments[0], name)
        return lambda value, path: None if value is None else inner(value, path)
    if origin is tuple:
        item_hint, ellipsis = typing.get_args(hint)
        assert ellipsis is Ellipsis, f"{name}: only tuple[X, ...] fields are supported"
        return _tuple_decoder(_decoder(item_hint, ""), name)
    if hint is Endpoint:

        def decode_endpoint(value: Any, path: str) -> Any:
            if not isinstance(value, list):
                raise RecordDecodeError(f"{path}{name}: expected an endpoint [name, host, port]")
            return _decode_fields(Endpoint, value, f"{path}{name}")

        return decode_endpoint
    assert hint in (int, bool, str), f"{name}: unsupported field type {hint!r}"
    check: Callable[[Any], bool] = _is_int if hint is int else lambda v: isinstance(v, hint)

    def decode_scalar(value: Any, path: str) -> Any:
        if not check(value):
            raise RecordDecodeError(
                f"{path}{name}: expected {hint.__name__}, got {type(value).__name__}"
            )
        return value

    return decode_scalar


def _tuple_decoder(item: Decoder, name: str) -> Decoder:
    def decode_tuple(value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise RecordDecodeError(f"{path}{name}: expected an array, got {type(value).__name__}")
        return tuple(item(element, f"{path}{name}[{i}]") for i, element in enumerate(value))

    return decode_tuple


_DECODERS: dict[type, tuple[Decoder, ...]] = {
    record_type: tuple(_decoder(spec.hint, f".{spec.name}") for spec in specs)
    for record_type, specs in _SPECS.items()
}


def encode_batch(records: Sequence[MetadataRecord]) -> bytes:
    """One log entry holding every record of one controller decision, so that a decision
    commits whole or not at all: the entry is the unit of replication, of a storage batch
    and of truncation (a decision split over several entries could commit in part if its
    leader died after replicating a prefix)."""
    assert records, "a batch holds at least one record"
    return bytes(msgpack.packb([encode_record(record) for record in records]))


def decode_entry(data: bytes) -> list[MetadataRecord]:
    """The records of one log entry: a batch (an array of encoded records) or, as older
    entries are, a single record."""
    try:
        decoded = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        raise RecordDecodeError("not a msgpack value") from None
    if isinstance(decoded, list) and decoded and isinstance(decoded[0], bytes):
        if not all(isinstance(item, bytes) for item in decoded):
            raise RecordDecodeError("a batch is an array of encoded records")
        return [decode_record(item) for item in decoded]
    return [decode_record(data)]
