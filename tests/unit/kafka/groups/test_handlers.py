"""The consumer-group APIs through parse/respond, served by a real GroupCoordinator over an
in-memory offsets log (produce appends, fetch reads back) and the fake controller: the offsets
topic is created on the first FindCoordinator, a member joins, syncs, commits and fetches,
and a coordinator that loads the log afterwards sees the same group and offsets."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode as KafkaError

from broker.kafka.apis import ApiKey
from broker.kafka.framing import frame
from broker.kafka.groups.coordinator import CoordinatorSettings, GroupCoordinator
from broker.kafka.groups.model import GroupSettings
from broker.kafka.groups.offsets_topic import OFFSETS_TOPIC, PartitionContents, partition_for
from broker.kafka.server import KafkaServer
from broker.log.batch import assign_offsets, iter_batches, iter_records
from broker.partitions.manager import (
    OffsetLookup,
    PartitionFetch,
    PartitionFetchResult,
    ProduceResult,
)
from kraft.protocol.errors import ErrorCode
from tests.unit.kafka.helpers import (
    FakeData,
    Fixture,
    KafkaImageBuilder,
    decode_response,
    encode_request,
    nested,
    request,
)

OFFSETS_PARTITIONS = 6
SETTINGS = CoordinatorSettings(
    offsets_topic_partitions=OFFSETS_PARTITIONS,
    offsets_topic_replication_factor=3,
    group=GroupSettings(
        initial_rebalance_delay_ms=0, min_session_timeout_ms=1_000, max_session_timeout_ms=60_000
    ),
)


@dataclass
class OffsetsLog(FakeData):
    """FakeData whose offsets topic is a real in-memory log: batches get offsets on produce
    and are read back by fetch; `failure` makes produces to it fail with that code, and
    while `hold` is set a produce appends, then waits for it before it is answered (as an
    acks=all write waits for its followers)."""

    batches: dict[int, list[bytes]] = field(default_factory=dict)
    ends: dict[int, int] = field(default_factory=dict)
    failure: ErrorCode | None = None
    hold: asyncio.Event | None = None

    async def produce(
        self, topic: str, partition_id: int, records: bytes, acks: int, timeout_ms: int
    ) -> ProduceResult:
        if topic != OFFSETS_TOPIC:
            return await super().produce(topic, partition_id, records, acks, timeout_ms)
        assert acks == -1, "the coordinator writes with acks=all"
        if self.failure is not None:
            return ProduceResult(self.failure, "refused by the test")
        base = self.ends.get(partition_id, 0)
        (batch,) = iter_batches(records)
        self.batches.setdefault(partition_id, []).append(assign_offsets(records, base, 3))
        self.ends[partition_id] = base + batch.records_count
        if self.hold is not None:
            await self.hold.wait()
        return ProduceResult(ErrorCode.NONE, base_offset=base, log_start_offset=0, leader_id=1)

    async def fetch(
        self,
        replica_id: int,
        replica_epoch: int,
        requests: Sequence[PartitionFetch],
        max_wait_ms: int,
        min_bytes: int,
        max_bytes: int,
    ) -> list[PartitionFetchResult]:
        (wanted,) = requests
        assert wanted.topic == OFFSETS_TOPIC
        end = self.ends.get(wanted.partition, 0)
        records = b"".join(
            batch
            for batch in self.batches.get(wanted.partition, [])
            if next(iter_batches(batch)).base_offset >= wanted.fetch_offset
        )
        return [
            PartitionFetchResult(
                wanted.topic,
                wanted.partition,
                ErrorCode.NONE,
                high_watermark=end,
                log_start_offset=0,
                log_end_offset=end,
                records=records,
            )
        ]

    def list_offset(self, topic: str, partition_id: int, timestamp_ms: int) -> OffsetLookup:
        return OffsetLookup(ErrorCode.NONE, offset=0, leader_id=1, leader_epoch=3)

    def contents(self, partition_id: int) -> PartitionContents:
        contents = PartitionContents()
        for batch_bytes in self.batches.get(partition_id, []):
            for batch in iter_batches(batch_bytes):
                for record in iter_records(batch):
                    contents.apply(record.key, record.value)
        return contents


def groups_fixture(
    log: OffsetsLog | None = None,
    settings: CoordinatorSettings = SETTINGS,
    wall_clock: list[int] | None = None,
    clock: list[int] | None = None,
) -> tuple[Fixture, GroupCoordinator, OffsetsLog]:
    """Brokers 1, 2, 3 live; "orders" with 3 partitions; a coordinator on broker 1 (whose
    wall and monotonic clocks read `wall_clock[0]` and `clock[0]` when given)."""
    builder = KafkaImageBuilder()
    for broker_id in (1, 2, 3):
        builder.broker(broker_id)
    builder.topic("orders", [(1, 2, 3), (2, 3, 1), (3, 1, 2)])
    log = log if log is not None else OffsetsLog()
    fixture = Fixture(builder=builder, data=log)
    clocks: dict[str, Any] = {}
    if wall_clock is not None:
        clocks["wall_clock_ms"] = lambda: wall_clock[0]
    if clock is not None:
        clocks["clock_ms"] = lambda: clock[0]
    coordinator = GroupCoordinator(
        1, settings, data=log, admin=fixture.admin, image=lambda: builder.image, **clocks
    )
    fixture.groups = coordinator
    return fixture, coordinator, log


def group_led_by(leader: int, prefix: str = "group") -> str:
    """A group id whose offsets partition broker `leader` leads (FakeAdmin puts partition p's
    leader on broker p % 3 + 1)."""
    return next(
        name
        for n in range(1_000)
        if partition_for(name := f"{prefix}-{n}", OFFSETS_PARTITIONS) % 3 + 1 == leader
    )


async def loaded(fixture: Fixture, coordinator: GroupCoordinator, group: str) -> None:
    """FindCoordinator (which creates the offsets topic), then the loading it starts."""
    body = await fixture.call(ApiKey.FIND_COORDINATOR, 3, key=group, key_type=0)
    assert body.error_code is KafkaError.none
    coordinator.reconcile()
    while coordinator.loading:
        await asyncio.sleep(0)


def join_fields(
    version: int,
    group: str,
    member_id: str,
    metadata: bytes = b"sub",
    protocol_type: str = "consumer",
) -> dict[str, Any]:
    protocol = nested(
        ApiKey.JOIN_GROUP, version, "JoinGroupRequestProtocol", name="range", metadata=metadata
    )
    return {
        "group_id": group,
        "session_timeout": datetime.timedelta(milliseconds=10_000),
        "rebalance_timeout": datetime.timedelta(milliseconds=30_000),
        "member_id": member_id,
        "protocol_type": protocol_type,
        "protocols": (protocol,),
    }


async def join(
    fixture: Fixture,
    coordinator: GroupCoordinator,
    group: str,
    version: int = 5,
    metadata: bytes = b"sub",
    protocol_type: str = "consumer",
) -> Any:
    """KIP-394's two JoinGroups; the second waits for the join phase, which a tick ends."""
    fields = {"metadata": metadata, "protocol_type": protocol_type}
    first = await fixture.call(
        ApiKey.JOIN_GROUP, version, **join_fields(version, group, "", **fields)
    )
    assert first.error_code is KafkaError.member_id_required
    task = asyncio.ensure_future(
        fixture.call(
            ApiKey.JOIN_GROUP, version, **join_fields(version, group, first.member_id, **fields)
        )
    )
    while not task.done():
        await asyncio.sleep(0)
        coordinator.tick()
    return task.result()


