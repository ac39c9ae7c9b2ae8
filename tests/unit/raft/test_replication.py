"""Replication by Fetch (KIP-595), divergence (KIP-101), snapshots (KIP-630), and the
high watermark (Raft §5.3-5.4)."""

from __future__ import annotations

import pytest

from kraft.raft.core import RaftCore
from kraft.raft.messages import (
    ErrorCode,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    VoteResponse,
)
from kraft.raft.types import (
    ElectionState,
    Entry,
    OffsetAndEpoch,
    Role,
    Snapshot,
    SnapshotId,
)
from tests.unit.raft.harness import Cluster, drain, entries_of, make_core, sent


def _elect_alone(core: RaftCore) -> None:
    """Make `core` (node 1 of three) leader with node 2's pre-vote and vote."""
    core.campaign()
    drain(core)
    core.step(2, VoteResponse(core.epoch, True, None, pre_vote=True))
    drain(core)
    core.step(2, VoteResponse(core.epoch, True, None))
    drain(core)
    assert core.role is Role.LEADER


def _leader_cluster() -> Cluster:
    cluster = Cluster()
    cluster.add_nodes(3)
    cluster.elect(1)
    return cluster


def _fetch(
    epoch: int, replica: int, offset: int, last_epoch: int, request_id: int = 99
) -> FetchRequest:
    return FetchRequest(epoch, replica, request_id, offset, last_epoch, max_bytes=1 << 20)


def test_leader_fences_fetch_from_stale_epoch() -> None:
    """KIP-595: a fetch of an older epoch gets FENCED_LEADER_EPOCH with our epoch and
    leader, so the fetcher learns who leads now."""
    cluster = _leader_cluster()

    cluster.core(1).step(2, _fetch(0, 2, 0, 0))
    response = sent(drain(cluster.core(1)), FetchResponse, to=2)[0]

    assert (response.error, response.epoch, response.leader_id) == (
        ErrorCode.FENCED_LEADER_EPOCH,
        1,
        1,
    )
    assert response.entries == ()


def test_fetch_from_newer_epoch_gets_unknown_leader_epoch() -> None:
    """KIP-595: a fetch of an epoch we do not know is refused; we adopt the epoch."""
    cluster = _leader_cluster()

    cluster.core(1).step(2, _fetch(4, 2, 1, 1))
    ready = drain(cluster.core(1))

    assert sent(ready, FetchResponse, to=2)[0].error is ErrorCode.UNKNOWN_LEADER_EPOCH
    assert (cluster.core(1).role, cluster.core(1).epoch) == (Role.UNATTACHED, 4)


def test_follower_answers_fetch_with_not_leader_and_the_leader_it_knows() -> None:
    """KIP-595: only the leader serves fetches; others point at it."""
    cluster = _leader_cluster()

    cluster.core(2).step(4, _fetch(1, 4, 0, 0))
    response = sent(drain(cluster.core(2)), FetchResponse, to=4)[0]

    assert (response.error, response.leader_id) == (ErrorCode.NOT_LEADER, 1)


def test_leader_reports_divergence_at_end_of_follower_epoch() -> None:
    """KIP-101/KIP-595: if the follower's last fetched epoch ends earlier on the leader,
    the answer is the end offset of the largest epoch <= it, not entries."""
    leader_entries = entries_of([1, 1, 3, 3])
    core = make_core(node_id=1, entries=leader_entries, election_state=ElectionState(3, voted_id=1))
    _elect_alone(core)

    core.step(2, _fetch(core.epoch, 2, 4, 2))  # follower holds epoch 2 up to offset 4
    response = sent(drain(core), FetchResponse, to=2)[0]

    assert response.diverging == OffsetAndEpoch(2, 1)
    assert response.entries == ()


def test_follower_truncates_to_diverging_offset_and_fetches_again() -> None:
    """KIP-595: a follower truncates to min(diverging offset, its own end of that epoch),
    in the Ready that sends the next fetch."""
    core = make_core(
        node_id=2, entries=entries_of([1, 1, 2, 2]), election_state=ElectionState(3, leader_id=1)
    )
    request = sent(drain(core), FetchRequest, to=1)[0]
    assert (request.fetch_offset, request.last_fetched_epoch) == (4, 2)

    diverging = OffsetAndEpoch(2, 1)
    core.step(1, FetchResponse(3, 1, request.request_id, ErrorCode.NONE, 0, 0, diverging=diverging))
    ready = drain(core)

    assert ready.truncate_to == 2
    next_request = sent(ready, FetchRequest, to=1)[0]
    assert (next_request.fetch_offset, next_request.last_fetched_epoch) == (2, 1)


def test_truncation_below_high_watermark_is_a_bug() -> None:
    """Raft §5.4 (Leader Completeness): committed entries are never removed."""
    core = make_core(
        node_id=2, entries=entries_of([1, 1, 1]), election_state=ElectionState(1, leader_id=1)
    )
    request = sent(drain(core), FetchRequest, to=1)[0]
    core.step(1, FetchResponse(1, 1, request.request_id, ErrorCode.NONE, 3, 0))
    request = sent(drain(core), FetchRequest, to=1)[0]
    assert core.high_watermark == 3

    bad = FetchResponse(
        1, 1, request.request_id, ErrorCode.NONE, 3, 0, diverging=OffsetAndEpoch(1, 1)
    )
    with pytest.raises(AssertionError, match="below the high watermark"):
        core.step(1, bad)


