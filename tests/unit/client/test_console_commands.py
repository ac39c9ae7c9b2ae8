"""`kraft topic produce` and `kraft topic consume` end to end through client.cli.main,
against in-process brokers (their own event loop in a thread, since main runs asyncio.run):
exit codes, per-line errors on stderr, and consume stopping at the starting high watermark."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import threading
from collections.abc import Iterator

import pytest
import structlog

from client.cli import EXIT_ERROR, EXIT_OK, main
from kraft import logging as kraft_logging
from tests.unit.client.memory_broker import MemoryCluster, running_cluster

DEADLINE_S = 10.0


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The commands send log lines to stderr (configure_logging); undo it after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setattr(kraft_logging, "_installed_handler", None)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
def cluster() -> Iterator[MemoryCluster]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="memory-cluster", daemon=True)
    thread.start()
    context = running_cluster({"t": 2}, (1, 2))
    started = asyncio.run_coroutine_threadsafe(context.__aenter__(), loop).result(DEADLINE_S)
    try:
        yield started
    finally:
        closing = context.__aexit__(None, None, None)
        asyncio.run_coroutine_threadsafe(closing, loop).result(DEADLINE_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(DEADLINE_S)
        loop.close()


def _stdin(monkeypatch: pytest.MonkeyPatch, text: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))


def _bootstrap(cluster: MemoryCluster) -> list[str]:
    return ["--bootstrap-server", ",".join(cluster.bootstrap())]


def test_produce_exits_0_when_every_line_is_acknowledged(
    cluster: MemoryCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, b"a:1\nb:2\r\nc:3\n")

    code = main(["topic", "produce", "t", "--key-separator", ":", *_bootstrap(cluster)])

    assert code == EXIT_OK
    assert "Produced 3 of 3 records to topic t." in capsys.readouterr().err
    stored = sorted(value or b"" for p in (0, 1) for value in cluster.records("t", p))
    assert stored == [b"1", b"2", b"3"]


def test_produce_exits_1_and_names_the_lines_that_failed(
    cluster: MemoryCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, b"k:v\nno separator\n")

    code = main(["topic", "produce", "t", "--key-separator", ":", *_bootstrap(cluster)])

    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert "line 2: no key separator ':'" in err
    assert "Produced 1 of 2 records" in err


def test_produce_to_a_missing_partition_fails(
    cluster: MemoryCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, b"v\n")

    code = main(["topic", "produce", "t", "--partition", "9", *_bootstrap(cluster)])

    assert code == EXIT_ERROR
    assert "UNKNOWN_TOPIC_OR_PARTITION: partition 9 of topic 't'" in capsys.readouterr().err


def test_consume_prints_values_up_to_the_starting_high_watermark(
    cluster: MemoryCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, b"one\ntwo\nthree\n")
    assert main(["topic", "produce", "t", "--partition", "1", *_bootstrap(cluster)]) == EXIT_OK
    capsys.readouterr()

    code = main(["topic", "consume", "t", *_bootstrap(cluster)])

    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert out == "one\ntwo\nthree\n"
    assert "Processed a total of 3 messages" in err


def test_consume_json_from_an_offset_with_a_record_limit(
    cluster: MemoryCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, b"k0=a\nk1=b\nk2=c\n")
    argv = ["topic", "produce", "t", "--partition", "0", "--key-separator", "="]
    assert main([*argv, *_bootstrap(cluster)]) == EXIT_OK
    capsys.readouterr()

    code = main(
        ["topic", "consume", "t", "--partition", "0", "--offset", "1", "--num", "1"]
        + ["--format", "json", *_bootstrap(cluster)]
    )

    lines = capsys.readouterr().out.splitlines()
    assert code == EXIT_OK
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert {key: record[key] for key in ("partition", "offset", "key", "value")} == {
        "partition": 0,
        "offset": 1,
        "key": "k1",
        "value": "b",
    }
    assert isinstance(record["timestamp"], int)


def test_consume_from_an_offset_outside_the_log_is_an_error(
    cluster: MemoryCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, b"a\n")
    assert main(["topic", "produce", "t", "--partition", "0", *_bootstrap(cluster)]) == EXIT_OK
    cluster.logs[("t", 0)].log_start_offset = 1  # as if retention removed offset 0
    capsys.readouterr()

    code = main(
        ["topic", "consume", "t", "--partition", "0", "--offset", "0", "--follow"]
        + ["--num", "1", *_bootstrap(cluster)]
    )

    assert code == EXIT_ERROR
    assert "OFFSET_OUT_OF_RANGE" in capsys.readouterr().err