async def sync(fixture: Fixture, group: str, member_id: str, generation: int) -> Any:
    assignment = nested(
        ApiKey.SYNC_GROUP,
        3,
        "SyncGroupRequestAssignment",
        member_id=member_id,
        assignment=b"orders:0,1,2",
    )
    return await fixture.call(
        ApiKey.SYNC_GROUP,
        3,
        group_id=group,
        generation_id=generation,
        member_id=member_id,
        group_instance_id=None,
        assignments=(assignment,),
    )


async def commit(
    fixture: Fixture,
    group: str,
    member_id: str,
    generation: int,
    offsets: dict[tuple[str, int], int],
    metadata: str = "",
) -> dict[tuple[str, int], KafkaError]:
    topics = {}
    for (topic, partition), offset in offsets.items():
        topics.setdefault(topic, []).append(
            nested(
                ApiKey.OFFSET_COMMIT,
                8,
                "OffsetCommitRequestPartition",
                partition_index=partition,
                committed_offset=offset,
                committed_leader_epoch=3,
                committed_metadata=metadata,
            )
        )
    body = await fixture.call(
        ApiKey.OFFSET_COMMIT,
        8,
        group_id=group,
        generation_id_or_member_epoch=generation,
        member_id=member_id,
        group_instance_id=None,
        topics=tuple(
            nested(
                ApiKey.OFFSET_COMMIT,
                8,
                "OffsetCommitRequestTopic",
                name=name,
                partitions=tuple(parts),
            )
            for name, parts in topics.items()
        ),
    )
    return {(t.name, p.partition_index): p.error_code for t in body.topics for p in t.partitions}


async def fetch_offsets(
    fixture: Fixture, group: str, version: int = 7
) -> tuple[KafkaError, dict[tuple[str, int], int]]:
    body = await fixture.call(
        ApiKey.OFFSET_FETCH, version, group_id=group, topics=None, require_stable=False
    )
    offsets = {
        (t.name, p.partition_index): p.committed_offset for t in body.topics for p in t.partitions
    }
    return body.error_code, offsets


# -- FindCoordinator ---------------------------------------------------------------------------


