"""kraft.config: how a node reads server.properties, KRAFT_CFG_* and --override (SPEC §1-§2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kraft.config import (
    ELECTION_TIMEOUT_MS_DEFAULT,
    FETCH_TIMEOUT_MS_DEFAULT,
    KEYS,
    ConfigError,
    NodeConfig,
    config_from_mapping,
    env_name,
    load_config,
    parse_properties,
    render_properties,
)

BASE = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.quorum.voters": "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293",
    "log.dirs": "/data/a,/data/b",
}


def make(**changes: str) -> NodeConfig:
    """A valid combined node 1 with `changes` (underscores in names stand for dots)."""
    values = dict(BASE)
    for name, value in changes.items():
        values[name.replace("_", ".")] = value
    return config_from_mapping(values)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.properties"
    path.write_text(text, encoding="utf-8")
    return path


# --- parsing ------------------------------------------------------------------------------


def test_properties_file_skips_comments_and_blank_lines_and_trims(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# a comment\n! another\n\n  process.roles = broker,controller  \n"
        "node.id=1\ncontroller.quorum.voters=1@127.0.0.1:9093\nlog.dirs=/data/x\n",
    )
    config = load_config(path, environ={})
    assert config.node_id == 1
    assert config.process_roles == frozenset({"broker", "controller"})
    assert config.voters == {1: ("127.0.0.1", 9093)}
    assert config.log_dirs == (Path("/data/x"),)


def test_properties_value_may_contain_equals_and_continue_with_backslash() -> None:
    values = parse_properties("a=b=c\nlong=one,\\\n   two\n")
    assert values == {"a": "b=c", "long": "one,two"}


def test_properties_line_without_equals_is_an_error_naming_the_line() -> None:
    with pytest.raises(ConfigError, match=r"f line 2: 'oops' is not a key=value line"):
        parse_properties("a=b\noops\n", source="f")


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.properties", environ={})


def test_defaults_fill_unset_keys() -> None:
    config = make()
    assert config.election_timeout_ms == ELECTION_TIMEOUT_MS_DEFAULT == 200
    assert config.fetch_timeout_ms == FETCH_TIMEOUT_MS_DEFAULT == 500
    assert config.tick_ms == 10
    assert config.log_level == "info"
    assert config.admin_token is None
    assert config.snapshot_interval_records == 20_000
    assert config.client_listener == ("127.0.0.1", 9092)
    assert config.rpc_listener == ("127.0.0.1", 9093)
    assert config.http_listener == ("127.0.0.1", 8082)
    assert config.advertised_listener("RPC") == ("127.0.0.1", 9093)
    assert config.raw["raft.tick.ms"] == "10"
    assert config.unclean_leader_election_enable is False
    assert config.auto_create_topics_enable is True


def test_metadata_log_dir_defaults_to_first_log_dir() -> None:
    config = make()
    assert config.metadata_log_dir == Path("/data/a")
    assert config.metadata_partition_dir == Path("/data/a/__cluster_metadata-0")
    assert config.storage_dirs == (Path("/data/a"), Path("/data/b"))


def test_storage_dirs_include_a_separate_metadata_log_dir() -> None:
    config = make(metadata_log_dir="/meta")
    assert config.storage_dirs == (Path("/data/a"), Path("/data/b"), Path("/meta"))


def test_controller_listener_name_is_an_alias_of_rpc() -> None:
    config = make(listeners="CLIENT://h:9092,CONTROLLER://h:9093,HTTP://h:8082")
    assert config.rpc_listener == ("h", 9093)
    assert config.listener("controller") == ("h", 9093)


def test_ipv6_listener_and_voter_hosts_lose_their_brackets() -> None:
    config = make(
        listeners="CLIENT://[::1]:9092,RPC://[::1]:9093,HTTP://[::1]:8082",
        controller_quorum_voters="1@[::1]:9093",
    )
    assert config.rpc_listener == ("::1", 9093)
    assert config.voters == {1: ("::1", 9093)}


def test_is_controller_and_is_broker_follow_process_roles() -> None:
    combined = make()
    assert combined.is_controller and combined.is_broker
    broker = make(process_roles="broker", node_id="7")
    assert not broker.is_controller and broker.is_broker


def test_ms_to_ticks_rounds_up() -> None:
    config = make(raft_tick_ms="30")
    assert config.ms_to_ticks(200) == 7
    assert config.election_timeout_ticks == 7
    assert config.fetch_timeout_ticks == 17


# --- sources and precedence ----------------------------------------------------------------


def test_environment_variable_sets_a_key() -> None:
    config = load_config(
        None,
        environ={
            "KRAFT_CFG_PROCESS_ROLES": "broker,controller",
            "KRAFT_CFG_NODE_ID": "2",
            "KRAFT_CFG_CONTROLLER_QUORUM_VOTERS": "2@127.0.0.1:9093",
            "KRAFT_CFG_LOG_DIRS": "/d",
            "KRAFT_CFG_CONTROLLER_QUORUM_ELECTION_TIMEOUT_MS": "300",
            "PATH": "/bin",
        },
    )
    assert config.node_id == 2
    assert config.election_timeout_ms == 300


def test_env_name_maps_dots_to_underscores_upper_case() -> None:
    assert env_name("node.id") == "KRAFT_CFG_NODE_ID"


def test_environment_beats_file_and_override_beats_environment(tmp_path: Path) -> None:
    path = write(tmp_path, render_properties({**BASE, "num.partitions": "3"}))
    config = load_config(path, environ={"KRAFT_CFG_NUM_PARTITIONS": "4"})
    assert config.num_partitions == 4
    config = load_config(
        path,
        overrides=["num.partitions=5", "num.partitions=6"],
        environ={"KRAFT_CFG_NUM_PARTITIONS": "4"},
    )
    assert config.num_partitions == 6


def test_unknown_key_in_file_is_an_error_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, render_properties({**BASE, "log.retention.hourz": "1"}))
    with pytest.raises(ConfigError, match="unknown configuration key 'log.retention.hourz'"):
        load_config(path, environ={})


def test_unknown_key_in_override_is_an_error_naming_the_key() -> None:
    overrides = [f"{key}={value}" for key, value in BASE.items()] + ["bogus.key=1"]
    with pytest.raises(ConfigError, match="'bogus.key'"):
        load_config(None, overrides, environ={})


def test_unknown_environment_variable_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="KRAFT_CFG_NODE_IDD"):
        load_config(None, environ={"KRAFT_CFG_NODE_IDD": "1"})


def test_override_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError, match="override 'node.id' is not of the form key=value"):
        load_config(None, ["node.id"], environ={})


def test_missing_required_key_is_an_error_naming_it() -> None:
    values = dict(BASE)
    del values["node.id"]
    with pytest.raises(ConfigError, match="node.id is required"):
        config_from_mapping(values)


def test_render_properties_round_trips(tmp_path: Path) -> None:
    values = {
        **BASE,
        "http.admin.token": "s3cret",
        "listeners": "CLIENT://h:1,RPC://h:9093,HTTP://h:3",
    }
    text = render_properties(values)
    assert text.splitlines()[0] == "process.roles=broker,controller"
    assert parse_properties(text) == values


def test_every_key_has_a_doc_and_a_unique_name() -> None:
    names = [spec.name for spec in KEYS]
    assert len(names) == len(set(names))
    assert all(spec.doc for spec in KEYS)


# --- value rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"node_id": "x"}, "node.id 'x' is not an integer"),
        ({"node_id": "-1"}, r"node.id -1 is out of range: it must be in \[0, "),
        ({"process_roles": "broker,zookeeper"}, "role 'zookeeper' is not broker or controller"),
        ({"process_roles": "broker,broker"}, "names a role twice"),
        ({"raft_tick_ms": "0"}, r"raft.tick.ms 0 is out of range: it must be in \[1, 1000\]"),
        ({"unclean_leader_election_enable": "yes"}, "'yes' is not a boolean: use true or false"),
        ({"log_level": "loud"}, "log.level 'loud' is not one of debug, info"),
        ({"log_segment_bytes": "10"}, r"log.segment.bytes 10 is out of range"),
        ({"controller_quorum_voters": "1-127.0.0.1:9093"}, "is not of the form id@host:port"),
        ({"controller_quorum_voters": "a@h:9093"}, "voter id 'a' of 'a@h:9093' is not an integer"),
        ({"controller_quorum_voters": "1@h:9093,1@h:9094"}, "lists voter 1 twice"),
        ({"controller_quorum_voters": "1@h"}, "'1@h' has no :port"),
        ({"controller_quorum_voters": "1@h:70000"}, r"port 70000 of '1@h:70000' is not in \[0, "),
        ({"controller_quorum_voters": "1@:9093"}, "'1@:9093' has an empty host"),
        ({"listeners": "CLIENT:9092"}, "is not of the form NAME://host:port"),
        ({"listeners": "PLAINTEXT://h:9092"}, "listener name 'PLAINTEXT'"),
        ({"listeners": "RPC://h:1,CONTROLLER://h:2"}, "defines the RPC listener twice"),
        ({"listeners": "CLIENT://:9092,RPC://h:9093,HTTP://h:8082"}, "has an empty host"),
        ({"log_dirs": "/a,,/b"}, "log.dirs '/a,,/b' has an empty directory name"),
        ({"metadata_log_dir": "/a,/b"}, "must name exactly one directory"),
    ],
)
def test_bad_value_is_an_error_naming_key_value_and_rule(
    changes: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make(**changes)


def test_port_zero_is_allowed_for_tests() -> None:
    config = make(
        listeners="CLIENT://127.0.0.1:0,RPC://127.0.0.1:0,HTTP://127.0.0.1:0",
        controller_quorum_voters="1@127.0.0.1:0",
    )
    assert config.rpc_listener == ("127.0.0.1", 0)


# --- validate(): how settings relate --------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"node_id": "4"},
            "node.id 4 is not in controller.quorum.voters .*must be one of the voters",
        ),
        (
            {"listeners": "CLIENT://127.0.0.1:9092,RPC://127.0.0.1:9999,HTTP://127.0.0.1:8082"},
            "gives node 1 port 9093 but its RPC listener port is 9999: they must be equal",
        ),
        (
            {"process_roles": "broker"},
            "node.id 1 is in controller.quorum.voters but process.roles 'broker' lacks controller",
        ),
        (
            {"listeners": "CLIENT://127.0.0.1:9092,RPC://127.0.0.1:9093"},
            "has no HTTP listener: every node needs one",
        ),
        (
            {"listeners": "RPC://127.0.0.1:9093,HTTP://127.0.0.1:8082"},
            "has no CLIENT listener: a node with the broker role needs one",
        ),
        (
            {"listeners": "CLIENT://127.0.0.1:9093,RPC://127.0.0.1:9093,HTTP://127.0.0.1:8082"},
            "two listeners share a port",
        ),
        (
            {"listeners": "CLIENT://0.0.0.0:9092,RPC://0.0.0.0:9093,HTTP://0.0.0.0:8082"},
            "advertised.listeners: CLIENT host '0.0.0.0' is not routable",
        ),
        (
            {"advertised_listeners": "CLIENT://h:9092,GHOST://h:1"},
            "listener name 'GHOST'",
        ),
        (
            {"raft_tick_ms": "150"},
            "controller.quorum.election.timeout.ms 200 is less than twice raft.tick.ms 150: "
            "it must be at least 300",
        ),
        (
            {"controller_quorum_fetch_timeout_ms": "200"},
            "controller.quorum.fetch.timeout.ms 200 must be greater than "
            "controller.quorum.election.timeout.ms 200",
        ),
        (
            {"broker_session_timeout_ms": "200"},
            "broker.session.timeout.ms 200 must be greater than broker.heartbeat.interval.ms 200",
        ),
        (
            {"broker_heartbeat_interval_ms": "5", "raft_tick_ms": "10"},
            "broker.heartbeat.interval.ms 5 is less than raft.tick.ms 10",
        ),
        (
            {"min_insync_replicas": "2"},
            "min.insync.replicas 2 is larger than default.replication.factor 1",
        ),
        ({"log_dirs": "/a,/a"}, "log.dirs '/a,/a' lists a directory twice"),
    ],
)
def test_validate_rejects_inconsistent_settings(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make(**changes)


def test_broker_only_node_outside_the_voters_is_valid() -> None:
    config = make(process_roles="broker", node_id="9")
    assert 9 not in config.voters


def test_controller_only_node_needs_no_client_listener() -> None:
    config = make(process_roles="controller", listeners="RPC://127.0.0.1:9093,HTTP://h:8082")
    assert config.is_controller and not config.is_broker


def test_advertised_listeners_may_name_a_routable_host_for_a_wildcard_bind() -> None:
    config = make(
        listeners="CLIENT://0.0.0.0:9092,RPC://0.0.0.0:9093,HTTP://0.0.0.0:8082",
        advertised_listeners="CLIENT://node1:9092,RPC://node1:9093,HTTP://node1:8082",
    )
    assert config.rpc_listener == ("0.0.0.0", 9093)
    assert config.advertised_listener("RPC") == ("node1", 9093)


def test_listener_that_is_not_configured_raises_config_error() -> None:
    config = make(process_roles="controller", listeners="RPC://127.0.0.1:9093,HTTP://h:8082")
    with pytest.raises(ConfigError, match="no CLIENT listener is configured"):
        _ = config.client_listener
