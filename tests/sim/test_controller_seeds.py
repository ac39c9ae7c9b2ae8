"""The controller batch: the simulator of the quorum extended to the quorum controller.

Each seed runs the real QuorumController on the quorum leader over the real Raft cores and
MetadataStateMachines, with the fault profiles of the quorum batch (tests/sim/faults.py),
and checks after every event that replaying the committed metadata log gives every node
the same image, that no partition has a leader outside its ISR or two leaders in one leader
epoch, and that epochs never go back (tests/sim/controller_simulation.py).

    pytest tests/sim/test_controller_seeds.py                       # seeds 0..149
    pytest tests/sim/test_controller_seeds.py --seed=N --sim-trace  # replay one seed
"""

from __future__ import annotations

import sys

import pytest

from tests.sim.controller_simulation import run_controller_seed
from tests.sim.known_failures import CONTROLLER_REGRESSION_SEEDS, KNOWN_CONTROLLER_BUGS


def test_controller_seed_keeps_every_invariant(
    controller_seed: int, sim_trace: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Identical images from the committed log on every node; leaders within their ISRs,
    one leader per leader epoch; stale requests refused; convergence after healing."""
    if sim_trace:
        with capsys.disabled():
            run_controller_seed(controller_seed, trace=lambda line: print(line, file=sys.stderr))
    else:
        run_controller_seed(controller_seed)


@pytest.mark.parametrize(
    ("seed", "activation"),
    [
        *(
            pytest.param(seed, activation, marks=pytest.mark.xfail(strict=True, reason=reason))
            for (seed, activation), reason in sorted(KNOWN_CONTROLLER_BUGS.items())
            if activation != "log_applied"
        ),
        *(
            pytest.param(seed, activation, id=f"regression-{seed}-{activation}")
            for (seed, activation) in sorted(CONTROLLER_REGRESSION_SEEDS)
            if activation != "log_applied"
        ),
    ],
)
def test_other_activation_rules_on_known_seeds(seed: int, activation: str) -> None:
    """The activation rules the batch does not run, on the seeds that showed their bugs."""
    run_controller_seed(seed, activation=activation)


def test_a_controller_seed_replays_event_for_event() -> None:
    """One seed, one run, in controller mode too."""

    def trace(seed: int) -> list[str]:
        lines: list[str] = []
        run_controller_seed(seed, trace=lines.append)
        return lines

    first = trace(7)
    assert first == trace(7)
    assert first != trace(8)