async def test_find_coordinator_creates_the_offsets_topic_and_names_the_partition_leader() -> None:
    fixture, _, _ = groups_fixture()
    group = group_led_by(2)
    body = await fixture.call(ApiKey.FIND_COORDINATOR, 3, key=group, key_type=0)
    assert fixture.admin.calls == [
        (
            "create_topic",
            OFFSETS_TOPIC,
            OFFSETS_PARTITIONS,
            3,
            {
                "cleanup.policy": "compact",
                "min.insync.replicas": "2",
                "retention.ms": "-1",
                "segment.bytes": "104857600",
            },
        )
    ]
    assert (body.error_code, body.node_id, body.host, body.port) == (
        KafkaError.none,
        2,
        "127.0.0.1",
        9192,
    )
    again = await fixture.call(ApiKey.FIND_COORDINATOR, 0, key=group)
    assert again.node_id == 2
    assert len(fixture.admin.calls) == 1, "created once"


async def test_find_coordinator_v4_answers_each_key_and_refuses_other_key_types() -> None:
    fixture, _, _ = groups_fixture()
    groups = (group_led_by(1), group_led_by(3), "")
    body = await fixture.call(ApiKey.FIND_COORDINATOR, 4, key_type=0, coordinator_keys=groups)
    answers = [(c.key, c.error_code, c.node_id) for c in body.coordinators]
    assert answers == [
        (groups[0], KafkaError.none, 1),
        (groups[1], KafkaError.none, 3),
        ("", KafkaError.invalid_group_id, -1),
    ]
    transactions = await fixture.call(
        ApiKey.FIND_COORDINATOR, 4, key_type=1, coordinator_keys=("t",)
    )
    assert transactions.coordinators[0].error_code is KafkaError.invalid_request


async def test_find_coordinator_answers_coordinator_not_available_when_creation_is_refused() -> (
    None
):
    fixture = Fixture()  # broker 3 is fenced: RF 3 cannot be placed on the 2 live brokers
    fixture.groups = GroupCoordinator(
        1, SETTINGS, data=fixture.data, admin=fixture.admin, image=lambda: fixture.builder.image
    )
    body = await fixture.call(ApiKey.FIND_COORDINATOR, 3, key="g", key_type=0)
    assert body.error_code is KafkaError.coordinator_not_available
    assert "replication factor 3" in body.error_message


# -- which broker answers ----------------------------------------------------------------------


async def test_a_group_coordinated_elsewhere_answers_not_coordinator() -> None:
    fixture, coordinator, _ = groups_fixture()
    elsewhere = group_led_by(2)
    await loaded(fixture, coordinator, elsewhere)
    body = await fixture.call(
        ApiKey.HEARTBEAT,
        3,
        group_id=elsewhere,
        generation_id=1,
        member_id="m",
        group_instance_id=None,
    )
    assert body.error_code is KafkaError.not_coordinator


async def test_a_group_whose_partition_is_not_loaded_yet_answers_load_in_progress() -> None:
    fixture, _, _ = groups_fixture()
    here = group_led_by(1)
    await fixture.call(ApiKey.FIND_COORDINATOR, 3, key=here, key_type=0)
    error, _ = await fetch_offsets(fixture, here)
    assert error is KafkaError.coordinator_load_in_progress


async def test_a_heartbeat_while_the_group_loads_is_answered_none() -> None:
    """Kafka's handleHeartbeat answers NONE blindly while loading: aiokafka's consumer dies
    on COORDINATOR_LOAD_IN_PROGRESS from a heartbeat when its coordinator moves."""
    fixture, _, _ = groups_fixture()
    here = group_led_by(1)
    await fixture.call(ApiKey.FIND_COORDINATOR, 3, key=here, key_type=0)
    body = await fixture.call(
        ApiKey.HEARTBEAT, 3, group_id=here, generation_id=1, member_id="m", group_instance_id=None
    )
    assert body.error_code is KafkaError.none


# -- a member's life ---------------------------------------------------------------------------


