"""A cluster of combined node processes for a chaos run: every inter-node link runs through
the run's proxies (chaos/proxy.py), so the nemesis can cut, slow or break each direction of
each pair; clients and the harness reach the nodes directly.

Each node's own configuration lists the other voters at the proxy ports for that direction,
so raft traffic and replication fetches (which follow the voters' addresses) both cross the
proxies. Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kraft.rpc.client import RpcClient
from kraft.storage.meta import format_storage, random_cluster_id

REPO_ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 20.0
# The full-disk fault mounts a tmpfs of this size over each node's partition data
# directory (root only) and fills it; the metadata log stays on the real disk.
DATA_DISK_MB = 256
BALLAST_NAME = "ballast"
BALLAST_CHUNK_BYTES = 1024 * 1024
HTTP_TIMEOUT_S = 2.0
METADATA_TIMEOUT_S = 5.0
# Fast failover, as the test clusters run: fencing in 1.5 s, ISR shrink in 1.5 s.
NODE_SETTINGS = {
    "broker.session.timeout.ms": "1500",
    "broker.heartbeat.interval.ms": "300",
    "replica.lag.time.max.ms": "1500",
    "min.insync.replicas": "2",
    "default.replication.factor": "3",
    "log.level": "info",
}


# Node ports come from below Linux's ephemeral range (32768-60999): the proxies and every
# outgoing connection take ephemeral ports, and one taken between our check and the node's
# bind would stop the node at start (seen in a soak: "address already in use").
NODE_PORT_RANGE = (20_000, 32_000)


def free_ports(count: int, rng: random.Random | None = None) -> list[int]:
    """`count` distinct ports in NODE_PORT_RANGE that are free now."""
    rng = rng or random.Random()
    ports: list[int] = []
    while len(ports) < count:
        port = rng.randrange(*NODE_PORT_RANGE)
        if port in ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports


def metadata_view(node_rpc_port: int, topics: list[str]) -> dict[str, Any] | None:
    """{topic: {partition: {leader, leader_epoch, isr, replicas}}} as one node's metadata
    image has it, or None when the node does not answer."""

    async def ask() -> Any:
        client = RpcClient("127.0.0.1", node_rpc_port, None)
        try:
            return await client.request({"kind": "metadata", "topics": topics}, METADATA_TIMEOUT_S)
        finally:
            await client.close()

    try:
        answer = asyncio.run(ask())
    except Exception:  # noqa: BLE001 - a node that does not answer has no view
        return None
    view: dict[str, Any] = {}
    for topic in answer.get("topics", []):
        view[topic["topic"]] = {
            str(p["partition"]): {
                "leader": p["leader"],
                "leader_epoch": p["leader_epoch"],
                "isr": sorted(p["isr"]),
                "replicas": list(p["replicas"]),
            }
            for p in topic["partitions"]
        }
    return view


@dataclass
class ChaosNode:
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
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def metadata_dir(self) -> Path:
        return self.directory / "metadata"

    @property
    def log_path(self) -> Path:
        return self.directory / "node.log"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def rpc_address(self) -> str:
        return f"127.0.0.1:{self.rpc_port}"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def get_json(self, path: str) -> Any:
        """GET one of the node's HTTP routes; None when it does not answer 200."""
        try:
            with urllib.request.urlopen(self.http_url + path, timeout=HTTP_TIMEOUT_S) as answer:
                return json.loads(answer.read())
        except (OSError, urllib.error.URLError, ValueError):
            return None


