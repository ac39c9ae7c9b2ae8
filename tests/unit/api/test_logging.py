"""configure_logging: one JSON object per line, for structlog and stdlib records alike."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

import kraft.logging as kraft_logging
from broker.api.http import build_app
from kraft.logging import configure_logging
from tests.unit.api.fakes import FakeNode


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Leaves the process's logging as the test found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setattr(kraft_logging, "_installed_handler", None)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_records_are_json_with_timestamp_level_logger_and_node_id() -> None:
    stream = io.StringIO()
    configure_logging(3, "info", stream)

    structlog.get_logger("kraft.test").info("leader elected", epoch=7)

    [record] = lines(stream)
    assert record["event"] == "leader elected"
    assert record["epoch"] == 7
    assert record["level"] == "info"
    assert record["logger"] == "kraft.test"
    assert record["node_id"] == 3
    timestamp = datetime.fromisoformat(record["timestamp"])
    assert timestamp.utcoffset() is not None
    assert timestamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_stdlib_records_go_through_the_same_json_renderer() -> None:
    stream = io.StringIO()
    configure_logging(2, "info", stream)

    logging.getLogger("aiohttp.server").warning("bad request from %s", "127.0.0.1")

    [record] = lines(stream)
    assert record["event"] == "bad request from 127.0.0.1"
    assert record["level"] == "warning"
    assert record["logger"] == "aiohttp.server"
    assert record["node_id"] == 2
    assert "timestamp" in record


def test_records_below_the_level_are_dropped() -> None:
    stream = io.StringIO()
    configure_logging(1, "warning", stream)

    structlog.get_logger("kraft.test").info("quiet")
    logging.getLogger("aiohttp.server").info("quiet too")

    assert lines(stream) == []


def test_configuring_again_replaces_the_handler_instead_of_adding_one() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(1, "info", first)
    configure_logging(1, "info", second)

    structlog.get_logger("kraft.test").info("once")

    assert first.getvalue() == ""
    assert [r["event"] for r in lines(second)] == ["once"]


def test_a_node_id_bound_on_the_logger_wins_over_the_process_one() -> None:
    stream = io.StringIO()
    configure_logging(None, "info", stream)

    structlog.get_logger("kraft.test").bind(node_id=5).info("bound")
    structlog.get_logger("kraft.test").info("unbound")

    assert [r["node_id"] for r in lines(stream)] == [5, None]


def test_exceptions_are_rendered_into_the_record() -> None:
    stream = io.StringIO()
    configure_logging(1, "info", stream)

    try:
        raise ValueError("disk on fire")
    except ValueError:
        structlog.get_logger("kraft.test").exception("append failed")

    [record] = lines(stream)
    assert record["level"] == "error"
    assert "ValueError: disk on fire" in record["exception"]


def test_unknown_level_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="log level 'loud' is not one of debug, info"):
        configure_logging(1, "loud", io.StringIO())


async def test_http_requests_are_logged_at_debug_level_only() -> None:
    stream = io.StringIO()
    configure_logging(1, "info", stream)
    async with TestClient(TestServer(build_app(FakeNode(), CollectorRegistry()))) as client:
        await client.get("/live")
        assert [r for r in lines(stream) if r["event"] == "http request"] == []

        configure_logging(1, "debug", stream)
        await client.get("/live")

    [record] = [r for r in lines(stream) if r["event"] == "http request"]
    assert (record["method"], record["path"], record["status"]) == ("GET", "/live", 200)
    assert record["level"] == "debug"


async def test_unexpected_errors_are_logged_with_their_traceback() -> None:
    class BrokenNode(FakeNode):
        def is_ready(self) -> bool:
            raise RuntimeError("boom")

    stream = io.StringIO()
    configure_logging(1, "info", stream)
    async with TestClient(TestServer(build_app(BrokenNode(), CollectorRegistry()))) as client:
        response = await client.get("/v1/status/ready")

    assert response.status == 500
    [record] = [r for r in lines(stream) if r["event"] == "unexpected error serving http request"]
    assert record["level"] == "error"
    assert record["path"] == "/v1/status/ready"
    assert "RuntimeError: boom" in record["exception"]
