"""The history of a chaos run, in the spirit of Jepsen's: every client operation is recorded
twice, when it is invoked and when it completes (ok, fail — certainly not done — or info —
outcome unknown), with the time on one monotonic clock shared by the workload and the
nemesis. Faults are recorded as windows. After the faults are healed the harness reads the
final state (every replica's records, every node's metadata) for the checker.

On disk: `history.jsonl` (one Op or Fault per line, each with its "kind") and
`final.json` (a FinalState).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

OpType = Literal["invoke", "ok", "fail", "info"]
# send: one record to (topic, partition); poll: records read by one consumer;
# create_topic / delete_topic: admin operations racing the faults.
OpFunction = Literal["send", "poll", "create_topic", "delete_topic"]


@dataclass(frozen=True, slots=True)
class Op:
    """One half of an operation. `process` names the client doing it (one operation at a
    time per process; an invoke and its completion share `process` and `op_id`).

    send: `value` (unique per run) and, on ok, `partition` and `offset`.
    poll: on ok, `records`: [[partition, offset, value], ...] in the order read.
    create_topic / delete_topic: `topic`.

    `seek` (poll only, optional): the consumer's positions were moved before this poll
    (a seek, a restart resuming from committed offsets, a reassignment), so the checker does
    not expect its offsets to follow on from the process's earlier polls."""

    op_id: int
    process: str
    type: OpType
    f: OpFunction
    time_s: float  # since the start of the run, monotonic
    topic: str | None = None
    partition: int | None = None
    value: str | None = None
    offset: int | None = None
    records: list[list[Any]] | None = None
    error: str | None = None
    seek: bool = False
    kind: str = "op"


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault window: `name` (kill, pause, partition, ...), its targets and parameters,
    from `start_s` to `end_s` (None while it lasts)."""

    name: str
    targets: list[int]
    start_s: float
    end_s: float | None
    detail: str = ""
    kind: str = "fault"


@dataclass(slots=True)
class ReplicaState:
    """One replica of one partition after healing, as read from its node's log files."""

    node_id: int
    topic: str
    partition: int
    high_watermark: int
    log_end_offset: int
    records: list[list[Any]] = field(default_factory=list)  # [[offset, value], ...]


@dataclass(slots=True)
class FinalState:
    """What the harness reads once every fault is healed and the cluster has settled."""

    replicas: list[ReplicaState] = field(default_factory=list)
    # node id -> {topic: {partition: {"leader", "leader_epoch", "isr", "replicas"}}}
    metadata: dict[int, dict[str, Any]] = field(default_factory=dict)
    # records read by a final consumer from every partition's leader up to its high
    # watermark: topic -> partition -> [[offset, value], ...]
    final_reads: dict[str, dict[int, list[list[Any]]]] = field(default_factory=dict)


def write_history(path: Path, entries: list[Op | Fault]) -> None:
    with path.open("w") as out:
        for entry in entries:
            out.write(json.dumps(asdict(entry)) + "\n")


def read_history(path: Path) -> list[Op | Fault]:
    entries: list[Op | Fault] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        entries.append(Fault(**data) if data.get("kind") == "fault" else Op(**data))
    return entries


def write_final_state(path: Path, state: FinalState) -> None:
    path.write_text(json.dumps(asdict(state), indent=1))


def read_final_state(path: Path) -> FinalState:
    data = json.loads(path.read_text())
    return FinalState(
        replicas=[ReplicaState(**replica) for replica in data["replicas"]],
        metadata={int(k): v for k, v in data["metadata"].items()},
        final_reads={
            topic: {int(p): records for p, records in partitions.items()}
            for topic, partitions in data["final_reads"].items()
        },
    )
