"""The typed errors of kraft.rpc (STYLE.md §4: operating errors are typed exceptions).

Everything a peer can send us wrongly surfaces as a FrameError (the frame itself) or a
DecodeError (a well-formed frame whose content is not a valid message); both close only the
connection they arrived on. The rest are what a caller of the client side handles.
"""

from __future__ import annotations


class RpcError(Exception):
    """Base of every error kraft.rpc raises on purpose."""


class FrameError(RpcError):
    """A frame could not be read: bad length, truncated, garbage msgpack, unknown version."""


class FrameTooLargeError(FrameError):
    """A frame's length exceeds MAX_FRAME_BYTES (on read: before its body is read)."""


class MalformedFrameError(FrameError):
    """The body is not msgpack, or not a frame map of the expected shape."""


class UnsupportedVersionError(FrameError):
    """The frame (or hello) carries a protocol version this node does not speak."""


class DecodeError(RpcError):
    """A frame's body is not a valid message; `field` names where (e.g. `FetchResponse.
    entries[3].data`)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class HandshakeError(RpcError):
    """The other side's hello was refused (wrong cluster id, version, node id) or missing."""


class RemoteError(RpcError):
    """The server answered a request with an error frame (`code`, `message`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ConnectionLostError(RpcError):
    """The connection closed before the answer to a request arrived."""


class UnknownPeerError(RpcError):
    """A message or request was addressed to a node id the transport has no address for."""