async def test_join_sync_commit_and_fetch_and_a_new_coordinator_loads_them_from_the_log() -> None:
    fixture, coordinator, log = groups_fixture()
    group = group_led_by(1)
    await loaded(fixture, coordinator, group)
    joined = await join(fixture, coordinator, group)
    assert joined.error_code is KafkaError.none
    assert (joined.generation_id, joined.protocol_name, joined.leader) == (
        1,
        "range",
        joined.member_id,
    )
    assert [(m.member_id, m.metadata) for m in joined.members] == [(joined.member_id, b"sub")]
    synced = await sync(fixture, group, joined.member_id, 1)
    assert (synced.error_code, synced.assignment) == (KafkaError.none, b"orders:0,1,2")
    errors = await commit(
        fixture, group, joined.member_id, 1, {("orders", 0): 17, ("orders", 2): 5}
    )
    assert set(errors.values()) == {KafkaError.none}
    assert await fetch_offsets(fixture, group) == (
        KafkaError.none,
        {("orders", 0): 17, ("orders", 2): 5},
    )
    partition = partition_for(group, OFFSETS_PARTITIONS)
    stored = log.contents(partition)
    assert {k: v.offset for k, v in stored.offsets[group].items()} == {
        ("orders", 0): 17,
        ("orders", 2): 5,
    }
    assert stored.groups[group].members[0].assignment == b"orders:0,1,2"

    successor_fixture, successor, _ = groups_fixture(log)  # another broker, the same log
    await loaded(successor_fixture, successor, group)
    assert await fetch_offsets(successor_fixture, group) == (
        KafkaError.none,
        {("orders", 0): 17, ("orders", 2): 5},
    )
    body = await successor_fixture.call(
        ApiKey.DESCRIBE_GROUPS, 5, groups=(group,), include_authorized_operations=False
    )
    (described,) = body.groups
    assert (described.group_state, described.protocol_data) == ("Stable", "range")
    assert [(m.member_id, m.member_assignment) for m in described.members] == [
        (joined.member_id, b"orders:0,1,2")
    ]
    beat = await successor_fixture.call(
        ApiKey.HEARTBEAT,
        3,
        group_id=group,
        generation_id=1,
        member_id=joined.member_id,
        group_instance_id=None,
    )
    assert beat.error_code is KafkaError.none  # the member keeps its generation


async def test_a_commit_that_is_not_stored_is_not_answered_as_done_nor_applied() -> None:
    fixture, coordinator, log = groups_fixture()
    group = group_led_by(1)
    await loaded(fixture, coordinator, group)
    log.failure = ErrorCode.NOT_ENOUGH_REPLICAS
    errors = await commit(fixture, group, "", -1, {("orders", 0): 9})
    assert errors == {("orders", 0): KafkaError.coordinator_not_available}
    assert await fetch_offsets(fixture, group) == (KafkaError.none, {})


async def test_commit_refusals_name_each_partition() -> None:
    fixture, coordinator, _ = groups_fixture()
    group = group_led_by(1)
    await loaded(fixture, coordinator, group)
    errors = await commit(
        fixture, group, "", -1, {("orders", 0): 1, ("orders", 7): 1, ("nope", 0): 1}
    )
    assert errors == {
        ("orders", 0): KafkaError.none,
        ("orders", 7): KafkaError.unknown_topic_or_partition,
        ("nope", 0): KafkaError.unknown_topic_or_partition,
    }
    too_long = await commit(fixture, group, "", -1, {("orders", 1): 1}, metadata="x" * 4097)
    assert too_long == {("orders", 1): KafkaError.offset_metadata_too_large}
    member_of_nothing = await commit(fixture, group, "ghost", 3, {("orders", 1): 1})
    assert member_of_nothing == {("orders", 1): KafkaError.unknown_member_id}
    no_group = await commit(fixture, "", "", -1, {("orders", 1): 1})
    assert no_group == {("orders", 1): KafkaError.invalid_group_id}


async def test_leave_group_answers_each_member_from_v3_and_the_one_member_before() -> None:
    fixture, coordinator, _ = groups_fixture()
    group = group_led_by(1)
    await loaded(fixture, coordinator, group)
    joined = await join(fixture, coordinator, group)
    members = (
        nested(
            ApiKey.LEAVE_GROUP,
            5,
            "MemberIdentity",
            member_id=joined.member_id,
            group_instance_id=None,
        ),
        nested(ApiKey.LEAVE_GROUP, 5, "MemberIdentity", member_id="ghost", group_instance_id=None),
    )
    body = await fixture.call(ApiKey.LEAVE_GROUP, 5, group_id=group, members=members)
    assert body.error_code is KafkaError.none
    assert [(m.member_id, m.error_code) for m in body.members] == [
        (joined.member_id, KafkaError.none),
        ("ghost", KafkaError.unknown_member_id),
    ]
    old = await fixture.call(ApiKey.LEAVE_GROUP, 0, group_id=group, member_id="ghost")
    assert old.error_code is KafkaError.unknown_member_id


async def test_list_and_describe_groups() -> None:
    fixture, coordinator, _ = groups_fixture()
    group = group_led_by(1)
    await loaded(fixture, coordinator, group)
    joined = await join(fixture, coordinator, group)
    listed = await fixture.call(ApiKey.LIST_GROUPS, 5, states_filter=(), types_filter=())
    assert [(g.group_id, g.protocol_type, g.group_state, g.group_type) for g in listed.groups] == [
        (group, "consumer", "CompletingRebalance", "classic")
    ]
    stable_only = await fixture.call(ApiKey.LIST_GROUPS, 4, states_filter=("Stable",))
    assert stable_only.groups == ()
    body = await fixture.call(
        ApiKey.DESCRIBE_GROUPS, 6, groups=(group, "unknown"), include_authorized_operations=False
    )
    known, unknown = body.groups
    assert (known.group_state, [m.member_id for m in known.members]) == (
        "CompletingRebalance",
        [joined.member_id],
    )
    assert known.protocol_data == ""  # only a Stable group shows its protocol
    assert unknown.error_code is KafkaError.group_id_not_found
    older = await fixture.call(
        ApiKey.DESCRIBE_GROUPS, 5, groups=("unknown",), include_authorized_operations=False
    )
    assert (older.groups[0].error_code, older.groups[0].group_state) == (KafkaError.none, "Dead")


