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
from typing import Any

import msgpack

from kraft.controller.records import RECORD_TYPES, Endpoint, MetadataRecord

# Larger than any record the controller writes (a broker registration with its endpoints).
MAX_RECORD_BYTES = 1024 * 1024

# The current version of each record type; bump it when a field is added (at the end).
RECORD_VERSIONS: dict[type, int] = {record_type: 0 for record_type in RECORD_TYPES.values()}
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


def _decode_fields(record_type: type, values: list[Any], path: str) -> object:
    specs = _SPECS[record_type]
    if len(values) > len(specs):
        raise RecordDecodeError(f"{path}: {len(values)} fields, at most {len(specs)} known")
    missing = [spec.name for spec in specs[len(values) :] if spec.required]
    if missing:
        raise RecordDecodeError(f"{path}.{missing[0]}: missing")
    arguments = {
        spec.name: _decode_value(value, spec.hint, f"{path}.{spec.name}")
        for spec, value in zip(specs, values, strict=False)
    }
    return record_type(**arguments)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_value(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        return _decode_optional(value, hint, path)
    if origin is tuple:
        item_hint, ellipsis = typing.get_args(hint)
        assert ellipsis is Ellipsis, f"{path}: only tuple[X, ...] fields are supported"
        if not isinstance(value, list):
            raise RecordDecodeError(f"{path}: expected an array, got {type(value).__name__}")
        return tuple(_decode_value(item, item_hint, f"{path}[{i}]") for i, item in enumerate(value))
    if hint is Endpoint:
        if not isinstance(value, list):
            raise RecordDecodeError(f"{path}: expected an endpoint array [name, host, port]")
        return _decode_fields(Endpoint, value, path)
    if hint is int and _is_int(value):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    assert hint in (int, bool, str), f"{path}: unsupported field type {hint!r}"
    raise RecordDecodeError(f"{path}: expected {hint.__name__}, got {type(value).__name__}")


def _decode_optional(value: Any, hint: Any, path: str) -> Any:
    arguments = [argument for argument in typing.get_args(hint) if argument is not type(None)]
    assert len(arguments) == 1, f"{path}: only `X | None` unions are supported"
    if value is None:
        return None
    return _decode_value(value, arguments[0], path)
