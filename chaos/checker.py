"""The checker: a recorded history and the final state in, a verdict out. Pure — no I/O, no
clock — so a saved run can be checked again and every rule can be tested on a small history.

In the spirit of Jepsen's queue and Kafka checkers. Every value is sent once by the workload
(unique per run), so a value names its send: where it sits in the logs and who read it there
tells whether an acknowledged write was lost, written twice, or seen differently by two
readers. Replicas and metadata are compared directly. Each anomaly kind is a constant below;
the verdict keeps a handful of examples per kind, each naming op ids, processes, partitions,
offsets, values and nodes, and counts all of them in its stats.

Topics that were deleted during the run (a delete_topic that did not certainly fail) are left
out of the record checks: a topic recreated under the same name starts again at offset 0 and
its sends could not be told apart from the old ones. The stats count what was left out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.history import Fault, FinalState, Op, ReplicaState

# An acknowledged send whose value is not in the final reads of its partition at its offset.
LOST = "lost"
# A value at more than one (topic, partition, offset) among all reads. Our producer is
# at-least-once (retries, no idempotence yet), so by default this is tolerated, not invalid.
DUPLICATE = "duplicate"
IDEMPOTENT_PROCESS_PREFIX = "kafka-producer"  # chaos.workload.kafka_produce_loop
# Two reads (polls or final reads) seeing different values at one (topic, partition, offset).
INCONSISTENT_OFFSET = "inconsistent_offset"
# One consumer process reading a partition's offsets backwards or skipping some, across its
# polls, except after a poll marked `seek`.
NON_MONOTONIC = "non_monotonic"
# An acknowledged send no poll ever saw, in a partition the final reads do not cover (where
# they do, LOST says more).
NEVER_READ = "never_read"
# A send that failed (type "fail": certainly not done) whose value was read anyway.
FAILED_WRITE_PRESENT = "failed_write_present"
# Replicas of one partition holding different records below their smallest high watermark.
REPLICA_DIVERGENCE = "replica_divergence"
# A partition whose leader is -1 in some node's metadata after the faults healed.
LEADERLESS_AFTER_HEAL = "leaderless_after_heal"
# Nodes whose final metadata differ (leader, leader epoch, ISR, replicas of a partition).
METADATA_DIVERGENCE = "metadata_divergence"

ANOMALY_KINDS = (
    LOST,
    DUPLICATE,
    INCONSISTENT_OFFSET,
    NON_MONOTONIC,
    NEVER_READ,
    FAILED_WRITE_PRESENT,
    REPLICA_DIVERGENCE,
    LEADERLESS_AFTER_HEAL,
    METADATA_DIVERGENCE,
)

MAX_EXAMPLES_PER_KIND = 5
FINAL_READ = "final read"
NO_LEADER = -1

TopicPartition = tuple[str, int]
Position = tuple[str, int, int]  # topic, partition, offset


@dataclass(frozen=True, slots=True)
class Send:
    """One send: its invoke and its completion merged. `outcome` is ok, fail or info; an
    invoke that never completed counts as info (outcome unknown), with `complete_s` None."""

    op_id: int
    process: str
    outcome: str
    topic: str | None
    partition: int | None
    offset: int | None
    value: Any
    invoke_s: float
    complete_s: float | None
    error: str | None = None

    def describe(self) -> str:
        return f"send op {self.op_id} by {self.process} ({self.outcome})"


@dataclass(frozen=True, slots=True)
class Read:
    """One record as one reader saw it; `source` names the reader for examples."""

    topic: str
    partition: int
    offset: int
    value: Any
    source: str


@dataclass(slots=True)
class Verdict:
    """`valid` is true when `anomalies` is empty. `tolerated` holds examples of what was found
    but allowed by the caller (duplicates with `allow_duplicates`), labelled by kind."""

    valid: bool
    anomalies: dict[str, list[str]]
    stats: dict[str, Any]
    tolerated: dict[str, list[str]] = field(default_factory=dict)


class Findings:
    """Anomaly examples by kind, capped, with full counts."""

    def __init__(self) -> None:
        self.examples: dict[str, list[str]] = {}
        self.counts: Counter[str] = Counter()

    def add(self, kind: str, example: str) -> None:
        assert kind in ANOMALY_KINDS, kind
        self.counts[kind] += 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) < MAX_EXAMPLES_PER_KIND:
            examples.append(example)


def check(
    history: Sequence[Op | Fault], final: FinalState, *, allow_duplicates: bool = True
) -> Verdict:
    """Check a run. With `allow_duplicates` (the default: the producer is at-least-once)
    duplicates go to `Verdict.tolerated` instead of `Verdict.anomalies`; stats count them
    either way."""
    ops = [entry for entry in history if isinstance(entry, Op)]
    deleted = deleted_topics(ops)
    sends = [send for send in paired_sends(ops) if send.topic not in deleted]
    polls = [op for op in ops if op.f == "poll" and op.type == "ok" and op.topic not in deleted]
    final_reads = {
        topic: partitions for topic, partitions in final.final_reads.items() if topic not in deleted
    }
    reads = poll_reads(polls) + final_read_records(final_reads)
    findings = Findings()
    stats: dict[str, Any] = base_stats(ops, history, sends, deleted)
    check_acknowledged_sends(sends, polls, final_reads, findings, stats)
    check_duplicates(sends, reads, findings, stats)
    check_inconsistent_offsets(reads, findings)
    check_non_monotonic(polls, findings)
    check_failed_writes_present(sends, reads, findings, stats)
    check_replicas(final.replicas, findings, stats)
    check_metadata(final.metadata, findings)
    stats["records_polled"] = sum(1 for read in reads if read.source != FINAL_READ)
    stats["final_read_records"] = sum(1 for read in reads if read.source == FINAL_READ)
    stats["lost"] = findings.counts[LOST]
    stats["anomaly_counts"] = dict(findings.counts)
    anomalies = dict(findings.examples)
    tolerated: dict[str, list[str]] = {}
    if allow_duplicates and DUPLICATE in anomalies:
        tolerated[DUPLICATE] = anomalies.pop(DUPLICATE)
    return Verdict(valid=not anomalies, anomalies=anomalies, stats=stats, tolerated=tolerated)


# --- the history, reshaped -------------------------------------------------------------


def paired_sends(ops: Iterable[Op]) -> list[Send]:
    """Sends with invoke and completion merged by (process, op_id), in invoke order."""
    invokes: dict[tuple[str, int], Op] = {}
    done: dict[tuple[str, int], Send] = {}
    for op in ops:
        if op.f != "send":
            continue
        key = (op.process, op.op_id)
        if op.type == "invoke":
            invokes[key] = op
        else:
            done[key] = merged_send(invokes.get(key), op)
    for key, invoke in invokes.items():
        if key not in done:
            done[key] = merged_send(invoke, None)
    return sorted(done.values(), key=lambda send: (send.invoke_s, send.op_id))


def merged_send(invoke: Op | None, completion: Op | None) -> Send:
    first = invoke or completion
    assert first is not None
    last = completion or first

    def pick(name: str) -> Any:
        value = getattr(last, name)
        return getattr(first, name) if value is None else value

    return Send(
        op_id=first.op_id,
        process=first.process,
        outcome="info" if completion is None else completion.type,
        topic=pick("topic"),
        partition=pick("partition"),
        offset=last.offset,
        value=pick("value"),
        invoke_s=first.time_s,
        complete_s=None if completion is None else completion.time_s,
        error=last.error,
    )


def deleted_topics(ops: Iterable[Op]) -> set[str]:
    """Topics some delete_topic may have removed: invoked and not certainly failed."""
    attempted: set[tuple[str, int]] = set()
    failed: set[tuple[str, int]] = set()
    topics: dict[tuple[str, int], str] = {}
    for op in ops:
        if op.f != "delete_topic" or op.topic is None:
            continue
        key = (op.process, op.op_id)
        topics[key] = op.topic
        (failed if op.type == "fail" else attempted).add(key)
    return {topics[key] for key in attempted - failed}


def poll_reads(polls: Iterable[Op]) -> list[Read]:
    reads = []
    for op in polls:
        assert op.topic is not None, f"poll op {op.op_id} by {op.process} names no topic"
        source = f"poll op {op.op_id} by {op.process}"
        for partition, offset, value in op.records or []:
            reads.append(Read(op.topic, int(partition), int(offset), value, source))
    return reads


def final_read_records(final_reads: dict[str, dict[int, list[list[Any]]]]) -> list[Read]:
    return [
        Read(topic, int(partition), int(offset), value, FINAL_READ)
        for topic, partitions in final_reads.items()
        for partition, records in partitions.items()
        for offset, value in records
    ]


def where(topic: str | None, partition: int | None, offset: int | None = None) -> str:
    text = f"{topic}/{partition}"
    return text if offset is None else f"{text}@{offset}"


def base_stats(
    ops: list[Op], history: Sequence[Op | Fault], sends: list[Send], deleted: set[str]
) -> dict[str, Any]:
    by_function: dict[str, Counter[str]] = defaultdict(Counter)
    for op in ops:
        by_function[op.f][op.type] += 1
    outcomes = Counter(send.outcome for send in sends)
    faults = Counter(entry.name for entry in history if isinstance(entry, Fault))
    all_sends = sum(1 for op in ops if op.f == "send" and op.type == "invoke")
    return {
        "ops": {function: dict(types) for function, types in sorted(by_function.items())},
        "faults": dict(sorted(faults.items())),
        "sends_acknowledged": outcomes["ok"],
        "sends_failed": outcomes["fail"],
        "sends_indeterminate": outcomes["info"],
        "deleted_topics": sorted(deleted),
        "sends_unchecked_in_deleted_topics": all_sends - len(sends),
    }


# --- acknowledged sends: lost, never read ------------------------------------------------


def check_acknowledged_sends(
    sends: list[Send],
    polls: list[Op],
    final_reads: dict[str, dict[int, list[list[Any]]]],
    findings: Findings,
    stats: dict[str, Any],
) -> None:
    """LOST where the final reads cover the send's partition, NEVER_READ (from polls alone)
    where they do not."""
    final_offsets: dict[TopicPartition, dict[Any, list[int]]] = {}
    for topic, partitions in final_reads.items():
        for partition, records in partitions.items():
            offsets = final_offsets.setdefault((topic, int(partition)), defaultdict(list))
            for offset, value in records:
                offsets[value].append(int(offset))
    polled = {value for op in polls for _, _, value in op.records or []}
    acknowledged = [send for send in sends if send.outcome == "ok"]
    without_position = 0
    never_polled = 0
    for send in acknowledged:
        if send.partition is None or send.offset is None or send.topic is None:
            without_position += 1
            continue
        never_polled += send.value not in polled
        partition_offsets = final_offsets.get((send.topic, send.partition))
        if partition_offsets is not None:
            maybe_lost(send, partition_offsets.get(send.value, []), findings)
        elif send.value not in polled:
            findings.add(
                NEVER_READ,
                f"{send.describe()}: value {send.value!r} acknowledged at "
                f"{where(send.topic, send.partition, send.offset)} was never polled "
                "(no final read of this partition)",
            )
    stats["acknowledged_without_position"] = without_position
    stats["acknowledged_never_polled"] = never_polled
    stats["partitions_with_final_reads"] = len(final_offsets)


def maybe_lost(send: Send, final_offsets: list[int], findings: Findings) -> None:
    if send.offset in final_offsets:
        return
    acknowledged_at = where(send.topic, send.partition, send.offset)
    if final_offsets:
        found = ", ".join(str(offset) for offset in sorted(final_offsets))
        detail = f"is at offset {found} instead"
    else:
        detail = "is not in the final reads"
    findings.add(
        LOST, f"{send.describe()}: value {send.value!r} acknowledged at {acknowledged_at} {detail}"
    )


# --- what the readers saw ------------------------------------------------------------------


def check_duplicates(
    sends: list[Send], reads: list[Read], findings: Findings, stats: dict[str, Any]
) -> None:
    """A value at more than one position. The example says how its send ended: after an
    info (timeout) a retry may well have written it twice; after an ok too, with an
    at-least-once producer whose acknowledgement was lost before a retry."""
    positions: dict[Any, set[Position]] = defaultdict(set)
    for read in reads:
        positions[read.value].add((read.topic, read.partition, read.offset))
    send_of = {send.value: send for send in sends}
    by_outcome: Counter[str] = Counter()
    idempotent = 0
    for value, seen_at in positions.items():
        if len(seen_at) < 2:
            continue
        send = send_of.get(value)
        by_outcome[send.outcome if send else "unknown"] += 1
        idempotent += 1 if send and send.process.startswith(IDEMPOTENT_PROCESS_PREFIX) else 0
        sent = send.describe() if send else "no recorded send"
        at = ", ".join(where(*position) for position in sorted(seen_at))
        findings.add(DUPLICATE, f"value {value!r} ({sent}) read at {len(seen_at)} offsets: {at}")
    stats["duplicates"] = sum(by_outcome.values())
    stats["duplicates_by_send_outcome"] = dict(sorted(by_outcome.items()))
    # Sent once each by an idempotent Kafka producer: retries within its session never write
    # twice (a producer that resets its id after a fatal error may, as Kafka's clients do).
    stats["duplicates_of_idempotent_sends"] = idempotent


def check_inconsistent_offsets(reads: list[Read], findings: Findings) -> None:
    seen: dict[Position, dict[Any, str]] = defaultdict(dict)
    for read in reads:
        seen[(read.topic, read.partition, read.offset)].setdefault(read.value, read.source)
    for position, values in seen.items():
        if len(values) > 1:
            views = "; ".join(f"{value!r} by {source}" for value, source in values.items())
            findings.add(INCONSISTENT_OFFSET, f"{where(*position)} read as {views}")


def check_non_monotonic(polls: list[Op], findings: Findings) -> None:
    """Each consumer process's offsets, per partition, follow on by one from the previous
    record it read there — within a poll and across its polls — unless a poll is marked
    `seek`, which forgets the process's positions in that poll's topic."""
    last_offset: dict[tuple[str, str, int], int] = {}
    for op in sorted(polls, key=lambda op: op.time_s):
        assert op.topic is not None
        if op.seek:
            for key in [key for key in last_offset if key[:2] == (op.process, op.topic)]:
                del last_offset[key]
        for partition, offset, _ in op.records or []:
            key = (op.process, op.topic, int(partition))
            previous = last_offset.get(key)
            last_offset[key] = int(offset)
            if previous is None or int(offset) == previous + 1:
                continue
            how = "skipped ahead" if int(offset) > previous else "went back"
            findings.add(
                NON_MONOTONIC,
                f"{op.process} in poll op {op.op_id} {how} on {where(op.topic, int(partition))}: "
                f"offset {offset} after {previous}",
            )


def check_failed_writes_present(
    sends: list[Send], reads: list[Read], findings: Findings, stats: dict[str, Any]
) -> None:
    """A failed send is certainly not done, so its value must not be read. A value of an
    info send that turns up is fine (counted as `indeterminate_sends_present`)."""
    first_read: dict[Any, Read] = {}
    for read in reads:
        first_read.setdefault(read.value, read)
    indeterminate_present = 0
    for send in sends:
        seen = first_read.get(send.value)
        if seen is None:
            continue
        if send.outcome == "fail":
            findings.add(
                FAILED_WRITE_PRESENT,
                f"send op {send.op_id} by {send.process} failed ({send.error}) but value "
                f"{send.value!r} was read at {where(seen.topic, seen.partition, seen.offset)} "
                f"by {seen.source}",
            )
        indeterminate_present += send.outcome == "info"
    stats["indeterminate_sends_present"] = indeterminate_present


# --- the final state: replicas and metadata ------------------------------------------------


def check_replicas(replicas: list[ReplicaState], findings: Findings, stats: dict[str, Any]) -> None:
    by_partition: dict[TopicPartition, list[ReplicaState]] = defaultdict(list)
    for replica in replicas:
        by_partition[(replica.topic, replica.partition)].append(replica)
    end_offset_differences = []
    for (topic, partition), group in sorted(by_partition.items()):
        group.sort(key=lambda replica: replica.node_id)
        maybe_replicas_diverge(topic, partition, group, findings)
        if len({replica.log_end_offset for replica in group}) > 1:
            ends = ", ".join(f"node {r.node_id} {r.log_end_offset}" for r in group)
            end_offset_differences.append(f"{where(topic, partition)}: {ends}")
    # Informational: a follower still catching up after healing differs here.
    stats["log_end_offset_differences"] = end_offset_differences


def maybe_replicas_diverge(
    topic: str, partition: int, group: list[ReplicaState], findings: Findings
) -> None:
    """Below the smallest high watermark every replica must hold the same record at every
    offset; a replica missing one there diverges too."""
    high_watermark = min(replica.high_watermark for replica in group)
    logs = [{int(offset): value for offset, value in replica.records} for replica in group]
    divergent = [
        offset
        for offset in range(high_watermark)
        if len({repr(log.get(offset, _MISSING)) for log in logs}) > 1
    ]
    if not divergent:
        return
    first = divergent[0]
    views = ", ".join(
        f"node {replica.node_id} {log[first]!r}"
        if first in log
        else f"node {replica.node_id} missing"
        for replica, log in zip(group, logs, strict=True)
    )
    findings.add(
        REPLICA_DIVERGENCE,
        f"{where(topic, partition)}: replicas disagree at {len(divergent)} offsets below high "
        f"watermark {high_watermark}, first at offset {first}: {views}",
    )


_MISSING = object()

PartitionView = tuple[Any, Any, tuple[Any, ...], tuple[Any, ...]]


def partition_views(metadata: dict[str, Any]) -> dict[TopicPartition, PartitionView]:
    """One node's metadata as (leader, leader_epoch, sorted ISR, replicas) per partition.
    Partition keys may be strings (after a JSON round trip)."""
    views = {}
    for topic, partitions in metadata.items():
        for partition, info in partitions.items():
            views[(topic, int(partition))] = (
                info.get("leader"),
                info.get("leader_epoch"),
                tuple(sorted(info.get("isr") or [])),
                tuple(info.get("replicas") or []),
            )
    return views


def check_metadata(metadata: dict[int, dict[str, Any]], findings: Findings) -> None:
    views = {node: partition_views(node_metadata) for node, node_metadata in metadata.items()}
    for node, partitions in sorted(views.items()):
        for (topic, partition), (leader, *_) in sorted(partitions.items()):
            if leader is None or leader == NO_LEADER:
                findings.add(
                    LEADERLESS_AFTER_HEAL,
                    f"{where(topic, partition)} has no leader in node {node}'s metadata",
                )
    every_partition = sorted({key for partitions in views.values() for key in partitions})
    for key in every_partition:
        nodes_by_view: dict[PartitionView | None, list[int]] = defaultdict(list)
        for node, partitions in sorted(views.items()):
            nodes_by_view[partitions.get(key)].append(node)
        if len(nodes_by_view) > 1:
            described = "; ".join(
                f"nodes {nodes}: {describe_view(view)}" for view, nodes in nodes_by_view.items()
            )
            findings.add(METADATA_DIVERGENCE, f"{where(*key)}: {described}")


def describe_view(view: PartitionView | None) -> str:
    if view is None:
        return "absent"
    leader, leader_epoch, isr, replicas = view
    return f"leader {leader} epoch {leader_epoch} isr {list(isr)} replicas {list(replicas)}"
