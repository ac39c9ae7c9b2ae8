"""ReplicaManager.end_offset_for_epoch on a real partition log: the leader answers from its
epoch cache (Kafka's LeaderEpochFileCache.endOffsetFor), checks the current leader epoch,
and only the leader answers."""

from __future__ import annotations

from pathlib import Path

from broker.log.batch import Record, build_batch
from broker.partitions.manager import EpochEndOffset, ReplicaManager
from kraft.controller.records import PartitionChangeRecord
from kraft.protocol.errors import ErrorCode
from tests.unit.api.images import ImageBuilder
from tests.unit.partitions.helpers import single_broker_manager


async def produce(replicas: ReplicaManager, count: int) -> None:
    batch = build_batch([Record(None, b"v%d" % i, (), 1_000) for i in range(count)])
    result = await replicas.produce("t", 0, batch, 1, 5000)
    assert result.error_code is ErrorCode.NONE, result


async def test_the_leader_answers_each_epoch_with_where_it_ended(tmp_path: Path) -> None:
    builder = ImageBuilder()
    builder.broker(1)
    builder.broker(2)
    topic_id = builder.topic("t", [(1, 2)])  # leader 1 in epoch 0
    builder.topic("elsewhere", [(2,)])
    replicas = single_broker_manager(builder, tmp_path)
    replicas._reconcile()
    await produce(replicas, 5)  # offsets 0-4 in epoch 0
    # leadership goes to 2 (epoch 1, nothing written) and back to 1 (epoch 2)
    changes = [
        PartitionChangeRecord(topic_id, 0, leader=2),
        PartitionChangeRecord(topic_id, 0, leader=1),
    ]
    for change in changes:
        builder.apply(change)
    replicas.on_metadata_applied(list(changes), 0)
    replicas._reconcile()
    await produce(replicas, 3)  # offsets 5-7 in epoch 2
    try:

        def ask(epoch: int, current: int = 2) -> EpochEndOffset:
            return replicas.end_offset_for_epoch("t", 0, current, epoch)

        assert ask(0) == EpochEndOffset(ErrorCode.NONE, leader_epoch=0, end_offset=5)
        # epoch 1 never wrote: the largest epoch at or below it is 0, which ended at 5
        assert ask(1) == EpochEndOffset(ErrorCode.NONE, leader_epoch=0, end_offset=5)
        assert ask(2) == EpochEndOffset(ErrorCode.NONE, leader_epoch=2, end_offset=8)
        assert ask(2, current=-1) == ask(2)  # no current epoch: not checked
        assert ask(3) == EpochEndOffset(ErrorCode.NONE)  # newer than any: undefined
        assert ask(-1) == EpochEndOffset(ErrorCode.NONE)
        assert ask(2, current=1).error_code is ErrorCode.FENCED_LEADER_EPOCH
        assert ask(2, current=3).error_code is ErrorCode.UNKNOWN_LEADER_EPOCH
        assert (
            replicas.end_offset_for_epoch("elsewhere", 0, -1, 0).error_code
            is ErrorCode.NOT_LEADER_OR_FOLLOWER
        )
        assert (
            replicas.end_offset_for_epoch("t", 9, -1, 0).error_code
            is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        assert (
            replicas.end_offset_for_epoch("nope", 0, -1, 0).error_code
            is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
    finally:
        await replicas.close()
