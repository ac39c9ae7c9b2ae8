"""The configuration of one node: server.properties, environment and command-line overrides.

A node reads a Kafka-style `server.properties` file (`key=value` lines, `#`/`!` comments),
then `KRAFT_CFG_<KEY>` environment variables (dots to underscores, upper case, as the Kafka
container images do), then `--override key=value` arguments; a later source wins. Keys have
Kafka's names and meanings (SPEC §2) plus a few of our own (`http.admin.token`, `raft.tick.ms`,
`metadata.log.max.snapshot.interval.records`, `log.level`). An unknown key, or a value that
does not parse, is a ConfigError naming the key, the value and the rule; `NodeConfig.validate()`
then checks how settings relate to each other.

Defaults are named constants below, units in the name. Some are tuned for fast failover of a
cluster on one host and differ from Kafka's on purpose (docs/configuration.md lists them all):
  - controller.quorum.election.timeout.ms 200 (Kafka: 1000)
  - controller.quorum.fetch.timeout.ms 500 (Kafka: 2000)
  - broker.heartbeat.interval.ms 200 (Kafka: 2000)
  - broker.session.timeout.ms 1000 (Kafka: 9000)
  - replica.lag.time.max.ms 5000 (Kafka: 30000)
  - offsets.topic.num.partitions 6 (Kafka: 50; each partition is a log and a replica to
    fetch on every broker, too many for Python brokers sharing a few cores)
On machines with slow disks or across a WAN, raise the first two (see deploy/README.md).

This module only parses and checks; it does no I/O beyond reading the one file it is given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# --- Defaults (STYLE.md §5: named constants, units in the name) ---------------------------

LISTENERS_DEFAULT = "CLIENT://127.0.0.1:9092,RPC://127.0.0.1:9093,HTTP://127.0.0.1:8082"
NUM_PARTITIONS_DEFAULT = 1
DEFAULT_REPLICATION_FACTOR_DEFAULT = 1
MIN_INSYNC_REPLICAS_DEFAULT = 1
UNCLEAN_LEADER_ELECTION_ENABLE_DEFAULT = False
AUTO_CREATE_TOPICS_ENABLE_DEFAULT = True
REPLICA_LAG_TIME_MAX_MS_DEFAULT = 5_000  # Kafka: 30000
ELECTION_TIMEOUT_MS_DEFAULT = 200  # Kafka: 1000
FETCH_TIMEOUT_MS_DEFAULT = 500  # Kafka: 2000
BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT = 200  # Kafka: 2000
BROKER_SESSION_TIMEOUT_MS_DEFAULT = 1_000  # Kafka: 9000
LOG_RETENTION_MS_DEFAULT = 7 * 24 * 3600 * 1000  # Kafka: log.retention.hours=168
LOG_RETENTION_BYTES_DEFAULT = -1  # unlimited
LOG_SEGMENT_BYTES_DEFAULT = 1024 * 1024 * 1024
LOG_FLUSH_INTERVAL_MESSAGES_DEFAULT = 2**63 - 1  # never by count: rely on replication
LOG_CLEANER_BACKOFF_MS_DEFAULT = 15_000  # as Kafka's
SNAPSHOT_INTERVAL_RECORDS_DEFAULT = 20_000
TICK_MS_DEFAULT = 10
LOG_LEVEL_DEFAULT = "info"
OFFSETS_TOPIC_NUM_PARTITIONS_DEFAULT = 6  # Kafka: 50
OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT = 3
GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT = 3_000
GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT = 6_000
GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT = 1_800_000
OFFSETS_RETENTION_MINUTES_DEFAULT = 7 * 24 * 60  # as Kafka's
OFFSETS_RETENTION_CHECK_INTERVAL_MS_DEFAULT = 600_000  # as Kafka's
OFFSETS_RETENTION_MINUTES_MAX = 100 * 365 * 24 * 60

# Bounds on values (STYLE.md §5: bound everything).
TIMEOUT_MS_MAX = 3_600_000
TICK_MS_MAX = 1_000
NODE_ID_MAX = 2**31 - 1
NUM_PARTITIONS_MAX = 100_000
REPLICATION_FACTOR_MAX = 32_767  # Kafka stores it in an int16
LOG_SEGMENT_BYTES_MIN = 14  # Kafka's minimum: one legacy record's overhead
LOG_SEGMENT_BYTES_MAX = 2**31 - 1
SNAPSHOT_INTERVAL_RECORDS_MAX = 1_000_000_000
PORT_MAX = 65_535
LONG_MAX = 2**63 - 1

# Like Kafka, the metadata quorum keeps its log under this directory of metadata.log.dir.
METADATA_PARTITION_DIR_NAME = "__cluster_metadata-0"

ENV_PREFIX = "KRAFT_CFG_"

ROLE_BROKER = "broker"
ROLE_CONTROLLER = "controller"
ROLES = frozenset({ROLE_BROKER, ROLE_CONTROLLER})

LISTENER_CLIENT = "CLIENT"
LISTENER_RPC = "RPC"
LISTENER_HTTP = "HTTP"
LISTENER_NAMES = (LISTENER_CLIENT, LISTENER_RPC, LISTENER_HTTP)
# Kafka's KRaft examples call the quorum listener CONTROLLER; it is our RPC listener.
LISTENER_ALIASES = {"CONTROLLER": LISTENER_RPC}

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
NON_ROUTABLE_HOSTS = frozenset({"0.0.0.0", "::", ""})


class ConfigError(Exception):
    """The configuration is unusable; the message names the key, the value and the rule."""


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One configuration key: its default as written in a properties file (None: required
    or derived, see `doc`) and a one-line description."""

    name: str
    default: str | None
    doc: str
    required: bool = False


