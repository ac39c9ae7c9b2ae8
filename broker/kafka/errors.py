"""Kafka error codes for the front end: kio's full enum (every code Kafka defines), and how
the broker's typed refusals map onto it."""

from __future__ import annotations

from kio.schema.errors import ErrorCode as KafkaError

from broker.api.facade import NoLeaderError
from kraft.controller import errors as controller_errors
from kraft.protocol.errors import ErrorCode

__all__ = ["KafkaError", "admin_error", "from_broker_code"]

# Most specific first: InvalidTopicNameError is an InvalidRequestError.
_CONTROLLER_ERRORS: tuple[tuple[type[controller_errors.ControllerError], KafkaError], ...] = (
    (controller_errors.TopicExistsError, KafkaError.topic_already_exists),
    (controller_errors.InvalidTopicNameError, KafkaError.invalid_topic_exception),
    (controller_errors.InvalidReplicationFactorError, KafkaError.invalid_replication_factor),
    (controller_errors.InvalidPartitionsError, KafkaError.invalid_partitions),
    (controller_errors.InvalidConfigError, KafkaError.invalid_config),
    (controller_errors.UnknownTopicError, KafkaError.unknown_topic_or_partition),
    (controller_errors.UnknownPartitionError, KafkaError.unknown_topic_or_partition),
    (controller_errors.NotControllerError, KafkaError.not_controller),
    (controller_errors.InvalidRequestError, KafkaError.invalid_request),
)


def from_broker_code(code: ErrorCode) -> KafkaError:
    return KafkaError(int(code))


def admin_error(error: Exception) -> tuple[KafkaError, str]:
    """The code and message an admin API answers for a refusal of the controller gateway."""
    if isinstance(error, controller_errors.ControllerError):
        for error_type, code in _CONTROLLER_ERRORS:
            if isinstance(error, error_type):
                return code, error.message
        return KafkaError.unknown_server_error, error.message
    if isinstance(error, NoLeaderError):
        return KafkaError.not_controller, str(error) or "no active controller is known"
    if isinstance(error, TimeoutError):
        return KafkaError.request_timed_out, "the controller did not answer in time"
    raise TypeError(f"not an admin refusal: {error!r}")
