"""Short ways to build records and images in controller tests."""

from __future__ import annotations

from collections.abc import Iterable

from kraft.controller.image import MetadataImage
from kraft.controller.records import Endpoint, MetadataRecord, RegisterBrokerRecord


def endpoints_of(broker_id: int) -> tuple[Endpoint, ...]:
    return (
        Endpoint("CLIENT", "127.0.0.1", 9092 + 100 * (broker_id - 1)),
        Endpoint("RPC", "127.0.0.1", 9093 + 100 * (broker_id - 1)),
    )


def register(
    broker_id: int, epoch: int, *, fenced: bool = False, rack: str | None = None
) -> RegisterBrokerRecord:
    return RegisterBrokerRecord(
        broker_id=broker_id,
        incarnation_id=f"incarnation-{broker_id}-{epoch}",
        broker_epoch=epoch,
        endpoints=endpoints_of(broker_id),
        rack=rack,
        fenced=fenced,
    )


def replay(records: Iterable[MetadataRecord], start_offset: int = 0) -> MetadataImage:
    """A fresh image with `records` applied at consecutive offsets."""
    image = MetadataImage()
    for offset, record in enumerate(records, start=start_offset):
        image.apply(record, offset)
    return image
