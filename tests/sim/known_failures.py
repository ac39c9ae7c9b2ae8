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
