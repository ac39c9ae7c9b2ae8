"""The classic group protocol as a pure state machine (Kafka's ClassicGroup and the join, sync,
heartbeat and leave handling of its GroupCoordinator; KIP-394 for MEMBER_ID_REQUIRED, KIP-345's
batch LeaveGroup, KIP-134 for the initial rebalance delay). Time is passed in; answers come out
of the outbox."""

from __future__ import annotations

import itertools

from kio.schema.errors import ErrorCode

from broker.kafka.groups.model import (
    CommittedOffset,
    GroupSettings,
    GroupSnapshot,
    GroupState,
    JoinAnswer,
    JoinRequest,
    MemberSnapshot,
    SyncAnswer,
)
from broker.kafka.groups.state import ClassicGroup

SESSION_MS = 10_000
REBALANCE_MS = 30_000
DELAY_MS = 3_000
SETTINGS = GroupSettings(
    initial_rebalance_delay_ms=DELAY_MS, min_session_timeout_ms=6_000, max_session_timeout_ms=60_000
)
RANGE = ("range", b"range-metadata")
ROUNDROBIN = ("roundrobin", b"rr-metadata")


class Harness:
    """One group, a clock, and the answers each request got."""

    def __init__(self, settings: GroupSettings = SETTINGS) -> None:
        self.group = ClassicGroup("g", settings)
        self.now_ms = 1_000
        self.answers: dict[int, JoinAnswer | SyncAnswer] = {}
        self._ids = itertools.count(1)

    def collect(self) -> None:
        for request_id, answer in self.group.take_answers():
            assert request_id not in self.answers, f"request {request_id} answered twice"
            self.answers[request_id] = answer

    def join(
        self,
        member_id: str = "",
        *,
        name: str = "c",
        protocols: tuple[tuple[str, bytes], ...] = (RANGE,),
        protocol_type: str = "consumer",
        session_ms: int = SESSION_MS,
        require_known: bool = True,
        instance: str | None = None,
    ) -> int:
        request_id = next(self._ids)
        request = JoinRequest(
            member_id=member_id,
            group_instance_id=instance,
            client_id=name,
            client_host="/127.0.0.1",
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=REBALANCE_MS,
            protocol_type=protocol_type,
            protocols=protocols,
            require_known_member_id=require_known,
            new_member_id=f"{name}-{request_id}",
        )
        self.group.join(request_id, request, self.now_ms)
        self.collect()
        return request_id

    def sync(
        self, member_id: str, generation: int, assignments: dict[str, bytes] | None = None
    ) -> int:
        request_id = next(self._ids)
        self.group.sync(
            request_id, member_id, generation, "consumer", None, assignments or {}, self.now_ms
        )
        self.collect()
        return request_id

    def advance(self, ms: int) -> None:
        self.now_ms += ms
        self.group.tick(self.now_ms)
        self.collect()

    def finish_initial_delay(self) -> None:
        """Runs the initial delay out; each member added during a delay extends it once."""
        assert self.group.state is GroupState.PREPARING_REBALANCE
        while self.group.state is GroupState.PREPARING_REBALANCE:
            self.advance(DELAY_MS)

    def store_writes(self, error: ErrorCode = ErrorCode.none) -> list[GroupSnapshot]:
        writes = self.group.take_writes()
        for snapshot in writes:
            self.group.on_group_stored(snapshot.generation_id, error, self.now_ms)
        self.collect()
        return writes

    def join_answer(self, request_id: int) -> JoinAnswer:
        answer = self.answers[request_id]
        assert isinstance(answer, JoinAnswer)
        return answer

    def sync_answer(self, request_id: int) -> SyncAnswer:
        answer = self.answers[request_id]
        assert isinstance(answer, SyncAnswer)
        return answer

    def new_member(self, name: str, **options: object) -> str:
        """KIP-394's two steps: MEMBER_ID_REQUIRED with an id, then the join with it."""
        first = self.join(name=name)
        answer = self.join_answer(first)
        assert answer.error is ErrorCode.member_id_required
        self.join(answer.member_id, name=name, **options)  # type: ignore[arg-type]
        return answer.member_id


