"""The report of one chaos run, saved in the run's directory: `report.md` (seed, configuration,
verdict with anomaly examples, the faults and their times, throughput and latency, and the
unavailability after each fault) and `timeline.png` (acknowledged sends per second and send
latency over time, fault windows shaded).

Unavailability after a fault is measured per partition and the worst partition counts: from
the fault's start (or end) until the first acknowledgement of a send to that partition
invoked at or after that instant. Counting only sends invoked after the instant keeps a send
already on its way from hiding an outage; taking the worst partition keeps the partitions a
fault did not touch from hiding the ones it did (a leader's SIGKILL stops its partitions only).
"""

from __future__ import annotations

import bisect
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from chaos.checker import Send, Verdict, paired_sends
from chaos.history import Fault, FinalState, Op

REPORT_FILE = "report.md"
TIMELINE_FILE = "timeline.png"
TIMELINE_BUCKET_S = 1.0
MILLISECONDS_PER_SECOND = 1000.0

Reference = Literal["start", "end"]


def write_report(
    out_dir: Path,
    *,
    seed: int,
    history: Sequence[Op | Fault],
    final: FinalState,
    verdict: Verdict,
    config: dict[str, Any],
) -> Path:
    """Write report.md and timeline.png into `out_dir` (created if missing); return the
    path of report.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_timeline(out_dir / TIMELINE_FILE, history)
    sections = [
        f"# Chaos run, seed {seed}\n\n{verdict_line(verdict)}",
        "## Configuration\n\n```json\n" + json.dumps(config, indent=2, default=str) + "\n```",
        verdict_section(verdict),
        faults_section(history),
        unavailability_section(history),
        throughput_section(history, final),
    ]
    path = out_dir / REPORT_FILE
    path.write_text("\n\n".join(sections) + "\n")
    return path


# --- figures -----------------------------------------------------------------------------


def acknowledged_sends(history: Sequence[Op | Fault]) -> list[Send]:
    ops = [entry for entry in history if isinstance(entry, Op)]
    return [s for s in paired_sends(ops) if s.outcome == "ok" and s.complete_s is not None]


def run_end_s(history: Sequence[Op | Fault]) -> float:
    times = [entry.time_s for entry in history if isinstance(entry, Op)]
    for entry in history:
        if isinstance(entry, Fault):
            times.append(entry.start_s if entry.end_s is None else entry.end_s)
    return max(times, default=0.0)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty sequence."""
    assert values, "percentile of no values"
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def fault_windows(
    history: Sequence[Op | Fault], since: Reference = "start"
) -> list[tuple[Fault, float | None]]:
    """Every fault, in start order, with its unavailability in seconds measured from its
    start or end (see the module docstring); None when no send was acknowledged after that
    instant or the fault never ended."""
    by_partition: dict[tuple[str | None, int | None], list[Send]] = defaultdict(list)
    for send in acknowledged_sends(history):
        by_partition[(send.topic, send.partition)].append(send)
    indexes = [partition_index(sends) for sends in by_partition.values()]
    faults = sorted((e for e in history if isinstance(e, Fault)), key=lambda f: f.start_s)
    windows: list[tuple[Fault, float | None]] = []
    for fault in faults:
        instant = fault.start_s if since == "start" else fault.end_s
        waits = [] if instant is None else [wait_after(index, instant) for index in indexes]
        known = [wait for wait in waits if wait is not None]
        windows.append((fault, max(known) if known else None))
    return windows


PartitionIndex = tuple[list[float], list[float]]


def partition_index(sends: list[Send]) -> PartitionIndex:
    """Invoke times in order and, for each, the earliest acknowledgement among the sends
    invoked at or after it."""
    ordered = sorted(sends, key=lambda send: send.invoke_s)
    invokes = [send.invoke_s for send in ordered]
    earliest_ack = [0.0] * len(ordered)
    soonest = math.inf
    for i in range(len(ordered) - 1, -1, -1):
        completed = ordered[i].complete_s
        assert completed is not None
        soonest = min(soonest, completed)
        earliest_ack[i] = soonest
    return invokes, earliest_ack