async def test_describe_groups_shows_where_each_member_connected_from_as_kafka_does() -> None:
    fixture, coordinator, _ = groups_fixture()
    group = group_led_by(1)
    await loaded(fixture, coordinator, group)
    server = KafkaServer("127.0.0.1", 0, fixture.services)
    await server.start()
    ticking = asyncio.create_task(tick_until_cancelled(coordinator))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)

    async def call(api_key: ApiKey, version: int, **fields: Any) -> Any:
        body = request(api_key, version, **fields)
        writer.write(frame(encode_request(api_key, version, body)))
        (size,) = struct.unpack(">i", await asyncio.wait_for(reader.readexactly(4), 5))
        payload = await asyncio.wait_for(reader.readexactly(size), 5)
        return decode_response(api_key, version, payload)

    try:
        first = await call(ApiKey.JOIN_GROUP, 5, **join_fields(5, group, ""))
        joined = await call(ApiKey.JOIN_GROUP, 5, **join_fields(5, group, first.member_id))
        described = await call(
            ApiKey.DESCRIBE_GROUPS, 5, groups=(group,), include_authorized_operations=False
        )
    finally:
        writer.close()
        ticking.cancel()
        await server.close()
    assert [(m.member_id, m.client_host) for m in described.groups[0].members] == [
        (joined.member_id, "/127.0.0.1")
    ]


async def tick_until_cancelled(coordinator: GroupCoordinator) -> None:
    """The coordinator's timers, as the node's loop runs them (a join phase ends on one)."""
    while True:
        coordinator.tick()
        await asyncio.sleep(0.01)


async def test_offset_fetch_v8_answers_several_groups() -> None:
    fixture, coordinator, _ = groups_fixture()
    here, elsewhere = group_led_by(1), group_led_by(2)
    await loaded(fixture, coordinator, here)
    await commit(fixture, here, "", -1, {("orders", 1): 4})
    groups = tuple(
        nested(ApiKey.OFFSET_FETCH, 8, "OffsetFetchRequestGroup", group_id=g, topics=None)
        for g in (here, elsewhere)
    )
    body = await fixture.call(ApiKey.OFFSET_FETCH, 8, groups=groups, require_stable=False)
    first, second = body.groups
    assert first.error_code is KafkaError.none
    assert [
        (t.name, p.partition_index, p.committed_offset) for t in first.topics for p in t.partitions
    ] == [("orders", 1, 4)]
    assert second.error_code is KafkaError.not_coordinator


async def test_the_oldest_served_versions_of_every_group_api() -> None:
    """What old clients send: JoinGroup v0 (no rebalance timeout, no MEMBER_ID_REQUIRED),
    SyncGroup v0, Heartbeat v0, OffsetCommit v2, OffsetFetch v1, DescribeGroups v0,
    ListGroups v0, LeaveGroup v0."""
    fixture, coordinator, _ = groups_fixture()
    group = group_led_by(1)
    await loaded(fixture, coordinator, group)
    fields = join_fields(0, group, "")
    del fields["rebalance_timeout"]
    task = asyncio.ensure_future(fixture.call(ApiKey.JOIN_GROUP, 0, **fields))
    while not task.done():
        await asyncio.sleep(0)
        coordinator.tick()
    joined = task.result()
    assert (joined.error_code, joined.generation_id, joined.protocol_name) == (
        KafkaError.none,
        1,
        "range",
    )
    member = joined.member_id
    assignment = nested(
        ApiKey.SYNC_GROUP, 0, "SyncGroupRequestAssignment", member_id=member, assignment=b"a"
    )
    synced = await fixture.call(
        ApiKey.SYNC_GROUP,
        0,
        group_id=group,
        generation_id=1,
        member_id=member,
        assignments=(assignment,),
    )
    assert (synced.error_code, synced.assignment) == (KafkaError.none, b"a")
    beat = await fixture.call(
        ApiKey.HEARTBEAT, 0, group_id=group, generation_id=1, member_id=member
    )
    assert beat.error_code is KafkaError.none
    partition = nested(
        ApiKey.OFFSET_COMMIT,
        2,
        "OffsetCommitRequestPartition",
        partition_index=0,
        committed_offset=3,
        committed_metadata=None,
    )
    committed = await fixture.call(
        ApiKey.OFFSET_COMMIT,
        2,
        group_id=group,
        generation_id_or_member_epoch=1,
        member_id=member,
        retention_time=datetime.timedelta(milliseconds=-1),
        topics=(
            nested(
                ApiKey.OFFSET_COMMIT,
                2,
                "OffsetCommitRequestTopic",
                name="orders",
                partitions=(partition,),
            ),
        ),
    )
    assert committed.topics[0].partitions[0].error_code is KafkaError.none
    wanted = nested(
        ApiKey.OFFSET_FETCH, 1, "OffsetFetchRequestTopic", name="orders", partition_indexes=(0, 1)
    )
    fetched = await fixture.call(ApiKey.OFFSET_FETCH, 1, group_id=group, topics=(wanted,))
    assert [
        (p.partition_index, p.committed_offset, p.metadata) for p in fetched.topics[0].partitions
    ] == [(0, 3, ""), (1, -1, "")]
    described = await fixture.call(ApiKey.DESCRIBE_GROUPS, 0, groups=(group,))
    assert described.groups[0].group_state == "Stable"
    listed = await fixture.call(ApiKey.LIST_GROUPS, 0)
    assert [g.group_id for g in listed.groups] == [group]
    left = await fixture.call(ApiKey.LEAVE_GROUP, 0, group_id=group, member_id=member)
    assert left.error_code is KafkaError.none
    found = await fixture.call(ApiKey.FIND_COORDINATOR, 0, key=group)
    assert (found.error_code, found.node_id) == (KafkaError.none, 1)


