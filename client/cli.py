"""The `kraft` command line (SPEC §4): run a node, format storage, run the local cluster, and
talk to a cluster's admin API (quorum, topics, brokers, cluster info and health; text output
of the admin commands in client/rendering).

Exit codes: 0 ok, 1 error, 2 usage, 10 unhealthy (`cluster health`). Results go to stdout,
errors and the progress of long operations to stderr. Admin commands take `--bootstrap
URL[,URL...]` (default: $KRAFT_BOOTSTRAP, else the local cluster's three HTTP URLs), read the
bearer token from $KRAFT_ADMIN_TOKEN, and print `--format text` (as Kafka's tools print it)
or `--format json` (the API's answer).

`kraft topic produce NAME` (one record per stdin line; `--acks 0|1|all`, `--partition P`,
`--key-separator SEP`; exit 0 only when every record was acknowledged) and `kraft topic
consume NAME` (`--partition P`, `--offset start|end|N`, `--num N`, `--follow`, `--format
text|json`; without --follow it stops at the high watermark of when it started) speak the
native data protocol on the rpc listeners instead (client/console.py): they take
`--bootstrap-server host:port[,...]` (default: $KRAFT_BOOTSTRAP_SERVERS, else the local
cluster's three rpc listeners).

`kraft server` and `kraft storage` import the node and the storage code only when run, so
that the admin commands work from an installation that has only the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from client.admin import (
    ADMIN_TIMEOUT_S_DEFAULT,
    ADMIN_TOKEN_ENV,
    BOOTSTRAP_ENV,
    AdminClient,
    AdminError,
    default_bootstrap,
    parse_bootstrap,
)
from client.cluster import BOOTSTRAP_SERVERS_ENV, default_bootstrap_servers, parse_bootstrap_servers
from client.console import (
    ConsumeCount,
    consume_records,
    parse_offset_argument,
    produce_lines,
)
from client.errors import ClientError
from client.localcluster import (
    DATA_DIR_DEFAULT,
    READY_TIMEOUT_S_DEFAULT,
    LocalClusterError,
    cluster_up,
    kill_node,
    start_node,
)
from client.rendering import (
    PartitionRow,
    partition_row,
    render_broker_list,
    render_cluster_info,
    render_group_description,
    render_group_list,
    render_table,
    render_topic_description,
    render_topic_list,
)
from kraft.config import ConfigError, NodeConfig, load_config
from kraft.logging import configure_logging

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNHEALTHY = 10

HEALTH_WATCH_INTERVAL_S = 1.0
DATA_COMMAND_LOG_LEVEL = "warning"  # topic produce|consume: stdout is for records only
LABEL_WIDTH = 24  # kafka-metadata-quorum.sh pads its labels to this width
HEALTH_LABEL_WIDTH = 34

REPLICATION_HEADERS = (
    "NodeId",
    "LogEndOffset",
    "Lag",
    "LastFetchTimestamp",
    "LastCaughtUpTimestamp",
    "Status",
)
REPLICATION_FIELDS = (
    "node_id",
    "log_end_offset",
    "lag",
    "last_fetch_timestamp",
    "last_caught_up_timestamp",
    "status",
)

Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A command failed for a reason the user can act on; main prints it and exits 1."""


class UsageError(Exception):
    """Arguments that parse but do not go together; main prints it and exits 2."""


# --- Rendering (pure) -------------------------------------------------------------------------


def _number(value: Any) -> str:
    # Kafka's tool prints -1 where a value is unknown (no leader, never fetched).
    return "-1" if value is None else str(value)


def _id_list(values: Any) -> str:
    return "[" + ",".join(str(value) for value in (values or [])) + "]"


def render_quorum_status(status: Mapping[str, Any]) -> str:
    """`kafka-metadata-quorum.sh describe --status`, from GET /v1/quorum/status."""
    rows = [
        ("ClusterId", str(status.get("cluster_id", ""))),
        ("LeaderId", _number(status.get("leader_id"))),
        ("LeaderEpoch", _number(status.get("leader_epoch"))),
        ("HighWatermark", _number(status.get("high_watermark"))),
        ("MaxFollowerLag", _number(status.get("max_follower_lag"))),
        ("MaxFollowerLagTimeMs", _number(status.get("max_follower_lag_time_ms"))),
        ("CurrentVoters", _id_list(status.get("current_voters"))),
        ("CurrentObservers", _id_list(status.get("current_observers"))),
    ]
    return "".join(f"{label + ':':<{LABEL_WIDTH}}{value}\n" for label, value in rows)


