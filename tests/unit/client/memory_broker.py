"""An in-process cluster answering the native data protocol (docs/decisions/0005) over real
RpcServers on 127.0.0.1, so the client's tests exercise its real code over real sockets.

The partition logs live in memory, shared by the cluster's brokers; one broker leads each
partition and the others answer NOT_LEADER_OR_FOLLOWER, as a real follower does. The high
watermark is the log end (every replica is "in sync" at once): the tests here are about the
client, not about replication. Tests script failures with `fail_next`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from broker.log.batch import RecordBatch, assign_offsets, iter_records
from broker.log.errors import RecordBatchError
from kraft.protocol.errors import ErrorCode
from kraft.rpc.server import RpcServer

CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qk"
MAX_MESSAGE_BYTES_DEFAULT = 1024 * 1024 + 12  # Kafka's max.message.bytes


@dataclass
class PartitionLog:
    leader: int
    leader_epoch: int = 0
    batches: list[bytes] = field(default_factory=list)
    log_start_offset: int = 0
    log_end_offset: int = 0


class MemoryCluster:
    """The shared state of the brokers, and the protocol handlers."""

    def __init__(self, topics: dict[str, int], broker_ids: tuple[int, ...] = (1,)) -> None:
        self.broker_ids = broker_ids
        self.servers: dict[int, RpcServer] = {}
        self.logs = {
            (topic, partition): PartitionLog(broker_ids[partition % len(broker_ids)])
            for topic, count in topics.items()
            for partition in range(count)
        }
        self.topics = dict(topics)
        self.max_message_bytes = MAX_MESSAGE_BYTES_DEFAULT
        self.scripted: list[tuple[str, tuple[str, int], int]] = []
        self.requests: list[tuple[int, dict[str, Any]]] = []  # (broker id, body) received
        self.appended = asyncio.Event()
        # set: every partition is LogAppendTime and answers produces with this append time
        self.log_append_time_ms: int | None = None

    def fail_next(self, kind: str, topic: str, partition: int, code: ErrorCode) -> None:
        """The next `kind` request naming the partition gets `code` for it."""
        self.scripted.append((kind, (topic, partition), int(code)))

    def move_leader(self, topic: str, partition: int, broker_id: int) -> None:
        log = self.logs[(topic, partition)]
        log.leader = broker_id
        log.leader_epoch += 1

    def bootstrap(self) -> list[str]:
        return [f"127.0.0.1:{server.port}" for server in self.servers.values()]

    def _scripted_error(self, kind: str, tp: tuple[str, int]) -> int | None:
        for index, (scripted_kind, scripted_tp, code) in enumerate(self.scripted):
            if scripted_kind == kind and scripted_tp == tp:
                del self.scripted[index]
                return code
        return None

    def records(self, topic: str, partition: int) -> list[bytes | None]:
        values = []
        for data in self.logs[(topic, partition)].batches:
            values += [record.value for record in iter_records(RecordBatch(data))]
        return values

    async def handle(self, broker_id: int, body: dict[str, Any]) -> dict[str, Any]:
        self.requests.append((broker_id, body))
        kind = body["kind"]
        if kind == "metadata":
            return self._metadata()
        if kind == "produce":
            return {"partitions": [self._produce(broker_id, entry) for entry in body["partitions"]]}
        if kind == "fetch":
            return await self._fetch(broker_id, body)
        if kind == "list_offsets":
            return {"partitions": [self._list_offsets(broker_id, e) for e in body["partitions"]]}
        return {"error_code": int(ErrorCode.INVALID_REQUEST), "error_message": f"kind {kind}"}

    def _metadata(self) -> dict[str, Any]:
        brokers = [
            {
                "broker_id": bid,
                "host": "127.0.0.1",
                "port": server.port,
                "rack": None,
                "fenced": False,
            }
            for bid, server in self.servers.items()
        ]
        topics = [
            {
                "topic": topic,
                "topic_id": f"id-{topic}",
                "error_code": 0,
                "partitions": [
                    {
                        "partition": partition,
                        "leader": self.logs[(topic, partition)].leader,
                        "leader_epoch": self.logs[(topic, partition)].leader_epoch,
                        "replicas": list(self.broker_ids),
                        "isr": list(self.broker_ids),
                    }
                    for partition in range(count)
                ],
            }
            for topic, count in self.topics.items()
        ]
        return {"cluster_id": CLUSTER_ID, "controller_id": 1, "brokers": brokers, "topics": topics}

    def _partition_error(self, kind: str, broker_id: int, tp: tuple[str, int]) -> int:
        scripted = self._scripted_error(kind, tp)
        if scripted is not None:
            return scripted
        log = self.logs.get(tp)
        if log is None:
            return int(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        if log.leader != broker_id:
            return int(ErrorCode.NOT_LEADER_OR_FOLLOWER)
        return 0

    def _produce(self, broker_id: int, entry: dict[str, Any]) -> dict[str, Any]:
        tp = (entry["topic"], entry["partition"])
        answer: dict[str, Any] = {"topic": tp[0], "partition": tp[1], "base_offset": -1}
        code = self._partition_error("produce", broker_id, tp)
        data = entry["records"]
        if code == 0 and len(data) > self.max_message_bytes:
            code = int(ErrorCode.MESSAGE_TOO_LARGE)
        if code == 0:
            try:
                RecordBatch(data).validate()
            except RecordBatchError:
                code = int(ErrorCode.CORRUPT_MESSAGE)
        if code == 0:
            log = self.logs[tp]
            batch = RecordBatch(data)
            log.batches.append(assign_offsets(data, log.log_end_offset, log.leader_epoch))
            answer["base_offset"] = log.log_end_offset
            if self.log_append_time_ms is not None:
                answer["log_append_time_ms"] = self.log_append_time_ms
            log.log_end_offset += batch.records_count
            self.appended.set()
        answer.update(error_code=code, error_message=None if code == 0 else "scripted")
        return answer

    async def _fetch(self, broker_id: int, body: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + body["max_wait_ms"] / 1000
        while True:
            self.appended.clear()
            answers = [self._fetch_partition(broker_id, entry) for entry in body["partitions"]]
            if any(a["records"] or a["error_code"] for a in answers) or loop.time() >= deadline:
                return {"partitions": answers}
            try:  # long poll: park until something is appended or max_wait_ms passes
                async with asyncio.timeout_at(deadline):
                    await self.appended.wait()
            except TimeoutError:
                pass

    def _fetch_partition(self, broker_id: int, entry: dict[str, Any]) -> dict[str, Any]:
        tp = (entry["topic"], entry["partition"])
        answer: dict[str, Any] = {"topic": tp[0], "partition": tp[1], "records": b""}
        code = self._partition_error("fetch", broker_id, tp)
        log = self.logs.get(tp)
        offset = entry["fetch_offset"]
        if code == 0 and log is not None:
            if not log.log_start_offset <= offset <= log.log_end_offset:
                code = int(ErrorCode.OFFSET_OUT_OF_RANGE)
            else:
                chosen = b""
                for data in log.batches:
                    batch = RecordBatch(data)
                    if batch.next_offset <= offset:
                        continue
                    if chosen and len(chosen) + len(data) > entry["partition_max_bytes"]:
                        break
                    chosen += data
                answer["records"] = chosen
            answer["high_watermark"] = log.log_end_offset
        answer.update(error_code=code, error_message=None)
        return answer

    def _list_offsets(self, broker_id: int, entry: dict[str, Any]) -> dict[str, Any]:
        tp = (entry["topic"], entry["partition"])
        code = self._partition_error("list_offsets", broker_id, tp)
        answer: dict[str, Any] = {"topic": tp[0], "partition": tp[1], "error_code": code}
        if code == 0:
            log = self.logs[tp]
            answer["offset"] = (
                log.log_start_offset if entry["timestamp"] == -2 else log.log_end_offset
            )
        answer["error_message"] = None
        return answer


@asynccontextmanager
async def running_cluster(
    topics: dict[str, int], broker_ids: tuple[int, ...] = (1,)
) -> AsyncIterator[MemoryCluster]:
    """Starts one RpcServer per broker id on 127.0.0.1 port 0; closes them on exit."""
    cluster = MemoryCluster(topics, broker_ids)
    for broker_id in broker_ids:

        async def on_request(
            _sender: int | None, body: dict[str, Any], broker_id: int = broker_id
        ) -> dict[str, Any]:
            return await cluster.handle(broker_id, body)

        server = RpcServer("127.0.0.1", 0, CLUSTER_ID, broker_id, lambda *_: None, on_request)
        await server.start()
        cluster.servers[broker_id] = server
    try:
        yield cluster
    finally:
        for server in cluster.servers.values():
            await server.close()
