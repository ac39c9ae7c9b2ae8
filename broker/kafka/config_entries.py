"""The pure part of the config APIs (broker.kafka.configs): Kafka's enums, what a topic or
a broker describes (entries, sources, synonyms, types) and what an AlterConfigs or an
IncrementalAlterConfigs changes on a topic, with no request or I/O in sight.

A topic config's effective value is the one the data plane applies: set on the topic
(DYNAMIC_TOPIC_CONFIG), else the broker's setting of its synonym (STATIC_BROKER_CONFIG when
the node's configuration sets it, DEFAULT_CONFIG when it is the built-in default), else the
data plane's built-in default.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from broker.api.rest_shapes import TOPIC_CONFIG_BROKER_SYNONYMS
from broker.kafka.errors import KafkaError
from broker.log import config as log_defaults
from broker.log.config import MAX_MESSAGE_BYTES
from broker.partitions.manager import ReplicaSettings
from kraft.config import KEYS, KEYS_BY_NAME, LONG_MAX
from kraft.controller.configs import (
    CLEANUP_POLICY,
    DEFAULT_CLEANUP_POLICY,
    DELETE_RETENTION_MS,
    MAX_COMPACTION_LAG_MS,
    MESSAGE_TIMESTAMP_TYPE,
    MIN_CLEANABLE_DIRTY_RATIO,
    MIN_COMPACTION_LAG_MS,
    MIN_INSYNC_REPLICAS,
    RETENTION_BYTES,
    RETENTION_MS,
    SEGMENT_BYTES,
    SEGMENT_MS,
    TOPIC_CONFIG_CHECKS,
    UNCLEAN_LEADER_ELECTION_ENABLE,
)
from kraft.controller.configs import (
    MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES_CONFIG,
)

MAX_CONFIGS_PER_RESOURCE = 1000
SENSITIVE_BROKER_CONFIGS = frozenset({"http.admin.token"})


class ResourceType(enum.IntEnum):
    """Kafka's ConfigResource.Type."""

    UNKNOWN = 0
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8
    CLIENT_METRICS = 16
    GROUP = 32