def render_quorum_replication(replication: Mapping[str, Any]) -> str:
    """`kafka-metadata-quorum.sh describe --replication`, from GET /v1/quorum/replication."""
    rows = []
    for replica in replication.get("replicas") or []:
        row = [_number(replica.get(field)) for field in REPLICATION_FIELDS[:-1]]
        row.append(str(replica.get("status", "")))
        rows.append(row)
    return render_table(REPLICATION_HEADERS, rows)


def render_health(overview: Mapping[str, Any]) -> str:
    """`rpk cluster health`'s overview, from GET /v1/cluster/health_overview: counts of
    problem partitions in parentheses, then the first of them (`kafka/<topic>/<partition>`)."""

    def spaced(values: Any) -> str:
        return "[" + " ".join(str(value) for value in (values or [])) + "]"

    rows = [
        ("Healthy", str(bool(overview.get("is_healthy"))).lower()),
        ("Unhealthy reasons", spaced(overview.get("unhealthy_reasons"))),
        ("Controller ID", _number(overview.get("controller_id"))),
        ("All nodes", spaced(overview.get("all_nodes"))),
        ("Nodes down", spaced(overview.get("nodes_down"))),
        (
            f"Leaderless partitions ({_number(overview.get('leaderless_count'))})",
            spaced(overview.get("leaderless_partitions")),
        ),
        (
            f"Under-replicated partitions ({_number(overview.get('under_replicated_count'))})",
            spaced(overview.get("under_replicated_partitions")),
        ),
    ]
    header = "CLUSTER HEALTH OVERVIEW\n=======================\n"
    return header + "".join(
        f"{label + ':':<{HEALTH_LABEL_WIDTH}}{value}\n" for label, value in rows
    )


def render_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False) + "\n"


# --- Commands ---------------------------------------------------------------------------------


def _load_node_config(args: argparse.Namespace) -> NodeConfig:
    return load_config(Path(args.config), list(args.override or ()))


def cmd_server(args: argparse.Namespace) -> int:
    config = _load_node_config(args)
    config.validate()
    try:
        from broker.node import run_server
    except ModuleNotFoundError as error:
        if error.name is None or not error.name.startswith("broker"):
            raise
        raise CommandError(f"this installation has no node ({error.name} is missing)") from error
    return run_server(config)


def cmd_storage_random_uuid(args: argparse.Namespace) -> int:
    from kraft.storage.meta import random_cluster_id

    print(random_cluster_id())
    return EXIT_OK


def cmd_storage_format(args: argparse.Namespace) -> int:
    from kraft.storage.meta import StorageError, format_storage

    config = _load_node_config(args)
    directories = list(config.storage_dirs)
    try:
        format_storage(
            directories,
            args.cluster_id,
            config.node_id,
            initial_voters=not args.no_initial_controllers,
            ignore_formatted=args.ignore_formatted,
        )
    except StorageError as error:
        raise CommandError(str(error)) from error
    kind = "a replacement voter" if args.no_initial_controllers else "an initial voter"
    if not config.is_controller:
        kind = "a broker"
    print(
        f"Formatted storage of node {config.node_id} ({kind}) for cluster {args.cluster_id} "
        f"in: {', '.join(str(directory) for directory in directories)}"
    )
    return EXIT_OK


