"""The internal msgpack RPC of the rpc listener (SPEC §3): framing, the raft message codec,
the handshake, the server, the peer transport and a small client for tools."""

from kraft.rpc.client import RpcClient
from kraft.rpc.codec import Body, decode_message, encode_message, validate_body
from kraft.rpc.errors import (
    ConnectionLostError,
    DecodeError,
    FrameError,
    HandshakeError,
    RemoteError,
    RpcError,
    UnknownPeerError,
)
from kraft.rpc.server import RpcServer, ServerStats
from kraft.rpc.transport import PeerStats, PeerTransport

__all__ = [
    "Body",
    "ConnectionLostError",
    "DecodeError",
    "FrameError",
    "HandshakeError",
    "PeerStats",
    "PeerTransport",
    "RemoteError",
    "RpcClient",
    "RpcError",
    "RpcServer",
    "ServerStats",
    "UnknownPeerError",
    "decode_message",
    "encode_message",
    "validate_body",
]
