"""Routes requests meant for the active controller, and implements the admin surface
(broker.api.facade.AdminFacade) on top of it.

A request (broker registration, heartbeat, topic administration) is a msgpack map with a
`kind`. On the active controller it runs on the local ControllerService; anywhere else it is
forwarded over rpc to the quorum leader, which answers with a map: the result, or
`{"error_code", "message", "error_type"}` for a refusal. Admin writes return once committed
and applied on the node that took the request, so a client reads its own writes there.

Admin reads that must see writes made through another node first catch up to the
controller's read index (`read_index`): the node asks the active controller for its high
watermark and waits until it has applied that far. A write acknowledged by any node is then
visible on this one, whichever node a client's admin library picked for the read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog

from broker.api.facade import NoLeaderError
from kraft.controller import errors
from kraft.controller.controller import HeartbeatResponse, QuorumController
from kraft.controller.errors import ControllerError, NotControllerError, StaleBrokerEpochError
from kraft.controller.image import MetadataImage, PartitionRegistration
from kraft.controller.records import Endpoint
from kraft.controller.service import ControllerService
from kraft.quorum.runtime import QuorumRuntime
from kraft.raft.types import Role
from kraft.rpc.errors import RpcError
from kraft.rpc.transport import PeerTransport

log = structlog.get_logger(__name__)

FORWARD_TIMEOUT_S = 10.0
APPLY_TIMEOUT_S = 10.0
# How long an admin read waits to catch up before it answers from this node's image as is:
# a describe stays available (if possibly stale) while the quorum has no leader.
READ_INDEX_TIMEOUT_S = 2.0
READ_INDEX_RETRY_S = 0.05
CONTROLLER_REQUEST_KINDS = frozenset(
    {"register_broker", "broker_heartbeat", "alter_partition", "admin", "read_index"}
)
_ERROR_TYPES: dict[str, type[ControllerError]] = {
    name: value
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, ControllerError)
}


def error_answer(error: ControllerError) -> dict[str, Any]:
    return {
        "error_code": error.error_code,
        "message": error.message,
        "error_type": type(error).__name__,
    }


def raise_if_error(answer: Mapping[str, Any]) -> None:
    """Re-raises, on the forwarding node, the refusal the controller answered with."""
    if "error_code" not in answer:
        return
    error_type = _ERROR_TYPES.get(str(answer.get("error_type")), ControllerError)
    error = error_type(str(answer.get("message")))
    if isinstance(error, NotControllerError):
        raise NoLeaderError(error.message)
    raise error


class ControllerGateway:
    def __init__(
        self,
        node_id: int,
        runtime: QuorumRuntime,
        service: ControllerService | None,
        transport: PeerTransport,
        known_leader: Callable[[], Awaitable[int]],
        image: Callable[[], MetadataImage],
        metadata_lag: Callable[[], int] = lambda: 0,
    ) -> None:
        self.node_id = node_id
        self.cluster_id = ""  # set by the node once its storage is checked
        self._runtime = runtime
        self._service = service
        self._transport = transport
        self._known_leader = known_leader
        self._image = image
        self._metadata_lag = metadata_lag

    # --- AdminFacade reads (this node's own image) -----------------------------------------

    def metadata_image(self) -> MetadataImage:
        return self._image()

    def controller_id(self) -> int | None:
        return self._runtime.leader_id

    def metadata_lag(self) -> int:
        return self._metadata_lag()

    # --- routing ---------------------------------------------------------------------------

    async def call(self, body: dict[str, Any]) -> dict[str, Any]:
        """Sends a controller request to the active controller; never raises for a refusal
        (it is in the answer), NoLeaderError when no controller can be reached."""
        if self._service is not None and self._runtime.role is Role.LEADER:
            return await self.handle(body)
        leader_id = await self._known_leader()
        if leader_id == self.node_id:
            return await self.handle(body)
        try:
            return await self._transport.request(leader_id, body, FORWARD_TIMEOUT_S)
        except (RpcError, OSError) as error:
            raise NoLeaderError(f"controller {leader_id} cannot be reached: {error}") from error

    async def handle(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Runs a controller request here (the rpc handler calls this on the leader)."""
        if self._service is None:
            return error_answer(NotControllerError(f"node {self.node_id} is not a controller"))
        try:
            return await self._dispatch(self._service, body)
        except StaleBrokerEpochError as error:
            return {**error_answer(error), "stale_broker_epoch": True}
        except ControllerError as error:
            return error_answer(error)
        except (KeyError, TypeError, ValueError) as error:
            return error_answer(errors.InvalidRequestError(f"malformed request: {error!r}"))

    async def _dispatch(
        self, service: ControllerService, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        kind = body["kind"]
        if kind == "register_broker":
            return await self._register_broker(service, body)
        if kind == "broker_heartbeat":
            return await self._broker_heartbeat(service, body)
        if kind == "alter_partition":
            return await self._alter_partition(service, body)
        if kind == "admin":
            _, offset = await service.submit(_admin_operation(body))
            return {"offset": offset}
        if kind == "read_index":
            return self._read_index()
        raise errors.InvalidRequestError(f"unknown controller request kind {kind!r}")

    async def _register_broker(
        self, service: ControllerService, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        broker_id = int(body["broker_id"])
        incarnation_id = str(body["incarnation_id"])
        endpoints = tuple(Endpoint(str(n), str(h), int(p)) for n, h, p in body["endpoints"])
        rack = body.get("rack")
        log_dir_id = body.get("log_dir_id")
        log_dir_id = None if log_dir_id is None else str(log_dir_id)
        response, _ = await service.submit(
            lambda controller, now_ms: controller.register_broker(
                broker_id, incarnation_id, endpoints, rack, now_ms, log_dir_id
            )
        )
        return {"broker_epoch": int(response)}

    async def _broker_heartbeat(
        self, service: ControllerService, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        broker_id = int(body["broker_id"])
        broker_epoch = int(body["broker_epoch"])
        applied_offset = int(body["applied_offset"])
        want_shutdown = bool(body["want_shutdown"])
        committed_offset = self._runtime.status().high_watermark - 1
        response, _ = await service.submit(
            lambda controller, now_ms: controller.broker_heartbeat(
                broker_id, broker_epoch, applied_offset, committed_offset, want_shutdown, now_ms
            )
        )
        assert isinstance(response, HeartbeatResponse)
        return {
            "is_fenced": response.is_fenced,
            "in_controlled_shutdown": response.in_controlled_shutdown,
            "should_shutdown": response.should_shutdown,
        }

    async def _alter_partition(
        self, service: ControllerService, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """An ISR change requested by a partition leader, accepted only with the current
        leader and partition epochs; the answer is the partition as committed."""
        broker_id, broker_epoch = int(body["broker_id"]), int(body["broker_epoch"])
        topic_id, partition_id = str(body["topic_id"]), int(body["partition_id"])
        leader_epoch, partition_epoch = int(body["leader_epoch"]), int(body["partition_epoch"])
        new_isr = tuple(int(replica) for replica in body["new_isr"])
        epochs = body.get("new_isr_broker_epochs")
        # KIP-903: the broker epochs the leader saw the members fetch with
        member_epochs = (
            None
            if epochs is None
            else dict(zip(new_isr, (int(epoch) for epoch in epochs), strict=True))
        )
        response, offset = await service.submit(
            lambda controller, now_ms: controller.alter_partition(
                broker_id,
                broker_epoch,
                topic_id,
                partition_id,
                leader_epoch,
                partition_epoch,
                new_isr,
                member_epochs,
            )
        )
        assert isinstance(response, PartitionRegistration)
        return {
            "offset": offset,
            "leader": response.leader,
            "isr": list(response.isr),
            "leader_epoch": response.leader_epoch,
            "partition_epoch": response.partition_epoch,
        }

    def _read_index(self) -> dict[str, Any]:
        read_index = self._runtime.read_index()
        if read_index is None:
            raise NotControllerError(
                f"node {self.node_id} is not an active controller that has committed in its "
                "epoch yet"
            )
        return {"read_index": read_index}

    async def catch_up_metadata(self, timeout_s: float = READ_INDEX_TIMEOUT_S) -> bool:
        """Waits until this node has applied every metadata record the active controller
        had committed when asked. False when that did not happen within `timeout_s` (no
        controller, a partition): the caller then reads this node's image as it is."""
        last_refusal: Exception | None = None
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    try:
                        answer = await self.call({"kind": "read_index"})
                        raise_if_error(answer)
                        break
                    except (NotControllerError, NoLeaderError) as refusal:
                        # an election in progress, or a leader yet to commit in its epoch
                        last_refusal = refusal
                        await asyncio.sleep(READ_INDEX_RETRY_S)
                read_index = int(answer["read_index"])
                if read_index > 0:
                    await self._runtime.wait_applied(read_index - 1, timeout_s)
        except (ControllerError, TimeoutError) as error:
            reason = last_refusal if isinstance(error, TimeoutError) and last_refusal else error
            log.info("metadata.read_index_missed", reason=str(reason) or type(reason).__name__)
            return False
        return True

    # --- AdminFacade writes ----------------------------------------------------------------

    async def admin(self, op: str, **arguments: Any) -> None:
        answer = await self.call({"kind": "admin", "op": op, **arguments})
        raise_if_error(answer)
        offset = int(answer["offset"])
        if offset >= 0:
            await self._runtime.wait_applied(offset, APPLY_TIMEOUT_S)

    async def create_topic(
        self,
        name: str,
        partitions: int | None,
        replication_factor: int | None,
        configs: Mapping[str, str],
        validate_only: bool = False,
    ) -> None:
        await self.admin(
            "create_topic",
            name=name,
            partitions=partitions,
            replication_factor=replication_factor,
            configs=dict(configs),
            validate_only=validate_only,
        )

    async def delete_topic(self, name: str) -> None:
        await self.admin("delete_topic", name=name)

    async def create_partitions(self, name: str, total_count: int) -> None:
        await self.admin("create_partitions", name=name, total_count=total_count)

    async def alter_topic_configs(
        self,
        name: str,
        set_configs: Mapping[str, str],
        delete_configs: Sequence[str] = (),
        validate_only: bool = False,
    ) -> None:
        await self.admin(
            "alter_topic_configs",
            name=name,
            set_configs=dict(set_configs),
            delete_configs=list(delete_configs),
            validate_only=validate_only,
        )


Operation = Callable[[QuorumController, int], Any]


def _admin_operation(body: Mapping[str, Any]) -> Operation:
    """The controller call an admin request asks for; InvalidRequestError for unknown ops."""
    op = body["op"]
    if op == "create_topic":
        name, partitions, factor = body["name"], body["partitions"], body["replication_factor"]
        configs, validate_only = dict(body["configs"]), bool(body["validate_only"])
        return lambda c, now: c.create_topic(name, partitions, factor, configs, validate_only)
    if op == "delete_topic":
        name = body["name"]
        return lambda c, now: c.delete_topic(name)
    if op == "create_partitions":
        name, total = body["name"], int(body["total_count"])
        return lambda c, now: c.create_partitions(name, total)
    if op == "alter_topic_configs":
        name, to_set = body["name"], dict(body["set_configs"])
        to_delete, validate_only = list(body["delete_configs"]), bool(body["validate_only"])
        return lambda c, now: c.alter_topic_configs(name, to_set, to_delete, validate_only)
    raise errors.InvalidRequestError(f"unknown admin operation {op!r}")
