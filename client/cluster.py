"""The client's view of a cluster for the native data protocol (docs/decisions/0005): the
bootstrap addresses, a metadata cache (brokers, and the partitions and leaders of the topics
the client uses), and one rpc connection per broker address.

Metadata comes from the `metadata` request kind, asked of any known broker first and then of
the bootstrap addresses in turn (fail over), each attempt bounded by
METADATA_ATTEMPT_TIMEOUT_MS so one dead address costs little. The producer and consumer call
`invalidate()` when a broker says NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION or a
connection fails; the next `maybe_refresh()` asks again. Refreshes are shared (concurrent
callers wait for one request) and spaced by an exponential backoff from retry_backoff_ms to
retry_backoff_max_ms, so a cluster in the middle of an election is not hammered.

A request that fails without an answer (cannot connect, connection lost, timeout, the node
refuses the kind) raises BrokerUnavailableError: the connection is dropped, the metadata
marked stale, and the caller decides whether to retry.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from client.errors import (
    BrokerUnavailableError,
    ClusterUnavailableError,
    KafkaError,
    MalformedResponseError,
)
from kraft.protocol.errors import ErrorCode
from kraft.protocol.native import KIND_METADATA, NO_LEADER
from kraft.rpc.client import RpcClient
from kraft.rpc.codec import Body
from kraft.rpc.errors import RpcError

log = structlog.get_logger(__name__)

BOOTSTRAP_SERVERS_ENV = "KRAFT_BOOTSTRAP_SERVERS"
# The rpc listeners of the local cluster (SPEC §3): node N at 9093 + 100 * (N - 1).
LOCAL_BOOTSTRAP_SERVERS = ("127.0.0.1:9093", "127.0.0.1:9193", "127.0.0.1:9293")

REQUEST_TIMEOUT_MS_DEFAULT = 30_000  # Kafka's request.timeout.ms
RETRY_BACKOFF_MS_DEFAULT = 100  # Kafka's retry.backoff.ms
# Kafka's retry.backoff.max.ms (KIP-580) is 1000; ours is lower, as the cluster's defaults
# are tuned for fast failover: a producer meeting a dead leader must notice the new one
# within a few hundred ms of its election, not after a second of backoff
# (bench/produce_failover.py: produce resumed after 2.3 s with 1000, 1.0–1.2 s with 100).
RETRY_BACKOFF_MAX_MS_DEFAULT = 250
# Each backoff is drawn in [(1 - this) * delay, delay], so clients restarted together do not
# retry in step.
BACKOFF_JITTER_FRACTION = 0.2
METADATA_MAX_AGE_MS_DEFAULT = 300_000  # Kafka's metadata.max.age.ms: refresh even if all works
# One metadata attempt against one address; short, so that failing over past a dead address
# is quick. A live node answers metadata from its own image, without waiting on anyone.
METADATA_ATTEMPT_TIMEOUT_MS = 5_000
# How long `wait_for_topic` keeps asking about a topic nobody knows yet (Kafka's max.block.ms).
MAX_BLOCK_MS_DEFAULT = 60_000


TopicPartition = tuple[str, int]


def parse_bootstrap_servers(text: str) -> list[str]:
    """`host:port[,host:port...]` -> the list of "host:port"; ValueError names a bad one."""
    addresses = []
    for part in text.split(","):
        address = part.strip()
        if not address:
            continue
        split_address(address)  # raises on a bad one
        addresses.append(address)
    if not addresses:
        raise ValueError(f"bootstrap servers {text!r} name no address")
    return addresses


def split_address(address: str) -> tuple[str, int]:
    """ "host:port" -> (host, port); ValueError when the port is missing or not a port."""
    host, separator, port_text = address.rpartition(":")
    if not separator or not host:
        raise ValueError(f"address {address!r} is not host:port")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"address {address!r} has no port between 1 and 65535")
    return host.strip("[]"), int(port_text)  # [::1]:9093 -> ::1


def default_bootstrap_servers(environ: Mapping[str, str] = os.environ) -> list[str]:
    """$KRAFT_BOOTSTRAP_SERVERS if set, else the local cluster's three rpc listeners."""
    text = environ.get(BOOTSTRAP_SERVERS_ENV, "").strip()
    return parse_bootstrap_servers(text) if text else list(LOCAL_BOOTSTRAP_SERVERS)


# --- Metadata (pure) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    broker_id: int
    host: str
    port: int
    rack: str | None
    fenced: bool

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    topic: str
    partition: int
    leader: int  # NO_LEADER (-1) while none
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TopicInfo:
    topic: str
    error_code: int
    partitions: tuple[PartitionInfo, ...]  # by partition number
    topic_id: str | None = None