def _new_id(harness: Harness, request_id: int) -> str:
    """The member id a join without one was given (Harness.join names it name-request)."""
    answer = harness.answers.get(request_id)
    if answer is not None:
        return answer.member_id
    return next(m for m in harness.group.members if m.endswith(f"-{request_id}"))


def stable_group(names: tuple[str, ...] = ("a", "b", "c")) -> tuple[Harness, list[str], int]:
    """A Stable group of the named members, every one with its assignment."""
    harness = Harness()
    members = [harness.new_member(name) for name in names]
    harness.finish_initial_delay()
    generation = harness.group.generation_id
    leader = harness.group.leader_id
    assert leader is not None
    syncs = [harness.sync(m, generation) for m in members if m != leader]
    syncs.append(harness.sync(leader, generation, {m: m.encode() for m in members}))
    harness.store_writes()
    assert harness.group.state is GroupState.STABLE
    assert all(harness.sync_answer(s).error is ErrorCode.none for s in syncs)
    return harness, members, generation


# -- joining -----------------------------------------------------------------------------------


def test_unknown_member_gets_member_id_required_and_stays_pending() -> None:
    """KIP-394: from JoinGroup v4 an unknown member first learns its id."""
    harness = Harness()
    answer = harness.join_answer(harness.join(name="c"))
    assert answer.error is ErrorCode.member_id_required
    assert answer.member_id == "c-1"
    assert harness.group.pending_members == {"c-1": 1_000 + SESSION_MS}
    assert harness.group.state is GroupState.EMPTY


def test_old_join_versions_are_added_at_once_without_member_id_required() -> None:
    harness = Harness()
    request_id = harness.join(name="c", require_known=False)
    assert request_id not in harness.answers  # waiting for the join phase
    assert harness.group.state is GroupState.PREPARING_REBALANCE
    harness.advance(DELAY_MS)
    answer = harness.join_answer(request_id)
    assert (answer.error, answer.member_id, answer.generation_id) == (ErrorCode.none, "c-1", 1)


def test_first_generation_waits_for_the_initial_delay_and_takes_every_joiner() -> None:
    """KIP-134: an empty group waits group.initial.rebalance.delay.ms for more members."""
    harness = Harness()
    a = harness.new_member("a")
    harness.advance(DELAY_MS - 1)
    b = harness.new_member("b")  # extends the delay by another DELAY_MS
    harness.advance(1)
    assert harness.group.state is GroupState.PREPARING_REBALANCE
    harness.advance(DELAY_MS)
    assert harness.group.state is GroupState.COMPLETING_REBALANCE
    assert harness.group.generation_id == 1
    assert set(harness.group.members) == {a, b}


def test_the_leader_alone_receives_every_members_metadata() -> None:
    harness = Harness()
    members = [harness.new_member(name) for name in ("a", "b", "c")]
    harness.finish_initial_delay()
    answers = [
        a
        for a in harness.answers.values()
        if isinstance(a, JoinAnswer) and a.error is ErrorCode.none
    ]
    assert len(answers) == 3
    leader = harness.group.leader_id
    assert {a.leader for a in answers} == {leader}
    assert {a.generation_id for a in answers} == {1}
    assert {a.protocol_name for a in answers} == {"range"}
    for answer in answers:
        if answer.member_id == leader:
            assert sorted(m for m, _, _ in answer.members) == sorted(members)
            assert {metadata for _, _, metadata in answer.members} == {b"range-metadata"}
        else:
            assert answer.members == ()


def test_the_protocol_most_members_prefer_among_those_all_support_is_chosen() -> None:
    harness = Harness()
    harness.new_member("a", protocols=(ROUNDROBIN, RANGE))
    harness.new_member("b", protocols=(ROUNDROBIN, RANGE))
    harness.new_member("c", protocols=(RANGE, ROUNDROBIN))
    harness.finish_initial_delay()
    assert harness.group.protocol_name == "roundrobin"


