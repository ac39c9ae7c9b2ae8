"""Runs many simulation seeds as a soak, prints progress and a summary, stops by itself.

    python -m tests.sim.soak --seeds 10000              # seeds 0..9999
    python -m tests.sim.soak --minutes 30 --first 100000  # as many seeds as fit in 30 min
    python -m tests.sim.soak --seeds 2000 --jobs 2      # on two worker processes
    python -m tests.sim.soak --seed 1234 --trace        # replay one seed, every event
    python -m tests.sim.soak --controller --seeds 3000 --jobs 2   # the controller mode
    python -m tests.sim.soak --controller --seed 28 --trace       # replay one of its seeds
    python -m tests.sim.soak --controller --activation service --seeds 500

Exit status 0 when every seed passed, 1 when any failed (each failure is printed with its
seed and replay command). The wall clock is read here only to report progress and to stop a
`--minutes` soak; the runs themselves never see it.
"""

from __future__ import annotations

import argparse
import collections
import functools
import multiprocessing
import sys
import time
from collections.abc import Iterator

from tests.sim.simulation import RunResult, SimulationFailure, run_seed

PROGRESS_EVERY_SECONDS = 10.0


def _run_one(seed: int, activation: str | None = None) -> tuple[int, RunResult | None, str | None]:
    """One seed; `activation` set: in controller mode, with that activation rule."""
    try:
        if activation is None:
            return seed, run_seed(seed), None
        from tests.sim.controller_simulation import run_controller_seed

        return seed, run_controller_seed(seed, activation=activation), None
    except SimulationFailure as failure:
        return seed, None, str(failure)


def _seeds(first: int, count: int | None) -> Iterator[int]:
    seed = first
    while count is None or seed < first + count:
        yield seed
        seed += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.soak", description=__doc__)
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds to run")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument("--first", type=int, default=0, help="the first seed")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--seed", type=int, default=None, help="run this one seed")
    parser.add_argument("--trace", action="store_true", help="print every event (--seed)")
    parser.add_argument(
        "--controller", action="store_true", help="controller mode (test_controller_seeds)"
    )
    parser.add_argument(
        "--activation",
        default="log_applied",
        choices=("log_applied", "epoch_committed", "service"),
        help="controller mode: when a new leader builds its controller (controller_simulation)",
    )
    parser.add_argument(
        "--stop-after-failures", type=int, default=20, help="stop once this many seeds failed"
    )
    args = parser.parse_args(argv)
    activation = args.activation if args.controller else None
    if args.seed is not None:
        return _replay(args.seed, args.trace, activation)
    if args.seeds is None and args.minutes is None:
        parser.error("give --seeds N or --minutes M (or both: whichever ends first)")
    return _soak(args, activation)


def _replay(seed: int, trace: bool, activation: str | None) -> int:
    try:
        if activation is None:
            result = run_seed(seed, trace=print if trace else None)
        else:
            from tests.sim.controller_simulation import run_controller_seed

            result = run_controller_seed(seed, print if trace else None, activation)
    except SimulationFailure as failure:
        print(failure)
        return 1
    print(result)
    return 0


def _soak(args: argparse.Namespace, activation: str | None) -> int:
    started = time.monotonic()
    deadline = None if args.minutes is None else started + args.minutes * 60
    failures: list[tuple[int, str]] = []
    profiles: collections.Counter[str] = collections.Counter()
    passed = 0
    ticks = 0
    events = 0
    acknowledged = 0
    totals: collections.Counter[str] = collections.Counter()
    last_progress = started
    seeds = _seeds(args.first, args.seeds)
    pool = multiprocessing.Pool(args.jobs) if args.jobs > 1 else None
    run_one = functools.partial(_run_one, activation=activation)
    results = pool.imap(run_one, seeds, chunksize=4) if pool else map(run_one, seeds)
    controller_counts: collections.Counter[str] = collections.Counter()
    try:
        for seed, result, failure in results:
            if failure is not None:
                failures.append((seed, failure))
                print(f"FAIL seed {seed}\n{failure}\n", flush=True)
            else:
                assert result is not None
                passed += 1
                profiles[result.profile] += 1
                ticks += result.ticks
                events += result.events
                acknowledged += result.acknowledged
                totals["crashes"] += result.crashes
                totals["crashes inside a Ready"] += result.crashes_inside_ready
                totals["snapshots loaded"] += result.snapshots_loaded
                totals["truncations"] += result.truncations
                totals["epochs"] += result.final_epoch
                totals["runs with observers"] += result.observers > 0
                _add_controller_figures(result, totals, controller_counts)
            now = time.monotonic()
            if now - last_progress >= PROGRESS_EVERY_SECONDS:
                last_progress = now
                print(
                    f"[{now - started:7.1f}s] up to seed {seed}: {passed} passed, "
                    f"{len(failures)} failed",
                    flush=True,
                )
            if deadline is not None and now >= deadline:
                break
            if len(failures) >= args.stop_after_failures:
                print(f"stopping: {len(failures)} seeds failed", flush=True)
                break
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    elapsed = time.monotonic() - started
    print(f"\n{passed} passed, {len(failures)} failed in {elapsed:.1f}s")
    print(
        f"simulated {ticks} ticks, {events} events, {acknowledged} acknowledged proposals; "
        f"profiles: {dict(sorted(profiles.items()))}"
    )
    print(f"coverage: {dict(sorted(totals.items()))}")
    if controller_counts:
        print(f"controller requests and proposals: {dict(sorted(controller_counts.items()))}")
    for seed, failure in failures:
        first_line = failure.splitlines()[0]
        print(f"  seed {seed}: {first_line}\n    {failure.splitlines()[-1]}")
    return 1 if failures else 0


def _add_controller_figures(
    result: RunResult,
    totals: collections.Counter[str],
    controller_counts: collections.Counter[str],
) -> None:
    from tests.sim.controller_simulation import ControllerRunResult

    if not isinstance(result, ControllerRunResult):
        return
    totals["metadata records committed"] += result.records_committed
    totals["partition leader epochs"] += result.leader_epochs
    totals["controller activations"] += result.controller_activations
    controller_counts.update(result.counts)


if __name__ == "__main__":
    sys.exit(main())
