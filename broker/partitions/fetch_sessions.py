"""Incremental fetch sessions for followers (Kafka's KIP-227, on the native replica fetch),
both sides, without I/O.

A follower fetches every partition it follows on a leader in one request, over and over; at
one record per produce nearly all of them are idle each time. Without a session each request
lists them all and each answer carries them all back, so the follower handles every idle
partition twice per record, and the cost of a record grows with the partitions that are NOT
written. With a session the leader remembers the partitions and their fetch positions:

- A request with `session_epoch` 0 is full: it lists every partition, the leader opens a new
  session (replacing that follower's previous one) and answers every partition, with the
  session's id.
- A request with the session's id and its next epoch (1, 2, ...) is incremental: it lists
  only the partitions added or whose fetch position changed, and names in `forgotten` those
  the follower no longer fetches. The leader reads every partition of the session, as
  before, but answers only those with news: records, an error, a diverging epoch, or a high
  watermark, log start, log end or leader epoch other than what it last told the follower.
  A partition left out of an answer has nothing new: its fetch stays as it was.
- An unknown id or an epoch out of turn is answered FETCH_SESSION_ID_NOT_FOUND or
  INVALID_FETCH_SESSION_EPOCH as a whole; the follower then starts over with a full
  request. So does a follower whose request failed in any way: a lost answer can never leave
  it believing what the leader thinks it was told.

A request without `session_epoch` is a sessionless full fetch, as before (an older
follower, or a native client's consumer fetch).
"""

from __future__ import annotations

import collections
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kraft.protocol.errors import ErrorCode
from kraft.protocol.native import MAX_PARTITIONS_PER_REQUEST

if TYPE_CHECKING:
    from broker.partitions.manager import PartitionFetch, PartitionFetchResult

# Sessions one leader keeps; past it the least recently used goes (Kafka's
# max.incremental.fetch.session.cache.slots is 1000). Each follower has at most one.
MAX_FETCH_SESSIONS = 1_000
# The epoch of a full request, which opens a session; incremental ones count from 1.
FULL_FETCH_EPOCH = 0
NO_SESSION_ID = 0
SESSION_ID_MAX = 2**31 - 1
SESSION_EPOCH_MAX = 2**31 - 1

PartitionKey = tuple[str, int]  # (topic, partition)
# What a follower last said about a partition, and what the leader last told it back.
FetchPosition = tuple[str | None, int, int, int]  # topic id, offset, leader epoch, last epoch
_Told = tuple[int, int, int, int]  # high watermark, log start, log end, leader epoch


class FetchSessionError(Exception):
    """A request that names no session of this follower, or the wrong epoch of one."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def next_epoch(epoch: int) -> int:
    """The epoch after `epoch`; it wraps to 1, never to the full fetch's 0."""
    return 1 if epoch >= SESSION_EPOCH_MAX else epoch + 1


# -- the leader's side ---------------------------------------------------------------------


class LeaderFetchSession:
    """One follower's session on this leader: its partitions and what it was last told."""

    def __init__(self, session_id: int, replica_id: int) -> None:
        self.session_id = session_id
        self.replica_id = replica_id
        self.expected_epoch = 1
        self._partitions: dict[PartitionKey, PartitionFetch] = {}
        self._told: dict[PartitionKey, _Told] = {}

    def update(self, changed: Sequence[PartitionFetch], forgotten: Iterable[PartitionKey]) -> None:
        for key in forgotten:
            self._partitions.pop(key, None)
            self._told.pop(key, None)
        for request in changed:
            self._partitions[(request.topic, request.partition)] = request

    def keys(self) -> set[PartitionKey]:
        return set(self._partitions)

    def requests(self) -> list[PartitionFetch]:
        """Every partition of the session, as its follower last asked for it."""
        return list(self._partitions.values())

    def news(
        self, results: Sequence[PartitionFetchResult], *, everything: bool = False
    ) -> list[PartitionFetchResult]:
        """The results the follower must see (all of them with `everything`: the answer to a
        full request), remembering what it is told."""
        told = self._told
        shown = []
        for result in results:
            key = (result.topic, result.partition)
            now = (
                result.high_watermark,
                result.log_start_offset,
                result.log_end_offset,
                result.leader_epoch,
            )
            if (
                everything
                or result.records
                or result.error_code is not ErrorCode.NONE
                or result.diverging_epoch is not None
                or told.get(key) != now
            ):
                told[key] = now
                shown.append(result)
        return shown

    def __len__(self) -> int:
        return len(self._partitions)


