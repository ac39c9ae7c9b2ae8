"""client.localcluster: layout, generated configs, formatting and pid handling of the local
cluster (SPEC §3). No real node is started here; tests/cluster/ does that."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from client.localcluster import (
    HTTP_PORT_BASE,
    ClusterLayout,
    LocalClusterError,
    NodePorts,
    ReadinessWaiter,
    Supervisor,
    cluster_up,
    describe_exit_code,
    is_kraft_server_cmdline,
    kill_node,
    load_layout,
    node_ports,
    prepare_cluster,
    running_pid,
    start_node,
)
from kraft.config import load_config

CLUSTER_ID = "fMCL8kv1SWm87L_Md-I2hg"


class FakeFormatter:
    """Records format calls and writes meta.properties as the real one would."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Path, ...], int, bool, bool]] = []

    def __call__(
        self,
        dirs: Sequence[Path],
        cluster_id: str,
        node_id: int,
        *,
        initial_voters: bool,
        ignore_formatted: bool,
    ) -> None:
        assert cluster_id == CLUSTER_ID
        self.calls.append((tuple(dirs), node_id, initial_voters, ignore_formatted))
        for directory in dirs:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "meta.properties").write_text(f"cluster.id={cluster_id}\n")


@pytest.fixture(autouse=True)
def no_kraft_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KRAFT_"):
            monkeypatch.delenv(name)


def prepare(
    data_dir: Path,
    formatter: FakeFormatter,
    nodes: int | None = None,
    port_offset: int | None = None,
) -> tuple[ClusterLayout, str]:
    out = io.StringIO()
    layout = prepare_cluster(
        data_dir,
        nodes,
        port_offset,
        out,
        new_cluster_id=lambda: CLUSTER_ID,
        format_storage=formatter,
    )
    return layout, out.getvalue()


def test_ports_follow_the_spec_table() -> None:
    assert node_ports(1) == NodePorts(client=9092, rpc=9093, http=8082)
    assert node_ports(2) == NodePorts(client=9192, rpc=9193, http=8182)
    assert node_ports(3) == NodePorts(client=9292, rpc=9293, http=8282)
    assert node_ports(2, port_offset=1000) == NodePorts(client=10192, rpc=10193, http=9182)


def test_first_run_writes_a_config_per_node_and_formats_initial_voters(tmp_path: Path) -> None:
    formatter = FakeFormatter()
    layout, output = prepare(tmp_path / "kd", formatter)
    data_dir = (tmp_path / "kd").resolve()
    assert f"Created cluster {CLUSTER_ID} with 3 nodes in {data_dir}" in output
    assert json.loads((data_dir / "cluster.json").read_text()) == {
        "version": 1,
        "cluster_id": CLUSTER_ID,
        "nodes": 3,
        "port_offset": 0,
    }
    for node_id in (1, 2, 3):
        config = load_config(data_dir / f"node-{node_id}" / "server.properties", environ={})
        assert config.node_id == node_id
        assert config.process_roles == frozenset({"broker", "controller"})
        assert config.voters == {
            1: ("127.0.0.1", 9093),
            2: ("127.0.0.1", 9193),
            3: ("127.0.0.1", 9293),
        }
        shift = 100 * (node_id - 1)
        assert config.client_listener == ("127.0.0.1", 9092 + shift)
        assert config.rpc_listener == ("127.0.0.1", 9093 + shift)
        assert config.http_listener == ("127.0.0.1", 8082 + shift)
        assert config.log_dirs == (data_dir / f"node-{node_id}" / "data",)
        assert config.metadata_log_dir == data_dir / f"node-{node_id}" / "metadata"
        assert (config.default_replication_factor, config.min_insync_replicas) == (3, 2)
    assert [(node_id, initial) for _dirs, node_id, initial, _ignore in formatter.calls] == [
        (1, True),
        (2, True),
        (3, True),
    ]
    assert formatter.calls[0][0] == (data_dir / "node-1" / "data", data_dir / "node-1" / "metadata")
    assert layout.bootstrap == [
        "http://127.0.0.1:8082",
        "http://127.0.0.1:8182",
        "http://127.0.0.1:8282",
    ]


