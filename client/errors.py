"""Typed errors of the data-plane client (client.cluster, client.producer, client.consumer).

Every error a broker answers with reaches the caller as a KafkaError carrying Kafka's
numeric code (kraft.protocol.errors.ErrorCode) and the broker's sentence, so callers branch
on `error.code` exactly as a Kafka client's caller branches on the exception type. The other
classes are what the client itself decides: nobody answered, a deadline passed, a setting
is wrong.
"""

from __future__ import annotations

from kraft.protocol.errors import ErrorCode, error_name


class ClientError(Exception):
    """Base of every error client.producer, client.consumer and client.cluster raise."""


class KafkaError(ClientError):
    """A broker refused a request for one partition (or the client applied a Kafka rule
    itself, e.g. a record over max_request_size_bytes is MESSAGE_TOO_LARGE before it leaves).
    `code` is Kafka's numeric error code; `retriable` follows Kafka's classification."""

    def __init__(self, code: int, message: str | None = None) -> None:
        name = error_name(code)
        super().__init__(f"{name}: {message}" if message else name)
        self.code = code
        self.name = name
        self.message = message

    @property
    def retriable(self) -> bool:
        try:
            return ErrorCode(self.code).is_retriable
        except ValueError:
            return False  # a code this build does not know: Kafka treats it as fatal


class ClusterUnavailableError(ClientError):
    """No bootstrap address (nor any known broker) answered a metadata request in time."""


class DeliveryTimeoutError(KafkaError):
    """A record was not acknowledged within delivery_timeout_ms, retries included. Kafka
    reports it as a TimeoutException; here it is REQUEST_TIMED_OUT with the last error the
    batch met. The record may or may not have been written (at-least-once)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.REQUEST_TIMED_OUT, message)


class ProducerClosedError(ClientError):
    """send() on a producer that is closing or closed, or a record still buffered when
    close() gave up waiting."""


class OffsetOutOfRangeError(KafkaError):
    """A fetch offset is outside the partition's log and auto_offset_reset is 'none'."""

    def __init__(self, topic: str, partition: int, offset: int, message: str | None) -> None:
        detail = f"offset {offset} of {topic}-{partition} is out of range"
        super().__init__(
            ErrorCode.OFFSET_OUT_OF_RANGE, f"{detail}: {message}" if message else detail
        )
        self.topic = topic
        self.partition = partition
        self.offset = offset


class ConfigurationError(ClientError, ValueError):
    """Client settings that do not go together (e.g. delivery_timeout_ms below
    linger_ms + request_timeout_ms); the message names the settings and the rule."""


class BrokerUnavailableError(ClientError):
    """A request to one broker failed without an answer: cannot connect, the connection
    dropped, the request timed out, or the node refused the request kind. The outcome of a
    write is unknown; the client refreshes its metadata and retries where the rule allows."""


class MalformedResponseError(ClientError):
    """A broker's answer does not have the shape docs/decisions/0005 gives it; the message
    names the field."""
