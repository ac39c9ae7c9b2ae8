"""A few Raft cores wired together by hand, for unit tests and scenario files.

Each node has an in-memory storage that holds only what processed Readies persisted (so a
crash loses everything else), an inbox of messages not yet delivered, and a toy state
machine (the list of DATA records applied). Nothing happens unless a test says so: tick a
node, deliver its inbox, process its Ready. `stabilize` repeats the last two until quiet.
Every action returns the lines of its trace, in the stable form scenario files record.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kraft.raft.config import RaftConfig
from kraft.raft.core import RaftCore
from kraft.raft.messages import Message
from kraft.raft.types import (
    ElectionState,
    Entry,
    EntryKind,
    OffsetAndEpoch,
    Ready,
    RestoredState,
    Snapshot,
    SnapshotId,
)

STABILIZE_STEP_LIMIT = 1_000

# Small timeouts keep scenario files short; relations as Config.validate() wants them.
TEST_CONFIG: dict[str, int] = {
    "fetch_timeout_ticks": 10,
    "election_timeout_ticks": 4,
    "fetch_max_wait_ticks": 4,
    "fetch_request_timeout_ticks": 6,
    "begin_quorum_resend_ticks": 3,
}


@dataclass
class MemoryStorage:
    """What a node keeps across a crash: steps 1-4 of each processed Ready."""

    election_state: ElectionState = field(default_factory=lambda: ElectionState(0))
    snapshot: Snapshot | None = None
    log_start_offset: int = 0
    entries: list[Entry] = field(default_factory=list)

    def restored(self) -> RestoredState:
        return RestoredState(self.election_state, self.snapshot, list(self.entries))

    def persist(self, ready: Ready) -> None:
        if ready.election_state is not None:
            self.election_state = ready.election_state
        if ready.snapshot is not None:
            self.snapshot = ready.snapshot
        if ready.log_start_offset is not None:
            self.entries = [e for e in self.entries if e.offset >= ready.log_start_offset]
            self.log_start_offset = ready.log_start_offset
        if ready.truncate_to is not None:
            self.entries = [e for e in self.entries if e.offset < ready.truncate_to]
        for entry in ready.entries:
            assert entry.offset == self.log_start_offset + len(self.entries), (
                f"non-contiguous append at {entry.offset}"
            )
            self.entries.append(entry)


@dataclass
class Node:
    node_id: int
    config: RaftConfig
    storage: MemoryStorage
    core: RaftCore
    inbox: list[tuple[int, Message]] = field(default_factory=list)
    applied: list[bytes] = field(default_factory=list)  # DATA records, in commit order
    last_printed_high_watermark: int = 0

    def apply(self, ready: Ready) -> None:
        if ready.snapshot_to_load is not None:
            data = ready.snapshot_to_load.data
            self.applied = data.split(b",") if data else []
        for entry in ready.committed:
            if entry.kind is EntryKind.DATA:
                self.applied.append(entry.data)

    def snapshot(self) -> Snapshot:
        """A snapshot of everything applied, ending at the high watermark."""
        end = self.core.high_watermark
        entry = [e for e in self.storage.entries if e.offset == end - 1]
        epoch = entry[0].epoch if entry else self.storage.election_state.epoch
        return Snapshot(SnapshotId(end, epoch), b",".join(self.applied))


class Cluster:
    def __init__(self, **config: int) -> None:
        self.config_overrides = {**TEST_CONFIG, **config}
        self.voters: frozenset[int] = frozenset()
        self.nodes: dict[int, Node] = {}
        self.crashed: dict[int, MemoryStorage] = {}
        self.groups: list[set[int]] | None = None  # partition; None when healed
        self.restarts: dict[int, int] = {}

    # ------------------------------------------------------------------ membership

    def add_nodes(self, count: int) -> list[str]:
        assert not self.nodes, "add voters first"
        self.voters = frozenset(range(1, count + 1))
        for node_id in sorted(self.voters):
            self._start(node_id, MemoryStorage())
        return [f"voters {sorted(self.voters)}"]

    def add_observer(self, node_id: int) -> list[str]:
        assert node_id not in self.voters, f"node {node_id} is a voter"
        self._start(node_id, MemoryStorage())
        return [f"observer {node_id}"]

    def _start(self, node_id: int, storage: MemoryStorage) -> None:
        config = RaftConfig(node_id=node_id, voters=self.voters, **self.config_overrides)
        seed = node_id * 1000 + self.restarts.get(node_id, 0)
        core = RaftCore(config, storage.restored(), random.Random(seed))
        node = Node(node_id, config, storage, core)
        node.last_printed_high_watermark = core.high_watermark
        self.nodes[node_id] = node

    def crash(self, node_id: int) -> list[str]:
        node = self.nodes.pop(node_id)
        self.crashed[node_id] = node.storage
        return [f"crashed {node_id}: lost everything not persisted"]

    def restart(self, node_id: int) -> list[str]:
        storage = self.crashed.pop(node_id)
        self.restarts[node_id] = self.restarts.get(node_id, 0) + 1
        self._start(node_id, storage)
        node = self.nodes[node_id]
        return [f"restarted {node_id}: {format_status_line(node)}"]

    def node(self, node_id: int) -> Node:
        return self.nodes[node_id]

    def core(self, node_id: int) -> RaftCore:
        return self.nodes[node_id].core

    # ------------------------------------------------------------------ network

    def partition(self, groups: list[set[int]]) -> list[str]:
        self.groups = groups
        return ["partition " + " | ".join(" ".join(map(str, sorted(g))) for g in groups)]

    def heal(self) -> list[str]:
        self.groups = None
        return ["healed"]

    def connected(self, a: int, b: int) -> bool:
        if self.groups is None:
            return True
        return any(a in group and b in group for group in self.groups)

    # ------------------------------------------------------------------ driving

    def tick(self, node_ids: Iterable[int], times: int = 1) -> list[str]:
        for _ in range(times):
            for node_id in sorted(node_ids):
                self.nodes[node_id].core.tick()
        return []

    def process_ready(self, node_id: int) -> list[str]:
        """Persist, send, apply and advance one Ready of `node_id`; return its trace."""
        node = self.nodes[node_id]
        if not node.core.has_ready():
            return []
        ready = node.core.ready()
        node.storage.persist(ready)
        for outbound in ready.messages:
            target = self.nodes.get(outbound.to)
            if target is not None and self.connected(node_id, outbound.to):
                target.inbox.append((node_id, outbound.message))  # type: ignore[arg-type]
        node.apply(ready)
        node.core.advance(ready)
        lines = format_ready(node, ready)
        return [f"> {node_id} ready", *("  " + line for line in lines)]

    def deliver(self, node_id: int, count: int | None = None) -> list[str]:
        node = self.nodes[node_id]
        taken = node.inbox if count is None else node.inbox[:count]
        node.inbox = node.inbox[len(taken) :]
        lines = []
        for sender, message in taken:
            lines.append(f"{sender}->{node_id} {format_message(message)}")
            node.core.step(sender, message)
        return lines

    def drop(self, node_id: int) -> list[str]:
        dropped = len(self.nodes[node_id].inbox)
        self.nodes[node_id].inbox = []
        return [f"dropped {dropped} messages to {node_id}"]

    def stabilize(self, node_ids: Iterable[int] | None = None) -> list[str]:
        """Process Readies and deliver messages until no node has anything to do."""
        ids = sorted(self.nodes) if node_ids is None else sorted(node_ids)
        lines: list[str] = []
        for _ in range(STABILIZE_STEP_LIMIT):
            busy = False
            for node_id in ids:
                if node_id in self.nodes and self.nodes[node_id].core.has_ready():
                    lines += self.process_ready(node_id)
                    busy = True
            for node_id in ids:
                if node_id in self.nodes and self.nodes[node_id].inbox:
                    self.deliver(node_id)
                    busy = True
            if not busy:
                return lines
        raise AssertionError(f"no quiet state after {STABILIZE_STEP_LIMIT} rounds")

    def run(self, ticks: int, node_ids: Iterable[int] | None = None) -> list[str]:
        """Tick every node once and stabilize, `ticks` times; return only the role changes
        and commits (with the tick they happened at), the rest of the trace is routine."""
        lines = []
        for _ in range(ticks):
            ids = sorted(self.nodes) if node_ids is None else sorted(node_ids)
            self.tick(ids)
            node_id = 0
            for line in self.stabilize(ids):
                if line.startswith("> "):
                    node_id = int(line.split()[1])
                elif line.startswith(("  role ", "  commit ", "  truncate ", "  load ")):
                    now = self.nodes[node_id].core.status().tick
                    lines.append(f"t={now} {node_id}: {line.strip()}")
        return lines

    def elect(self, node_id: int) -> None:
        """Make `node_id` the leader by campaigning and letting everything settle."""
        self.core(node_id).campaign()
        self.stabilize()
        assert self.core(node_id).leader_id == node_id, f"{node_id} did not win"

    def propose(self, node_id: int, records: list[bytes]) -> list[str]:
        ack = self.nodes[node_id].core.propose(records)
        return [f"ack epoch={ack.epoch} offsets={ack.base_offset}..{ack.last_offset}"]

    def compact(self, node_id: int) -> list[str]:
        node = self.nodes[node_id]
        snapshot = node.snapshot()
        node.core.compact(snapshot)
        sid = snapshot.snapshot_id
        return [f"compacted {node_id} at end={sid.end_offset} epoch={sid.epoch}"]

    def status(self, node_id: int) -> list[str]:
        node = self.nodes[node_id]
        status = node.core.status()
        lines = [format_status_line(node)]
        for replica in status.replicas:
            lines.append(
                f"  replica {replica.node_id} voter={replica.is_voter} "
                f"leo={replica.log_end_offset} fetch={replica.last_fetch_tick} "
                f"caught_up={replica.last_caught_up_tick}"
            )
        return lines

    def log(self, node_id: int) -> list[str]:
        node = self.nodes.get(node_id)
        storage = node.storage if node else self.crashed[node_id]
        lines = [f"start={storage.log_start_offset} {format_entries(storage.entries)}"]
        if node is not None:
            lines.append(f"applied={[r.decode() for r in node.applied]}")
        return lines


# ---------------------------------------------------------------------- formatting


def format_status_line(node: Node) -> str:
    s = node.core.status()
    return (
        f"{s.node_id} {s.role.value} epoch={s.epoch} leader={s.leader_id} voted={s.voted_id} "
        f"hw={s.high_watermark} log=[{s.log_start_offset},{s.log_end_offset})"
    )


def format_entry(entry: Entry) -> str:
    if entry.kind is EntryKind.LEADER_CHANGE:
        return f"{entry.offset}@{entry.epoch}:LC"
    return f"{entry.offset}@{entry.epoch}:{entry.data.decode()}"


def format_entries(entries: Iterable[Entry]) -> str:
    return "[" + " ".join(format_entry(e) for e in entries) + "]"


def _format_value(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, OffsetAndEpoch):
        return f"{value.offset}@{value.epoch}"
    if isinstance(value, SnapshotId):
        return f"snapshot({value.end_offset}@{value.epoch})"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, tuple) and value and isinstance(value[0], Entry):
        return format_entries(value)
    return str(value)


def format_message(message: object) -> str:
    """`Name field=value ...`, leaving out fields that have their default value."""
    assert dataclasses.is_dataclass(message)
    parts = [type(message).__name__]
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        parts.append(f"{f.name}={_format_value(value)}")
    return " ".join(parts)


def format_ready(node: Node, ready: Ready) -> list[str]:
    lines = []
    for change in ready.role_changes:
        lines.append(
            f"role {change.from_role.value} -> {change.to_role.value} epoch={change.epoch} "
            f"leader={change.leader_id}: {change.reason}"
        )
    if ready.election_state is not None:
        es = ready.election_state
        lines.append(f"persist epoch={es.epoch} voted={es.voted_id} leader={es.leader_id}")
    if ready.snapshot is not None:
        sid = ready.snapshot.snapshot_id
        lines.append(f"persist snapshot({sid.end_offset}@{sid.epoch})")
    if ready.log_start_offset is not None:
        lines.append(f"log start {ready.log_start_offset}")
    if ready.truncate_to is not None:
        lines.append(f"truncate to {ready.truncate_to}")
    if ready.entries:
        lines.append(f"append {format_entries(ready.entries)}")
    for outbound in ready.messages:
        lines.append(f"send {node.node_id}->{outbound.to} {format_message(outbound.message)}")
    if ready.snapshot_to_load is not None:
        sid = ready.snapshot_to_load.snapshot_id
        lines.append(f"load snapshot({sid.end_offset}@{sid.epoch})")
    if ready.committed:
        lines.append(f"commit {format_entries(ready.committed)}")
    if ready.high_watermark != node.last_printed_high_watermark:
        lines.append(f"hw {ready.high_watermark}")
        node.last_printed_high_watermark = ready.high_watermark
    return lines


# ------------------------------------------------------------- single cores, by hand


def make_core(
    node_id: int = 1,
    voters: Iterable[int] = (1, 2, 3),
    election_state: ElectionState | None = None,
    entries: Iterable[Entry] = (),
    snapshot: Snapshot | None = None,
    seed: int = 0,
    **config: int,
) -> RaftCore:
    """A core restored from the given persisted state, with the test timeouts."""
    raft_config = RaftConfig(node_id=node_id, voters=frozenset(voters), **{**TEST_CONFIG, **config})
    restored = RestoredState(election_state or ElectionState(0), snapshot, list(entries))
    return RaftCore(raft_config, restored, random.Random(seed))


def drain(core: RaftCore) -> Ready:
    """Take the core's Ready and report it done, as a shell with perfect storage would."""
    ready = core.ready()
    core.advance(ready)
    return ready


def sent(ready: Ready, kind: type, to: int | None = None) -> list[Any]:
    """The messages of type `kind` in `ready` (to node `to`, if given)."""
    return [
        out.message
        for out in ready.messages
        if isinstance(out.message, kind) and (to is None or out.to == to)
    ]


def entries_of(epochs: Iterable[int], start: int = 0) -> list[Entry]:
    """DATA entries from offset `start` with the given epochs, data 'e<offset>'."""
    return [Entry(start + i, epoch, f"e{start + i}".encode()) for i, epoch in enumerate(epochs)]