class ChaosCluster:
    def __init__(self, root: Path, size: int) -> None:
        """Ports are chosen now; start the proxies in front of `rpc_ports()` and set
        `proxy_ports` (`proxy_ports[(a, b)]`: where node a reaches node b's rpc listener)
        before `up()`."""
        self.root = root
        self.size = size
        self.cluster_id = random_cluster_id()
        ports = free_ports(3 * size)
        self.nodes = {
            node_id: ChaosNode(
                node_id,
                root / f"node-{node_id}",
                ports[3 * (node_id - 1)],
                ports[3 * (node_id - 1) + 1],
                ports[3 * (node_id - 1) + 2],
            )
            for node_id in range(1, size + 1)
        }
        self.proxy_ports: dict[tuple[int, int], int] = {}
        self.mounted: list[Path] = []  # data directories on their own small tmpfs

    def mount_data_disks(self) -> str | None:
        """Gives every node's data directory its own DATA_DISK_MB tmpfs, so one can fill
        up. Returns why it could not (not root, mount refused), or None."""
        if os.geteuid() != 0:
            return "mounting a small disk per node needs root"
        for node in self.nodes.values():
            node.data_dir.mkdir(parents=True, exist_ok=True)
            result = subprocess.run(
                [
                    "mount",
                    "-t",
                    "tmpfs",
                    "-o",
                    f"size={DATA_DISK_MB}m",
                    "tmpfs",
                    str(node.data_dir),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                self.unmount_data_disks()
                return f"mount refused: {result.stderr.strip() or result.returncode}"
            self.mounted.append(node.data_dir)
        return None

    def unmount_data_disks(self) -> None:
        for directory in self.mounted:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True, check=False)
        self.mounted = []

    def fill_disk(self, node_id: int) -> int:
        """Writes a ballast file until the node's data disk is full; returns its size."""
        node = self.nodes[node_id]
        assert node.data_dir in self.mounted, "fill only a disk of its own"
        written = 0
        chunk = b"\0" * BALLAST_CHUNK_BYTES
        with contextlib.suppress(OSError), (node.data_dir / BALLAST_NAME).open("ab") as out:
            while True:
                written += out.write(chunk)
                out.flush()
        return written

    def free_disk(self, node_id: int) -> None:
        (self.nodes[node_id].data_dir / BALLAST_NAME).unlink(missing_ok=True)

    def rpc_ports(self) -> dict[int, int]:
        return {node_id: node.rpc_port for node_id, node in self.nodes.items()}

    # -- setup -------------------------------------------------------------------------------

    def write_configs(self) -> None:
        assert len(self.proxy_ports) == self.size * (self.size - 1), "proxies first"
        for node in self.nodes.values():
            node.directory.mkdir(parents=True, exist_ok=True)
            voters = ",".join(
                f"{other.node_id}@127.0.0.1:"
                + str(
                    other.rpc_port
                    if other.node_id == node.node_id
                    else self.proxy_ports[(node.node_id, other.node_id)]
                )
                for other in self.nodes.values()
            )
            values = {
                "process.roles": "broker,controller",
                "node.id": str(node.node_id),
                "controller.quorum.voters": voters,
                "listeners": (
                    f"CLIENT://127.0.0.1:{node.client_port},RPC://127.0.0.1:{node.rpc_port},"
                    f"HTTP://127.0.0.1:{node.http_port}"
                ),
                "log.dirs": str(node.data_dir),
                "metadata.log.dir": str(node.metadata_dir),
                **NODE_SETTINGS,
            }
            node.config_path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))

    def format(self, node_id: int, *, ignore_formatted: bool = False) -> None:
        node = self.nodes[node_id]
        format_storage(
            [node.data_dir, node.metadata_dir],
            self.cluster_id,
            node_id,
            ignore_formatted=ignore_formatted,
        )

    # -- processes ---------------------------------------------------------------------------

    def start(self, node_id: int) -> None:
        """Starts the node unless it runs already (overlapping faults may both restart it)."""
        node = self.nodes[node_id]
        if node.is_running():
            return
        with node.log_path.open("ab") as log_file:
            node.process = subprocess.Popen(
                [sys.executable, "-m", "client", "server", "--config", str(node.config_path)],
                cwd=REPO_ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        node.paused = False

    def kill(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.process is None:
            return
        if node.paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.process.pid, signal.SIGCONT)
        node.process.kill()
        node.process.wait(timeout=STOP_TIMEOUT_S)
        node.process = None
        node.paused = False

    def terminate(self, node_id: int) -> int | None:
        """SIGTERM and wait (a graceful stop: controlled shutdown, quorum resignation)."""
        node = self.nodes[node_id]
        if node.process is None:
            return None
        if node.paused:
            self.resume(node_id)
        node.process.terminate()
        try:
            code = node.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            node.process.kill()
            code = node.process.wait()
        node.process = None
        return code

    def pause(self, node_id: int) -> None:
        """SIGSTOP; a no-op for a node that is not running (it may have stopped by itself,
        as a broker does after a failed write on a full disk)."""
        node = self.nodes[node_id]
        if node.is_running() and not node.paused:
            assert node.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.process.pid, signal.SIGSTOP)
                node.paused = True

    def resume(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.process is not None and node.paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.process.pid, signal.SIGCONT)
            node.paused = False

    def wipe_data(self, node_id: int) -> None:
        """The node's partition data is lost for good (its metadata log is kept, so it stays
        a voter): the data directory is deleted and formatted anew."""
        node = self.nodes[node_id]
        if node.is_running():
            self.kill(node_id)
        shutil.rmtree(node.data_dir, ignore_errors=True)  # a mount point itself stays
        self.format(node_id, ignore_formatted=True)

    def up(self) -> None:
        self.write_configs()
        for node_id in self.nodes:
            self.format(node_id)
        for node_id in self.nodes:
            self.start(node_id)

    def close(self) -> None:
        for node_id in self.nodes:
            with contextlib.suppress(ProcessLookupError, OSError):
                self.kill(node_id)
        self.unmount_data_disks()

    # -- observations ------------------------------------------------------------------------

    def running(self) -> list[ChaosNode]:
        return [node for node in self.nodes.values() if node.is_running() and not node.paused]

    def fully_in_sync(self, topics: list[str]) -> bool:
        """Every partition of `topics` has a leader and all its replicas in its ISR, as every
        running node that answers sees it (at least one must). One node's view is not
        enough: a node just restarted may still answer from an old image in which all was
        in sync (kraft chaos --mixed, seed 201: a wipe then struck while another replica's
        data was already gone)."""
        views = [metadata_view(node.rpc_port, topics) for node in self.running()]
        answered = [view for view in views if view is not None]
        return bool(answered) and all(
            bool(view.get(topic))
            and all(
                p["leader"] >= 0 and len(p["isr"]) == len(p["replicas"])
                for p in view[topic].values()
            )
            for view in answered
            for topic in topics
        )

    def controller_id(self) -> int | None:
        """The active controller as a majority of running nodes report it."""
        votes: dict[int, int] = {}
        for node in self.running():
            status = node.get_json("/v1/quorum/status")
            leader = None if status is None else status.get("leader_id")
            if isinstance(leader, int) and leader >= 0:
                votes[leader] = votes.get(leader, 0) + 1
        if not votes:
            return None
        leader, count = max(votes.items(), key=lambda item: item[1])
        return leader if count > self.size // 2 else None

    def wait_until(self, condition: Any, deadline_s: float) -> bool:
        give_up_at = time.monotonic() + deadline_s
        while time.monotonic() < give_up_at:
            try:
                if condition():
                    return True
            except (OSError, ValueError, KeyError, TypeError):
                pass
            time.sleep(0.1)
        return False