def test_follower_ignores_response_to_a_request_it_no_longer_waits_for() -> None:
    """KIP-595 (request ids): a duplicated or reordered old answer is never acted on."""
    core = make_core(node_id=2, election_state=ElectionState(1, leader_id=1))
    request = sent(drain(core), FetchRequest, to=1)[0]

    stale = FetchResponse(
        1, 1, request.request_id + 7, ErrorCode.NONE, 1, 0, entries=(Entry(0, 1, b"x"),)
    )
    core.step(1, stale)
    ready = drain(core)

    assert ready.entries == []
    assert core.log_end_offset == 0


def test_follower_resends_fetch_after_request_timeout() -> None:
    """KIP-595: a fetch lost in the network is resent after fetch_request_timeout."""
    core = make_core(node_id=2, election_state=ElectionState(1, leader_id=1))
    first = sent(drain(core), FetchRequest, to=1)[0]

    for _ in range(6):
        core.tick()
    again = sent(drain(core), FetchRequest, to=1)

    assert len(again) == 1
    assert again[0].request_id > first.request_id


def test_follower_high_watermark_is_capped_by_its_own_log() -> None:
    """KIP-595: a follower's high watermark is min(leader's, its log end offset)."""
    core = make_core(node_id=2, election_state=ElectionState(1, leader_id=1))
    request = sent(drain(core), FetchRequest, to=1)[0]

    entries = (Entry(0, 1, b"a"), Entry(1, 1, b"b"))
    core.step(1, FetchResponse(1, 1, request.request_id, ErrorCode.NONE, 5, 0, entries=entries))
    ready = drain(core)

    assert ready.high_watermark == 2
    assert [e.offset for e in ready.committed] == [0, 1]


def test_leader_parks_caught_up_fetch_until_new_entries() -> None:
    """KIP-595: a fetch with nothing new waits; a proposal answers it in the next Ready."""
    cluster = _leader_cluster()
    leader = cluster.core(1)
    leader.step(2, _fetch(1, 2, 1, 1, request_id=50))
    assert sent(drain(leader), FetchResponse, to=2) == []

    leader.propose([b"a"])
    response = sent(drain(leader), FetchResponse, to=2)[0]

    assert response.request_id == 50
    assert [e.data for e in response.entries] == [b"a"]


def test_leader_answers_parked_fetch_after_max_wait() -> None:
    """KIP-595: a parked fetch is answered empty after fetch_max_wait_ticks."""
    cluster = _leader_cluster()
    leader = cluster.core(1)
    leader.step(2, _fetch(1, 2, 1, 1, request_id=51))
    drain(leader)

    for _ in range(3):
        leader.tick()
    early = sent(drain(leader), FetchResponse, to=2)
    leader.tick()
    late = sent(drain(leader), FetchResponse, to=2)

    assert early == []
    assert [(r.request_id, r.entries) for r in late] == [(51, ())]


def test_high_watermark_needs_a_majority_of_voters() -> None:
    """Raft §5.3: an entry is committed once a majority of voters hold it."""
    cluster = _leader_cluster()
    leader = cluster.core(1)
    leader.propose([b"a", b"b"])
    drain(leader)

    leader.step(4, _fetch(1, 4, 3, 1))  # an observer holding everything does not count
    drain(leader)
    hw_with_observer = leader.high_watermark
    leader.step(2, _fetch(1, 2, 3, 1))
    drain(leader)

    assert hw_with_observer == 1
    assert leader.high_watermark == 3


def test_leader_counts_only_its_persisted_entries() -> None:
    """KIP-595: the leader's own log end counts once the shell persisted it."""
    core = make_core(voters=(1,))
    drain(core)
    drain(core)
    assert core.high_watermark == 1

    core.propose([b"a"])
    ready = core.ready()
    before_advance = core.high_watermark
    core.advance(ready)

    assert before_advance == 1
    assert core.high_watermark == 2


def test_new_leader_commits_old_entries_only_with_its_leader_change() -> None:
    """Raft §5.4.2: entries of older epochs are committed only by committing an entry of
    the current epoch (the LEADER_CHANGE)."""
    core = make_core(
        node_id=1, entries=entries_of([1, 1]), election_state=ElectionState(1, voted_id=2)
    )
    _elect_alone(core)

    core.step(2, _fetch(2, 2, 2, 1))  # node 2 holds the old entries only
    drain(core)
    old_only = core.high_watermark
    core.step(2, _fetch(2, 2, 3, 2))  # now also the LEADER_CHANGE at offset 2
    drain(core)

    assert old_only == 0
    assert core.high_watermark == 3


