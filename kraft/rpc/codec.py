"""Raft messages and generic request bodies to and from msgpack-ready values.

The codec is generic over the frozen dataclasses of kraft.raft.messages: at import it reads
each message's fields (in declaration order) and their type hints, and builds one encoder and
one validating decoder per field. A message goes on the wire as an array
`[tag, field1, field2, ...]`, tag from MESSAGE_TYPES; nested Entry, OffsetAndEpoch and
SnapshotId are compact arrays of their own fields; enums are ints; tuples are arrays; None
is nil.

Adding a field: append it to the dataclass with a default. A decoder accepts an array whose
trailing fields are missing when those fields have defaults (an older sender), and refuses
any other shape. Changing or reordering fields needs a new PROTOCOL_VERSION.

Decoding trusts nothing: every value's type is checked, ints must be non-negative (no raft
message carries a negative number; the core asserts on them), enums must be known, and any
problem raises DecodeError naming the field, e.g. `FetchResponse.entries[12].data`.

FetchResponse entries can number thousands, so they take a hand-written loop (checks inlined,
no per-field dispatch) and fall back to the generic decoder only to name what is wrong.
Measured by bench/rpc_codec.py.

Generic bodies (requests and responses that are not raft messages, e.g. a forwarded
proposal and its answer) are plain maps with string keys; a request names its `kind` in a
string. validate_body checks that.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import msgpack

from kraft.raft.messages import MESSAGE_TYPES, Message
from kraft.raft.types import Entry, EntryKind
from kraft.rpc.errors import DecodeError

# Checks one wire value and returns the Python value; the str names the field for errors.
Decoder = Callable[[Any, str], Any]
# Turns one Python value into a msgpack-ready one; None when msgpack takes it as it is.
Encoder = Callable[[Any], Any] | None

Body = dict[str, Any]


def _type_name(value: object) -> str:
    return type(value).__name__


def _decode_int(value: Any, path: str) -> int:
    if type(value) is not int:
        raise DecodeError(path, f"expected int, got {_type_name(value)}")
    if value < 0:
        raise DecodeError(path, f"{value} is negative")
    return value


def _decode_bool(value: Any, path: str) -> bool:
    if type(value) is not bool:
        raise DecodeError(path, f"expected bool, got {_type_name(value)}")
    return value


def _decode_bytes(value: Any, path: str) -> bytes:
    if type(value) is not bytes:
        raise DecodeError(path, f"expected bytes, got {_type_name(value)}")
    return value


def _decode_str(value: Any, path: str) -> str:
    if type(value) is not str:
        raise DecodeError(path, f"expected str, got {_type_name(value)}")
    return value


_SCALAR_DECODERS: dict[object, Decoder] = {
    int: _decode_int,
    bool: _decode_bool,
    bytes: _decode_bytes,
    str: _decode_str,
}


def _optional_decoder(inner: Decoder) -> Decoder:
    def decode(value: Any, path: str) -> Any:
        return None if value is None else inner(value, path)

    return decode


def _enum_decoder(enum_type: type[enum.IntEnum]) -> Decoder:
    members = {member.value: member for member in enum_type}

    def decode(value: Any, path: str) -> Any:
        # A member itself is what encode_message leaves in the wire form (msgpack packs it as
        # an int); anything else must be a plain int (not a bool).
        if type(value) is not int and type(value) is not enum_type:
            raise DecodeError(path, f"expected int ({enum_type.__name__}), got {_type_name(value)}")
        member = members.get(value)
        if member is None:
            raise DecodeError(path, f"unknown {enum_type.__name__} {value}")
        return member

    return decode


def _tuple_decoder(inner: Decoder) -> Decoder:
    def decode(value: Any, path: str) -> tuple[Any, ...]:
        if type(value) is not list:
            raise DecodeError(path, f"expected array, got {_type_name(value)}")
        return tuple(inner(item, f"{path}[{index}]") for index, item in enumerate(value))

    return decode


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldCodec:
    name: str
    encode: Encoder
    decode: Decoder
    has_default: bool


def _field_codecs(cls: type) -> tuple[_FieldCodec, ...]:
    hints = typing.get_type_hints(cls)
    codecs = []
    for field in dataclasses.fields(cls):
        encode, decode = _codec_for_type(hints[field.name])
        has_default = (
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING
        )
        codecs.append(_FieldCodec(field.name, encode, decode, has_default))
    return tuple(codecs)


def _codec_for_type(hint: Any) -> tuple[Encoder, Decoder]:
    """The encoder and decoder of one type hint; branches on the kinds raft messages use."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        present = [arg for arg in args if arg is not type(None)]
        assert len(present) == 1, f"only `X | None` unions are supported, not {hint}"
        encode, decode = _codec_for_type(present[0])
        optional_encode = None if encode is None else _optional_encoder(encode)
        return optional_encode, _optional_decoder(decode)
    if origin is tuple:
        assert len(args) == 2 and args[1] is Ellipsis, f"only tuple[X, ...] is supported: {hint}"
        if args[0] is Entry:
            return _encode_entries, _decode_entries
        item_encode, item_decode = _codec_for_type(args[0])
        tuple_encode = list if item_encode is None else _list_encoder(item_encode)
        return tuple_encode, _tuple_decoder(item_decode)
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return None, _enum_decoder(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        nested = _NestedCodec(hint)
        return nested.encode, nested.decode
    assert hint in _SCALAR_DECODERS, f"no codec for type {hint}"
    return None, _SCALAR_DECODERS[hint]


def _optional_encoder(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        return None if value is None else inner(value)

    return encode


def _list_encoder(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def encode(values: Any) -> Any:
        return [inner(value) for value in values]

    return encode


class _NestedCodec:
    """A dataclass inside a message (Entry, OffsetAndEpoch, SnapshotId): an array of its
    fields. attrgetter reads all fields in C, so encoding costs one call per value."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.fields = _field_codecs(cls)
        self.required = sum(1 for field in self.fields if not field.has_default)
        names = [field.name for field in self.fields]
        assert len(names) >= 2, f"{cls.__name__}: attrgetter returns a tuple only for 2+ fields"
        self.getter = attrgetter(*names)
        self.plain = all(field.encode is None for field in self.fields)

    def encode(self, value: Any) -> Any:
        values = self.getter(value)
        if self.plain:
            return values
        return [
            v if f.encode is None else f.encode(v) for f, v in zip(self.fields, values, strict=True)
        ]

    def decode(self, value: Any, path: str) -> Any:
        if type(value) is not list:
            raise DecodeError(
                path, f"expected array ({self.cls.__name__}), got {_type_name(value)}"
            )
        return self.cls(*_decode_fields(self.fields, self.required, value, 0, path))


def _decode_fields(
    fields: tuple[_FieldCodec, ...], required: int, wire: list[Any], start: int, path: str
) -> list[Any]:
    """Decodes wire[start:] as `fields`; trailing fields with defaults may be absent."""
    count = len(wire) - start
    if count > len(fields):
        raise DecodeError(path, f"{count} fields, expected at most {len(fields)}")
    if count < required:
        raise DecodeError(f"{path}.{fields[count].name}", "missing")
    return [
        field.decode(wire[start + index], f"{path}.{field.name}")
        for index, field in enumerate(fields[:count])
    ]


# --- Entries: the hot path -----------------------------------------------------------------

_ENTRY_FIELDS = ("offset", "epoch", "data", "kind")
assert tuple(f.name for f in dataclasses.fields(Entry)) == _ENTRY_FIELDS, (
    "Entry's fields changed: update _decode_entries, which inlines them for speed"
)
_ENTRY_KINDS: dict[int, EntryKind] = {kind.value: kind for kind in EntryKind}
_ENTRY_CODEC = _NestedCodec(Entry)
_entry_fields = attrgetter(*_ENTRY_FIELDS)

# Building an Entry through its slot descriptors instead of the frozen dataclass __init__
# (one object.__setattr__ per field, then __post_init__) halves the cost of decoding a large
# FetchResponse. __post_init__ only asserts offset >= 0 and epoch >= 0, which
# _decode_entries checks before building; the check below proves both ways agree.
_new_object = object.__new__
_set_entry_offset = Entry.__dict__["offset"].__set__
_set_entry_epoch = Entry.__dict__["epoch"].__set__
_set_entry_data = Entry.__dict__["data"].__set__
_set_entry_kind = Entry.__dict__["kind"].__set__


def _build_entry(offset: int, epoch: int, data: bytes, kind: EntryKind) -> Entry:
    entry: Entry = _new_object(Entry)
    _set_entry_offset(entry, offset)
    _set_entry_epoch(entry, epoch)
    _set_entry_data(entry, data)
    _set_entry_kind(entry, kind)
    return entry


assert _build_entry(7, 3, b"x", EntryKind.LEADER_CHANGE) == Entry(
    7, 3, b"x", EntryKind.LEADER_CHANGE
)


def _encode_entries(entries: Any) -> Any:
    # Tuples of (offset, epoch, data, kind); msgpack packs tuples as arrays and IntEnum as int.
    return list(map(_entry_fields, entries))


def _decode_entries(value: Any, path: str) -> tuple[Entry, ...]:
    if type(value) is not list:
        raise DecodeError(path, f"expected array, got {_type_name(value)}")
    kinds = _ENTRY_KINDS
    new, set_offset, set_epoch = _new_object, _set_entry_offset, _set_entry_epoch
    set_data, set_kind = _set_entry_data, _set_entry_kind
    entries: list[Entry] = []
    append = entries.append
    for item in value:
        if type(item) is list and len(item) == 4:
            offset, epoch, data, kind = item
            if (
                type(offset) is int
                and offset >= 0
                and type(epoch) is int
                and epoch >= 0
                and type(data) is bytes
                and type(kind) is int
                and kind in kinds
            ):
                # _build_entry, inlined: a call per entry costs ~15% here.
                entry = new(Entry)
                set_offset(entry, offset)
                set_epoch(entry, epoch)
                set_data(entry, data)
                set_kind(entry, kinds[kind])
                append(entry)
                continue
        # Not the common shape: the generic decoder names the bad field, or accepts a shape
        # the fast path does not take (an older sender omitting a defaulted field).
        append(_ENTRY_CODEC.decode(item, f"{path}[{len(entries)}]"))
    return tuple(entries)


# --- Messages --------------------------------------------------------------------------------


class _MessageCodec:
    def __init__(self, tag: int, cls: type) -> None:
        self.tag = tag
        self.cls = cls
        self.name = cls.__name__
        self.fields = _field_codecs(cls)
        self.required = sum(1 for field in self.fields if not field.has_default)
        self.getter = attrgetter(*(field.name for field in self.fields))
        self.encoders = [field.encode for field in self.fields]

    def encode(self, message: Any) -> list[Any]:
        wire: list[Any] = [self.tag]
        for encode, value in zip(self.encoders, self.getter(message), strict=True):
            wire.append(value if encode is None else encode(value))
        return wire

    def decode(self, wire: list[Any]) -> Any:
        return self.cls(*_decode_fields(self.fields, self.required, wire, 1, self.name))


_CODECS_BY_TAG: dict[int, _MessageCodec] = {
    tag: _MessageCodec(tag, cls) for tag, cls in MESSAGE_TYPES.items()
}
_CODECS_BY_TYPE: dict[type, _MessageCodec] = {c.cls: c for c in _CODECS_BY_TAG.values()}


def encode_message(message: Message) -> list[Any]:
    """The msgpack-ready array of a raft message: `[tag, fields...]`."""
    codec = _CODECS_BY_TYPE.get(type(message))
    if codec is None:
        raise TypeError(f"{type(message).__name__} is not a raft message of MESSAGE_TYPES")
    return codec.encode(message)


def decode_message(wire: Any) -> Message:
    """The raft message of a decoded msgpack value; DecodeError names what is wrong."""
    if type(wire) is not list or not wire:
        raise DecodeError("message", f"expected a non-empty array, got {_type_name(wire)}")
    tag = wire[0]
    if type(tag) is not int:
        raise DecodeError("message.tag", f"expected int, got {_type_name(tag)}")
    codec = _CODECS_BY_TAG.get(tag)
    if codec is None:
        raise DecodeError("message.tag", f"unknown message tag {tag}")
    message: Message = codec.decode(wire)
    return message


def pack_message(message: Message) -> bytes:
    """A raft message as standalone msgpack bytes (frames embed encode_message instead)."""
    packed: bytes = msgpack.packb(encode_message(message), use_bin_type=True)
    return packed


def unpack_message(data: bytes) -> Message:
    try:
        wire = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise DecodeError("message", f"not msgpack: {error}") from error
    return decode_message(wire)


def validate_body(body: Any, what: str, *, require_kind: bool = True) -> Body:
    """A generic request or response body: a map with string keys; a request (and a
    response that wants one) names its `kind` in a string.

    `what` names it in errors ("request", "response").
    """
    if type(body) is not dict:
        raise DecodeError(what, f"expected a map, got {_type_name(body)}")
    for key in body:
        if type(key) is not str:
            raise DecodeError(what, f"key {key!r} is not a string")
    if not require_kind:
        return body
    kind = body.get("kind")
    if kind is None:
        raise DecodeError(f"{what}.kind", "missing")
    if type(kind) is not str:
        raise DecodeError(f"{what}.kind", f"expected str, got {_type_name(kind)}")
    return body
