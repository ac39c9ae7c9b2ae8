"""The simulator must catch broken shells and broken cores: each test breaks one rule on
purpose (by monkeypatching, never by editing kraft/) and expects some seed to fail with the
matching fact. A simulator whose checks cannot fail is no evidence."""

from __future__ import annotations

import pytest

from kraft.raft.types import Ready
from tests.sim.node import SimNode
from tests.sim.simulation import SimulationFailure, run_seed

SEEDS_TRIED = 60


def _core_is_placeholder() -> bool:
    import kraft.raft.core as core_module

    return not hasattr(core_module, "RaftCore")


pytestmark = pytest.mark.skipif(_core_is_placeholder(), reason="kraft/raft/core.py placeholder")


def _first_failure() -> SimulationFailure | None:
    failures = _failures(SEEDS_TRIED, stop_at_first=True)
    return failures[0] if failures else None


def _failures(seeds: int, stop_at_first: bool = False) -> list[SimulationFailure]:
    failures = []
    for seed in range(seeds):
        try:
            run_seed(seed)
        except SimulationFailure as failure:
            failures.append(failure)
            if stop_at_first:
                break
    return failures


def test_a_shell_that_sends_before_persisting_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def send_then_persist(self: SimNode, core: object, ready: Ready) -> None:
        self._send(ready)
        self._persist(ready)
        self.storage.sync()
        self._apply(ready)
        core.advance(ready)  # type: ignore[attr-defined]

    monkeypatch.setattr(SimNode, "_handle", send_then_persist)
    failure = _first_failure()
    assert failure is not None
    assert "persisted" in failure.fact


def test_a_shell_that_loses_its_election_state_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = SimNode._persist

    def persist_without_election_state(self: SimNode, ready: Ready) -> None:
        ready.election_state = None
        original(self, ready)

    monkeypatch.setattr(SimNode, "_persist", persist_without_election_state)
    assert _first_failure() is not None


def test_a_core_that_elects_any_candidate_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop Raft's election restriction (§5.4.1): leaders without committed entries win."""
    from kraft.raft import election

    monkeypatch.setattr(election, "log_is_up_to_date", lambda ctx, last_epoch, end: True)
    failures = _failures(2 * SEEDS_TRIED)
    # The core's own assertions catch most of them (a truncation below the high
    # watermark); the simulator's history catches the rest.
    assert any("committed entry at offset" in failure.fact for failure in failures)
