"""Elections: pre-vote (KIP-996), votes (Raft §5.2, §5.4.1; KIP-595), BeginQuorumEpoch."""

from __future__ import annotations

from kraft.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    ErrorCode,
    FetchRequest,
    VoteRequest,
    VoteResponse,
)
from kraft.raft.types import ElectionState, Role
from tests.unit.raft.harness import Cluster, drain, entries_of, make_core, sent


def test_election_timeout_starts_pre_vote_without_persisting_anything() -> None:
    """KIP-996: a Prospective asks for epoch + 1 but changes no persisted state."""
    core = make_core(election_state=ElectionState(3))

    for _ in range(8):  # election timeout 4 + jitter < 4
        core.tick()
    ready = drain(core)

    assert core.role is Role.PROSPECTIVE
    assert core.epoch == 3
    assert ready.election_state is None
    requests = sent(ready, VoteRequest)
    assert [(r.epoch, r.pre_vote) for r in requests] == [(4, True), (4, True)]


def test_voter_grants_pre_vote_when_no_leader_and_log_up_to_date() -> None:
    """KIP-996: grant iff the log is at least as up to date and no live leader is known."""
    core = make_core(node_id=2, entries=entries_of([1, 1]), election_state=ElectionState(1))

    core.step(1, VoteRequest(2, 1, last_epoch=1, log_end_offset=2, pre_vote=True))
    core.step(3, VoteRequest(2, 3, last_epoch=1, log_end_offset=1, pre_vote=True))
    ready = drain(core)

    assert [m.granted for m in sent(ready, VoteResponse)] == [True, False]
    assert ready.election_state is None  # a pre-vote changes nothing
    assert core.epoch == 1


def test_follower_rejects_pre_vote_while_its_leader_is_alive() -> None:
    """KIP-996: a follower that heard from its leader within fetch_timeout refuses, and
    names the leader so that the prospective follows it."""
    cluster = Cluster()
    cluster.add_nodes(3)
    cluster.elect(1)

    cluster.core(2).step(3, VoteRequest(2, 3, last_epoch=1, log_end_offset=1, pre_vote=True))
    ready = drain(cluster.core(2))

    response = sent(ready, VoteResponse, to=3)[0]
    assert (response.granted, response.leader_id, response.pre_vote) == (False, 1, True)


def test_follower_grants_pre_vote_once_its_leader_timed_out() -> None:
    """KIP-996: after fetch_timeout without its leader, a follower grants pre-votes."""
    cluster = Cluster()
    cluster.add_nodes(3)
    cluster.elect(1)
    cluster.tick([2], 10)  # fetch timeout 10; the jitter keeps node 2 a follower for now
    assert cluster.core(2).role is Role.FOLLOWER

    cluster.core(2).step(3, VoteRequest(2, 3, last_epoch=1, log_end_offset=1, pre_vote=True))
    ready = drain(cluster.core(2))

    assert sent(ready, VoteResponse, to=3)[0].granted


def test_pre_vote_majority_makes_a_candidate_that_persists_its_vote() -> None:
    """KIP-996, Raft §5.2: a majority of pre-votes (counting itself) leads to a real
    election in epoch + 1 with the vote for itself persisted before requests go out."""
    core = make_core()
    core.campaign()
    drain(core)

    core.step(2, VoteResponse(0, True, None, pre_vote=True))
    ready = drain(core)

    assert core.role is Role.CANDIDATE
    assert ready.election_state == ElectionState(1, voted_id=1)
    assert [r.pre_vote for r in sent(ready, VoteRequest)] == [False, False]


def test_prospective_follows_leader_named_in_a_rejection() -> None:
    """KIP-996: a rejection naming the leader of our epoch ends the pre-vote."""
    core = make_core(election_state=ElectionState(2))
    core.campaign()
    drain(core)

    core.step(2, VoteResponse(2, False, 3, pre_vote=True))
    ready = drain(core)

    assert (core.role, core.leader_id, core.epoch) == (Role.FOLLOWER, 3, 2)
    assert sent(ready, FetchRequest, to=3)


def test_lost_pre_vote_returns_to_previous_state() -> None:
    """KIP-996: a majority of rejections ends the pre-vote in the same epoch."""
    core = make_core(election_state=ElectionState(2, voted_id=3))
    core.campaign()
    drain(core)

    core.step(2, VoteResponse(2, False, None, pre_vote=True))
    core.step(3, VoteResponse(2, False, None, pre_vote=True))
    ready = drain(core)

    assert (core.role, core.epoch, core.voted_id) == (Role.VOTED, 2, 3)
    assert ready.role_changes[-1].reason == "lost pre-vote: rejected by [2, 3]"


def test_voter_grants_one_vote_per_epoch() -> None:
    """Raft §5.2: at most one vote per epoch, persisted in the Ready that grants it."""
    core = make_core(node_id=3)

    core.step(1, VoteRequest(5, 1, last_epoch=0, log_end_offset=0))
    core.step(2, VoteRequest(5, 2, last_epoch=0, log_end_offset=0))
    core.step(1, VoteRequest(5, 1, last_epoch=0, log_end_offset=0))
    ready = drain(core)

    assert [m.granted for m in sent(ready, VoteResponse)] == [True, False, True]
    assert ready.election_state == ElectionState(5, voted_id=1)


