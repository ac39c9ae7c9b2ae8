"""The controller gateway: how requests reach the pure controller and how its refusals come
back, across the rpc boundary (the answer maps are what a forwarding node receives)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest

from broker.api.facade import NoLeaderError
from broker.controller_gateway import ControllerGateway, raise_if_error
from kraft.controller.controller import QuorumController
from kraft.controller.errors import TopicExistsError, UnknownTopicError
from kraft.controller.service import ControllerService
from kraft.quorum.runtime import QuorumRuntime
from kraft.raft.types import Role
from kraft.rpc.transport import PeerTransport
from tests.unit.controller.harness import ControllerHarness

COMMITTED_AT = 42


@dataclass
class FakeStatus:
    high_watermark: int = 100


class FakeRuntime:
    role = Role.LEADER

    def __init__(self, read_index: int | None = 100) -> None:
        self._read_index = read_index
        self.waited_for: list[int] = []

    def status(self) -> FakeStatus:
        return FakeStatus()

    def read_index(self) -> int | None:
        return self._read_index

    async def wait_applied(self, offset: int, timeout_s: float) -> None:
        self.waited_for.append(offset)


class ServiceOverController:
    """Runs each operation on a real QuorumController, as ControllerService does on the
    leader, and reports the records as committed at COMMITTED_AT."""

    def __init__(self, harness: ControllerHarness) -> None:
        self.harness = harness

    async def submit(self, operation: Callable[[QuorumController, int], Any]) -> tuple[Any, int]:
        result = operation(self.harness.controller, self.harness.now_ms)
        self.harness.records.extend(result.records)
        return result.response, COMMITTED_AT if result.records else -1


def gateway_over(
    harness: ControllerHarness, runtime: FakeRuntime | None = None
) -> ControllerGateway:
    async def no_leader() -> int:
        raise AssertionError("the gateway runs requests locally on the leader")

    return ControllerGateway(
        node_id=1,
        runtime=cast(QuorumRuntime, runtime or FakeRuntime()),
        service=cast(ControllerService, ServiceOverController(harness)),
        transport=cast(PeerTransport, None),
        known_leader=no_leader,
        image=lambda: harness.image,
    )


@pytest.fixture
def cluster(harness: ControllerHarness) -> ControllerHarness:
    harness.add_brokers(1, 2, 3)
    harness.create_topic("orders", partitions=1, replication_factor=3)
    return harness


async def test_partition_leader_shrinks_the_isr_with_current_epochs(
    cluster: ControllerHarness,
) -> None:
    """Issue 3: an ISR change by the partition leader is accepted with the current leader
    and partition epochs, and answered with the partition as committed."""
    partition = cluster.partition("orders")
    follower = next(r for r in partition.replicas if r != partition.leader)
    new_isr = [r for r in partition.isr if r != follower]
    answer = await gateway_over(cluster).handle(
        {
            "kind": "alter_partition",
            "broker_id": partition.leader,
            "broker_epoch": cluster.epochs[partition.leader],
            "topic_id": partition.topic_id,
            "partition_id": 0,
            "leader_epoch": partition.leader_epoch,
            "partition_epoch": partition.partition_epoch,
            "new_isr": new_isr,
        }
    )
    assert answer["offset"] == COMMITTED_AT
    assert sorted(answer["isr"]) == sorted(new_isr)
    assert answer["partition_epoch"] == partition.partition_epoch + 1
    assert sorted(cluster.partition("orders").isr) == sorted(new_isr)


async def test_isr_change_with_a_stale_partition_epoch_is_refused_and_changes_nothing(
    cluster: ControllerHarness,
) -> None:
    partition = cluster.partition("orders")
    answer = await gateway_over(cluster).handle(
        {
            "kind": "alter_partition",
            "broker_id": partition.leader,
            "broker_epoch": cluster.epochs[partition.leader],
            "topic_id": partition.topic_id,
            "partition_id": 0,
            "leader_epoch": partition.leader_epoch,
            "partition_epoch": partition.partition_epoch - 1,
            "new_isr": [partition.leader],
        }
    )
    assert answer["error_code"] == 40002
    assert answer["error_type"] in {"StaleEpochError", "NotPartitionLeaderError"}
    assert cluster.partition("orders") == partition


async def test_a_refusal_crosses_the_rpc_boundary_as_its_own_error_type(
    cluster: ControllerHarness,
) -> None:
    gateway = gateway_over(cluster)
    answer = await gateway.handle(
        {
            "kind": "admin",
            "op": "create_topic",
            "name": "orders",
            "partitions": 1,
            "replication_factor": 3,
            "configs": {},
            "validate_only": False,
        }
    )
    with pytest.raises(TopicExistsError):
        raise_if_error(answer)
    answer = await gateway.handle({"kind": "admin", "op": "delete_topic", "name": "missing"})
    with pytest.raises(UnknownTopicError):
        raise_if_error(answer)


async def test_malformed_and_unknown_requests_get_precise_refusals(
    cluster: ControllerHarness,
) -> None:
    gateway = gateway_over(cluster)
    answer = await gateway.handle({"kind": "admin", "op": "shrink_cluster"})
    assert answer["error_code"] == 40002
    assert "shrink_cluster" in answer["message"]
    answer = await gateway.handle({"kind": "broker_heartbeat", "broker_id": "one"})
    assert answer["error_code"] == 40002
    assert "malformed" in answer["message"]


def test_not_controller_answers_become_retriable_no_leader_errors() -> None:
    with pytest.raises(NoLeaderError):
        raise_if_error(
            {"error_code": 50003, "message": "not active", "error_type": "NotControllerError"}
        )


async def test_catching_up_waits_to_apply_up_to_the_controllers_read_index(
    cluster: ControllerHarness,
) -> None:
    runtime = FakeRuntime(read_index=100)

    caught_up = await gateway_over(cluster, runtime).catch_up_metadata()

    assert caught_up
    assert runtime.waited_for == [99]


async def test_a_controller_without_a_read_index_is_retried_then_given_up(
    cluster: ControllerHarness,
) -> None:
    """A leader that has not committed in its epoch yet cannot say what is committed: the
    read waits for it a bounded time, then serves this node's image as it is."""
    runtime = FakeRuntime(read_index=None)
    answer = await gateway_over(cluster, runtime).handle({"kind": "read_index"})

    caught_up = await gateway_over(cluster, runtime).catch_up_metadata(timeout_s=0.2)

    assert answer["error_type"] == "NotControllerError"
    assert not caught_up
    assert runtime.waited_for == []
