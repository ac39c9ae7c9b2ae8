"""`kraft topic ...`, `kraft broker list`, `kraft cluster info|health` (SPEC §4) against the
node's real HTTP application (build_app) over a FakeAdmin, served on 127.0.0.1: output as
kafka-topics.sh and rpk print it, `--format json`, `--bootstrap` failover, exit codes (0 ok,
1 error, 2 usage, 10 unhealthy)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from broker.api.http import build_app
from client.cli import EXIT_ERROR, EXIT_OK, EXIT_UNHEALTHY, EXIT_USAGE, main
from client.rendering import partition_row, render_topic_description
from tests.unit.api.fakes import CLUSTER_ID, FakeAdmin, FakeNode
from tests.unit.api.images import healthy_builder

StartNode = Callable[..., Awaitable[str]]


@pytest.fixture
async def start_node() -> AsyncIterator[StartNode]:
    """start_node(admin, token=None) serves build_app over `admin`; returns its URL."""
    runners: list[web.AppRunner] = []

    async def start(admin: FakeAdmin, token: str | None = None) -> str:
        app = build_app(FakeNode(), CollectorRegistry(), admin=admin, admin_token=token)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def quiet_request_log() -> Iterator[None]:
    """The served app logs each request at debug level; keep stdout for the command's output."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def no_kraft_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KRAFT_BOOTSTRAP", "KRAFT_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)


async def run(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


@pytest.fixture
def admin() -> FakeAdmin:
    return FakeAdmin()


@pytest.fixture
async def url(start_node: StartNode, admin: FakeAdmin) -> str:
    return await start_node(admin)


# --- topics -----------------------------------------------------------------------------------


async def test_topic_create_with_partitions_replicas_and_configs(
    url: str, admin: FakeAdmin, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["topic", "create", "events", "-p", "4", "-r", "2", "-c", "retention.ms=1000"]

    assert await run([*argv, "--bootstrap", url]) == EXIT_OK

    assert capsys.readouterr().out == "Created topic events.\n"
    assert admin.calls == [("create_topic", "events", 4, 2, {"retention.ms": "1000"})]


async def test_topic_create_without_counts_uses_the_cluster_defaults(
    url: str, admin: FakeAdmin, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["topic", "create", "events", "--bootstrap", url, "--format", "json"]) == 0

    answer = json.loads(capsys.readouterr().out)
    assert (answer["kind"], answer["topic_name"]) == ("KafkaTopic", "events")
    assert admin.calls == [("create_topic", "events", None, None, {})]


async def test_topic_create_of_an_existing_topic_exits_1_with_the_clusters_message(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["topic", "create", "orders", "--bootstrap", url]) == EXIT_ERROR

    assert capsys.readouterr().err == (
        "kraft topic create: topic 'orders' already exists (error_code 40002)\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["topic", "create", "t", "-p", "0"],
        ["topic", "create", "t", "-p", "x"],
        ["topic", "create", "t", "-r", "-1"],
        ["topic", "create", "t", "-c", "retention.ms"],
        ["topic", "create"],
        ["topic", "describe"],
        ["topic", "alter-config", "orders"],
        ["topic", "alter-config", "orders", "-c", "a=1", "--delete-config", "a"],
        ["broker", "list", "--format", "yaml"],
    ],
)
async def test_usage_errors_exit_2_and_send_nothing(
    url: str, admin: FakeAdmin, argv: list[str]
) -> None:
    assert await run([*argv, "--bootstrap", url]) == EXIT_USAGE

    assert admin.calls == []


async def test_topic_list_prints_one_name_per_line(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["topic", "list", "--bootstrap", url]) == EXIT_OK

    assert capsys.readouterr().out == "audit.log\norders\n"


async def test_topic_describe_prints_kafka_topics_shape(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["topic", "describe", "orders", "--bootstrap", url]) == EXIT_OK

    assert capsys.readouterr().out == (
        "Topic: orders\tTopicId: orders-id\tPartitionCount: 3\tReplicationFactor: 3\t"
        "Configs: retention.ms=60000\n"
        "\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2,3\n"
        "\tTopic: orders\tPartition: 1\tLeader: 2\tReplicas: 2,3,1\tIsr: 2,3,1\n"
        "\tTopic: orders\tPartition: 2\tLeader: 3\tReplicas: 3,1,2\tIsr: 3,1\n"
    )


async def test_topic_describe_of_a_leaderless_partition_prints_leader_none(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["topic", "describe", "audit.log", "--bootstrap", url]) == EXIT_OK

    assert capsys.readouterr().out.endswith(
        "\tTopic: audit.log\tPartition: 0\tLeader: none\tReplicas: 3\tIsr: 3\n"
    )


@pytest.mark.parametrize(
    ("flags", "partitions"),
    [
        (["--under-replicated-partitions"], [2]),
        (["--unavailable-partitions"], []),
        (["--under-replicated-partitions", "--unavailable-partitions"], [2]),
    ],
)
async def test_topic_describe_filters_print_only_matching_partitions(
    url: str, capsys: pytest.CaptureFixture[str], flags: list[str], partitions: list[int]
) -> None:
    assert await run(["topic", "describe", "orders", *flags, "--bootstrap", url]) == EXIT_OK

    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[2] for line in lines] == [f"Partition: {p}" for p in partitions]


