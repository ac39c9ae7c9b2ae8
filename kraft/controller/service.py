"""The active controller's shell: runs the pure QuorumController on the quorum leader.

Every controller node holds the committed metadata image (applied by the quorum runtime). The
node that leads the quorum is the active controller: once it has applied everything committed
before its epoch (hot standby: the image is already there), it builds a QuorumController over
a copy of the image. One task owns that controller. Requests (topic admin, broker
registrations and heartbeats) and periodic ticks queue up; the task decides each one against
the working image, proposes the records of a whole batch in one proposal and answers every
request of the batch once it is committed. Losing leadership (or a failed proposal) throws the
working controller away; the next leader rebuilds it from the committed image.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from kraft.controller.controller import ControllerResult, ControllerSettings, QuorumController
from kraft.controller.errors import ControllerError, NotControllerError
from kraft.controller.records import (
    BrokerRegistrationChangeRecord,
    MetadataRecord,
    PartitionChangeRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
)
from kraft.controller.serde import encode_batch
from kraft.controller.statemachine import MetadataStateMachine
from kraft.quorum.runtime import OverloadedError, ProposalLostError, QuorumRuntime
from kraft.raft.types import NotLeaderError, ProposalTooLargeError, Role, RoleChange

log = structlog.get_logger(__name__)

REQUEST_QUEUE_MAX = 10_000
MAX_OPERATIONS_PER_BATCH = 500
CONTROLLER_TICK_INTERVAL_S = 0.1
COMMIT_TIMEOUT_S = 10.0

Operation = Callable[[QuorumController, int], ControllerResult]


@dataclass(slots=True)
class _Request:
    operation: Operation
    future: asyncio.Future[tuple[Any, int]] = field(repr=False)


class ControllerService:
    def __init__(
        self,
        runtime: QuorumRuntime,
        state_machine: MetadataStateMachine,
        settings: ControllerSettings,
        topic_id_factory: Callable[[], str],
        *,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        former_leader_silence_ms: int = 0,
    ) -> None:
        self._runtime = runtime
        self._state_machine = state_machine
        self._settings = settings
        self._topic_id_factory = topic_id_factory
        self._clock_ms = clock_ms
        self._queue: asyncio.Queue[_Request] = asyncio.Queue(REQUEST_QUEUE_MAX)
        self._controller: QuorumController | None = None
        self._controller_epoch = -1
        # The quorum leader this node last followed, and how long it has surely been silent
        # when this node wins the next election (the fetch timeout): its broker session
        # starts that much in the past (see QuorumController.start_sessions).
        self._former_leader: int | None = None
        self._former_leader_silence_ms = former_leader_silence_ms
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.leader_elections = 0
        self.unclean_leader_elections = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="controller")
        self._ticker = asyncio.create_task(self._tick_forever(), name="controller-tick")

    async def close(self) -> None:
        for task in (self._ticker, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if not request.future.done():
                request.future.set_exception(NotControllerError("the controller is stopping"))

    def note_role_change(self, change: RoleChange) -> None:
        """Called for every role change of this node's quorum member."""
        if change.to_role is Role.FOLLOWER and change.leader_id is not None:
            self._former_leader = change.leader_id

    def is_active(self) -> bool:
        return self._runtime.role is Role.LEADER

    def counters(self) -> dict[str, int]:
        return {
            "leader_elections": self.leader_elections,
            "unclean_leader_elections": self.unclean_leader_elections,
        }

    async def submit(self, operation: Operation) -> tuple[Any, int]:
        """Runs `operation` on the active controller; returns (its response, the offset the
        operation's records were committed at, or -1 when it wrote nothing). Raises the
        operation's ControllerError, or NotControllerError when this node is not active."""
        if not self.is_active():
            raise NotControllerError(f"node is not the active controller ({self._runtime.role})")
        future: asyncio.Future[tuple[Any, int]] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Request(operation, future))
        except asyncio.QueueFull:
            raise NotControllerError("the controller queue is full; retry") from None
        return await future

    # --- the one task that owns the QuorumController ---------------------------------------

    async def _tick_forever(self) -> None:
        """Queues a tick every interval, one at a time, whatever else is queued: fencing and
        elections must not wait for a busy admin queue to drain."""
        tick_pending: asyncio.Future[tuple[Any, int]] | None = None
        while True:
            await asyncio.sleep(CONTROLLER_TICK_INTERVAL_S)
            if not self.is_active() or (tick_pending is not None and not tick_pending.done()):
                continue
            future: asyncio.Future[tuple[Any, int]] = asyncio.get_running_loop().create_future()
            # nobody awaits a tick: retrieve its outcome so asyncio does not warn
            future.add_done_callback(lambda done: done.cancelled() or done.exception())
            try:
                self._queue.put_nowait(_Request(lambda c, now: c.tick(now), future))
            except asyncio.QueueFull:
                future.cancel()
                continue
            tick_pending = future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_OPERATIONS_PER_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._process(batch)

    def _former_leader_contact(self, now_ms: int) -> dict[int, int]:
        former = self._former_leader
        if former is None or self._former_leader_silence_ms <= 0:
            return {}
        return {former: now_ms - self._former_leader_silence_ms}

    def _active_controller(self, now_ms: int) -> QuorumController:
        """The working controller, rebuilt from the committed image after any change of
        epoch; NotControllerError until this leader has applied all earlier epochs."""
        status = self._runtime.status()
        if status.role is not Role.LEADER:
            self._controller = None
            raise NotControllerError(f"not the active controller (leader is {status.leader_id})")
        if self._controller is None or self._controller_epoch != status.epoch:
            # Decide only from an image that holds every entry this leader's log holds: its
            # own leader-change entry is the last before it proposes, so once the whole log
            # is applied, every entry of earlier leaders (committed by that very entry) and
            # every proposal of ours that timed out is in the image (the simulator's
            # controller mode found both: seeds 101 and 341).
            if self._runtime.applied_end_offset < status.log_end_offset or (
                status.high_watermark == 0
            ):
                raise NotControllerError("the new controller is still loading the metadata log")
            image = self._state_machine.image.copy()
            self._controller = QuorumController(image, self._settings, self._topic_id_factory)
            self._controller_epoch = status.epoch
            self._controller.start_sessions(now_ms, self._former_leader_contact(now_ms))
            log.info(
                "controller.activated", epoch=status.epoch, applied_offset=image.applied_offset
            )
        return self._controller

    async def _process(self, batch: list[_Request]) -> None:
        now_ms = self._clock_ms()
        records = []
        decided: list[tuple[_Request, Any]] = []
        for request in batch:
            if request.future.done():
                continue
            try:
                controller = self._active_controller(now_ms)
                elections, unclean = (
                    controller.leader_elections,
                    controller.unclean_leader_elections,
                )
                result = request.operation(controller, now_ms)
            except ControllerError as error:
                request.future.set_exception(error)
                continue
            self.leader_elections += controller.leader_elections - elections
            self.unclean_leader_elections += controller.unclean_leader_elections - unclean
            records.extend(result.records)
            decided.append((request, result.response))
        if not records:
            for request, response in decided:
                request.future.set_result((response, -1))
            return
        try:
            # one entry for the whole batch: its decisions commit together or not at all
            offset = await self._runtime.propose([encode_batch(records)], COMMIT_TIMEOUT_S)
        except (
            NotLeaderError,
            ProposalLostError,
            ProposalTooLargeError,
            OverloadedError,
            TimeoutError,
        ) as error:
            # The working image holds records that may never commit: start over from the
            # committed image (or let the next leader do it).
            self._controller = None
            log.warning("controller.proposal_failed", error=repr(error), records=len(records))
            for request, _ in decided:
                if not request.future.done():
                    request.future.set_exception(
                        NotControllerError(f"the metadata change was not committed: {error}")
                    )
            return
        for record in records:
            _log_change(record, offset)
        for request, response in decided:
            if not request.future.done():
                request.future.set_result((response, offset))


