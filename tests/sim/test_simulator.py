"""Tests of the simulator's own parts: storage crash semantics, the network, the state
machine, and a whole run against a stand-in single-voter core (tests/sim/fake_core.py), so
that a failing seed can be blamed on the core rather than on the harness."""

from __future__ import annotations

import random

import pytest

from kraft.raft.config import RaftConfig
from kraft.raft.types import ElectionState, Entry, EntryKind, RestoredState, Snapshot, SnapshotId
from tests.sim.checker import InvariantChecker, InvariantViolation
from tests.sim.fake_core import SingleVoterCore
from tests.sim.network import NetworkSettings, SimNetwork
from tests.sim.simulation import SimulationFailure, run_seed
from tests.sim.statemachine import StateMachineContractError, ValueList, encode_values
from tests.sim.storage import SimStorage, StorageContractError


def entries(first: int, last: int, epoch: int) -> list[Entry]:
    return [Entry(offset, epoch, f"v{offset}".encode()) for offset in range(first, last + 1)]


def test_synced_writes_survive_a_crash() -> None:
    storage = SimStorage()
    storage.write_election_state(ElectionState(3, voted_id=2))
    storage.append(entries(0, 4, 3))
    storage.sync()
    storage.crash(random.Random(0))
    restored = storage.restored()
    assert restored.election_state == ElectionState(3, voted_id=2)
    assert [entry.offset for entry in restored.entries] == [0, 1, 2, 3, 4]


def test_unsynced_writes_are_lost_or_kept_only_as_an_in_order_prefix() -> None:
    outcomes = set()
    for seed in range(200):
        storage = SimStorage()
        storage.write_election_state(ElectionState(1))
        storage.append(entries(0, 3, 1))
        storage.crash(random.Random(seed))
        restored = storage.restored()
        kept_state = restored.election_state.epoch == 1
        kept_entries = len(restored.entries)
        if kept_entries:
            assert kept_state, "the append reached the disk before the earlier state write"
        outcomes.add((kept_state, kept_entries))
    assert (False, 0) in outcomes
    assert (True, 4) in outcomes
    assert any(0 < count < 4 for _, count in outcomes), "a torn append never happened"


def test_restored_log_starts_at_the_snapshot_end() -> None:
    storage = SimStorage()
    storage.append(entries(0, 9, 1))
    storage.save_snapshot(Snapshot(SnapshotId(6, 1), encode_values([])))
    storage.sync()  # crash before the entries below the snapshot were dropped
    restored = storage.restored()
    assert [entry.offset for entry in restored.entries] == [6, 7, 8, 9]
    storage.delete_before(6)
    storage.sync()
    assert [entry.offset for entry in storage.restored().entries] == [6, 7, 8, 9]


def test_restored_log_keeps_entries_above_the_snapshot_as_they_are() -> None:
    """As kraft.quorum.runtime.restore_state does: the core decides what to do with them."""
    storage = SimStorage()
    storage.append(entries(0, 9, 1))
    storage.save_snapshot(Snapshot(SnapshotId(6, 2), encode_values([])))
    storage.sync()
    assert [(e.offset, e.epoch) for e in storage.restored().entries] == [
        (6, 1),
        (7, 1),
        (8, 1),
        (9, 1),
    ]


def test_append_with_a_gap_breaks_the_storage_contract() -> None:
    storage = SimStorage()
    storage.append(entries(0, 1, 1))
    storage.append(entries(3, 4, 1))
    with pytest.raises(StorageContractError):
        storage.sync()


def test_truncate_then_append_replaces_the_suffix() -> None:
    storage = SimStorage()
    storage.append(entries(0, 5, 1))
    storage.truncate(3)
    storage.append(entries(3, 4, 2))
    storage.sync()
    assert [(e.offset, e.epoch) for e in storage.restored().entries] == [
        (0, 1),
        (1, 1),
        (2, 1),
        (3, 2),
        (4, 2),
    ]
    assert storage.durably_holds(3, 2)
    assert not storage.durably_holds(3, 1)


def test_network_partition_drops_both_ways_and_one_way_cut_drops_one() -> None:
    network = SimNetwork(random.Random(1), NetworkSettings(max_delay_ticks=1))
    network.partition([1], [2, 3])
    network.block_one_way(2, 3)
    for source, destination in [(1, 2), (2, 1), (2, 3), (3, 2), (3, 1)]:
        network.send(0, source, destination, (source, destination))
    delivered = []
    while (item := network.next_due(10)) is not None:
        delivered.append(item.message)
    assert delivered == [(3, 2)]


def test_network_reorders_and_duplicates_deterministically() -> None:
    def deliveries(seed: int) -> list[int]:
        settings = NetworkSettings(duplicate_probability=0.3, max_delay_ticks=6)
        network = SimNetwork(random.Random(seed), settings)
        for number in range(50):
            network.send(0, 1, 2, number)
        out = []
        while (item := network.next_due(100)) is not None:
            assert isinstance(item.message, int)
            out.append(item.message)
        return out

    first = deliveries(7)
    assert first == deliveries(7)
    assert len(first) > 50, "nothing was duplicated"
    assert first != sorted(first), "nothing was reordered"


