"""The msgpack codec of raft messages and generic bodies (kraft.rpc.codec): every message
type round-trips, and any malformed input is refused with a DecodeError naming the field."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import types
import typing
from typing import Any

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kraft.raft.messages import (
    MESSAGE_TYPES,
    ErrorCode,
    FetchResponse,
    FetchSnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from kraft.raft.types import Entry, EntryKind, OffsetAndEpoch, SnapshotId
from kraft.rpc.codec import (
    DecodeError,
    decode_message,
    encode_message,
    pack_message,
    unpack_message,
    validate_body,
)
from kraft.rpc.errors import FrameError
from kraft.rpc.framing import FrameType, decode_frame, encode_frame

UINT64_MAX = 2**64 - 1


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Values of a message field's type, read from the type hint as the codec reads it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        (present,) = [arg for arg in args if arg is not type(None)]
        return st.none() | strategy_for(present)
    if origin is tuple:
        return st.lists(strategy_for(args[0]), max_size=5).map(tuple)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return messages_of(hint)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        int: st.integers(0, UINT64_MAX),
        bool: st.booleans(),
        bytes: st.binary(max_size=64),
    }
    return simple[hint]


def messages_of(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {field.name: strategy_for(hints[field.name]) for field in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


any_message = st.one_of([messages_of(cls) for cls in MESSAGE_TYPES.values()])


@settings(max_examples=400)
@given(any_message)
def test_every_message_type_round_trips_through_msgpack(message: Any) -> None:
    assert unpack_message(pack_message(message)) == message


@pytest.mark.parametrize("cls", list(MESSAGE_TYPES.values()), ids=lambda c: c.__name__)
@settings(max_examples=30)
@given(data=st.data())
def test_each_message_type_round_trips_inside_a_raft_frame(cls: type, data: st.DataObject) -> None:
    message = data.draw(messages_of(cls))
    wire = encode_frame(FrameType.RAFT, encode_message(message))
    frame = decode_frame(wire[4:])
    assert frame.frame_type is FrameType.RAFT
    assert decode_message(frame.body) == message


def test_fetch_response_with_thousands_of_entries_round_trips() -> None:
    entries = tuple(
        Entry(offset, 7, bytes([offset % 256]) * 100, EntryKind(offset % 2))
        for offset in range(1000, 6000)
    )
    message = FetchResponse(7, 1, 42, ErrorCode.NONE, 5000, 900, entries, None, None)

    decoded = unpack_message(pack_message(message))

    assert decoded == message
    assert isinstance(decoded, FetchResponse)
    assert all(type(entry) is Entry for entry in decoded.entries)
    assert decoded.entries[1].kind is EntryKind.LEADER_CHANGE
    assert hash(decoded.entries[3]) == hash(entries[3])


def test_fetch_snapshot_response_carries_its_chunk_as_bytes() -> None:
    chunk = bytes(range(256)) * 4096
    message = FetchSnapshotResponse(3, 1, 9, ErrorCode.NONE, SnapshotId(500, 2), 10**7, 0, chunk)

    decoded = unpack_message(pack_message(message))

    assert decoded == message
    assert isinstance(decoded, FetchSnapshotResponse)
    assert type(decoded.chunk) is bytes


def test_nested_values_are_compact_arrays_and_enums_ints() -> None:
    """Entries, OffsetAndEpoch and SnapshotId go as arrays of their fields, in order."""
    message = FetchResponse(
        2, None, 5, ErrorCode.NOT_LEADER, 10, 0, (Entry(3, 2, b"ab"),), OffsetAndEpoch(4, 1),
        SnapshotId(8, 2),
    )  # fmt: skip

    wire = msgpack.unpackb(pack_message(message))

    assert wire == [8, 2, None, 5, 2, 10, 0, [[3, 2, b"ab", 0]], [4, 1], [8, 2]]


def test_decoder_accepts_missing_trailing_fields_that_have_defaults() -> None:
    """An older sender that does not know a defaulted field yet still decodes."""
    assert decode_message([1, 5, 2, 4, 100]) == VoteRequest(5, 2, 4, 100, pre_vote=False)
    assert decode_message([2, 5, True, None]) == VoteResponse(5, True, None)


@pytest.mark.parametrize(
    ("wire", "field", "problem"),
    [
        ([99, 1], "message.tag", "unknown message tag 99"),
        (["1", 1], "message.tag", "expected int, got str"),
        ([], "message", "expected a non-empty array"),
        ({"tag": 1}, "message", "expected a non-empty array, got dict"),
        ([1, "5", 2, 4, 100], "VoteRequest.epoch", "expected int, got str"),
        ([1, 5, 2, 4, 1.5], "VoteRequest.log_end_offset", "expected int, got float"),
        ([1, 5, 2, 4, -1], "VoteRequest.log_end_offset", "-1 is negative"),
        ([1, 5, 2, 4, 100, 1], "VoteRequest.pre_vote", "expected bool, got int"),
        ([1, 5, 2], "VoteRequest.last_epoch", "missing"),
        ([1, 5, 2, 4, 100, False, 0], "VoteRequest", "6 fields, expected at most 5"),
        ([2, 5, True, None, False, 77], "VoteResponse.error", "unknown ErrorCode 77"),
        ([2, 5, True, True], "VoteResponse.leader_id", "expected int, got bool"),
        ([5, 3, 1, 7], "EndQuorumEpochRequest.preferred_successors", "expected array"),
        ([5, 3, 1, [2, "x"]], "EndQuorumEpochRequest.preferred_successors[1]", "expected int"),
        ([8, 1, 1, 1, 0, 0, 0, [[1, 1, b"", 0], [2, 1, "text", 0]]],
         "FetchResponse.entries[1].data", "expected bytes, got str"),
        ([8, 1, 1, 1, 0, 0, 0, [[1, 1, b"", 9]]],
         "FetchResponse.entries[0].kind", "unknown EntryKind 9"),
        ([8, 1, 1, 1, 0, 0, 0, [[-1, 1, b"", 0]]],
         "FetchResponse.entries[0].offset", "-1 is negative"),
        ([8, 1, 1, 1, 0, 0, 0, [[1]]], "FetchResponse.entries[0].epoch", "missing"),
        ([8, 1, 1, 1, 0, 0, 0, [5]], "FetchResponse.entries[0]", "expected array (Entry)"),
        ([8, 1, 1, 1, 0, 0, 0, {}], "FetchResponse.entries", "expected array, got dict"),
        ([8, 1, 1, 1, 0, 0, 0, [], [4]], "FetchResponse.diverging.epoch", "missing"),
        ([10, 1, 1, 1, 0, [1, 1], 9, 0, "chunk"], "FetchSnapshotResponse.chunk",
         "expected bytes, got str"),
        ([9, 1, 1, 1, None, 0, 100], "FetchSnapshotRequest.snapshot_id",
         "expected array (SnapshotId), got NoneType"),
    ],
)  # fmt: skip
def test_malformed_message_raises_decode_error_naming_the_field(
    wire: Any, field: str, problem: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_message(wire)

    assert caught.value.field == field
    assert problem in caught.value.problem


def test_entries_of_an_older_sender_without_kind_decode_with_the_default() -> None:
    decoded = decode_message([8, 1, 1, 1, 0, 0, 0, [[1, 1, b"a", 0], [2, 1, b"b"]]])

    assert isinstance(decoded, FetchResponse)
    assert decoded.entries == (Entry(1, 1, b"a"), Entry(2, 1, b"b", EntryKind.DATA))


def test_garbage_bytes_are_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not msgpack"):
        unpack_message(b"\xc1\xc1")


def test_encoding_something_that_is_not_a_raft_message_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not a raft message"):
        encode_message(Entry(1, 1, b""))  # type: ignore[arg-type]


def test_request_body_needs_a_string_kind() -> None:
    assert validate_body({"kind": "propose", "key": b"k"}, "request") == {
        "kind": "propose",
        "key": b"k",
    }
    with pytest.raises(DecodeError, match="request.kind: missing"):
        validate_body({"key": "k"}, "request")
    with pytest.raises(DecodeError, match="request.kind: expected str, got int"):
        validate_body({"kind": 3}, "request")
    with pytest.raises(DecodeError, match="request: expected a map, got list"):
        validate_body(["kind"], "request")
    with pytest.raises(DecodeError, match="is not a string"):
        validate_body({"kind": "x", b"raw": 1}, "request")


def test_response_body_is_any_map_with_string_keys() -> None:
    assert validate_body({"offset": 4}, "response", require_kind=False) == {"offset": 4}
    with pytest.raises(DecodeError, match="response: expected a map"):
        validate_body(None, "response", require_kind=False)


scalars = st.none() | st.booleans() | st.integers(-(2**63), UINT64_MAX) | st.floats()
msgpack_values = st.recursive(
    scalars | st.text(max_size=8) | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=150)
@given(st.integers(0, 12), st.lists(msgpack_values, max_size=10))
@example(tag=4, fields=[0, None])  # a defaulted enum field (error) must survive the round trip
def test_any_decoded_msgpack_value_is_a_message_or_a_decode_error(
    tag: int, fields: list[Any]
) -> None:
    try:
        message = decode_message([tag, *fields])
    except DecodeError:
        return
    assert type(message) is MESSAGE_TYPES[tag]
    assert decode_message(encode_message(message)) == message


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_are_a_frame_error_or_a_decode_error_never_a_crash(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except FrameError:
        return
    with contextlib.suppress(DecodeError):
        decode_message(frame.body)
