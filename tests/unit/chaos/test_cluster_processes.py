"""The chaos cluster's process control tolerates nodes that stopped by themselves (a broker
exits after a failed write on a full disk): a fault that then pauses it does nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chaos.cluster import ChaosCluster


def test_pausing_a_node_that_exited_on_its_own_does_nothing(tmp_path: Path) -> None:
    cluster = ChaosCluster(tmp_path / "cluster", 3)
    node = cluster.nodes[1]
    node.process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(74)"])
    node.process.wait()  # reaped: its pid is gone, as after is_running() polled it

    cluster.pause(1)
    cluster.resume(1)

    assert not node.paused
    assert node.process.returncode == 74


def test_resuming_a_paused_node_that_is_gone_clears_the_pause(tmp_path: Path) -> None:
    cluster = ChaosCluster(tmp_path / "cluster", 3)
    node = cluster.nodes[2]
    node.process = subprocess.Popen([sys.executable, "-c", "pass"])
    node.process.wait()
    node.paused = True  # paused, then killed by another overlapping fault

    cluster.resume(2)

    assert not node.paused