class ConfigSource(enum.IntEnum):
    """DescribeConfigsResponse's config_source (KIP-226)."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


class ConfigType(enum.IntEnum):
    """DescribeConfigsResponse's config_type (KIP-569, v3+)."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class AlterOp(enum.IntEnum):
    """IncrementalAlterConfigs' config_operation (KIP-339)."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


# -- what a topic or a broker describes ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Synonym:
    name: str
    value: str | None
    source: ConfigSource


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    name: str
    value: str | None
    source: ConfigSource
    read_only: bool
    is_sensitive: bool
    config_type: ConfigType
    documentation: str
    synonyms: tuple[Synonym, ...]


TOPIC_CONFIG_TYPES: dict[str, ConfigType] = {
    CLEANUP_POLICY: ConfigType.LIST,
    MAX_MESSAGE_BYTES_CONFIG: ConfigType.INT,
    MIN_INSYNC_REPLICAS: ConfigType.INT,
    RETENTION_BYTES: ConfigType.LONG,
    RETENTION_MS: ConfigType.LONG,
    SEGMENT_BYTES: ConfigType.INT,
    UNCLEAN_LEADER_ELECTION_ENABLE: ConfigType.BOOLEAN,
    SEGMENT_MS: ConfigType.LONG,
    DELETE_RETENTION_MS: ConfigType.LONG,
    MIN_COMPACTION_LAG_MS: ConfigType.LONG,
    MAX_COMPACTION_LAG_MS: ConfigType.LONG,
    MIN_CLEANABLE_DIRTY_RATIO: ConfigType.DOUBLE,
    MESSAGE_TIMESTAMP_TYPE: ConfigType.STRING,
}
TOPIC_CONFIG_DOCS: dict[str, str] = {
    CLEANUP_POLICY: "delete or compact old segments: delete, compact or compact,delete",
    MAX_MESSAGE_BYTES_CONFIG: "largest record batch the leader accepts, in bytes",
    MIN_INSYNC_REPLICAS: "fewest ISR members for an acks=all write",
    RETENTION_BYTES: "partition size above which old segments are deleted; -1: no limit",
    RETENTION_MS: "segment age before deletion, in ms; -1: keep",
    SEGMENT_BYTES: "size at which a segment rolls",
    UNCLEAN_LEADER_ELECTION_ENABLE: "elect a leader from outside the ISR (may lose data)",
    SEGMENT_MS: "ms between a segment's first batch and an append that rolls it",
    DELETE_RETENTION_MS: "ms a compacted topic keeps a tombstone after its segment's last append",
    MIN_COMPACTION_LAG_MS: "ms after a segment's last append before compaction may clean it",
    MAX_COMPACTION_LAG_MS: "ms after a segment's last append by which compaction cleans it, "
    "whatever the dirty ratio",
    MIN_CLEANABLE_DIRTY_RATIO: "share of the log written since the last compaction that "
    "starts the next",
    MESSAGE_TIMESTAMP_TYPE: "CreateTime: records keep the producer's timestamps; "
    "LogAppendTime: the leader stamps each batch with its append time",
}
# Topic configs whose default no broker key of ours sets: the data plane's built-in value.
BUILT_IN_TOPIC_DEFAULTS: dict[str, str] = {
    CLEANUP_POLICY: DEFAULT_CLEANUP_POLICY,
    MAX_MESSAGE_BYTES_CONFIG: str(MAX_MESSAGE_BYTES),
    SEGMENT_MS: str(log_defaults.SEGMENT_MS),
    DELETE_RETENTION_MS: str(log_defaults.DELETE_RETENTION_MS),
    MIN_COMPACTION_LAG_MS: str(log_defaults.MIN_COMPACTION_LAG_MS),
    MAX_COMPACTION_LAG_MS: str(log_defaults.MAX_COMPACTION_LAG_MS),
    MIN_CLEANABLE_DIRTY_RATIO: str(log_defaults.MIN_CLEANABLE_DIRTY_RATIO),
    MESSAGE_TIMESTAMP_TYPE: "CreateTime",
}
assert set(TOPIC_CONFIG_TYPES) == set(TOPIC_CONFIG_CHECKS), "a type for every topic config"
assert set(TOPIC_CONFIG_DOCS) == set(TOPIC_CONFIG_CHECKS), "a doc for every topic config"

_LIST_BROKER_CONFIGS = frozenset(
    {"process.roles", "controller.quorum.voters", "listeners", "advertised.listeners", "log.dirs"}
)
_INTEGER = re.compile(r"-?[0-9]+")


def broker_config_source(name: str, value: str) -> ConfigSource:
    """STATIC_BROKER_CONFIG when the node's configuration sets `name` to something other
    than the built-in default (a key set to exactly its default reads as DEFAULT_CONFIG:
    the effective configuration does not tell the two apart, and neither matters)."""
    spec = KEYS_BY_NAME.get(name)
    if spec is not None and spec.default == value:
        return ConfigSource.DEFAULT_CONFIG
    return ConfigSource.STATIC_BROKER_CONFIG


def effective_broker_config(
    configured: Mapping[str, str], settings: ReplicaSettings
) -> dict[str, str]:
    """The node's effective configuration. Without it (a node that does not hand it to the
    front end), what the data plane's settings show: the node id and the broker-wide
    defaults of topic configs, which are what a topic's describe needs."""
    if configured:
        return dict(configured)
    flush_messages = settings.flush_interval_messages
    values = {
        "node.id": settings.broker_id,
        "log.dirs": settings.log_dir,
        "min.insync.replicas": settings.min_insync_replicas,
        "replica.lag.time.max.ms": settings.replica_lag_time_max_ms,
        "log.retention.ms": settings.retention_ms,
        "log.retention.bytes": settings.retention_bytes,
        "log.segment.bytes": settings.segment_bytes,
        "log.flush.interval.messages": LONG_MAX if flush_messages is None else flush_messages,
    }
    return {name: str(value) for name, value in values.items()}