async def test_offset_fetch_v1_puts_a_group_error_on_every_partition() -> None:
    fixture, coordinator, _ = groups_fixture()
    elsewhere = group_led_by(2)
    await loaded(fixture, coordinator, elsewhere)
    wanted = nested(
        ApiKey.OFFSET_FETCH, 1, "OffsetFetchRequestTopic", name="orders", partition_indexes=(0,)
    )
    fetched = await fixture.call(ApiKey.OFFSET_FETCH, 1, group_id=elsewhere, topics=(wanted,))
    assert fetched.topics[0].partitions[0].error_code is KafkaError.not_coordinator


async def test_names_too_long_for_the_offsets_topic_are_refused() -> None:
    fixture, coordinator, _ = groups_fixture()
    group = group_led_by(1)
    await loaded(fixture, coordinator, group)
    fields = join_fields(9, group, "")
    fields["protocol_type"] = "x" * 40_000  # a compact string may be this long
    body = await fixture.call(ApiKey.JOIN_GROUP, 9, **fields)
    assert body.error_code is KafkaError.invalid_request
    too_long_group = await fixture.call(ApiKey.JOIN_GROUP, 9, **join_fields(9, "g" * 40_000, ""))
    assert too_long_group.error_code is KafkaError.invalid_group_id


def test_member_ids_stay_short_whatever_the_client_id() -> None:
    from broker.kafka.groups.coordinator import new_member_id

    member_id = new_member_id("c" * 30_000)
    assert len(member_id) == 1024 + 1 + 36
    assert member_id.startswith("c" * 1024 + "-")


async def test_delete_groups_drops_an_empty_group_and_writes_tombstones() -> None:
    fixture, coordinator, log = groups_fixture()
    empty, busy = group_led_by(1, "empty"), group_led_by(1, "busy")
    await loaded(fixture, coordinator, empty)
    await commit(fixture, empty, "", -1, {("orders", 0): 4, ("orders", 1): 2})
    await join(fixture, coordinator, busy)
    body = await fixture.call(ApiKey.DELETE_GROUPS, 2, groups_names=(empty, busy, "unknown-x"))
    assert [(r.group_id, r.error_code) for r in body.results] == [
        (empty, KafkaError.none),
        (busy, KafkaError.non_empty_group),
        (
            "unknown-x",
            KafkaError.group_id_not_found
            if partition_for("unknown-x", OFFSETS_PARTITIONS) % 3 + 1 == 1
            else KafkaError.not_coordinator,
        ),
    ]
    assert await fetch_offsets(fixture, empty) == (KafkaError.none, {})
    stored = log.contents(partition_for(empty, OFFSETS_PARTITIONS))
    assert stored.offsets.get(empty, {}) == {}  # the tombstones won
    assert empty not in stored.groups

    successor_fixture, successor, _ = groups_fixture(log)
    await loaded(successor_fixture, successor, empty)
    listed = await successor_fixture.call(ApiKey.LIST_GROUPS, 4, states_filter=())
    assert empty not in [g.group_id for g in listed.groups]


# -- OffsetDelete ------------------------------------------------------------------------------


def subscription(*topics: str) -> bytes:
    """A ConsumerProtocolSubscription v0: version, topics, null user data."""
    encoded = b"".join(struct.pack(">h", len(t)) + t.encode() for t in topics)
    return struct.pack(">hi", 0, len(topics)) + encoded + struct.pack(">i", -1)


