"""The local cluster of SPEC §3: N combined nodes on one host, one OS process each.

`kraft cluster up` lays the cluster out in a data directory the first time (a cluster id,
DIR/cluster.json, and for each node N DIR/node-N/server.properties and formatted storage),
starts every node as its own process (own process group, output to DIR/node-N/node.log, pid
in DIR/node-N/node.pid), waits until each answers /v1/status/ready, then supervises them in
the foreground until Ctrl-C or SIGTERM, when it stops them (SIGTERM, then SIGKILL after a
deadline). Later runs reuse the layout and the data. `kraft cluster kill N` and `kraft cluster
start N` act on one node of that directory from another terminal; they find it by its pid file
and check, through /proc/PID/cmdline, that the pid really is that node before signalling it.

Ports of node N are 9092/9093/8082 (client/rpc/http) + 100*(N-1) + the cluster's port offset
(`--port-offset`, recorded in cluster.json so that every command agrees; tests use it to run
on free ports).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TextIO

from client.admin import AdminClient, AdminError, http_json
from kraft.config import ConfigError, NodeConfig, load_config, render_properties

DATA_DIR_DEFAULT = Path(".kraft-data")
CLUSTER_FILE_NAME = "cluster.json"
CLUSTER_FILE_VERSION = 1
NODES_DEFAULT = 3
NODES_MAX = 50
CLIENT_PORT_BASE = 9092
RPC_PORT_BASE = 9093
HTTP_PORT_BASE = 8082
PORT_STEP_PER_NODE = 100
PORT_MAX = 65_535
HOST = "127.0.0.1"

READY_TIMEOUT_S_DEFAULT = 60.0
STOP_TIMEOUT_S_DEFAULT = 15.0
KILL_WAIT_S = 5.0
POLL_INTERVAL_S = 0.1
PROGRESS_INTERVAL_S = 2.0
PROBE_TIMEOUT_S = 1.0
LOG_TAIL_LINES = 20
META_PROPERTIES = "meta.properties"


class LocalClusterError(Exception):
    """The local cluster cannot do what was asked; the message says why and what to do."""


class FormatStorage(Protocol):
    """kraft.storage.meta.format_storage, injectable for tests."""

    def __call__(
        self,
        dirs: Sequence[Path],
        cluster_id: str,
        node_id: int,
        *,
        initial_voters: bool,
        ignore_formatted: bool,
    ) -> None: ...


def real_format_storage(
    dirs: Sequence[Path],
    cluster_id: str,
    node_id: int,
    *,
    initial_voters: bool,
    ignore_formatted: bool,
) -> None:
    # Imported lazily, so that the admin commands work without the storage code.
    from kraft.storage.meta import StorageError, format_storage

    try:
        format_storage(
            list(dirs),
            cluster_id,
            node_id,
            initial_voters=initial_voters,
            ignore_formatted=ignore_formatted,
        )
    except StorageError as error:
        raise LocalClusterError(f"node {node_id}: cannot format its storage: {error}") from error


def real_random_cluster_id() -> str:
    from kraft.storage.meta import random_cluster_id

    return random_cluster_id()


# --- Layout -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodePorts:
    client: int
    rpc: int
    http: int


def node_ports(node_id: int, port_offset: int = 0) -> NodePorts:
    """SPEC §3: node 1 has 9092/9093/8082, each next node 100 more; plus the offset."""
    assert node_id >= 1, f"local node ids start at 1, not {node_id}"
    shift = PORT_STEP_PER_NODE * (node_id - 1) + port_offset
    return NodePorts(CLIENT_PORT_BASE + shift, RPC_PORT_BASE + shift, HTTP_PORT_BASE + shift)


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    data_dir: Path  # absolute
    cluster_id: str
    nodes: int
    port_offset: int

    @property
    def node_ids(self) -> range:
        return range(1, self.nodes + 1)

    def node_dir(self, node_id: int) -> Path:
        return self.data_dir / f"node-{node_id}"

    def config_path(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "server.properties"

    def log_path(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "node.log"

    def pid_path(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "node.pid"

    def ports(self, node_id: int) -> NodePorts:
        return node_ports(node_id, self.port_offset)

    def http_url(self, node_id: int) -> str:
        return f"http://{HOST}:{self.ports(node_id).http}"

    @property
    def bootstrap(self) -> list[str]:
        return [self.http_url(node_id) for node_id in self.node_ids]

    def check_node_id(self, node_id: int) -> None:
        if node_id not in self.node_ids:
            raise LocalClusterError(
                f"node {node_id} is not part of the cluster in {self.data_dir}: "
                f"its nodes are 1 to {self.nodes}"
            )

    def node_properties(self, node_id: int) -> dict[str, str]:
        """server.properties of combined node `node_id`."""
        self.check_node_id(node_id)
        ports = self.ports(node_id)
        voters = ",".join(f"{n}@{HOST}:{self.ports(n).rpc}" for n in self.node_ids)
        # Kafka's production advice (RF 3, min ISR 2) whenever the cluster is big enough.
        replication_factor = min(3, self.nodes)
        min_insync_replicas = 2 if replication_factor >= 3 else 1
        node_dir = self.node_dir(node_id)
        return {
            "process.roles": "broker,controller",
            "node.id": str(node_id),
            "controller.quorum.voters": voters,
            "listeners": (
                f"CLIENT://{HOST}:{ports.client},RPC://{HOST}:{ports.rpc},"
                f"HTTP://{HOST}:{ports.http}"
            ),
            "log.dirs": str(node_dir / "data"),
            "metadata.log.dir": str(node_dir / "metadata"),
            "default.replication.factor": str(replication_factor),
            "min.insync.replicas": str(min_insync_replicas),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CLUSTER_FILE_VERSION,
            "cluster_id": self.cluster_id,
            "nodes": self.nodes,
            "port_offset": self.port_offset,
        }


def cluster_file(data_dir: Path) -> Path:
    return data_dir / CLUSTER_FILE_NAME


def load_layout(data_dir: Path) -> ClusterLayout:
    """The cluster recorded in DATA_DIR/cluster.json."""
    data_dir = data_dir.resolve()
    path = cluster_file(data_dir)
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LocalClusterError(
            f"no local cluster in {data_dir} ({path.name} is missing): run `kraft cluster up` first"
        ) from None
    except (OSError, ValueError) as error:
        raise LocalClusterError(f"cannot read {path}: {error}") from error
    try:
        layout = ClusterLayout(
            data_dir=data_dir,
            cluster_id=str(recorded["cluster_id"]),
            nodes=int(recorded["nodes"]),
            port_offset=int(recorded["port_offset"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise LocalClusterError(f"{path} is malformed ({error!r}): remove {data_dir}") from error
    if recorded.get("version") != CLUSTER_FILE_VERSION:
        raise LocalClusterError(
            f"{path} has version {recorded.get('version')!r}; this kraft reads version "
            f"{CLUSTER_FILE_VERSION}"
        )
    return layout


def save_layout(layout: ClusterLayout) -> None:
    path = cluster_file(layout.data_dir)
    _write_atomically(path, json.dumps(layout.to_json(), indent=2) + "\n")


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def check_nodes_and_offset(nodes: int | None, port_offset: int | None) -> None:
    if nodes is not None and not 1 <= nodes <= NODES_MAX:
        raise LocalClusterError(f"--nodes {nodes} is out of range: it must be in [1, {NODES_MAX}]")
    if port_offset is not None and port_offset < 0:
        raise LocalClusterError(f"--port-offset {port_offset} is negative")
    highest = node_ports(nodes or NODES_DEFAULT, port_offset or 0)
    highest_port = max(highest.client, highest.rpc, highest.http)
    if highest_port > PORT_MAX:
        raise LocalClusterError(
            f"--port-offset {port_offset} gives node {nodes or NODES_DEFAULT} port "
            f"{highest_port}, above {PORT_MAX}"
        )


def prepare_cluster(
    data_dir: Path,
    nodes: int | None,
    port_offset: int | None,
    out: TextIO,
    *,
    new_cluster_id: Callable[[], str] = real_random_cluster_id,
    format_storage: FormatStorage = real_format_storage,
) -> ClusterLayout:
    """Lays the cluster out the first time, or checks and completes an existing layout.

    `nodes`/`port_offset` None mean "as recorded" (or the defaults, the first time)."""
    check_nodes_and_offset(nodes, port_offset)
    data_dir = data_dir.resolve()
    if cluster_file(data_dir).exists():
        layout = load_layout(data_dir)
        _check_matches_recorded(layout, nodes, port_offset)
        out.write(
            f"Reusing cluster {layout.cluster_id} in {data_dir} "
            f"({layout.nodes} nodes, port offset {layout.port_offset})\n"
        )
        for node_id in layout.node_ids:
            ensure_node_config(layout, node_id)
            maybe_format_replacement(layout, node_id, out, format_storage)
        return layout
    leftovers = sorted(data_dir.glob("node-*")) if data_dir.exists() else []
    if leftovers:
        raise LocalClusterError(
            f"{data_dir} holds node directories ({leftovers[0].name}, ...) but no "
            f"{CLUSTER_FILE_NAME}: remove {data_dir} or choose another --data-dir"
        )
    layout = ClusterLayout(
        data_dir=data_dir,
        cluster_id=new_cluster_id(),
        nodes=NODES_DEFAULT if nodes is None else nodes,
        port_offset=0 if port_offset is None else port_offset,
    )
    for node_id in layout.node_ids:
        ensure_node_config(layout, node_id)
        config = node_config(layout, node_id)
        format_storage(
            config.storage_dirs,
            layout.cluster_id,
            node_id,
            initial_voters=True,
            ignore_formatted=False,
        )
    # Written last: a layout without cluster.json is refused above, so an interrupted first
    # run is noticed rather than half-reused.
    save_layout(layout)
    out.write(f"Created cluster {layout.cluster_id} with {layout.nodes} nodes in {data_dir}\n")
    return layout


def _check_matches_recorded(layout: ClusterLayout, nodes: int | None, offset: int | None) -> None:
    if nodes is not None and nodes != layout.nodes:
        raise LocalClusterError(
            f"--nodes {nodes} differs from the {layout.nodes} nodes of the cluster in "
            f"{layout.data_dir}: drop --nodes, or use another --data-dir"
        )
    if offset is not None and offset != layout.port_offset:
        raise LocalClusterError(
            f"--port-offset {offset} differs from the offset {layout.port_offset} of the "
            f"cluster in {layout.data_dir}: drop --port-offset, or use another --data-dir"
        )


def ensure_node_config(layout: ClusterLayout, node_id: int) -> bool:
    """Writes node N's server.properties unless it exists (a user's edits are kept)."""
    path = layout.config_path(node_id)
    if path.exists():
        return False
    _write_atomically(path, render_properties(layout.node_properties(node_id)))
    return True


def node_config(layout: ClusterLayout, node_id: int) -> NodeConfig:
    try:
        return load_config(layout.config_path(node_id))
    except ConfigError as error:
        raise LocalClusterError(f"node {node_id}: {error}") from error


def storage_is_formatted(config: NodeConfig) -> bool:
    return all((directory / META_PROPERTIES).exists() for directory in config.storage_dirs)


def maybe_format_replacement(
    layout: ClusterLayout, node_id: int, out: TextIO, format_storage: FormatStorage
) -> bool:
    """Formats node N's storage when some of it is missing, as a replacement voter (no
    initial voters: docs/decisions/0001-lost-voter-storage.md). True if it did."""
    config = node_config(layout, node_id)
    if storage_is_formatted(config):
        return False
    format_storage(
        config.storage_dirs,
        layout.cluster_id,
        node_id,
        initial_voters=False,
        ignore_formatted=True,
    )
    out.write(
        f"Node {node_id} had no formatted storage: formatted it with --no-initial-controllers; "
        "it rejoins as an observer (see docs/decisions/0001-lost-voter-storage.md)\n"
    )
    return True


# --- Processes --------------------------------------------------------------------------------


def node_command(config_path: Path) -> list[str]:
    return [sys.executable, "-m", "client", "server", "--config", str(config_path)]


def _child_environment() -> dict[str, str]:
    # The node runs `python -m client` from its data directory; make sure it finds the
    # package this command came from even when that is a checkout, not an installation.
    environment = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[1])
    existing = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = package_root + (os.pathsep + existing if existing else "")
    return environment


def spawn_node(layout: ClusterLayout, node_id: int) -> subprocess.Popen[bytes]:
    """Starts node N in its own process group, output appended to its log, pid recorded."""
    config_path = layout.config_path(node_id)
    try:
        with layout.log_path(node_id).open("ab") as log_file:
            process = subprocess.Popen(
                node_command(config_path),
                cwd=layout.node_dir(node_id),
                env=_child_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except OSError as error:
        raise LocalClusterError(f"cannot start node {node_id}: {error}") from error
    _write_atomically(layout.pid_path(node_id), f"{process.pid}\n")
    return process


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def process_cmdline(pid: int) -> list[str] | None:
    """The arguments of live process `pid`; None if it is gone or a zombie."""
    if not Path("/proc/self").exists():
        return _ps_cmdline(pid)
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text(encoding="utf-8", errors="replace")
        raw = (proc / "cmdline").read_bytes()
    except OSError:
        return None
    state = stat.rpartition(")")[2].split()[:1]
    if state == ["Z"] or state == ["X"]:
        return None
    return [part.decode("utf-8", errors="replace") for part in raw.split(b"\0") if part]


def _ps_cmdline(pid: int) -> list[str] | None:
    # Without /proc (macOS): ps, whose command column loses the quoting of arguments.
    try:
        result = subprocess.run(
            ["ps", "-o", "stat=", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S * 5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    fields = result.stdout.split()
    if result.returncode != 0 or not fields or fields[0].startswith("Z"):
        return None
    return fields[1:]


def process_cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def is_kraft_server_cmdline(
    arguments: Sequence[str], config_path: Path, cwd: Path | None = None
) -> bool:
    """True if `arguments` run `kraft server --config <config_path>` (as python -m client or
    as the kraft script); a relative --config is taken relative to `cwd`, the process's."""
    arguments = list(arguments)
    runs_kraft = any(Path(argument).name == "kraft" for argument in arguments[:2]) or any(
        first == "-m" and second == "client"
        for first, second in zip(arguments, arguments[1:], strict=False)
    )
    if not runs_kraft or "server" not in arguments:
        return False
    expected = config_path.resolve()
    for index, argument in enumerate(arguments):
        if argument == "--config" and index + 1 < len(arguments):
            given = arguments[index + 1]
        elif argument.startswith("--config="):
            given = argument.removeprefix("--config=")
        else:
            continue
        given_path = Path(given) if cwd is None else cwd / given
        if given_path.resolve() == expected:
            return True
    return False


