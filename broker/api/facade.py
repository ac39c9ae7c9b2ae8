"""What the HTTP routes need from a running node, as a Protocol.

broker.node.Node implements it; tests of the routes may use a small fake. Routes never reach
into the node's internals beyond this surface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kraft.raft.types import QuorumStatus

if TYPE_CHECKING:
    from kraft.controller.image import MetadataImage


class NoLeaderError(Exception):
    """No leader (active controller) is known right now; the caller should retry soon."""


@dataclass(frozen=True, slots=True)
class ReplicaDescription:
    node_id: int
    is_voter: bool
    log_end_offset: int
    last_fetch_unix_ms: int | None
    last_caught_up_unix_ms: int | None


@dataclass(frozen=True, slots=True)
class QuorumDescription:
    """The leader's view of the quorum, as `kafka-metadata-quorum.sh describe` shows it."""

    cluster_id: str
    leader_id: int
    leader_epoch: int
    high_watermark: int
    leader_log_end_offset: int
    voters: tuple[int, ...]
    observers: tuple[int, ...]
    replicas: tuple[ReplicaDescription, ...]  # the leader included
    now_unix_ms: int


class NodeFacade(Protocol):
    node_id: int
    cluster_id: str

    def quorum_status(self) -> QuorumStatus:
        """The core's view of the quorum, taken now."""
        ...

    def tick_to_unix_ms(self, tick: int) -> int:
        """Wall-clock time (ms since the epoch) at which the core's clock showed `tick`."""
        ...

    async def describe_quorum(self) -> QuorumDescription:
        """The leader's view (asked of the leader over rpc when this node is not it).
        Raises NoLeaderError when no leader is known or it cannot be reached."""
        ...

    def is_ready(self) -> bool:
        """True once the node knows a leader and has applied the log up to the high
        watermark it learnt on start; False while booting."""
        ...

    async def kv_put(self, key: str, value: str) -> int:
        """Proposes key=value to the demo key-value state machine (forwarding to the leader
        when this node is not it) and returns the committed offset once applied here.
        Raises NoLeaderError when no leader is known, TimeoutError when the commit did not
        come in time."""
        ...

    def kv_get(self, key: str) -> str | None:
        """The committed value of key in this node's replica of the state machine."""
        ...


class AdminFacade(Protocol):
    """What the cluster-administration routes (Confluent REST v3 subset, health overview)
    need. Reads come from this node's own metadata image; writes go to the active controller
    (forwarded when this node is not it) and return once committed and applied here.

    Writes raise kraft.controller.errors.ControllerError subclasses (each with its Confluent
    error_code), NoLeaderError when no controller is known (503 + Retry-After), TimeoutError.
    """

    node_id: int
    cluster_id: str

    def metadata_image(self) -> MetadataImage:
        """This node's image of the committed metadata log (do not mutate it)."""
        ...

    def controller_id(self) -> int | None:
        """The active controller (the quorum leader), if known."""
        ...

    def metadata_lag(self) -> int:
        """How many committed metadata records this node has not applied yet."""
        ...

    async def catch_up_metadata(self) -> bool:
        """Waits until this node has applied every record the active controller had
        committed when asked, so a read that follows sees every write acknowledged before,
        through any node. False when no controller answered in time (READ_INDEX_TIMEOUT_S):
        the read then serves this node's image as it is."""
        ...

    async def create_topic(
        self,
        name: str,
        partitions: int | None,
        replication_factor: int | None,
        configs: Mapping[str, str],
        validate_only: bool = False,
    ) -> None:
        """None for partitions / replication_factor means the broker defaults
        (num.partitions, default.replication.factor)."""
        ...

    async def delete_topic(self, name: str) -> None: ...

    async def create_partitions(self, name: str, total_count: int) -> None:
        """Grows the topic to `total_count` partitions (never shrinks)."""
        ...

    async def alter_topic_configs(
        self,
        name: str,
        set_configs: Mapping[str, str],
        delete_configs: Sequence[str] = (),
        validate_only: bool = False,
    ) -> None: ...


# --- the data plane (issue 4): produce and consume over HTTP, broker metrics ---------------


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """One record to produce. partition None: the node picks it (Kafka's default
    partitioner: murmur2 of the key, round robin for records without a key)."""

    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    partition: int | None = None
    timestamp_ms: int | None = None  # None: now


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """What became of one OutgoingRecord: error_code is Kafka's (kraft.protocol.errors), 0
    when it was written at `offset` of `partition`; on an error offset is -1 and partition
    may be -1 (no partition could be chosen, e.g. an unknown topic)."""

    partition: int
    offset: int
    timestamp_ms: int
    error_code: int
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """Records from a partition at `offset`, up to its high watermark. error_code is Kafka's
    (1 OFFSET_OUT_OF_RANGE, 3 UNKNOWN_TOPIC_OR_PARTITION, 6 NOT_LEADER_OR_FOLLOWER, ...)."""

    error_code: int
    error_message: str | None
    high_watermark: int
    log_start_offset: int
    records: tuple[ConsumedRecord, ...] = ()


class DataPlaneFacade(Protocol):
    """What the HTTP produce and consume routes need. Any node serves them: it forwards to
    the partition leader when it does not lead the partition itself."""

    async def produce_records(
        self, topic: str, records: Sequence[OutgoingRecord], acks: int, timeout_ms: int
    ) -> list[RecordOutcome]:
        """Produces the records (grouped into one batch per partition, in order) and returns
        one outcome per record, in the order given. Never raises for a refusal: it is in the
        outcome."""
        ...

    async def fetch_records(
        self, topic: str, partition: int, offset: int, max_bytes: int, max_wait_ms: int
    ) -> FetchOutcome:
        """Records from `offset` up to the high watermark, at most about max_bytes (at least
        one batch), waiting up to max_wait_ms for records when there are none yet."""
        ...


@dataclass(frozen=True, slots=True)
class LocalPartitionStats:
    """One partition replica on this broker, for the broker metrics (SPEC §6)."""

    topic: str
    partition: int
    is_leader: bool
    leader_epoch: int
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    size_bytes: int
    replication_factor: int
    isr_size: int
    min_insync_replicas: int