def admin_client(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> AdminClient:
    bootstrap = args.bootstrap if args.bootstrap else default_bootstrap(environ)
    token = environ.get(ADMIN_TOKEN_ENV) or None
    return AdminClient(bootstrap, token=token, timeout_s=args.timeout)


def cmd_quorum_describe(args: argparse.Namespace) -> int:
    client = admin_client(args)
    if args.status:
        answer = client.quorum_status()
        text = render_quorum_status(answer)
    else:
        answer = client.quorum_replication()
        text = render_quorum_replication(answer)
    sys.stdout.write(render_json(answer) if args.format == "json" else text)
    return EXIT_OK


def cmd_kv_put(args: argparse.Namespace) -> int:
    answer = admin_client(args).kv_put(args.key, args.value)
    if args.format == "json":
        sys.stdout.write(render_json(answer))
    else:
        print(
            f"{answer.get('key')}={answer.get('value')} committed at offset {answer.get('offset')}"
        )
    return EXIT_OK


def cmd_kv_get(args: argparse.Namespace) -> int:
    answer = admin_client(args).kv_get(args.key)
    if args.format == "json":
        sys.stdout.write(render_json(answer))
    else:
        print(answer.get("value"))
    return EXIT_OK


def cmd_cluster_health(args: argparse.Namespace) -> int:
    watch = args.watch or args.exit_when_healthy
    try:
        return _cluster_health(args, admin_client(args), watch)
    except KeyboardInterrupt:
        if not watch:
            raise
        return EXIT_OK  # Ctrl-C is how one ends --watch


def _cluster_health(args: argparse.Namespace, client: AdminClient, watch: bool) -> int:
    while True:
        try:
            overview = client.health_overview()
        except AdminError as error:
            if not watch:
                raise
            print(f"kraft cluster health: {error.message}", file=sys.stderr)
            time.sleep(HEALTH_WATCH_INTERVAL_S)
            continue
        healthy = bool(overview.get("is_healthy"))
        sys.stdout.write(
            render_json(overview) if args.format == "json" else render_health(overview)
        )
        sys.stdout.flush()
        if not watch:
            return EXIT_OK if healthy else EXIT_UNHEALTHY
        if healthy and args.exit_when_healthy:
            return EXIT_OK
        time.sleep(HEALTH_WATCH_INTERVAL_S)


def _write_answer(args: argparse.Namespace, answer: Any, text: str) -> int:
    sys.stdout.write(render_json(answer) if args.format == "json" else text)
    return EXIT_OK


def cmd_topic_create(args: argparse.Namespace) -> int:
    configs = dict(args.config)
    answer = admin_client(args).create_topic(
        args.name, args.partitions, args.replication_factor, configs
    )
    return _write_answer(args, answer, f"Created topic {args.name}.\n")


def cmd_topic_list(args: argparse.Namespace) -> int:
    topics = admin_client(args).topics()
    return _write_answer(args, topics, render_topic_list(topics))


def _selected(rows: list[PartitionRow], args: argparse.Namespace) -> list[PartitionRow]:
    """kafka-topics.sh: with both filters, a partition matching either is shown."""
    if not (args.under_replicated_partitions or args.unavailable_partitions):
        return rows
    return [
        row
        for row in rows
        if (args.under_replicated_partitions and row.under_replicated)
        or (args.unavailable_partitions and row.unavailable)
    ]


def cmd_topic_describe(args: argparse.Namespace) -> int:
    client = admin_client(args)
    topic = client.topic(args.name)
    configs = client.topic_configs(args.name)
    partition_ids = sorted(int(p["partition_id"]) for p in client.partitions(args.name))
    rows = _selected([partition_row(p, client.replicas(args.name, p)) for p in partition_ids], args)
    filtered = args.under_replicated_partitions or args.unavailable_partitions
    answer = {
        "topic": topic,
        "configs": configs,
        "partitions": [row.as_json() for row in rows],
    }
    text = render_topic_description(topic, configs, rows, filtered=filtered)
    return _write_answer(args, answer, text)


def cmd_group_list(args: argparse.Namespace) -> int:
    groups = admin_client(args).consumer_groups()
    return _write_answer(args, groups, render_group_list(groups))


def cmd_group_describe(args: argparse.Namespace) -> int:
    client = admin_client(args)
    group = client.consumer_group(args.group)
    lags = client.consumer_group_lags(args.group)
    answer = {"group": group, "lags": lags}
    return _write_answer(args, answer, render_group_description(group, lags))


def cmd_topic_delete(args: argparse.Namespace) -> int:
    admin_client(args).delete_topic(args.name)
    answer = {"topic_name": args.name, "deleted": True}
    return _write_answer(args, answer, f"Deleted topic {args.name}.\n")


def cmd_topic_alter_config(args: argparse.Namespace) -> int:
    set_configs = dict(args.config)
    if not set_configs and not args.delete_config:
        raise UsageError("nothing to change: give -c KEY=VALUE or --delete-config KEY")
    overlap = sorted(set(set_configs) & set(args.delete_config))
    if overlap:
        raise UsageError(f"config {overlap[0]!r} is both set (-c) and deleted (--delete-config)")
    admin_client(args).alter_topic_configs(args.name, set_configs, args.delete_config)
    answer = {"topic_name": args.name, "set": set_configs, "deleted": list(args.delete_config)}
    return _write_answer(args, answer, f"Completed updating config for topic {args.name}.\n")


def _bootstrap_servers(args: argparse.Namespace) -> list[str]:
    # stdout carries the records: the client's log lines go to stderr, warnings and worse.
    configure_logging(None, DATA_COMMAND_LOG_LEVEL, sys.stderr)
    return args.bootstrap_server or default_bootstrap_servers(os.environ)


def cmd_topic_produce(args: argparse.Namespace) -> int:
    tally = asyncio.run(
        produce_lines(
            args.name,
            sys.stdin.buffer.readline,
            _bootstrap_servers(args),
            acks=args.acks,
            partition=args.partition,
            key_separator=args.key_separator,
            errors=sys.stderr,
        )
    )
    for problem in tally.errors:
        print(f"kraft topic produce: {problem}", file=sys.stderr)
    hidden = tally.failed - len(tally.errors)
    if hidden > 0:
        print(f"kraft topic produce: ... and {hidden} more failed lines", file=sys.stderr)
    print(
        f"Produced {tally.acknowledged} of {tally.read} records to topic {args.name}.",
        file=sys.stderr,
    )
    return EXIT_OK if tally.all_acknowledged else EXIT_ERROR


def cmd_topic_consume(args: argparse.Namespace) -> int:
    count = ConsumeCount()
    try:
        asyncio.run(
            consume_records(
                args.name,
                _bootstrap_servers(args),
                partition=args.partition,
                offset=args.offset,
                num=args.num,
                follow=args.follow,
                output_format=args.format,
                out=sys.stdout,
                count=count,
            )
        )
    except KeyboardInterrupt:
        if not args.follow:
            raise
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as Kafka's console consumer does.
        _silence_stdout()
        return EXIT_OK
    print(f"Processed a total of {count.written} messages", file=sys.stderr)
    return EXIT_OK


def _silence_stdout() -> None:
    """Points stdout at /dev/null so that the interpreter's final flush does not complain
    about the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a real file (tests): nothing will flush into a pipe


def cmd_broker_list(args: argparse.Namespace) -> int:
    brokers = admin_client(args).brokers()
    return _write_answer(args, brokers, render_broker_list(brokers))


def cmd_cluster_info(args: argparse.Namespace) -> int:
    client = admin_client(args)
    cluster = client.cluster()
    brokers = client.brokers()
    answer = {"cluster": cluster, "brokers": brokers}
    return _write_answer(args, answer, render_cluster_info(cluster, brokers))


def cmd_cluster_up(args: argparse.Namespace) -> int:
    return cluster_up(
        Path(args.data_dir),
        args.nodes,
        args.port_offset,
        sys.stdout,
        sys.stderr,
        ready_timeout_s=args.ready_timeout,
    )


def cmd_cluster_kill(args: argparse.Namespace) -> int:
    kill_node(Path(args.data_dir), args.node_id, sys.stdout)
    return EXIT_OK


def cmd_cluster_start(args: argparse.Namespace) -> int:
    return start_node(
        Path(args.data_dir),
        args.node_id,
        sys.stdout,
        sys.stderr,
        wait_ready=args.wait,
        ready_timeout_s=args.ready_timeout,
    )


# --- Parser -----------------------------------------------------------------------------------


def _bootstrap_argument(text: str) -> list[str]:
    try:
        return parse_bootstrap(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _node_id_argument(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"node {text!r} is not a node number (1, 2, 3, ...)")
    return int(text)


def _config_pair(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"config {text!r} is not key=value")
    return key.strip(), value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative integer")
    return int(text)


def _acks_argument(text: str) -> str:
    if text not in ("0", "1", "all", "-1"):
        raise argparse.ArgumentTypeError(f"acks {text!r} is not 0, 1 or all")
    return text


def _offset_argument(text: str) -> object:
    try:
        return parse_offset_argument(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _bootstrap_servers_argument(text: str) -> list[str]:
    try:
        return parse_bootstrap_servers(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _data_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--bootstrap-server",
        type=_bootstrap_servers_argument,
        metavar="HOST:PORT[,HOST:PORT...]",
        help=f"rpc listeners of brokers (default: ${BOOTSTRAP_SERVERS_ENV}, else the local "
        "cluster)",
    )
    return parent


def _add_topic_data(actions: Any) -> None:
    data = _data_options()
    produce = actions.add_parser(
        "produce", parents=[data], help="send one record per stdin line (exit 0: all acked)"
    )
    produce.add_argument("name", metavar="NAME")
    produce.add_argument(
        "--acks",
        type=_acks_argument,
        default="all",
        metavar="0|1|all",
        help="0, 1 or all (default: %(default)s)",
    )
    produce.add_argument(
        "--partition", type=_non_negative_int, metavar="P", help="(default: by key, or sticky)"
    )
    produce.add_argument(
        "--key-separator",
        metavar="SEP",
        help="each line is KEY SEP VALUE (split at the first SEP); without it, no key",
    )
    produce.set_defaults(handler=cmd_topic_produce)
    consume = actions.add_parser("consume", parents=[data], help="print records")
    consume.add_argument("name", metavar="NAME")
    consume.add_argument(
        "--partition", type=_non_negative_int, metavar="P", help="(default: every partition)"
    )
    consume.add_argument(
        "--offset",
        type=_offset_argument,
        default="start",
        metavar="start|end|N",
        help="where to begin in each partition (default: %(default)s)",
    )
    consume.add_argument("--num", type=_positive_int, metavar="N", help="stop after N records")
    consume.add_argument(
        "--follow",
        action="store_true",
        help="keep waiting for new records (default: stop at the high watermark of the start)",
    )
    consume.add_argument("--format", choices=("text", "json"), default="text")
    consume.set_defaults(handler=cmd_topic_consume)


def _admin_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--bootstrap",
        type=_bootstrap_argument,
        metavar="URL[,URL...]",
        help=f"HTTP addresses of nodes (default: ${BOOTSTRAP_ENV}, else the local cluster)",
    )
    parent.add_argument("--format", choices=("text", "json"), default="text")
    parent.add_argument(
        "--timeout",
        type=_positive_float,
        default=ADMIN_TIMEOUT_S_DEFAULT,
        metavar="SECONDS",
        help="overall deadline, retries and failover included (default: %(default)s)",
    )
    return parent


def _config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="server.properties")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a configuration key, over the file and KRAFT_CFG_* (repeatable)",
    )


def _add_server(commands: Any) -> None:
    server = commands.add_parser("server", help="run one node in the foreground")
    _config_options(server)
    server.set_defaults(handler=cmd_server)


def _add_storage(commands: Any) -> None:
    storage = commands.add_parser("storage", help="format a node's storage")
    actions = storage.add_subparsers(dest="action", required=True, metavar="ACTION")
    random_uuid = actions.add_parser("random-uuid", help="print a new cluster id")
    random_uuid.set_defaults(handler=cmd_storage_random_uuid)
    format_ = actions.add_parser("format", help="write meta.properties into every data dir")
    _config_options(format_)
    format_.add_argument("--cluster-id", required=True, metavar="ID")
    format_.add_argument(
        "--ignore-formatted",
        action="store_true",
        help="skip directories already formatted for this cluster and node",
    )
    format_.add_argument(
        "--no-initial-controllers",
        action="store_true",
        help="format a replacement for a voter that lost its storage: it rejoins as observer",
    )
    format_.set_defaults(handler=cmd_storage_format)


def _add_quorum(commands: Any, admin: argparse.ArgumentParser) -> None:
    quorum = commands.add_parser("quorum", help="the metadata quorum")
    actions = quorum.add_subparsers(dest="action", required=True, metavar="ACTION")
    describe = actions.add_parser("describe", parents=[admin], help="leader, epoch, lag")
    what = describe.add_mutually_exclusive_group(required=True)
    what.add_argument("--status", action="store_true", help="the quorum's state")
    what.add_argument("--replication", action="store_true", help="each replica's progress")
    describe.set_defaults(handler=cmd_quorum_describe)


def _add_kv(commands: Any, admin: argparse.ArgumentParser) -> None:
    kv = commands.add_parser("kv", help="the demo key-value state machine")
    actions = kv.add_subparsers(dest="action", required=True, metavar="ACTION")
    put = actions.add_parser("put", parents=[admin], help="commit KEY=VALUE")
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE")
    put.set_defaults(handler=cmd_kv_put)
    get = actions.add_parser("get", parents=[admin], help="read KEY")
    get.add_argument("key", metavar="KEY")
    get.set_defaults(handler=cmd_kv_get)


def _add_topic(commands: Any, admin: argparse.ArgumentParser) -> None:
    topic = commands.add_parser("topic", help="create, list, describe, delete, alter topics")
    actions = topic.add_subparsers(dest="action", required=True, metavar="ACTION")
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "-c",
        "--config",
        type=_config_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a topic config (repeatable)",
    )
    create = actions.add_parser("create", parents=[admin, config], help="create a topic")
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "-p", "--partitions", type=_positive_int, metavar="N", help="(default: num.partitions)"
    )
    create.add_argument(
        "-r",
        "--replication-factor",
        type=_positive_int,
        metavar="R",
        help="(default: default.replication.factor)",
    )
    create.set_defaults(handler=cmd_topic_create)
    list_ = actions.add_parser("list", parents=[admin], help="topic names")
    list_.set_defaults(handler=cmd_topic_list)
    describe = actions.add_parser("describe", parents=[admin], help="partitions, leaders, ISR")
    describe.add_argument("name", metavar="NAME")
    describe.add_argument(
        "--under-replicated-partitions",
        action="store_true",
        help="only partitions whose ISR is smaller than their replicas",
    )
    describe.add_argument(
        "--unavailable-partitions", action="store_true", help="only partitions without a leader"
    )
    describe.set_defaults(handler=cmd_topic_describe)
    delete = actions.add_parser("delete", parents=[admin], help="delete a topic")
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(handler=cmd_topic_delete)
    alter = actions.add_parser(
        "alter-config", parents=[admin, config], help="set or delete topic configs"
    )
    alter.add_argument("name", metavar="NAME")
    alter.add_argument(
        "--delete-config",
        action="append",
        default=[],
        metavar="KEY",
        help="reset a config to its default (repeatable)",
    )
    alter.set_defaults(handler=cmd_topic_alter_config)
    _add_topic_data(actions)


def _add_group(commands: Any, admin: argparse.ArgumentParser) -> None:
    group = commands.add_parser("group", help="consumer groups: list, describe with lag")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    list_ = actions.add_parser("list", parents=[admin], help="consumer group ids")
    list_.set_defaults(handler=cmd_group_list)
    describe = actions.add_parser(
        "describe", parents=[admin], help="partitions, committed offsets, lag, members"
    )
    describe.add_argument("group", metavar="GROUP")
    describe.set_defaults(handler=cmd_group_describe)


def _add_broker(commands: Any, admin: argparse.ArgumentParser) -> None:
    broker = commands.add_parser("broker", help="registered brokers")
    actions = broker.add_subparsers(dest="action", required=True, metavar="ACTION")
    list_ = actions.add_parser("list", parents=[admin], help="id, address, rack, status")
    list_.set_defaults(handler=cmd_broker_list)


def _add_cluster(commands: Any, admin: argparse.ArgumentParser) -> None:
    cluster = commands.add_parser("cluster", help="the local cluster, and cluster health")
    actions = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument(
        "--data-dir", default=str(DATA_DIR_DEFAULT), metavar="DIR", help="(default: %(default)s)"
    )
    ready_timeout = argparse.ArgumentParser(add_help=False)
    ready_timeout.add_argument(
        "--ready-timeout",
        type=_positive_float,
        default=READY_TIMEOUT_S_DEFAULT,
        metavar="SECONDS",
        help="how long to wait for readiness (default: %(default)s)",
    )
    up = actions.add_parser(
        "up", parents=[data_dir, ready_timeout], help="start the local cluster, foreground"
    )
    up.add_argument("--nodes", type=int, default=None, help="number of nodes (first time: 3)")
    up.add_argument(
        "--port-offset",
        type=int,
        default=None,
        metavar="K",
        help="added to every port (first time: 0; recorded in DIR/cluster.json)",
    )
    up.set_defaults(handler=cmd_cluster_up)
    kill = actions.add_parser("kill", parents=[data_dir], help="SIGKILL node N")
    kill.add_argument("node_id", type=_node_id_argument, metavar="N")
    kill.set_defaults(handler=cmd_cluster_kill)
    start = actions.add_parser(
        "start", parents=[data_dir, ready_timeout], help="start node N again, in the background"
    )
    start.add_argument("node_id", type=_node_id_argument, metavar="N")
    start.add_argument("--wait", action="store_true", help="wait until the node is ready")
    start.set_defaults(handler=cmd_cluster_start)
    info = actions.add_parser("info", parents=[admin], help="cluster id and brokers")
    info.set_defaults(handler=cmd_cluster_info)
    health = actions.add_parser("health", parents=[admin], help="health overview (exit 10: not)")
    health.add_argument("--watch", action="store_true", help="print the overview every second")
    health.add_argument(
        "--exit-when-healthy", action="store_true", help="watch until healthy, then exit 0"
    )
    health.set_defaults(handler=cmd_cluster_health)


def cmd_chaos(args: argparse.Namespace) -> int:
    from chaos.nemesis import FAULT_KINDS  # the chaos harness is imported only when used
    from chaos.soak import SoakSettings, run_soak

    faults = tuple(name for name in args.faults.split(",") if name) if args.faults else FAULT_KINDS
    unknown = sorted(set(faults) - set(FAULT_KINDS))
    if unknown:
        raise UsageError(f"unknown faults {unknown}; choose from {', '.join(FAULT_KINDS)}")
    if args.seeds is not None and args.soak_seconds is not None:
        raise UsageError("give --seeds or --for, not both")
    settings = SoakSettings(
        first_seed=args.seed,
        seeds=args.seeds if args.seeds is not None else (None if args.soak_seconds else 1),
        soak_seconds=args.soak_seconds,
        duration_s=args.duration,
        out_dir=Path(args.out),
        faults=faults,
        nodes=args.nodes,
        keep_data=args.keep_data,
        mixed=args.mixed,
    )
    return EXIT_OK if run_soak(settings) else EXIT_ERROR


def _add_chaos(commands: Any) -> None:
    chaos = commands.add_parser(
        "chaos",
        help="run a cluster under faults, check the history, write a report",
        description=(
            "Starts its own cluster (network faults go through proxies this command owns, on "
            "127.0.0.1: no root needed), runs acks=all producers, consumers and admin "
            "operations under faults drawn from the seed, checks the recorded history and "
            "writes report.md and timeline.png under --out. With --seeds N or --for SECONDS "
            "it soaks: one run per seed, then a summary (soak.md). Exit 0 only when no run "
            "found an anomaly."
        ),
    )
    chaos.add_argument("--seed", type=int, default=1, help="first seed (default: 1)")
    chaos.add_argument(
        "--duration", type=_positive_float, default=60.0, metavar="SECONDS", help="per run"
    )
    chaos.add_argument("--out", required=True, metavar="DIR", help="where runs are written")
    chaos.add_argument(
        "--faults", metavar="KIND[,KIND...]", help="fault kinds (default: every kind)"
    )
    chaos.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    chaos.add_argument("--seeds", type=int, metavar="N", help="soak: run N seeds in turn")
    chaos.add_argument(
        "--for",
        dest="soak_seconds",
        type=_positive_float,
        metavar="SECONDS",
        help="soak: run seeds in turn until this much time has passed",
    )
    chaos.add_argument(
        "--keep-data", action="store_true", help="keep each run's node data even when valid"
    )
    chaos.add_argument(
        "--mixed", action="store_true", help="let faults overlap (default: one at a time)"
    )
    chaos.set_defaults(handler=cmd_chaos)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kraft",
        description="A Kafka-style event-streaming cluster with a Raft metadata quorum.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage, 10 unhealthy.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin = _admin_options()
    _add_server(commands)
    _add_storage(commands)
    _add_quorum(commands, admin)
    _add_kv(commands, admin)
    _add_topic(commands, admin)
    _add_group(commands, admin)
    _add_broker(commands, admin)
    _add_cluster(commands, admin)
    _add_chaos(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits 2 on a usage error and 0 after --help; hand the code back instead.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    name = " ".join(["kraft", args.command, *([args.action] if "action" in args else [])])
    try:
        return handler(args)
    except UsageError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as error:
        print(f"{name}: configuration error: {error}", file=sys.stderr)
    except AdminError as error:
        print(f"{name}: {error.message} (error_code {error.error_code})", file=sys.stderr)
    except (CommandError, LocalClusterError, ClientError) as error:
        print(f"{name}: {error}", file=sys.stderr)
    except OSError as error:  # a file or directory the command needed (permissions, space)
        print(f"{name}: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
    return EXIT_ERROR
