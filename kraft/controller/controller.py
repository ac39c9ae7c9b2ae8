"""The QuorumController: the active controller's decisions, pure (no I/O, no clock).

It holds a working image: the committed image plus the records it has decided but not yet
seen committed. It applies its own records to the working image at once, so consecutive
decisions see each other. Every method returns a ControllerResult (the records to propose and
the response to give once they are committed) or raises a ControllerError, leaving the working
image unchanged: each method validates everything before it decides its first record.

Broker sessions (last heartbeat, in ms) live only here, not in the log: a new active
controller starts every broker's session afresh at its first call, so a failover never fences
a broker that kept heartbeating. The shell throws this object away and builds a new one from
the committed image whenever leadership changes or a proposal fails.

The working image applies records at consecutive offsets after the committed image's; those
offsets are not the ones the log will give them (the log also holds control entries).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from kraft.controller.configs import (
    MIN_INSYNC_REPLICAS,
    UNCLEAN_LEADER_ELECTION_ENABLE,
    parse_boolean,
    validate_config_name,
    validate_topic_config_set,
    validate_topic_configs,
)
from kraft.controller.elections import (
    elect_leaderless,
    elect_preferred,
    next_elr,
    with_min_insync_replicas_changed,
    without_brokers,
)
from kraft.controller.errors import (
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    NotPartitionLeaderError,
    StaleBrokerEpochError,
    StaleEpochError,
    TopicExistsError,
    UnknownPartitionError,
    UnknownTopicError,
)
from kraft.controller.image import (
    TOPIC_RESOURCE,
    BrokerRegistration,
    MetadataImage,
    PartitionRegistration,
    TopicImage,
)
from kraft.controller.placement import place_replicas
from kraft.controller.records import (
    NO_LEADER,
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    Endpoint,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
)
from kraft.controller.topics import refuse_collision, validate_topic_name
from kraft.controller.validation import (
    validate_offsets,
    validate_partition_count,
    validate_registration,
    validated_isr,
)
from kraft.controller.working_image import WorkingImage

# Bounds (STYLE §5).
PREFERRED_LEADER_ELECTIONS_PER_TICK_MAX = 100  # rebalancing moves this many leaders per tick


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    default_partitions: int  # num.partitions
    default_replication_factor: int  # default.replication.factor
    min_insync_replicas: int  # min.insync.replicas (the cluster default)
    unclean_leader_election_enable: bool  # the default when a topic does not set it
    broker_session_timeout_ms: int  # broker.session.timeout.ms

    def __post_init__(self) -> None:
        assert self.default_partitions >= 1, f"num.partitions {self.default_partitions}"
        assert self.default_replication_factor >= 1, "default.replication.factor below 1"
        assert self.min_insync_replicas >= 1, f"min.insync.replicas {self.min_insync_replicas}"
        assert self.broker_session_timeout_ms > 0, "broker.session.timeout.ms must be positive"


@dataclass(frozen=True, slots=True)
class ControllerResult:
    records: list[MetadataRecord]  # to propose, in order; empty when nothing changes
    response: object  # for the caller, once the records are committed


@dataclass(frozen=True, slots=True)
class HeartbeatResponse:
    is_fenced: bool
    in_controlled_shutdown: bool
    should_shutdown: bool  # controlled shutdown done: the broker leads no partition


@dataclass(frozen=True, slots=True)
class CreateTopicResponse:
    name: str
    topic_id: str | None  # None when validate_only
    partitions_count: int
    replication_factor: int
    configs: Mapping[str, str]


class QuorumController:
    def __init__(
        self,
        image: MetadataImage,
        settings: ControllerSettings,
        topic_id_factory: Callable[[], str],
    ) -> None:
        self._working = WorkingImage(image)  # the caller's image stays as it was
        self._image = self._working.image
        self._settings = settings
        self._topic_id_factory = topic_id_factory
        self._sessions: dict[int, int] | None = None  # broker id -> last heartbeat ms
        self.leader_elections = 0  # leader changes to a broker (clean, unclean, preferred)
        self.unclean_leader_elections = 0

    @property
    def image(self) -> MetadataImage:
        """The working image (committed + decided); read it, never apply to it."""
        return self._image

    # -- brokers -----------------------------------------------------------------------------

    def register_broker(
        self,
        broker_id: int,
        incarnation_id: str,
        endpoints: tuple[Endpoint, ...],
        rack: str | None,
        now_ms: int,
        log_dir_id: str | None = None,
    ) -> ControllerResult:
        """Response: the broker epoch. A retry of the same incarnation gets its epoch back; a
        new incarnation gets a new epoch, starts fenced and leaves the ISRs it was in. One
        whose log directory is new (`log_dir_id` differs from the one it registered with
        before: a new or wiped disk) has lost its partition data: it also leaves every ELR,
        and the ISRs it was the last member of (KIP-966: it may not lead from data it lost)."""
        sessions = self._started_sessions(now_ms)
        validate_registration(broker_id, incarnation_id, endpoints, rack, log_dir_id)
        existing = self._image.brokers.get(broker_id)
        if existing is not None and existing.incarnation_id == incarnation_id:
            sessions[broker_id] = now_ms
            return ControllerResult([], existing.broker_epoch)
        broker_epoch = self._image.next_broker_epoch
        records: list[MetadataRecord] = []
        self._append(
            records,
            RegisterBrokerRecord(
                broker_id, incarnation_id, broker_epoch, endpoints, rack, True, log_dir_id
            ),
        )
        if existing is not None:  # the old incarnation may have lost unflushed data
            lost_data = (
                existing.log_dir_id is not None
                and log_dir_id is not None
                and log_dir_id != existing.log_dir_id
            )
            self._remove_from_partitions(
                records, frozenset({broker_id}), frozenset({broker_id}) if lost_data else None
            )
        sessions[broker_id] = now_ms
        return ControllerResult(records, broker_epoch)

    def broker_heartbeat(
        self,
        broker_id: int,
        broker_epoch: int,
        applied_offset: int,
        committed_offset: int,
        want_shutdown: bool,
        now_ms: int,
    ) -> ControllerResult:
        """Response: a HeartbeatResponse. Refreshes the session; unfences a caught-up broker;
        `want_shutdown` starts (and continues) a controlled shutdown: the broker hands over
        its leaderships and leaves the ISRs; once it leads nothing it is fenced and told
        `should_shutdown`."""
        sessions = self._started_sessions(now_ms)
        broker = self._current_broker(broker_id, broker_epoch)
        validate_offsets(applied_offset, committed_offset)
        sessions[broker_id] = now_ms
        caught_up = applied_offset >= committed_offset
        records: list[MetadataRecord] = []
        if want_shutdown:
            if not broker.in_controlled_shutdown:
                self._append(
                    records,
                    BrokerRegistrationChangeRecord(
                        broker_id, broker_epoch, in_controlled_shutdown=True
                    ),
                )
            self._remove_from_partitions(records, frozenset({broker_id}))
        elif broker.fenced and not broker.in_controlled_shutdown and caught_up:
            self._append(
                records, BrokerRegistrationChangeRecord(broker_id, broker_epoch, fenced=False)
            )
            # Partitions that waited for this broker (their last ISR member) lead again now.
            self._elect_leaderless(records)
        should_shutdown = self._image.brokers[broker_id].in_controlled_shutdown and (
            not self._working.leads_any(broker_id)
        )
        if should_shutdown and not self._image.brokers[broker_id].fenced:
            # Done: fence it now, as Kafka does, rather than when its session lapses.
            self._append(records, BrokerRegistrationChangeRecord(broker_id, broker_epoch, True))
        broker = self._image.brokers[broker_id]
        return ControllerResult(
            records,
            HeartbeatResponse(broker.fenced, broker.in_controlled_shutdown, should_shutdown),
        )

    def tick(self, now_ms: int) -> ControllerResult:
        """Fences brokers whose session expired, elects leaders where a replica may lead
        again, and moves a bounded number of leaders back to their preferred replica.
        Response: the ids of the brokers fenced now (a tuple)."""
        sessions = self._started_sessions(now_ms)
        timeout_ms = self._settings.broker_session_timeout_ms
        expired = tuple(
            broker.broker_id
            for broker in sorted(self._image.brokers.values(), key=lambda b: b.broker_id)
            if not broker.fenced
            and now_ms - sessions.setdefault(broker.broker_id, now_ms) > timeout_ms
        )
        records: list[MetadataRecord] = []
        for broker_id in expired:
            broker_epoch = self._image.brokers[broker_id].broker_epoch
            self._append(records, BrokerRegistrationChangeRecord(broker_id, broker_epoch, True))
        if expired:
            self._remove_from_partitions(records, frozenset(expired))
        if self._working.changed_since_scan:  # else nothing could have become electable
            self._working.changed_since_scan = False
            self._elect_leaderless(records)
            self._rebalance_preferred_leaders(records)
        return ControllerResult(records, expired)

    # -- topics ------------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int | None,
        replication_factor: int | None,
        configs: Mapping[str, str],
        validate_only: bool,
    ) -> ControllerResult:
        """Response: a CreateTopicResponse. Replicas go to the live brokers (placement)."""
        if self._image.topic(name) is not None:
            raise TopicExistsError(f"topic {name!r} already exists")
        validate_topic_name(name)
        refuse_collision(name, self._working.colliding_topic(name))
        partitions = self._settings.default_partitions if partitions is None else partitions
        validate_partition_count(partitions)
        if replication_factor is None:
            replication_factor = self._settings.default_replication_factor
        if replication_factor < 1:
            raise InvalidReplicationFactorError(
                f"replication factor {replication_factor} must be at least 1"
            )
        assignments = self._place(partitions, replication_factor, start_partition_id=0)
        validate_topic_configs(configs, replication_factor)
        validate_topic_config_set(configs)
        response = CreateTopicResponse(name, None, partitions, replication_factor, dict(configs))
        if validate_only:
            return ControllerResult([], response)
        topic_id = self._topic_id_factory()
        assert topic_id not in self._image.topics_by_id, f"topic id {topic_id} reused"
        records: list[MetadataRecord] = []
        self._append(records, TopicRecord(name, topic_id))
        self._append_partitions(records, topic_id, assignments, start_partition_id=0)
        for key in sorted(configs):
            self._append(records, ConfigRecord(TOPIC_RESOURCE, name, key, configs[key]))
        return ControllerResult(
            records,
            CreateTopicResponse(name, topic_id, partitions, replication_factor, dict(configs)),
        )

    def delete_topic(self, name: str) -> ControllerResult:
        """Response: the deleted topic's id. Its configs go with it."""
        topic = self._topic(name)
        records: list[MetadataRecord] = []
        self._append(records, RemoveTopicRecord(topic.topic_id))
        return ControllerResult(records, topic.topic_id)

    def create_partitions(self, name: str, total_count: int) -> ControllerResult:
        """Grows a topic to `total_count` partitions. Response: the new count."""
        topic = self._topic(name)
        current = len(topic.partitions)
        if total_count <= current:
            raise InvalidPartitionsError(
                f"topic {name!r} has {current} partitions; the count can only grow, "
                f"not become {total_count}"
            )
        validate_partition_count(total_count)
        replication_factor = len(topic.partitions[0].replicas)
        assignments = self._place(total_count - current, replication_factor, current)
        records: list[MetadataRecord] = []
        self._append_partitions(records, topic.topic_id, assignments, start_partition_id=current)
        return ControllerResult(records, total_count)

    def alter_topic_configs(
        self,
        name: str,
        set_configs: Mapping[str, str],
        delete_configs: Collection[str],
        validate_only: bool,
    ) -> ControllerResult:
        """Sets and deletes topic configs. Response: the topic's configs afterwards."""
        topic = self._topic(name)
        both = sorted(set(set_configs) & set(delete_configs))
        if both:
            raise InvalidConfigError(f"config {both[0]!r} is both set and deleted")
        for key in sorted(delete_configs):
            validate_config_name(key)
        replication_factor = min(len(p.replicas) for p in topic.partitions.values())
        validate_topic_configs(set_configs, replication_factor)
        current = self._image.configs(TOPIC_RESOURCE, name)
        result = {k: v for k, v in {**current, **set_configs}.items() if k not in delete_configs}
        validate_topic_config_set(result)
        if validate_only:
            return ControllerResult([], result)
        records: list[MetadataRecord] = []
        for key in sorted(set_configs):
            if current.get(key) != set_configs[key]:
                self._append(records, ConfigRecord(TOPIC_RESOURCE, name, key, set_configs[key]))
        for key in sorted(set(delete_configs)):
            if key in current:
                self._append(records, ConfigRecord(TOPIC_RESOURCE, name, key, None))
        if current.get(MIN_INSYNC_REPLICAS) != result.get(MIN_INSYNC_REPLICAS):
            for partition_id in sorted(topic.partitions):
                record = with_min_insync_replicas_changed(topic.partitions[partition_id])
                if record is not None:
                    self._append(records, record)
        assert self._image.configs(TOPIC_RESOURCE, name) == result
        return ControllerResult(records, result)

    # -- ISR changes from partition leaders ----------------------------------------------------

    def alter_partition(
        self,
        broker_id: int,
        broker_epoch: int,
        topic_id: str,
        partition_id: int,
        leader_epoch: int,
        partition_epoch: int,
        new_isr: tuple[int, ...],
        new_isr_broker_epochs: Mapping[int, int] | None = None,
    ) -> ControllerResult:
        """An ISR change asked by the partition's leader (KIP-497). Accepted only from the
        current leader, at the current leader and partition epochs. KIP-903: a member the
        change adds must come with the broker epoch its leader saw it fetch with, and that
        must still be its registered epoch — else a resent or late expansion could re-admit
        a replica that restarted and lost records since. Response: the partition as it will
        be once the change is committed (a PartitionRegistration)."""
        self._current_broker(broker_id, broker_epoch)
        partition = self._partition(topic_id, partition_id)
        if partition.leader != broker_id:
            raise NotPartitionLeaderError(
                f"broker {broker_id} does not lead partition {partition_id} of topic "
                f"{topic_id} (leader is {partition.leader})"
            )
        if leader_epoch != partition.leader_epoch:
            raise StaleEpochError(
                f"leader epoch {leader_epoch} of partition {partition_id} of topic {topic_id} "
                f"is not the current {partition.leader_epoch}"
            )
        if partition_epoch != partition.partition_epoch:
            raise StaleEpochError(
                f"partition epoch {partition_epoch} of partition {partition_id} of topic "
                f"{topic_id} is not the current {partition.partition_epoch}"
            )
        isr = validated_isr(partition, new_isr, frozenset(self._image.live_brokers()))
        if new_isr_broker_epochs is not None:
            self._check_added_members_epochs(partition, isr, new_isr_broker_epochs)
        records: list[MetadataRecord] = []
        if isr != partition.isr:
            topic_name = self._image.topics_by_id[topic_id].name
            elr = next_elr(partition, isr, self._min_insync_replicas(topic_name))
            self._append(
                records,
                PartitionChangeRecord(
                    topic_id, partition_id, isr=isr, elr=None if elr == partition.elr else elr
                ),
            )
        updated = self._image.partition(topic_id, partition_id)
        assert updated is not None
        return ControllerResult(records, updated)

    # -- helpers: validation and lookups (no changes) ----------------------------------------

    def _check_added_members_epochs(
        self, partition: PartitionRegistration, isr: tuple[int, ...], epochs: Mapping[int, int]
    ) -> None:
        for member in sorted(set(isr) - set(partition.isr)):
            registered = self._image.brokers[member].broker_epoch
            seen = epochs.get(member)
            if seen != registered:
                raise StaleBrokerEpochError(
                    f"broker {member} joins the ISR of partition {partition.partition_id} of "
                    f"topic {partition.topic_id} with broker epoch {seen}, not its current "
                    f"{registered} (KIP-903: it may have restarted and lost records)"
                )

    def start_sessions(self, now_ms: int, last_heard_ms: Mapping[int, int]) -> None:
        """Starts every registered broker's session at now_ms, or at its last known contact
        when that is older: a new active controller knows that the former one (a broker too,
        usually) has been silent since before the election that replaced it, so its session
        need not start afresh. Call before anything else."""
        assert self._sessions is None, "sessions already started"
        self._sessions = {
            broker_id: min(now_ms, last_heard_ms.get(broker_id, now_ms))
            for broker_id in self._image.brokers
        }

    def _started_sessions(self, now_ms: int) -> dict[int, int]:
        if self._sessions is None:
            self._sessions = {broker_id: now_ms for broker_id in self._image.brokers}
        return self._sessions

    def _current_broker(self, broker_id: int, broker_epoch: int) -> BrokerRegistration:
        broker = self._image.brokers.get(broker_id)
        if broker is None:
            raise StaleBrokerEpochError(f"broker {broker_id} is not registered; register again")
        if broker.broker_epoch != broker_epoch:
            raise StaleBrokerEpochError(
                f"broker epoch {broker_epoch} of broker {broker_id} is not its current "
                f"epoch {broker.broker_epoch}; register again"
            )
        return broker

    def _topic(self, name: str) -> TopicImage:
        topic = self._image.topic(name)
        if topic is None:
            raise UnknownTopicError(f"topic {name!r} does not exist")
        return topic

    def _partition(self, topic_id: str, partition_id: int) -> PartitionRegistration:
        topic = self._image.topics_by_id.get(topic_id)
        if topic is None:
            raise UnknownTopicError(f"topic id {topic_id!r} does not exist")
        partition = topic.partitions.get(partition_id)
        if partition is None:
            raise UnknownPartitionError(
                f"partition {partition_id} of topic {topic.name!r} does not exist "
                f"(it has {len(topic.partitions)})"
            )
        return partition

    def _place(
        self, partitions: int, replication_factor: int, start_partition_id: int
    ) -> list[tuple[int, ...]]:
        live = self._image.live_brokers()
        return place_replicas(
            live,
            {broker_id: self._image.brokers[broker_id].rack for broker_id in live},
            partitions,
            replication_factor,
            start_index=self._working.partition_count(),
            start_partition_id=start_partition_id,
            leader_counts=self._working.leader_counts(),
        )

    def _unclean_allowed(self, topic_name: str) -> bool:
        value = self._image.configs(TOPIC_RESOURCE, topic_name).get(UNCLEAN_LEADER_ELECTION_ENABLE)
        if value is None:
            return self._settings.unclean_leader_election_enable
        return parse_boolean(value)

    def _min_insync_replicas(self, topic_name: str) -> int:
        value = self._image.configs(TOPIC_RESOURCE, topic_name).get(MIN_INSYNC_REPLICAS)
        return self._settings.min_insync_replicas if value is None else int(value)

    def _partitions_in_order(self) -> list[tuple[str, PartitionRegistration]]:
        """(topic name, partition) by topic name then partition id: decisions do not depend
        on the order the image happens to hold its topics in."""
        ordered: list[tuple[str, PartitionRegistration]] = []
        for name in self._image.topic_names():
            topic = self._image.topic(name)
            assert topic is not None
            ordered.extend((name, topic.partitions[i]) for i in sorted(topic.partitions))
        return ordered

    # -- helpers: decisions (append records, apply them to the working image) ------------------

    def _append(self, records: list[MetadataRecord], record: MetadataRecord) -> None:
        if isinstance(record, PartitionChangeRecord) and record.leader is not None:
            before = self._image.partition(record.topic_id, record.partition_id)
            assert before is not None
            if record.leader not in (NO_LEADER, before.leader):
                self.leader_elections += 1
                self.unclean_leader_elections += 1 if record.unclean else 0
        self._working.apply(record)
        records.append(record)

    def _append_partitions(
        self,
        records: list[MetadataRecord],
        topic_id: str,
        assignments: list[tuple[int, ...]],
        start_partition_id: int,
    ) -> None:
        for partition_id, replicas in enumerate(assignments, start=start_partition_id):
            self._append(
                records,
                PartitionRecord(topic_id, partition_id, replicas, replicas, replicas[0], 0, 0),
            )

    def _remove_from_partitions(
        self,
        records: list[MetadataRecord],
        gone: frozenset[int],
        lost_data: frozenset[int] | None = None,
    ) -> None:
        """`gone` brokers (fenced, shutting down, restarted) leave leaderships and ISRs;
        those that `lost_data` leave ELRs too, and the ISRs they were the last member of."""
        live = frozenset(self._image.live_brokers()) - gone
        lost = lost_data or frozenset()
        for name, partition in self._partitions_in_order():
            touched = gone.intersection(partition.isr) or lost.intersection(partition.elr)
            if partition.leader in gone or touched:
                record = without_brokers(
                    partition,
                    gone,
                    live,
                    self._unclean_allowed(name),
                    self._min_insync_replicas(name),
                    lost,
                )
                if record is not None:
                    self._append(records, record)

    def _elect_leaderless(self, records: list[MetadataRecord]) -> None:
        live = frozenset(self._image.live_brokers())
        for name, partition in self._partitions_in_order():
            if not partition.has_leader:
                record = elect_leaderless(
                    partition, live, self._unclean_allowed(name), self._min_insync_replicas(name)
                )
                if record is not None:
                    self._append(records, record)

    def _rebalance_preferred_leaders(self, records: list[MetadataRecord]) -> None:
        live = frozenset(self._image.live_brokers())
        moved = 0
        for _, partition in self._partitions_in_order():
            if moved == PREFERRED_LEADER_ELECTIONS_PER_TICK_MAX:
                return
            record = elect_preferred(partition, live)
            if record is not None:
                self._append(records, record)
                moved += 1