def running_pid(layout: ClusterLayout, node_id: int) -> int | None:
    """The pid of node N's server process if it is alive, per its pid file and cmdline."""
    pid = read_pid(layout.pid_path(node_id))
    if pid is None:
        return None
    arguments = process_cmdline(pid)
    if arguments is None:
        return None
    if not is_kraft_server_cmdline(arguments, layout.config_path(node_id), process_cwd(pid)):
        return None
    return pid


def _wait_until_gone(pid: int, timeout_s: float) -> bool:
    give_up_at = time.monotonic() + timeout_s
    while process_cmdline(pid) is not None:
        if time.monotonic() >= give_up_at:
            return False
        time.sleep(POLL_INTERVAL_S)
    return True


def describe_node(layout: ClusterLayout, node_id: int, pid: int) -> str:
    ports = layout.ports(node_id)
    return (
        f"node {node_id}  pid {pid}  client {HOST}:{ports.client}  rpc {HOST}:{ports.rpc}  "
        f"http {layout.http_url(node_id)}  log {layout.log_path(node_id)}"
    )


def describe_exit_code(returncode: int) -> str:
    """How a process ended, from Popen.returncode (negative: killed by that signal)."""
    if returncode < 0:
        try:
            return f"on {signal.Signals(-returncode).name}"
        except ValueError:
            return f"on signal {-returncode}"
    return f"with code {returncode}"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# --- kill / start -----------------------------------------------------------------------------


