"""A broker's life as the controller sees it: registration, heartbeats, controlled shutdown.

The broker registers with the active controller (and again whenever the controller says its
epoch is stale, e.g. after a new incarnation), then heartbeats every
broker.heartbeat.interval.ms with how far it has applied the metadata log. It starts fenced
and is unfenced once caught up. On SIGTERM it asks for a controlled shutdown and waits, with a
deadline, until the controller has moved its partition leadership away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from broker.api.facade import NoLeaderError
from kraft.controller.records import Endpoint
from kraft.rpc.errors import RpcError

log = structlog.get_logger(__name__)

REGISTRATION_RETRY_S = 0.2
# A heartbeat that is not answered within this many intervals is given up and retried, so a
# dead controller costs at most that before the broker finds the new one.
HEARTBEAT_TIMEOUT_INTERVALS = 2
CONTROLLED_SHUTDOWN_TIMEOUT_S = 5.0

AskController = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ControllerUnavailable(Exception):
    """The request could not reach an active controller (retry later)."""


@dataclass(slots=True)
class BrokerState:
    broker_epoch: int | None = None
    is_fenced: bool = True
    in_controlled_shutdown: bool = False
    should_shutdown: bool = False
    # When the last request the controller answered was sent (monotonic seconds): the
    # controller's session for this broker was refreshed no earlier than that.
    last_contact_s: float | None = None


class BrokerLifecycle:
    def __init__(
        self,
        broker_id: int,
        endpoints: tuple[Endpoint, ...],
        rack: str | None,
        ask_controller: AskController,
        applied_offset: Callable[[], int],
        heartbeat_interval_s: float,
        log_dir_id: str | None = None,
    ) -> None:
        self.broker_id = broker_id
        # directory.id of the log directory: a new one tells the controller our data is gone
        self.log_dir_id = log_dir_id
        self.incarnation_id = uuid.uuid4().hex
        self.state = BrokerState()
        self._endpoints = endpoints
        self._rack = rack
        self._ask = ask_controller
        self._applied_offset = applied_offset
        self._heartbeat_interval_s = heartbeat_interval_s
        self._want_shutdown = False
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._heartbeat_now = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"broker-{self.broker_id}-lifecycle")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def controlled_shutdown(self, timeout_s: float = CONTROLLED_SHUTDOWN_TIMEOUT_S) -> bool:
        """Asks the controller to move leadership away; True once it says we may stop."""
        if self.state.broker_epoch is None:
            return True  # never registered: nothing leads here
        self._want_shutdown = True
        self._heartbeat_now.set()  # ask at once rather than at the next interval
        give_up_at = time.monotonic() + timeout_s
        while not self.state.should_shutdown and time.monotonic() < give_up_at:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), give_up_at - time.monotonic())
        log.info("broker.controlled_shutdown", completed=self.state.should_shutdown)
        return self.state.should_shutdown

    async def _run(self) -> None:
        while True:
            try:
                if self.state.broker_epoch is None:
                    await self._register()
                else:
                    await self._heartbeat()
            except (ControllerUnavailable, TimeoutError) as error:
                log.debug("broker.controller_unavailable", reason=str(error))
                await asyncio.sleep(REGISTRATION_RETRY_S)
                continue
            interval = self._heartbeat_interval_s
            if self._want_shutdown:
                interval = min(interval, REGISTRATION_RETRY_S / 2)
            await self._sleep(interval if self.state.broker_epoch is not None else 0.05)

    async def _sleep(self, seconds: float) -> None:
        """Waits for the next heartbeat, or less when one is wanted now."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._heartbeat_now.wait(), seconds)
        self._heartbeat_now.clear()

    async def _ask_with_deadline(self, body: dict[str, Any]) -> dict[str, Any]:
        """The controller's answer; ControllerUnavailable when none comes in time (whatever
        went wrong: no leader known, the leader died, a timeout)."""
        timeout_s = max(
            REGISTRATION_RETRY_S, HEARTBEAT_TIMEOUT_INTERVALS * self._heartbeat_interval_s
        )
        try:
            async with asyncio.timeout(timeout_s):
                return await self._ask(body)
        except TimeoutError:
            raise ControllerUnavailable(f"no answer from the controller in {timeout_s} s") from None
        except (NoLeaderError, RpcError, OSError) as error:
            raise ControllerUnavailable(f"{type(error).__name__}: {error}") from error

    def has_controller_lease(self, session_timeout_s: float) -> bool:
        """Whether the controller can still count this broker alive: it answered a request
        sent less than a session timeout ago. Past that, the controller has fenced this
        broker (or will at any moment) and moved its leaderships: a partition leader must
        stop taking writes (Kafka brokers learn it from the metadata; a broker cut off from
        the controller never would)."""
        sent = self.state.last_contact_s
        return sent is not None and time.monotonic() - sent < session_timeout_s

    async def _register(self) -> None:
        sent = time.monotonic()
        answer = await self._ask_with_deadline(
            {
                "kind": "register_broker",
                "broker_id": self.broker_id,
                "incarnation_id": self.incarnation_id,
                "endpoints": [[e.name, e.host, e.port] for e in self._endpoints],
                "rack": self._rack,
                "log_dir_id": self.log_dir_id,
            }
        )
        if "error_code" in answer:
            raise ControllerUnavailable(str(answer.get("message")))
        self.state.broker_epoch = int(answer["broker_epoch"])
        self.state.last_contact_s = sent
        log.info("broker.registered", broker_epoch=self.state.broker_epoch)

    async def _heartbeat(self) -> None:
        assert self.state.broker_epoch is not None
        sent = time.monotonic()
        answer = await self._ask_with_deadline(
            {
                "kind": "broker_heartbeat",
                "broker_id": self.broker_id,
                "broker_epoch": self.state.broker_epoch,
                "applied_offset": self._applied_offset(),
                "want_shutdown": self._want_shutdown,
            }
        )
        if answer.get("stale_broker_epoch"):
            log.warning("broker.reregistering", reason=answer.get("message"))
            self.state = BrokerState()
            return
        if "error_code" in answer:
            raise ControllerUnavailable(str(answer.get("message")))
        was_fenced = self.state.is_fenced
        self.state.last_contact_s = sent
        self.state.is_fenced = bool(answer["is_fenced"])
        self.state.in_controlled_shutdown = bool(answer["in_controlled_shutdown"])
        self.state.should_shutdown = bool(answer["should_shutdown"])
        if was_fenced != self.state.is_fenced:
            log.info("broker.fencing_changed", fenced=self.state.is_fenced)
        self._changed.set()
