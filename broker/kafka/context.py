"""What a handler knows about the request it serves, and the sentinel for "close the
connection" (Kafka closes a connection after an acks=0 produce fails, so the producer
refreshes its metadata)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from broker.kafka.apis import ApiKey
from broker.kafka.codec import build, has_field, schema_module

INT32_MAX = 2**31 - 1
# Kafka's "authorized operations not requested" value
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)


class Outcome(enum.Enum):
    NO_RESPONSE = "no response"  # acks=0
    CLOSE_CONNECTION = "close the connection"


@dataclass(frozen=True, slots=True)
class RequestContext:
    api_key: ApiKey
    version: int
    correlation_id: int
    client_id: str | None
    # the client's address as Kafka shows it (DescribeGroups, kafka-consumer-groups' HOST):
    # "/" and the IP; "" where the request did not come over a connection
    client_host: str = ""

    @property
    def response_module(self) -> ModuleType:
        return schema_module(self.api_key, self.version, "response")

    def build(self, class_name: str, **values: Any) -> Any:
        """A response entity (or nested entity) of this request's version."""
        return build(self.response_module, class_name, **values)

    def response_has(self, class_name: str, field_name: str) -> bool:
        return has_field(self.response_module, class_name, field_name)
