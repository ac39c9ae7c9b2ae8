"""Length-prefixed msgpack frames: the unit every rpc connection reads and writes.

On the wire a frame is a 4-byte big-endian length, then that many bytes of msgpack holding a
map: `{"v": protocol version, "t": frame type, "id": correlation id (requests and their
answers only), "b": body}`. The body depends on the type: a hello map, a raft message array
(kraft.rpc.codec), a request or response map with a `kind`, or an error map
`{"code", "message"}`.

The length is checked against MAX_FRAME_BYTES before the body is read, so a bad length never
makes us allocate. Any bad frame raises a FrameError subclass; the connection that sent it is
closed and no other.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any

import msgpack

from kraft.rpc.config import MAX_FRAME_BYTES, PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS
from kraft.rpc.errors import (
    FrameTooLargeError,
    MalformedFrameError,
    UnsupportedVersionError,
)
from kraft.rpc.splitter import LengthPrefixedSplitter

LENGTH_PREFIX = struct.Struct(">I")


class FrameType(enum.IntEnum):
    """Wire values are part of the protocol: never reuse or renumber."""

    HELLO = 1  # handshake, both directions, first frame of a connection
    RAFT = 2  # one-way raft message (client to server)
    REQUEST = 3  # generic request, carries a correlation id
    RESPONSE = 4  # answer to the request with the same correlation id
    ERROR = 5  # error answer to a request (with its id) or to the connection (without)


_FRAME_TYPES = {member.value: member for member in FrameType}


@dataclass(frozen=True, slots=True)
class Frame:
    frame_type: FrameType
    body: Any
    correlation_id: int | None = None
    version: int = PROTOCOL_VERSION
    size_bytes: int = 0  # on the wire, length prefix included (0 for a frame not read)


def encode_frame(frame_type: FrameType, body: Any, correlation_id: int | None = None) -> bytes:
    """The bytes of one frame, length prefix included.

    Raises FrameTooLargeError when the body exceeds MAX_FRAME_BYTES (the sender's limit is
    the receiver's), TypeError when the body holds something msgpack cannot pack.
    """
    frame: dict[str, Any] = {"v": PROTOCOL_VERSION, "t": int(frame_type), "b": body}
    if correlation_id is not None:
        frame["id"] = correlation_id
    packed: bytes = msgpack.packb(frame, use_bin_type=True)
    if len(packed) > MAX_FRAME_BYTES:
        raise FrameTooLargeError(
            f"{frame_type.name} frame of {len(packed)} bytes exceeds MAX_FRAME_BYTES "
            f"({MAX_FRAME_BYTES})"
        )
    return LENGTH_PREFIX.pack(len(packed)) + packed


def check_length(length: int) -> None:
    if length > MAX_FRAME_BYTES:
        raise FrameTooLargeError(
            f"frame length {length} exceeds MAX_FRAME_BYTES ({MAX_FRAME_BYTES})"
        )
    if length == 0:
        raise MalformedFrameError("frame length 0: a frame holds at least its header map")


def frame_splitter() -> LengthPrefixedSplitter:
    """Cuts one connection's stream into frame payloads for decode_frame (FrameTooLargeError
    or MalformedFrameError for a length out of bounds)."""
    return LengthPrefixedSplitter(LENGTH_PREFIX, check_length, "length prefix")


def decode_frame(data: bytes) -> Frame:
    """The frame in `data` (the bytes after the length prefix)."""
    try:
        raw = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise MalformedFrameError(f"frame is not valid msgpack: {error}") from error
    if type(raw) is not dict:
        raise MalformedFrameError(f"frame is a msgpack {type(raw).__name__}, expected a map")
    version = raw.get("v")
    if type(version) is not int:
        raise MalformedFrameError(f"frame version `v` is {version!r}, expected an int")
    if version not in SUPPORTED_PROTOCOL_VERSIONS:
        raise UnsupportedVersionError(
            f"protocol version {version} is not supported "
            f"(supported: {sorted(SUPPORTED_PROTOCOL_VERSIONS)})"
        )
    type_value = raw.get("t")
    frame_type = _FRAME_TYPES.get(type_value) if type(type_value) is int else None
    if frame_type is None:
        raise MalformedFrameError(f"unknown frame type {type_value!r}")
    correlation_id = raw.get("id")
    if correlation_id is not None and (type(correlation_id) is not int or correlation_id < 0):
        raise MalformedFrameError(f"correlation id {correlation_id!r} is not a non-negative int")
    if "b" not in raw:
        raise MalformedFrameError(f"{frame_type.name} frame has no body `b`")
    return Frame(frame_type, raw["b"], correlation_id, version, LENGTH_PREFIX.size + len(data))


class RpcErrorCode(enum.StrEnum):
    """The `code` of an ERROR frame's body; the `message` says the rest in words."""

    CLUSTER_ID_MISMATCH = "cluster_id_mismatch"
    UNSUPPORTED_VERSION = "unsupported_version"
    HANDSHAKE_FAILED = "handshake_failed"  # no hello, a malformed one, or a node id problem
    BAD_FRAME = "bad_frame"  # oversized, truncated, garbage, unknown frame type
    BAD_MESSAGE = "bad_message"  # a valid frame whose body is not a valid message
    PROTOCOL_VIOLATION = "protocol_violation"  # a frame this side may not send now
    TOO_MANY_CONNECTIONS = "too_many_connections"
    HANDLER_FAILED = "handler_failed"  # the request handler raised; only this request fails


def error_body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}
