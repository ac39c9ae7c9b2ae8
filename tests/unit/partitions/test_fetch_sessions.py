"""Incremental fetch sessions for followers (KIP-227): a follower's fetch lists only the
partitions whose position changed, and the leader answers only the partitions with news,
so an idle partition costs neither side anything per record. Any doubt — an unknown
session, an epoch out of turn, a failed request — starts the session over with a full
fetch."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from broker.log.batch import Record, build_batch
from broker.partitions.fetch_sessions import (
    FULL_FETCH_EPOCH,
    NO_SESSION_ID,
    SESSION_EPOCH_MAX,
    FetchSessionError,
    FollowerFetchSession,
    LeaderFetchSessions,
    next_epoch,
)
from broker.partitions.manager import PartitionFetch, PartitionFetchResult
from broker.partitions.native import NativeProtocolHandler
from kraft.protocol.errors import ErrorCode
from kraft.protocol.native import KIND_FETCH
from tests.unit.api.images import ImageBuilder
from tests.unit.partitions.helpers import single_broker_manager


def fetch(partition: int, offset: int = 0) -> PartitionFetch:
    return PartitionFetch("t", partition, offset, 1 << 20, current_leader_epoch=0)


def result(partition: int, high_watermark: int = 0, **fields: Any) -> PartitionFetchResult:
    return PartitionFetchResult(
        "t",
        partition,
        fields.pop("error_code", ErrorCode.NONE),
        high_watermark=high_watermark,
        log_start_offset=0,
        log_end_offset=fields.pop("log_end_offset", 10),
        leader_epoch=0,
        **fields,
    )


def partitions_of(results: list[PartitionFetchResult]) -> list[int]:
    return [r.partition for r in results]


# -- the leader's sessions -------------------------------------------------------------------


def test_a_full_fetch_opens_a_session_holding_its_partitions_and_is_answered_in_full() -> None:
    sessions = LeaderFetchSessions(first_id=7)
    session = sessions.open(2, [fetch(0), fetch(1)])
    assert session.session_id == 7 and session.expected_epoch == 1
    assert session.requests() == [fetch(0), fetch(1)]
    told = session.news([result(0), result(1)], everything=True)
    assert partitions_of(told) == [0, 1]


def test_an_incremental_fetch_changes_the_listed_partitions_and_drops_the_forgotten() -> None:
    sessions = LeaderFetchSessions(first_id=7)
    sessions.open(2, [fetch(0), fetch(1), fetch(2)])
    session = sessions.resume(2, 7, 1, [fetch(1, offset=5), fetch(3)], [("t", 2)])
    assert session.requests() == [fetch(0), fetch(1, offset=5), fetch(3)]
    assert session.expected_epoch == 2


def test_in_a_session_only_partitions_with_news_are_answered() -> None:
    sessions = LeaderFetchSessions(first_id=1)
    session = sessions.open(2, [fetch(p) for p in range(6)])
    session.news([result(p) for p in range(6)], everything=True)

    answered = session.news(
        [
            result(0),  # idle: nothing new
            result(1, records=b"batch"),
            result(2, error_code=ErrorCode.NOT_LEADER_OR_FOLLOWER),
            result(3, diverging_epoch=(0, 4)),
            result(4, high_watermark=3),  # the high watermark moved
            result(5, log_end_offset=11),  # the log end moved
        ]
    )
    assert partitions_of(answered) == [1, 2, 3, 4, 5]
    # told once: the same state again is no news
    assert partitions_of(session.news([result(4, high_watermark=3), result(0)])) == []


def test_a_session_that_is_unknown_or_another_brokers_is_not_found() -> None:
    sessions = LeaderFetchSessions(first_id=1)
    sessions.open(2, [fetch(0)])
    for replica_id, session_id in ((2, 99), (3, 1)):
        with pytest.raises(FetchSessionError) as raised:
            sessions.resume(replica_id, session_id, 1, [], [])
        assert raised.value.code is ErrorCode.FETCH_SESSION_ID_NOT_FOUND


def test_an_epoch_out_of_turn_is_refused_and_ends_the_session() -> None:
    sessions = LeaderFetchSessions(first_id=1)
    sessions.open(2, [fetch(0)])
    sessions.resume(2, 1, 1, [], [])
    with pytest.raises(FetchSessionError) as raised:
        sessions.resume(2, 1, 1, [], [])  # a replay of epoch 1: expected 2
    assert raised.value.code is ErrorCode.INVALID_FETCH_SESSION_EPOCH
    assert len(sessions) == 0
    with pytest.raises(FetchSessionError) as again:
        sessions.resume(2, 1, 2, [], [])
    assert again.value.code is ErrorCode.FETCH_SESSION_ID_NOT_FOUND


def test_a_new_full_fetch_replaces_the_followers_previous_session() -> None:
    sessions = LeaderFetchSessions(first_id=1)
    sessions.open(2, [fetch(0)])
    sessions.open(3, [fetch(0)])
    replacement = sessions.open(2, [fetch(1)])
    assert replacement.session_id == 3 and len(sessions) == 2
    with pytest.raises(FetchSessionError):
        sessions.resume(2, 1, 1, [], [])


def test_the_least_recently_used_session_goes_when_the_leader_holds_its_maximum() -> None:
    sessions = LeaderFetchSessions(max_sessions=2, first_id=1)
    sessions.open(2, [fetch(0)])  # id 1
    sessions.open(3, [fetch(0)])  # id 2
    sessions.resume(2, 1, 1, [], [])  # 2's session is used: 3's is now the oldest
    sessions.open(4, [fetch(0)])
    assert len(sessions) == 2
    sessions.resume(2, 1, 2, [], [])
    with pytest.raises(FetchSessionError):
        sessions.resume(3, 2, 1, [], [])


def test_a_session_may_not_grow_past_the_partition_limit_and_stays_as_it_was() -> None:
    sessions = LeaderFetchSessions(first_id=1, max_partitions=2)
    sessions.open(2, [fetch(0), fetch(1)])
    with pytest.raises(FetchSessionError) as raised:
        sessions.resume(2, 1, 1, [fetch(2)], [])
    assert raised.value.code is ErrorCode.INVALID_REQUEST
    assert "would hold 3 partitions; the limit is 2" in str(raised.value)
    # nothing changed: the same epoch, trading one partition for another, is taken
    session = sessions.resume(2, 1, 1, [fetch(2)], [("t", 0)])
    assert session.requests() == [fetch(1), fetch(2)]


def test_epochs_wrap_to_one_never_to_the_full_fetch_epoch() -> None:
    assert next_epoch(1) == 2
    assert next_epoch(SESSION_EPOCH_MAX) == 1


# -- the follower's side ---------------------------------------------------------------------

A = ("t", 0)
B = ("t", 1)
C = ("t", 2)


def test_a_follower_lists_every_partition_until_the_leader_opens_a_session() -> None:
    session = FollowerFetchSession()
    first = session.plan({A: (None, 0, 0, -1), B: (None, 0, 0, -1)})
    assert first.is_full and first.session_id == NO_SESSION_ID and first.listed == [A, B]
    session.on_answer(12)

    second = session.plan({A: (None, 3, 0, 0), B: (None, 0, 0, -1)})
    assert (second.session_id, second.epoch) == (12, 1)
    assert second.listed == [A] and second.forgotten == []
    session.on_answer(12)

    third = session.plan({A: (None, 3, 0, 0), C: (None, 0, 0, -1)})
    assert third.epoch == 2
    assert third.listed == [C] and third.forgotten == [B]


def test_a_failed_request_starts_the_session_over_with_a_full_fetch() -> None:
    session = FollowerFetchSession()
    session.plan({A: (None, 0, 0, -1)})
    session.on_answer(12)
    session.plan({A: (None, 1, 0, 0)})
    session.reset()  # timed out: the leader may have told us something we never saw
    retry = session.plan({A: (None, 1, 0, 0), B: (None, 0, 0, -1)})
    assert retry.is_full and retry.listed == [A, B]


def test_a_leader_without_sessions_keeps_every_request_full() -> None:
    session = FollowerFetchSession()
    session.plan({A: (None, 0, 0, -1)})
    session.on_answer(NO_SESSION_ID)
    assert session.plan({A: (None, 1, 0, 0)}).epoch == FULL_FETCH_EPOCH


def test_an_answer_naming_another_session_starts_over() -> None:
    session = FollowerFetchSession()
    session.plan({A: (None, 0, 0, -1)})
    session.on_answer(12)
    session.plan({A: (None, 1, 0, 0)})
    session.on_answer(13)
    assert session.plan({A: (None, 1, 0, 0)}).is_full


# -- through the native protocol on a partition leader ---------------------------------------


def leader_of_two_partitions(tmp_path: Path) -> tuple[Any, NativeProtocolHandler]:
    builder = ImageBuilder()
    for broker_id in (1, 2, 3):
        builder.broker(broker_id)
    builder.topic("t", [(1, 2, 3), (1, 2, 3)])  # broker 1 leads both, ISR 1, 2, 3
    replicas = single_broker_manager(builder, tmp_path)
    replicas._reconcile()
    handler = NativeProtocolHandler(
        replicas, image=lambda: builder.image, cluster_id=lambda: "c", controller_id=lambda: 1
    )
    return replicas, handler


def fetch_body(session_id: int, epoch: int, offsets: dict[int, int], **extra: Any) -> Any:
    return {
        "kind": KIND_FETCH,
        "replica_id": 2,
        "replica_epoch": 1,
        "max_wait_ms": 30_000,
        "min_bytes": 1,
        "max_bytes": 1 << 20,
        "session_id": session_id,
        "session_epoch": epoch,
        "partitions": [
            {
                "topic": "t",
                "partition": partition,
                "fetch_offset": offset,
                "partition_max_bytes": 1 << 20,
                "current_leader_epoch": 0,
                "last_fetched_epoch": -1 if offset == 0 else 0,
            }
            for partition, offset in offsets.items()
        ],
        **extra,
    }


async def produce(replicas: Any, partition: int, count: int) -> None:
    batch = build_batch([Record(None, b"v%d" % i, (), 1_000) for i in range(count)])
    answer = await replicas.produce("t", partition, batch, 0, 5000)
    assert answer.error_code is ErrorCode.NONE, answer


async def test_a_follower_in_a_session_is_answered_only_the_partition_that_got_records(
    tmp_path: Path,
) -> None:
    replicas, handler = leader_of_two_partitions(tmp_path)
    await produce(replicas, 0, 2)
    await produce(replicas, 1, 2)
    full = await handler.handle(2, fetch_body(NO_SESSION_ID, FULL_FETCH_EPOCH, {0: 0, 1: 0}))
    session_id = full["session_id"]
    assert session_id != NO_SESSION_ID
    assert [(p["partition"], bool(p["records"])) for p in full["partitions"]] == [
        (0, True),
        (1, True),
    ]

    # both partitions caught up: the next fetch lists them once more, then parks
    caught_up = fetch_body(session_id, 1, {0: 2, 1: 2})
    waiting = asyncio.create_task(handler.handle(2, caught_up))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await produce(replicas, 1, 1)
    answer = await asyncio.wait_for(waiting, 5)
    assert answer["session_id"] == session_id
    assert [(p["partition"], bool(p["records"])) for p in answer["partitions"]] == [(1, True)]

    # nothing listed: partition 0 stays at 2, partition 1 moves on to 3 (listed)
    nothing_new = asyncio.create_task(handler.handle(2, fetch_body(session_id, 2, {1: 3})))
    await asyncio.sleep(0.05)
    assert not nothing_new.done(), "an idle session parks like any fetch at the log end"
    await produce(replicas, 0, 1)
    answer = await asyncio.wait_for(nothing_new, 5)
    assert [(p["partition"], bool(p["records"])) for p in answer["partitions"]] == [(0, True)]


async def test_an_epoch_out_of_turn_is_answered_as_a_whole_with_nothing_read(
    tmp_path: Path,
) -> None:
    _, handler = leader_of_two_partitions(tmp_path)
    full = await handler.handle(
        2, fetch_body(NO_SESSION_ID, FULL_FETCH_EPOCH, {0: 0, 1: 0}, max_wait_ms=0)
    )
    answer = await handler.handle(2, fetch_body(full["session_id"], 5, {}))
    assert answer["error_code"] == ErrorCode.INVALID_FETCH_SESSION_EPOCH
    assert answer["partitions"] == [] and answer["session_id"] == NO_SESSION_ID
    unknown = await handler.handle(2, fetch_body(full["session_id"], 1, {}))
    assert unknown["error_code"] == ErrorCode.FETCH_SESSION_ID_NOT_FOUND


async def test_a_consumer_fetch_may_not_open_a_session(tmp_path: Path) -> None:
    _, handler = leader_of_two_partitions(tmp_path)
    body = fetch_body(NO_SESSION_ID, FULL_FETCH_EPOCH, {0: 0}) | {"replica_id": -1}
    answer = await handler.handle(None, body)
    assert answer["error_code"] == ErrorCode.INVALID_REQUEST
    assert "fetch sessions are for followers" in answer["error_message"]


async def test_a_malformed_forgotten_list_is_an_invalid_request(tmp_path: Path) -> None:
    _, handler = leader_of_two_partitions(tmp_path)
    full = await handler.handle(
        2, fetch_body(NO_SESSION_ID, FULL_FETCH_EPOCH, {0: 0}, max_wait_ms=0)
    )
    answer = await handler.handle(2, fetch_body(full["session_id"], 1, {}, forgotten=[["t", 0]]))
    assert answer["error_code"] == ErrorCode.INVALID_REQUEST
    assert "'forgotten' must be a list of maps" in answer["error_message"]
