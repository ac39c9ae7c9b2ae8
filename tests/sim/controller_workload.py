"""The clients of the simulated controller: brokers and an administrator, in simulated time.

Three to five brokers register (each process start has its own incarnation id) and
heartbeat; some stop heartbeating for a while (the controller fences them at a tick) or for
good, some come back as a new incarnation. A broker learns its broker epoch only from a
committed registration, and registers again when a heartbeat is refused as stale; now and
then a zombie (an older incarnation of a broker) heartbeats with its old epoch, which must
be refused. An administrator creates, deletes and grows topics and toggles
unclean.leader.election.enable. Partition leaders ask for ISR shrinks and expansions
(alter_partition) from what some node's image says, which may be stale; some ask with a
leader or partition epoch they know to be stale.

Every request is an operation on the QuorumController; `must_refuse` is the oracle the
shell consults just before the operation runs against the working image: when it names a
reason, the controller must refuse the request.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from kraft.controller.configs import UNCLEAN_LEADER_ELECTION_ENABLE
from kraft.controller.controller import ControllerResult, QuorumController
from kraft.controller.errors import ControllerError, StaleBrokerEpochError
from kraft.controller.image import TOPIC_RESOURCE, MetadataImage
from kraft.controller.records import Endpoint

TOPIC_NAMES = ("alpha", "beta", "gamma", "delta", "epsilon")
FIRST_BROKER_ID = 101

Operation = Callable[[QuorumController, int], ControllerResult]
Oracle = Callable[[QuorumController], str | None]


@dataclass(slots=True)
class Request:
    kind: str
    operation: Operation = field(repr=False)
    describe: str
    broker_id: int | None = None
    incarnation: int = 0
    must_refuse: Oracle | None = field(default=None, repr=False)


@dataclass(slots=True)
class SimBroker:
    broker_id: int
    rack: str | None
    incarnation: int = 1
    broker_epoch: int | None = None  # learned from a committed registration
    heartbeating: bool = True
    resume_at_tick: int | None = None  # None while heartbeating or stopped for good
    new_incarnation_on_resume: bool = False
    next_heartbeat_tick: int = 0
    old_epochs: list[int] = field(default_factory=list)  # of earlier incarnations
    disk: int = 1  # a new disk (its data lost) on some restarts: a new log directory id

    @property
    def incarnation_id(self) -> str:
        return f"broker-{self.broker_id}-incarnation-{self.incarnation}"

    @property
    def log_dir_id(self) -> str:
        return f"broker-{self.broker_id}-disk-{self.disk}"


@dataclass(frozen=True, slots=True)
class WorkloadSettings:
    broker_count: int
    heartbeat_every_ticks: int
    stop_probability: float  # per broker per tick
    admin_probability: float  # per tick
    alter_partition_probability: float  # per tick
    stale_alter_probability: float
    zombie_probability: float  # per tick


def choose_workload_settings(rng: random.Random) -> WorkloadSettings:
    return WorkloadSettings(
        broker_count=rng.randint(3, 5),
        heartbeat_every_ticks=rng.randint(3, 10),
        stop_probability=rng.choice([0.0, 0.002, 0.005, 0.01]),
        admin_probability=rng.uniform(0.03, 0.15),
        alter_partition_probability=rng.uniform(0.05, 0.3),
        stale_alter_probability=rng.uniform(0.1, 0.4),
        zombie_probability=rng.choice([0.0, 0.01, 0.03]),
    )


class ControllerWorkload:
    def __init__(self, rng: random.Random, settings: WorkloadSettings) -> None:
        self.rng = rng
        self.settings = settings
        racks = rng.random() < 0.5
        self.brokers = {
            broker_id: SimBroker(broker_id, f"rack-{broker_id % 2}" if racks else None)
            for broker_id in range(FIRST_BROKER_ID, FIRST_BROKER_ID + settings.broker_count)
        }
        self.leader_guess: int | None = None
        self.stopped_for_good = False
        self.counts: Counter[str] = Counter()

    # -- requests of one tick -----------------------------------------------------------------

    def requests(self, tick: int, view: MetadataImage | None, lifecycle: bool) -> list[Request]:
        """What the clients send at `tick`; `view` is some node's (possibly stale) image,
        `lifecycle` whether brokers may stop and come back now (the fault phase)."""
        requests: list[Request] = []
        for broker_id in sorted(self.brokers):
            broker = self.brokers[broker_id]
            if lifecycle:
                self._maybe_stop_or_resume(broker, tick)
            elif not broker.heartbeating and broker.resume_at_tick is not None:
                self._resume(broker)
            if broker.heartbeating and tick >= broker.next_heartbeat_tick:
                broker.next_heartbeat_tick = tick + self.settings.heartbeat_every_ticks
                requests.append(self._heartbeat_or_register(broker, view))
        if self.rng.random() < self.settings.zombie_probability:
            zombie = self._zombie_heartbeat()
            if zombie is not None:
                requests.append(zombie)
        if view is not None and self.rng.random() < self.settings.admin_probability:
            requests.append(self._admin_request(view))
        if view is not None and self.rng.random() < self.settings.alter_partition_probability:
            alter = self._alter_partition(view)
            if alter is not None:
                requests.append(alter)
        return requests

    def _maybe_stop_or_resume(self, broker: SimBroker, tick: int) -> None:
        if broker.heartbeating:
            if self.rng.random() >= self.settings.stop_probability:
                return
            broker.heartbeating = False
            mode = self.rng.random()
            if mode < 0.15 and not self.stopped_for_good:
                # One broker at most: the others must keep the cluster writable.
                self.stopped_for_good = True
                broker.resume_at_tick = None  # for good
                self.counts["brokers stopped for good"] += 1
            else:
                broker.resume_at_tick = tick + self.rng.randint(5, 250)
                broker.new_incarnation_on_resume = mode < 0.6
                self.counts["brokers paused"] += 1
        elif broker.resume_at_tick is not None and tick >= broker.resume_at_tick:
            self._resume(broker)

    def _resume(self, broker: SimBroker) -> None:
        broker.heartbeating = True
        broker.resume_at_tick = None
        if broker.new_incarnation_on_resume:
            if broker.broker_epoch is not None:
                broker.old_epochs.append(broker.broker_epoch)
            broker.incarnation += 1
            broker.broker_epoch = None
            self.counts["brokers restarted"] += 1
            if self.rng.random() < 0.25:  # KIP-966: it must leave every ISR and ELR for good
                broker.disk += 1
                self.counts["brokers restarted with a new disk"] += 1

    def _heartbeat_or_register(self, broker: SimBroker, view: MetadataImage | None) -> Request:
        broker_id = broker.broker_id
        if broker.broker_epoch is None:
            incarnation_id = broker.incarnation_id
            endpoints = (Endpoint("RPC", f"broker-{broker_id}", 9000 + broker_id),)
            rack = broker.rack
            log_dir_id = broker.log_dir_id

            def register(controller: QuorumController, now_ms: int) -> ControllerResult:
                return controller.register_broker(
                    broker_id, incarnation_id, endpoints, rack, now_ms, log_dir_id
                )

            return Request(
                "register", register, f"register {incarnation_id}", broker_id, broker.incarnation
            )
        broker_epoch = broker.broker_epoch
        offset = -1 if view is None else view.applied_offset
        want_shutdown = False

        def heartbeat(controller: QuorumController, now_ms: int) -> ControllerResult:
            return controller.broker_heartbeat(
                broker_id, broker_epoch, offset, offset, want_shutdown, now_ms
            )

        return Request(
            "heartbeat",
            heartbeat,
            f"heartbeat {broker_id} epoch {broker_epoch}",
            broker_id,
            broker.incarnation,
            must_refuse=_stale_broker_oracle(broker_id, broker_epoch),
        )

    def _zombie_heartbeat(self) -> Request | None:
        candidates = [b for b in sorted(self.brokers) if self.brokers[b].old_epochs]
        if not candidates:
            return None
        broker_id = self.rng.choice(candidates)
        old_epoch = self.rng.choice(self.brokers[broker_id].old_epochs)

        def heartbeat(controller: QuorumController, now_ms: int) -> ControllerResult:
            return controller.broker_heartbeat(broker_id, old_epoch, 0, 0, False, now_ms)

        return Request(
            "zombie heartbeat",
            heartbeat,
            f"zombie heartbeat {broker_id} epoch {old_epoch}",
            broker_id,
            must_refuse=_stale_broker_oracle(broker_id, old_epoch),
        )

    def _admin_request(self, view: MetadataImage) -> Request:
        name = self.rng.choice(TOPIC_NAMES)
        exists = view.topic(name) is not None
        choice = self.rng.random()
        if not exists or choice < 0.2:
            partitions = self.rng.randint(1, 3)
            replication_factor = self.rng.randint(1, 3)
            configs = {}
            if self.rng.random() < 0.3:
                configs[UNCLEAN_LEADER_ELECTION_ENABLE] = self.rng.choice(["true", "false"])
            validate_only = self.rng.random() < 0.1

            def create(controller: QuorumController, now_ms: int) -> ControllerResult:
                return controller.create_topic(
                    name, partitions, replication_factor, configs, validate_only
                )

            return Request(
                "create topic",
                create,
                f"create {name} x{partitions} rf{replication_factor} {configs}",
            )
        if choice < 0.4:

            def delete(controller: QuorumController, now_ms: int) -> ControllerResult:
                return controller.delete_topic(name)

            return Request("delete topic", delete, f"delete {name}")
        if choice < 0.6:
            topic = view.topic(name)
            assert topic is not None
            total = len(topic.partitions) + self.rng.randint(0, 2)  # 0: must be refused

            def grow(controller: QuorumController, now_ms: int) -> ControllerResult:
                return controller.create_partitions(name, total)

            return Request("grow topic", grow, f"grow {name} to {total}")
        value = self.rng.choice(["true", "false", None])

        def alter_config(controller: QuorumController, now_ms: int) -> ControllerResult:
            if value is None:
                return controller.alter_topic_configs(
                    name, {}, [UNCLEAN_LEADER_ELECTION_ENABLE], False
                )
            return controller.alter_topic_configs(
                name, {UNCLEAN_LEADER_ELECTION_ENABLE: value}, [], False
            )

        current = view.configs(TOPIC_RESOURCE, name).get(UNCLEAN_LEADER_ELECTION_ENABLE)
        return Request(
            "alter config", alter_config, f"unclean election of {name}: {current} -> {value}"
        )

    def _alter_partition(self, view: MetadataImage) -> Request | None:
        """An ISR change from a partition's leader, as some node's image tells it."""
        led = [
            (name, partition)
            for name in view.topic_names()
            for partition in sorted(
                view.topic(name).partitions.values(),  # type: ignore[union-attr]
                key=lambda p: p.partition_id,
            )
            if partition.leader in self.brokers
            and self.brokers[partition.leader].broker_epoch is not None
        ]
        if not led:
            return None
        name, partition = self.rng.choice(led)
        broker = self.brokers[partition.leader]
        broker_epoch = broker.broker_epoch
        assert broker_epoch is not None
        isr = list(partition.isr)
        outside = [b for b in partition.replicas if b not in isr]
        followers = [b for b in isr if b != partition.leader]
        if outside and (not followers or self.rng.random() < 0.5):
            isr.append(self.rng.choice(outside))
            change = "expand"
        elif followers:
            isr.remove(self.rng.choice(followers))
            change = "shrink"
        else:
            change = "restate"
        self.rng.shuffle(isr)
        new_isr = tuple(isr)
        leader_epoch, partition_epoch = partition.leader_epoch, partition.partition_epoch
        stale = self.rng.random() < self.settings.stale_alter_probability
        if stale:
            if self.rng.random() < 0.5:
                leader_epoch -= self.rng.randint(1, 2)
            else:
                partition_epoch -= self.rng.randint(1, 2)
        broker_id = broker.broker_id
        topic_id = partition.topic_id
        partition_id = partition.partition_id

        def alter(controller: QuorumController, now_ms: int) -> ControllerResult:
            return controller.alter_partition(
                broker_id,
                broker_epoch,
                topic_id,
                partition_id,
                leader_epoch,
                partition_epoch,
                new_isr,
            )

        def must_refuse(controller: QuorumController) -> str | None:
            current = controller.image.partition(topic_id, partition_id)
            if current is None:
                return "the partition does not exist"
            registered = controller.image.brokers.get(broker_id)
            if registered is None or registered.broker_epoch != broker_epoch:
                return f"broker epoch {broker_epoch} is not current"
            if current.leader != broker_id:
                return f"broker {broker_id} is not the leader ({current.leader})"
            if current.leader_epoch != leader_epoch:
                return f"leader epoch {leader_epoch} is not {current.leader_epoch}"
            if current.partition_epoch != partition_epoch:
                return f"partition epoch {partition_epoch} is not {current.partition_epoch}"
            if broker_id not in new_isr:
                return f"the new ISR {list(new_isr)} lacks its leader {broker_id}"
            live = controller.image.live_brokers()
            ineligible = sorted(b for b in new_isr if b not in live)
            if ineligible:
                return f"brokers {ineligible} of the new ISR are fenced or shutting down"
            return None

        kind = "stale alter partition" if stale else "alter partition"
        return Request(
            kind,
            alter,
            f"{change} ISR of {name}/{partition_id} to {list(new_isr)} by {broker_id} "
            f"(epochs {leader_epoch}/{partition_epoch}, image has "
            f"{partition.leader_epoch}/{partition.partition_epoch})",
            broker_id,
            broker.incarnation,
            must_refuse=must_refuse,
        )

    # -- outcomes -----------------------------------------------------------------------------

    def on_refused(self, request: Request, error: ControllerError) -> None:
        self.counts[f"{request.kind} refused"] += 1
        broker = self.brokers.get(request.broker_id or -1)
        if (
            request.kind == "heartbeat"
            and isinstance(error, StaleBrokerEpochError)
            and broker is not None
            and broker.incarnation == request.incarnation
        ):
            broker.broker_epoch = None  # register again

    def on_committed(self, request: Request, response: object) -> None:
        self.counts[f"{request.kind} committed"] += 1
        broker = self.brokers.get(request.broker_id or -1)
        if (
            request.kind == "register"
            and broker is not None
            and broker.incarnation == request.incarnation
            and isinstance(response, int)
        ):
            broker.broker_epoch = response

    def on_accepted(self, request: Request) -> None:
        self.counts[f"{request.kind} accepted"] += 1

    def on_lost(self, requests: list[Request], why: str) -> None:
        for request in requests:
            self.counts[f"{request.kind} lost ({why})"] += 1


def _stale_broker_oracle(broker_id: int, broker_epoch: int) -> Oracle:
    """A heartbeat with an epoch other than the broker's registered one must be refused."""

    def oracle(controller: QuorumController) -> str | None:
        registered = controller.image.brokers.get(broker_id)
        if registered is None:
            return f"broker {broker_id} is not registered"
        if registered.broker_epoch != broker_epoch:
            return f"broker epoch {broker_epoch} is not the current {registered.broker_epoch}"
        return None

    return oracle
