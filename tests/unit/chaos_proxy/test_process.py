"""ProxyProcess and `python -m chaos.proxy`: the network in a subprocess, driven by JSON
lines. The echo servers run in the test's event loop, so blocking calls go through
asyncio.to_thread."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chaos.proxy import ProxyCommandError, ProxyError, ProxyProcess

from .conftest import POLL_INTERVAL_S, SEED, Clients, EchoServer, read_until_closed

REPO_ROOT = Path(__file__).resolve().parents[3]
PROCESS_DEADLINE_S = 10.0


@pytest.fixture
async def nodes() -> AsyncIterator[dict[int, EchoServer]]:
    servers = {node: EchoServer(greeting=f"node {node};".encode()) for node in (1, 2, 3)}
    for server in servers.values():
        await server.start()
    yield servers
    for server in servers.values():
        await server.close()


async def wait_for_drop(proxies: ProxyProcess, link: str) -> None:
    """Polls the subprocess's counters until `link` has dropped a chunk."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROCESS_DEADLINE_S
    while (await asyncio.to_thread(proxies.counters))[link].chunks_dropped == 0:
        assert loop.time() < deadline, f"no chunk dropped on {link} in {PROCESS_DEADLINE_S} s"
        await asyncio.sleep(POLL_INTERVAL_S)


async def test_proxy_process_round_trip(
    nodes: dict[int, EchoServer], clients: Clients, tmp_path: Path
) -> None:
    ports = {node: server.port for node, server in nodes.items()}
    proxies = ProxyProcess(ports, SEED, stderr_path=tmp_path / "proxy.log")
    await asyncio.to_thread(proxies.start)
    try:
        assert sorted(proxies.port_map) == [1, 2, 3]
        reader, writer = await clients.open(proxies.port_for(1, 2))
        assert await asyncio.wait_for(reader.readexactly(7), PROCESS_DEADLINE_S) == b"node 2;"

        await asyncio.to_thread(proxies.partition, [{1}, {2, 3}])
        writer.write(b"cut off")
        await writer.drain()
        await wait_for_drop(proxies, "1->2")
        assert nodes[2].bytes_received == 0
        description = await asyncio.to_thread(proxies.describe)
        assert "link 1->2: blackhole" in description
        await asyncio.to_thread(proxies.heal)
        assert await read_until_closed(reader) == b""

        await asyncio.to_thread(proxies.slow, [(2, 1)], 5.0, 1.0)
        await asyncio.to_thread(proxies.lossy, [1], 0.0)
        await asyncio.to_thread(proxies.one_way, 2, 1)
        await asyncio.to_thread(proxies.bridge, {1}, 3, {2})
        counters = await asyncio.to_thread(proxies.counters)
        assert counters["1->2"].connections == 1
        assert counters["1->2"].closed_on_heal == 1
    finally:
        await asyncio.to_thread(proxies.close)
    assert proxies._process is not None
    assert proxies._process.returncode == 0


async def test_proxy_process_reports_a_refused_command_and_stays_usable(
    nodes: dict[int, EchoServer],
) -> None:
    ports = {node: server.port for node, server in nodes.items()}
    proxies = ProxyProcess(ports, SEED)
    await asyncio.to_thread(proxies.start)
    try:
        with pytest.raises(ProxyCommandError, match=r"nodes \[2, 3\] are in no group"):
            await asyncio.to_thread(proxies.partition, [{1}])
        await asyncio.to_thread(proxies.isolate, 2)
    finally:
        await asyncio.to_thread(proxies.close)

    with pytest.raises(ProxyError, match="after it closed"):
        proxies.heal()


def test_proxy_process_closes_as_a_context_manager() -> None:
    with ProxyProcess({1: 9001, 2: 9002}, SEED) as proxies:
        assert proxies.port_for(2, 1) != proxies.port_for(1, 2)

    assert proxies._process is not None
    assert proxies._process.returncode == 0


def test_proxy_process_speaks_json_lines_and_exits_when_stdin_closes() -> None:
    """The protocol without ProxyProcess: port map first, one answer per line, errors for
    bad JSON and unknown commands, exit 0 at the end of stdin. The ports need no listener:
    nothing connects through them."""
    command = [sys.executable, "-m", "chaos.proxy", "--ports", '{"1": 9001, "2": 9002}']
    with subprocess.Popen(
        [*command, "--seed", str(SEED)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        try:
            port_map = json.loads(process.stdout.readline())
            requests = [
                "not json",
                json.dumps({"id": 1, "op": "melt"}),
                json.dumps({"id": 2, "op": "one_way", "args": {"src": 1, "dst": 2}}),
                json.dumps({"id": 3, "op": "describe"}),
            ]
            process.stdin.write("\n".join(requests) + "\n")
            process.stdin.flush()
            replies = [json.loads(process.stdout.readline()) for _ in requests]
            process.stdin.close()
            assert process.wait(timeout=PROCESS_DEADLINE_S) == 0
        finally:
            if process.poll() is None:
                process.kill()

    assert sorted(port_map) == ["1", "2"]
    assert sorted(port_map["1"]) == ["2"]
    assert [reply["ok"] for reply in replies] == [False, False, True, True]
    assert replies[0]["id"] is None
    assert "unknown command 'melt'" in replies[1]["error"]
    assert replies[2] == {"id": 2, "ok": True, "result": None}
    assert "link 1->2: drop_requests" in replies[3]["result"]


def test_proxy_process_that_cannot_start_is_reaped_and_its_error_logged(tmp_path: Path) -> None:
    log = tmp_path / "proxy.log"
    proxies = ProxyProcess({1: 0, 2: 9002}, SEED, stderr_path=log)

    with pytest.raises(ProxyError, match=r"exited \(code 1\) before answering its port map"):
        proxies.start()

    assert proxies._process is not None
    assert proxies._process.returncode == 1
    assert "target port 0 is outside 1..65535" in log.read_text()
