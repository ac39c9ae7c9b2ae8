"""Seeds worth running in every batch, and those failing for a known core bug.

REGRESSION_SEEDS are seeds outside the default batch that once found a bug: the batch runs
them too. KNOWN_CORE_BUGS marks seeds that fail because of a known, not yet fixed bug of
the core (kraft/raft/): they run as xfail(strict=True), so CI stays green while the failure
stays visible; once the bug is fixed the seed passes, strict xfail turns that into a
failure, and the entry must go. The reason names the bug.

Seeds are tied to the simulator's code: a change in what a run draws from its Random
changes what each seed does, so re-check this list after such a change.
"""

from __future__ import annotations

# 20998, 44624, 46253: a crash between saving an installed snapshot and truncating the log
# above it left entries of an older epoch above the snapshot, and the node could not
# restart. Fixed in RaftCore's restore (kraft/raft/core.py, _without_stale_suffix).
REGRESSION_SEEDS: tuple[int, ...] = (20998, 44624, 46253)

KNOWN_CORE_BUGS: dict[int, str] = {}

# Controller mode (tests/sim/test_controller_seeds.py): (seed, activation rule) -> the bug.
# The batch runs the default rule ("log_applied") on seeds 0..149 plus every seed listed here
# for that rule; the other rules run only on the seeds listed for them. Each entry runs as
# xfail(strict=True): once the bug is fixed, it passes, the strict xfail fails, and the entry
# must go.
_DECISION_COMMITTED_IN_PART = (
    "a controller decision commits in part: a proposal's entries are appended one by one, a "
    "crash keeps a torn prefix of them (the real log recovery keeps whole entries), and the "
    "next epoch commits that prefix; e.g. a TopicRecord without its PartitionRecords, and a "
    "topic without partitions later crashes alter_topic_configs (min() of nothing)"
)
_CONTROLLER_STALLED_BY_TRUNCATED_PROPOSAL = (
    "the quorum runtime fails a pending proposal only when its last offset commits, a "
    "snapshot covers it, or COMMIT_TIMEOUT_S passes; a leader whose uncommitted proposal was "
    "truncated and that leads again with a shorter log waits that whole timeout (10 s), "
    "deciding nothing, because ControllerService awaits one proposal at a time"
)
KNOWN_CONTROLLER_BUGS: dict[tuple[int, str], str] = {
    **{
        (seed, "log_applied"): _DECISION_COMMITTED_IN_PART
        for seed in (28, 1038, 1536, 1543, 1676, 1944, 2259, 2518, 3699, 3930, 4925)
    },
    **{
        (seed, "log_applied"): _CONTROLLER_STALLED_BY_TRUNCATED_PROPOSAL
        for seed in (1863, 3042, 3648, 3675, 3846, 4149, 4380, 4970)
    },
    (101, "service"): (
        "ControllerService._active_controller activates a new leader once it has applied up to "
        "its high watermark, but a new leader's high watermark is the stale one it had as a "
        "follower: the working controller misses entries of earlier epochs that then commit, "
        "and re-registers brokers with epochs already taken; every node fails to apply them"
    ),
    (341, "epoch_committed"): (
        "after a commit timeout ControllerService rebuilds its controller from the committed "
        "image while its own timed-out entries are still in the log and later commit: the "
        "new controller creates topic 'alpha' a second time and every node fails to apply it"
    ),
}
