"""Topic configs: the names Kafka uses and the values each accepts (SPEC §2).

Each known config has a rule; an unknown name or a value that breaks its rule is refused with
an InvalidConfigError naming the key, the value and the rule. Values are stored as given (the
text), once valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from kraft.controller.errors import InvalidConfigError

RETENTION_MS = "retention.ms"
RETENTION_BYTES = "retention.bytes"
SEGMENT_BYTES = "segment.bytes"
CLEANUP_POLICY = "cleanup.policy"
MIN_INSYNC_REPLICAS = "min.insync.replicas"
MAX_MESSAGE_BYTES = "max.message.bytes"
UNCLEAN_LEADER_ELECTION_ENABLE = "unclean.leader.election.enable"
SEGMENT_MS = "segment.ms"
DELETE_RETENTION_MS = "delete.retention.ms"
MIN_COMPACTION_LAG_MS = "min.compaction.lag.ms"
MAX_COMPACTION_LAG_MS = "max.compaction.lag.ms"
MIN_CLEANABLE_DIRTY_RATIO = "min.cleanable.dirty.ratio"
MESSAGE_TIMESTAMP_TYPE = "message.timestamp.type"
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
LOG_APPEND_TIME = "LogAppendTime"

LONG_MAX = 2**63 - 1  # Kafka's long and int ranges
INT_MAX = 2**31 - 1
MIN_SEGMENT_BYTES = 14  # Kafka's: one record batch header fits
CLEANUP_POLICIES = frozenset({"delete", "compact"})
DEFAULT_CLEANUP_POLICY = "delete"  # Kafka's log.cleanup.policy
MAX_CONFIG_VALUE_CHARS = 1024

_INTEGER = re.compile(r"-?[0-9]{1,20}")

# A check returns None when the value is valid, else the rule it breaks (for the message).
Check = Callable[[str, int], str | None]


def _integer_check(minimum: int, maximum: int) -> Check:
    def check(value: str, replication_factor: int) -> str | None:
        rule = f"an integer from {minimum} to {maximum}"
        if _INTEGER.fullmatch(value) is None:
            return rule
        return None if minimum <= int(value) <= maximum else rule

    return check


def _check_min_insync_replicas(value: str, replication_factor: int) -> str | None:
    rule = f"an integer from 1 to the replication factor {replication_factor}"
    if _INTEGER.fullmatch(value) is None:
        return rule
    return None if 1 <= int(value) <= replication_factor else rule


def cleanup_policies(value: str) -> list[str]:
    """The policies a cleanup.policy value lists (`compact,delete` -> compact, delete)."""
    return [policy.strip() for policy in value.split(",")]


def _check_cleanup_policy(value: str, replication_factor: int) -> str | None:
    policies = cleanup_policies(value)
    valid = set(policies) <= CLEANUP_POLICIES and len(set(policies)) == len(policies)
    return None if valid else "delete, compact or compact,delete"


def _check_boolean(value: str, replication_factor: int) -> str | None:
    return None if value.lower() in ("true", "false") else "true or false"


def _check_timestamp_type(value: str, replication_factor: int) -> str | None:
    return None if value in TIMESTAMP_TYPES else " or ".join(TIMESTAMP_TYPES)


_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{0,20})?|\.[0-9]{1,20}")


def _check_ratio(value: str, replication_factor: int) -> str | None:
    rule = "a decimal number from 0 to 1"
    if _DECIMAL.fullmatch(value) is None:
        return rule
    return None if 0 <= float(value) <= 1 else rule


TOPIC_CONFIG_CHECKS: dict[str, Check] = {
    RETENTION_MS: _integer_check(-1, LONG_MAX),
    RETENTION_BYTES: _integer_check(-1, LONG_MAX),
    SEGMENT_BYTES: _integer_check(MIN_SEGMENT_BYTES, INT_MAX),
    CLEANUP_POLICY: _check_cleanup_policy,
    MIN_INSYNC_REPLICAS: _check_min_insync_replicas,
    MAX_MESSAGE_BYTES: _integer_check(0, INT_MAX),
    UNCLEAN_LEADER_ELECTION_ENABLE: _check_boolean,
    SEGMENT_MS: _integer_check(1, LONG_MAX),
    DELETE_RETENTION_MS: _integer_check(0, LONG_MAX),
    MIN_COMPACTION_LAG_MS: _integer_check(0, LONG_MAX),
    MAX_COMPACTION_LAG_MS: _integer_check(1, LONG_MAX),
    MIN_CLEANABLE_DIRTY_RATIO: _check_ratio,
    MESSAGE_TIMESTAMP_TYPE: _check_timestamp_type,
}


def validate_config_name(name: str) -> None:
    if name not in TOPIC_CONFIG_CHECKS:
        known = ", ".join(sorted(TOPIC_CONFIG_CHECKS))
        raise InvalidConfigError(f"unknown topic config {name!r}; known configs: {known}")


def validate_topic_configs(configs: Mapping[str, str], replication_factor: int) -> None:
    """Raises InvalidConfigError for the first (by name) unknown key or invalid value."""
    assert replication_factor >= 1, f"replication factor {replication_factor}"
    for name in sorted(configs):
        validate_config_name(name)
        value = configs[name]
        if not isinstance(value, str) or len(value) > MAX_CONFIG_VALUE_CHARS:
            raise InvalidConfigError(
                f"invalid value {value!r} for config {name!r}: a string of at most "
                f"{MAX_CONFIG_VALUE_CHARS} characters"
            )
        broken_rule = TOPIC_CONFIG_CHECKS[name](value, replication_factor)
        if broken_rule is not None:
            raise InvalidConfigError(
                f"invalid value {value!r} for config {name!r}: must be {broken_rule}"
            )


def validate_topic_config_set(configs: Mapping[str, str]) -> None:
    """Rules across configs, on the set a topic would have (each value already valid):
    Kafka's LogConfig refuses a min.compaction.lag.ms above max.compaction.lag.ms."""
    min_lag, max_lag = configs.get(MIN_COMPACTION_LAG_MS), configs.get(MAX_COMPACTION_LAG_MS)
    if int(min_lag or 0) > int(max_lag or LONG_MAX):
        raise InvalidConfigError(
            f"conflict: {MIN_COMPACTION_LAG_MS}={min_lag or 0} is above "
            f"{MAX_COMPACTION_LAG_MS}={max_lag or LONG_MAX}; a record cannot have to wait "
            "longer before compaction than it may wait at most"
        )


def parse_boolean(value: str) -> bool:
    """A validated boolean config's value."""
    assert value.lower() in ("true", "false"), f"not a validated boolean: {value!r}"
    return value.lower() == "true"
