"""A deterministic simulation of one partition replicated on three brokers, driving the
real replication core (PartitionLeaderState, FollowerState) through a tiny shell per broker.

One seeded `random.Random` decides everything: message delays, drops and duplicates,
producer requests and their acks, flushes, broker crashes (losing the unflushed suffix
when `lose_unflushed` is set) and restarts, network isolation of a broker, and leadership
moves. A fake controller applies AlterPartition with the controller's epoch checks, fences
a crashed broker (removing it from the ISR) and elects leaders only from the ISR. Metadata
reaches each broker in order, after a delay. Invariants are checked after every event; the
run ends by healing everything and checking that the replicas converge.

Crashes never take the last ISR member: the durability promise holds only while the ISR
keeps a member (SPEC §7, unclean election off).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from broker.replication import (
    NO_BROKER_EPOCH,
    Acks,
    AlterPartitionRejection,
    AlterPartitionRequest,
    AppendRecords,
    FetchAnswer,
    FetchRequest,
    FollowerState,
    IgnoreAnswer,
    PartitionLeaderState,
    ReplicationError,
    TruncateTo,
)
from kraft.controller.image import PartitionRegistration
from kraft.controller.records import NO_LEADER
from tests.unit.replication.memory_log import MemoryLog, Rec

BROKERS = (1, 2, 3)
MIN_INSYNC_REPLICAS = 2
LAG_TIME_MS = 100
TICK_MS = 10
FETCH_TIMEOUT_MS = 60
ALTER_PARTITION_TIMEOUT_MS = 80
FETCH_MAX_RECORDS = 8
FETCH_ERROR_BACKOFF_MS = 20


class InvariantViolation(AssertionError):
    pass


@dataclass(frozen=True, slots=True)
class SimConfig:
    duration_ms: int = 1500
    drop_probability: float = 0.03
    duplicate_probability: float = 0.02
    max_delay_ms: int = 15
    produce_interval_ms: int = 6
    fault_interval_ms: int = 120
    flush_probability: float = 0.3
    lose_unflushed: bool = True
    min_insync_replicas: int = MIN_INSYNC_REPLICAS
    heal_step_limit: int = 20_000


@dataclass(slots=True)
class Broker:
    broker_id: int
    log: MemoryLog = field(default_factory=MemoryLog)
    alive: bool = True
    isolated: bool = False
    metadata: PartitionRegistration | None = None
    leader: PartitionLeaderState | None = None
    follower: FollowerState | None = None
    restored_high_watermark: int = 0  # when neither leading nor following
    fetch_in_flight: FetchRequest | None = None
    fetch_sent_ms: int = 0
    fetch_not_before_ms: int = 0
    alter_sent_ms: int = 0
    broker_epoch: int = 0  # raised at every restart, as a new registration would

    @property
    def high_watermark(self) -> int:
        if self.leader is not None:
            return self.leader.high_watermark
        if self.follower is not None:
            return self.follower.high_watermark
        return self.restored_high_watermark


@dataclass(frozen=True, slots=True)
class Acked:
    offset: int
    record: Rec
    isr_at_ack: tuple[int, ...]


class FakeController:
    """Applies AlterPartition with the epoch checks of kraft's controller; fences crashed
    brokers; elects leaders only from the ISR."""

    def __init__(self, publish: Callable[[PartitionRegistration], None]) -> None:
        self.registration = PartitionRegistration(
            topic_id="t",
            partition_id=0,
            replicas=BROKERS,
            isr=BROKERS,
            leader=BROKERS[0],
            leader_epoch=0,
            partition_epoch=0,
        )
        self.fenced: set[int] = set()
        self.broker_epochs = {b: 0 for b in BROKERS}
        self.publish = publish

    def _change(self, **changes: object) -> None:
        current = self.registration
        updated = replace(current, partition_epoch=current.partition_epoch + 1, **changes)  # type: ignore[arg-type]
        assert updated.leader == NO_LEADER or updated.leader in updated.isr, "leader in ISR"
        self.registration = updated
        self.publish(updated)

    def alter_partition(self, request: AlterPartitionRequest) -> AlterPartitionRejection | None:
        current = self.registration
        if request.leader_id != current.leader:
            return AlterPartitionRejection.NOT_LEADER
        if (request.leader_epoch, request.partition_epoch) != (
            current.leader_epoch,
            current.partition_epoch,
        ):
            return AlterPartitionRejection.STALE_EPOCH
        if any(member in self.fenced for member in request.new_isr):
            return AlterPartitionRejection.INELIGIBLE_REPLICA
        for member, epoch in zip(request.new_isr, request.new_isr_broker_epochs, strict=True):
            if epoch != NO_BROKER_EPOCH and epoch != self.broker_epochs[member]:
                return AlterPartitionRejection.INELIGIBLE_REPLICA  # KIP-903
        isr = tuple(b for b in current.replicas if b in request.new_isr)
        if isr != current.isr:
            self._change(isr=isr)
        return None

    def fence(self, broker_id: int) -> None:
        self.fenced.add(broker_id)
        current = self.registration
        if broker_id not in current.isr:
            return
        isr = tuple(b for b in current.isr if b != broker_id)
        assert isr, "the simulation never fences the last ISR member"
        if current.leader == broker_id:
            self._change(isr=isr, leader=isr[0], leader_epoch=current.leader_epoch + 1)
        else:
            self._change(isr=isr)

    def unfence(self, broker_id: int, broker_epoch: int) -> None:
        self.fenced.discard(broker_id)
        self.broker_epochs[broker_id] = broker_epoch

    def move_leader(self, rng: random.Random) -> None:
        current = self.registration
        candidates = [b for b in current.isr if b != current.leader]
        if candidates:
            leader = rng.choice(candidates)
            self._change(leader=leader, leader_epoch=current.leader_epoch + 1)


class ReplicationSimulation:
    def __init__(self, seed: int, config: SimConfig | None = None, trace: bool = False) -> None:
        self.seed = seed
        self.config = config or SimConfig()
        self.rng = random.Random(seed)
        self.trace = trace
        self.now_ms = 0
        self.events: list[tuple[int, int, Callable[[], None]]] = []
        self.sequence = itertools.count()
        self.brokers = {b: Broker(b) for b in BROKERS}
        self.metadata_due_ms = {b: 0 for b in BROKERS}
        self.controller = FakeController(self._publish)
        self.produce_counter = itertools.count()
        self.pending_produces: dict[tuple[int, int, int], tuple[int, Rec, Acks]] = {}
        self.acked: dict[int, Acked] = {}
        self.acked_offsets: list[int] = []  # sorted
        self.previous_isr: frozenset[int] = frozenset()
        self.checked_high_watermarks = {b: 0 for b in BROKERS}
        self.checked_isr_offsets: dict[int, int] = {}
        self.committed: dict[int, Rec] = {}
        self.leader_high_watermarks: dict[tuple[int, int], int] = {}
        self.event_count = 0
        self.healing = False
        self.stats = {"crashes": 0, "moves": 0, "isolations": 0, "acked_all": 0, "refused": 0}
        self.shrinks = 0
        self.expands = 0
        for broker_id in BROKERS:
            self._deliver_metadata(broker_id, self.controller.registration)

    # -- event loop ------------------------------------------------------------------------

    def schedule(self, delay_ms: int, action: Callable[[], None]) -> None:
        heapq.heappush(self.events, (self.now_ms + delay_ms, next(self.sequence), action))

    def log(self, text: str) -> None:
        if self.trace:
            print(f"[{self.now_ms:>6} ms] {text}")

    def run(self) -> None:
        for broker_id in BROKERS:
            self.schedule(broker_id, lambda b=broker_id: self._tick(b))  # type: ignore[misc]
        self.schedule(1, self._produce_event)
        self.schedule(self.config.fault_interval_ms, self._fault_event)
        while self.events and self.events[0][0] <= self.config.duration_ms:
            self._step()
        self._heal()

    def _step(self) -> None:
        time_ms, _, action = heapq.heappop(self.events)
        assert time_ms >= self.now_ms, "time went back"
        self.now_ms = time_ms
        action()
        self.event_count += 1
        self.check_invariants()

    def _send(self, source: int, destination: int, deliver: Callable[[], None]) -> None:
        if any(
            node in self.brokers and self.brokers[node].isolated for node in (source, destination)
        ):
            return
        if not self.healing and self.rng.random() < self.config.drop_probability:
            return
        copies = (
            2 if not self.healing and self.rng.random() < self.config.duplicate_probability else 1
        )
        for _ in range(copies):
            self.schedule(self.rng.randint(1, self.config.max_delay_ms), deliver)

    # -- metadata ----------------------------------------------------------------------------

    def _publish(self, registration: PartitionRegistration) -> None:
        self.log(f"controller commits {registration}")
        for broker_id in BROKERS:
            delay = self.rng.randint(1, 3 * self.config.max_delay_ms)
            due = max(self.metadata_due_ms[broker_id], self.now_ms + delay)
            self.metadata_due_ms[broker_id] = due
            heapq.heappush(
                self.events,
                (
                    due,
                    next(self.sequence),
                    lambda b=broker_id, r=registration: self._deliver_metadata(b, r),  # type: ignore[misc]
                ),
            )

    def _deliver_metadata(self, broker_id: int, registration: PartitionRegistration) -> None:
        broker = self.brokers[broker_id]
        if not broker.alive:
            return
        if (
            broker.metadata is not None
            and registration.partition_epoch <= broker.metadata.partition_epoch
        ):
            return
        broker.metadata = registration
        if broker.leader is not None:
            still_leading = broker.leader.on_partition_changed(registration)
            self._drain_leader(broker)
            if not still_leading:
                self.log(f"broker {broker_id} stops leading epoch {broker.leader.leader_epoch}")
                broker.restored_high_watermark = broker.leader.high_watermark
                broker.leader = None
        if registration.leader == broker_id and broker.leader is None:
            self._become_leader(broker, registration)
        elif registration.leader not in (broker_id, NO_LEADER):
            follower = broker.follower
            if follower is None or follower.leader_epoch != registration.leader_epoch:
                self._become_follower(broker, registration)

    def _become_leader(self, broker: Broker, registration: PartitionRegistration) -> None:
        high_watermark = broker.high_watermark
        broker.follower = None
        broker.fetch_in_flight = None
        broker.log.assign_epoch(registration.leader_epoch)
        broker.leader = PartitionLeaderState(
            broker.broker_id,
            registration,
            broker.log.log_end_offset,
            high_watermark,
            self.now_ms,
            replica_lag_time_max_ms=LAG_TIME_MS,
        )
        self.log(f"broker {broker.broker_id} leads epoch {registration.leader_epoch}")

    def _become_follower(self, broker: Broker, registration: PartitionRegistration) -> None:
        broker.follower = FollowerState(
            broker.broker_id,
            registration.leader,
            registration.leader_epoch,
            broker.log.log_end_offset,
            broker.log.latest_epoch,
            broker.high_watermark,
            broker_epoch=broker.broker_epoch,
        )
        broker.fetch_in_flight = None
        broker.fetch_not_before_ms = 0
        self.log(
            f"broker {broker.broker_id} follows {registration.leader} in epoch "
            f"{registration.leader_epoch}"
        )

    # -- ticks -------------------------------------------------------------------------------

    def _tick(self, broker_id: int) -> None:
        self.schedule(TICK_MS, lambda: self._tick(broker_id))
        broker = self.brokers[broker_id]
        if not broker.alive:
            return
        if self.rng.random() < self.config.flush_probability:
            broker.log.flush()
        if broker.leader is not None:
            broker.leader.tick(self.now_ms)
            self._drain_leader(broker)
        if broker.follower is not None:
            self._maybe_fetch(broker)

    def _maybe_fetch(self, broker: Broker) -> None:
        follower = broker.follower
        assert follower is not None
        if (
            broker.fetch_in_flight is not None
            and self.now_ms - broker.fetch_sent_ms < FETCH_TIMEOUT_MS
        ):
            return
        if self.now_ms < broker.fetch_not_before_ms:
            return
        request = follower.next_fetch()
        broker.fetch_in_flight = request
        broker.fetch_sent_ms = self.now_ms
        leader_id = follower.leader_id
        self._send(broker.broker_id, leader_id, lambda: self._serve_fetch(leader_id, request))

    def _serve_fetch(self, leader_id: int, request: FetchRequest) -> None:
        broker = self.brokers[leader_id]
        if not broker.alive:
            return
        records: list[Rec] = []
        if broker.leader is None:
            answer = FetchAnswer(
                leader_epoch=request.current_leader_epoch,
                fetch_offset=request.fetch_offset,
                last_fetched_epoch=request.last_fetched_epoch,
                error=ReplicationError.NOT_LEADER,
                high_watermark=0,
                log_start_offset=0,
                log_end_offset=broker.log.log_end_offset,
            )
        else:
            answer = broker.leader.on_fetch(
                request.replica_id,
                request.fetch_offset,
                request.last_fetched_epoch,
                broker.log.log_end_offset,
                self.now_ms,
                current_leader_epoch=request.current_leader_epoch,
                end_offset_for_epoch=broker.log.end_offset_for_epoch,
                replica_epoch=request.replica_epoch,
            )
            if answer.has_records:
                start = request.fetch_offset
                records = broker.log.records[start : start + FETCH_MAX_RECORDS]
            self._drain_leader(broker)
        self.log(f"broker {leader_id} answers {request} with {answer} and {len(records)} records")
        self._send(
            leader_id,
            request.replica_id,
            lambda: self._on_fetch_answer(request.replica_id, request, answer, records),
        )

    def _on_fetch_answer(
        self, broker_id: int, request: FetchRequest, answer: FetchAnswer, records: list[Rec]
    ) -> None:
        broker = self.brokers[broker_id]
        follower = broker.follower
        if not broker.alive or follower is None:
            return
        if broker.fetch_in_flight == request:
            broker.fetch_in_flight = None
        action = follower.on_fetch_answer(answer, broker.log.end_offset_for_epoch)
        self.log(
            f"broker {broker_id} at {broker.log.log_end_offset} handles answer to "
            f"{request.fetch_offset}: {action}"
        )
        if isinstance(action, IgnoreAnswer):
            if action.backoff:
                broker.fetch_not_before_ms = self.now_ms + FETCH_ERROR_BACKOFF_MS
            return
        if isinstance(action, AppendRecords):
            broker.log.append_as_follower(action.offset, records)
        elif isinstance(action, TruncateTo):
            self.log(f"broker {broker_id} truncates to {action.offset}")
            broker.log.truncate_to(action.offset)
        else:
            raise AssertionError(f"log start is always 0 here; unexpected {action}")
        follower.on_log_changed(broker.log.log_end_offset, broker.log.latest_epoch)
        if records or isinstance(action, TruncateTo):
            self._maybe_fetch(broker)  # fetch on at once; an empty answer waits for a tick

    # -- the leader's outputs ------------------------------------------------------------------

    def _drain_leader(self, broker: Broker) -> None:
        leader = broker.leader
        assert leader is not None
        for completion in leader.completed_produces():
            key = (broker.broker_id, leader.leader_epoch, completion.produce_id)
            offset, record, acks = self.pending_produces.pop(key)
            assert offset == completion.last_offset, "completion of another offset"
            if completion.error is ReplicationError.NONE and acks is Acks.ALL:
                self._on_acked_all(offset, record)
        if leader.resigned:
            return
        request = leader.take_alter_partition()
        timed_out = self.now_ms - broker.alter_sent_ms >= ALTER_PARTITION_TIMEOUT_MS
        if request is None and leader.in_flight_alter_partition is not None and timed_out:
            request = leader.in_flight_alter_partition  # resent: its answer was lost
        if request is not None:
            broker.alter_sent_ms = self.now_ms
            self.log(f"broker {broker.broker_id} asks ISR {request.new_isr}")
            self._send(
                broker.broker_id, 0, lambda: self._controller_alter(broker.broker_id, request)
            )

    def _controller_alter(self, broker_id: int, request: AlterPartitionRequest) -> None:
        before = self.controller.registration.isr
        rejection = self.controller.alter_partition(request)
        after = self.controller.registration.isr
        self.shrinks += len(after) < len(before)
        self.expands += len(after) > len(before)
        if rejection is not None:
            self._send(0, broker_id, lambda: self._on_alter_rejected(broker_id, request, rejection))

    def _on_alter_rejected(
        self, broker_id: int, request: AlterPartitionRequest, rejection: AlterPartitionRejection
    ) -> None:
        broker = self.brokers[broker_id]
        if broker.alive and broker.leader is not None:
            broker.leader.on_alter_partition_rejected(request, rejection)

    # -- producers -----------------------------------------------------------------------------

    def _produce_event(self) -> None:
        if not self.healing:
            self.schedule(
                self.rng.randint(1, 2 * self.config.produce_interval_ms), self._produce_event
            )
        leaders = [b for b in self.brokers.values() if b.alive and b.leader is not None]
        if not leaders:
            return
        broker = self.rng.choice(leaders)
        leader = broker.leader
        assert leader is not None
        acks = self.rng.choice([Acks.NONE, Acks.LEADER, Acks.ALL, Acks.ALL])
        end_before = broker.log.log_end_offset
        min_insync_replicas = self.config.min_insync_replicas
        if leader.check_produce(acks, min_insync_replicas) is not ReplicationError.NONE:
            self.stats["refused"] += 1
            assert broker.log.log_end_offset == end_before, "a refused produce wrote"
            return
        record = Rec(leader.leader_epoch, f"r{next(self.produce_counter)}")
        offset = broker.log.append(record)
        leader.on_local_append(broker.log.log_end_offset)
        produce_id = leader.register_pending_produce(offset, acks, min_insync_replicas)
        if produce_id is not None:
            key = (broker.broker_id, leader.leader_epoch, produce_id)
            self.pending_produces[key] = (offset, record, acks)
        self._drain_leader(broker)

    def _on_acked_all(self, offset: int, record: Rec) -> None:
        isr = self.controller.registration.isr
        for member in isr:
            log = self.brokers[member].log
            self._require(
                offset < log.log_end_offset and log.records[offset] == record,
                f"acks=all record {record} at {offset} is missing on ISR member {member}",
            )
        self._require(offset not in self.acked, f"offset {offset} acknowledged twice")
        self.acked[offset] = Acked(offset, record, isr)
        bisect.insort(self.acked_offsets, offset)
        self.stats["acked_all"] += 1

    # -- faults ------------------------------------------------------------------------------

    def _fault_event(self) -> None:
        if self.healing:
            return
        self.schedule(self.rng.randint(1, 2 * self.config.fault_interval_ms), self._fault_event)
        choice = self.rng.random()
        if choice < 0.4:
            self._maybe_crash()
        elif choice < 0.7:
            self.stats["moves"] += 1
            self.controller.move_leader(self.rng)
        else:
            self._maybe_isolate()

    def _maybe_crash(self) -> None:
        isr = self.controller.registration.isr
        candidates = [
            b.broker_id
            for b in self.brokers.values()
            if b.alive and (b.broker_id not in isr or len(isr) > 1)
        ]
        if not candidates:
            return
        broker = self.brokers[self.rng.choice(candidates)]
        self.stats["crashes"] += 1
        self.log(
            f"broker {broker.broker_id} crashes (log end {broker.log.log_end_offset}, "
            f"flushed {broker.log.flushed_offset})"
        )
        broker.alive = False
        broker.log.crash(self.config.lose_unflushed)
        broker.leader = None
        broker.follower = None
        broker.metadata = None
        broker.fetch_in_flight = None
        broker.restored_high_watermark = 0
        self.pending_produces = {
            key: value for key, value in self.pending_produces.items() if key[0] != broker.broker_id
        }
        self.controller.fence(broker.broker_id)
        self.schedule(self.rng.randint(30, 300), lambda: self._restart(broker.broker_id))

    def _restart(self, broker_id: int) -> None:
        broker = self.brokers[broker_id]
        if broker.alive:
            return  # healing restarted it before its scheduled restart
        broker.alive = True
        self.log(f"broker {broker_id} restarts with log end {broker.log.log_end_offset}")
        broker.broker_epoch += 1
        self.controller.unfence(broker_id, broker.broker_epoch)
        self._deliver_metadata(broker_id, self.controller.registration)

    def _maybe_isolate(self) -> None:
        candidates = [b for b in self.brokers.values() if b.alive and not b.isolated]
        if not candidates:
            return
        broker = self.rng.choice(candidates)
        broker.isolated = True
        self.stats["isolations"] += 1
        self.log(f"broker {broker.broker_id} is isolated")

        def end() -> None:
            broker.isolated = False
            self.log(f"broker {broker.broker_id} is reachable again")

        self.schedule(self.rng.randint(50, 400), end)

    # -- healing -------------------------------------------------------------------------------

    def _heal(self) -> None:
        """No more faults or produces: every broker comes back, the network is reliable;
        the replicas must converge to one log, with every replica in the ISR."""
        self.healing = True
        self.log("healing")
        for broker in self.brokers.values():
            broker.isolated = False
            if not broker.alive:
                self._restart(broker.broker_id)
        for _ in range(self.config.heal_step_limit):
            if self._converged():
                self._check_final()
                return
            self._step()
        raise InvariantViolation(
            f"replicas did not converge within {self.config.heal_step_limit} events of healing"
        )

    def _converged(self) -> bool:
        registration = self.controller.registration
        leader = self.brokers[registration.leader]
        if leader.leader is None or leader.leader.leader_epoch != registration.leader_epoch:
            return False
        if set(registration.isr) != set(BROKERS):
            return False
        end = leader.log.log_end_offset
        return leader.high_watermark == end and all(
            b.log.log_end_offset == end and b.high_watermark == end for b in self.brokers.values()
        )

    def _check_final(self) -> None:
        leader_log = self.brokers[self.controller.registration.leader].log
        for broker in self.brokers.values():
            self._require(broker.log.records == leader_log.records, "final logs differ")
        for offset, acked in self.acked.items():
            self._require(
                leader_log.records[offset] == acked.record, f"acknowledged {acked} was lost"
            )

    # -- invariants ------------------------------------------------------------------------------

    def _require(self, condition: bool, message: str) -> None:
        if not condition:
            raise InvariantViolation(f"seed {self.seed} at {self.now_ms} ms: {message}")

    def check_invariants(self) -> None:
        registration = self.controller.registration
        self._require(
            registration.leader == NO_LEADER or registration.leader in registration.isr,
            "controller: leader outside its ISR",
        )
        for broker in self.brokers.values():
            if broker.alive:
                self._check_broker(broker)
        self._check_current_leader()
        self._check_acked_on_isr()
        for broker in self.brokers.values():
            broker.log.lowest_changed_offset = broker.log.log_end_offset

    def _check_broker(self, broker: Broker) -> None:
        log = broker.log
        high_watermark = broker.high_watermark
        self._require(
            high_watermark <= log.log_end_offset, f"broker {broker.broker_id}: HW past LEO"
        )
        leader = broker.leader
        if leader is not None:
            self._require(broker.broker_id in leader.committed_isr, "leader outside its ISR")
            key = (broker.broker_id, leader.leader_epoch)
            previous = self.leader_high_watermarks.get(key, 0)
            self._require(high_watermark >= previous, f"leader {key}: HW went back")
            self.leader_high_watermarks[key] = high_watermark
        # Every replica's records below its HW are the one committed log, at any time.
        checked = min(log.lowest_changed_offset, self.checked_high_watermarks[broker.broker_id])
        self.checked_high_watermarks[broker.broker_id] = high_watermark
        for offset in range(min(checked, high_watermark), high_watermark):
            record = log.records[offset]
            known = self.committed.setdefault(offset, record)
            self._require(
                known == record,
                f"broker {broker.broker_id} has {record} at {offset} below its HW "
                f"{high_watermark}; committed was {known}",
            )

    def _check_current_leader(self) -> None:
        """The current leader's HW never passes a record some ISR member lacks."""
        registration = self.controller.registration
        broker = self.brokers.get(registration.leader)
        if (
            broker is None
            or broker.leader is None
            or broker.leader.leader_epoch != registration.leader_epoch
        ):
            self.checked_isr_offsets.clear()  # changes now go unseen: check in full next time
            return
        high_watermark = broker.leader.high_watermark
        for member in registration.isr:
            log = self.brokers[member].log
            self._require(
                log.log_end_offset >= high_watermark,
                f"ISR member {member} ends at {log.log_end_offset}, "
                f"below leader HW {high_watermark}",
            )
            # ... and holds the committed records there (checked from where it changed).
            checked = self.checked_isr_offsets.get(member, 0) if member in self.previous_isr else 0
            for offset in range(min(checked, log.lowest_changed_offset), high_watermark):
                self._require(
                    log.records[offset] == self.committed[offset],
                    f"ISR member {member} has {log.records[offset]} at {offset}, below leader "
                    f"HW {high_watermark}; committed is {self.committed[offset]}",
                )
            self.checked_isr_offsets[member] = max(high_watermark, checked)

    def _check_acked_on_isr(self) -> None:
        """Acknowledged acks=all records stay on every ISR member: checked in full for a
        new member, else from the lowest offset its log changed at."""
        isr = self.controller.registration.isr
        for member in isr:
            log = self.brokers[member].log
            first = 0 if member not in self.previous_isr else log.lowest_changed_offset
            for offset in self.acked_offsets[bisect.bisect_left(self.acked_offsets, first) :]:
                acked = self.acked[offset]
                self._require(
                    offset < log.log_end_offset and log.records[offset] == acked.record,
                    f"acknowledged {acked} missing on ISR member {member}",
                )
        self.previous_isr = frozenset(isr)