async def delete_offsets(
    fixture: Fixture, group: str, partitions: list[tuple[str, int]]
) -> tuple[KafkaError, dict[tuple[str, int], KafkaError]]:
    topics: dict[str, list[Any]] = {}
    for topic, partition in partitions:
        topics.setdefault(topic, []).append(
            nested(
                ApiKey.OFFSET_DELETE, 0, "OffsetDeleteRequestPartition", partition_index=partition
            )
        )
    body = await fixture.call(
        ApiKey.OFFSET_DELETE,
        0,
        group_id=group,
        topics=tuple(
            nested(
                ApiKey.OFFSET_DELETE, 0, "OffsetDeleteRequestTopic", name=name, partitions=tuple(ps)
            )
            for name, ps in topics.items()
        ),
    )
    errors = {(t.name, p.partition_index): p.error_code for t in body.topics for p in t.partitions}
    return body.error_code, errors


async def test_offset_delete_drops_an_empty_groups_offsets_for_good() -> None:
    fixture, coordinator, log = groups_fixture()
    group = group_led_by(1, "idle")
    await loaded(fixture, coordinator, group)
    await commit(fixture, group, "", -1, {("orders", 0): 4, ("orders", 1): 2})

    wanted = [("orders", 0), ("orders", 2), ("orders", 9), ("gone", 0)]
    outcome = await delete_offsets(fixture, group, wanted)

    assert outcome == (
        KafkaError.none,
        {
            ("orders", 0): KafkaError.none,
            ("orders", 2): KafkaError.none,
            ("orders", 9): KafkaError.unknown_topic_or_partition,
            ("gone", 0): KafkaError.unknown_topic_or_partition,
        },
    )
    assert await fetch_offsets(fixture, group) == (KafkaError.none, {("orders", 1): 2})
    stored = log.contents(partition_for(group, OFFSETS_PARTITIONS))
    assert set(stored.offsets[group]) == {("orders", 1)}, "a tombstone for orders-0"
    successor_fixture, successor, _ = groups_fixture(log)
    await loaded(successor_fixture, successor, group)
    assert await fetch_offsets(successor_fixture, group) == (KafkaError.none, {("orders", 1): 2})


async def test_offset_delete_keeps_the_offsets_of_topics_a_member_consumes() -> None:
    fixture, coordinator, _ = groups_fixture()
    fixture.builder.topic("payments", [(1, 2, 3)])
    group = group_led_by(1, "busy")
    await loaded(fixture, coordinator, group)
    joined = await join(fixture, coordinator, group, metadata=subscription("orders"))
    await sync(fixture, group, joined.member_id, joined.generation_id)
    offsets = {("orders", 0): 7, ("payments", 0): 3}
    await commit(fixture, group, joined.member_id, joined.generation_id, offsets)

    outcome = await delete_offsets(fixture, group, [("orders", 0), ("payments", 0)])

    assert outcome == (
        KafkaError.none,
        {("orders", 0): KafkaError.group_subscribed_to_topic, ("payments", 0): KafkaError.none},
    )
    assert await fetch_offsets(fixture, group) == (KafkaError.none, {("orders", 0): 7})


async def test_offset_delete_refuses_what_it_cannot_tell_is_safe() -> None:
    fixture, coordinator, _ = groups_fixture()
    unreadable, connect, unknown = (group_led_by(1, name) for name in ("odd", "connect", "none"))
    for group in (unreadable, connect, unknown):
        await loaded(fixture, coordinator, group)
    await join(fixture, coordinator, unreadable, metadata=b"sub")  # not a subscription
    await join(fixture, coordinator, connect, protocol_type="connect")

    assert await delete_offsets(fixture, unreadable, [("orders", 0)]) == (
        KafkaError.none,
        {("orders", 0): KafkaError.group_subscribed_to_topic},
    )
    assert await delete_offsets(fixture, connect, [("orders", 0)]) == (
        KafkaError.non_empty_group,
        {},
    )
    assert await delete_offsets(fixture, unknown, [("orders", 0)]) == (
        KafkaError.group_id_not_found,
        {},
    )


# -- offset expiry (offsets.retention.minutes, KIP-211) ---------------------------------------

RETENTION_MS = 60_000
EXPIRING = dataclasses.replace(SETTINGS, offsets_retention_ms=RETENTION_MS)