def _log_change(record: MetadataRecord, offset: int) -> None:
    """One log line per committed change an operator cares about (fencing, leadership,
    ISR, topics), so the node log tells the story of a failover."""
    if isinstance(record, RegisterBrokerRecord):
        log.info(
            "controller.broker_registered",
            broker_id=record.broker_id,
            broker_epoch=record.broker_epoch,
            offset=offset,
        )
    elif isinstance(record, BrokerRegistrationChangeRecord):
        if record.fenced is not None:
            event = "controller.broker_fenced" if record.fenced else "controller.broker_unfenced"
            log.info(event, broker_id=record.broker_id, offset=offset)
        if record.in_controlled_shutdown:
            log.info("controller.broker_controlled_shutdown", broker_id=record.broker_id)
    elif isinstance(record, PartitionChangeRecord):
        log.info(
            "controller.partition_changed",
            topic_id=record.topic_id,
            partition=record.partition_id,
            leader=record.leader,
            isr=None if record.isr is None else list(record.isr),
            unclean=record.unclean,
            offset=offset,
        )
    elif isinstance(record, TopicRecord):
        log.info("controller.topic_created", topic=record.name, topic_id=record.topic_id)
    elif isinstance(record, RemoveTopicRecord):
        log.info("controller.topic_deleted", topic_id=record.topic_id)
