"""What the Kafka-protocol process tests share: a module's three-node cluster, ready, and the
bootstrap list of its client listeners."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.cluster.harness import LocalCluster, wait_for


@contextlib.contextmanager
def ready_cluster(root: Path, extra_config: dict[str, str] | None = None) -> Iterator[LocalCluster]:
    """Three combined nodes, every one ready; stopped on exit."""
    local = LocalCluster(root, extra_config=extra_config or {})
    try:
        local.up()
        wait_for(
            lambda: all(n.get("/v1/status/ready")[0] == 200 for n in local.running()),
            what="every node ready",
        )
        yield local
    finally:
        local.close()


def bootstrap(cluster: LocalCluster) -> str:
    """host:port of the CLIENT listener of every running node."""
    return ",".join(f"127.0.0.1:{node.client_port}" for node in cluster.running())
