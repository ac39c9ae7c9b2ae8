"""Options of the simulation tests.

pytest tests/sim                      # the CI batch: seeds 0 .. DEFAULT_SEED_COUNT-1
pytest tests/sim --seed=N             # replay one seed
pytest tests/sim --seed=N --sim-trace # ... printing every event of it
pytest tests/sim --sim-seeds=2000 --sim-first-seed=5000
pytest tests/sim/test_controller_seeds.py                        # the controller batch
pytest tests/sim/test_controller_seeds.py --seed=N --sim-trace   # replay one of its seeds
pytest tests/sim/test_controller_seeds.py --sim-controller-seeds=1000
"""

from __future__ import annotations

import pytest

DEFAULT_SEED_COUNT = 500
DEFAULT_CONTROLLER_SEED_COUNT = 150


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sim", "deterministic simulation")
    group.addoption("--seed", type=int, default=None, help="run only this simulation seed")
    group.addoption(
        "--sim-seeds",
        type=int,
        default=DEFAULT_SEED_COUNT,
        help=f"how many seeds to run (default {DEFAULT_SEED_COUNT})",
    )
    group.addoption("--sim-first-seed", type=int, default=0, help="the first seed to run")
    group.addoption(
        "--sim-controller-seeds",
        type=int,
        default=DEFAULT_CONTROLLER_SEED_COUNT,
        help=f"how many controller-mode seeds to run (default {DEFAULT_CONTROLLER_SEED_COUNT})",
    )
    group.addoption(
        "--sim-trace", action="store_true", default=False, help="print every simulated event"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "controller_seed" in metafunc.fixturenames:
        _parametrize_controller_seeds(metafunc)
    if "sim_seed" not in metafunc.fixturenames:
        return
    # Defaults too: when pytest starts from the repository root this conftest loads late,
    # after the command line was parsed, and the options may not exist.
    config = metafunc.config
    seed = config.getoption("--seed", default=None)
    if seed is not None:
        seeds = [seed]
    else:
        first = config.getoption("--sim-first-seed", default=0)
        count = config.getoption("--sim-seeds", default=DEFAULT_SEED_COUNT)
        seeds = list(range(first, first + count))
    from tests.sim.known_failures import KNOWN_CORE_BUGS, REGRESSION_SEEDS

    if seed is None:
        seeds += [value for value in REGRESSION_SEEDS if value not in seeds]
    params = []
    for value in seeds:
        reason = KNOWN_CORE_BUGS.get(value)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(value, marks=marks, id=f"seed{value}"))
    metafunc.parametrize("sim_seed", params)


def _parametrize_controller_seeds(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    seed = config.getoption("--seed", default=None)
    if seed is not None:
        seeds = [seed]
    else:
        first = config.getoption("--sim-first-seed", default=0)
        count = config.getoption("--sim-controller-seeds", default=DEFAULT_CONTROLLER_SEED_COUNT)
        seeds = list(range(first, first + count))
    from tests.sim.controller_simulation import DEFAULT_ACTIVATION_RULE
    from tests.sim.known_failures import CONTROLLER_REGRESSION_SEEDS, KNOWN_CONTROLLER_BUGS

    if seed is None:
        listed = {**CONTROLLER_REGRESSION_SEEDS, **KNOWN_CONTROLLER_BUGS}
        known = sorted(s for s, rule in listed if rule == DEFAULT_ACTIVATION_RULE)
        seeds += [value for value in known if value not in seeds]
    params = []
    for value in seeds:
        reason = KNOWN_CONTROLLER_BUGS.get((value, DEFAULT_ACTIVATION_RULE))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(value, marks=marks, id=f"seed{value}"))
    metafunc.parametrize("controller_seed", params)


@pytest.fixture
def sim_trace(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--sim-trace", default=False))
