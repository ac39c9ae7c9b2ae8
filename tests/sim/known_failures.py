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
# The batch runs the default rule ("log_applied") on seeds 0..149 plus every seed listed in
# either map for that rule; the other rules run only on the seeds listed for them. Entries of
# KNOWN_CONTROLLER_BUGS run as xfail(strict=True): once fixed, move them to the regressions.
_DECISION_COMMITTED_IN_PART = (
    "a controller decision committed in part: its records were appended as separate entries "
    "and a crash kept a torn prefix that the next epoch committed. Fixed: a batch of "
    "decisions is one entry (kraft.controller.serde.encode_batch)"
)
_CONTROLLER_STALLED_BY_TRUNCATED_PROPOSAL = (
    "a re-elected leader whose uncommitted proposal had been truncated waited the whole "
    "commit timeout, deciding nothing. Fixed: the runtime fails proposals whose entries are "
    "truncated (QuorumRuntime._fail_pending_from)"
)
CONTROLLER_REGRESSION_SEEDS: dict[tuple[int, str], str] = {
    **{
        (seed, "log_applied"): _DECISION_COMMITTED_IN_PART
        for seed in (28, 1038, 1536, 1543, 1676, 1944, 2259, 2518, 3699, 3930, 4925)
    },
    **{
        (seed, "log_applied"): _CONTROLLER_STALLED_BY_TRUNCATED_PROPOSAL
        for seed in (1863, 3042, 3648, 3675, 3846, 4149, 4380, 4970)
    },
    (101, "service"): (
        "a new active controller decided from an image missing entries of earlier epochs "
        "(it activated at its stale high watermark). Fixed: ControllerService activates once "
        "its whole log is applied"
    ),
    (341, "epoch_committed"): (
        "a controller rebuilt after a commit timeout missed its own timed-out entries, which "
        "later committed (topic 'alpha' created twice). Fixed by the same activation rule"
    ),
}

KNOWN_CONTROLLER_BUGS: dict[tuple[int, str], str] = {}
