"""Runs the scenario files tests/scenarios/*.txt (STYLE.md §8).

A file is a list of blocks separated by blank lines. Each block is optional `#` comment
lines, one command, a `----` line and the expected trace (`ok` when the command prints
nothing). `pytest tests/scenarios --rewrite` (or KRAFT_REWRITE=1) rewrites the traces from
what the code does now; reviewers read the diff.

Commands (node ids are numbers; IDS is one or more ids, or `all`):
    add-nodes N [key=value ...]     N voters 1..N; values override RaftConfig ticks
    add-observer ID
    tick IDS [xN]                   N ticks of logical time (prints nothing)
    campaign ID                     force ID's election timer to fire (starts a pre-vote)
    process-ready ID                persist, send, apply and advance one Ready
    deliver-msgs ID [N]             step ID with (the first N of) the messages sent to it
    drop-msgs ID                    lose the messages waiting for ID
    stabilize [IDS]                 process Readies and deliver messages until quiet
    run xN [IDS]                    N times: tick every node, stabilize; prints only role
                                    changes, commits, truncations and snapshot loads
    propose ID RECORD...            propose on ID (prints the ack or the error)
    resign ID                       graceful shutdown of ID's leadership
    compact ID                      snapshot ID's state machine at its high watermark
    partition A B | C D ...         only nodes in one group reach each other
    heal
    crash ID                        lose everything ID did not persist
    restart ID
    status ID
    log ID                          ID's persisted log and applied records
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from kraft.raft.types import NotLeaderError, ProposalTooLargeError
from tests.unit.raft.harness import Cluster

SCENARIO_DIR = Path(__file__).parent
SEPARATOR = "----"


@dataclass
class Block:
    comments: list[str]
    command: str
    expected: list[str]


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    comments: list[str] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        if line.startswith("#"):
            comments.append(line)
            continue
        command = line.strip()
        assert index < len(lines) and lines[index] == SEPARATOR, (
            f"command {command!r} is not followed by {SEPARATOR!r}"
        )
        index += 1
        expected = []
        while index < len(lines) and lines[index].strip():
            expected.append(lines[index])
            index += 1
        blocks.append(Block(comments, command, expected))
        comments = []
    return blocks


def render(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        parts.append("\n".join([*block.comments, block.command, SEPARATOR, *block.expected]))
    return "\n\n".join(parts) + "\n"


def _ids(cluster: Cluster, tokens: list[str]) -> list[int]:
    if not tokens or tokens == ["all"]:
        return sorted(cluster.nodes)
    return [int(token) for token in tokens]


def run_command(cluster: Cluster, command: str) -> list[str]:
    name, *args = command.split()
    match name:
        case "add-nodes":
            overrides = {key: int(value) for key, value in (a.split("=") for a in args[1:])}
            cluster.config_overrides.update(overrides)
            return cluster.add_nodes(int(args[0]))
        case "add-observer":
            return cluster.add_observer(int(args[0]))
        case "tick":
            times = int(args[-1][1:]) if args[-1].startswith("x") else 1
            ids = args[:-1] if args[-1].startswith("x") else args
            return cluster.tick(_ids(cluster, ids), times)
        case "run":
            return cluster.run(int(args[0][1:]), _ids(cluster, args[1:]) if args[1:] else None)
        case "campaign":
            cluster.core(int(args[0])).campaign()
            return []
        case "process-ready":
            return cluster.process_ready(int(args[0]))
        case "deliver-msgs":
            count = int(args[1]) if len(args) > 1 else None
            return cluster.deliver(int(args[0]), count)
        case "drop-msgs":
            return cluster.drop(int(args[0]))
        case "stabilize":
            return cluster.stabilize(_ids(cluster, args))
        case "propose":
            try:
                return cluster.propose(int(args[0]), [a.encode() for a in args[1:]])
            except (NotLeaderError, ProposalTooLargeError) as error:
                return [f"{type(error).__name__}: {error}"]
        case "resign":
            cluster.core(int(args[0])).resign()
            return []
        case "compact":
            return cluster.compact(int(args[0]))
        case "partition":
            groups = [{int(t) for t in group.split()} for group in " ".join(args).split("|")]
            return cluster.partition(groups)
        case "heal":
            return cluster.heal()
        case "crash":
            return cluster.crash(int(args[0]))
        case "restart":
            return cluster.restart(int(args[0]))
        case "status":
            return cluster.status(int(args[0]))
        case "log":
            return cluster.log(int(args[0]))
    raise AssertionError(f"unknown scenario command {name!r}")


def run_scenario(blocks: list[Block]) -> list[Block]:
    cluster = Cluster()
    actual = []
    for block in blocks:
        output = run_command(cluster, block.command) or ["ok"]
        actual.append(Block(block.comments, block.command, output))
    return actual


@pytest.mark.parametrize("path", sorted(SCENARIO_DIR.glob("*.txt")), ids=lambda path: path.stem)
def test_scenario(path: Path, request: pytest.FixtureRequest) -> None:
    """Each scenario file's traces match what the core does (STYLE.md §8)."""
    text = path.read_text()
    actual = render(run_scenario(parse(text)))
    rewrite = request.config.getoption("--rewrite", default=False)
    if rewrite or os.environ.get("KRAFT_REWRITE") == "1":
        path.write_text(actual)
        return
    if actual != text:
        diff = difflib.unified_diff(
            text.splitlines(), actual.splitlines(), "expected", "actual", lineterm=""
        )
        pytest.fail(f"{path.name} differs (rerun with --rewrite to accept):\n" + "\n".join(diff))