def test_port_offset_moves_every_port_and_is_recorded(tmp_path: Path) -> None:
    layout, _ = prepare(tmp_path, FakeFormatter(), nodes=2, port_offset=20000)
    config = load_config(layout.config_path(2), environ={})
    assert config.rpc_listener == ("127.0.0.1", 29193)
    assert config.voters == {1: ("127.0.0.1", 29093), 2: ("127.0.0.1", 29193)}
    assert (config.default_replication_factor, config.min_insync_replicas) == (2, 1)
    assert load_layout(tmp_path).port_offset == 20000


def test_later_run_reuses_the_cluster_and_formats_nothing(tmp_path: Path) -> None:
    prepare(tmp_path, FakeFormatter())
    formatter = FakeFormatter()
    layout, output = prepare(tmp_path, formatter)
    assert (layout.cluster_id, layout.nodes, layout.port_offset) == (CLUSTER_ID, 3, 0)
    assert "Reusing cluster" in output
    assert formatter.calls == []


def test_later_run_keeps_a_users_edits_to_server_properties(tmp_path: Path) -> None:
    layout, _ = prepare(tmp_path, FakeFormatter())
    edited = layout.config_path(1).read_text() + "log.level=debug\n"
    layout.config_path(1).write_text(edited)
    prepare(tmp_path, FakeFormatter())
    assert layout.config_path(1).read_text() == edited


def test_later_run_formats_lost_storage_as_a_replacement(tmp_path: Path) -> None:
    layout, _ = prepare(tmp_path, FakeFormatter())
    (layout.node_dir(2) / "metadata" / "meta.properties").unlink()
    formatter = FakeFormatter()
    _, output = prepare(tmp_path, formatter)
    assert [(node_id, initial, ignore) for _d, node_id, initial, ignore in formatter.calls] == [
        (2, False, True)
    ]
    assert "Node 2 had no formatted storage: formatted it with --no-initial-controllers" in output


@pytest.mark.parametrize(
    ("nodes", "offset", "message"),
    [
        (5, None, "--nodes 5 differs from the 3 nodes of the cluster"),
        (None, 7, "--port-offset 7 differs from the offset 0 of the cluster"),
    ],
)
def test_later_run_refuses_a_different_shape(
    tmp_path: Path, nodes: int | None, offset: int | None, message: str
) -> None:
    prepare(tmp_path, FakeFormatter())
    with pytest.raises(LocalClusterError, match=message):
        prepare(tmp_path, FakeFormatter(), nodes=nodes, port_offset=offset)


def test_node_directories_without_cluster_json_are_refused(tmp_path: Path) -> None:
    (tmp_path / "node-1").mkdir()
    with pytest.raises(LocalClusterError, match="holds node directories .* but no cluster.json"):
        prepare(tmp_path, FakeFormatter())


def test_node_count_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalClusterError, match=r"--nodes 0 is out of range"):
        prepare(tmp_path, FakeFormatter(), nodes=0)


def test_layout_of_a_directory_without_a_cluster_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(LocalClusterError, match="run `kraft cluster up` first"):
        load_layout(tmp_path)


def test_node_outside_the_cluster_is_refused(tmp_path: Path) -> None:
    prepare(tmp_path, FakeFormatter())
    with pytest.raises(LocalClusterError, match="node 4 is not part of the cluster .* 1 to 3"):
        kill_node(tmp_path, 4, io.StringIO())


# --- processes -------------------------------------------------------------------------------


def test_cmdline_check_accepts_only_a_kraft_server_for_that_config(tmp_path: Path) -> None:
    config = tmp_path / "node-1" / "server.properties"
    python = sys.executable
    assert is_kraft_server_cmdline(
        [python, "-m", "client", "server", "--config", str(config)], config
    )
    assert is_kraft_server_cmdline(["/venv/bin/kraft", "server", f"--config={config}"], config)
    other = tmp_path / "node-2" / "server.properties"
    assert not is_kraft_server_cmdline(
        [python, "-m", "client", "server", "--config", str(other)], config
    )
    assert not is_kraft_server_cmdline(
        [python, "-m", "http.server", "--config", str(config)], config
    )
    assert not is_kraft_server_cmdline(["/bin/sleep", "100"], config)


