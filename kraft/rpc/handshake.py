"""The hello both sides send first on every rpc connection, and the checks on it.

The client (a peer node, or a tool such as the CLI) sends `{cluster_id, node_id,
directory_id, protocol_version}`; a tool may leave node_id and cluster_id out (nil), which
allows it generic requests only, never raft messages. The server refuses a different cluster
id or an unsupported version with an ERROR frame and closes; otherwise it answers with its
own hello (node_id, cluster_id, protocol_version), which the client checks in turn: same
cluster, and the node id it meant to reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kraft.rpc.config import SUPPORTED_PROTOCOL_VERSIONS
from kraft.rpc.errors import DecodeError
from kraft.rpc.framing import RpcErrorCode


@dataclass(frozen=True, slots=True)
class Hello:
    cluster_id: str | None
    node_id: int | None
    directory_id: str | None
    protocol_version: int
    # "host:port" of the sender's own rpc listener, so that a leader can answer a node it
    # has no configured address for (an observer broker); None for tools.
    listen_address: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "node_id": self.node_id,
            "directory_id": self.directory_id,
            "protocol_version": self.protocol_version,
            "listen_address": self.listen_address,
        }

    def listen_host_port(self) -> tuple[str, int] | None:
        """The parsed listen address, or None when absent or malformed."""
        if self.listen_address is None:
            return None
        host, _, port = self.listen_address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            return None
        return host, int(port)


def decode_hello(body: Any) -> Hello:
    """A hello from its wire map; absent optional fields are None."""
    if type(body) is not dict:
        raise DecodeError("hello", f"expected a map, got {type(body).__name__}")
    for name in ("cluster_id", "directory_id", "listen_address"):
        value = body.get(name)
        if value is not None and type(value) is not str:
            raise DecodeError(f"hello.{name}", f"expected str or nil, got {type(value).__name__}")
    node_id = body.get("node_id")
    if node_id is not None and (type(node_id) is not int or node_id < 0):
        raise DecodeError("hello.node_id", f"expected a non-negative int or nil, got {node_id!r}")
    version = body.get("protocol_version")
    if type(version) is not int:
        raise DecodeError("hello.protocol_version", f"expected int, got {version!r}")
    return Hello(
        body.get("cluster_id"),
        node_id,
        body.get("directory_id"),
        version,
        body.get("listen_address"),
    )


def refuse_client(hello: Hello, cluster_id: str) -> tuple[RpcErrorCode, str] | None:
    """Why a server refuses this client hello (error code, message), or None to accept."""
    if hello.protocol_version not in SUPPORTED_PROTOCOL_VERSIONS:
        return RpcErrorCode.UNSUPPORTED_VERSION, (
            f"protocol version {hello.protocol_version} is not supported by this node "
            f"(supported: {sorted(SUPPORTED_PROTOCOL_VERSIONS)})"
        )
    if hello.cluster_id is None and hello.node_id is not None:
        return RpcErrorCode.HANDSHAKE_FAILED, (
            f"node {hello.node_id} sent no cluster id; a node must name its cluster"
        )
    if hello.cluster_id is not None and hello.cluster_id != cluster_id:
        return RpcErrorCode.CLUSTER_ID_MISMATCH, (
            f"cluster id {hello.cluster_id} does not match this node's {cluster_id}"
        )
    return None


def refuse_server(
    hello: Hello, cluster_id: str | None, expected_node_id: int | None, address: str
) -> str | None:
    """Why a client refuses the server's answering hello, or None to accept."""
    if hello.protocol_version not in SUPPORTED_PROTOCOL_VERSIONS:
        return (
            f"server at {address} speaks protocol version {hello.protocol_version} "
            f"(supported: {sorted(SUPPORTED_PROTOCOL_VERSIONS)})"
        )
    if hello.cluster_id is None:
        return f"server at {address} sent no cluster id"
    if cluster_id is not None and hello.cluster_id != cluster_id:
        return (
            f"cluster id {hello.cluster_id} of the server at {address} does not match "
            f"this node's {cluster_id}"
        )
    if expected_node_id is not None and hello.node_id != expected_node_id:
        return f"server at {address} is node {hello.node_id}, expected node {expected_node_id}"
    return None