def topic_config_entries(
    topic_configs: Mapping[str, str], broker_config: Mapping[str, str]
) -> list[ConfigEntry]:
    """Every known topic config and any other set on the topic, sorted by name; the value
    is the first synonym's (Kafka lists them in order of precedence)."""
    entries = []
    for name in sorted(set(TOPIC_CONFIG_CHECKS) | set(topic_configs)):
        synonyms = _topic_synonyms(name, topic_configs, broker_config)
        first = synonyms[0] if synonyms else Synonym(name, None, ConfigSource.DEFAULT_CONFIG)
        entries.append(
            ConfigEntry(
                name=name,
                value=first.value,
                source=first.source,
                read_only=False,
                is_sensitive=False,
                config_type=TOPIC_CONFIG_TYPES.get(name, ConfigType.STRING),
                documentation=TOPIC_CONFIG_DOCS.get(name, ""),
                synonyms=synonyms,
            )
        )
    return entries


def _topic_synonyms(
    name: str, topic_configs: Mapping[str, str], broker_config: Mapping[str, str]
) -> tuple[Synonym, ...]:
    synonyms = []
    if name in topic_configs:
        synonyms.append(Synonym(name, topic_configs[name], ConfigSource.DYNAMIC_TOPIC_CONFIG))
    broker_name = TOPIC_CONFIG_BROKER_SYNONYMS.get(name)
    if broker_name is not None and broker_name in broker_config:
        value = broker_config[broker_name]
        synonyms.append(Synonym(broker_name, value, broker_config_source(broker_name, value)))
    elif name in BUILT_IN_TOPIC_DEFAULTS:
        default_name = broker_name or name
        synonyms.append(
            Synonym(default_name, BUILT_IN_TOPIC_DEFAULTS[name], ConfigSource.DEFAULT_CONFIG)
        )
    return tuple(synonyms)


def topic_default_value(name: str, broker_config: Mapping[str, str]) -> str | None:
    """What `name` is for a topic that does not set it."""
    synonyms = _topic_synonyms(name, {}, broker_config)
    return synonyms[0].value if synonyms else None


def broker_config_entries(broker_config: Mapping[str, str]) -> list[ConfigEntry]:
    """This node's configuration in KEYS order, all read-only (our broker configs are
    static); secrets are described without their value, as Kafka does."""
    entries = []
    for spec in KEYS:
        if spec.name not in broker_config:
            continue
        value = broker_config[spec.name]
        sensitive = spec.name in SENSITIVE_BROKER_CONFIGS
        source = broker_config_source(spec.name, value)
        shown = None if sensitive else value
        entries.append(
            ConfigEntry(
                name=spec.name,
                value=shown,
                source=source,
                read_only=True,
                is_sensitive=sensitive,
                config_type=_broker_config_type(spec.name, value),
                documentation=spec.doc,
                synonyms=(Synonym(spec.name, shown, source),),
            )
        )
    return entries


def _broker_config_type(name: str, value: str) -> ConfigType:
    if name in SENSITIVE_BROKER_CONFIGS:
        return ConfigType.PASSWORD
    if name in _LIST_BROKER_CONFIGS:
        return ConfigType.LIST
    if name.endswith(".enable"):
        return ConfigType.BOOLEAN
    if _INTEGER.fullmatch(value):
        is_long = name.endswith((".ms", ".bytes", ".messages", ".records"))
        return ConfigType.LONG if is_long else ConfigType.INT
    return ConfigType.STRING


def selected(entries: list[ConfigEntry], keys: Sequence[str] | None) -> list[ConfigEntry]:
    """Kafka's configuration_keys filter: null lists every config, a list only those named
    (an empty list none; an unknown name is left out, not an error)."""
    if keys is None:
        return entries
    wanted = set(keys)
    return [entry for entry in entries if entry.name in wanted]


