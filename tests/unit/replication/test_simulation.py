"""The replication core in the deterministic simulator (simulation.py): many seeds with
drops, delays, duplicates, crashes that lose unflushed writes, isolation and leadership
moves, invariants checked after every event. Then mutation tests: cores broken on purpose
must be caught, so the checks are known to bite.

A failure names its seed; replay it with
    pytest tests/unit/replication --replication-seed=N --replication-trace
"""

from __future__ import annotations

import time

import pytest

from broker.replication import FollowerAction, FollowerState, PartitionLeaderState, TruncateTo
from broker.replication.types import EndOffsetForEpoch, EpochEndOffset
from tests.unit.replication.simulation import (
    InvariantViolation,
    ReplicationSimulation,
    SimConfig,
)


def test_replication_invariants_hold(replication_seed: int, replication_trace: bool) -> None:
    """Replicas agree below every high watermark; the current leader's HW never passes a
    record an ISR member lacks and never decreases within an epoch; an acks=all record is on
    every ISR member when acknowledged and ever after; the leader is in its ISR; after
    healing, every replica holds the same log and is in the ISR."""
    simulation = ReplicationSimulation(replication_seed, trace=replication_trace)
    try:
        simulation.run()
    except AssertionError as error:
        pytest.fail(
            f"replication simulation seed {replication_seed} failed: {error}\n"
            f"replay: pytest tests/unit/replication --replication-seed={replication_seed} "
            "--replication-trace",
            pytrace=True,
        )


@pytest.mark.parametrize("seed", range(20))
def test_invariants_hold_when_crashes_keep_every_write(seed: int) -> None:
    ReplicationSimulation(seed, SimConfig(lose_unflushed=False)).run()


@pytest.mark.parametrize("min_insync_replicas", [1, 3])
@pytest.mark.parametrize("seed", range(10))
def test_invariants_hold_for_other_min_insync_replicas(seed: int, min_insync_replicas: int) -> None:
    ReplicationSimulation(seed, SimConfig(min_insync_replicas=min_insync_replicas)).run()


def test_simulation_exercises_every_path() -> None:
    """The fault mix really shrinks and expands ISRs, moves leaders, crashes brokers and
    acknowledges acks=all writes (so the invariants are not checked vacuously)."""
    totals = {"crashes": 0, "moves": 0, "isolations": 0, "acked_all": 0, "refused": 0}
    shrinks = expands = 0
    for seed in range(30):
        simulation = ReplicationSimulation(seed)
        simulation.run()
        for key, value in simulation.stats.items():
            totals[key] += value
        shrinks += simulation.shrinks
        expands += simulation.expands
    assert all(value > 0 for value in totals.values()), totals
    assert shrinks > 0
    assert expands > 0


def test_same_seed_same_run() -> None:
    first = ReplicationSimulation(7)
    first.run()
    second = ReplicationSimulation(7)
    second.run()
    assert first.event_count == second.event_count
    assert [b.log.records for b in first.brokers.values()] == [
        b.log.records for b in second.brokers.values()
    ]


# -- mutations: the simulator must catch a broken core -------------------------------------------

MUTATION_SEED_LIMIT = 300


def first_failing_seed(caught_by: type[AssertionError] = InvariantViolation) -> int | None:
    """The first seed whose run fails with `caught_by` (InvariantViolation: the simulator's
    checks, not an assertion inside the core), within a seed and a time limit."""
    deadline = time.monotonic() + 20
    for seed in range(MUTATION_SEED_LIMIT):
        try:
            ReplicationSimulation(seed).run()
        except caught_by:
            return seed
        except AssertionError:
            pass
        if time.monotonic() > deadline:
            break
    return None


def test_catches_high_watermark_ignoring_a_pending_expansion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        PartitionLeaderState, "maximal_isr", property(lambda self: frozenset(self.committed_isr))
    )
    assert first_failing_seed() is not None


def test_catches_a_leader_that_checks_only_the_epoch_of_a_fetch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ignoring that the follower's last epoch ends earlier here lets divergent records stay
    below the high watermark."""

    def epoch_only(
        self: PartitionLeaderState,
        fetch_offset: int,
        last_fetched_epoch: int,
        end_offset_for_epoch: EndOffsetForEpoch,
    ) -> EpochEndOffset | None:
        epoch, end_offset = end_offset_for_epoch(last_fetched_epoch)
        return EpochEndOffset(epoch, end_offset) if epoch < last_fetched_epoch else None

    monkeypatch.setattr(PartitionLeaderState, "_diverging_epoch", epoch_only)
    assert first_failing_seed() is not None


def test_catches_acks_all_answered_at_append(monkeypatch: pytest.MonkeyPatch) -> None:
    original = PartitionLeaderState._maybe_complete_produces

    def complete_everything(self: PartitionLeaderState) -> None:
        saved = self.high_watermark
        self.high_watermark = self.log_end_offset
        original(self)
        self.high_watermark = saved

    monkeypatch.setattr(PartitionLeaderState, "_maybe_complete_produces", complete_everything)
    assert first_failing_seed() is not None


def test_catches_a_follower_that_keeps_a_divergent_suffix(monkeypatch: pytest.MonkeyPatch) -> None:
    original = FollowerState._truncation

    def truncate_less(
        self: FollowerState, diverging: EpochEndOffset, end_offset_for_epoch: EndOffsetForEpoch
    ) -> FollowerAction:
        original(self, diverging, end_offset_for_epoch)
        return TruncateTo(self.log_end_offset)

    monkeypatch.setattr(FollowerState, "_truncation", truncate_less)
    assert first_failing_seed(caught_by=AssertionError) is not None, "caught by the core's check"


def test_failure_names_its_seed() -> None:
    simulation = ReplicationSimulation(3)
    simulation.brokers[1].log.records.clear()
    with pytest.raises(InvariantViolation, match="seed 3 at"):
        simulation._require(False, "a planted failure")
