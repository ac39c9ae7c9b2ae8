"""The leader side of partition replication, pure: one `PartitionLeaderState` per partition
this broker leads, for one leader epoch. Built when the committed metadata names this
broker leader in epoch E; dropped when a registration with another leader or epoch arrives.

It tracks each follower's log end offset and last caught-up time from the fetches it
serves, advances the high watermark (the minimum log end offset over the ISR), proposes ISR
changes to the controller (KIP-497, one in flight) and decides when produces may be
answered. The shell does all I/O: it reads the records an answer carries, sends the
AlterPartition request, and answers produces listed by `completed_produces()`.

Pending ISR changes (Kafka's PendingExpandIsr / PendingShrinkIsr): the ISR used for the
high watermark is the *maximal* one, the committed ISR joined with a proposed member while
an expansion is in flight; while a shrink is in flight the committed (larger) ISR still
counts. So the high watermark never passes a record that any replica of the committed ISR,
or of the ISR the controller may be committing, lacks. A rejection that may answer a resent
duplicate of an applied request (STALE_EPOCH, NOT_LEADER) keeps that maximal ISR until a
newer registration shows the outcome; min.insync.replicas is checked against the committed
ISR only.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.replication.types import (
    NO_BROKER_EPOCH,
    UNDEFINED_EPOCH,
    Acks,
    AlterPartitionRejection,
    AlterPartitionRequest,
    EndOffsetForEpoch,
    EpochEndOffset,
    FetchAnswer,
    ProduceCompletion,
    ReplicationError,
)
from kraft.controller.image import PartitionRegistration

REPLICA_LAG_TIME_MAX_MS = 30_000  # Kafka's replica.lag.time.max.ms default
MAX_PENDING_PRODUCES = 10_000
# A follower the controller refused to add (INELIGIBLE_REPLICA: fenced, shutting down, or a
# stale broker epoch) is not proposed again for this long: its fetches come every few ms,
# and each would otherwise send another doomed AlterPartition (seen in kraft chaos runs).
INELIGIBLE_EXPANSION_BACKOFF_MS = 500


class TooManyPendingProducesError(Exception):
    """acks=all produces waiting for the high watermark hit MAX_PENDING_PRODUCES."""


@dataclass(slots=True)
class FollowerProgress:
    """What the leader knows of one follower, from the fetches it served (Kafka's Replica)."""

    broker_epoch: int = NO_BROKER_EPOCH  # the incarnation these facts are about (KIP-903)
    log_end_offset: int | None = None  # unknown until its first consistent fetch
    last_caught_up_ms: int | None = None
    last_fetch_leader_log_end_offset: int | None = None
    last_fetch_ms: int | None = None


@dataclass(frozen=True, slots=True)
class _PendingProduce:
    produce_id: int
    last_offset: int
    min_insync_replicas: int


class PartitionLeaderState:
    """Leader bookkeeping for one partition in one leader epoch (see the module docstring)."""

    def __init__(
        self,
        broker_id: int,
        registration: PartitionRegistration,
        log_end_offset: int,
        high_watermark: int,
        now_ms: int,
        replica_lag_time_max_ms: int = REPLICA_LAG_TIME_MAX_MS,
        min_insync_replicas: int = 1,
    ) -> None:
        """`log_end_offset` is the log's end when leadership starts: the shell has assigned
        the leader epoch at it (the epoch's start offset, Kafka's leaderEpochStartOffset).
        `high_watermark` is the one the broker knew as follower (at most its log end)."""
        assert registration.leader == broker_id, (
            f"broker {broker_id} is not the leader {registration.leader} of the registration"
        )
        assert broker_id in registration.isr, f"leader {broker_id} not in ISR {registration.isr}"
        assert 0 <= high_watermark <= log_end_offset, (
            f"high watermark {high_watermark} outside [0, log end offset {log_end_offset}]"
        )
        assert replica_lag_time_max_ms > 0, "replica.lag.time.max.ms must be positive"
        self.broker_id = broker_id
        self.registration = registration
        self.epoch_start_offset = log_end_offset
        self.log_end_offset = log_end_offset
        self.high_watermark = high_watermark
        self.replica_lag_time_max_ms = replica_lag_time_max_ms
        self.min_insync_replicas = min_insync_replicas  # the topic's; the shell keeps it current
        self.followers: dict[int, FollowerProgress] = {
            replica: FollowerProgress(
                last_caught_up_ms=now_ms if replica in registration.isr else None
            )
            for replica in registration.replicas
            if replica != broker_id
        }
        self.in_flight_alter_partition: AlterPartitionRequest | None = None
        self._alter_partition_unsent = False
        self._rejected_awaiting_metadata = False
        self._pending: dict[int, _PendingProduce] = {}
        self._completed: list[ProduceCompletion] = []
        self._next_produce_id = 0
        self.resigned = False
        self._now_ms = now_ms  # the latest time a tick or a fetch brought
        self._expansion_refused_until_ms: dict[int, int] = {}  # replica -> ms

    # -- read-only views -------------------------------------------------------------------

    @property
    def leader_epoch(self) -> int:
        return self.registration.leader_epoch

    @property
    def committed_isr(self) -> tuple[int, ...]:
        return self.registration.isr

    @property
    def maximal_isr(self) -> frozenset[int]:
        """The ISR the high watermark is computed over (see the module docstring)."""
        isr = frozenset(self.registration.isr)
        if self.in_flight_alter_partition is not None:
            isr |= frozenset(self.in_flight_alter_partition.new_isr)
        return isr

    def follower_log_end_offset(self, replica_id: int) -> int | None:
        return self.followers[replica_id].log_end_offset

    # -- local appends and produces --------------------------------------------------------

    def check_produce(self, acks: Acks, min_insync_replicas: int) -> ReplicationError:
        """Whether a produce may be appended now: NOT_ENOUGH_REPLICAS when acks=all and the
        committed ISR is smaller than min.insync.replicas (then nothing may be appended)."""
        self._check_leading()
        assert min_insync_replicas >= 1, f"min.insync.replicas {min_insync_replicas} below 1"
        if acks is Acks.ALL and len(self.committed_isr) < min_insync_replicas:
            return ReplicationError.NOT_ENOUGH_REPLICAS
        return ReplicationError.NONE

    def on_local_append(self, log_end_offset: int) -> None:
        """The shell appended to the leader's log, which now ends at log_end_offset."""
        self._check_leading()
        assert log_end_offset >= self.log_end_offset, (
            f"leader log end offset went back from {self.log_end_offset} to {log_end_offset}"
        )
        if log_end_offset == self.log_end_offset:
            return  # nothing new here: the high watermark moves only with a follower
        self.log_end_offset = log_end_offset
        self.maybe_advance_high_watermark()

    def register_pending_produce(
        self, last_offset: int, acks: Acks, min_insync_replicas: int
    ) -> int | None:
        """A produce was appended up to last_offset (after on_local_append). Returns its
        produce id, or None for acks=0 (never answered). acks=1 completes at once; acks=all
        once the high watermark passes last_offset, listed by completed_produces()."""
        self._check_leading()
        assert last_offset < self.log_end_offset, (
            f"produce ends at {last_offset}, past the log end offset {self.log_end_offset}"
        )
        if acks is Acks.NONE:
            return None
        produce_id = self._next_produce_id
        self._next_produce_id += 1
        if acks is Acks.LEADER:
            self._completed.append(
                ProduceCompletion(produce_id, last_offset, ReplicationError.NONE)
            )
            return produce_id
        if len(self._pending) >= MAX_PENDING_PRODUCES:
            raise TooManyPendingProducesError(
                f"{len(self._pending)} acks=all produces already wait for the high watermark "
                f"of partition {self.registration.partition_id} (limit {MAX_PENDING_PRODUCES})"
            )
        self._pending[produce_id] = _PendingProduce(produce_id, last_offset, min_insync_replicas)
        self._maybe_complete_produces()
        return produce_id

    def cancel_produce(self, produce_id: int) -> bool:
        """The shell timed a waiting produce out (REQUEST_TIMED_OUT); False if it was not
        waiting any more."""
        return self._pending.pop(produce_id, None) is not None

    def completed_produces(self) -> list[ProduceCompletion]:
        """Produces to answer now, in completion order; each is listed once."""
        completed, self._completed = self._completed, []
        return completed

    @property
    def pending_produce_count(self) -> int:
        return len(self._pending)

    # -- fetches from followers ------------------------------------------------------------

    def on_fetch(
        self,
        replica_id: int,
        fetch_offset: int,
        last_fetched_epoch: int,
        leader_log_end_offset: int,
        now_ms: int,
        *,
        current_leader_epoch: int,
        end_offset_for_epoch: EndOffsetForEpoch,
        leader_log_start_offset: int = 0,
        replica_epoch: int = NO_BROKER_EPOCH,
    ) -> FetchAnswer:
        """A follower's fetch: the answer (records from fetch_offset, a diverging epoch, or an
        error). A consistent fetch updates the follower's progress, may advance the high
        watermark and may propose adding the follower to the ISR."""
        self._check_leading()
        self.on_local_append(leader_log_end_offset)
        error = self._epoch_error(current_leader_epoch)
        if error is ReplicationError.NONE and replica_id not in self.followers:
            error = ReplicationError.NOT_LEADER  # bad input: that broker has no replica here
        if error is ReplicationError.NONE and last_fetched_epoch > self.leader_epoch:
            error = ReplicationError.UNKNOWN_LEADER_EPOCH  # bad input: an epoch not yet begun
        if error is not ReplicationError.NONE:
            return self._answer(fetch_offset, last_fetched_epoch, error, leader_log_start_offset)
        if last_fetched_epoch != UNDEFINED_EPOCH:
            diverging = self._diverging_epoch(
                fetch_offset, last_fetched_epoch, end_offset_for_epoch
            )
            if diverging is not None:
                return self._answer(
                    fetch_offset,
                    last_fetched_epoch,
                    ReplicationError.NONE,
                    leader_log_start_offset,
                    diverging,
                )
        if not leader_log_start_offset <= fetch_offset <= self.log_end_offset:
            return self._answer(
                fetch_offset,
                last_fetched_epoch,
                ReplicationError.OFFSET_OUT_OF_RANGE,
                leader_log_start_offset,
            )
        self._now_ms = max(self._now_ms, now_ms)
        self._update_follower(replica_id, replica_epoch, fetch_offset, now_ms)
        self.maybe_advance_high_watermark()
        self._maybe_expand_isr(replica_id)
        return self._answer(
            fetch_offset, last_fetched_epoch, ReplicationError.NONE, leader_log_start_offset
        )

    def _epoch_error(self, current_leader_epoch: int) -> ReplicationError:
        if current_leader_epoch < self.leader_epoch:
            return ReplicationError.FENCED_LEADER_EPOCH
        if current_leader_epoch > self.leader_epoch:
            return ReplicationError.UNKNOWN_LEADER_EPOCH
        return ReplicationError.NONE

    def _diverging_epoch(
        self, fetch_offset: int, last_fetched_epoch: int, end_offset_for_epoch: EndOffsetForEpoch
    ) -> EpochEndOffset | None:
        """Kafka's Partition.fetchRecords check (KIP-320): the follower's last epoch ends
        earlier here, or is unknown here, so its suffix from there on diverges."""
        assert last_fetched_epoch <= self.leader_epoch, "checked by on_fetch"
        epoch, end_offset = end_offset_for_epoch(last_fetched_epoch)
        # The shell assigned our epoch at epoch_start_offset, so every epoch up to ours has
        # an answer (Kafka's leader does the same on becoming leader).
        assert epoch != UNDEFINED_EPOCH, f"the leader log knows no epoch at {last_fetched_epoch}"
        assert epoch <= last_fetched_epoch, f"answer epoch {epoch} above {last_fetched_epoch}"
        assert end_offset <= self.log_end_offset, f"epoch end {end_offset} past the log end"
        if epoch < last_fetched_epoch or end_offset < fetch_offset:
            return EpochEndOffset(epoch, end_offset)
        return None

    def _update_follower(
        self, replica_id: int, replica_epoch: int, fetch_offset: int, now_ms: int
    ) -> None:
        """Kafka's Replica.updateFetchState: caught up now if it fetched our log end; caught
        up as of its previous fetch if it now has what we had then. A new incarnation of
        the follower (a restart) keeps only its last caught-up time."""
        progress = self.followers[replica_id]
        if replica_epoch != progress.broker_epoch:
            progress = FollowerProgress(
                broker_epoch=replica_epoch, last_caught_up_ms=progress.last_caught_up_ms
            )
            self.followers[replica_id] = progress
        if fetch_offset >= self.log_end_offset:
            progress.last_caught_up_ms = now_ms
        elif (
            progress.last_fetch_leader_log_end_offset is not None
            and progress.last_fetch_ms is not None
            and fetch_offset >= progress.last_fetch_leader_log_end_offset
        ):
            progress.last_caught_up_ms = max(
                progress.last_caught_up_ms or 0, progress.last_fetch_ms
            )
        progress.log_end_offset = fetch_offset
        progress.last_fetch_leader_log_end_offset = self.log_end_offset
        progress.last_fetch_ms = now_ms

    def _answer(
        self,
        fetch_offset: int,
        last_fetched_epoch: int,
        error: ReplicationError,
        log_start_offset: int,
        diverging: EpochEndOffset | None = None,
    ) -> FetchAnswer:
        return FetchAnswer(
            leader_epoch=self.leader_epoch,
            fetch_offset=fetch_offset,
            last_fetched_epoch=last_fetched_epoch,
            error=error,
            high_watermark=self.high_watermark,
            log_start_offset=log_start_offset,
            log_end_offset=self.log_end_offset,
            diverging_epoch=diverging,
        )

    # -- high watermark ---------------------------------------------------------------------

    def set_min_insync_replicas(self, min_insync_replicas: int) -> None:
        assert min_insync_replicas >= 1, f"min.insync.replicas {min_insync_replicas} below 1"
        self.min_insync_replicas = min_insync_replicas
        self.maybe_advance_high_watermark()

    def maybe_advance_high_watermark(self) -> None:
        """High watermark = min log end offset over the maximal ISR, never decreasing; it
        stays while a member's log end offset is unknown (no fetch yet in this epoch).

        KIP-966: it also stays while the committed ISR is smaller than min.insync.replicas.
        The controller keeps the replicas that left the ISR then as eligible leader replicas
        (ELR), which may lead when no ISR member can: they hold every record below the high
        watermark only because it did not move without them. (acks=1 writes are still taken;
        consumers see them once the ISR is large enough again.) An ISR holding every replica
        leaves nobody to be eligible, so a topic with fewer replicas than min.insync.replicas
        still moves its high watermark (acks=all is refused there, acks=1 is read)."""
        isr_size = len(self.committed_isr)
        if isr_size < self.min_insync_replicas and isr_size < len(self.registration.replicas):
            return
        candidate = self.log_end_offset
        in_flight = self.in_flight_alter_partition
        # the maximal ISR, without building it: this runs for every fetch and append
        members = self.committed_isr if in_flight is None else self.maximal_isr
        followers = self.followers
        for replica in members:
            if replica == self.broker_id:
                continue
            follower_end = followers[replica].log_end_offset
            if follower_end is None:
                return
            if follower_end < candidate:
                candidate = follower_end
        if candidate > self.high_watermark:
            self.high_watermark = candidate
            self._maybe_complete_produces()
        assert self.high_watermark <= self.log_end_offset, "high watermark past the log end"

    def _maybe_complete_produces(self) -> None:
        done = [p for p in self._pending.values() if p.last_offset < self.high_watermark]
        for produce in sorted(done, key=lambda p: p.produce_id):
            del self._pending[produce.produce_id]
            enough = len(self.committed_isr) >= produce.min_insync_replicas
            error = (
                ReplicationError.NONE
                if enough
                else ReplicationError.NOT_ENOUGH_REPLICAS_AFTER_APPEND
            )
            self._completed.append(
                ProduceCompletion(produce.produce_id, produce.last_offset, error)
            )

    # -- ISR changes ------------------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        """Time passed: propose removing ISR members that lag longer than
        replica.lag.time.max.ms (Kafka's maybeShrinkIsr)."""
        self._check_leading()
        self._now_ms = max(self._now_ms, now_ms)
        if not self._may_propose():
            return
        lagging = [r for r in self.committed_isr if self._is_out_of_sync(r, now_ms)]
        if lagging:
            new_isr = tuple(r for r in self.committed_isr if r not in lagging)
            self._propose(new_isr)

    def _is_out_of_sync(self, replica_id: int, now_ms: int) -> bool:
        """Kafka's !isCaughtUp: behind our log end and not caught up for the lag time."""
        if replica_id == self.broker_id:
            return False
        progress = self.followers[replica_id]
        if progress.log_end_offset == self.log_end_offset:
            return False
        last_caught_up_ms = progress.last_caught_up_ms
        return (
            last_caught_up_ms is None or now_ms - last_caught_up_ms > self.replica_lag_time_max_ms
        )

    def _maybe_expand_isr(self, replica_id: int) -> None:
        """A follower that has everything below the high watermark and our epoch's start
        rejoins the ISR (Kafka's maybeExpandIsr)."""
        if replica_id in self.committed_isr:
            return  # the common case, answered without building the maximal ISR
        if replica_id in self.maximal_isr or not self._may_propose():
            return
        if self._now_ms < self._expansion_refused_until_ms.get(replica_id, 0):
            return
        follower_end = self.followers[replica_id].log_end_offset
        assert follower_end is not None, "expansion considered before a consistent fetch"
        if follower_end >= self.high_watermark and follower_end >= self.epoch_start_offset:
            # It holds every committed record now: it gets a whole lag time to keep up
            # before it may be removed again. Otherwise a follower that rejoins with an old
            # caught-up time leaves on the next tick, and under load the ISR flaps (23
            # shrinks in 10 s under bench/kafka_bench.py).
            progress = self.followers[replica_id]
            progress.last_caught_up_ms = max(progress.last_caught_up_ms or 0, self._now_ms)
            self._propose((*self.committed_isr, replica_id))

    def _may_propose(self) -> bool:
        return self.in_flight_alter_partition is None and not self._rejected_awaiting_metadata

    def _propose(self, new_isr: tuple[int, ...]) -> None:
        assert self.in_flight_alter_partition is None, "one AlterPartition in flight at most"
        assert self.broker_id in new_isr, "the leader proposes itself out of the ISR"
        self.in_flight_alter_partition = AlterPartitionRequest(
            topic_id=self.registration.topic_id,
            partition_id=self.registration.partition_id,
            leader_id=self.broker_id,
            leader_epoch=self.registration.leader_epoch,
            partition_epoch=self.registration.partition_epoch,
            new_isr=new_isr,
            # Only members being added name their broker epoch: that is what KIP-903 guards.
            new_isr_broker_epochs=tuple(
                NO_BROKER_EPOCH if r in self.committed_isr else self.followers[r].broker_epoch
                for r in new_isr
            ),
        )
        self._alter_partition_unsent = True

    def take_alter_partition(self) -> AlterPartitionRequest | None:
        """The AlterPartition request to send, once; the shell resends
        `in_flight_alter_partition` itself if the send fails or times out."""
        if not self._alter_partition_unsent:
            return None
        self._alter_partition_unsent = False
        return self.in_flight_alter_partition

    def on_alter_partition_rejected(
        self, request: AlterPartitionRequest, reason: AlterPartitionRejection
    ) -> None:
        """The controller refused `request`. A stale-epoch or not-leader refusal may answer a
        duplicate of an applied request: the proposed ISR keeps counting for the high
        watermark and nothing new is proposed until a newer registration arrives. Other
        refusals drop the request at once; the next tick or fetch re-evaluates."""
        self._check_leading()
        if request != self.in_flight_alter_partition:
            return  # an answer to a request already settled
        if reason in (AlterPartitionRejection.STALE_EPOCH, AlterPartitionRejection.NOT_LEADER):
            self._rejected_awaiting_metadata = True
            return
        if reason is AlterPartitionRejection.INELIGIBLE_REPLICA:
            until_ms = self._now_ms + INELIGIBLE_EXPANSION_BACKOFF_MS
            for replica in set(request.new_isr) - set(self.committed_isr):
                self._expansion_refused_until_ms[replica] = until_ms
        self.in_flight_alter_partition = None
        self._alter_partition_unsent = False

    # -- metadata ---------------------------------------------------------------------------

    def on_partition_changed(self, registration: PartitionRegistration) -> bool:
        """A newer committed registration of the partition. Returns whether we still lead in
        our epoch; if not, the state is resigned: every waiting acks=all produce completes
        with NOT_LEADER and the shell drops this object (a new epoch needs a new state)."""
        self._check_leading()
        assert registration.partition_id == self.registration.partition_id, "other partition"
        if registration.partition_epoch <= self.registration.partition_epoch:
            return True  # an old or repeated registration
        if registration.leader != self.broker_id or registration.leader_epoch != self.leader_epoch:
            self._resign()
            return False
        self.registration = registration
        for replica in registration.replicas:
            if replica != self.broker_id and replica not in self.followers:
                self.followers[replica] = FollowerProgress()
        # The metadata shows the outcome of any request made at an older partition epoch.
        self.in_flight_alter_partition = None
        self._alter_partition_unsent = False
        self._rejected_awaiting_metadata = False
        self.maybe_advance_high_watermark()
        self._maybe_complete_produces()
        assert self.broker_id in self.committed_isr, "the leader is in its ISR"
        return True

    def resign(self) -> None:
        """Gives the leadership up without a new registration (the broker stops): every
        waiting produce completes with NOT_LEADER. Idempotent."""
        if not self.resigned:
            self._resign()

    def _resign(self) -> None:
        for produce in sorted(self._pending.values(), key=lambda p: p.produce_id):
            self._completed.append(
                ProduceCompletion(
                    produce.produce_id, produce.last_offset, ReplicationError.NOT_LEADER
                )
            )
        self._pending.clear()
        self.resigned = True
        self.in_flight_alter_partition = None

    def _check_leading(self) -> None:
        assert not self.resigned, "the leader state of a lost leadership is used"