def _spec(name: str, default: object, doc: str, required: bool = False) -> KeySpec:
    if default is None:
        return KeySpec(name, None, doc, required)
    # Booleans as a properties file spells them: true/false.
    text = str(default).lower() if isinstance(default, bool) else str(default)
    return KeySpec(name, text, doc, required)


# Every key a node accepts, in the order docs and rendered files list them.
KEYS: tuple[KeySpec, ...] = (
    _spec("process.roles", None, "broker, controller, or broker,controller", required=True),
    _spec("node.id", None, "this node's id, unique in the cluster, >= 0", required=True),
    _spec(
        "controller.quorum.voters",
        None,
        "the voters of the metadata quorum: id@host:rpc_port,...",
        required=True,
    ),
    _spec("listeners", LISTENERS_DEFAULT, "NAME://host:port,... for CLIENT, RPC, HTTP"),
    _spec("advertised.listeners", None, "addresses peers and clients use; default: listeners"),
    _spec("log.dirs", None, "comma-separated data directories", required=True),
    _spec("metadata.log.dir", None, "directory of the metadata quorum; default: first log dir"),
    _spec("num.partitions", NUM_PARTITIONS_DEFAULT, "partitions of an auto-created topic"),
    _spec(
        "default.replication.factor",
        DEFAULT_REPLICATION_FACTOR_DEFAULT,
        "replication factor of an auto-created topic",
    ),
    _spec(
        "min.insync.replicas",
        MIN_INSYNC_REPLICAS_DEFAULT,
        "fewest ISR members for an acks=all write",
    ),
    _spec(
        "unclean.leader.election.enable",
        UNCLEAN_LEADER_ELECTION_ENABLE_DEFAULT,
        "elect a leader from outside the ISR when no ISR member is alive (may lose data)",
    ),
    _spec(
        "auto.create.topics.enable",
        AUTO_CREATE_TOPICS_ENABLE_DEFAULT,
        "create a topic a Kafka Metadata request names that does not exist",
    ),
    _spec(
        "replica.lag.time.max.ms",
        REPLICA_LAG_TIME_MAX_MS_DEFAULT,
        "a follower not caught up for this long leaves the ISR",
    ),
    _spec(
        "controller.quorum.election.timeout.ms",
        ELECTION_TIMEOUT_MS_DEFAULT,
        "most random wait before a voter campaigns; a candidate's retry deadline",
    ),
    _spec(
        "controller.quorum.fetch.timeout.ms",
        FETCH_TIMEOUT_MS_DEFAULT,
        "a voter that hears nothing from its leader for this long starts an election",
    ),
    _spec(
        "broker.heartbeat.interval.ms",
        BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT,
        "how often a broker heartbeats to the active controller",
    ),
    _spec(
        "broker.session.timeout.ms",
        BROKER_SESSION_TIMEOUT_MS_DEFAULT,
        "a broker without a heartbeat for this long is fenced",
    ),
    _spec("log.retention.ms", LOG_RETENTION_MS_DEFAULT, "segment age before deletion; -1: keep"),
    _spec(
        "log.retention.bytes",
        LOG_RETENTION_BYTES_DEFAULT,
        "partition size above which old segments are deleted; -1: no limit",
    ),
    _spec("log.segment.bytes", LOG_SEGMENT_BYTES_DEFAULT, "size at which a segment rolls"),
    _spec(
        "log.cleaner.backoff.ms",
        LOG_CLEANER_BACKOFF_MS_DEFAULT,
        "how often the log cleaner looks for compacted partitions with enough new records",
    ),
    _spec(
        "log.flush.interval.messages",
        LOG_FLUSH_INTERVAL_MESSAGES_DEFAULT,
        "fsync a partition log after this many records",
    ),
    _spec(
        "offsets.topic.num.partitions",
        OFFSETS_TOPIC_NUM_PARTITIONS_DEFAULT,
        "partitions of __consumer_offsets, created when a group coordinator is first looked up",
    ),
    _spec(
        "offsets.topic.replication.factor",
        OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT,
        "replication factor of __consumer_offsets (lowered to the broker count if fewer)",
    ),
    _spec(
        "group.initial.rebalance.delay.ms",
        GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT,
        "how long an empty group waits for more members before its first generation",
    ),
    _spec(
        "group.min.session.timeout.ms",
        GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT,
        "smallest session timeout a group member may ask for",
    ),
    _spec(
        "group.max.session.timeout.ms",
        GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT,
        "largest session timeout a group member may ask for",
    ),
    _spec(
        "offsets.retention.minutes",
        OFFSETS_RETENTION_MINUTES_DEFAULT,
        "a consumer group empty this long loses its committed offsets (KIP-211)",
    ),
    _spec(
        "offsets.retention.check.interval.ms",
        OFFSETS_RETENTION_CHECK_INTERVAL_MS_DEFAULT,
        "how often a group coordinator looks for expired offsets",
    ),
    _spec("http.admin.token", None, "when set, the admin API requires this bearer token"),
    _spec("broker.rack", None, "rack of this broker, for rack-aware replica placement"),
    _spec(
        "metadata.log.max.snapshot.interval.records",
        SNAPSHOT_INTERVAL_RECORDS_DEFAULT,
        "committed metadata records between two snapshots",
    ),
    _spec("raft.tick.ms", TICK_MS_DEFAULT, "length of one tick of the quorum's logical clock"),
    _spec("log.level", LOG_LEVEL_DEFAULT, "debug, info, warning, error or critical"),
)