@dataclass(frozen=True, slots=True)
class Metadata:
    cluster_id: str | None = None
    controller_id: int | None = None
    brokers: Mapping[int, BrokerInfo] = field(default_factory=dict)
    topics: Mapping[str, TopicInfo] = field(default_factory=dict)

    def partition(self, topic: str, partition: int) -> PartitionInfo | None:
        info = self.topics.get(topic)
        if info is None or not 0 <= partition < len(info.partitions):
            return None
        return info.partitions[partition]

    def leader(self, topic: str, partition: int) -> BrokerInfo | None:
        """The leader's broker entry, or None while the leader (or its address) is unknown."""
        info = self.partition(topic, partition)
        if info is None or info.leader == NO_LEADER:
            return None
        return self.brokers.get(info.leader)


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise MalformedResponseError(f"{where}.{name} is {value!r}, not {kind}")
    return value


def _int_tuple(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(type(item) is int for item in value):
        raise MalformedResponseError(f"{where} is {value!r}, not a list of ints")
    return tuple(value)


def raise_for_request_error(answer: Body, kind: str) -> None:
    """A request malformed as a whole is answered `{"error_code", "error_message"}` at the
    top (decision 0005); that is a bug on this side, surfaced as a KafkaError."""
    code = answer.get("error_code")
    if type(code) is int and code != ErrorCode.NONE:
        raise KafkaError(code, f"{kind} request refused: {answer.get('error_message')}")


def parse_metadata(answer: Body) -> Metadata:
    """The `metadata` answer of decision 0005 as a Metadata; MalformedResponseError names
    the first field that is missing or of the wrong type."""
    raise_for_request_error(answer, KIND_METADATA)
    brokers = {}
    for index, entry in enumerate(_field(answer, "brokers", list, "metadata")):
        where = f"metadata.brokers[{index}]"
        if not isinstance(entry, dict):
            raise MalformedResponseError(f"{where} is not a map")
        rack = entry.get("rack")
        broker = BrokerInfo(
            _field(entry, "broker_id", int, where),
            _field(entry, "host", str, where),
            _field(entry, "port", int, where),
            rack if isinstance(rack, str) else None,
            bool(entry.get("fenced", False)),
        )
        brokers[broker.broker_id] = broker
    topics = {}
    for index, entry in enumerate(_field(answer, "topics", list, "metadata")):
        topic = _parse_topic(entry, f"metadata.topics[{index}]")
        topics[topic.topic] = topic
    controller_id = answer.get("controller_id")
    cluster_id = answer.get("cluster_id")
    return Metadata(
        cluster_id if isinstance(cluster_id, str) else None,
        controller_id if type(controller_id) is int else None,
        brokers,
        topics,
    )


def _parse_topic(entry: Any, where: str) -> TopicInfo:
    if not isinstance(entry, dict):
        raise MalformedResponseError(f"{where} is not a map")
    name = _field(entry, "topic", str, where)
    partitions = []
    for index, item in enumerate(entry.get("partitions") or []):
        at = f"{where}.partitions[{index}]"
        if not isinstance(item, dict):
            raise MalformedResponseError(f"{at} is not a map")
        partitions.append(
            PartitionInfo(
                name,
                _field(item, "partition", int, at),
                _field(item, "leader", int, at),
                _field(item, "leader_epoch", int, at),
                _int_tuple(item.get("replicas", []), f"{at}.replicas"),
                _int_tuple(item.get("isr", []), f"{at}.isr"),
            )
        )
    partitions.sort(key=lambda partition: partition.partition)
    numbers = [partition.partition for partition in partitions]
    if numbers != list(range(len(numbers))):
        raise MalformedResponseError(f"{where} has partitions {numbers}, not 0..n-1")
    topic_id = entry.get("topic_id")
    return TopicInfo(
        name,
        _field(entry, "error_code", int, where),
        tuple(partitions),
        topic_id if isinstance(topic_id, str) else None,
    )


def without_stale_partitions(known: Metadata, fresh: Metadata) -> tuple[Metadata, bool]:
    """`fresh`, except that a partition it shows at an older leader epoch than `known` keeps
    the known entry (KIP-320: a broker cut off from the controller answers with an old
    view, and must not send the client back to a leader it has already left). Returns the
    merged metadata and whether any partition was stale, so the caller refreshes again,
    from another broker."""
    stale = False
    topics = dict(fresh.topics)
    for name, topic in fresh.topics.items():
        before = known.topics.get(name)
        if (
            before is None
            or before.topic_id is None
            or before.topic_id != topic.topic_id
            or len(before.partitions) != len(topic.partitions)
        ):
            continue  # new, recreated or grown: nothing to compare
        merged = []
        for old, new in zip(before.partitions, topic.partitions, strict=True):
            if new.leader_epoch < old.leader_epoch:
                stale = True
                merged.append(old)
            else:
                merged.append(new)
        topics[name] = TopicInfo(topic.topic, topic.error_code, tuple(merged), topic.topic_id)
    if not stale:
        return fresh, False
    brokers = {**known.brokers, **fresh.brokers}
    return Metadata(fresh.cluster_id, fresh.controller_id, brokers, topics), True


def backoff_ms(
    failures: int, initial_ms: int, max_ms: int, rng: random.Random | None = None
) -> float:
    """Kafka's exponential backoff (KIP-580): initial * 2^(failures-1), capped at max, with
    BACKOFF_JITTER_FRACTION of jitter downwards when `rng` is given. 0 failures: 0."""
    if failures <= 0:
        return 0.0
    delay = float(min(max_ms, initial_ms * 2 ** min(failures - 1, 30)))
    if rng is None:
        return delay
    return delay * (1.0 - BACKOFF_JITTER_FRACTION * rng.random())


# --- The cluster (I/O) ------------------------------------------------------------------------


class Cluster:
    """Bootstrap, metadata cache and connections, shared by a Producer or a Consumer.

    `start()` is not needed: the first `maybe_refresh()` (or `wait_for_topic`) connects.
    `close()` closes every connection.
    """

    def __init__(
        self,
        bootstrap_servers: Sequence[str] | None = None,
        *,
        request_timeout_ms: int = REQUEST_TIMEOUT_MS_DEFAULT,
        retry_backoff_ms: int = RETRY_BACKOFF_MS_DEFAULT,
        retry_backoff_max_ms: int = RETRY_BACKOFF_MAX_MS_DEFAULT,
        metadata_max_age_ms: int = METADATA_MAX_AGE_MS_DEFAULT,
        rng: random.Random | None = None,
    ) -> None:
        addresses = list(bootstrap_servers or default_bootstrap_servers())
        for address in addresses:
            split_address(address)
        assert addresses, "at least one bootstrap address"
        self.bootstrap_servers = addresses
        self.request_timeout_ms = request_timeout_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.retry_backoff_max_ms = retry_backoff_max_ms
        self.metadata_max_age_ms = metadata_max_age_ms
        self._rng = rng or random.Random()
        self._metadata = Metadata()
        self._topics: set[str] = set()  # topics whose partitions we keep up to date
        self._stale = True
        self._refreshed_at_s: float | None = None
        self._last_round_s: float | None = None  # when the last round started
        self._failures = 0  # refresh rounds failed in a row, for the backoff
        self._refresh_task: asyncio.Task[Metadata] | None = None
        self._clients: dict[str, RpcClient] = {}
        self._connect_locks: dict[str, asyncio.Lock] = {}
        self._closed = False

    @property
    def metadata(self) -> Metadata:
        return self._metadata

    def add_topics(self, topics: Sequence[str]) -> None:
        """Keeps `topics` in every metadata request from now on; stale if one is new."""
        new = set(topics) - self._topics
        if new:
            self._topics |= new
            self._stale = True

    def invalidate(self) -> None:
        """The cached leaders may be wrong: the next maybe_refresh() asks again."""
        self._stale = True

    @property
    def is_stale(self) -> bool:
        """Whether someone called invalidate() (or no metadata came yet) since the last
        successful refresh."""
        return self._stale

    def _needs_refresh(self, now_s: float) -> bool:
        if self._stale or self._refreshed_at_s is None:
            return True
        return (now_s - self._refreshed_at_s) * 1000 >= self.metadata_max_age_ms

    async def maybe_refresh(self) -> Metadata:
        """Refreshes when stale or older than metadata_max_age_ms; else the cached one.
        Raises ClusterUnavailableError when no address answered."""
        if not self._needs_refresh(asyncio.get_running_loop().time()):
            return self._metadata
        return await self.refresh()

    async def refresh(self) -> Metadata:
        """One metadata round (shared by concurrent callers), after the backoff that
        earlier failures call for. Raises ClusterUnavailableError."""
        if self._closed:
            raise ClusterUnavailableError("the client is closed")
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.create_task(self._refresh_round(), name="metadata")
        # Shielded: one caller giving up (its own timeout) must not cancel the others' round.
        return await asyncio.shield(self._refresh_task)

    async def _refresh_round(self) -> Metadata:
        loop = asyncio.get_running_loop()
        delay_ms = backoff_ms(
            self._failures, self.retry_backoff_ms, self.retry_backoff_max_ms, self._rng
        )
        if self._last_round_s is not None:
            # Even successful rounds are retry_backoff_ms apart (Kafka's metadata refresh
            # backoff): a partition without a leader must not turn into a request loop.
            since_ms = (loop.time() - self._last_round_s) * 1000
            delay_ms = max(delay_ms, self.retry_backoff_ms - since_ms)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        self._last_round_s = loop.time()
        topics = sorted(self._topics)
        problems = []
        for address in self._metadata_addresses():
            try:
                answer = await self._request_address(
                    address, {"kind": KIND_METADATA, "topics": topics}, METADATA_ATTEMPT_TIMEOUT_MS
                )
                metadata, stale = without_stale_partitions(self._metadata, parse_metadata(answer))
            except (BrokerUnavailableError, MalformedResponseError) as error:
                problems.append(f"{address}: {error}")
                continue
            self._metadata = metadata
            # an answer older than what we know: ask again (shuffled: likely another broker)
            self._stale = stale
            self._failures = 0
            self._refreshed_at_s = asyncio.get_running_loop().time()
            return metadata
        self._failures += 1
        raise ClusterUnavailableError(
            "no broker answered a metadata request: " + "; ".join(problems)
        )

    def _metadata_addresses(self) -> list[str]:
        """Known live brokers first (shuffled, to spread the load), then the bootstrap list."""
        known = [broker.address for broker in self._metadata.brokers.values() if not broker.fenced]
        self._rng.shuffle(known)
        return list(dict.fromkeys([*known, *self.bootstrap_servers]))

    async def wait_for_topic(
        self, topic: str, max_block_ms: int = MAX_BLOCK_MS_DEFAULT
    ) -> TopicInfo:
        """The topic's metadata once it has partitions, refreshing (with backoff) while the
        cluster does not know it yet. Raises KafkaError(UNKNOWN_TOPIC_OR_PARTITION or the
        topic's error) or ClusterUnavailableError after max_block_ms."""
        self.add_topics([topic])
        last_problem: Exception | None = None
        try:
            async with asyncio.timeout(max_block_ms / 1000):
                while True:
                    try:
                        metadata = await self.maybe_refresh()
                    except ClusterUnavailableError as error:
                        last_problem = error
                        continue  # the next round backs off
                    info = metadata.topics.get(topic)
                    if info is not None and info.error_code == ErrorCode.NONE and info.partitions:
                        return info
                    code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if info is None else info.error_code
                    last_problem = KafkaError(code, f"topic {topic!r} is not available")
                    if not KafkaError(code).retriable:
                        raise last_problem
                    self._failures = max(self._failures, 1)  # back off before asking again
                    self.invalidate()
        except TimeoutError:
            if last_problem is not None:
                raise last_problem from None
            raise ClusterUnavailableError(
                f"no metadata for topic {topic!r} within max_block_ms={max_block_ms}"
            ) from None

    async def request(self, broker_id: int, body: Body, timeout_ms: int) -> Body:
        """Sends `body` to a broker of the cached metadata and returns its answer.
        Raises BrokerUnavailableError (unknown broker, no answer)."""
        broker = self._metadata.brokers.get(broker_id)
        if broker is None:
            self.invalidate()
            raise BrokerUnavailableError(f"broker {broker_id} is not in the cluster metadata")
        return await self._request_address(broker.address, body, timeout_ms)

    async def _request_address(self, address: str, body: Body, timeout_ms: int) -> Body:
        client = self._clients.get(address)
        if client is None:
            host, port = split_address(address)
            client = RpcClient(host, port, None)  # cluster_id None: whatever cluster answers
            self._clients[address] = client
            self._connect_locks[address] = asyncio.Lock()
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                # One connect at a time per address: RpcClient.connect is not safe to race.
                async with self._connect_locks[address]:
                    await client.connect()
                return await client.request(body, timeout_ms / 1000)
        except TimeoutError:
            # The connection may be fine and the broker slow: keep it; the answer is dropped.
            self.invalidate()
            raise BrokerUnavailableError(
                f"{body['kind']} request to {address} got no answer within {timeout_ms} ms"
            ) from None
        except (RpcError, OSError) as error:
            self.invalidate()
            await self._drop(address)
            raise BrokerUnavailableError(
                f"{body['kind']} request to {address} failed: {error}"
            ) from error

    async def _drop(self, address: str) -> None:
        client = self._clients.pop(address, None)
        self._connect_locks.pop(address, None)
        if client is not None:
            await client.close()

    async def close(self) -> None:
        """Closes every connection and cancels a refresh in progress."""
        self._closed = True
        if self._refresh_task is not None and not self._refresh_task.done():
            self._refresh_task.cancel()
            await asyncio.gather(self._refresh_task, return_exceptions=True)
        for address in list(self._clients):
            await self._drop(address)
