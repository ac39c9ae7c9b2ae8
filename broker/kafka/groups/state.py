"""One consumer group of the classic protocol as a pure state machine (Kafka's ClassicGroup and
the join/sync/heartbeat/leave logic of its GroupCoordinator), without asyncio, I/O or clock.

Every call takes `now_ms`; nothing happens between calls except through `tick(now_ms)`, which
runs the timers (the end of the join phase, the initial rebalance delay, the sync deadline,
session expiry). A JoinGroup or SyncGroup may have to wait for other members, so requests carry
a `request_id` of the shell's choosing and every answer to them (immediate or later) goes to an
outbox the shell empties with `take_answers()`. Group metadata that must be on disk before the
members see it (the leader's assignment) is queued with `take_writes()`; the shell persists it
and reports back with `on_group_stored()`.

States and their legal transitions (Kafka's GroupState for the classic protocol):
  EMPTY -> PREPARING_REBALANCE          a member joins
  PREPARING_REBALANCE -> COMPLETING_REBALANCE   the join phase ends with members
  PREPARING_REBALANCE -> EMPTY          the join phase ends with none (the last one left)
  COMPLETING_REBALANCE -> STABLE        the leader's assignment is stored
  COMPLETING_REBALANCE -> PREPARING_REBALANCE   a member joins, leaves, expires or the
                                        sync deadline passes
  STABLE -> PREPARING_REBALANCE         a member joins with new protocols, leaves or expires
  any -> DEAD                           the coordinator unloads the group, or DeleteGroups
                                        deletes an empty one
Static members (KIP-345) that restart take their entry back under a new member id; a Stable
group stays Stable when their protocols are unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kio.schema.errors import ErrorCode

from broker.kafka.groups.model import (
    LEGAL_TRANSITIONS,
    NO_REQUEST,
    UNKNOWN_MEMBER_ID,
    Answer,
    CommittedOffset,
    GroupSettings,
    GroupSnapshot,
    GroupState,
    JoinAnswer,
    JoinRequest,
    Member,
    MemberSnapshot,
    SyncAnswer,
)

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _checked(method: _Method) -> _Method:
    """Asserts the group's invariants after a public call (STYLE §4)."""

    @functools.wraps(method)
    def checked(self: ClassicGroup, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        self.check_invariants()
        return result

    return checked  # type: ignore[return-value]


@dataclass(slots=True)
class _JoinPhase:
    """The timers of PREPARING_REBALANCE: Kafka's DelayedJoin, or its InitialDelayedJoin for a
    group that was empty (which waits for more members before the first generation)."""

    deadline_ms: int
    initial: bool
    remaining_ms: int = 0  # initial delay: how much longer it may still be extended
    new_member_added: bool = False


CONSUMER_PROTOCOL_TYPE = "consumer"


def subscribed_topics(metadata: bytes) -> set[str] | None:
    """The topics of a consumer's ConsumerProtocolSubscription (every version starts with
    int16 version, then an array of int16-length strings), None if they cannot be read."""
    try:
        (count,) = struct.unpack_from(">i", metadata, 2)
        if not 0 <= count <= len(metadata):
            return None
        position, topics = 6, set()
        for _ in range(count):
            (length,) = struct.unpack_from(">h", metadata, position)
            position += 2
            if length < 0 or position + length > len(metadata):
                return None
            topics.add(metadata[position : position + length].decode())
            position += length
        return topics
    except (struct.error, UnicodeDecodeError):
        return None


@dataclass(slots=True)
class ClassicGroup:
    group_id: str
    settings: GroupSettings
    state: GroupState = GroupState.EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    state_timestamp_ms: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    pending_members: dict[str, int] = field(default_factory=dict)  # id -> expiry (ms)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    offsets: dict[tuple[str, int], CommittedOffset] = field(default_factory=dict)
    _join_phase: _JoinPhase | None = None
    _pending_sync: set[str] = field(default_factory=set)
    _sync_deadline_ms: int | None = None
    _storing_generation: int | None = None  # the leader's assignment being stored
    _stored_assignment: dict[str, bytes] = field(default_factory=dict)
    _answers: list[tuple[int, Answer]] = field(default_factory=list)
    _writes: list[GroupSnapshot] = field(default_factory=list)

    # -- outputs -------------------------------------------------------------------------------

    def take_answers(self) -> list[tuple[int, Answer]]:
        answers, self._answers = self._answers, []
        return answers

    def take_writes(self) -> list[GroupSnapshot]:
        writes, self._writes = self._writes, []
        return writes

    def _answer(self, request_id: int, answer: Answer) -> None:
        assert request_id != NO_REQUEST, f"answer {answer} to no request"
        self._answers.append((request_id, answer))

    # -- views ---------------------------------------------------------------------------------

    @property
    def is_empty(self) -> bool:
        return not self.members

    def snapshot(self, now_ms: int) -> GroupSnapshot:
        protocol = self.protocol_name
        return GroupSnapshot(
            group_id=self.group_id,
            protocol_type=self.protocol_type,
            generation_id=self.generation_id,
            protocol_name=protocol,
            leader=self.leader_id,
            state_timestamp_ms=now_ms,
            members=tuple(
                MemberSnapshot(
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout_ms=m.rebalance_timeout_ms,
                    session_timeout_ms=m.session_timeout_ms,
                    subscription=b"" if protocol is None else m.metadata(protocol),
                    assignment=m.assignment,
                )
                for m in self.members.values()
            ),
        )

    def check_invariants(self) -> None:
        """What holds between calls; each public call ends by asserting it."""
        if self.members:
            assert self.leader_id in self.members, f"leader {self.leader_id} is not a member"
        if self.state is GroupState.EMPTY:
            assert not self.members, f"empty group {self.group_id} has members"
        if self.state in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
            assert self.members, f"{self.state.value} group {self.group_id} has no member"
            assert self.protocol_name is not None, f"{self.group_id} has no protocol"
            assert not any(m.awaiting_join for m in self.members.values()), "a join is waiting"
        if self.state is not GroupState.COMPLETING_REBALANCE:
            assert not any(m.awaiting_sync for m in self.members.values()), "a sync is waiting"
            assert self._storing_generation is None, "an assignment is stored outside a sync"
        assert (self._join_phase is not None) == (self.state is GroupState.PREPARING_REBALANCE), (
            f"join phase {self._join_phase} in state {self.state.value}"
        )
        assert self._pending_sync <= set(self.members), "a pending sync of a non-member"
        for instance_id, member_id in self.static_members.items():
            static = self.members.get(member_id)
            assert static is not None, f"instance {instance_id} maps to a non-member"
            assert static.group_instance_id == instance_id, f"instance {instance_id} mismatched"

    def _transition_to(self, state: GroupState, now_ms: int) -> None:
        assert state in LEGAL_TRANSITIONS[self.state], f"{self.state} -> {state}"
        self.state = state
        self.state_timestamp_ms = now_ms

    def _rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def _supports(self, protocol_type: str, protocols: tuple[tuple[str, bytes], ...]) -> bool:
        """Kafka's supportsProtocols: an empty group takes any non-empty protocol list; a
        group with members wants the same type and a protocol every member supports."""
        if not protocol_type or not protocols:
            return False
        if self.is_empty:
            return True
        if protocol_type != self.protocol_type:
            return False
        counts = Counter(name for m in self.members.values() for name, _ in m.protocols)
        return any(counts[name] == len(self.members) for name, _ in protocols)

    def _candidate_protocols(self) -> set[str]:
        counts = Counter(name for m in self.members.values() for name, _ in m.protocols)
        return {name for name, count in counts.items() if count == len(self.members)}

    def _select_protocol(self) -> str:
        """Each member votes for its most preferred candidate; the most votes win, ties go to
        the earliest in the first member's preference (Kafka breaks ties arbitrarily)."""
        candidates = self._candidate_protocols()
        assert candidates, f"group {self.group_id}: no protocol every member supports"
        votes = Counter(m.vote(candidates) for m in self.members.values())
        first = next(iter(self.members.values()))
        order = [name for name, _ in first.protocols if name in candidates]
        return max(order, key=lambda name: (votes[name], -order.index(name)))

    # -- JoinGroup -----------------------------------------------------------------------------

    @_checked
    def join(self, request_id: int, request: JoinRequest, now_ms: int) -> None:
        def refuse(error: ErrorCode) -> None:
            self._answer(request_id, JoinAnswer(request.member_id, error))

        if not (
            self.settings.min_session_timeout_ms
            <= request.session_timeout_ms
            <= self.settings.max_session_timeout_ms
        ):
            refuse(ErrorCode.invalid_session_timeout)
        elif self.state is GroupState.DEAD:
            refuse(ErrorCode.coordinator_not_available)
        elif not self._supports(request.protocol_type, request.protocols):
            refuse(ErrorCode.inconsistent_group_protocol)
        elif self._fenced(request.group_instance_id, request.member_id, joining=True):
            refuse(ErrorCode.fenced_instance_id)
        elif request.member_id == UNKNOWN_MEMBER_ID and request.group_instance_id is not None:
            self._join_static_member(request_id, request, now_ms)
        elif request.member_id == UNKNOWN_MEMBER_ID:
            self._join_unknown_member(request_id, request, now_ms)
        elif request.member_id in self.pending_members:
            del self.pending_members[request.member_id]
            self._add_member_and_rebalance(request_id, request, request.member_id, now_ms)
        elif request.member_id not in self.members:
            refuse(ErrorCode.unknown_member_id)
        else:
            self._join_known_member(request_id, request, now_ms)

    def _join_unknown_member(self, request_id: int, request: JoinRequest, now_ms: int) -> None:
        member_id = request.new_member_id
        assert member_id, "the shell gives every join a fresh member id"
        assert member_id not in self.members, f"member id {member_id} is not fresh"
        if request.require_known_member_id:
            # KIP-394: the member joins again with this id; until then it is pending
            self.pending_members[member_id] = now_ms + request.session_timeout_ms
            self._answer(request_id, JoinAnswer(member_id, ErrorCode.member_id_required))
            return
        self._add_member_and_rebalance(request_id, request, member_id, now_ms)

    def _fenced(self, instance_id: str | None, member_id: str, joining: bool = False) -> bool:
        """KIP-345: a static member's instance id belongs to the member id it last joined
        with; an older incarnation using another id is fenced (a new one joins with none)."""
        if instance_id is None or instance_id not in self.static_members:
            return False
        if joining and member_id == UNKNOWN_MEMBER_ID:
            return False
        return self.static_members[instance_id] != member_id

    def _join_static_member(self, request_id: int, request: JoinRequest, now_ms: int) -> None:
        """KIP-345: a static member joins without MEMBER_ID_REQUIRED; one that restarts
        takes its old entry over under a new id, and a Stable group keeps its generation and
        assignment (no rebalance) when the member's protocols are unchanged."""
        instance_id = request.group_instance_id
        assert instance_id is not None
        old_id = self.static_members.get(instance_id)
        if old_id is None:
            self.static_members[instance_id] = request.new_member_id
            self._add_member_and_rebalance(request_id, request, request.new_member_id, now_ms)
            return
        member = self._replace_static_member(old_id, request.new_member_id, now_ms)
        unchanged = member.protocols == request.protocols
        if self.state is GroupState.STABLE and unchanged:
            member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms
            answer = self._join_answer(member)
            skip = member.member_id == self.leader_id
            self._answer(request_id, dataclasses.replace(answer, skip_assignment=skip))
            self._writes.append(self.snapshot(now_ms))  # the new member id, for a successor
        else:
            self._update_member_and_rebalance(request_id, member, request, now_ms)

    def _replace_static_member(self, old_id: str, new_id: str, now_ms: int) -> Member:
        member = self.members.pop(old_id)
        fenced_join, fenced_sync = member.join_request, member.sync_request
        member.join_request = member.sync_request = NO_REQUEST
        if fenced_join != NO_REQUEST:
            self._answer(fenced_join, JoinAnswer(old_id, ErrorCode.fenced_instance_id))
        if fenced_sync != NO_REQUEST:
            self._answer(fenced_sync, SyncAnswer(old_id, ErrorCode.fenced_instance_id))
        member.member_id = new_id
        self.members[new_id] = member
        assert member.group_instance_id is not None
        self.static_members[member.group_instance_id] = new_id
        if self.leader_id == old_id:
            self.leader_id = new_id
        if old_id in self._pending_sync:
            self._pending_sync.discard(old_id)
            self._pending_sync.add(new_id)
        if self._stored_assignment and old_id in self._stored_assignment:
            self._stored_assignment[new_id] = self._stored_assignment.pop(old_id)
        del now_ms
        return member

    def _join_known_member(self, request_id: int, request: JoinRequest, now_ms: int) -> None:
        member = self.members[request.member_id]
        if self.state is GroupState.PREPARING_REBALANCE:
            self._update_member_and_rebalance(request_id, member, request, now_ms)
        elif self.state is GroupState.COMPLETING_REBALANCE:
            if member.protocols == request.protocols:
                # its join answer was lost: answer it again with the current generation
                self._answer(request_id, self._join_answer(member))
            else:
                self._update_member_and_rebalance(request_id, member, request, now_ms)
        elif self.state is GroupState.STABLE:
            if member.member_id == self.leader_id or member.protocols != request.protocols:
                # the leader rejoins to rebalance (new topics); others when they change
                self._update_member_and_rebalance(request_id, member, request, now_ms)
            else:
                self._answer(request_id, self._join_answer(member))
        else:
            self._answer(request_id, JoinAnswer(member.member_id, ErrorCode.unknown_member_id))

    def _add_member_and_rebalance(
        self, request_id: int, request: JoinRequest, member_id: str, now_ms: int
    ) -> None:
        member = Member(
            member_id=member_id,
            group_instance_id=request.group_instance_id,
            client_id=request.client_id,
            client_host=request.client_host,
            session_timeout_ms=request.session_timeout_ms,
            rebalance_timeout_ms=request.rebalance_timeout_ms,
            protocol_type=request.protocol_type,
            protocols=request.protocols,
            join_request=request_id,
            heartbeat_deadline_ms=now_ms + request.session_timeout_ms,
        )
        if self.is_empty:
            self.protocol_type = request.protocol_type
        if self.leader_id is None:
            self.leader_id = member_id
        self.members[member_id] = member
        if self._join_phase is not None and self._join_phase.initial:
            self._join_phase.new_member_added = True
        self._maybe_prepare_rebalance(now_ms)
        self._maybe_complete_join(now_ms)

    def _update_member_and_rebalance(
        self, request_id: int, member: Member, request: JoinRequest, now_ms: int
    ) -> None:
        if member.awaiting_join:
            # a client that sent JoinGroup again waits on the new request only
            self._answer(
                member.join_request,
                JoinAnswer(member.member_id, ErrorCode.rebalance_in_progress),
            )
        member.protocols = request.protocols
        member.session_timeout_ms = request.session_timeout_ms
        member.rebalance_timeout_ms = request.rebalance_timeout_ms
        member.client_id = request.client_id
        member.client_host = request.client_host
        member.join_request = request_id
        self._maybe_prepare_rebalance(now_ms)
        self._maybe_complete_join(now_ms)

    def _join_answer(self, member: Member) -> JoinAnswer:
        assert self.protocol_name is not None, f"group {self.group_id} has no protocol yet"
        members: tuple[tuple[str, str | None, bytes], ...] = ()
        if member.member_id == self.leader_id:
            members = tuple(
                (m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
                for m in self.members.values()
            )
        return JoinAnswer(
            member.member_id,
            ErrorCode.none,
            generation_id=self.generation_id,
            protocol_type=self.protocol_type,
            protocol_name=self.protocol_name,
            leader=self.leader_id or "",
            members=members,
        )

    # -- rebalances ----------------------------------------------------------------------------

    def _maybe_prepare_rebalance(self, now_ms: int) -> None:
        if self.state in (GroupState.EMPTY, GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(now_ms)

    def _prepare_rebalance(self, now_ms: int) -> None:
        if self.state is GroupState.COMPLETING_REBALANCE:
            self._fail_pending_syncs(ErrorCode.rebalance_in_progress, now_ms)
        self._pending_sync.clear()
        self._sync_deadline_ms = None
        self._storing_generation = None
        rebalance_timeout_ms = self._rebalance_timeout_ms()
        if self.state is GroupState.EMPTY:
            delay_ms = self.settings.initial_rebalance_delay_ms
            self._join_phase = _JoinPhase(
                deadline_ms=now_ms + delay_ms,
                initial=True,
                remaining_ms=max(rebalance_timeout_ms - delay_ms, 0),
            )
        else:
            self._join_phase = _JoinPhase(deadline_ms=now_ms + rebalance_timeout_ms, initial=False)
        self._transition_to(GroupState.PREPARING_REBALANCE, now_ms)
        self._maybe_complete_join(now_ms)  # Kafka's tryCompleteElseWatch: no member left

    def _all_members_joined(self) -> bool:
        return not self.pending_members and all(m.awaiting_join for m in self.members.values())

    def _maybe_complete_join(self, now_ms: int) -> None:
        """Kafka's DelayedJoin.tryComplete: the join phase ends early once every member has
        rejoined, except the initial delay, which always runs out."""
        phase = self._join_phase
        if self.state is not GroupState.PREPARING_REBALANCE or phase is None:
            return
        if not phase.initial and self._all_members_joined():
            self._complete_join(now_ms)

    def _complete_join(self, now_ms: int) -> None:
        assert self.state is GroupState.PREPARING_REBALANCE, self.state
        self._join_phase = None
        for member in [m for m in self.members.values() if not m.awaiting_join]:
            self._remove_member(member.member_id)  # it did not rejoin in time
        if self.leader_id is not None and not self.members[self.leader_id].awaiting_join:
            self.leader_id = None
        if self.leader_id is None and self.members:
            self.leader_id = next(iter(self.members))
        self.generation_id += 1
        if not self.members:
            self.protocol_name = None
            self._transition_to(GroupState.EMPTY, now_ms)
            self._writes.append(self.snapshot(now_ms))
            return
        self.protocol_name = self._select_protocol()
        self._transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        for member in self.members.values():
            self._answer(member.join_request, self._join_answer(member))
            member.join_request = NO_REQUEST
            member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms
        self._pending_sync = set(self.members)
        self._sync_deadline_ms = now_ms + self._rebalance_timeout_ms()

    def _remove_member(self, member_id: str) -> None:
        member = self.members.pop(member_id)
        instance_id = member.group_instance_id
        if instance_id is not None and self.static_members.get(instance_id) == member_id:
            del self.static_members[instance_id]
        if member.awaiting_join:
            self._answer(member.join_request, JoinAnswer(member_id, ErrorCode.unknown_member_id))
        if member.awaiting_sync:
            self._answer(member.sync_request, SyncAnswer(member_id, ErrorCode.unknown_member_id))
        self._pending_sync.discard(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)

    def _remove_member_and_update_group(self, member_id: str, now_ms: int) -> None:
        self._remove_member(member_id)
        if self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(now_ms)
        elif self.state is GroupState.PREPARING_REBALANCE:
            self._maybe_complete_join(now_ms)

    def _fail_pending_syncs(self, error: ErrorCode, now_ms: int) -> None:
        for member in self.members.values():
            if member.awaiting_sync:
                self._answer(member.sync_request, SyncAnswer(member.member_id, error))
                member.sync_request = NO_REQUEST
                # it could not heartbeat while it waited: its session starts again now
                member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms

    # -- SyncGroup -----------------------------------------------------------------------------

    @_checked
    def sync(
        self,
        request_id: int,
        member_id: str,
        generation_id: int,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
        now_ms: int,
        instance_id: str | None = None,
    ) -> None:
        def refuse(error: ErrorCode) -> None:
            self._answer(request_id, SyncAnswer(member_id, error))

        if self.state is GroupState.DEAD:
            return refuse(ErrorCode.coordinator_not_available)
        if self._fenced(instance_id, member_id):
            return refuse(ErrorCode.fenced_instance_id)
        member = self.members.get(member_id)
        if member is None:
            return refuse(ErrorCode.unknown_member_id)
        if generation_id != self.generation_id:
            return refuse(ErrorCode.illegal_generation)
        if (protocol_type is not None and protocol_type != self.protocol_type) or (
            protocol_name is not None and protocol_name != self.protocol_name
        ):
            return refuse(ErrorCode.inconsistent_group_protocol)
        if self.state is GroupState.EMPTY:
            return refuse(ErrorCode.unknown_member_id)
        if self.state is GroupState.PREPARING_REBALANCE:
            return refuse(ErrorCode.rebalance_in_progress)
        self._pending_sync.discard(member_id)
        member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms
        if self.state is GroupState.STABLE:
            return self._answer(request_id, self._sync_answer(member))
        assert self.state is GroupState.COMPLETING_REBALANCE, self.state
        if member.awaiting_sync:
            self._answer(
                member.sync_request, SyncAnswer(member_id, ErrorCode.rebalance_in_progress)
            )
        member.sync_request = request_id
        if member_id == self.leader_id and self._storing_generation is None:
            self._stored_assignment = {m: assignments.get(m, b"") for m in self.members}
            self._storing_generation = self.generation_id
            snapshot = self.snapshot(now_ms)
            members = tuple(
                dataclasses.replace(m, assignment=self._stored_assignment[m.member_id])
                for m in snapshot.members
            )
            self._writes.append(dataclasses.replace(snapshot, members=members))
        return None

    @_checked
    def on_group_stored(self, generation_id: int, error: ErrorCode, now_ms: int) -> None:
        """The shell stored (or failed to store) the leader's assignment of a generation."""
        if (
            self.state is not GroupState.COMPLETING_REBALANCE
            or generation_id != self.generation_id
            or self._storing_generation != generation_id
        ):
            return  # the group moved on; the stale write is harmless (loading keeps the last)
        self._storing_generation = None
        if error is not ErrorCode.none:
            self._fail_pending_syncs(error, now_ms)
            self._prepare_rebalance(now_ms)
            return
        for member in self.members.values():
            member.assignment = self._stored_assignment.get(member.member_id, b"")
        self._stored_assignment = {}
        self._sync_deadline_ms = None
        self._transition_to(GroupState.STABLE, now_ms)
        for member in self.members.values():
            if member.awaiting_sync:
                self._answer(member.sync_request, self._sync_answer(member))
                member.sync_request = NO_REQUEST
            member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms

    def _sync_answer(self, member: Member) -> SyncAnswer:
        return SyncAnswer(
            member.member_id,
            ErrorCode.none,
            protocol_type=self.protocol_type,
            protocol_name=self.protocol_name,
            assignment=member.assignment,
        )

    # -- Heartbeat, LeaveGroup, OffsetCommit checks --------------------------------------------

    @_checked
    def heartbeat(
        self, member_id: str, generation_id: int, now_ms: int, instance_id: str | None = None
    ) -> ErrorCode:
        if self.state is GroupState.DEAD:
            return ErrorCode.coordinator_not_available
        if self._fenced(instance_id, member_id):
            return ErrorCode.fenced_instance_id
        member = self.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        if generation_id != self.generation_id:
            return ErrorCode.illegal_generation
        if self.state is GroupState.EMPTY:
            return ErrorCode.unknown_member_id
        member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms
        if self.state is GroupState.PREPARING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    @_checked
    def leave(self, members: list[tuple[str, str | None]], now_ms: int) -> list[ErrorCode]:
        """LeaveGroup (v3+ names several members, by member id and, for static members,
        instance id; an empty member id with an instance id removes that static member, as
        admin tools do): one code per member."""
        if self.state is GroupState.DEAD:
            return [ErrorCode.coordinator_not_available for _ in members]
        errors = []
        for member_id, instance_id in members:
            if instance_id is not None:
                known = self.static_members.get(instance_id)
                if known is None:
                    errors.append(ErrorCode.unknown_member_id)
                    continue
                if member_id not in (UNKNOWN_MEMBER_ID, known):
                    errors.append(ErrorCode.fenced_instance_id)
                    continue
                member_id = known
            if member_id in self.pending_members:
                del self.pending_members[member_id]
                self._maybe_complete_join(now_ms)
                errors.append(ErrorCode.none)
            elif member_id not in self.members:
                errors.append(ErrorCode.unknown_member_id)
            else:
                self._remove_member_and_update_group(member_id, now_ms)
                errors.append(ErrorCode.none)
        return errors

    @_checked
    def check_commit(
        self, member_id: str, generation_id: int, now_ms: int, instance_id: str | None = None
    ) -> ErrorCode:
        """Whether an OffsetCommit may be stored (Kafka's validateOffsetCommit): members of
        the current generation may commit while Stable or while a rebalance prepares (so they
        commit before giving partitions up); an empty group takes commits from outside group
        management (generation -1)."""
        if self.state is GroupState.DEAD:
            return ErrorCode.coordinator_not_available
        if generation_id < 0 and self.state is GroupState.EMPTY:
            return ErrorCode.none
        if self._fenced(instance_id, member_id):
            return ErrorCode.fenced_instance_id
        if self.state is GroupState.COMPLETING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        member = self.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        if generation_id != self.generation_id:
            return ErrorCode.illegal_generation
        member.heartbeat_deadline_ms = now_ms + member.session_timeout_ms
        return ErrorCode.none

    @_checked
    def delete(self, now_ms: int) -> ErrorCode:
        """DeleteGroups: only an empty group goes (Kafka's NON_EMPTY_GROUP otherwise); it is
        Dead from then on, and the shell writes the tombstones."""
        if self.state is GroupState.DEAD:
            return ErrorCode.group_id_not_found
        if self.state is not GroupState.EMPTY or self.members or self.pending_members:
            return ErrorCode.non_empty_group
        self._transition_to(GroupState.DEAD, now_ms)
        return ErrorCode.none

    def apply_commits(self, offsets: dict[tuple[str, int], CommittedOffset]) -> None:
        self.offsets.update(offsets)

    def check_offset_delete(self, topics: set[str]) -> tuple[ErrorCode, set[str]]:
        """OffsetDelete (KIP-496, Kafka's handleDeleteOffsets): the group's error and, of
        `topics`, those whose offsets it may not lose because a member consumes them (each
        answered GROUP_SUBSCRIBED_TO_TOPIC). An empty group's offsets may all go; a
        consumer group's only for topics no member subscribes to; another protocol's
        (Connect's) only once it is empty. A member subscription that cannot be read
        counts as subscribing to every topic: a group that is consuming must not be
        rewound."""
        if self.state is GroupState.DEAD:
            return ErrorCode.group_id_not_found, set()
        if self.is_empty:
            return ErrorCode.none, set()
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE or self.protocol_name is None:
            return ErrorCode.non_empty_group, set()
        subscribed: set[str] = set()
        for member in self.members.values():
            member_topics = subscribed_topics(member.metadata(self.protocol_name))
            if member_topics is None:
                return ErrorCode.none, set(topics)
            subscribed |= member_topics
        return ErrorCode.none, topics & subscribed

    def forget_offsets(self, partitions: list[tuple[str, int]]) -> None:
        for partition in partitions:
            self.offsets.pop(partition, None)

    # -- timers --------------------------------------------------------------------------------

    @_checked
    def tick(self, now_ms: int) -> None:
        if self.state is GroupState.DEAD:
            return
        for member_id, expiry_ms in list(self.pending_members.items()):
            if now_ms >= expiry_ms:
                del self.pending_members[member_id]
                self._maybe_complete_join(now_ms)
        for member in list(self.members.values()):
            if member.member_id not in self.members:
                continue
            # members waiting for an answer are alive: they cannot heartbeat meanwhile
            alive = member.awaiting_join or member.awaiting_sync
            if not alive and now_ms >= member.heartbeat_deadline_ms:
                self._remove_member_and_update_group(member.member_id, now_ms)
        self._tick_join_phase(now_ms)
        if (
            self.state is GroupState.COMPLETING_REBALANCE
            and self._sync_deadline_ms is not None
            and now_ms >= self._sync_deadline_ms
            and self._pending_sync
        ):
            # KIP-814's DelayedSync: members that never synced are removed
            for member_id in sorted(self._pending_sync):
                self._remove_member(member_id)
            self._prepare_rebalance(now_ms)

    def _tick_join_phase(self, now_ms: int) -> None:
        phase = self._join_phase
        if self.state is not GroupState.PREPARING_REBALANCE or phase is None:
            return
        if now_ms < phase.deadline_ms:
            return
        if phase.initial and phase.new_member_added and phase.remaining_ms > 0:
            # Kafka's InitialDelayedJoin: wait another delay while members keep arriving
            delay_ms = min(self.settings.initial_rebalance_delay_ms, phase.remaining_ms)
            phase.new_member_added = False
            phase.remaining_ms -= delay_ms
            phase.deadline_ms = now_ms + delay_ms
            return
        self._complete_join(now_ms)

    # -- unloading -----------------------------------------------------------------------------

    @_checked
    def unload(self, now_ms: int) -> None:
        """This broker no longer coordinates the group: waiting members hear NOT_COORDINATOR
        and find the new coordinator."""
        for member in self.members.values():
            if member.awaiting_join:
                self._answer(
                    member.join_request, JoinAnswer(member.member_id, ErrorCode.not_coordinator)
                )
                member.join_request = NO_REQUEST
            if member.awaiting_sync:
                self._answer(
                    member.sync_request, SyncAnswer(member.member_id, ErrorCode.not_coordinator)
                )
                member.sync_request = NO_REQUEST
        self._join_phase = None
        self._storing_generation = None
        self._pending_sync.clear()
        if self.state is not GroupState.DEAD:
            self._transition_to(GroupState.DEAD, now_ms)

    # -- loading -------------------------------------------------------------------------------

    @classmethod
    def loaded(
        cls,
        group_id: str,
        settings: GroupSettings,
        snapshot: GroupSnapshot | None,
        offsets: dict[tuple[str, int], CommittedOffset],
        now_ms: int,
    ) -> ClassicGroup:
        """A group rebuilt from the offsets topic: Stable with its stored members (who keep
        heartbeating to their new coordinator), or Empty; sessions start afresh now."""
        group = cls(group_id, settings, offsets=dict(offsets), state_timestamp_ms=now_ms)
        if snapshot is None:
            return group
        group.generation_id = snapshot.generation_id
        group.protocol_type = snapshot.protocol_type
        group.protocol_name = snapshot.protocol_name
        if not snapshot.members or snapshot.protocol_name is None:
            return group
        for stored in snapshot.members:
            group.members[stored.member_id] = Member(
                member_id=stored.member_id,
                group_instance_id=stored.group_instance_id,
                client_id=stored.client_id,
                client_host=stored.client_host,
                session_timeout_ms=stored.session_timeout_ms,
                rebalance_timeout_ms=stored.rebalance_timeout_ms,
                protocol_type=snapshot.protocol_type or "",
                protocols=((snapshot.protocol_name, stored.subscription),),
                assignment=stored.assignment,
                heartbeat_deadline_ms=now_ms + stored.session_timeout_ms,
            )
            if stored.group_instance_id is not None:
                group.static_members[stored.group_instance_id] = stored.member_id
        group.leader_id = snapshot.leader if snapshot.leader in group.members else None
        if group.leader_id is None:
            group.leader_id = next(iter(group.members))
        group.state = GroupState.STABLE
        return group
