"""Scripted simulations: one situation set up on purpose, run with the real core and every
invariant checked after every event. Each reproduces, in a few lines, a class of failure
that random seeds found (see tests/sim/known_failures.py)."""

from __future__ import annotations

import pytest

from tests.sim.faults import FaultPlan
from tests.sim.simulation import ClusterShape, Simulation

CALM = FaultPlan(
    profile="calm",
    drop_probability=0.0,
    duplicate_probability=0.0,
    max_delay_ticks=2,
    long_delay_probability=0.0,
    partition_every_ticks=None,
    crash_every_ticks=None,
    slow_every_ticks=None,
    max_down_ticks=1,
)


def _core_is_placeholder() -> bool:
    import kraft.raft.core as core_module

    return not hasattr(core_module, "RaftCore")


pytestmark = pytest.mark.skipif(_core_is_placeholder(), reason="kraft/raft/core.py placeholder")


def calm_cluster(snapshot_every_entries: int, **config: int) -> Simulation:
    shape = ClusterShape(
        voters=(1, 2, 3),
        observers=(4,),
        snapshot_every_entries=snapshot_every_entries,
        base_max_delay_ticks=2,
        propose_every_ticks=2,
        fault_phase_ticks=0,
        leader_sends_first=False,
    )
    simulation = Simulation(1, shape=shape, plan=CALM, config_overrides=config)
    simulation.start_all()
    return simulation


def test_an_observer_far_behind_catches_up_by_snapshot_while_clients_propose() -> None:
    """KIP-630: a replica below the log start fetches the snapshot, then the log. Here a
    snapshot takes ~30 chunks to fetch while the leader snapshots every 10 entries: the
    leader must keep serving the snapshot being downloaded (this failed, seeds 60, 86, 232,
    264, ..., while FetchSnapshot served only the latest snapshot)."""
    simulation = calm_cluster(
        snapshot_every_entries=10, snapshot_chunk_max_bytes=1024, fetch_max_bytes=1024 * 1024
    )
    simulation.crash_node(4)
    simulation.run_ticks(800, propose=True)
    simulation.restart_node(4)
    target = simulation.checker.committed_end
    simulation.run_ticks(1500, propose=True)
    observer = simulation.nodes[4].live_state_machine()
    assert observer.applied_end >= target, (
        f"observer applied {observer.applied_end} of the {target} entries committed before "
        "it restarted"
    )


def test_an_observer_far_behind_catches_up_by_snapshot_when_snapshots_are_rare() -> None:
    """The same observer catches up when the leader snapshots less often than a download
    takes: the failure above is the race, not the transfer."""
    simulation = calm_cluster(
        snapshot_every_entries=400, snapshot_chunk_max_bytes=1024, fetch_max_bytes=1024 * 1024
    )
    simulation.crash_node(4)
    simulation.run_ticks(800, propose=True)
    simulation.restart_node(4)
    target = simulation.checker.committed_end
    simulation.run_ticks(1500, propose=True)
    assert simulation.nodes[4].live_state_machine().applied_end >= target
