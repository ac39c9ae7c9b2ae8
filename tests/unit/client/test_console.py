"""`kraft topic produce|consume` (SPEC §4): argument parsing, key splitting, offsets and the
output formats."""

from __future__ import annotations

import json

import pytest

from client.cli import build_parser, main
from client.console import parse_offset_argument, render_record, split_key
from client.consumer import ConsumerRecord

RECORD = ConsumerRecord("t", 2, 41, 1700000000000, b"user-1", b"hello", ())


def test_produce_defaults_to_acks_all_and_no_partition() -> None:
    args = build_parser().parse_args(["topic", "produce", "orders"])

    assert (args.name, args.acks, args.partition, args.key_separator) == (
        "orders",
        "all",
        None,
        None,
    )
    assert args.bootstrap_server is None


def test_produce_takes_acks_partition_separator_and_bootstrap_servers() -> None:
    args = build_parser().parse_args(
        [
            "topic",
            "produce",
            "orders",
            "--acks",
            "1",
            "--partition",
            "2",
            "--key-separator",
            ":",
            "--bootstrap-server",
            "a:9093,b:9193",
        ]
    )

    assert (args.acks, args.partition, args.key_separator) == ("1", 2, ":")
    assert args.bootstrap_server == ["a:9093", "b:9193"]


@pytest.mark.parametrize(
    "argv",
    [
        ["topic", "produce", "t", "--acks", "2"],
        ["topic", "produce", "t", "--partition", "-1"],
        ["topic", "consume", "t", "--offset", "middle"],
        ["topic", "consume", "t", "--num", "0"],
        ["topic", "consume", "t", "--bootstrap-server", "nohost"],
        ["topic", "consume", "t", "--format", "xml"],
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_consume_starts_at_the_log_start_and_stops_at_the_high_watermark_by_default() -> None:
    args = build_parser().parse_args(["topic", "consume", "orders"])

    assert (args.offset, args.num, args.follow, args.format) == ("start", None, False, "text")


def test_consume_takes_partition_offset_num_follow_and_json() -> None:
    args = build_parser().parse_args(
        ["topic", "consume", "t", "--partition", "1", "--offset", "17", "--num", "5", "--follow"]
        + ["--format", "json"]
    )

    assert (args.partition, args.offset, args.num, args.follow, args.format) == (
        1,
        17,
        5,
        True,
        "json",
    )


def test_offsets_are_start_end_or_a_number() -> None:
    assert [parse_offset_argument(text) for text in ("start", "end", "0", "12")] == [
        "start",
        "end",
        0,
        12,
    ]
    with pytest.raises(ValueError, match="-3"):
        parse_offset_argument("-3")


def test_a_line_splits_at_the_first_key_separator() -> None:
    assert split_key(b"k:v:w", b":") == (b"k", b"v:w")
    assert split_key(b"no key here", None) == (None, b"no key here")


def test_a_line_without_the_key_separator_is_refused() -> None:
    with pytest.raises(ValueError, match="no key separator ':'"):
        split_key(b"value only", b":")


def test_text_output_is_the_value_and_null_for_a_null_value() -> None:
    assert render_record(RECORD, "text") == "hello\n"
    assert render_record(ConsumerRecord("t", 0, 0, 0, None, None, ()), "text") == "null\n"


def test_json_output_has_partition_offset_key_value_timestamp() -> None:
    line = render_record(RECORD, "json")

    assert line.endswith("\n")
    assert json.loads(line) == {
        "partition": 2,
        "offset": 41,
        "key": "user-1",
        "value": "hello",
        "timestamp": 1700000000000,
    }