def kill_node(data_dir: Path, node_id: int, out: TextIO) -> None:
    """SIGKILLs node N of the cluster in data_dir: no chance to flush or resign."""
    layout = load_layout(data_dir)
    layout.check_node_id(node_id)
    pid = running_pid(layout, node_id)
    if pid is None:
        raise LocalClusterError(
            f"node {node_id} is not running: no live `kraft server --config "
            f"{layout.config_path(node_id)}` process has the pid in {layout.pid_path(node_id)}"
        )
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_until_gone(pid, KILL_WAIT_S):
        raise LocalClusterError(
            f"node {node_id} (pid {pid}) still runs {KILL_WAIT_S:g}s after SIGKILL"
        )
    out.write(f"Killed node {node_id} (pid {pid}) with SIGKILL\n")


def start_node(
    data_dir: Path,
    node_id: int,
    out: TextIO,
    err: TextIO,
    *,
    wait_ready: bool = False,
    ready_timeout_s: float = READY_TIMEOUT_S_DEFAULT,
    format_storage: FormatStorage = real_format_storage,
) -> int:
    """Starts node N again, detached (it outlives this command). Returns an exit code."""
    layout = load_layout(data_dir)
    layout.check_node_id(node_id)
    pid = running_pid(layout, node_id)
    if pid is not None:
        raise LocalClusterError(f"node {node_id} already runs (pid {pid})")
    if ensure_node_config(layout, node_id):
        out.write(f"Wrote {layout.config_path(node_id)}\n")
    maybe_format_replacement(layout, node_id, out, format_storage)
    process = spawn_node(layout, node_id)
    out.write(f"Started {describe_node(layout, node_id, process.pid)}\n")
    out.flush()
    if not wait_ready:
        return 0
    waiter = ReadinessWaiter(layout, {node_id: process}, err, lambda: False)
    return 0 if waiter.wait(ready_timeout_s) else 1