async def settled(condition: Callable[[], bool], what: str) -> None:
    """Lets the loop turn until `condition` holds (these fakes answer within a few turns)."""
    for _ in range(1_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{what} did not happen within 1,000 loop turns")


async def expiry_round(coordinator: GroupCoordinator) -> None:
    """One expiry check, and the writes it starts."""
    coordinator.expire_offsets()
    await settled(lambda: not coordinator._tasks, "the expiry writes")


async def test_an_empty_consumer_group_loses_its_offsets_a_retention_after_it_emptied() -> None:
    wall = [1_000_000]
    fixture, coordinator, log = groups_fixture(settings=EXPIRING, wall_clock=wall)
    group = group_led_by(1, "leaving")
    await loaded(fixture, coordinator, group)
    joined = await join(fixture, coordinator, group)
    await sync(fixture, group, joined.member_id, joined.generation_id)
    await commit(fixture, group, joined.member_id, joined.generation_id, {("orders", 0): 4})
    for _ in range(3):  # the commit grows old: a live group keeps it all the same
        wall[0] += RETENTION_MS
        await expiry_round(coordinator)
    assert await fetch_offsets(fixture, group) == (KafkaError.none, {("orders", 0): 4})

    await fixture.call(ApiKey.LEAVE_GROUP, 0, group_id=group, member_id=joined.member_id)
    await expiry_round(coordinator)  # empty from now on
    wall[0] += RETENTION_MS - 1
    await expiry_round(coordinator)
    assert await fetch_offsets(fixture, group) == (KafkaError.none, {("orders", 0): 4})
    wall[0] += 1
    await expiry_round(coordinator)

    assert await fetch_offsets(fixture, group) == (KafkaError.none, {})
    listed = await fixture.call(ApiKey.LIST_GROUPS, 4, states_filter=())
    assert group not in [g.group_id for g in listed.groups], "the group went too"
    stored = log.contents(partition_for(group, OFFSETS_PARTITIONS))
    assert (stored.offsets.get(group, {}), group in stored.groups) == ({}, False)


async def test_offsets_committed_outside_a_group_expire_each_a_retention_after_its_commit() -> None:
    wall = [1_000_000]
    fixture, coordinator, log = groups_fixture(settings=EXPIRING, wall_clock=wall)
    group = group_led_by(1, "standalone")
    await loaded(fixture, coordinator, group)
    await commit(fixture, group, "", -1, {("orders", 0): 4})
    wall[0] += RETENTION_MS // 2
    await commit(fixture, group, "", -1, {("orders", 1): 7})
    wall[0] += RETENTION_MS // 2
    await expiry_round(coordinator)
    assert await fetch_offsets(fixture, group) == (KafkaError.none, {("orders", 1): 7})
    wall[0] += RETENTION_MS // 2
    await expiry_round(coordinator)
    assert await fetch_offsets(fixture, group) == (KafkaError.none, {})
    assert log.contents(partition_for(group, OFFSETS_PARTITIONS)).offsets.get(group, {}) == {}


async def test_expiry_runs_from_the_coordinators_tick_every_check_interval() -> None:
    wall, clock = [1_000_000], [0]
    settings = dataclasses.replace(EXPIRING, offsets_retention_check_interval_ms=500)
    fixture, coordinator, _ = groups_fixture(settings=settings, wall_clock=wall, clock=clock)
    group = group_led_by(1, "ticked")
    await loaded(fixture, coordinator, group)
    await commit(fixture, group, "", -1, {("orders", 0): 4})
    wall[0] += RETENTION_MS
    clock[0] += 499
    coordinator.tick()
    assert not coordinator._tasks, "not yet: the check interval has not passed"
    clock[0] += 1
    coordinator.tick()
    await settled(lambda: not coordinator._tasks, "the expiry writes")
    assert await fetch_offsets(fixture, group) == (KafkaError.none, {})


async def test_a_commit_racing_the_expiry_tombstone_is_written_again_after_it() -> None:
    """The commit is written first but applied after the expiry decided; the tombstone
    lands after it: the coordinator writes the commit once more, so a successor that loads
    the log has it too."""
    wall = [1_000_000]
    fixture, coordinator, log = groups_fixture(settings=EXPIRING, wall_clock=wall)
    group = group_led_by(1, "racing")
    await loaded(fixture, coordinator, group)
    await commit(fixture, group, "", -1, {("orders", 0): 4})
    wall[0] += RETENTION_MS
    log.hold = asyncio.Event()
    committing = asyncio.ensure_future(commit(fixture, group, "", -1, {("orders", 0): 9}))
    # the commit's record is in the log, its answer not yet
    await settled(lambda: log.ends.get(partition_for(group, OFFSETS_PARTITIONS), 0) == 2, "C")
    coordinator.expire_offsets()  # decides on the old offset: a tombstone goes out
    await asyncio.sleep(0)
    log.hold.set()
    await committing
    await settled(lambda: not coordinator._tasks, "the expiry writes")

    assert await fetch_offsets(fixture, group) == (KafkaError.none, {("orders", 0): 9})
    successor_fixture, successor, _ = groups_fixture(log, settings=EXPIRING, wall_clock=wall)
    await loaded(successor_fixture, successor, group)
    assert await fetch_offsets(successor_fixture, group) == (KafkaError.none, {("orders", 0): 9})
