"""Many chaos runs in a row (`kraft chaos --seeds N` or `--for SECONDS`): one run per seed,
each in `out/seed-N/`, then `out/soak.md` summing them up — faults injected by kind,
operations acknowledged, anomalies, and the unavailability after each kind of fault
(p50/p99/max) — the figures docs/reliability.md quotes. Stops by itself.
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from chaos.checker import Verdict
from chaos.history import Fault, read_history
from chaos.nemesis import FAULT_KINDS
from chaos.report import unavailability
from chaos.run import ChaosConfig, run_chaos


@dataclass(frozen=True, slots=True)
class SoakSettings:
    first_seed: int
    seeds: int | None  # None: until soak_seconds have passed
    soak_seconds: float | None
    duration_s: float
    out_dir: Path
    faults: tuple[str, ...] = FAULT_KINDS
    nodes: int = 3
    keep_data: bool = False
    mixed: bool = False


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def run_soak(settings: SoakSettings) -> bool:
    """Runs the seeds; True when no run found an anomaly."""
    assert settings.seeds is not None or settings.soak_seconds is not None
    started = time.monotonic()
    verdicts: dict[int, Verdict | str] = {}
    seed = settings.first_seed
    while True:
        if settings.seeds is not None and len(verdicts) >= settings.seeds:
            break
        if (
            settings.soak_seconds is not None
            and time.monotonic() - started >= settings.soak_seconds
        ):
            break
        out = settings.out_dir if settings.seeds == 1 else settings.out_dir / f"seed-{seed}"
        try:
            verdicts[seed] = run_chaos(
                ChaosConfig(
                    seed=seed,
                    duration_s=settings.duration_s,
                    out_dir=out,
                    faults=settings.faults,
                    nodes=settings.nodes,
                    keep_data=settings.keep_data,
                    mixed=settings.mixed,
                )
            )
        except Exception as error:  # noqa: BLE001 - a broken run is reported, not hidden
            verdicts[seed] = f"the run failed: {error!r}"
            print(f"seed {seed}: the run failed: {error!r}", file=sys.stderr, flush=True)
        seed += 1
    if settings.seeds != 1:
        summary = write_summary(settings, verdicts, time.monotonic() - started)
        print(f"soak: {summary}", file=sys.stderr, flush=True)
    return all(isinstance(v, Verdict) and v.valid for v in verdicts.values())


def write_summary(
    settings: SoakSettings, verdicts: dict[int, Verdict | str], elapsed_s: float
) -> Path:
    faults: Counter[str] = Counter()
    windows: dict[str, list[float]] = defaultdict(list)
    acknowledged = 0
    anomalies: Counter[str] = Counter()
    lines = [
        "# Chaos soak",
        "",
        f"{len(verdicts)} runs of {settings.duration_s:.0f} s (seeds {min(verdicts)}–"
        f"{max(verdicts)}), {elapsed_s / 60:.1f} min in all; faults: "
        f"{', '.join(settings.faults)}{' (mixed)' if settings.mixed else ''}; "
        f"{settings.nodes} nodes.",
        "",
        "| seed | verdict | acknowledged sends | anomalies |",
        "| --- | --- | --- | --- |",
    ]
    for seed, verdict in sorted(verdicts.items()):
        out = settings.out_dir / f"seed-{seed}"
        history_path = out / "history.jsonl"
        if history_path.exists():
            history = read_history(history_path)
            faults.update(entry.name for entry in history if isinstance(entry, Fault))
            for kind, values in unavailability(history).items():
                windows[kind].extend(values)
        if isinstance(verdict, str):
            lines.append(f"| {seed} | broken | — | {verdict} |")
            anomalies["broken_run"] += 1
            continue
        sends = int(verdict.stats.get("sends_acknowledged", 0))
        acknowledged += sends
        counts = verdict.stats.get("anomaly_counts", {})
        for kind, count in counts.items():
            if kind in verdict.anomalies:
                anomalies[kind] += int(count)
        found = ", ".join(f"{k} ×{len(v)}" for k, v in verdict.anomalies.items()) or "none"
        lines.append(f"| {seed} | {'valid' if verdict.valid else 'INVALID'} | {sends} | {found} |")
    lines += [
        "",
        f"Faults injected: {dict(sorted(faults.items())) or 'none'}; acknowledged sends: "
        f"{acknowledged}; anomalies: {dict(anomalies) or 'none'}.",
        "",
        "Unavailability after each kind of fault (seconds from its start until every "
        "partition acknowledged a send invoked after it):",
        "",
        "| fault | count | p50 | p99 | max |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind, values in sorted(windows.items()):
        lines.append(
            f"| {kind} | {len(values)} | {percentile(values, 0.5):.2f} | "
            f"{percentile(values, 0.99):.2f} | {max(values):.2f} |"
        )
    path = settings.out_dir / "soak.md"
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
