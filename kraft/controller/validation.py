"""Checks of request arguments the controller makes before deciding anything.

Pure functions that raise typed ControllerErrors whose messages name the thing, the value
and the rule (STYLE §10); the limits they enforce are the named constants below.
"""

from __future__ import annotations

from collections.abc import Collection

from kraft.controller.errors import (
    IneligibleReplicaError,
    InvalidPartitionsError,
    InvalidRequestError,
)
from kraft.controller.image import PartitionRegistration
from kraft.controller.records import Endpoint

MAX_PARTITIONS_PER_TOPIC = 10_000
MAX_INCARNATION_ID_CHARS = 64
MAX_ENDPOINTS_PER_BROKER = 16
MAX_RACK_CHARS = 255
MAX_PORT = 65535


def validate_partition_count(partitions: int) -> None:
    if partitions < 1:
        raise InvalidPartitionsError(f"number of partitions {partitions} must be at least 1")
    if partitions > MAX_PARTITIONS_PER_TOPIC:
        raise InvalidPartitionsError(
            f"number of partitions {partitions} is above the limit of {MAX_PARTITIONS_PER_TOPIC}"
        )


def validate_registration(
    broker_id: int,
    incarnation_id: str,
    endpoints: tuple[Endpoint, ...],
    rack: str | None,
    log_dir_id: str | None = None,
) -> None:
    if log_dir_id is not None and not 0 < len(log_dir_id) <= MAX_INCARNATION_ID_CHARS:
        raise InvalidRequestError(
            f"log directory id of {len(log_dir_id)} characters must have 1 to "
            f"{MAX_INCARNATION_ID_CHARS}"
        )
    if broker_id < 0:
        raise InvalidRequestError(f"broker id {broker_id} must not be negative")
    if not 0 < len(incarnation_id) <= MAX_INCARNATION_ID_CHARS:
        raise InvalidRequestError(
            f"incarnation id {incarnation_id[:80]!r} must have 1 to "
            f"{MAX_INCARNATION_ID_CHARS} characters"
        )
    if len(endpoints) > MAX_ENDPOINTS_PER_BROKER:
        raise InvalidRequestError(
            f"{len(endpoints)} endpoints, more than the {MAX_ENDPOINTS_PER_BROKER} allowed"
        )
    names = [endpoint.name for endpoint in endpoints]
    if len(set(names)) != len(names):
        raise InvalidRequestError(f"endpoint names {names} repeat a listener name")
    for endpoint in endpoints:
        if not 0 <= endpoint.port <= MAX_PORT:
            raise InvalidRequestError(
                f"endpoint {endpoint.name} port {endpoint.port} is not between 0 and {MAX_PORT}"
            )
    if rack is not None and not 0 < len(rack) <= MAX_RACK_CHARS:
        raise InvalidRequestError(f"rack {rack[:80]!r} must have 1 to {MAX_RACK_CHARS} characters")


def validate_offsets(applied_offset: int, committed_offset: int) -> None:
    if applied_offset < -1 or committed_offset < -1:
        raise InvalidRequestError(
            f"offsets must be at least -1 (applied {applied_offset}, committed {committed_offset})"
        )


def validated_isr(
    partition: PartitionRegistration, new_isr: tuple[int, ...], live: Collection[int]
) -> tuple[int, ...]:
    """The ISR a leader asks for, checked and put in replica order."""
    name = f"partition {partition.partition_id} of topic {partition.topic_id}"
    if len(set(new_isr)) != len(new_isr):
        raise InvalidRequestError(f"new ISR {list(new_isr)} of {name} repeats a broker")
    if partition.leader not in new_isr:
        raise InvalidRequestError(
            f"new ISR {list(new_isr)} of {name} must contain its leader {partition.leader}"
        )
    for broker_id in new_isr:
        if broker_id not in partition.replicas:
            raise InvalidRequestError(
                f"broker {broker_id} of new ISR {list(new_isr)} is not a replica of {name} "
                f"(replicas {list(partition.replicas)})"
            )
        if broker_id not in live:
            raise IneligibleReplicaError(
                f"broker {broker_id} may not join the ISR of {name}: it is fenced or shutting down"
            )
    return tuple(broker for broker in partition.replicas if broker in new_isr)