# --- up: start, wait, supervise, stop ---------------------------------------------------------


def probe_ready(url: str) -> bool:
    try:
        status, body, _headers = http_json(
            "GET", url + "/v1/status/ready", timeout_s=PROBE_TIMEOUT_S
        )
    except OSError:
        return False
    return status == 200 and isinstance(body, dict) and body.get("status") == "ready"


class ReadinessWaiter:
    """Waits until every node in `processes` answers ready, printing progress to `err`; gives
    up at the deadline, when a node exits, or when `should_stop()` says so."""

    def __init__(
        self,
        layout: ClusterLayout,
        processes: dict[int, subprocess.Popen[bytes]],
        err: TextIO,
        should_stop: Callable[[], bool],
        probe: Callable[[str], bool] = probe_ready,
    ) -> None:
        self.layout = layout
        self.processes = processes
        self.err = err
        self.should_stop = should_stop
        self.probe = probe

    def wait(self, timeout_s: float) -> bool:
        started = time.monotonic()
        ready: set[int] = set()
        next_progress = started
        while not self.should_stop():
            for node_id, process in self.processes.items():
                if process.poll() is not None:
                    self.err.write(
                        f"node {node_id} (pid {process.pid}) exited "
                        f"{describe_exit_code(process.returncode)} while starting; last lines of "
                        f"{self.layout.log_path(node_id)}:\n"
                        f"{log_tail(self.layout.log_path(node_id))}\n"
                    )
                    return False
                if node_id not in ready and self.probe(self.layout.http_url(node_id)):
                    ready.add(node_id)
                    self.err.write(f"node {node_id} is ready\n")
            if len(ready) == len(self.processes):
                return True
            now = time.monotonic()
            if now - started >= timeout_s:
                waiting = sorted(set(self.processes) - ready)
                self.err.write(
                    f"gave up after {timeout_s:g}s: nodes {_ids(waiting)} are not ready; "
                    f"see their logs in {self.layout.data_dir}\n"
                )
                return False
            if now >= next_progress:
                waiting = sorted(set(self.processes) - ready)
                self.err.write(
                    f"waiting for nodes {_ids(waiting)} to be ready "
                    f"({now - started:.1f}s of {timeout_s:g}s)\n"
                )
                next_progress = now + PROGRESS_INTERVAL_S
            self.err.flush()
            time.sleep(POLL_INTERVAL_S)
        return False


