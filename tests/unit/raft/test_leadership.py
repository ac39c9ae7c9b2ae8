"""The leader's duties and how it ends: proposals, BeginQuorumEpoch resends, check-quorum,
resignation with EndQuorumEpoch (KIP-595), and restarts from persisted state."""

from __future__ import annotations

import pytest

from kraft.raft.config import MAX_RECORDS_PER_PROPOSAL
from kraft.raft.messages import (
    BeginQuorumEpochRequest,
    EndQuorumEpochRequest,
    FetchRequest,
    VoteRequest,
    VoteResponse,
)
from kraft.raft.types import (
    ElectionState,
    NotLeaderError,
    ProposalTooLargeError,
    Role,
    Snapshot,
    SnapshotId,
)
from tests.unit.raft.harness import Cluster, drain, entries_of, make_core, sent


def _leader_cluster(**config: int) -> Cluster:
    cluster = Cluster(**config)
    cluster.add_nodes(3)
    cluster.elect(1)
    return cluster


def test_propose_on_follower_raises_not_leader_with_hint() -> None:
    """KIP-595: only the leader appends; others name the leader they know."""
    cluster = _leader_cluster()

    with pytest.raises(NotLeaderError) as error:
        cluster.core(2).propose([b"a"])

    assert (error.value.leader_id, error.value.epoch) == (1, 1)


def test_propose_appends_data_entries_in_current_epoch() -> None:
    """KIP-595: proposals become DATA entries of the leader's epoch, acked by offset."""
    cluster = _leader_cluster()

    ack = cluster.core(1).propose([b"a", b"b"])
    ready = drain(cluster.core(1))

    assert (ack.epoch, ack.base_offset, ack.last_offset) == (1, 1, 2)
    assert [(e.offset, e.epoch, e.data) for e in ready.entries] == [(1, 1, b"a"), (2, 1, b"b")]


def test_proposals_beyond_limits_are_refused() -> None:
    """STYLE §5: records per proposal and uncommitted entries are bounded (backpressure)."""
    cluster = _leader_cluster(max_uncommitted_entries=3)
    leader = cluster.core(1)

    with pytest.raises(ProposalTooLargeError, match="MAX_RECORDS_PER_PROPOSAL"):
        leader.propose([b"x"] * (MAX_RECORDS_PER_PROPOSAL + 1))
    leader.propose([b"a", b"b", b"c"])
    with pytest.raises(ProposalTooLargeError, match="max_uncommitted_entries=3"):
        leader.propose([b"d"])


def test_leader_resends_begin_quorum_epoch_to_voters_that_have_not_fetched() -> None:
    """KIP-595: BeginQuorumEpoch is resent until each voter fetched in the new epoch."""
    cluster = Cluster()
    cluster.add_nodes(3)
    cluster.partition([{1, 2}, {3}])
    cluster.elect(1)

    cluster.tick([1], 3)
    ready = drain(cluster.core(1))

    assert sent(ready, BeginQuorumEpochRequest, to=3) == [BeginQuorumEpochRequest(1, 1)]
    assert sent(ready, BeginQuorumEpochRequest, to=2) == []


def test_leader_without_fetches_from_majority_resigns() -> None:
    """KIP-595 check-quorum: no Fetch from a majority within fetch_timeout => resign."""
    cluster = _leader_cluster()

    cluster.tick([1], 10)
    ready = drain(cluster.core(1))

    assert cluster.core(1).role is Role.RESIGNED
    assert ready.role_changes[0].reason == "check-quorum: fetches from only [1] of 3 voters"
    assert len(sent(ready, EndQuorumEpochRequest)) == 2
    with pytest.raises(NotLeaderError):
        cluster.core(1).propose([b"a"])


def test_leader_with_fetches_from_majority_stays() -> None:
    """KIP-595 check-quorum: one follower fetching is enough in a quorum of three."""
    cluster = _leader_cluster()
    cluster.partition([{1, 2}, {3}])

    cluster.run(25, [1, 2])

    assert cluster.core(1).role is Role.LEADER


