"""Properties of any sequence of controller operations (hypothesis, stateful):

- no partition ever has a leader outside its ISR, or an ISR outside its replicas;
- no two different leaders ever share a leader epoch of the same partition;
- a partition's leader is always a live broker, and so is every member of a led ISR;
- a refused operation leaves the working image unchanged;
- replaying the records the controller produced gives its working image, and so does
  restoring a snapshot of it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from kraft.controller.controller import ControllerResult
from kraft.controller.errors import ControllerError
from kraft.controller.image import MetadataImage
from kraft.controller.records import MetadataRecord
from kraft.controller.statemachine import MetadataStateMachine
from kraft.controller.working_image import WorkingImage
from tests.unit.controller.harness import SESSION_TIMEOUT_MS, SETTINGS, ControllerHarness

BROKERS = st.integers(1, 5)
TOPICS = st.sampled_from(["a", "b", "c", "d.e", "d_e"])  # the last two collide


class ControllerOperations(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.harness = ControllerHarness(replace(SETTINGS, default_replication_factor=2))
        self.replay = self.harness.start_image.copy()  # checked record by record
        self.working = WorkingImage(self.harness.start_image)  # its indexes, record by record
        self.leaders_by_epoch: dict[tuple[str, int, int], int] = {}
        self.incarnations = 0

    def attempt(self, operation: object) -> None:
        """Runs one operation; a refusal must leave the working image as it was."""
        assert callable(operation)
        before = self.harness.image.copy()
        try:
            result = operation()
        except ControllerError:
            assert self.harness.image == before
            assert self.harness.image.applied_offset == before.applied_offset
            return
        assert isinstance(result, ControllerResult)
        self.harness.records.extend(result.records)
        for record in result.records:
            self.replay_one(record)

    def replay_one(self, record: MetadataRecord) -> None:
        self.replay.apply(record, self.replay.applied_offset + 1)
        self.working.apply(record)
        for topic in self.replay.topics_by_id.values():
            for partition in topic.partitions.values():
                key = (partition.topic_id, partition.partition_id, partition.leader_epoch)
                leader = self.leaders_by_epoch.setdefault(key, partition.leader)
                assert leader == partition.leader, f"two leaders in leader epoch {key}"

    # -- operations ----------------------------------------------------------------------------

    @initialize(brokers=st.integers(1, 5), topics=st.lists(TOPICS, max_size=3, unique=True))
    def start_cluster(self, brokers: int, topics: list[str]) -> None:
        """Live brokers and topics first, so that most operations have something to change."""
        for broker_id in range(1, brokers + 1):
            self.register(broker_id, new_incarnation=False, rack=None)
            self.heartbeat(broker_id, caught_up=True, want_shutdown=False, stale=False)
        for name in topics:
            self.create_topic(name, partitions=3, replication_factor=min(3, brokers))

    @rule(broker_id=BROKERS, new_incarnation=st.booleans(), rack=st.sampled_from([None, "r1"]))
    def register(self, broker_id: int, new_incarnation: bool, rack: str | None) -> None:
        self.incarnations += new_incarnation
        harness = self.harness

        def operation() -> ControllerResult:
            result = harness.controller.register_broker(
                broker_id, f"{broker_id}-{self.incarnations}", (), rack, harness.now_ms
            )
            assert isinstance(result.response, int)
            harness.epochs[broker_id] = result.response
            return result

        self.attempt(operation)

    @rule(
        broker_id=BROKERS,
        caught_up=st.sampled_from([True, True, False]),
        want_shutdown=st.sampled_from([False] * 9 + [True]),
        stale=st.sampled_from([False, False, False, True]),
    )
    def heartbeat(self, broker_id: int, caught_up: bool, want_shutdown: bool, stale: bool) -> None:
        harness = self.harness
        epoch = harness.epochs.get(broker_id, 0) - (1 if stale else 0)
        self.attempt(
            lambda: harness.controller.broker_heartbeat(
                broker_id, epoch, 10 if caught_up else 5, 10, want_shutdown, harness.now_ms
            )
        )

    @rule(silent=st.sets(BROKERS, max_size=2))
    def heartbeat_all_but(self, silent: set[int]) -> None:
        """A healthy round: every registered broker but `silent` heartbeats, caught up."""
        for broker_id in sorted(set(self.harness.epochs) - silent):
            self.heartbeat(broker_id, caught_up=True, want_shutdown=False, stale=False)

    @rule(advance_ms=st.integers(0, SESSION_TIMEOUT_MS * 3 // 2))
    def tick(self, advance_ms: int) -> None:
        self.harness.now_ms += advance_ms
        self.attempt(lambda: self.harness.controller.tick(self.harness.now_ms))

    @rule(name=TOPICS, partitions=st.integers(0, 4), replication_factor=st.integers(1, 4))
    def create_topic(self, name: str, partitions: int, replication_factor: int) -> None:
        self.attempt(
            lambda: self.harness.controller.create_topic(
                name, partitions, replication_factor, {}, validate_only=False
            )
        )

    @rule(name=TOPICS)
    def delete_topic(self, name: str) -> None:
        self.attempt(lambda: self.harness.controller.delete_topic(name))

    @rule(name=TOPICS, total=st.integers(0, 6))
    def create_partitions(self, name: str, total: int) -> None:
        self.attempt(lambda: self.harness.controller.create_partitions(name, total))

    @rule(name=TOPICS, unclean=st.booleans())
    def set_unclean_election(self, name: str, unclean: bool) -> None:
        value = "true" if unclean else "false"
        self.attempt(
            lambda: self.harness.controller.alter_topic_configs(
                name, {"unclean.leader.election.enable": value}, (), validate_only=False
            )
        )

    @rule(
        name=TOPICS,
        partition_id=st.integers(0, 3),
        members=st.sets(st.integers(1, 5)),
        requester=st.none() | BROKERS,
        stale=st.sampled_from([False, False, True]),
    )
    def alter_partition(
        self,
        name: str,
        partition_id: int,
        members: set[int],
        requester: int | None,
        stale: bool,
    ) -> None:
        harness = self.harness
        topic = harness.image.topic(name)
        partition = topic.partitions.get(partition_id) if topic else None
        if partition is None:
            return
        broker_id = partition.leader if requester is None else requester
        isr = tuple(sorted(members | {partition.leader}))
        self.attempt(
            lambda: harness.controller.alter_partition(
                broker_id,
                harness.epochs.get(broker_id, -1),
                partition.topic_id,
                partition_id,
                partition.leader_epoch,
                partition.partition_epoch - (1 if stale else 0),
                isr,
            )
        )

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def leaders_and_isrs_are_live(self) -> None:
        image: MetadataImage = self.harness.image
        live = set(image.live_brokers())
        for topic in image.topics_by_id.values():
            for partition in topic.partitions.values():
                assert set(partition.isr) <= set(partition.replicas)
                if partition.has_leader:
                    assert partition.leader in partition.isr
                    assert partition.leader in live, f"leader {partition.leader} is not live"
                    assert set(partition.isr) <= live, f"ISR {partition.isr} not all live"

    @invariant()
    def working_image_indexes_match_a_recount(self) -> None:
        image = self.working.image
        partitions = [p for t in image.topics_by_id.values() for p in t.partitions.values()]
        recount = Counter(partition.leader for partition in partitions)
        assert +self.working.leader_counts() == recount
        assert self.working.partition_count() == image.partition_count()
        for name in image.topic_names():
            assert self.working.colliding_topic(name) is None
            assert self.working.colliding_topic(name.replace("_", ".") + "_") is None

    @invariant()
    def a_snapshot_of_the_image_restores_an_equal_image(self) -> None:
        machine = MetadataStateMachine()
        machine.image = self.harness.image
        restored = MetadataStateMachine()

        restored.restore(machine.snapshot())

        assert restored.image == self.harness.image

    @invariant()
    def replaying_the_records_gives_the_working_image(self) -> None:
        assert self.replay == self.harness.image
        assert self.harness.replayed() == self.harness.image


ControllerOperations.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
test_controller_operations = ControllerOperations.TestCase
