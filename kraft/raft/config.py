"""Settings of the pure Raft core, in ticks of its logical clock.

The shell converts the millisecond settings of the node's configuration (kraft.config) into
ticks; the core never sees wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bounds on what one node holds or sends at once (see STYLE.md §5).
FETCH_MAX_BYTES = 1024 * 1024  # entry bytes in one FetchResponse
SNAPSHOT_CHUNK_MAX_BYTES = 1024 * 1024  # bytes in one FetchSnapshotResponse
MAX_RECORDS_PER_PROPOSAL = 10_000
MAX_UNCOMMITTED_ENTRIES = 200_000  # leader refuses proposals past this (backpressure)


@dataclass(frozen=True, slots=True)
class RaftConfig:
    node_id: int
    voters: frozenset[int]
    # A voter that hears nothing from its leader for this long starts an election (pre-vote
    # first); a leader that hears no Fetch from a majority for this long resigns.
    fetch_timeout_ticks: int = 50
    # Random extra wait before campaigning, drawn in [0, election_timeout_ticks), so that
    # voters who lose their leader together do not split the vote; also a candidate's
    # deadline before it retries.
    election_timeout_ticks: int = 20
    # A leader answers a caught-up Fetch at once when it has something new, else after this.
    fetch_max_wait_ticks: int = 20
    # A follower resends a Fetch that got no answer within this many ticks.
    fetch_request_timeout_ticks: int = 30
    # A leader resends BeginQuorumEpoch to voters that have not fetched yet this often.
    begin_quorum_resend_ticks: int = 10
    fetch_max_bytes: int = FETCH_MAX_BYTES
    snapshot_chunk_max_bytes: int = SNAPSHOT_CHUNK_MAX_BYTES
    max_uncommitted_entries: int = MAX_UNCOMMITTED_ENTRIES

    @property
    def is_voter(self) -> bool:
        return self.node_id in self.voters

    def validate(self) -> None:
        assert self.voters, "the quorum needs at least one voter"
        assert self.election_timeout_ticks >= 1
        assert self.fetch_max_wait_ticks < self.fetch_timeout_ticks, (
            "a caught-up follower must hear from its leader before it gives up on it"
        )
        assert self.fetch_max_wait_ticks < self.fetch_request_timeout_ticks
        assert self.fetch_max_bytes > 0
        assert self.snapshot_chunk_max_bytes > 0