def test_state_machine_rejects_a_gap_in_committed_entries() -> None:
    machine = ValueList(None)
    machine.apply(Entry(0, 1, b"", EntryKind.LEADER_CHANGE))
    with pytest.raises(StateMachineContractError):
        machine.apply(Entry(2, 1, b"x"))


def test_state_machine_snapshot_round_trip() -> None:
    machine = ValueList(None)
    for entry in entries(0, 4, 2):
        machine.apply(entry)
    snapshot = machine.maybe_snapshot(5)
    assert snapshot is not None
    assert snapshot.snapshot_id == SnapshotId(5, 2)
    assert ValueList(snapshot).values == machine.values


def test_checker_refuses_two_leaders_in_one_epoch() -> None:
    from kraft.raft.types import Role

    checker = InvariantChecker([1, 2, 3])
    checker.check_node(1, Role.LEADER, 4, 0, 4)
    with pytest.raises(InvariantViolation, match="two leaders in epoch 4"):
        checker.check_node(2, Role.LEADER, 4, 0, 4)


def test_checker_refuses_a_changed_committed_entry() -> None:
    checker = InvariantChecker([1, 2, 3])
    checker.on_commit(1, Entry(0, 1, b"a"))
    checker.on_commit(2, Entry(0, 1, b"a"))
    with pytest.raises(InvariantViolation, match="committed entry at offset 0 changed"):
        checker.on_commit(3, Entry(0, 2, b"a"))


def test_checker_refuses_a_second_vote_in_one_epoch() -> None:
    from kraft.raft.messages import VoteResponse

    checker = InvariantChecker([1, 2, 3])
    storage = SimStorage()
    storage.write_election_state(ElectionState(6))
    storage.sync()
    vote = VoteResponse(epoch=5, granted=True, leader_id=None)
    checker.on_send(1, 2, vote, storage)
    checker.on_send(1, 2, vote, storage)
    with pytest.raises(InvariantViolation, match="granted its vote in epoch 5 twice"):
        checker.on_send(1, 3, vote, storage)


def test_checker_refuses_messages_that_rely_on_unpersisted_state() -> None:
    from kraft.raft.messages import FetchRequest, VoteResponse

    checker = InvariantChecker([1, 2, 3])
    storage = SimStorage()
    storage.write_election_state(ElectionState(5, voted_id=3))
    storage.append(entries(0, 2, 5))
    storage.sync()
    with pytest.raises(InvariantViolation, match="with only epoch 5 persisted"):
        checker.on_send(1, 2, VoteResponse(epoch=6, granted=False, leader_id=None), storage)
    with pytest.raises(InvariantViolation, match="persisted a vote for 3"):
        checker.on_send(1, 2, VoteResponse(epoch=5, granted=True, leader_id=None), storage)
    fetch = FetchRequest(5, 1, 1, fetch_offset=4, last_fetched_epoch=5, max_bytes=100)
    with pytest.raises(InvariantViolation, match="only offsets below 3 persisted"):
        checker.on_send(1, 2, fetch, storage)


@pytest.mark.parametrize("seed", range(40))
def test_whole_runs_pass_against_the_single_voter_stand_in(seed: int) -> None:
    result = run_seed(seed, core_factory=SingleVoterCore, node_counts=(1, 0))
    assert result.acknowledged > 0


def test_a_seed_replays_exactly() -> None:
    def trace(seed: int) -> list[str]:
        lines: list[str] = []
        run_seed(seed, trace=lines.append, core_factory=SingleVoterCore, node_counts=(1, 0))
        return lines

    assert trace(11) == trace(11)
    assert trace(11) != trace(12)


class AmnesiacCore(SingleVoterCore):
    """Forgets its log and snapshot on restart: committed entries get overwritten."""

    def __init__(self, config: RaftConfig, restored: RestoredState, rng: random.Random) -> None:
        forgetful = RestoredState(restored.election_state, snapshot=None, entries=[])
        super().__init__(config, forgetful, rng)


def test_the_checks_catch_a_core_that_loses_committed_entries() -> None:
    failures = []
    for seed in range(60):
        try:
            run_seed(seed, core_factory=AmnesiacCore, node_counts=(1, 0))
        except SimulationFailure as failure:
            failures.append(failure)
    assert failures, "no seed caught the lost entries"
    assert all(f"--seed={failure.seed}" in str(failure) for failure in failures)
    assert any("StorageContractError" in failure.fact for failure in failures)


def test_recovery_moves_a_log_below_the_snapshot_to_the_snapshot_end() -> None:
    """A crash after saving a fetched snapshot but before dropping the older log: the
    restart starts the log at the snapshot's end, on disk too, so appends there fit."""
    storage = SimStorage()
    storage.append(entries(0, 6, 1))
    storage.save_snapshot(Snapshot(SnapshotId(10, 2), encode_values([])))
    storage.sync()
    assert storage.restored().entries == []
    storage.append(entries(10, 11, 2))
    storage.sync()
    assert [entry.offset for entry in storage.restored().entries] == [10, 11]
