"""The run report: unavailability after each fault (worst partition, from the fault's start
and from its end), report.md and timeline.png written into the run's directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.checker import LOST, Verdict, check
from chaos.history import FinalState
from chaos.report import REPORT_FILE, TIMELINE_FILE, fault_windows, unavailability, write_report
from tests.unit.chaos.helpers import HistoryBuilder, healthy_run, settled_final

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def leader_killed_run() -> HistoryBuilder:
    """Sends every 0.1 s to partitions 0 and 1. The leader of partition 0 is killed from 1.0
    to 2.0 s; partition 0 times out until a send invoked at 1.5 s is acknowledged at 1.51 s.
    A send to partition 0 invoked at 0.95 s is acknowledged just after the kill."""
    history = HistoryBuilder()
    offsets = {0: 0, 1: 0}
    for tenth in range(30):
        at = tenth / 10
        for partition in (0, 1):
            value = f"p{partition}-{tenth}"
            if partition == 0 and 1.0 <= at < 1.5:
                history.send(value, outcome="info", partition=partition, at=at, duration_s=0.05)
                continue
            history.send(value, offsets[partition], partition=partition, at=at)
            offsets[partition] += 1
    history.send("in-flight", offsets[0], partition=0, at=0.95, duration_s=0.1)
    history.fault("kill", [2], 1.0, 2.0)
    return history


def test_unavailability_runs_from_the_fault_until_the_worst_partition_acknowledges() -> None:
    """Partition 1 never stopped, and the send already in flight at the kill does not count:
    partition 0 was unavailable until 1.51 s."""
    windows = unavailability(leader_killed_run().entries)
    assert list(windows) == ["kill"]
    assert windows["kill"] == [pytest.approx(0.51)]


def test_unavailability_from_the_end_of_the_fault() -> None:
    windows = unavailability(leader_killed_run().entries, since="end")
    assert windows["kill"] == [pytest.approx(0.01)]


def test_fault_still_open_or_followed_by_no_acknowledgement_has_no_window() -> None:
    history = leader_killed_run()
    history.fault("pause", [1], 2.5, None)
    history.fault("partition", [3], 10.0, 11.0)
    by_name = {fault.name: window for fault, window in fault_windows(history.entries, "end")}
    assert by_name["pause"] is None
    assert by_name["partition"] is None
    assert by_name["kill"] == pytest.approx(0.01)
    assert unavailability(history.entries, "end") == {"kill": [pytest.approx(0.01)]}


def test_report_names_seed_config_faults_verdict_and_unavailability(tmp_path: Path) -> None:
    history = leader_killed_run()
    final = FinalState()
    verdict = Verdict(valid=True, anomalies={}, stats={"sends_acknowledged": 56})
    path = write_report(
        tmp_path / "run-7",
        seed=7,
        history=history.entries,
        final=final,
        verdict=verdict,
        config={"nodes": 3, "nemeses": ["kill"]},
    )
    assert path == tmp_path / "run-7" / REPORT_FILE
    report = path.read_text()
    assert "# Chaos run, seed 7" in report
    assert '"nemeses": [' in report
    assert "**Verdict: valid**" in report
    assert "| 1 | kill | [2] | 1.000 | 2.000 | 1.000 | 0.510 | 0.010 |  |" in report
    assert "| kill | 1 | 0.510 | 0.510 | 0.510 | 0.010 | 0.010 | 0.010 |" in report
    assert "- acknowledged sends: 56" in report
    assert "| sends_acknowledged | 56 |" in report
    assert f"]({TIMELINE_FILE})" in report


def test_report_of_an_invalid_run_gives_the_anomaly_examples(tmp_path: Path) -> None:
    history, _ = healthy_run()
    final = settled_final([(0, "v0"), (2, "v2")])
    verdict = check(history.entries, final)
    report = write_report(
        tmp_path, seed=1, history=history.entries, final=final, verdict=verdict, config={}
    ).read_text()
    assert f"**Verdict: INVALID** — {LOST}." in report
    assert f"### Anomalies: {LOST} (1)" in report
    assert "- send op 2 by producer-1 (ok): value 'v1' acknowledged at orders/0@1" in report


def test_timeline_is_a_png(tmp_path: Path) -> None:
    history = leader_killed_run()
    write_report(
        tmp_path,
        seed=3,
        history=history.entries,
        final=FinalState(),
        verdict=check(history.entries, FinalState()),
        config={},
    )
    assert (tmp_path / TIMELINE_FILE).read_bytes().startswith(PNG_SIGNATURE)


def test_report_of_a_run_with_no_operations_or_faults(tmp_path: Path) -> None:
    verdict = check([], FinalState())
    report = write_report(
        tmp_path, seed=0, history=[], final=FinalState(), verdict=verdict, config={}
    ).read_text()
    assert "| | no faults |" in report
    assert "- acknowledged sends: 0" in report
    assert (tmp_path / TIMELINE_FILE).read_bytes().startswith(PNG_SIGNATURE)