class LeaderFetchSessions:
    """The sessions of one leader: at most one per follower, at most `max_sessions`."""

    def __init__(
        self,
        max_sessions: int = MAX_FETCH_SESSIONS,
        first_id: int | None = None,
        max_partitions: int = MAX_PARTITIONS_PER_REQUEST,
    ) -> None:
        """Ids start at `first_id`, by default at random: a follower that kept an id across
        a restart of this leader is then all but sure to be told the id is unknown."""
        if first_id is None:
            first_id = random.randint(1, SESSION_ID_MAX)
        assert max_sessions >= 1, f"room for {max_sessions} sessions"
        assert 1 <= first_id <= SESSION_ID_MAX, f"session id {first_id} out of range"
        self._max_sessions = max_sessions
        self._max_partitions = max_partitions  # in one session, as in one full request
        self._next_id = first_id
        # least recently used first
        self._sessions: collections.OrderedDict[int, LeaderFetchSession] = collections.OrderedDict()
        self._by_replica: dict[int, int] = {}

    def open(self, replica_id: int, requests: Sequence[PartitionFetch]) -> LeaderFetchSession:
        """A full request from `replica_id`: a new session with `requests`, replacing the
        follower's previous one."""
        previous = self._by_replica.pop(replica_id, None)
        if previous is not None:
            del self._sessions[previous]
        while len(self._sessions) >= self._max_sessions:
            _, evicted = self._sessions.popitem(last=False)
            del self._by_replica[evicted.replica_id]
        session = LeaderFetchSession(self._take_id(), replica_id)
        session.update(requests, ())
        self._sessions[session.session_id] = session
        self._by_replica[replica_id] = session.session_id
        return session

    def resume(
        self,
        replica_id: int,
        session_id: int,
        epoch: int,
        changed: Sequence[PartitionFetch],
        forgotten: Iterable[PartitionKey],
    ) -> LeaderFetchSession:
        """An incremental request; FetchSessionError when the session is not this
        follower's (anymore), when the epoch is not the one expected (the session is
        dropped: its follower starts over) or when the session would grow past
        max_partitions (INVALID_REQUEST, the session left as it was)."""
        session = self._sessions.get(session_id)
        if session is None or session.replica_id != replica_id:
            raise FetchSessionError(
                ErrorCode.FETCH_SESSION_ID_NOT_FOUND,
                f"no fetch session {session_id} of broker {replica_id} here",
            )
        if epoch != session.expected_epoch:
            self._drop(session)
            raise FetchSessionError(
                ErrorCode.INVALID_FETCH_SESSION_EPOCH,
                f"fetch session {session_id} expected epoch {session.expected_epoch}, got {epoch}",
            )
        forgotten = list(forgotten)
        size = len((session.keys() - set(forgotten)) | {(r.topic, r.partition) for r in changed})
        if size > self._max_partitions:  # refused with the session as it was
            raise FetchSessionError(
                ErrorCode.INVALID_REQUEST,
                f"fetch session {session_id} would hold {size} partitions; the limit is "
                f"{self._max_partitions}",
            )
        session.expected_epoch = next_epoch(epoch)
        session.update(changed, forgotten)
        self._sessions.move_to_end(session_id)
        return session

    def __len__(self) -> int:
        return len(self._sessions)

    def _drop(self, session: LeaderFetchSession) -> None:
        del self._sessions[session.session_id]
        del self._by_replica[session.replica_id]

    def _take_id(self) -> int:
        session_id = self._next_id
        while session_id in self._sessions:  # only after the ids wrapped
            session_id = 1 if session_id >= SESSION_ID_MAX else session_id + 1
        self._next_id = 1 if session_id >= SESSION_ID_MAX else session_id + 1
        return session_id


# -- the follower's side -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """What one fetch sends: the session fields, the partitions to list, those forgotten."""

    session_id: int
    epoch: int
    listed: list[PartitionKey]  # in the order given to plan()
    forgotten: list[PartitionKey]

    @property
    def is_full(self) -> bool:
        return self.epoch == FULL_FETCH_EPOCH


class FollowerFetchSession:
    """A fetcher's session with one leader: which partitions to list in the next request,
    and what the leader's session holds once an answer came."""

    def __init__(self) -> None:
        self.session_id = NO_SESSION_ID
        self._epoch = FULL_FETCH_EPOCH  # of the next request
        self._known: dict[PartitionKey, FetchPosition] = {}  # what the leader's session holds
        self._sent: dict[PartitionKey, FetchPosition] = {}  # the request in flight, all of it
        self._sent_full = True

    def plan(self, positions: dict[PartitionKey, FetchPosition]) -> SessionRequest:
        """The next request for `positions` (every partition fetched from this leader)."""
        self._sent = dict(positions)
        self._sent_full = self.session_id == NO_SESSION_ID
        if self._sent_full:
            return SessionRequest(NO_SESSION_ID, FULL_FETCH_EPOCH, list(positions), [])
        known = self._known
        listed = [key for key, position in positions.items() if known.get(key) != position]
        forgotten = [key for key in known if key not in positions]
        return SessionRequest(self.session_id, self._epoch, listed, forgotten)

    def on_answer(self, session_id: int) -> None:
        """The leader answered the planned request; `session_id` is the one its answer
        names (NO_SESSION_ID from a leader without sessions: every request stays full)."""
        if session_id == NO_SESSION_ID or (not self._sent_full and session_id != self.session_id):
            self.reset()
            return
        if self._sent_full:  # the full request opened this session
            self.session_id = session_id
            self._epoch = 1
        else:
            self._epoch = next_epoch(self._epoch)
        self._known, self._sent = self._sent, {}

    def reset(self) -> None:
        """The request failed, or the leader refused the session: start over, full."""
        self.session_id = NO_SESSION_ID
        self._epoch = FULL_FETCH_EPOCH
        self._known = {}
        self._sent = {}
        self._sent_full = True