def test_read_index_waits_for_the_leader_change_to_commit() -> None:
    """Raft thesis §6.4: a new leader's high watermark can be short of what an earlier
    leader committed until its own LEADER_CHANGE commits, so it has no read index until
    then; a follower never has one."""
    core = make_core(
        node_id=1, entries=entries_of([1, 1]), election_state=ElectionState(1, voted_id=2)
    )
    _elect_alone(core)

    core.step(2, _fetch(2, 2, 2, 1))
    drain(core)
    before_commit = core.read_index()
    core.step(2, _fetch(2, 2, 3, 2))
    drain(core)

    assert before_commit is None
    assert core.read_index() == core.high_watermark == 3


def test_a_follower_has_no_read_index() -> None:
    cluster = _leader_cluster()

    assert cluster.core(1).read_index() == cluster.core(1).high_watermark
    assert cluster.core(2).read_index() is None


def test_leader_answers_fetch_below_log_start_with_snapshot_id() -> None:
    """KIP-630: entries below the log start are gone; the follower must load the snapshot."""
    cluster = _leader_cluster()
    cluster.propose(1, [b"a", b"b"])
    cluster.stabilize()
    cluster.compact(1)
    drain(cluster.core(1))

    cluster.core(1).step(2, _fetch(1, 2, 1, 1))
    response = sent(drain(cluster.core(1)), FetchResponse, to=2)[0]

    assert response.snapshot_id == SnapshotId(3, 1)
    assert response.log_start_offset == 3


def test_leader_serves_only_the_snapshot_it_holds() -> None:
    """KIP-630: FetchSnapshot of an unknown snapshot gets SNAPSHOT_NOT_FOUND."""
    cluster = _leader_cluster()

    cluster.core(1).step(2, FetchSnapshotRequest(1, 2, 7, SnapshotId(9, 1), 0, 100))
    response = sent(drain(cluster.core(1)), FetchSnapshotResponse, to=2)[0]

    assert response.error is ErrorCode.SNAPSHOT_NOT_FOUND


def test_follower_installs_fetched_snapshot_and_resets_its_log() -> None:
    """KIP-630: once every chunk arrived, the follower persists and loads the snapshot
    and its log starts at the snapshot's end."""
    core = make_core(
        node_id=2,
        entries=entries_of([1]),
        election_state=ElectionState(1, leader_id=1),
        snapshot_chunk_max_bytes=3,
    )
    request = sent(drain(core), FetchRequest, to=1)[0]
    snapshot_id = SnapshotId(4, 1)
    core.step(
        1, FetchResponse(1, 1, request.request_id, ErrorCode.NONE, 4, 4, snapshot_id=snapshot_id)
    )
    chunk_request = sent(drain(core), FetchSnapshotRequest, to=1)[0]
    core.step(
        1,
        FetchSnapshotResponse(
            1, 1, chunk_request.request_id, ErrorCode.NONE, snapshot_id, 5, 0, b"a,b"
        ),
    )
    chunk_request = sent(drain(core), FetchSnapshotRequest, to=1)[0]
    assert chunk_request.position == 3

    core.step(
        1,
        FetchSnapshotResponse(
            1, 1, chunk_request.request_id, ErrorCode.NONE, snapshot_id, 5, 3, b",c"
        ),
    )
    ready = drain(core)

    assert ready.snapshot == Snapshot(snapshot_id, b"a,b,c")
    assert ready.snapshot_to_load == ready.snapshot
    assert (ready.log_start_offset, ready.truncate_to, ready.high_watermark) == (4, 4, 4)
    assert (core.log_start_offset, core.log_end_offset) == (4, 4)
    assert sent(ready, FetchRequest, to=1)[0].fetch_offset == 4


def test_compact_beyond_high_watermark_is_refused() -> None:
    """KIP-630: only committed (and applied) entries may be snapshotted."""
    cluster = _leader_cluster()
    cluster.core(1).propose([b"a"])
    drain(cluster.core(1))

    with pytest.raises(AssertionError, match="beyond the high watermark"):
        cluster.core(1).compact(Snapshot(SnapshotId(2, 1), b"a"))


def test_restarted_follower_does_not_reuse_request_ids() -> None:
    """KIP-595 request ids: an answer to a request of an earlier incarnation, delayed
    across a restart, must not match the new outstanding request (simulator seed 227)."""
    before = make_core(node_id=2, election_state=ElectionState(1, leader_id=1), seed=1)
    after = make_core(node_id=2, election_state=ElectionState(1, leader_id=1), seed=2)

    first = sent(drain(before), FetchRequest, to=1)[0]
    second = sent(drain(after), FetchRequest, to=1)[0]

    assert first.request_id != second.request_id


def test_follower_ignores_entries_that_do_not_continue_its_log() -> None:
    """Raft §5.3: entries are appended only at the log end offset the fetch asked from."""
    core = make_core(
        node_id=2, entries=entries_of([1, 1]), election_state=ElectionState(1, leader_id=1)
    )
    request = sent(drain(core), FetchRequest, to=1)[0]

    wrong = (Entry(0, 1, b"x"),)
    core.step(1, FetchResponse(1, 1, request.request_id, ErrorCode.NONE, 1, 0, entries=wrong))
    ready = drain(core)

    assert ready.entries == []
    assert core.log_end_offset == 2
