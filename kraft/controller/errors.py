"""Typed refusals of the controller, each carrying the Confluent REST error code the HTTP API
answers with (SPEC §5) and a message that names the thing, the value and the rule."""

from __future__ import annotations


class ControllerError(Exception):
    """Base of every refusal; `error_code` is Confluent's (HTTP status = error_code // 100)."""

    error_code = 50001

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(ControllerError):
    """Malformed or impossible input: bad names, counts, configs."""

    error_code = 40002


class TopicExistsError(ControllerError):
    error_code = 40002


class InvalidReplicationFactorError(ControllerError):
    """E.g. "replication factor 5 is larger than the 3 live brokers"."""

    error_code = 40002


class InvalidPartitionsError(ControllerError):
    error_code = 40002


class InvalidConfigError(ControllerError):
    error_code = 40002


class UnknownTopicError(ControllerError):
    error_code = 40403


class UnknownPartitionError(ControllerError):
    error_code = 40403


class UnknownBrokerError(ControllerError):
    error_code = 40402


class StaleBrokerEpochError(ControllerError):
    """A heartbeat or request carried a broker epoch the controller no longer knows."""

    error_code = 40002


class StaleEpochError(ControllerError):
    """An ISR change carried a leader or partition epoch that is not the current one."""

    error_code = 40002


class NotControllerError(ControllerError):
    """This node is not (or no longer) the active controller: retry (503, retriable)."""

    error_code = 50003


class InvalidTopicNameError(InvalidRequestError):
    """A topic name outside Kafka's rule, or one that collides with an existing topic."""


class NotPartitionLeaderError(StaleEpochError):
    """An ISR change came from a broker that does not lead the partition (any more)."""


class IneligibleReplicaError(InvalidRequestError):
    """An ISR change named a broker that may not join the ISR (fenced or shutting down)."""