def test_a_member_sharing_no_protocol_with_the_group_is_refused() -> None:
    harness, _, _ = stable_group()
    answer = harness.join_answer(harness.join(name="d", protocols=(("sticky", b""),)))
    assert answer.error is ErrorCode.inconsistent_group_protocol
    other_type = harness.join_answer(harness.join(name="e", protocol_type="connect"))
    assert other_type.error is ErrorCode.inconsistent_group_protocol


def test_a_session_timeout_outside_the_broker_bounds_is_refused() -> None:
    harness = Harness()
    for session_ms in (5_999, 60_001):
        answer = harness.join_answer(harness.join(name="c", session_ms=session_ms))
        assert answer.error is ErrorCode.invalid_session_timeout


def test_a_join_with_an_id_the_group_never_gave_is_unknown_member() -> None:
    harness = Harness()
    answer = harness.join_answer(harness.join("made-up", name="c"))
    assert answer.error is ErrorCode.unknown_member_id


# -- syncing -----------------------------------------------------------------------------------


def test_sync_hands_each_member_the_leaders_assignment_once_it_is_stored() -> None:
    harness = Harness()
    members = [harness.new_member(name) for name in ("a", "b")]
    harness.finish_initial_delay()
    leader = harness.group.leader_id
    follower = next(m for m in members if m != leader)
    assert leader is not None
    waiting = harness.sync(follower, 1)
    assert waiting not in harness.answers  # the leader has not sent the assignment yet
    leader_sync = harness.sync(leader, 1, {leader: b"p0,p1", follower: b"p2"})
    assert leader_sync not in harness.answers  # not before the write is acknowledged
    (snapshot,) = harness.group.take_writes()
    assert {m.member_id: m.assignment for m in snapshot.members} == {
        leader: b"p0,p1",
        follower: b"p2",
    }
    harness.group.on_group_stored(snapshot.generation_id, ErrorCode.none, harness.now_ms)
    harness.collect()
    assert harness.sync_answer(waiting).assignment == b"p2"
    assert harness.sync_answer(leader_sync).assignment == b"p0,p1"
    assert harness.group.state is GroupState.STABLE


def test_a_failed_store_answers_the_syncs_with_its_error_and_rebalances() -> None:
    harness = Harness()
    a = harness.new_member("a")
    harness.advance(DELAY_MS)
    request_id = harness.sync(a, 1, {a: b"all"})
    harness.store_writes(ErrorCode.not_coordinator)
    assert harness.sync_answer(request_id).error is ErrorCode.not_coordinator
    assert harness.group.state is GroupState.PREPARING_REBALANCE


def test_a_stable_member_syncing_again_gets_its_assignment() -> None:
    harness, members, generation = stable_group()
    answer = harness.sync_answer(harness.sync(members[0], generation))
    assert (answer.error, answer.assignment) == (ErrorCode.none, members[0].encode())


