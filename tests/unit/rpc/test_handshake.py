"""The checks both sides make on the other's hello (kraft.rpc.handshake)."""

from __future__ import annotations

import pytest

from kraft.rpc.config import PROTOCOL_VERSION
from kraft.rpc.errors import DecodeError
from kraft.rpc.framing import RpcErrorCode
from kraft.rpc.handshake import Hello, decode_hello, refuse_client, refuse_server

from .conftest import CLUSTER_ID, OTHER_CLUSTER_ID, node_hello


def test_hello_round_trips_through_its_wire_map() -> None:
    hello = Hello(CLUSTER_ID, 3, "dir-3", PROTOCOL_VERSION)

    assert decode_hello(hello.to_wire()) == hello


def test_a_tool_may_leave_out_node_and_cluster_id() -> None:
    hello = decode_hello({"protocol_version": PROTOCOL_VERSION})

    assert hello == Hello(None, None, None, PROTOCOL_VERSION)
    assert refuse_client(hello, CLUSTER_ID) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "hello"),
        (node_hello() | {"cluster_id": 5}, "hello.cluster_id"),
        (node_hello() | {"directory_id": b"raw"}, "hello.directory_id"),
        (node_hello() | {"node_id": -2}, "hello.node_id"),
        (node_hello() | {"protocol_version": None}, "hello.protocol_version"),
    ],
)
def test_malformed_hello_names_the_field(body: object, field: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_hello(body)

    assert caught.value.field == field


def test_server_refuses_another_cluster_an_unknown_version_and_a_nameless_node() -> None:
    assert refuse_client(Hello(OTHER_CLUSTER_ID, 1, None, PROTOCOL_VERSION), CLUSTER_ID) == (
        RpcErrorCode.CLUSTER_ID_MISMATCH,
        f"cluster id {OTHER_CLUSTER_ID} does not match this node's {CLUSTER_ID}",
    )
    refusal = refuse_client(Hello(CLUSTER_ID, 1, None, 99), CLUSTER_ID)
    assert refusal is not None and refusal[0] is RpcErrorCode.UNSUPPORTED_VERSION
    refusal = refuse_client(Hello(None, 1, None, PROTOCOL_VERSION), CLUSTER_ID)
    assert refusal is not None and refusal[0] is RpcErrorCode.HANDSHAKE_FAILED


def test_client_checks_the_servers_cluster_and_node_id() -> None:
    answer = Hello(CLUSTER_ID, 2, None, PROTOCOL_VERSION)

    assert refuse_server(answer, CLUSTER_ID, 2, "h:1") is None
    assert refuse_server(answer, None, None, "h:1") is None  # a tool accepts any cluster
    assert refuse_server(answer, OTHER_CLUSTER_ID, 2, "h:1") == (
        f"cluster id {CLUSTER_ID} of the server at h:1 does not match this node's "
        f"{OTHER_CLUSTER_ID}"
    )
    assert refuse_server(answer, CLUSTER_ID, 3, "h:1") == "server at h:1 is node 2, expected node 3"
    assert refuse_server(Hello(None, 2, None, 1), CLUSTER_ID, 2, "h:1") == (
        "server at h:1 sent no cluster id"
    )
    assert "protocol version 7" in str(refuse_server(Hello(CLUSTER_ID, 2, None, 7), None, 2, "h:1"))
