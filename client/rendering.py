"""Text output of the cluster-administration commands (SPEC §4), as Kafka's and Redpanda's
tools print it. Pure functions of the admin API's answers (Confluent REST v3 shapes), so the
command line and its tests share them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NO_LEADER_TEXT = "none"  # what kafka-topics.sh prints for a partition without a leader
NO_RACK_TEXT = "-"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, each as wide as its widest cell, two spaces apart."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


# --- topics -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionRow:
    """One partition as kafka-topics.sh --describe prints it."""

    partition_id: int
    leader: int | None
    replicas: tuple[int, ...]
    isr: tuple[int, ...]

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)

    @property
    def unavailable(self) -> bool:
        return self.leader is None

    def as_json(self) -> dict[str, Any]:
        return {
            "partition_id": self.partition_id,
            "leader": self.leader,
            "replicas": list(self.replicas),
            "isr": list(self.isr),
        }


def partition_row(partition_id: int, replicas: Sequence[Mapping[str, Any]]) -> PartitionRow:
    """A partition from its KafkaReplica list (in replica order, the preferred leader first)."""
    leaders = [int(r["broker_id"]) for r in replicas if r.get("is_leader")]
    return PartitionRow(
        partition_id=partition_id,
        leader=leaders[0] if leaders else None,
        replicas=tuple(int(r["broker_id"]) for r in replicas),
        isr=tuple(int(r["broker_id"]) for r in replicas if r.get("is_in_sync")),
    )


def _ids(values: Sequence[int]) -> str:
    return ",".join(str(value) for value in values)


def topic_configs_text(configs: Sequence[Mapping[str, Any]]) -> str:
    """The configs set on the topic itself, `k=v,...` sorted by name, as Kafka prints them."""
    own = [c for c in configs if not c.get("is_default") and c.get("value") is not None]
    return ",".join(f"{c['name']}={c['value']}" for c in sorted(own, key=lambda c: c["name"]))


def render_topic_header(topic: Mapping[str, Any], configs: Sequence[Mapping[str, Any]]) -> str:
    topic_id = topic.get("topic_id")
    return (
        f"Topic: {topic.get('topic_name')}\t"
        f"TopicId: {topic_id if topic_id is not None else ''}\t"
        f"PartitionCount: {topic.get('partitions_count')}\t"
        f"ReplicationFactor: {topic.get('replication_factor')}\t"
        f"Configs: {topic_configs_text(configs)}\n"
    )


def render_partition(topic_name: str, row: PartitionRow) -> str:
    leader = NO_LEADER_TEXT if row.leader is None else str(row.leader)
    return (
        f"\tTopic: {topic_name}\tPartition: {row.partition_id}\tLeader: {leader}\t"
        f"Replicas: {_ids(row.replicas)}\tIsr: {_ids(row.isr)}\n"
    )


def render_topic_description(
    topic: Mapping[str, Any],
    configs: Sequence[Mapping[str, Any]],
    rows: Sequence[PartitionRow],
    *,
    filtered: bool,
) -> str:
    """kafka-topics.sh --describe: the topic line, then one line per partition. With a
    partition filter, as Kafka, only the matching partition lines."""
    name = str(topic.get("topic_name"))
    header = "" if filtered else render_topic_header(topic, configs)
    return header + "".join(render_partition(name, row) for row in rows)


def render_topic_list(topics: Sequence[Mapping[str, Any]]) -> str:
    """kafka-topics.sh --list: one name per line, sorted."""
    return "".join(f"{name}\n" for name in sorted(str(t.get("topic_name")) for t in topics))


# --- consumer groups ----------------------------------------------------------------------------

GROUP_DESCRIBE_HEADERS = (
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "CONSUMER-ID",
    "HOST",
    "CLIENT-ID",
)


def render_group_list(groups: Sequence[Mapping[str, Any]]) -> str:
    """kafka-consumer-groups.sh --list: one group id per line, sorted."""
    return "".join(
        f"{g}\n" for g in sorted(str(group.get("consumer_group_id")) for group in groups)
    )


def _offset_text(value: Any) -> str:
    return "-" if value is None or (isinstance(value, int) and value < 0) else str(value)


def render_group_description(group: Mapping[str, Any], lags: Sequence[Mapping[str, Any]]) -> str:
    """kafka-consumer-groups.sh --describe: a state line, then one row per partition. The
    host of a member is not known to the brokers yet: "-"."""
    group_id = str(group.get("consumer_group_id"))
    header = f"Consumer group '{group_id}' is {group.get('state')}.\n\n"
    rows = [
        (
            group_id,
            str(lag.get("topic_name")),
            str(lag.get("partition_id")),
            _offset_text(lag.get("current_offset")),
            _offset_text(lag.get("log_end_offset")),
            _offset_text(lag.get("lag")),
            str(lag.get("consumer_id") or "-"),
            "-",
            str(lag.get("client_id") or "-"),
        )
        for lag in sorted(
            lags, key=lambda item: (str(item.get("topic_name")), int(item.get("partition_id", 0)))
        )
    ]
    return header + render_table(GROUP_DESCRIBE_HEADERS, rows)


# --- brokers and the cluster ------------------------------------------------------------------


def broker_status(broker: Mapping[str, Any]) -> str:
    if broker.get("is_in_controlled_shutdown"):
        return "shutting down"
    if broker.get("is_fenced"):
        return "fenced"
    return "active"


def _address(broker: Mapping[str, Any]) -> str:
    host, port = broker.get("host"), broker.get("port")
    return "-" if host is None or port is None else f"{host}:{port}"


def _rack(broker: Mapping[str, Any]) -> str:
    rack = broker.get("rack")
    return NO_RACK_TEXT if rack is None else str(rack)


def render_broker_list(brokers: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [str(b.get("broker_id")), _address(b), _rack(b), broker_status(b)]
        for b in sorted(brokers, key=lambda b: int(b.get("broker_id", 0)))
    ]
    return render_table(("ID", "HOST:PORT", "RACK", "STATUS"), rows)


def controller_id(cluster: Mapping[str, Any]) -> int | None:
    """The controller's broker id, the last segment of the cluster's `controller` link."""
    link = cluster.get("controller")
    if not isinstance(link, Mapping):
        return None
    related = str(link.get("related", ""))
    tail = related.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def render_cluster_info(cluster: Mapping[str, Any], brokers: Sequence[Mapping[str, Any]]) -> str:
    """As `rpk cluster info`: the cluster id, then the brokers, the controller marked `*`."""
    controller = controller_id(cluster)
    rows = []
    for broker in sorted(brokers, key=lambda b: int(b.get("broker_id", 0))):
        broker_id = int(broker.get("broker_id", 0))
        marker = "*" if broker_id == controller else ""
        rows.append(
            [
                f"{broker_id}{marker}",
                "-" if broker.get("host") is None else str(broker.get("host")),
                "-" if broker.get("port") is None else str(broker.get("port")),
                _rack(broker),
                broker_status(broker),
            ]
        )
    return f"CLUSTER\n=======\n{cluster.get('cluster_id')}\n\nBROKERS\n=======\n" + render_table(
        ("ID", "HOST", "PORT", "RACK", "STATUS"), rows
    )