async def test_topic_describe_json_has_the_partitions(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["topic", "describe", "audit.log", "--format", "json", "--bootstrap", url]

    assert await run(argv) == EXIT_OK

    answer = json.loads(capsys.readouterr().out)
    assert answer["topic"]["topic_name"] == "audit.log"
    assert answer["partitions"] == [
        {"partition_id": 0, "leader": None, "replicas": [3], "isr": [3]}
    ]


async def test_topic_describe_of_an_unknown_topic_exits_1(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["topic", "describe", "nope", "--bootstrap", url]) == EXIT_ERROR

    assert capsys.readouterr().err == (
        "kraft topic describe: topic 'nope' not found in this cluster (error_code 40403)\n"
    )


async def test_topic_delete_removes_the_topic(
    url: str, admin: FakeAdmin, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["topic", "delete", "orders", "--bootstrap", url]) == EXIT_OK

    assert capsys.readouterr().out == "Deleted topic orders.\n"
    assert admin.metadata_image().topic("orders") is None


async def test_topic_alter_config_sets_and_deletes_in_one_request(
    url: str, admin: FakeAdmin, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["topic", "alter-config", "orders", "-c", "cleanup.policy=compact"]

    assert await run([*argv, "--delete-config", "retention.ms", "--bootstrap", url]) == EXIT_OK

    assert capsys.readouterr().out == "Completed updating config for topic orders.\n"
    assert admin.calls == [
        ("alter_topic_configs", "orders", {"cleanup.policy": "compact"}, ["retention.ms"])
    ]
    assert admin.metadata_image().configs("topic", "orders") == {"cleanup.policy": "compact"}


async def test_topic_alter_config_with_a_bad_value_exits_1_and_changes_nothing(
    url: str, admin: FakeAdmin, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["topic", "alter-config", "orders", "-c", "retention.ms=soon", "--bootstrap", url]

    assert await run(argv) == EXIT_ERROR

    assert "invalid value 'soon' for config 'retention.ms'" in capsys.readouterr().err
    assert admin.metadata_image().configs("topic", "orders") == {"retention.ms": "60000"}


def test_render_topic_description_without_filters_starts_with_the_topic_line() -> None:
    topic = {"topic_name": "t", "topic_id": "x", "partitions_count": 1, "replication_factor": 1}
    replicas = [{"broker_id": 1, "is_leader": True, "is_in_sync": True}]

    text = render_topic_description(topic, [], [partition_row(0, replicas)], filtered=False)

    assert text == (
        "Topic: t\tTopicId: x\tPartitionCount: 1\tReplicationFactor: 1\tConfigs: \n"
        "\tTopic: t\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n"
    )


# --- brokers and the cluster ------------------------------------------------------------------


async def test_broker_list_prints_address_rack_and_status(
    url: str, admin: FakeAdmin, capsys: pytest.CaptureFixture[str]
) -> None:
    admin.builder.broker(4, in_controlled_shutdown=True)

    assert await run(["broker", "list", "--bootstrap", url]) == EXIT_OK

    assert capsys.readouterr().out == (
        "ID  HOST:PORT       RACK  STATUS\n"
        "1   127.0.0.1:9092  r1    active\n"
        "2   127.0.0.1:9192  r2    active\n"
        "3   127.0.0.1:9292  -     fenced\n"
        "4   127.0.0.1:9392  -     shutting down\n"
    )


async def test_cluster_info_marks_the_controller(
    url: str, admin: FakeAdmin, capsys: pytest.CaptureFixture[str]
) -> None:
    admin.controller = 2

    assert await run(["cluster", "info", "--bootstrap", url]) == EXIT_OK

    assert capsys.readouterr().out == (
        "CLUSTER\n=======\n"
        f"{CLUSTER_ID}\n\n"
        "BROKERS\n=======\n"
        "ID  HOST       PORT  RACK  STATUS\n"
        "1   127.0.0.1  9092  r1    active\n"
        "2*  127.0.0.1  9192  r2    active\n"
        "3   127.0.0.1  9292  -     fenced\n"
    )


async def test_cluster_info_json_holds_the_cluster_and_its_brokers(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["cluster", "info", "--format", "json", "--bootstrap", url]) == EXIT_OK

    answer = json.loads(capsys.readouterr().out)
    assert answer["cluster"]["cluster_id"] == CLUSTER_ID
    assert [b["broker_id"] for b in answer["brokers"]] == [1, 2, 3]


@pytest.mark.parametrize(("builder", "code"), [(healthy_builder, EXIT_OK), (None, EXIT_UNHEALTHY)])
async def test_cluster_health_exits_10_when_unhealthy(
    start_node: StartNode, capsys: pytest.CaptureFixture[str], builder: Any, code: int
) -> None:
    admin = FakeAdmin() if builder is None else FakeAdmin(builder=builder())
    url = await start_node(admin)

    assert await run(["cluster", "health", "--bootstrap", url]) == code

    out = capsys.readouterr().out
    assert out.startswith("CLUSTER HEALTH OVERVIEW\n")
    if code == EXIT_UNHEALTHY:
        assert "Leaderless partitions (1):        [kafka/audit.log/0]\n" in out


# --- bootstrap failover and the token ---------------------------------------------------------


async def test_admin_commands_fail_over_to_the_next_bootstrap_address(
    url: str, refused_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(["topic", "list", "--bootstrap", f"{refused_url},{url}"]) == EXIT_OK

    assert capsys.readouterr().out == "audit.log\norders\n"


async def test_an_unreachable_cluster_exits_1(
    refused_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["broker", "list", "--bootstrap", refused_url, "--timeout", "0.5"]

    assert await run(argv) == EXIT_ERROR

    assert capsys.readouterr().err.startswith(f"kraft broker list: no answer from {refused_url}")


async def test_the_token_comes_from_kraft_admin_token(
    start_node: StartNode, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await start_node(FakeAdmin(), token="s3cret")

    assert await run(["topic", "list", "--bootstrap", url]) == EXIT_ERROR
    assert "(error_code 40101)" in capsys.readouterr().err
    monkeypatch.setenv("KRAFT_ADMIN_TOKEN", "s3cret")
    assert await run(["topic", "list", "--bootstrap", url]) == EXIT_OK
