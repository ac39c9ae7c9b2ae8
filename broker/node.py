"""One kraft node process: checks its storage, opens the quorum's stores, starts the rpc
listener, the quorum runtime and the HTTP listener, and stops them in reverse order.

`run_server(config)` is what `kraft server` calls. SIGTERM and SIGINT stop the node
gracefully: a leader resigns first (EndQuorumEpoch) so the quorum elects a successor at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
import time
import uuid
from typing import Any

import structlog
import uvloop
from aiohttp import web
from prometheus_client import CollectorRegistry

from broker.api.facade import NoLeaderError, QuorumDescription
from broker.api.http import build_app
from broker.controller_gateway import CONTROLLER_REQUEST_KINDS, ControllerGateway
from broker.kafka.groups.coordinator import CoordinatorSettings, GroupCoordinator
from broker.kafka.groups.inspect import GroupInspector
from broker.kafka.groups.metrics import GroupMetrics
from broker.kafka.groups.model import GroupSettings
from broker.kafka.metrics import KafkaListenerMetrics
from broker.kafka.producers import ProducerIdAllocator
from broker.kafka.server import KafkaServer
from broker.kafka.services import BrokerServices
from broker.metadata.lifecycle import BrokerLifecycle
from broker.metrics import BrokerMetrics
from broker.partitions.dataplane import DataPlane
from broker.partitions.manager import ReplicaManager, ReplicaSettings
from broker.partitions.native import NativeProtocolHandler, invalid_request_answer
from broker.quorum_views import describe_as_leader, description_from_wire, description_to_wire
from kraft.config import NodeConfig
from kraft.controller.controller import ControllerSettings
from kraft.controller.image import MetadataImage
from kraft.controller.records import Endpoint
from kraft.controller.service import ControllerService
from kraft.controller.statemachine import MetadataStateMachine
from kraft.logging import configure_logging
from kraft.metrics import ControllerMetrics, QuorumMetrics
from kraft.protocol.native import DATA_REQUEST_KINDS
from kraft.quorum.runtime import QuorumRuntime, RuntimeHooks
from kraft.raft.config import RaftConfig
from kraft.raft.types import NotLeaderError, QuorumStatus, Role, RoleChange
from kraft.rpc.errors import RpcError
from kraft.rpc.handshake import Hello
from kraft.rpc.server import RpcServer
from kraft.rpc.transport import PeerTransport
from kraft.statemachine.composite import CompositeStateMachine
from kraft.statemachine.kv import InvalidRecordError, KeyValueStateMachine, decode_put
from kraft.storage.meta import StorageError, check_storage
from kraft.storage.segments import FileLogStore
from kraft.storage.snapshots import FileSnapshotStore
from kraft.storage.state import FileStateStore

log = structlog.get_logger(__name__)

FORWARD_TIMEOUT_S = 10.0
COMMIT_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 10.0
# How long a node keeps re-asking for a leader before it answers "no leader" (503).
LEADER_WAIT_S = 2.0
EXIT_SOFTWARE_ERROR = 70  # sysexits EX_SOFTWARE: a bug stopped the node
EXIT_IO_ERROR = 74  # sysexits EX_IOERR: the log directory failed


class Node:
    """Implements broker.api.facade.NodeFacade for the HTTP routes."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.cluster_id = ""
        self._log_dir_id: str | None = None  # directory.id of log.dirs[0]
        self.registry = CollectorRegistry()
        self.kv = KeyValueStateMachine()
        self.metadata = MetadataStateMachine()
        self.state_machine = CompositeStateMachine(self.metadata, self.kv)
        self._controller_service: ControllerService | None = None
        self._gateway: ControllerGateway | None = None
        self._lifecycle: BrokerLifecycle | None = None
        self._replicas: ReplicaManager | None = None
        self._native: NativeProtocolHandler | None = None
        self.data_plane: DataPlane | None = None
        self._kafka_server: KafkaServer | None = None  # the Kafka protocol on CLIENT
        self._groups: GroupCoordinator | None = None  # consumer groups on the Kafka protocol
        self._group_inspector: GroupInspector | None = None  # groups for HTTP and metrics
        self._group_metrics: GroupMetrics | None = None
        self._runtime: QuorumRuntime | None = None
        self._transport: PeerTransport | None = None
        self._rpc_server: RpcServer | None = None
        self._http_runner: web.AppRunner | None = None
        self._metrics: QuorumMetrics | None = None
        self.stop_requested = asyncio.Event()
        self.exit_code = 0

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        meta = check_storage(list(config.storage_dirs), config.node_id)
        self.cluster_id = meta.cluster_id
        # storage_dirs starts with log.dirs: the first one holds the partition logs
        self._log_dir_id = meta.directory_ids[0] if meta.directory_ids else None
        voters = frozenset(config.voters)
        if config.node_id in voters and not meta.initial_voter:
            # docs/decisions/0001: a replacement for a voter that lost its storage observes
            voters = voters - {config.node_id}
            log.warning(
                "node.replacement_observer",
                reason="storage formatted with --no-initial-controllers: observing only",
            )
        raft_config = RaftConfig(
            node_id=config.node_id,
            voters=voters,
            fetch_timeout_ticks=config.fetch_timeout_ticks,
            election_timeout_ticks=config.election_timeout_ticks,
            fetch_max_wait_ticks=max(1, config.fetch_timeout_ticks * 2 // 5),
            fetch_request_timeout_ticks=max(2, config.fetch_timeout_ticks * 3 // 5),
            begin_quorum_resend_ticks=max(1, config.election_timeout_ticks // 2),
        )
        raft_config.validate()
        directory = config.metadata_partition_dir
        directory.mkdir(parents=True, exist_ok=True)
        log_store = FileLogStore(directory)
        for report in log_store.recovery_reports:
            log.warning("storage.torn_tail_truncated", detail=report.describe())
        peers = {node_id: address for node_id, address in config.voters.items()}
        peers.pop(config.node_id, None)
        self._transport = PeerTransport(
            node_id=config.node_id,
            cluster_id=self.cluster_id,
            directory_id=meta.directory_ids[0] if meta.directory_ids else str(uuid.uuid4()),
            peers=peers,
            listen_address="{}:{}".format(*config.advertised_listener("RPC")),
        )
        self._runtime = QuorumRuntime(
            raft_config,
            log_store=log_store,
            state_store=FileStateStore(directory / "quorum-state"),
            snapshot_store=FileSnapshotStore(directory),
            transport=self._transport,
            state_machine=self.state_machine,
            tick_ms=config.tick_ms,
            snapshot_interval_records=config.snapshot_interval_records,
            hooks=RuntimeHooks(
                on_role_change=self._on_role_change,
                on_commit_latency=lambda s: self._require_metrics().observe_commit_latency(s),
                on_append=lambda n, s: self._require_metrics().observe_append(n, s),
                on_fatal=self._on_fatal,
            ),
        )
        self._metrics = QuorumMetrics(
            self.registry, self._runtime.status, rpc_stats=self._transport.stats
        )
        self._start_controller_parts(raft_config)
        runtime = self._runtime
        service = self._controller_service
        ControllerMetrics(
            self.registry,
            self.metadata_image,
            lambda: runtime.role is Role.LEADER,
            self.metadata_lag,
            service.counters if service is not None else None,
        )
        host, port = config.rpc_listener
        self._rpc_server = RpcServer(
            host,
            port,
            cluster_id=self.cluster_id,
            node_id=config.node_id,
            on_raft_message=self._runtime.deliver,
            on_request=self._handle_rpc_request,
            on_peer_hello=self._learn_peer_address,
        )
        await self._runtime.start()
        await self._transport.start()
        await self._rpc_server.start()
        if self._controller_service is not None:
            await self._controller_service.start()
        if self._replicas is not None:
            await self._replicas.start()
        if self._groups is not None:
            await self._groups.start()
        if self._group_metrics is not None:
            await self._group_metrics.start()
        if self._kafka_server is not None:
            await self._kafka_server.start()
        await self._start_http()
        if self._lifecycle is not None:
            await self._lifecycle.start()
        log.info(
            "node.started",
            cluster_id=self.cluster_id,
            roles=sorted(config.process_roles),
            rpc=f"{host}:{port}",
            http="{}:{}".format(*config.http_listener),
        )

    async def _start_http(self) -> None:
        app = build_app(
            self,
            self.registry,
            admin=self._require_gateway(),
            data=self.data_plane,
            groups=None if self._groups is None else self._group_inspector,
            admin_token=self.config.admin_token,
        )
        self._http_runner = web.AppRunner(app, access_log=None)
        await self._http_runner.setup()
        host, port = self.config.http_listener
        await web.TCPSite(self._http_runner, host, port).start()

    def _start_controller_parts(self, raft_config: RaftConfig) -> None:
        """The controller service (on voters) and the broker lifecycle (on brokers)."""
        config = self.config
        runtime = self._require_runtime()
        if config.is_controller and raft_config.is_voter:
            settings = ControllerSettings(
                default_partitions=config.num_partitions,
                default_replication_factor=config.default_replication_factor,
                min_insync_replicas=config.min_insync_replicas,
                unclean_leader_election_enable=config.unclean_leader_election_enable,
                broker_session_timeout_ms=config.broker_session_timeout_ms,
            )
            self._controller_service = ControllerService(
                runtime,
                self.metadata,
                settings,
                topic_id_factory=new_topic_id,
                former_leader_silence_ms=config.fetch_timeout_ms,
            )
        self._gateway = ControllerGateway(
            config.node_id,
            runtime,
            self._controller_service,
            self._require_transport(),
            self._known_leader,
            lambda: self.metadata.image,
            self.metadata_lag,
        )
        self._gateway.cluster_id = self.cluster_id
        if config.is_broker:
            endpoints = tuple(
                Endpoint(name, *config.advertised_listener(name))
                for name in ("CLIENT", "RPC", "HTTP")
            )
            self._lifecycle = BrokerLifecycle(
                config.node_id,
                endpoints,
                rack=config.broker_rack,
                ask_controller=self._gateway.call,
                applied_offset=lambda: runtime.applied_end_offset - 1,
                heartbeat_interval_s=config.broker_heartbeat_interval_ms / 1000,
                log_dir_id=self._log_dir_id,
            )
            self._start_replicas()

    def _start_replicas(self) -> None:
        """The data plane of a broker: partition replicas that follow the metadata."""
        config = self.config
        runtime = self._require_runtime()
        lifecycle = self._lifecycle
        assert lifecycle is not None
        flush_messages = config.log_flush_interval_messages
        session_timeout_s = config.broker_session_timeout_ms / 1000
        settings = ReplicaSettings(
            broker_id=config.node_id,
            log_dir=config.log_dirs[0],
            segment_bytes=config.log_segment_bytes,
            retention_ms=config.log_retention_ms,
            retention_bytes=config.log_retention_bytes,
            flush_interval_messages=None if flush_messages >= 2**63 - 1 else flush_messages,
            min_insync_replicas=config.min_insync_replicas,
            replica_lag_time_max_ms=config.replica_lag_time_max_ms,
            cleaner_backoff_ms=config.log_cleaner_backoff_ms,
        )
        self._replicas = ReplicaManager(
            settings,
            image=lambda: self.metadata.image,
            metadata_caught_up=self._broker_metadata_current,
            broker_epoch=lambda: lifecycle.state.broker_epoch,
            ask_controller=self._require_gateway().call,
            request_broker=self._request_broker,
            has_controller_lease=lambda: lifecycle.has_controller_lease(session_timeout_s),
            on_storage_failure=self._on_storage_failure,
        )
        replicas = self._replicas
        replicas.metrics = BrokerMetrics(self.registry, replicas.stats)
        self.metadata.on_applied.append(self._replicas.on_metadata_applied)
        self._native = NativeProtocolHandler(
            self._replicas,
            lambda: self.metadata.image,
            lambda: self.cluster_id,
            lambda: runtime.leader_id,
        )
        self.data_plane = DataPlane(
            self._replicas, lambda: self.metadata.image, self._request_broker
        )
        self._groups = GroupCoordinator(
            config.node_id,
            CoordinatorSettings(
                offsets_topic_partitions=config.offsets_topic_num_partitions,
                offsets_topic_replication_factor=config.offsets_topic_replication_factor,
                group=GroupSettings(
                    initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms,
                    min_session_timeout_ms=config.group_min_session_timeout_ms,
                    max_session_timeout_ms=config.group_max_session_timeout_ms,
                ),
                offsets_retention_ms=config.offsets_retention_minutes * 60_000,
                offsets_retention_check_interval_ms=config.offsets_retention_check_interval_ms,
            ),
            data=replicas,
            admin=self._require_gateway(),
            image=lambda: self.metadata.image,
            on_fatal=self._on_fatal,
        )
        self._group_inspector = GroupInspector(lambda: self.metadata.image)
        self._group_metrics = GroupMetrics(self.registry, self._groups, self._group_inspector)
        services = BrokerServices(
            config.node_id,
            replicas,
            self._require_gateway(),
            lambda: self.metadata.image,
            lambda: self.cluster_id,
            lambda: runtime.leader_id,
            producer_ids=ProducerIdAllocator(lambda: lifecycle.state.broker_epoch),
            broker_config=config.raw,
            groups=self._groups,
            auto_create_topics=config.auto_create_topics_enable,
        )
        self._kafka_server = server = KafkaServer(*config.client_listener, services)
        server.metrics = KafkaListenerMetrics(self.registry, lambda: server.connection_count)

    def _broker_metadata_current(self) -> bool:
        """Whether the replicas may act on the metadata image: caught up with the log, and
        the image shows this broker registered with its current epoch. Until then a broker
        that restarted (maybe with a lost or wiped log) would take a stale registration
        naming it leader at face value; the controller moves leadership away from an old
        incarnation in the same batch as the new registration."""
        lifecycle = self._lifecycle
        if lifecycle is None or not self._require_runtime().is_ready():
            return False
        broker_epoch = lifecycle.state.broker_epoch
        registered = self.metadata.image.brokers.get(self.node_id)
        return (
            broker_epoch is not None
            and registered is not None
            and registered.broker_epoch == broker_epoch
        )

    async def _request_broker(
        self, broker_id: int, body: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        """A request to another broker's rpc listener, at the address it registered."""
        transport = self._require_transport()
        if broker_id not in self.config.voters:
            broker = self.metadata.image.brokers.get(broker_id)
            endpoint = None if broker is None else broker.endpoint("RPC")
            if endpoint is None:
                raise NoLeaderError(f"broker {broker_id} has no registered rpc endpoint")
            transport.set_peer(broker_id, endpoint.host, endpoint.port)
        return await transport.request(broker_id, body, timeout_s)

    async def close(self) -> None:
        log.info("node.stopping")
        if self._lifecycle is not None:
            with contextlib.suppress(NoLeaderError):
                await self._lifecycle.controlled_shutdown()
            await self._lifecycle.close()
        if self._kafka_server is not None:
            await self._kafka_server.close()
        if self._group_metrics is not None:
            await self._group_metrics.close()
        if self._groups is not None:
            await self._groups.close()
        if self._replicas is not None:
            await self._replicas.close()
        if self._controller_service is not None:
            await self._controller_service.close()
        if self._runtime is not None:
            await self._runtime.close(resign=True)
        if self._http_runner is not None:
            await self._http_runner.cleanup()
        if self._rpc_server is not None:
            await self._rpc_server.close()
        if self._transport is not None:
            await self._transport.close()
        log.info("node.stopped")

    def _learn_peer_address(self, hello: Hello) -> None:
        """Observers (brokers, replacement voters) are not in controller.quorum.voters; the
        leader learns where to answer them from their hello."""
        address = hello.listen_host_port()
        if hello.node_id is None or address is None or hello.node_id == self.node_id:
            return
        if hello.node_id in self.config.voters:
            return  # voters' addresses come from the configuration
        self._require_transport().set_peer(hello.node_id, *address)

    def _on_role_change(self, change: RoleChange) -> None:
        self._require_metrics().on_role_change(change)
        if self._controller_service is not None:
            self._controller_service.note_role_change(change)

    def _on_fatal(self, error: BaseException) -> None:
        log.critical("node.fatal", reason=f"the quorum loop crashed: {error!r}")
        self.exit_code = EXIT_SOFTWARE_ERROR
        self.stop_requested.set()

    def _on_storage_failure(self, error: BaseException) -> None:
        if self.exit_code == EXIT_IO_ERROR:
            return
        log.critical(
            "node.storage_failed",
            reason=f"the log directory failed a write: {error}; stopping (its leaderships "
            "move to other replicas); free the disk or fix the device, then start the node",
        )
        self.exit_code = EXIT_IO_ERROR
        self.stop_requested.set()

    def _require_runtime(self) -> QuorumRuntime:
        assert self._runtime is not None, "start() the node first"
        return self._runtime

    def _require_metrics(self) -> QuorumMetrics:
        assert self._metrics is not None
        return self._metrics

    def _require_transport(self) -> PeerTransport:
        assert self._transport is not None
        return self._transport

    # --- NodeFacade ------------------------------------------------------------------------

    def quorum_status(self) -> QuorumStatus:
        return self._require_runtime().status()

    def tick_to_unix_ms(self, tick: int) -> int:
        return self._require_runtime().tick_to_unix_ms(tick)

    def is_ready(self) -> bool:
        """Ready once the metadata log is caught up and, on a broker, once the controller has
        unfenced it (Kafka's RUNNING state)."""
        if not self._require_runtime().is_ready():
            return False
        return self._lifecycle is None or not self._lifecycle.state.is_fenced

    async def kv_put(self, key: str, value: str) -> int:
        record = KeyValueStateMachine.encode_put(key, value)
        offset = await self._propose_anywhere([record])
        await self._require_runtime().wait_applied(offset, COMMIT_TIMEOUT_S)
        return offset

    def kv_get(self, key: str) -> str | None:
        return self.kv.get(key)

    # --- AdminFacade: served by the ControllerGateway (see _start_http) --------------------

    def metadata_image(self) -> MetadataImage:
        return self.metadata.image

    def metadata_lag(self) -> int:
        runtime = self._require_runtime()
        return max(0, runtime.status().high_watermark - runtime.applied_end_offset)

    def _require_gateway(self) -> ControllerGateway:
        assert self._gateway is not None, "start() the node first"
        return self._gateway

    async def describe_quorum(self) -> QuorumDescription:
        runtime = self._require_runtime()
        if runtime.role is Role.LEADER:
            return self._describe_as_leader()
        leader_id = await self._known_leader()
        try:
            answer = await self._ask_leader(leader_id, {"kind": "describe_quorum"})
        except TimeoutError:
            raise NoLeaderError(f"leader {leader_id} did not answer in time") from None
        if "error" in answer:
            raise NoLeaderError(str(answer["error"]))
        wire = answer.get("description")
        if not isinstance(wire, dict):
            raise NoLeaderError(f"leader {leader_id} answered without a description")
        return description_from_wire(wire)

    async def _ask_leader(self, leader_id: int, body: dict[str, object]) -> dict[str, object]:
        """Sends a request to the leader; an unreachable leader is a NoLeaderError (retriable),
        while TimeoutError (the outcome is unknown) passes through."""
        try:
            return await self._require_transport().request(leader_id, body, FORWARD_TIMEOUT_S)
        except (RpcError, OSError) as error:
            raise NoLeaderError(f"leader {leader_id} cannot be reached: {error}") from error

    # --- leader side -----------------------------------------------------------------------

    def _describe_as_leader(self) -> QuorumDescription:
        return describe_as_leader(self._require_runtime(), self.cluster_id)

    async def _propose_anywhere(self, records: list[bytes]) -> int:
        """Proposes on this node when it leads, else forwards to the leader over rpc."""
        runtime = self._require_runtime()
        if runtime.role is Role.LEADER:
            try:
                return await runtime.propose(records, COMMIT_TIMEOUT_S)
            except NotLeaderError:
                pass  # lost leadership meanwhile: forward below
        leader_id = await self._known_leader()
        if leader_id == self.node_id:
            return await runtime.propose(records, COMMIT_TIMEOUT_S)
        answer = await self._ask_leader(leader_id, {"kind": "propose", "records": records})
        if "error" in answer:
            raise NoLeaderError(f"leader {leader_id} refused the write: {answer['error']}")
        offset = answer["offset"]
        assert isinstance(offset, int), f"leader answered a non-integer offset {offset!r}"
        return offset

    async def _known_leader(self) -> int:
        """The current leader, waiting a little for an election to finish."""
        runtime = self._require_runtime()
        give_up_at = time.monotonic() + LEADER_WAIT_S
        while True:
            leader_id = runtime.leader_id
            if leader_id is not None and runtime.role is not Role.CANDIDATE:
                return leader_id
            if time.monotonic() >= give_up_at:
                raise NoLeaderError("no leader is known: an election is in progress")
            await asyncio.sleep(0.02)

    async def _handle_rpc_request(self, sender: int | None, body: dict[str, object]) -> dict:
        kind = body.get("kind")
        runtime = self._require_runtime()
        if kind in CONTROLLER_REQUEST_KINDS:
            if sender is None:
                # only cluster nodes (a node id in their hello, cluster id checked) may
                # register brokers, heartbeat or change ISRs; tools use the HTTP admin API
                return {
                    "error_code": 40101,
                    "message": f"{kind} requests come only from cluster nodes",
                    "error_type": "InvalidRequestError",
                }
            return await self._require_gateway().handle(body)
        if kind in DATA_REQUEST_KINDS:
            if self._native is None:
                return invalid_request_answer(f"node {self.node_id} is not a broker")
            return await self._native.handle(sender, body)
        try:
            if kind == "propose":
                records = body.get("records")
                if not isinstance(records, list) or not all(isinstance(r, bytes) for r in records):
                    return {"error": "propose needs a list of byte strings in 'records'"}
                for record in records:
                    decode_put(record)
                if runtime.role is not Role.LEADER:
                    return {"error": f"not the leader (leader is {runtime.leader_id})"}
                return {"offset": await runtime.propose(records, COMMIT_TIMEOUT_S)}
            if kind == "describe_quorum":
                return {"description": description_to_wire(self._describe_as_leader())}
        except (NotLeaderError, NoLeaderError) as error:
            return {"error": str(error)}
        except TimeoutError:
            return {"error": "timed out waiting for the commit"}
        except InvalidRecordError as error:
            return {"error": f"invalid record: {error}"}
        return {
            "error": f"unknown request kind {kind!r}",
            **invalid_request_answer(f"unknown request kind {kind!r}"),
        }


def new_topic_id() -> str:
    """A random topic id in Kafka's text form: 22 characters of URL-safe base64."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


async def serve(config: NodeConfig) -> int:
    node = Node(config)
    stop = node.stop_requested
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await node.start()
    except StorageError as error:
        log.error("node.storage_refused", reason=str(error))
        return 1
    except OSError as error:
        log.error("node.start_failed", reason=str(error))
        await node.close()
        return 1
    await stop.wait()
    try:
        await asyncio.wait_for(node.close(), SHUTDOWN_TIMEOUT_S)
    except TimeoutError:
        log.error("node.shutdown_timed_out", timeout_s=SHUTDOWN_TIMEOUT_S)
        return 1
    return node.exit_code


def run_server(config: NodeConfig) -> int:
    """Runs one node until SIGTERM/SIGINT; returns the process exit code."""
    configure_logging(config.node_id, config.log_level)
    # The node's event loop is uvloop's (libuv): the same asyncio code, with less work between
    # an event and the code waiting for it. At 1,000 acks=all records/s it took the p99 from
    # 10.9-13.9 to 8.6-11.1 ms in paired runs (docs/decisions/0008-uvloop.md).
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        return runner.run(serve(config))
    return 0