@pytest.fixture
def lookalike(tmp_path: Path) -> Iterator[tuple[ClusterLayout, subprocess.Popen[bytes]]]:
    """A process whose command line looks like node 1's server, with its pid file."""
    layout, _ = prepare(tmp_path, FakeFormatter())
    arguments = ["-m", "client", "server", "--config", str(layout.config_path(1))]
    script = "import sys; sys.stdin.read()"  # lives until its stdin closes or it is killed
    process = subprocess.Popen([sys.executable, "-c", script, *arguments], stdin=subprocess.PIPE)
    layout.pid_path(1).write_text(f"{process.pid}\n")
    yield layout, process
    if process.poll() is None:
        process.kill()
    process.wait()


def test_kill_sends_sigkill_to_the_node_in_the_pid_file(
    lookalike: tuple[ClusterLayout, subprocess.Popen[bytes]],
) -> None:
    layout, process = lookalike
    assert running_pid(layout, 1) == process.pid
    out = io.StringIO()
    kill_node(layout.data_dir, 1, out)
    assert process.wait(timeout=10) == -9
    assert out.getvalue() == f"Killed node 1 (pid {process.pid}) with SIGKILL\n"
    assert running_pid(layout, 1) is None


def test_kill_refuses_a_pid_that_is_not_that_node(tmp_path: Path) -> None:
    layout, _ = prepare(tmp_path, FakeFormatter())
    layout.pid_path(2).write_text(f"{os.getpid()}\n")  # this test process: not a kraft server
    with pytest.raises(LocalClusterError, match="node 2 is not running"):
        kill_node(tmp_path, 2, io.StringIO())


def test_start_refuses_a_node_that_already_runs(
    lookalike: tuple[ClusterLayout, subprocess.Popen[bytes]],
) -> None:
    layout, process = lookalike
    with pytest.raises(LocalClusterError, match=f"node 1 already runs \\(pid {process.pid}\\)"):
        start_node(layout.data_dir, 1, io.StringIO(), io.StringIO(), format_storage=FakeFormatter())


def exited_process(code: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])
    process.wait()
    return process


def test_supervisor_reports_a_node_that_exits_and_does_not_restart_it(tmp_path: Path) -> None:
    layout, _ = prepare(tmp_path, FakeFormatter(), nodes=1)
    process = exited_process(3)
    out = io.StringIO()
    supervisor = Supervisor(layout, out, {1: process})
    supervisor.check()
    assert out.getvalue().startswith(
        f"node 1 (pid {process.pid}) exited with code 3; it stays down"
    )
    supervisor.check()  # reported once
    assert out.getvalue().count("exited") == 1


def test_readiness_waiter_waits_for_every_node(tmp_path: Path) -> None:
    layout, _ = prepare(tmp_path, FakeFormatter(), nodes=2)
    answers = {layout.http_url(1): [True], layout.http_url(2): [False, False, True]}
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        err = io.StringIO()
        waiter = ReadinessWaiter(
            layout, {1: sleeper, 2: sleeper}, err, lambda: False, probe=lambda u: answers[u].pop(0)
        )
        assert waiter.wait(timeout_s=30)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert "node 1 is ready" in err.getvalue()
    assert "node 2 is ready" in err.getvalue()
    assert "waiting for nodes 2 to be ready" in err.getvalue()


def test_readiness_waiter_gives_up_when_a_node_exits(tmp_path: Path) -> None:
    layout, _ = prepare(tmp_path, FakeFormatter(), nodes=1)
    layout.log_path(1).write_text("boom: storage is not formatted\n")
    err = io.StringIO()
    waiter = ReadinessWaiter(layout, {1: exited_process(1)}, err, lambda: False, lambda u: False)
    assert not waiter.wait(timeout_s=30)
    assert "exited with code 1 while starting" in err.getvalue()
    assert "boom: storage is not formatted" in err.getvalue()