def test_voter_rejects_candidate_with_shorter_log() -> None:
    """Raft §5.4.1: a vote needs a log at least as up to date, but the epoch is adopted."""
    core = make_core(node_id=3, entries=entries_of([1, 2, 2]), election_state=ElectionState(2))

    core.step(1, VoteRequest(3, 1, last_epoch=2, log_end_offset=2))
    ready = drain(core)

    assert not sent(ready, VoteResponse)[0].granted
    assert (core.role, core.epoch) == (Role.UNATTACHED, 3)
    assert ready.election_state == ElectionState(3)


def test_voter_rejects_vote_from_stale_epoch_with_its_own_epoch() -> None:
    """KIP-595: a request from an older epoch is refused with our epoch, so the sender
    learns it; nothing changes here."""
    core = make_core(node_id=2, election_state=ElectionState(4))

    core.step(1, VoteRequest(3, 1, last_epoch=0, log_end_offset=0))
    ready = drain(core)

    assert sent(ready, VoteResponse)[0] == VoteResponse(4, False, None)
    assert ready.election_state is None


def test_votes_from_non_voters_are_refused() -> None:
    """KIP-595: only voters may ask for votes; a non-voter gets NOT_VOTER and no epoch
    change happens."""
    core = make_core(node_id=2)

    core.step(9, VoteRequest(7, 9, last_epoch=0, log_end_offset=0))
    core.step(9, BeginQuorumEpochRequest(7, 9))
    ready = drain(core)

    assert sent(ready, VoteResponse)[0].error is ErrorCode.NOT_VOTER
    assert sent(ready, BeginQuorumEpochResponse)[0].error is ErrorCode.NOT_VOTER
    assert core.epoch == 0


def test_observer_never_grants_a_vote() -> None:
    """KIP-595: observers are not part of the quorum and never vote."""
    core = make_core(node_id=4)

    core.step(1, VoteRequest(1, 1, last_epoch=0, log_end_offset=0))
    core.step(2, VoteRequest(1, 2, last_epoch=0, log_end_offset=0, pre_vote=True))
    ready = drain(core)

    assert [m.granted for m in sent(ready, VoteResponse)] == [False, False]
    assert core.role is Role.OBSERVER


def test_candidate_wins_with_majority_and_appends_leader_change() -> None:
    """KIP-595: the new leader appends a LEADER_CHANGE entry and sends BeginQuorumEpoch."""
    cluster = Cluster()
    cluster.add_nodes(3)

    cluster.elect(1)

    core = cluster.core(1)
    assert (core.role, core.epoch) == (Role.LEADER, 1)
    assert cluster.node(2).storage.election_state == ElectionState(1, voted_id=1, leader_id=1)
    assert core.high_watermark == 1  # the LEADER_CHANGE entry is committed


def test_candidate_times_out_and_pre_votes_again() -> None:
    """Raft §5.2: without a majority before its deadline a candidate tries again, first
    with a pre-vote in its new epoch (KIP-996)."""
    core = make_core()
    core.campaign()
    drain(core)
    core.step(2, VoteResponse(0, True, None, pre_vote=True))
    drain(core)

    for _ in range(8):
        core.tick()
    ready = drain(core)

    assert (core.role, core.epoch) == (Role.PROSPECTIVE, 1)
    assert {r.epoch for r in sent(ready, VoteRequest)} == {2}


def test_single_voter_elects_itself_immediately() -> None:
    """KIP-595: a quorum of one needs nobody's vote."""
    core = make_core(voters=(1,))

    ready = drain(core)

    assert (core.role, core.epoch) == (Role.LEADER, 1)
    assert ready.election_state == ElectionState(1, voted_id=1, leader_id=1)
    assert drain(core).committed[0].offset == 0  # its LEADER_CHANGE, once persisted


def test_begin_quorum_epoch_makes_unattached_voter_a_follower() -> None:
    """KIP-595: BeginQuorumEpoch of a newer epoch makes a voter follow and fetch."""
    core = make_core(node_id=2)

    core.step(1, BeginQuorumEpochRequest(3, 1))
    ready = drain(core)

    assert (core.role, core.epoch, core.leader_id) == (Role.FOLLOWER, 3, 1)
    assert ready.election_state == ElectionState(3, leader_id=1)
    assert sent(ready, FetchRequest, to=1)[0].fetch_offset == 0


def test_higher_epoch_response_makes_a_leader_step_down() -> None:
    """Raft §5.1, KIP-595: any message of a newer epoch ends our role in the old one."""
    cluster = Cluster()
    cluster.add_nodes(3)
    cluster.elect(1)

    cluster.core(1).step(2, VoteResponse(5, False, 3))
    ready = drain(cluster.core(1))

    assert (cluster.core(1).role, cluster.core(1).epoch) == (Role.FOLLOWER, 5)
    assert ready.role_changes[0].reason == "higher epoch 5 from node 2"


def test_pre_vote_from_a_newer_epoch_moves_the_receiver_to_that_epoch() -> None:
    """KIP-996 liveness: a voter that became candidate in epoch E+1 (with a log too short
    to win) ignores answers of epoch E as stale; the receivers adopt E+1 so that an
    up-to-date voter can be elected above it. Found by the simulator (seed 264)."""
    cluster = Cluster()
    cluster.add_nodes(3)
    cluster.elect(1)
    cluster.propose(1, [b"a"])
    cluster.stabilize()

    cluster.core(2).step(3, VoteRequest(3, 3, last_epoch=0, log_end_offset=0, pre_vote=True))
    ready = drain(cluster.core(2))

    response = sent(ready, VoteResponse, to=3)[0]
    assert (response.epoch, response.granted) == (2, False)
    assert (cluster.core(2).role, cluster.core(2).epoch) == (Role.UNATTACHED, 2)
