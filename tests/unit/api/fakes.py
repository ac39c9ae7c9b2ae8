"""A NodeFacade fake for the HTTP route tests, and sample quorum values."""

from __future__ import annotations

from dataclasses import dataclass, field

from broker.api.facade import QuorumDescription, ReplicaDescription
from kraft.raft.types import QuorumStatus, ReplicaStatus, Role

CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qk"
NOW_UNIX_MS = 1_764_000_000_000


def leader_status(**changes: object) -> QuorumStatus:
    """Node 1 leading epoch 7 of a three-voter quorum with one observer (node 4)."""
    values: dict[str, object] = {
        "node_id": 1,
        "role": Role.LEADER,
        "epoch": 7,
        "leader_id": 1,
        "voted_id": 1,
        "high_watermark": 120,
        "log_start_offset": 5,
        "log_end_offset": 130,
        "voters": (1, 2, 3),
        "tick": 1000,
        "replicas": (
            ReplicaStatus(1, True, 130, 1000, 1000),
            ReplicaStatus(2, True, 130, 999, 999),
            ReplicaStatus(3, True, 100, 990, 900),
            ReplicaStatus(4, False, 125, 998, 995),
        ),
    }
    values.update(changes)
    return QuorumStatus(**values)  # type: ignore[arg-type]


def description(
    replicas: tuple[ReplicaDescription, ...] | None = None,
    leader_log_end_offset: int = 130,
) -> QuorumDescription:
    """The leader's view matching leader_status(): node 3 lags by 30 since 5 s ago."""
    if replicas is None:
        replicas = (
            ReplicaDescription(3, True, 100, NOW_UNIX_MS - 100, NOW_UNIX_MS - 5_000),
            ReplicaDescription(4, False, 125, NOW_UNIX_MS - 20, NOW_UNIX_MS - 50),
            ReplicaDescription(1, True, 130, NOW_UNIX_MS, NOW_UNIX_MS),
            ReplicaDescription(2, True, 130, NOW_UNIX_MS - 10, NOW_UNIX_MS - 10),
        )
    return QuorumDescription(
        cluster_id=CLUSTER_ID,
        leader_id=1,
        leader_epoch=7,
        high_watermark=120,
        leader_log_end_offset=leader_log_end_offset,
        voters=(1, 2, 3),
        observers=(4,),
        replicas=replicas,
        now_unix_ms=NOW_UNIX_MS,
    )


@dataclass
class FakeNode:
    """Answers from fixed values; `*_error` fields make the matching call raise."""

    node_id: int = 1
    cluster_id: str = CLUSTER_ID
    ready: bool = True
    status: QuorumStatus = field(default_factory=leader_status)
    quorum: QuorumDescription = field(default_factory=description)
    describe_error: BaseException | None = None
    put_error: BaseException | None = None
    kv: dict[str, str] = field(default_factory=dict)
    next_offset: int = 130
    put_calls: list[tuple[str, str]] = field(default_factory=list)

    def quorum_status(self) -> QuorumStatus:
        return self.status

    def tick_to_unix_ms(self, tick: int) -> int:
        return NOW_UNIX_MS - (self.status.tick - tick) * 10

    async def describe_quorum(self) -> QuorumDescription:
        if self.describe_error is not None:
            raise self.describe_error
        return self.quorum

    def is_ready(self) -> bool:
        return self.ready

    async def kv_put(self, key: str, value: str) -> int:
        self.put_calls.append((key, value))
        if self.put_error is not None:
            raise self.put_error
        self.kv[key] = value
        offset = self.next_offset
        self.next_offset += 1
        return offset

    def kv_get(self, key: str) -> str | None:
        return self.kv.get(key)