def test_resign_sends_end_quorum_epoch_with_most_caught_up_first() -> None:
    """KIP-595: preferred successors are ranked by log end offset."""
    cluster = _leader_cluster()
    cluster.partition([{1, 3}, {2}])
    cluster.propose(1, [b"a"])
    cluster.stabilize()

    cluster.core(1).resign()
    ready = drain(cluster.core(1))

    request = sent(ready, EndQuorumEpochRequest, to=2)[0]
    assert request.preferred_successors == (3, 2)
    assert ready.role_changes[0].reason == "shutdown"


def test_second_preferred_successor_waits_before_campaigning() -> None:
    """KIP-595: the wait grows with the rank among preferred successors."""
    cluster = _leader_cluster()
    core = cluster.core(3)

    core.step(1, EndQuorumEpochRequest(1, 1, (2, 3)))
    drain(core)
    core.tick()
    waiting = core.role
    core.tick()

    assert waiting is Role.FOLLOWER
    assert core.role is Role.PROSPECTIVE  # after election_timeout / 2 = 2 ticks


def test_resigned_leader_never_grants_a_vote_in_its_epoch() -> None:
    """KIP-595: a resigned leader campaigns later but does not vote in its old epoch."""
    cluster = _leader_cluster()
    cluster.core(1).resign()
    drain(cluster.core(1))

    cluster.core(1).step(2, VoteRequest(2, 2, 1, 1, pre_vote=True))
    response = sent(drain(cluster.core(1)), VoteResponse, to=2)[0]

    assert response.granted is False


def test_status_lists_every_replica_on_the_leader() -> None:
    """SPEC §4 (quorum describe --replication): voters and observers the leader heard."""
    cluster = _leader_cluster()
    cluster.add_observer(4)
    cluster.stabilize()

    status = cluster.core(1).status()

    assert [(r.node_id, r.is_voter, r.log_end_offset) for r in status.replicas] == [
        (1, True, 1),
        (2, True, 1),
        (3, True, 1),
        (4, False, 1),
    ]
    assert cluster.core(2).status().replicas == ()


def test_observer_discovers_the_leader_through_any_voter() -> None:
    """KIP-595: an observer asks a voter; NOT_LEADER or FENCED answers name the leader."""
    cluster = _leader_cluster()
    cluster.add_observer(4)

    cluster.stabilize()

    assert (cluster.core(4).role, cluster.core(4).leader_id) == (Role.OBSERVER, 1)
    assert cluster.core(4).high_watermark == 1


def test_observer_rotates_over_voters_while_no_leader_answers() -> None:
    """KIP-595: discovery fetches move to another voter each fetch_request_timeout."""
    core = make_core(node_id=4, seed=3)
    first = drain(core).messages[0].to

    for _ in range(6):
        core.tick()
    second = drain(core).messages[0].to

    assert first != second


def test_restart_keeps_vote_and_loses_unpersisted_entries() -> None:
    """KIP-595 quorum-state: epoch and vote survive a crash; entries not yet persisted
    do not."""
    cluster = _leader_cluster()
    cluster.core(1).propose([b"a"])  # never handed to the shell

    cluster.crash(1)
    cluster.restart(1)

    core = cluster.core(1)
    assert (core.role, core.epoch, core.voted_id) == (Role.RESIGNED, 1, 1)
    assert core.log_end_offset == 1


def test_restarted_follower_fetches_from_its_leader() -> None:
    """KIP-595: a voter restarted with a known leader follows it at once."""
    core = make_core(node_id=2, election_state=ElectionState(4, voted_id=3, leader_id=3))

    ready = drain(core)

    assert (core.role, core.leader_id, core.voted_id) == (Role.FOLLOWER, 3, 3)
    assert sent(ready, FetchRequest, to=3)


def test_restart_loads_snapshot_and_starts_high_watermark_there() -> None:
    """KIP-630: a restarted node's committed state is its snapshot; entries after it are
    confirmed again by the leader."""
    snapshot = Snapshot(SnapshotId(3, 1), b"a,b")
    core = make_core(node_id=2, snapshot=snapshot, entries=entries_of([1, 2], start=3))

    ready = drain(core)

    assert ready.snapshot_to_load == snapshot
    assert core.high_watermark == 3
    assert (core.log_start_offset, core.log_end_offset) == (3, 5)