KEYS_BY_NAME: dict[str, KeySpec] = {spec.name: spec for spec in KEYS}
_KEY_BY_ENV_NAME: dict[str, str] = {
    ENV_PREFIX + name.replace(".", "_").upper(): name for name in KEYS_BY_NAME
}


def env_name(key: str) -> str:
    """The environment variable that sets `key`: node.id -> KRAFT_CFG_NODE_ID."""
    assert key in KEYS_BY_NAME, f"unknown key {key!r}"
    return ENV_PREFIX + key.replace(".", "_").upper()


# --- The parsed configuration ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """The typed, checked configuration of one node. Build it with load_config() or
    config_from_mapping(); `raw` holds every key's effective text, defaults included."""

    raw: dict[str, str]
    process_roles: frozenset[str]
    node_id: int
    voters: dict[int, tuple[str, int]]
    listeners: dict[str, tuple[str, int]]
    advertised_listeners: dict[str, tuple[str, int]]
    log_dirs: tuple[Path, ...]
    metadata_log_dir: Path
    num_partitions: int
    default_replication_factor: int
    min_insync_replicas: int
    unclean_leader_election_enable: bool
    auto_create_topics_enable: bool
    replica_lag_time_max_ms: int
    election_timeout_ms: int
    fetch_timeout_ms: int
    broker_heartbeat_interval_ms: int
    broker_session_timeout_ms: int
    log_retention_ms: int
    log_retention_bytes: int
    log_segment_bytes: int
    log_flush_interval_messages: int
    log_cleaner_backoff_ms: int
    admin_token: str | None
    broker_rack: str | None
    snapshot_interval_records: int
    tick_ms: int
    log_level: str
    offsets_topic_num_partitions: int
    offsets_topic_replication_factor: int
    group_initial_rebalance_delay_ms: int
    group_min_session_timeout_ms: int
    group_max_session_timeout_ms: int
    offsets_retention_minutes: int
    offsets_retention_check_interval_ms: int

    @property
    def is_controller(self) -> bool:
        """A controller is a voter of the metadata quorum."""
        return ROLE_CONTROLLER in self.process_roles

    @property
    def is_broker(self) -> bool:
        return ROLE_BROKER in self.process_roles

    @property
    def voter_ids(self) -> frozenset[int]:
        return frozenset(self.voters)

    def listener(self, name: str) -> tuple[str, int]:
        """(host, port) this node binds for listener `name` (CLIENT, RPC or HTTP)."""
        canonical = _canonical_listener_name(name)
        if canonical not in self.listeners:
            raise ConfigError(f"listeners: no {canonical} listener is configured")
        return self.listeners[canonical]

    def advertised_listener(self, name: str) -> tuple[str, int]:
        """(host, port) that others use to reach listener `name` of this node."""
        canonical = _canonical_listener_name(name)
        if canonical in self.advertised_listeners:
            return self.advertised_listeners[canonical]
        return self.listener(canonical)

    @property
    def client_listener(self) -> tuple[str, int]:
        return self.listener(LISTENER_CLIENT)

    @property
    def rpc_listener(self) -> tuple[str, int]:
        return self.listener(LISTENER_RPC)

    @property
    def http_listener(self) -> tuple[str, int]:
        return self.listener(LISTENER_HTTP)

    @property
    def metadata_partition_dir(self) -> Path:
        """Where the metadata quorum keeps its log, snapshots and quorum-state file."""
        return self.metadata_log_dir / METADATA_PARTITION_DIR_NAME

    @property
    def storage_dirs(self) -> tuple[Path, ...]:
        """Every directory `kraft storage format` writes meta.properties into, no repeats."""
        return tuple(dict.fromkeys((*self.log_dirs, self.metadata_log_dir)))

    def ms_to_ticks(self, duration_ms: int) -> int:
        """Whole ticks covering `duration_ms`, rounded up, at least 1."""
        assert duration_ms >= 0, f"negative duration {duration_ms} ms"
        return max(1, math.ceil(duration_ms / self.tick_ms))

    @property
    def election_timeout_ticks(self) -> int:
        return self.ms_to_ticks(self.election_timeout_ms)

    @property
    def fetch_timeout_ticks(self) -> int:
        return self.ms_to_ticks(self.fetch_timeout_ms)

    def validate(self) -> None:
        """Checks how settings relate; raises ConfigError naming the keys and the rule."""
        self._validate_roles_and_voters()
        self._validate_listeners()
        self._validate_timeouts()
        self._validate_replication()

    def _validate_roles_and_voters(self) -> None:
        if self.is_controller:
            if self.node_id not in self.voters:
                raise ConfigError(
                    f"node.id {self.node_id} is not in controller.quorum.voters "
                    f"{self.raw['controller.quorum.voters']!r}: a node with the controller "
                    "role must be one of the voters"
                )
            voter_port = self.voters[self.node_id][1]
            if LISTENER_RPC not in self.listeners:
                raise ConfigError(
                    f"listeners {self.raw['listeners']!r} has no RPC (or CONTROLLER) "
                    "listener: a controller needs one for the quorum"
                )
            rpc_port = self.listeners[LISTENER_RPC][1]
            if rpc_port != voter_port:
                raise ConfigError(
                    f"controller.quorum.voters gives node {self.node_id} port {voter_port} "
                    f"but its RPC listener port is {rpc_port}: they must be equal"
                )
        elif self.node_id in self.voters:
            raise ConfigError(
                f"node.id {self.node_id} is in controller.quorum.voters but process.roles "
                f"{self.raw['process.roles']!r} lacks controller: only controllers are voters"
            )

    def _validate_listeners(self) -> None:
        for name in (LISTENER_RPC, LISTENER_HTTP):
            if name not in self.listeners:
                raise ConfigError(
                    f"listeners {self.raw['listeners']!r} has no {name} listener: "
                    "every node needs one"
                )
        if self.is_broker and LISTENER_CLIENT not in self.listeners:
            raise ConfigError(
                f"listeners {self.raw['listeners']!r} has no CLIENT listener: "
                "a node with the broker role needs one"
            )
        for name, (host, _port) in self.advertised_listeners.items():
            if name not in self.listeners:
                raise ConfigError(
                    f"advertised.listeners names {name} which is not in listeners "
                    f"{self.raw['listeners']!r}"
                )
            if host in NON_ROUTABLE_HOSTS:
                raise ConfigError(
                    f"advertised.listeners: {name} host {host!r} is not routable; "
                    "set advertised.listeners to an address others can reach"
                )
        ports = [port for _host, port in self.listeners.values() if port != 0]
        if len(ports) != len(set(ports)):
            raise ConfigError(f"listeners {self.raw['listeners']!r}: two listeners share a port")

    def _validate_timeouts(self) -> None:
        if self.election_timeout_ms < 2 * self.tick_ms:
            raise ConfigError(
                f"controller.quorum.election.timeout.ms {self.election_timeout_ms} is less "
                f"than twice raft.tick.ms {self.tick_ms}: it must be at least "
                f"{2 * self.tick_ms}"
            )
        if self.fetch_timeout_ms <= self.election_timeout_ms:
            raise ConfigError(
                f"controller.quorum.fetch.timeout.ms {self.fetch_timeout_ms} must be greater "
                f"than controller.quorum.election.timeout.ms {self.election_timeout_ms}"
            )
        if self.broker_heartbeat_interval_ms < self.tick_ms:
            raise ConfigError(
                f"broker.heartbeat.interval.ms {self.broker_heartbeat_interval_ms} is less "
                f"than raft.tick.ms {self.tick_ms}"
            )
        if self.broker_session_timeout_ms <= self.broker_heartbeat_interval_ms:
            raise ConfigError(
                f"broker.session.timeout.ms {self.broker_session_timeout_ms} must be greater "
                f"than broker.heartbeat.interval.ms {self.broker_heartbeat_interval_ms}"
            )
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms:
            raise ConfigError(
                f"group.min.session.timeout.ms {self.group_min_session_timeout_ms} is larger "
                f"than group.max.session.timeout.ms {self.group_max_session_timeout_ms}"
            )

    def _validate_replication(self) -> None:
        if self.min_insync_replicas > self.default_replication_factor:
            raise ConfigError(
                f"min.insync.replicas {self.min_insync_replicas} is larger than "
                f"default.replication.factor {self.default_replication_factor}: acks=all "
                "writes to auto-created topics could never succeed"
            )
        if len(set(self.log_dirs)) != len(self.log_dirs):
            raise ConfigError(f"log.dirs {self.raw['log.dirs']!r} lists a directory twice")


