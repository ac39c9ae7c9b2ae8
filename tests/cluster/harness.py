"""Real node processes on loopback for tests: a cluster of `kraft server` processes with their
own ports and data directories, driven over HTTP, killed with real signals.

Every process the harness starts, it stops (`close`), and every wait has a deadline: tests
wait for conditions, never for fixed sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from chaos.cluster import free_ports as chaos_free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DEADLINE_S = 30.0
POLL_INTERVAL_S = 0.05
HTTP_TIMEOUT_S = 2.0

T = TypeVar("T")


class DeadlineExceeded(AssertionError):
    pass


def wait_for(
    condition: Callable[[], T | None], *, deadline_s: float = DEFAULT_DEADLINE_S, what: str
) -> T:
    """Polls `condition` until it returns a truthy value; fails naming `what` at the deadline."""
    give_up_at = time.monotonic() + deadline_s
    last_error: Exception | None = None
    while time.monotonic() < give_up_at:
        try:
            value = condition()
        except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
            last_error = error
            value = None
        if value:
            return value
        time.sleep(POLL_INTERVAL_S)
    raise DeadlineExceeded(f"timed out after {deadline_s}s waiting for {what} ({last_error})")


def free_ports(count: int) -> list[int]:
    """Distinct ports free now, from below Linux's ephemeral range (chaos.cluster's rule):
    a port the kernel hands out for bind(0) or an outgoing connection could be taken
    between this check and the node's bind, and the node would stop at start (seen when
    another test run shared the machine: every wait for the cluster timed out)."""
    return chaos_free_ports(count)


def http_json(
    method: str, url: str, body: dict[str, Any] | None = None, timeout_s: float = HTTP_TIMEOUT_S
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        payload = error.read()
        try:
            return error.code, json.loads(payload)
        except ValueError:
            return error.code, payload.decode(errors="replace")


@dataclass
class NodeProcess:
    node_id: int
    directory: Path
    client_port: int
    rpc_port: int
    http_port: int
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def config_path(self) -> Path:
        return self.directory / "server.properties"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "node.log"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def get(self, path: str) -> tuple[int, Any]:
        return http_json("GET", self.http_url + path)

    def put(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return http_json("PUT", self.http_url + path, body)


@dataclass
class LocalCluster:
    root: Path
    size: int = 3
    observers: int = 0  # broker-only nodes (ids after the voters): quorum observers
    controller_only: bool = False  # voters run process.roles=controller instead of combined
    extra_config: dict[str, str] = field(default_factory=dict)
    nodes: dict[int, NodeProcess] = field(default_factory=dict)
    cluster_id: str = ""

    def __post_init__(self) -> None:
        ports = free_ports(3 * (self.size + self.observers))
        for index in range(self.size + self.observers):
            node_id = index + 1
            self.nodes[node_id] = NodeProcess(
                node_id=node_id,
                directory=self.root / f"node-{node_id}",
                client_port=ports[3 * index],
                rpc_port=ports[3 * index + 1],
                http_port=ports[3 * index + 2],
            )

    # --- setup -----------------------------------------------------------------------------

    def kraft(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "client", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def write_configs(self) -> None:
        voters = ",".join(
            f"{n.node_id}@127.0.0.1:{n.rpc_port}" for n in self.nodes.values() if self.is_voter(n)
        )
        for node in self.nodes.values():
            node.directory.mkdir(parents=True, exist_ok=True)
            values = {
                "process.roles": self.roles_of(node),
                "node.id": str(node.node_id),
                "controller.quorum.voters": voters,
                "listeners": (
                    f"CLIENT://127.0.0.1:{node.client_port},RPC://127.0.0.1:{node.rpc_port},"
                    f"HTTP://127.0.0.1:{node.http_port}"
                ),
                "log.dirs": str(node.directory / "data"),
                "metadata.log.dir": str(node.directory / "metadata"),
                **self.extra_config,
            }
            node.config_path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))

    def is_voter(self, node: NodeProcess) -> bool:
        return node.node_id <= self.size

    def roles_of(self, node: NodeProcess) -> str:
        if not self.is_voter(node):
            return "broker"
        return "controller" if self.controller_only else "broker,controller"

    def format(self, node_id: int | None = None, *, initial: bool = True) -> None:
        if not self.cluster_id:
            self.cluster_id = self.kraft("storage", "random-uuid").stdout.strip()
        targets = [self.nodes[node_id]] if node_id is not None else list(self.nodes.values())
        for node in targets:
            args = ["storage", "format", "--config", str(node.config_path)]
            args += ["--cluster-id", self.cluster_id]
            if not initial:
                args.append("--no-initial-controllers")
            self.kraft(*args)

    def start(self, node_id: int | None = None) -> None:
        targets = [node_id] if node_id is not None else list(self.nodes)
        for target in targets:
            node = self.nodes[target]
            assert not node.is_running(), f"node {target} is already running"
            log_file = node.log_path.open("ab")
            node.process = subprocess.Popen(
                [sys.executable, "-m", "client", "server", "--config", str(node.config_path)],
                cwd=REPO_ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log_file.close()
            node.paused = False

    def up(self) -> LocalCluster:
        self.write_configs()
        self.format()
        self.start()
        self.wait_for_leader()
        return self

    # --- faults ----------------------------------------------------------------------------

    def kill(self, node_id: int) -> None:
        """SIGKILL: no chance to flush or resign."""
        node = self.nodes[node_id]
        assert node.process is not None
        if node.paused:
            os.kill(node.process.pid, signal.SIGCONT)
        node.process.kill()
        node.process.wait(timeout=10)
        node.process = None
        node.paused = False

    def terminate(self, node_id: int, timeout_s: float = 15.0) -> int:
        """SIGTERM: graceful shutdown; returns the exit code."""
        node = self.nodes[node_id]
        assert node.process is not None
        node.process.terminate()
        code = node.process.wait(timeout=timeout_s)
        node.process = None
        return code

    def pause(self, node_id: int) -> None:
        node = self.nodes[node_id]
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGSTOP)
        node.paused = True

    def resume(self, node_id: int) -> None:
        node = self.nodes[node_id]
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGCONT)
        node.paused = False

    def wipe(self, node_id: int) -> None:
        import shutil

        node = self.nodes[node_id]
        assert not node.is_running()
        shutil.rmtree(node.directory / "data", ignore_errors=True)
        shutil.rmtree(node.directory / "metadata", ignore_errors=True)

    def close(self) -> None:
        for node in self.nodes.values():
            if node.process is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                if node.paused:
                    os.kill(node.process.pid, signal.SIGCONT)
                node.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=10)
            node.process = None

    # --- observations ----------------------------------------------------------------------

    def running(self) -> list[NodeProcess]:
        return [n for n in self.nodes.values() if n.is_running() and not n.paused]

    def status_of(self, node_id: int) -> dict[str, Any] | None:
        code, body = self.nodes[node_id].get("/v1/quorum/status")
        return body if code == 200 else None

    def wait_for_leader(
        self, *, excluding: int | None = None, deadline_s: float = DEFAULT_DEADLINE_S
    ) -> int:
        """Waits until every running node names the same leader (not `excluding`)."""

        def agreed_leader() -> int | None:
            leaders = set()
            for node in self.running():
                status = self.status_of(node.node_id)
                if status is None or status.get("leader_id") is None:
                    return None
                leaders.add((status["leader_id"], status["leader_epoch"]))
            if len(leaders) != 1:
                return None
            ((leader_id, _),) = leaders
            if leader_id == excluding or not self.nodes[leader_id].is_running():
                return None
            return int(leader_id)

        return wait_for(agreed_leader, deadline_s=deadline_s, what="an agreed leader")

    def put(self, key: str, value: str, *, deadline_s: float = DEFAULT_DEADLINE_S) -> int:
        """Writes through any running node, retrying across nodes until committed."""

        def attempt() -> int | None:
            for node in self.running():
                with contextlib.suppress(OSError, urllib.error.URLError):
                    code, body = node.put(f"/v1/kv/{key}", {"value": value})
                    if code == 200:
                        return int(body["offset"]) + 1  # +1 keeps offset 0 truthy
            return None

        return wait_for(attempt, deadline_s=deadline_s, what=f"the write of {key}") - 1

    def get(self, node_id: int, key: str) -> str | None:
        code, body = self.nodes[node_id].get(f"/v1/kv/{key}")
        return body["value"] if code == 200 else None

    def logs(self) -> str:
        parts = []
        for node in self.nodes.values():
            if node.log_path.exists():
                tail = node.log_path.read_text(errors="replace").splitlines()[-40:]
                parts.append(f"--- node {node.node_id} ---\n" + "\n".join(tail))
        return "\n".join(parts)
