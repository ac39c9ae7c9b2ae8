"""The safety invariants of the quorum, checked by the simulation after every event.

Each check raises InvariantViolation naming one fact; the simulation adds the seed, the
event number and the replay command. The checker keeps its own history across node crashes
(leaders by epoch, votes granted, everything ever committed), so it can tell a lost or
changed committed entry from a legal truncation of an uncommitted one.
"""

from __future__ import annotations

from dataclasses import dataclass

from kraft.raft.messages import FetchRequest, VoteRequest, VoteResponse
from kraft.raft.types import Entry, EntryKind, Role, Snapshot
from tests.sim.statemachine import decode_values
from tests.sim.storage import SimStorage


class InvariantViolation(AssertionError):
    """A safety property of the quorum was broken."""


@dataclass(frozen=True, slots=True)
class CommittedEntry:
    epoch: int
    kind: EntryKind
    data: bytes
    first_node: int  # who committed it first, to name it in a failure


def majority(voter_count: int) -> int:
    return voter_count // 2 + 1


class InvariantChecker:
    def __init__(self, voters: list[int]) -> None:
        self.voters = sorted(voters)
        self.leader_of_epoch: dict[int, int] = {}
        self.vote_of: dict[tuple[int, int], int] = {}  # (voter, epoch) -> candidate
        self.committed: dict[int, CommittedEntry] = {}
        self.committed_end = 0  # every offset below it is in `committed`
        # Per node, for the current incarnation.
        self.last_epoch: dict[int, int] = {}
        self.last_high_watermark: dict[int, int] = {}
        self.last_durable_epoch: dict[int, int] = {}

    # -- per-event state checks -----------------------------------------------------------

    def on_start(
        self, node_id: int, epoch: int, durable_epoch: int, high_watermark: int, snapshot_end: int
    ) -> None:
        """A node (re)started: its epoch restarts from what it had persisted, its high
        watermark from its persisted snapshot (never below it), then both only grow."""
        if epoch < durable_epoch:
            raise InvariantViolation(
                f"node {node_id} restarted in epoch {epoch}, below its persisted epoch "
                f"{durable_epoch}"
            )
        if high_watermark < snapshot_end:
            raise InvariantViolation(
                f"node {node_id} restarted with high watermark {high_watermark}, below the end "
                f"{snapshot_end} of its persisted snapshot"
            )
        self.last_epoch[node_id] = epoch
        self.last_high_watermark[node_id] = high_watermark

    def check_node(
        self, node_id: int, role: Role, epoch: int, high_watermark: int, durable_epoch: int
    ) -> None:
        previous_epoch = self.last_epoch.get(node_id, 0)
        if epoch < previous_epoch:
            raise InvariantViolation(
                f"node {node_id} epoch went back from {previous_epoch} to {epoch}"
            )
        self.last_epoch[node_id] = epoch
        previous_durable = self.last_durable_epoch.get(node_id, 0)
        if durable_epoch < previous_durable:
            raise InvariantViolation(
                f"node {node_id} persisted epoch went back from {previous_durable} to "
                f"{durable_epoch}"
            )
        self.last_durable_epoch[node_id] = durable_epoch
        previous_high_watermark = self.last_high_watermark.get(node_id, 0)
        if high_watermark < previous_high_watermark:
            raise InvariantViolation(
                f"node {node_id} high watermark went back from {previous_high_watermark} to "
                f"{high_watermark} in epoch {epoch}"
            )
        self.last_high_watermark[node_id] = high_watermark
        if role == Role.LEADER:
            leader = self.leader_of_epoch.setdefault(epoch, node_id)
            if leader != node_id:
                raise InvariantViolation(
                    f"two leaders in epoch {epoch}: node {leader} and node {node_id}"
                )
            if node_id not in self.voters:
                raise InvariantViolation(f"observer {node_id} became leader in epoch {epoch}")

    # -- messages -------------------------------------------------------------------------

    def on_send(self, source: int, destination: int, message: object, storage: SimStorage) -> None:
        """Checks a message as it leaves `source`, whose durable storage is `storage`."""
        self._check_persisted_before_send(source, destination, message, storage)
        if isinstance(message, VoteResponse) and message.granted and not message.pre_vote:
            key = (source, message.epoch)
            previous = self.vote_of.setdefault(key, destination)
            if previous != destination:
                raise InvariantViolation(
                    f"node {source} granted its vote in epoch {message.epoch} twice: to node "
                    f"{previous} and to node {destination}"
                )
            if source not in self.voters:
                raise InvariantViolation(f"observer {source} granted a vote in {message.epoch}")

    @staticmethod
    def _check_persisted_before_send(
        source: int, destination: int, message: object, storage: SimStorage
    ) -> None:
        """A message may rely only on what its sender has made durable (SPEC §7): the epoch
        it carries, the vote it grants, the log a fetch reports."""
        epoch = getattr(message, "epoch", None)
        is_pre_vote = isinstance(message, VoteRequest | VoteResponse) and message.pre_vote
        durable_epoch = storage.durable_epoch()
        if isinstance(epoch, int) and not is_pre_vote and epoch > durable_epoch:
            raise InvariantViolation(
                f"node {source} sent {type(message).__name__} in epoch {epoch} to node "
                f"{destination} with only epoch {durable_epoch} persisted"
            )
        if isinstance(message, VoteResponse) and message.granted and not message.pre_vote:
            state = storage.durable.election_state
            if (
                state is not None
                and state.epoch == message.epoch
                and (state.voted_id != destination)
            ):
                raise InvariantViolation(
                    f"node {source} granted its vote in epoch {message.epoch} to node "
                    f"{destination} but persisted a vote for {state.voted_id}"
                )
        if isinstance(message, FetchRequest):
            durable = storage.durable
            snapshot_end = (
                0 if durable.snapshot is None else durable.snapshot.snapshot_id.end_offset
            )
            durable_end = max(durable.log_end_offset, snapshot_end)
            if message.fetch_offset > durable_end:
                raise InvariantViolation(
                    f"node {source} fetched from offset {message.fetch_offset} with only "
                    f"offsets below {durable_end} persisted"
                )

    # -- commits --------------------------------------------------------------------------

    def on_commit(self, node_id: int, entry: Entry) -> None:
        known = self.committed.get(entry.offset)
        if known is None:
            self.committed[entry.offset] = CommittedEntry(
                entry.epoch, entry.kind, entry.data, node_id
            )
            while self.committed_end in self.committed:
                self.committed_end += 1
            return
        if (known.epoch, known.kind, known.data) != (entry.epoch, entry.kind, entry.data):
            raise InvariantViolation(
                f"committed entry at offset {entry.offset} changed: node {known.first_node} "
                f"committed (epoch {known.epoch}, {known.kind.name}, {known.data!r}), node "
                f"{node_id} committed (epoch {entry.epoch}, {entry.kind.name}, {entry.data!r})"
            )

    def expected_values(self, end_offset: int) -> list[bytes] | None:
        """The values the committed log holds below end_offset, if all of it is known."""
        if end_offset > self.committed_end:
            return None
        return [
            self.committed[offset].data
            for offset in range(end_offset)
            if self.committed[offset].kind == EntryKind.DATA
        ]

    def on_snapshot_loaded(self, node_id: int, snapshot: Snapshot) -> None:
        """A loaded snapshot must hold exactly the committed values below its end."""
        end = snapshot.snapshot_id.end_offset
        expected = self.expected_values(end)
        if expected is None:
            raise InvariantViolation(
                f"node {node_id} loaded a snapshot ending at {end}, but only offsets below "
                f"{self.committed_end} were ever committed"
            )
        if decode_values(snapshot.data) != expected:
            raise InvariantViolation(
                f"node {node_id} loaded a snapshot ending at {end} whose values differ from the "
                "committed log"
            )
        last = self.committed.get(end - 1)
        if last is not None and last.epoch != snapshot.snapshot_id.epoch:
            raise InvariantViolation(
                f"node {node_id} loaded snapshot {snapshot.snapshot_id} but the committed entry "
                f"at {end - 1} has epoch {last.epoch}"
            )

    def on_acknowledged(
        self,
        proposer: int,
        epoch: int,
        base_offset: int,
        records: tuple[bytes, ...],
        storages: dict[int, SimStorage],
    ) -> None:
        """An acknowledged proposal is committed with its epoch and values, and persisted
        on a majority of voters."""
        for index, record in enumerate(records):
            offset = base_offset + index
            known = self.committed.get(offset)
            if known is None or known.epoch != epoch or known.data != record:
                raise InvariantViolation(
                    f"node {proposer} acknowledged {record!r} at offset {offset} in epoch "
                    f"{epoch}, but the committed entry there is {known}"
                )
            holders = [v for v in self.voters if storages[v].durably_holds(offset, epoch)]
            if len(holders) < majority(len(self.voters)):
                raise InvariantViolation(
                    f"node {proposer} acknowledged offset {offset} (epoch {epoch}) persisted "
                    f"only on voters {holders} of {self.voters}"
                )