# --- Loading ---------------------------------------------------------------------------------


def load_config(
    path: Path | None,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] = os.environ,
) -> NodeConfig:
    """Reads `path` (if given), then KRAFT_CFG_* variables of `environ`, then `overrides`
    ("key=value"; a later source wins), parses every value and validates the result."""
    values: dict[str, str] = {}
    if path is not None:
        values.update(read_properties(path))
    values.update(_values_from_environ(environ))
    for override in overrides:
        key, value = _split_override(override)
        values[key] = value
    return config_from_mapping(values)


def config_from_mapping(values: Mapping[str, str]) -> NodeConfig:
    """Builds and validates a NodeConfig from key -> text (what a properties file holds)."""
    for key in values:
        if key not in KEYS_BY_NAME:
            raise ConfigError(f"unknown configuration key {key!r}")
    config = _build(_with_defaults(values))
    config.validate()
    return config


def read_properties(path: Path) -> dict[str, str]:
    """Parses a server.properties file: `key=value` lines; `#` or `!` comments; blank lines;
    whitespace around keys and values trimmed; a trailing backslash continues a line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {str(path)!r}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8: {error}") from error
    return parse_properties(text, source=str(path))


def parse_properties(text: str, source: str = "<properties>") -> dict[str, str]:
    values: dict[str, str] = {}
    pending = ""
    pending_line_number = 0
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not pending and (not stripped or stripped[0] in "#!"):
            continue
        if not pending:
            pending_line_number = line_number
        if stripped.endswith("\\"):
            pending += stripped[:-1]
            continue
        logical = pending + stripped
        pending = ""
        key, separator, value = logical.partition("=")
        if not separator or not key.strip():
            raise ConfigError(
                f"{source} line {pending_line_number}: {logical!r} is not a key=value line"
            )
        values[key.strip()] = value.strip()
    if pending:
        raise ConfigError(f"{source} line {pending_line_number}: continued line never ends")
    return values


def render_properties(values: Mapping[str, str]) -> str:
    """A server.properties text holding `values`, one key=value per line, known keys in
    the order of KEYS, then any other keys sorted (so a caller's mistake stays visible)."""
    ordered = [spec.name for spec in KEYS if spec.name in values]
    ordered += sorted(key for key in values if key not in KEYS_BY_NAME)
    lines = []
    for key in ordered:
        value = values[key]
        assert "\n" not in value, f"value of {key} spans lines"
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def _values_from_environ(environ: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for variable, value in environ.items():
        if not variable.startswith(ENV_PREFIX):
            continue
        key = _KEY_BY_ENV_NAME.get(variable)
        if key is None:
            raise ConfigError(
                f"unknown configuration key in environment variable {variable}: no key "
                f"maps to {variable.removeprefix(ENV_PREFIX)!r}"
            )
        values[key] = value.strip()
    return values


def _split_override(override: str) -> tuple[str, str]:
    key, separator, value = override.partition("=")
    if not separator or not key.strip():
        raise ConfigError(f"override {override!r} is not of the form key=value")
    return key.strip(), value.strip()


def _with_defaults(values: Mapping[str, str]) -> dict[str, str]:
    effective: dict[str, str] = {}
    for spec in KEYS:
        value = values.get(spec.name)
        if value is None or value == "":
            if spec.required:
                raise ConfigError(f"{spec.name} is required ({spec.doc}) but is not set")
            if spec.default is None:
                continue  # derived below, or optional
            value = spec.default
        effective[spec.name] = value
    effective.setdefault("advertised.listeners", effective["listeners"])
    effective.setdefault("metadata.log.dir", effective["log.dirs"].split(",")[0].strip())
    return effective


def _build(raw: dict[str, str]) -> NodeConfig:
    log_dirs = _parse_paths("log.dirs", raw["log.dirs"])
    return NodeConfig(
        raw=raw,
        process_roles=_parse_roles(raw["process.roles"]),
        node_id=_parse_int(raw, "node.id", 0, NODE_ID_MAX),
        voters=_parse_voters(raw["controller.quorum.voters"]),
        listeners=_parse_listeners("listeners", raw["listeners"]),
        advertised_listeners=_parse_listeners("advertised.listeners", raw["advertised.listeners"]),
        log_dirs=log_dirs,
        metadata_log_dir=_parse_paths("metadata.log.dir", raw["metadata.log.dir"], single=True)[0],
        num_partitions=_parse_int(raw, "num.partitions", 1, NUM_PARTITIONS_MAX),
        default_replication_factor=_parse_int(
            raw, "default.replication.factor", 1, REPLICATION_FACTOR_MAX
        ),
        min_insync_replicas=_parse_int(raw, "min.insync.replicas", 1, REPLICATION_FACTOR_MAX),
        unclean_leader_election_enable=_parse_bool(raw, "unclean.leader.election.enable"),
        auto_create_topics_enable=_parse_bool(raw, "auto.create.topics.enable"),
        replica_lag_time_max_ms=_parse_int(raw, "replica.lag.time.max.ms", 1, TIMEOUT_MS_MAX),
        election_timeout_ms=_parse_int(
            raw, "controller.quorum.election.timeout.ms", 1, TIMEOUT_MS_MAX
        ),
        fetch_timeout_ms=_parse_int(raw, "controller.quorum.fetch.timeout.ms", 1, TIMEOUT_MS_MAX),
        broker_heartbeat_interval_ms=_parse_int(
            raw, "broker.heartbeat.interval.ms", 1, TIMEOUT_MS_MAX
        ),
        broker_session_timeout_ms=_parse_int(raw, "broker.session.timeout.ms", 1, TIMEOUT_MS_MAX),
        log_retention_ms=_parse_int(raw, "log.retention.ms", -1, LONG_MAX),
        log_retention_bytes=_parse_int(raw, "log.retention.bytes", -1, LONG_MAX),
        log_segment_bytes=_parse_int(
            raw, "log.segment.bytes", LOG_SEGMENT_BYTES_MIN, LOG_SEGMENT_BYTES_MAX
        ),
        log_flush_interval_messages=_parse_int(raw, "log.flush.interval.messages", 1, LONG_MAX),
        log_cleaner_backoff_ms=_parse_int(raw, "log.cleaner.backoff.ms", 1, TIMEOUT_MS_MAX),
        admin_token=raw.get("http.admin.token") or None,
        broker_rack=raw.get("broker.rack") or None,
        snapshot_interval_records=_parse_int(
            raw, "metadata.log.max.snapshot.interval.records", 1, SNAPSHOT_INTERVAL_RECORDS_MAX
        ),
        tick_ms=_parse_int(raw, "raft.tick.ms", 1, TICK_MS_MAX),
        log_level=_parse_choice(raw, "log.level", LOG_LEVELS),
        offsets_topic_num_partitions=_parse_int(
            raw, "offsets.topic.num.partitions", 1, NUM_PARTITIONS_MAX
        ),
        offsets_topic_replication_factor=_parse_int(
            raw, "offsets.topic.replication.factor", 1, REPLICATION_FACTOR_MAX
        ),
        group_initial_rebalance_delay_ms=_parse_int(
            raw, "group.initial.rebalance.delay.ms", 0, TIMEOUT_MS_MAX
        ),
        group_min_session_timeout_ms=_parse_int(
            raw, "group.min.session.timeout.ms", 1, TIMEOUT_MS_MAX
        ),
        group_max_session_timeout_ms=_parse_int(
            raw, "group.max.session.timeout.ms", 1, TIMEOUT_MS_MAX
        ),
        offsets_retention_minutes=_parse_int(
            raw, "offsets.retention.minutes", 1, OFFSETS_RETENTION_MINUTES_MAX
        ),
        offsets_retention_check_interval_ms=_parse_int(
            raw, "offsets.retention.check.interval.ms", 1, TIMEOUT_MS_MAX
        ),
    )


# --- Value parsers: each error names the key, the value and the rule -------------------------


def _parse_int(raw: Mapping[str, str], key: str, minimum: int, maximum: int) -> int:
    text = raw[key]
    try:
        value = int(text, 10)
    except ValueError:
        raise ConfigError(f"{key} {text!r} is not an integer") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key} {value} is out of range: it must be in [{minimum}, {maximum}]")
    return value


def _parse_bool(raw: Mapping[str, str], key: str) -> bool:
    text = raw[key].lower()
    if text not in ("true", "false"):
        raise ConfigError(f"{key} {raw[key]!r} is not a boolean: use true or false")
    return text == "true"


def _parse_choice(raw: Mapping[str, str], key: str, choices: Sequence[str]) -> str:
    text = raw[key].lower()
    if text not in choices:
        raise ConfigError(f"{key} {raw[key]!r} is not one of {', '.join(choices)}")
    return text


def _parse_roles(text: str) -> frozenset[str]:
    roles = [role.strip().lower() for role in text.split(",")]
    for role in roles:
        if role not in ROLES:
            raise ConfigError(f"process.roles {text!r}: role {role!r} is not broker or controller")
    if len(set(roles)) != len(roles):
        raise ConfigError(f"process.roles {text!r} names a role twice")
    return frozenset(roles)


def _parse_paths(key: str, text: str, single: bool = False) -> tuple[Path, ...]:
    parts = [part.strip() for part in text.split(",")]
    if any(not part for part in parts):
        raise ConfigError(f"{key} {text!r} has an empty directory name")
    if single and len(parts) != 1:
        raise ConfigError(f"{key} {text!r} must name exactly one directory")
    return tuple(Path(part) for part in parts)


def _parse_port(key: str, text: str, entry: str) -> int:
    try:
        port = int(text, 10)
    except ValueError:
        raise ConfigError(f"{key}: port {text!r} of {entry!r} is not an integer") from None
    # Port 0 (the OS picks one) is allowed so that tests can run nodes on free ports.
    if not 0 <= port <= PORT_MAX:
        raise ConfigError(f"{key}: port {port} of {entry!r} is not in [0, {PORT_MAX}]")
    return port


def _split_host_port(key: str, text: str, entry: str) -> tuple[str, int]:
    host, separator, port_text = text.rpartition(":")
    if not separator:
        raise ConfigError(f"{key}: {entry!r} has no :port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # IPv6 literal, e.g. [::1]:9093
    return host, _parse_port(key, port_text, entry)


def _parse_voters(text: str) -> dict[int, tuple[str, int]]:
    key = "controller.quorum.voters"
    voters: dict[int, tuple[str, int]] = {}
    for entry in (part.strip() for part in text.split(",")):
        id_text, separator, address = entry.partition("@")
        if not separator:
            raise ConfigError(f"{key}: {entry!r} is not of the form id@host:port")
        try:
            voter_id = int(id_text, 10)
        except ValueError:
            raise ConfigError(
                f"{key}: voter id {id_text!r} of {entry!r} is not an integer"
            ) from None
        if not 0 <= voter_id <= NODE_ID_MAX:
            raise ConfigError(f"{key}: voter id {voter_id} of {entry!r} is negative or too large")
        if voter_id in voters:
            raise ConfigError(f"{key} {text!r} lists voter {voter_id} twice")
        host, port = _split_host_port(key, address, entry)
        if not host:
            raise ConfigError(f"{key}: {entry!r} has an empty host")
        voters[voter_id] = (host, port)
    return voters


def _canonical_listener_name(name: str) -> str:
    upper = name.strip().upper()
    return LISTENER_ALIASES.get(upper, upper)


def _parse_listeners(key: str, text: str) -> dict[str, tuple[str, int]]:
    listeners: dict[str, tuple[str, int]] = {}
    for entry in (part.strip() for part in text.split(",")):
        name, separator, address = entry.partition("://")
        if not separator:
            raise ConfigError(f"{key}: {entry!r} is not of the form NAME://host:port")
        canonical = _canonical_listener_name(name)
        if canonical not in LISTENER_NAMES:
            raise ConfigError(
                f"{key}: listener name {name!r} of {entry!r} is not one of "
                f"{', '.join(LISTENER_NAMES)} (or CONTROLLER for RPC)"
            )
        if canonical in listeners:
            raise ConfigError(f"{key} {text!r} defines the {canonical} listener twice")
        host, port = _split_host_port(key, address, entry)
        if not host:
            # Kafka binds an empty host to the default interface; we refuse to guess whether
            # loopback or every interface was meant.
            raise ConfigError(
                f"{key}: {entry!r} has an empty host; write 127.0.0.1, 0.0.0.0 or a host name"
            )
        listeners[canonical] = (host, port)
    return listeners
