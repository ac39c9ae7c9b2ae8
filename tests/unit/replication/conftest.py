"""Options of the replication simulation tests.

pytest tests/unit/replication                                   # CI: seeds 0 .. 299
pytest tests/unit/replication --replication-seed=N              # replay one seed
pytest tests/unit/replication --replication-seed=N --replication-trace   # ... printing events
pytest tests/unit/replication --replication-seeds=5000 --replication-first-seed=1000

(tests/sim owns `--seed`; pytest refuses an option registered twice, so these are prefixed.)
"""

from __future__ import annotations

import pytest

DEFAULT_SEED_COUNT = 300


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("replication", "replication core simulation")
    group.addoption("--replication-seed", type=int, default=None, help="replay only this seed")
    group.addoption(
        "--replication-seeds",
        type=int,
        default=DEFAULT_SEED_COUNT,
        help=f"how many seeds to run (default {DEFAULT_SEED_COUNT})",
    )
    group.addoption("--replication-first-seed", type=int, default=0, help="first seed to run")
    group.addoption(
        "--replication-trace", action="store_true", default=False, help="print every event"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "replication_seed" not in metafunc.fixturenames:
        return
    # Defaults too: started from the repository root this conftest may load after the
    # command line was parsed, and then the options do not exist.
    config = metafunc.config
    seed = config.getoption("--replication-seed", default=None)
    if seed is not None:
        seeds = [seed]
    else:
        first = config.getoption("--replication-first-seed", default=0)
        count = config.getoption("--replication-seeds", default=DEFAULT_SEED_COUNT)
        seeds = list(range(first, first + count))
    metafunc.parametrize("replication_seed", [pytest.param(s, id=f"seed{s}") for s in seeds])


@pytest.fixture
def replication_trace(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--replication-trace", default=False))