# -- what an alter changes ------------------------------------------------------------------


class ConfigRefusal(Exception):
    """An alter this broker refuses before asking the controller; carries the code."""

    def __init__(self, code: KafkaError, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class TopicConfigChange:
    """What to ask the controller for: configs to set and configs to delete."""

    set_configs: dict[str, str]
    delete_configs: tuple[str, ...]


def _refuse_duplicate_names(names: Iterable[str]) -> None:
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ConfigRefusal(
            KafkaError.invalid_request, f"config {duplicates[0]!r} appears more than once"
        )


def _refuse_too_many(count: int) -> None:
    if count > MAX_CONFIGS_PER_RESOURCE:
        raise ConfigRefusal(
            KafkaError.invalid_request,
            f"{count} configs for one resource; the limit is {MAX_CONFIGS_PER_RESOURCE}",
        )


def replacement(
    current: Mapping[str, str], requested: Sequence[tuple[str, str | None]]
) -> TopicConfigChange:
    """AlterConfigs: the topic ends with exactly the requested configs (a null value is not
    set); everything else it set goes back to its default."""
    _refuse_too_many(len(requested))
    _refuse_duplicate_names(name for name, _ in requested)
    wanted = {name: value for name, value in requested if value is not None}
    to_set = {name: value for name, value in wanted.items() if current.get(name) != value}
    to_delete = tuple(sorted(name for name in current if name not in wanted))
    return TopicConfigChange(to_set, to_delete)


def incremental_change(
    current: Mapping[str, str],
    operations: Sequence[tuple[str, int, str | None]],
    broker_config: Mapping[str, str],
) -> TopicConfigChange:
    """IncrementalAlterConfigs: each (name, op, value) applied to the topic's configs.
    APPEND and SUBTRACT work on list configs, starting from the default when the topic does
    not set the config (Kafka's ConfigAdminManager)."""
    _refuse_too_many(len(operations))
    _refuse_duplicate_names(name for name, _, _ in operations)
    values = dict(current)
    deleted: set[str] = set()
    for name, op, value in operations:
        operation = _alter_op(name, op)
        if operation is AlterOp.DELETE:
            values.pop(name, None)
            deleted.add(name)
            continue
        if value is None:
            raise ConfigRefusal(
                KafkaError.invalid_config,
                f"config {name!r}: {operation.name} needs a value, not null",
            )
        if operation is AlterOp.SET:
            values[name] = value
        else:
            base = values.get(name, topic_default_value(name, broker_config))
            values[name] = _list_op(name, operation, base, value)
    to_set = {name: value for name, value in values.items() if current.get(name) != value}
    return TopicConfigChange(to_set, tuple(sorted(deleted)))


def _alter_op(name: str, op: int) -> AlterOp:
    try:
        return AlterOp(op)
    except ValueError:
        raise ConfigRefusal(
            KafkaError.invalid_request,
            f"config {name!r}: operation {op} is not SET (0), DELETE (1), APPEND (2) or "
            "SUBTRACT (3)",
        ) from None


def _list_op(name: str, operation: AlterOp, base: str | None, value: str) -> str:
    if TOPIC_CONFIG_TYPES.get(name) is not ConfigType.LIST:
        raise ConfigRefusal(
            KafkaError.invalid_config,
            f"config {name!r} is not a list: {operation.name} {value!r} applies only to "
            f"list configs ({', '.join(_list_configs())})",
        )
    items = [item.strip() for item in (base or "").split(",") if item.strip()]
    given = [item.strip() for item in value.split(",") if item.strip()]
    if operation is AlterOp.APPEND:
        items += [item for item in given if item not in items]
    else:
        items = [item for item in items if item not in given]
    return ",".join(items)


def _list_configs() -> list[str]:
    return sorted(name for name, kind in TOPIC_CONFIG_TYPES.items() if kind is ConfigType.LIST)
