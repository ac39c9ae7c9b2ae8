"""Builders shared by the replication unit tests."""

from __future__ import annotations

from broker.replication import Acks, FetchAnswer, PartitionLeaderState
from kraft.controller.image import PartitionRegistration
from tests.unit.replication.memory_log import MemoryLog, Rec

LAG_TIME_MS = 1_000


def registration(
    isr: tuple[int, ...] = (1, 2, 3),
    leader: int = 1,
    leader_epoch: int = 1,
    partition_epoch: int = 1,
    replicas: tuple[int, ...] = (1, 2, 3),
) -> PartitionRegistration:
    return PartitionRegistration(
        topic_id="topic-id",
        partition_id=0,
        replicas=replicas,
        isr=isr,
        leader=leader,
        leader_epoch=leader_epoch,
        partition_epoch=partition_epoch,
    )


def log_of(*epochs: int) -> MemoryLog:
    """A log with one record per epoch given, in order."""
    return MemoryLog([Rec(epoch, f"{offset}@{epoch}") for offset, epoch in enumerate(epochs)])


class LeaderFixture:
    """A leader state over an in-memory log, driven as its shell would."""

    def __init__(
        self,
        log: MemoryLog,
        isr: tuple[int, ...] = (1, 2, 3),
        leader_epoch: int = 1,
        high_watermark: int = 0,
        now_ms: int = 0,
        replicas: tuple[int, ...] = (1, 2, 3),
    ) -> None:
        self.log = log
        self.log.assign_epoch(leader_epoch)
        self.state = PartitionLeaderState(
            1,
            registration(isr=isr, leader_epoch=leader_epoch, replicas=replicas),
            log.log_end_offset,
            high_watermark,
            now_ms,
            replica_lag_time_max_ms=LAG_TIME_MS,
        )

    def append(self, count: int = 1) -> int:
        """Appends count records in the leader epoch; returns the last offset."""
        offset = -1
        for _ in range(count):
            offset = self.log.append(Rec(self.state.leader_epoch, f"r{self.log.log_end_offset}"))
        self.state.on_local_append(self.log.log_end_offset)
        return offset

    def produce(self, acks: Acks, count: int = 1, min_insync_replicas: int = 2) -> int | None:
        last_offset = self.append(count)
        return self.state.register_pending_produce(last_offset, acks, min_insync_replicas)

    def fetch(
        self,
        replica_id: int,
        fetch_offset: int,
        last_fetched_epoch: int | None = None,
        now_ms: int = 0,
        replica_epoch: int = -1,
    ) -> FetchAnswer:
        epoch = self.state.leader_epoch if last_fetched_epoch is None else last_fetched_epoch
        if fetch_offset == 0 and last_fetched_epoch is None:
            epoch = -1
        return self.state.on_fetch(
            replica_id,
            fetch_offset,
            epoch,
            self.log.log_end_offset,
            now_ms,
            current_leader_epoch=self.state.leader_epoch,
            end_offset_for_epoch=self.log.end_offset_for_epoch,
            replica_epoch=replica_epoch,
        )
