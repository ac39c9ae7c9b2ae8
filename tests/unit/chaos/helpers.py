"""Small histories and final states for the checker and report tests: a healthy run that
every test then changes in one way."""

from __future__ import annotations

from typing import Any

from chaos.history import Fault, FinalState, Op, OpType, ReplicaState

TOPIC = "orders"
NODES = (1, 2, 3)


class HistoryBuilder:
    """Appends operations as a workload would record them: an invoke, then its completion
    `duration_s` later; the clock moves on by `step_s` per operation unless `at` is given."""

    def __init__(self, step_s: float = 0.1) -> None:
        self.entries: list[Op | Fault] = []
        self.clock_s = 0.0
        self.step_s = step_s
        self.next_op_id = 0

    def _times(self, at: float | None, duration_s: float) -> tuple[int, float, float]:
        start = self.clock_s if at is None else at
        self.clock_s = max(self.clock_s, start) + self.step_s
        self.next_op_id += 1
        return self.next_op_id, start, start + duration_s

    def send(
        self,
        value: str,
        offset: int | None = None,
        *,
        outcome: OpType | None = "ok",
        partition: int = 0,
        topic: str = TOPIC,
        process: str = "producer-1",
        at: float | None = None,
        duration_s: float = 0.01,
    ) -> int:
        """A send; `outcome` None leaves it invoked and never completed."""
        op_id, start, end = self._times(at, duration_s)
        self.entries.append(Op(op_id, process, "invoke", "send", start, topic, value=value))
        if outcome is not None:
            acknowledged = outcome == "ok"
            self.entries.append(
                Op(
                    op_id,
                    process,
                    outcome,
                    "send",
                    end,
                    topic,
                    value=value,
                    partition=partition if acknowledged else None,
                    offset=offset if acknowledged else None,
                    error=None if acknowledged else "REQUEST_TIMED_OUT",
                )
            )
        return op_id

    def poll(
        self,
        records: list[tuple[int, int, str]],
        *,
        topic: str = TOPIC,
        process: str = "consumer-1",
        seek: bool = False,
    ) -> int:
        """A poll that read `records`: (partition, offset, value) in the order read."""
        op_id, start, end = self._times(None, 0.005)
        read = [list(record) for record in records]
        self.entries.append(Op(op_id, process, "invoke", "poll", start, topic, seek=seek))
        self.entries.append(Op(op_id, process, "ok", "poll", end, topic, records=read, seek=seek))
        return op_id

    def delete_topic(self, topic: str, outcome: OpType = "ok") -> None:
        op_id, start, end = self._times(None, 0.05)
        self.entries.append(Op(op_id, "admin", "invoke", "delete_topic", start, topic))
        self.entries.append(Op(op_id, "admin", outcome, "delete_topic", end, topic))

    def fault(self, name: str, targets: list[int], start_s: float, end_s: float | None) -> None:
        self.entries.append(Fault(name=name, targets=targets, start_s=start_s, end_s=end_s))


def partition_metadata(leader: int = 1, leader_epoch: int = 3) -> dict[str, Any]:
    return {"leader": leader, "leader_epoch": leader_epoch, "isr": [1, 2, 3], "replicas": [1, 2, 3]}


def settled_final(
    records: list[tuple[int, str]], topic: str = TOPIC, partition: int = 0
) -> FinalState:
    """Every replica holds `records` ([offset, value]) up to its high watermark, the final
    read saw the same, and every node agrees on one leader."""
    end = len(records)
    return FinalState(
        replicas=[
            ReplicaState(node, topic, partition, end, end, [list(r) for r in records])
            for node in NODES
        ],
        metadata={node: {topic: {partition: partition_metadata()}} for node in NODES},
        final_reads={topic: {partition: [list(r) for r in records]}},
    )


def healthy_run() -> tuple[HistoryBuilder, FinalState]:
    """Three acknowledged sends to orders/0 at offsets 0-2, polled in two polls, read back
    the same by the final read and held by all three replicas."""
    history = HistoryBuilder()
    history.send("v0", 0)
    history.send("v1", 1)
    history.send("v2", 2)
    history.poll([(0, 0, "v0"), (0, 1, "v1")])
    history.poll([(0, 2, "v2")])
    return history, settled_final([(0, "v0"), (1, "v1"), (2, "v2")])
