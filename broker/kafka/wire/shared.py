"""Entities Produce and Fetch answers share: the current leader of a partition and the
endpoints of the brokers named in those (KIP-951)."""

from __future__ import annotations

from typing import NamedTuple

from broker.kafka.wire.primitives import (
    INT32,
    NO_TAGGED_FIELDS,
    array_count,
    nullable_string,
    string,
    tagged_field,
    unsigned_varint,
)

# Named tuples rather than frozen dataclasses: as immutable and typed, and several times
# cheaper to build, which matters on the per-record path.


class LeaderIdAndEpoch(NamedTuple):
    leader_id: int
    leader_epoch: int


class NodeEndpoint(NamedTuple):
    node_id: int
    host: str
    port: int
    rack: str | None


UNKNOWN_LEADER = LeaderIdAndEpoch(-1, -1)  # the schemas' default: the tag is left out


def leader_tag(tag: int, leader: LeaderIdAndEpoch | None) -> bytes:
    """current_leader as a tagged field; nothing when absent or the default (as kio)."""
    if leader is None or leader == UNKNOWN_LEADER:
        return b""
    value = INT32.pack(leader.leader_id) + INT32.pack(leader.leader_epoch) + NO_TAGGED_FIELDS
    return tagged_field(tag, value)


def node_endpoints_tag(tag: int, endpoints: tuple[NodeEndpoint, ...]) -> bytes:
    """node_endpoints as a tagged field (always compact); nothing when empty."""
    if not endpoints:
        return b""
    parts = [array_count(len(endpoints), compact=True)]
    for endpoint in endpoints:
        parts.append(INT32.pack(endpoint.node_id))
        parts.append(string(endpoint.host, compact=True))
        parts.append(INT32.pack(endpoint.port))
        parts.append(nullable_string(endpoint.rack, compact=True))
        parts.append(NO_TAGGED_FIELDS)
    return tagged_field(tag, b"".join(parts))


def tagged_section(fields: list[bytes]) -> bytes:
    """A tagged-field section from fields already written in tag order; empty ones skipped."""
    present = [field for field in fields if field]
    if not present:
        return NO_TAGGED_FIELDS
    return unsigned_varint(len(present)) + b"".join(present)
