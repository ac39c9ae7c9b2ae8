"""client.cli: argument parsing, exit codes and output (SPEC §4: 0 ok, 1 error, 2 usage,
10 unhealthy; quorum output as kafka-metadata-quorum.sh prints it)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from client.cli import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_UNHEALTHY,
    EXIT_USAGE,
    main,
    render_health,
    render_quorum_replication,
    render_quorum_status,
)
from kraft.config import NodeConfig, render_properties
from tests.unit.cli.conftest import ServerFactory

STATUS = {
    "cluster_id": "fMCL8kv1SWm87L_Md-I2hg",
    "leader_id": 2,
    "leader_epoch": 5,
    "high_watermark": 120,
    "max_follower_lag": 3,
    "max_follower_lag_time_ms": 40,
    "current_voters": [1, 2, 3],
    "current_observers": [],
}
REPLICATION = {
    "replicas": [
        {
            "node_id": 2,
            "log_end_offset": 120,
            "lag": 0,
            "last_fetch_timestamp": 1700000000123,
            "last_caught_up_timestamp": 1700000000123,
            "status": "Leader",
        },
        {
            "node_id": 1,
            "log_end_offset": 117,
            "lag": 3,
            "last_fetch_timestamp": None,
            "last_caught_up_timestamp": None,
            "status": "Follower",
        },
    ]
}


@pytest.fixture(autouse=True)
def no_kraft_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KRAFT_"):
            monkeypatch.delenv(name)


def node_properties(tmp_path: Path, **extra: str) -> Path:
    values = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": "1@127.0.0.1:9093",
        "log.dirs": str(tmp_path / "data"),
        "metadata.log.dir": str(tmp_path / "metadata"),
        **extra,
    }
    path = tmp_path / "server.properties"
    path.write_text(render_properties(values))
    return path


# --- usage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["quorum", "describe"],
        ["quorum", "describe", "--status", "--replication"],
        ["quorum", "describe", "--status", "--format", "yaml"],
        ["quorum", "describe", "--status", "--bootstrap", " , "],
        ["kv", "put", "only-key"],
        ["cluster", "kill", "0"],
        ["cluster", "kill", "two"],
        ["server"],
        ["storage", "format", "--config", "x"],
    ],
)
def test_usage_error_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    assert "usage: kraft" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == EXIT_OK
    assert "Exit codes: 0 ok, 1 error, 2 usage, 10 unhealthy" in capsys.readouterr().out


# --- server and storage --------------------------------------------------------------------


def test_server_with_a_missing_config_file_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["server", "--config", str(tmp_path / "absent")]) == EXIT_ERROR
    assert "kraft server: configuration error: cannot read config file" in capsys.readouterr().err


def test_server_with_an_unknown_key_exits_1_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = node_properties(tmp_path)
    assert main(["server", "--config", str(path), "--override", "zookeeper.connect=x"]) == 1
    assert "unknown configuration key 'zookeeper.connect'" in capsys.readouterr().err


def test_server_runs_the_node_with_the_loaded_config_and_returns_its_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[NodeConfig] = []

    def run_server(config: NodeConfig) -> int:
        seen.append(config)
        return 3

    fake = types.ModuleType("broker.node")
    fake.run_server = run_server  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "broker.node", fake)
    monkeypatch.setenv("KRAFT_CFG_NUM_PARTITIONS", "4")
    path = node_properties(tmp_path)
    assert main(["server", "--config", str(path), "--override", "log.level=debug"]) == 3
    (config,) = seen
    assert (config.node_id, config.log_level, config.num_partitions) == (1, "debug", 4)


def test_storage_random_uuid_prints_a_22_character_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["storage", "random-uuid"]) == EXIT_OK
    assert len(capsys.readouterr().out.strip()) == 22


def test_storage_format_writes_meta_properties_into_every_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = node_properties(tmp_path)
    cluster_id = "fMCL8kv1SWm87L_Md-I2hg"
    argv = ["storage", "format", "--config", str(path), "--cluster-id", cluster_id]
    assert main(argv) == EXIT_OK
    for directory in ("data", "metadata"):
        meta = (tmp_path / directory / "meta.properties").read_text()
        assert f"cluster.id={cluster_id}" in meta
        assert "node.id=1" in meta
    assert "Formatted storage of node 1 (an initial voter)" in capsys.readouterr().out
    assert main(argv) == EXIT_ERROR
    assert "already formatted" in capsys.readouterr().err
    assert main([*argv, "--ignore-formatted"]) == EXIT_OK


def test_storage_format_without_initial_controllers_marks_a_replacement(tmp_path: Path) -> None:
    path = node_properties(tmp_path)
    argv = ["storage", "format", "--config", str(path), "--cluster-id", "fMCL8kv1SWm87L_Md-I2hg"]
    assert main([*argv, "--no-initial-controllers"]) == EXIT_OK
    assert "kraft.initial.voter=false" in (tmp_path / "data" / "meta.properties").read_text()


def test_storage_format_with_a_bad_cluster_id_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = node_properties(tmp_path)
    assert main(["storage", "format", "--config", str(path), "--cluster-id", "x"]) == 1
    assert "cluster id 'x' is not valid" in capsys.readouterr().err


# --- rendering -----------------------------------------------------------------------------


def test_quorum_status_renders_like_kafka_metadata_quorum() -> None:
    assert render_quorum_status(STATUS) == (
        "ClusterId:              fMCL8kv1SWm87L_Md-I2hg\n"
        "LeaderId:               2\n"
        "LeaderEpoch:            5\n"
        "HighWatermark:          120\n"
        "MaxFollowerLag:         3\n"
        "MaxFollowerLagTimeMs:   40\n"
        "CurrentVoters:          [1,2,3]\n"
        "CurrentObservers:       []\n"
    )


def test_quorum_status_without_a_leader_prints_minus_one() -> None:
    assert "LeaderId:               -1\n" in render_quorum_status({**STATUS, "leader_id": None})


def test_quorum_replication_renders_an_aligned_table() -> None:
    assert render_quorum_replication(REPLICATION) == (
        "NodeId  LogEndOffset  Lag  LastFetchTimestamp  LastCaughtUpTimestamp  Status\n"
        "2       120           0    1700000000123       1700000000123          Leader\n"
        "1       117           3    -1                  -1                     Follower\n"
    )


def test_health_overview_renders_each_field() -> None:
    text = render_health(
        {
            "is_healthy": False,
            "unhealthy_reasons": ["nodes_down"],
            "controller_id": 1,
            "all_nodes": [1, 2, 3],
            "nodes_down": [3],
            "leaderless_count": 0,
            "under_replicated_count": 2,
            "leaderless_partitions": [],
            "under_replicated_partitions": ["kafka/t/0", "kafka/t/1"],
        }
    )
    assert "Healthy:                          false\n" in text
    assert "Unhealthy reasons:                [nodes_down]\n" in text
    assert "Controller ID:                    1\n" in text
    assert "All nodes:                        [1 2 3]\n" in text
    assert "Nodes down:                       [3]\n" in text
    assert "Leaderless partitions (0):        []\n" in text
    assert "Under-replicated partitions (2):  [kafka/t/0 kafka/t/1]\n" in text


# --- admin commands against a test server ----------------------------------------------------


def routes(answers: dict[str, tuple[int, Any]]) -> Any:
    async def handler(request: web.Request) -> web.Response:
        status, body = answers.get(f"{request.method} {request.path}", (404, {}))
        return web.json_response(body, status=status)

    return handler


async def run_main(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


async def test_quorum_describe_status_prints_text(
    serve: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await serve(routes({"GET /v1/quorum/status": (200, STATUS)}))
    assert await run_main(["quorum", "describe", "--status", "--bootstrap", url]) == 0
    assert capsys.readouterr().out == render_quorum_status(STATUS)


async def test_quorum_describe_replication_prints_json(
    serve: ServerFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await serve(routes({"GET /v1/quorum/replication": (200, REPLICATION)}))
    monkeypatch.setenv("KRAFT_BOOTSTRAP", url)
    assert await run_main(["quorum", "describe", "--replication", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == REPLICATION


async def test_kv_put_and_get(serve: ServerFactory, capsys: pytest.CaptureFixture[str]) -> None:
    url = await serve(
        routes(
            {
                "PUT /v1/kv/color": (200, {"key": "color", "value": "blue", "offset": 9}),
                "GET /v1/kv/color": (200, {"key": "color", "value": "blue"}),
            }
        )
    )
    assert await run_main(["kv", "put", "color", "blue", "--bootstrap", url]) == 0
    assert capsys.readouterr().out == "color=blue committed at offset 9\n"
    assert await run_main(["kv", "get", "color", "--bootstrap", url]) == 0
    assert capsys.readouterr().out == "blue\n"


async def test_admin_error_exits_1_with_the_clusters_message(
    serve: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"error_code": 40401, "message": "key 'nope' not found"}
    url = await serve(routes({"GET /v1/kv/nope": (404, body)}))
    assert await run_main(["kv", "get", "nope", "--bootstrap", url]) == EXIT_ERROR
    assert capsys.readouterr().err == "kraft kv get: key 'nope' not found (error_code 40401)\n"


@pytest.mark.parametrize(("healthy", "code"), [(True, EXIT_OK), (False, EXIT_UNHEALTHY)])
async def test_cluster_health_exits_10_when_unhealthy(
    serve: ServerFactory, healthy: bool, code: int
) -> None:
    overview = {"is_healthy": healthy, "controller_id": 1, "all_nodes": [1], "nodes_down": []}
    url = await serve(routes({"GET /v1/cluster/health_overview": (200, overview)}))
    assert await run_main(["cluster", "health", "--bootstrap", url]) == code


def test_cluster_kill_without_a_cluster_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cluster", "kill", "1", "--data-dir", str(tmp_path)]) == EXIT_ERROR
    assert "no local cluster in" in capsys.readouterr().err


async def test_cluster_health_exit_when_healthy_watches_until_healthy(
    serve: ServerFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("client.cli.HEALTH_WATCH_INTERVAL_S", 0.0)
    answers = [False, False, True]

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"is_healthy": answers.pop(0), "nodes_down": []})

    url = await serve(handler)
    assert await run_main(["cluster", "health", "--exit-when-healthy", "--bootstrap", url]) == 0
    out = capsys.readouterr().out
    assert out.count("CLUSTER HEALTH OVERVIEW") == 3
    assert answers == []
