"""Seeds that fail because of a known, not yet fixed bug of the core (kraft/raft/core.py).

Each is marked xfail(strict=True) in the seed batch, so CI stays green while the failure
stays visible; once the bug is fixed the seed passes, strict xfail turns that into a
failure, and the entry must go. The reason names the bug.
"""

from __future__ import annotations

SNAPSHOT_REPLACED_DURING_DOWNLOAD = (
    "core bug: the leader serves only its latest snapshot (FetchSnapshot answers "
    "SNAPSHOT_NOT_FOUND for an older one) and compacts its log at every snapshot, so a "
    "replica whose snapshot download takes longer than the snapshot interval restarts it "
    "forever and never catches up while clients keep proposing"
)

KNOWN_CORE_BUGS: dict[int, str] = {
    seed: SNAPSHOT_REPLACED_DURING_DOWNLOAD
    for seed in (60, 86, 232, 264, 311, 337, 425, 450, 494, 495)
}