def _ids(node_ids: Sequence[int]) -> str:
    return ",".join(str(node_id) for node_id in node_ids)


class StopSignals:
    """SIGINT/SIGTERM set a flag instead of raising, while installed; a second signal asks
    for a forced stop."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    @property
    def requested(self) -> bool:
        return self.count > 0

    @property
    def forced(self) -> bool:
        return self.count > 1

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignals]:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for signum, previous in self._previous.items():
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)


@dataclass
class Supervisor:
    """The nodes `cluster up` started, and those `cluster start` started since."""

    layout: ClusterLayout
    out: TextIO
    children: dict[int, subprocess.Popen[bytes]]

    def __post_init__(self) -> None:
        self.known_pids: dict[int, int | None] = {n: p.pid for n, p in self.children.items()}

    def check(self) -> None:
        """Reports nodes that exited on their own, or came back; restarts nothing."""
        for node_id in self.layout.node_ids:
            pid = self._current_pid(node_id)
            previous = self.known_pids.get(node_id)
            if pid == previous:
                continue
            if previous is not None:
                self.out.write(
                    f"node {node_id} (pid {previous}) exited{self._exit_note(node_id, previous)}"
                    f"; it stays down (`kraft cluster start {node_id}` restarts it); log: "
                    f"{self.layout.log_path(node_id)}\n"
                )
            if pid is not None:
                self.out.write(f"node {node_id} runs again (pid {pid})\n")
            self.known_pids[node_id] = pid
            self.out.flush()

    def _current_pid(self, node_id: int) -> int | None:
        child = self.children.get(node_id)
        if child is not None and child.poll() is None:
            return child.pid
        return running_pid(self.layout, node_id)

    def _exit_note(self, node_id: int, pid: int) -> str:
        child = self.children.get(node_id)
        if child is None or child.pid != pid or child.returncode is None:
            return ""  # not our child (started by `kraft cluster start`): its code is unknown
        return " " + describe_exit_code(child.returncode)

    def live_pids(self) -> dict[int, int]:
        pids = {}
        for node_id in self.layout.node_ids:
            child = self.children.get(node_id)
            if child is not None and child.poll() is None:
                pids[node_id] = child.pid
            elif (pid := running_pid(self.layout, node_id)) is not None:
                pids[node_id] = pid
        return pids

    def stop_all(self, err: TextIO, timeout_s: float, forced: Callable[[], bool]) -> None:
        """SIGTERM every live node, wait up to timeout_s, then SIGKILL the stragglers."""
        pids = self.live_pids()
        for node_id, pid in pids.items():
            err.write(f"stopping node {node_id} (pid {pid})\n")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        give_up_at = time.monotonic() + timeout_s
        while pids and time.monotonic() < give_up_at and not forced():
            for child in self.children.values():
                child.poll()  # reap our own children so that they do not linger as zombies
            pids = {n: p for n, p in pids.items() if process_cmdline(p) is not None}
            time.sleep(POLL_INTERVAL_S)
        for node_id, pid in pids.items():
            err.write(f"node {node_id} (pid {pid}) did not stop in {timeout_s:g}s: SIGKILL\n")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for child in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=KILL_WAIT_S)
        err.flush()


def cluster_up(
    data_dir: Path,
    nodes: int | None,
    port_offset: int | None,
    out: TextIO,
    err: TextIO,
    *,
    ready_timeout_s: float = READY_TIMEOUT_S_DEFAULT,
    stop_timeout_s: float = STOP_TIMEOUT_S_DEFAULT,
) -> int:
    """`kraft cluster up`: returns the exit code once the cluster was stopped."""
    layout = prepare_cluster(data_dir, nodes, port_offset, out)
    for node_id in layout.node_ids:
        pid = running_pid(layout, node_id)
        if pid is not None:
            raise LocalClusterError(
                f"node {node_id} already runs (pid {pid}): stop the other `kraft cluster up`, "
                f"or `kraft cluster kill {node_id}`"
            )
    signals = StopSignals()
    with signals.installed():
        supervisor = Supervisor(layout, out, {})
        try:
            return _run_cluster(layout, supervisor, signals, out, err, ready_timeout_s)
        finally:
            supervisor.stop_all(err, stop_timeout_s, lambda: signals.forced)
            out.write("Cluster stopped\n")
            out.flush()


def _run_cluster(
    layout: ClusterLayout,
    supervisor: Supervisor,
    signals: StopSignals,
    out: TextIO,
    err: TextIO,
    ready_timeout_s: float,
) -> int:
    for node_id in layout.node_ids:
        process = spawn_node(layout, node_id)
        supervisor.children[node_id] = process
        supervisor.known_pids[node_id] = process.pid
        out.write(f"Started {describe_node(layout, node_id, process.pid)}\n")
    out.flush()
    waiter = ReadinessWaiter(layout, dict(supervisor.children), err, lambda: signals.requested)
    if not waiter.wait(ready_timeout_s):
        return 0 if signals.requested else 1
    out.write(f"All {layout.nodes} nodes are ready. {leader_line(layout)}\n")
    out.write(f"Bootstrap: {','.join(layout.bootstrap)}\n")
    out.write("Press Ctrl-C to stop the cluster.\n")
    out.flush()
    while not signals.requested:
        supervisor.check()
        time.sleep(POLL_INTERVAL_S)
    return 0


def leader_line(layout: ClusterLayout) -> str:
    client = AdminClient(layout.bootstrap, timeout_s=5.0)
    try:
        status = client.quorum_status()
    except AdminError as error:
        return f"Quorum leader: unknown ({error.message})"
    return (
        f"Quorum leader: node {status.get('leader_id')} "
        f"(epoch {status.get('leader_epoch')}, cluster id {status.get('cluster_id')})"
    )