def test_members_that_never_sync_are_removed_at_the_sync_deadline() -> None:
    harness = Harness()
    a, b = harness.new_member("a"), harness.new_member("b")
    harness.finish_initial_delay()
    leader = harness.group.leader_id
    follower = b if leader == a else a
    assert leader is not None
    harness.sync(follower, 1)
    for _ in range(REBALANCE_MS // 5_000):  # the leader heartbeats but never syncs
        assert harness.group.heartbeat(leader, 1, harness.now_ms) is ErrorCode.none
        harness.advance(5_000)
    assert set(harness.group.members) == {follower}
    assert harness.group.state is GroupState.PREPARING_REBALANCE


# -- heartbeats, fencing, unknown members ------------------------------------------------------


def test_heartbeats_during_a_rebalance_answer_rebalance_in_progress() -> None:
    harness, members, generation = stable_group()
    harness.new_member("d")  # a new member starts a rebalance
    assert harness.group.state is GroupState.PREPARING_REBALANCE
    assert harness.group.heartbeat(members[0], generation, harness.now_ms) is (
        ErrorCode.rebalance_in_progress
    )


def test_an_old_generation_is_fenced_everywhere() -> None:
    harness, members, generation = stable_group()
    old = generation - 1
    assert harness.group.heartbeat(members[0], old, harness.now_ms) is ErrorCode.illegal_generation
    assert harness.sync_answer(harness.sync(members[0], old)).error is ErrorCode.illegal_generation
    assert (
        harness.group.check_commit(members[0], old, harness.now_ms) is ErrorCode.illegal_generation
    )


def test_unknown_members_are_refused_everywhere() -> None:
    harness, _, generation = stable_group()
    assert harness.group.heartbeat("x", generation, harness.now_ms) is ErrorCode.unknown_member_id
    assert harness.sync_answer(harness.sync("x", generation)).error is ErrorCode.unknown_member_id
    assert (
        harness.group.check_commit("x", generation, harness.now_ms) is ErrorCode.unknown_member_id
    )
    assert harness.group.leave([("x", None)], harness.now_ms) == [ErrorCode.unknown_member_id]


# -- rebalances ---------------------------------------------------------------------------------


def test_a_member_leaving_starts_a_rebalance_the_others_complete_in_a_new_generation() -> None:
    harness, members, generation = stable_group()
    assert harness.group.leave([(members[2], None)], harness.now_ms) == [ErrorCode.none]
    assert harness.group.state is GroupState.PREPARING_REBALANCE
    rejoins = [harness.join(m, name=m.split("-")[0]) for m in members[:2]]
    # every remaining member rejoined: the join phase ends without waiting for its timeout
    assert harness.group.state is GroupState.COMPLETING_REBALANCE
    assert {harness.join_answer(r).generation_id for r in rejoins} == {generation + 1}
    assert set(harness.group.members) == set(members[:2])


def test_leave_names_several_members_and_answers_each() -> None:
    """KIP-345: LeaveGroup v3+ carries a batch of members."""
    harness, members, _ = stable_group()
    errors = harness.group.leave(
        [(members[0], None), ("ghost", None), (members[1], None)], harness.now_ms
    )
    assert errors == [ErrorCode.none, ErrorCode.unknown_member_id, ErrorCode.none]
    assert set(harness.group.members) == {members[2]}


def test_a_member_whose_session_expires_is_removed_and_the_group_rebalances() -> None:
    harness, members, generation = stable_group()
    for _ in range(3):
        harness.now_ms += SESSION_MS // 2
        for member in members[:2]:
            assert harness.group.heartbeat(member, generation, harness.now_ms) is not (
                ErrorCode.unknown_member_id
            )
        harness.advance(0)
    assert members[2] not in harness.group.members
    assert harness.group.state is GroupState.PREPARING_REBALANCE


def test_members_that_do_not_rejoin_within_the_rebalance_timeout_are_dropped() -> None:
    harness, members, generation = stable_group()
    harness.new_member("d")
    request_id = harness.join(members[0], name="a")
    # members[1] and members[2] heartbeat (REBALANCE_IN_PROGRESS) but never rejoin
    for _ in range(REBALANCE_MS // 5_000):
        harness.now_ms += 5_000
        for member in members[1:]:
            harness.group.heartbeat(member, generation, harness.now_ms)
        harness.advance(0)
    answer = harness.join_answer(request_id)
    assert answer.error is ErrorCode.none
    assert answer.generation_id == generation + 1
    assert len(harness.group.members) == 2
    assert members[1] not in harness.group.members


def test_the_last_member_leaving_empties_the_group_and_stores_it() -> None:
    harness, members, generation = stable_group(("a",))
    harness.group.leave([(m, None) for m in members], harness.now_ms)
    assert harness.group.state is GroupState.EMPTY
    assert harness.group.generation_id == generation + 1
    (snapshot,) = harness.group.take_writes()
    assert snapshot.members == ()


def test_a_rejoining_leader_of_a_stable_group_starts_a_rebalance() -> None:
    """The leader rejoins when its subscription's topics change; the others must too."""
    harness, members, generation = stable_group(("a", "b"))
    leader = harness.group.leader_id
    assert leader is not None
    harness.join(leader, name="a")
    assert harness.group.state is GroupState.PREPARING_REBALANCE
    other = next(m for m in members if m != leader)
    assert harness.group.heartbeat(other, generation, harness.now_ms) is (
        ErrorCode.rebalance_in_progress
    )


# -- offset commits ----------------------------------------------------------------------------


def test_commits_from_outside_group_management_are_taken_by_an_empty_group() -> None:
    harness = Harness()
    assert harness.group.check_commit("", -1, harness.now_ms) is ErrorCode.none
    harness.group.apply_commits({("t", 0): CommittedOffset(5, -1, "", 0)})
    assert harness.group.offsets[("t", 0)].offset == 5


def test_members_commit_while_a_rebalance_prepares_but_not_while_it_completes() -> None:
    harness, members, generation = stable_group(("a", "b"))
    harness.new_member("c")
    assert harness.group.state is GroupState.PREPARING_REBALANCE
    assert harness.group.check_commit(members[0], generation, harness.now_ms) is ErrorCode.none
    for member in members:
        harness.join(member, name=member.split("-")[0])
    assert harness.group.state is GroupState.COMPLETING_REBALANCE
    assert harness.group.check_commit(members[0], generation + 1, harness.now_ms) is (
        ErrorCode.rebalance_in_progress
    )
    assert harness.group.check_commit("", -1, harness.now_ms) is ErrorCode.rebalance_in_progress


# -- loading and unloading ---------------------------------------------------------------------


def test_a_loaded_group_is_stable_with_its_stored_members_and_offsets() -> None:
    snapshot = GroupSnapshot(
        "g",
        "consumer",
        7,
        "range",
        "m1",
        0,
        (MemberSnapshot("m1", None, "c", "/h", REBALANCE_MS, SESSION_MS, b"sub", b"asg"),),
    )
    offsets = {("t", 0): CommittedOffset(42, 3, "meta", 99)}
    group = ClassicGroup.loaded("g", SETTINGS, snapshot, offsets, 5_000)
    assert group.state is GroupState.STABLE
    assert (group.generation_id, group.leader_id, group.protocol_name) == (7, "m1", "range")
    assert group.heartbeat("m1", 7, 6_000) is ErrorCode.none
    assert group.members["m1"].assignment == b"asg"
    assert group.offsets == offsets


def test_unloading_answers_waiting_members_not_coordinator() -> None:
    harness = Harness()
    member_id = harness.join_answer(harness.join(name="a")).member_id
    waiting = harness.join(member_id, name="a")
    assert waiting not in harness.answers
    harness.group.unload(harness.now_ms)
    harness.collect()
    assert harness.group.state is GroupState.DEAD
    assert harness.join_answer(waiting).error is ErrorCode.not_coordinator
    assert harness.group.heartbeat(member_id, 0, harness.now_ms) is (
        ErrorCode.coordinator_not_available
    )


# -- random histories --------------------------------------------------------------------------


def test_random_histories_keep_the_invariants_and_answer_every_request_exactly_once() -> None:
    """Seeded random joins, syncs, heartbeats, leaves, stores (some failing) and clock
    moves; every call asserts the group's invariants, Harness.collect that no request is
    answered twice. Then everyone leaves and the group must end Empty."""
    import random

    for seed in range(150):
        rng = random.Random(seed)
        harness = Harness()
        known: list[str] = []
        for _ in range(120):
            action = rng.randrange(7)
            group = harness.group
            if action == 0 or not known:
                instance = f"i{rng.randrange(3)}" if rng.random() < 0.3 else None
                request_id = harness.join(name=f"c{rng.randrange(4)}", instance=instance)
                answer = harness.answers.get(request_id)
                if answer is None or answer.error in (
                    ErrorCode.member_id_required,
                    ErrorCode.none,
                ):
                    known.append(_new_id(harness, request_id))
            elif action == 1:
                member = rng.choice(known)
                harness.join(member, name=member.split("-")[0])
            elif action == 2:
                member = rng.choice(known)
                assignments = {m: m.encode() for m in group.members} if rng.random() < 0.7 else {}
                harness.sync(member, group.generation_id, assignments)
            elif action == 3:
                group.heartbeat(rng.choice(known), group.generation_id, harness.now_ms)
            elif action == 4:
                group.leave([(rng.choice(known), None)], harness.now_ms)
                harness.collect()
            elif action == 5:
                error = ErrorCode.none if rng.random() < 0.8 else ErrorCode.not_coordinator
                harness.store_writes(error)
            else:
                harness.advance(rng.choice((100, 1_000, DELAY_MS, SESSION_MS)))
        harness.group.leave([(m, None) for m in harness.group.members], harness.now_ms)
        harness.store_writes()
        for _ in range(REBALANCE_MS // DELAY_MS + 2):  # delays, pending members run out
            harness.advance(DELAY_MS)
        assert harness.group.state is GroupState.EMPTY, f"seed {seed}"
        assert not harness.group.members, f"seed {seed}"
        issued = next(harness._ids) - 1
        assert sorted(harness.answers) == list(range(1, issued + 1)), "a request never answered"


# -- static membership (KIP-345) ---------------------------------------------------------------


def static_stable_group() -> tuple[Harness, str, str, int]:
    """A Stable group of a static member (instance "i1") and a dynamic one."""
    harness = Harness()
    static = harness.join(name="s", instance="i1")
    assert static not in harness.answers  # no MEMBER_ID_REQUIRED: it waits for the join phase
    static_id = "s-1"
    dynamic = harness.new_member("d")
    harness.finish_initial_delay()
    generation = harness.group.generation_id
    leader = harness.group.leader_id
    assert leader is not None
    for member in (static_id, dynamic):
        assignments = {static_id: b"s", dynamic: b"d"} if member == leader else {}
        harness.sync(member, generation, assignments)
    harness.store_writes()
    assert harness.group.state is GroupState.STABLE
    return harness, static_id, dynamic, generation


def test_a_restarted_static_member_takes_its_place_back_without_a_rebalance() -> None:
    harness, old_id, dynamic, generation = static_stable_group()
    answer = harness.join_answer(harness.join(name="s", instance="i1"))
    assert answer.error is ErrorCode.none
    assert answer.member_id != old_id
    assert answer.skip_assignment is (harness.group.leader_id == answer.member_id)
    assert answer.generation_id == generation
    assert harness.group.state is GroupState.STABLE
    assert harness.group.static_members == {"i1": answer.member_id}
    synced = harness.sync_answer(harness.sync(answer.member_id, generation))
    assert synced.assignment == b"s"  # its assignment kept
    assert harness.group.heartbeat(dynamic, generation, harness.now_ms) is ErrorCode.none
    assert harness.group.heartbeat(old_id, generation, harness.now_ms, "i1") is (
        ErrorCode.fenced_instance_id
    )
    (snapshot,) = harness.group.take_writes()
    assert {m.member_id for m in snapshot.members} == {answer.member_id, dynamic}


def test_a_static_member_back_with_other_protocols_starts_a_rebalance() -> None:
    harness, _, _, _ = static_stable_group()
    harness.join(name="s", instance="i1", protocols=(ROUNDROBIN, RANGE))
    assert harness.group.state is GroupState.PREPARING_REBALANCE


def test_static_members_leave_by_instance_id_and_a_stale_id_is_fenced() -> None:
    harness, static_id, _, _ = static_stable_group()
    assert harness.group.leave([("stale", "i1")], harness.now_ms) == [ErrorCode.fenced_instance_id]
    assert harness.group.leave([("", "unknown")], harness.now_ms) == [ErrorCode.unknown_member_id]
    assert harness.group.leave([("", "i1")], harness.now_ms) == [ErrorCode.none]
    assert static_id not in harness.group.members
    assert harness.group.static_members == {}


def test_a_loaded_group_knows_its_static_members() -> None:
    snapshot = GroupSnapshot(
        "g",
        "consumer",
        3,
        "range",
        "m1",
        0,
        (MemberSnapshot("m1", "i1", "c", "", REBALANCE_MS, SESSION_MS, b"", b""),),
    )
    group = ClassicGroup.loaded("g", SETTINGS, snapshot, {}, 0)
    assert group.static_members == {"i1": "m1"}
    assert group.heartbeat("m0", 3, 1, "i1") is ErrorCode.fenced_instance_id