def wait_after(index: PartitionIndex, instant: float) -> float | None:
    invokes, earliest_ack = index
    i = bisect.bisect_left(invokes, instant)
    return None if i == len(invokes) else earliest_ack[i] - instant


def unavailability(
    history: Sequence[Op | Fault], since: Reference = "start"
) -> dict[str, list[float]]:
    """Fault kind -> the unavailability window in seconds after each fault of that kind,
    from its start (default) or its end, in start order. Faults with no acknowledged send
    after them are left out."""
    windows: dict[str, list[float]] = defaultdict(list)
    for fault, window in fault_windows(history, since):
        if window is not None:
            windows[fault.name].append(window)
    return dict(windows)


# --- sections ----------------------------------------------------------------------------


def verdict_line(verdict: Verdict) -> str:
    if verdict.valid:
        return "**Verdict: valid** — no anomaly found."
    kinds = ", ".join(sorted(verdict.anomalies))
    return f"**Verdict: INVALID** — {kinds}."


def verdict_section(verdict: Verdict) -> str:
    counts = verdict.stats.get("anomaly_counts", {})
    lines = ["## Verdict", "", verdict_line(verdict)]
    for title, found in (("Anomalies", verdict.anomalies), ("Tolerated", verdict.tolerated)):
        for kind, examples in sorted(found.items()):
            lines += ["", f"### {title}: {kind} ({counts.get(kind, len(examples))})", ""]
            lines += [f"- {example}" for example in examples]
    lines += ["", "### Statistics", "", "| statistic | value |", "| --- | --- |"]
    for name, value in verdict.stats.items():
        shown = value if isinstance(value, int | float | str) else json.dumps(value)
        lines.append(f"| {name} | {shown} |")
    return "\n".join(lines)


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def faults_section(history: Sequence[Op | Fault]) -> str:
    from_start = fault_windows(history, "start")
    from_end = dict((id(fault), window) for fault, window in fault_windows(history, "end"))
    lines = [
        "## Faults",
        "",
        "Unavailable: seconds until the worst partition acknowledged a send invoked after "
        "the fault's start (or end).",
        "",
        "| # | fault | targets | start (s) | end (s) | duration (s) | unavailable from start "
        "(s) | unavailable from end (s) | detail |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for number, (fault, window) in enumerate(from_start, start=1):
        duration = None if fault.end_s is None else fault.end_s - fault.start_s
        lines.append(
            f"| {number} | {fault.name} | {fault.targets} | {seconds(fault.start_s)} "
            f"| {seconds(fault.end_s)} | {seconds(duration)} | {seconds(window)} "
            f"| {seconds(from_end[id(fault)])} | {fault.detail} |"
        )
    if not from_start:
        lines.append("| | no faults | | | | | | | |")
    return "\n".join(lines)


def summary_cells(values: list[float]) -> str:
    if not values:
        return "— | — | —"
    return " | ".join(seconds(percentile(values, q)) for q in (0.5, 0.99, 1.0))


def unavailability_section(history: Sequence[Op | Fault]) -> str:
    from_start = unavailability(history, "start")
    from_end = unavailability(history, "end")
    counts: dict[str, int] = defaultdict(int)
    for entry in history:
        if isinstance(entry, Fault):
            counts[entry.name] += 1
    lines = [
        "## Unavailability after each kind of fault",
        "",
        "| fault | count | from start p50 (s) | p99 | max | from end p50 (s) | p99 | max |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in sorted(counts):
        start_cells = summary_cells(from_start.get(name, []))
        end_cells = summary_cells(from_end.get(name, []))
        lines.append(f"| {name} | {counts[name]} | {start_cells} | {end_cells} |")
    return "\n".join(lines)


def throughput_section(history: Sequence[Op | Fault], final: FinalState) -> str:
    acknowledged = acknowledged_sends(history)
    duration_s = run_end_s(history)
    per_bucket = sends_per_bucket(acknowledged)
    lines = [
        "## Throughput and latency",
        "",
        f"- run length: {duration_s:.1f} s",
        f"- acknowledged sends: {len(acknowledged)}",
    ]
    if acknowledged and duration_s > 0:
        latencies = [latency_ms(send) for send in acknowledged]
        lines += [
            f"- mean rate: {len(acknowledged) / duration_s:.1f} acknowledged sends/s; "
            f"best {TIMELINE_BUCKET_S:g} s window {max(per_bucket.values())}, worst "
            f"{min(per_bucket.get(i, 0) for i in range(bucket(duration_s) + 1))}",
            f"- send latency (invoke to acknowledgement): p50 {percentile(latencies, 0.5):.1f} "
            f"ms, p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms",
        ]
    nodes = sorted(final.metadata)
    partitions = {(replica.topic, replica.partition) for replica in final.replicas}
    lines += [
        f"- final state: {len(final.replicas)} replicas of {len(partitions)} partitions, "
        f"metadata from nodes {nodes}",
        "",
        f"![acknowledged sends and latency over time, fault windows shaded]({TIMELINE_FILE})",
    ]
    return "\n".join(lines)


def latency_ms(send: Send) -> float:
    assert send.complete_s is not None
    return (send.complete_s - send.invoke_s) * MILLISECONDS_PER_SECOND


def bucket(time_s: float) -> int:
    return int(time_s // TIMELINE_BUCKET_S)


def sends_per_bucket(acknowledged: list[Send]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for send in acknowledged:
        assert send.complete_s is not None
        counts[bucket(send.complete_s)] += 1
    return dict(counts)


# --- the plot ------------------------------------------------------------------------------


def plot_timeline(path: Path, history: Sequence[Op | Fault]) -> None:
    """Acknowledged sends per second (top) and send latency p50/p99 per second (bottom),
    fault windows shaded and labelled on both."""
    # Imported here so the checker and the run never need matplotlib unless they plot; the
    # Figure API (no pyplot) needs no display and keeps no global state.
    from matplotlib.figure import Figure

    acknowledged = acknowledged_sends(history)
    end_s = max(run_end_s(history), TIMELINE_BUCKET_S)
    figure = Figure(figsize=(12, 6), layout="constrained")
    rate_axes, latency_axes = figure.subplots(2, 1, sharex=True)
    per_bucket = sends_per_bucket(acknowledged)
    # One step per bucket, closed by a last point at the end of the final bucket.
    buckets = range(bucket(end_s) + 2)
    rates = [per_bucket.get(i, 0) / TIMELINE_BUCKET_S for i in buckets]
    rates[-1] = rates[-2]
    rate_axes.step([i * TIMELINE_BUCKET_S for i in buckets], rates, where="post")
    rate_axes.set_ylim(0, max(rates) * 1.2 or 1.0)  # headroom for the fault labels
    rate_axes.set_ylabel("acknowledged sends / s")
    latencies: dict[int, list[float]] = defaultdict(list)
    for send in acknowledged:
        assert send.complete_s is not None
        latencies[bucket(send.complete_s)].append(latency_ms(send))
    times = [i * TIMELINE_BUCKET_S for i in sorted(latencies)]
    for fraction, label in ((0.5, "p50"), (0.99, "p99")):
        values = [percentile(latencies[i], fraction) for i in sorted(latencies)]
        latency_axes.plot(times, values, marker=".", label=label)
    if latencies:
        latency_axes.set_yscale("log")
        latency_axes.legend(loc="upper right")
    latency_axes.set_ylabel("send latency (ms)")
    latency_axes.set_xlabel("time since start (s)")
    latency_axes.set_xlim(0, (bucket(end_s) + 1) * TIMELINE_BUCKET_S)
    shade_faults([rate_axes, latency_axes], history, end_s)
    figure.savefig(path, format="png", dpi=100)


def shade_faults(axes: list[Any], history: Sequence[Op | Fault], end_s: float) -> None:
    faults = [entry for entry in history if isinstance(entry, Fault)]
    names = sorted({fault.name for fault in faults})
    colours = {name: f"C{(i + 2) % 10}" for i, name in enumerate(names)}
    for fault in faults:
        fault_end = end_s if fault.end_s is None else fault.end_s
        for ax in axes:
            ax.axvspan(fault.start_s, fault_end, color=colours[fault.name], alpha=0.2)
        axes[0].annotate(
            f"{fault.name} {fault.targets}",
            xy=(fault.start_s, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            fontsize=7,
        )