def test_cmdline_check_resolves_a_relative_config_against_the_process_cwd(tmp_path: Path) -> None:
    config = tmp_path / "node-1" / "server.properties"
    arguments = ["kraft", "server", "--config", "node-1/server.properties"]
    assert is_kraft_server_cmdline(arguments, config, cwd=tmp_path)
    assert not is_kraft_server_cmdline(arguments, config, cwd=tmp_path / "elsewhere")


def test_exit_codes_name_the_signal_that_killed_a_node() -> None:
    assert describe_exit_code(3) == "with code 3"
    assert describe_exit_code(-9) == "on SIGKILL"


def test_port_offset_that_overflows_the_port_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalClusterError, match="gives node 3 port 65693, above 65535"):
        prepare(tmp_path, FakeFormatter(), port_offset=56400)


# --- cluster up with stand-in nodes ------------------------------------------------------------


def free_http_port_offset(nodes: int) -> int:
    """A port offset at which the HTTP ports of every node are free now, below Linux's
    ephemeral range (32768 on): a port the kernel may hand to an outgoing connection could
    be taken before a stand-in node binds it."""
    for _attempt in range(50):
        offset = random.randrange(20_000, 30_000) - HTTP_PORT_BASE
        if node_ports(nodes, offset).client >= 32_768:
            continue
        with contextlib.ExitStack() as stack:
            try:
                for node_id in range(1, nodes + 1):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", node_ports(node_id, offset).http))
            except OSError:
                continue
        return offset
    raise AssertionError("found no free ports for a stand-in cluster")


def wait_for_text(stream: io.StringIO, text: str, deadline_s: float = 30.0) -> bool:
    give_up_at = time.monotonic() + deadline_s
    while text not in stream.getvalue():
        if time.monotonic() > give_up_at:
            return False
        time.sleep(0.02)
    return True


def test_cluster_up_starts_supervises_and_stops_its_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC §3: nodes as OS processes, endpoints and PIDs printed, a node that dies reported,
    `cluster start` brings it back, SIGTERM stops every node and exits 0."""
    layout, _ = prepare(tmp_path, FakeFormatter(), port_offset=free_http_port_offset(3))
    fake_kraft = tmp_path / "kraft"
    shutil.copy(Path(__file__).with_name("fake_node.py"), fake_kraft)
    monkeypatch.setattr(
        "client.localcluster.node_command",
        lambda config_path: [
            sys.executable,
            str(fake_kraft),
            "server",
            "--config",
            str(config_path),
        ],
    )
    out, err = io.StringIO(), io.StringIO()
    steps: list[str] = []

    def operator() -> None:
        if not wait_for_text(out, "Press Ctrl-C"):
            return  # cluster_up failed and returns by itself
        try:
            kill_node(tmp_path, 2, io.StringIO())
            steps.append("killed")
            if wait_for_text(out, "node 2 (pid"):
                steps.append("reported")
            start_node(tmp_path, 2, io.StringIO(), io.StringIO(), wait_ready=True)
            if wait_for_text(out, "node 2 runs again"):
                steps.append("restarted")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # cluster_up's handler is installed by now

    thread = threading.Thread(target=operator, daemon=True)
    thread.start()
    code = cluster_up(tmp_path, None, None, out, err, ready_timeout_s=30, stop_timeout_s=10)
    thread.join(timeout=30)
    output = out.getvalue()
    assert code == 0, err.getvalue()
    assert steps == ["killed", "reported", "restarted"]
    assert output.count("Started node") == 3
    assert f"http {layout.http_url(3)}" in output
    assert "All 3 nodes are ready. Quorum leader: node 1 (epoch 7, cluster id fake)" in output
    assert "exited on SIGKILL; it stays down" in output
    assert output.endswith("Cluster stopped\n")
    assert "stopping node 2" in err.getvalue()  # the restarted node too
    assert [running_pid(layout, node_id) for node_id in layout.node_ids] == [None, None, None]
