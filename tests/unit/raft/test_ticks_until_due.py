"""RaftCore.ticks_until_due: the tick at which a core's next timer can fire. The runtime
sleeps through the ticks before it (kraft/quorum/runtime.py), so each of them must do
nothing, and the simulator checks that on every tick it runs (tests/sim/node.py). Here, a
core cut off from its peers, left to its timers alone, from one role to the next."""

from __future__ import annotations

from kraft.raft.core import RaftCore
from kraft.raft.types import Role
from tests.unit.raft.harness import Cluster, drain

MAX_TIMERS = 50


def timers_fired(core: RaftCore, until_role_is_not: Role) -> list[int]:
    """Ticks the core alone until it leaves `until_role_is_not`; each timer's tick, counted
    from the previous one. Every tick before a due tick must leave nothing to do."""
    fired = []
    while core.role is until_role_is_not:
        assert len(fired) < MAX_TIMERS, f"still {until_role_is_not} after {fired}"
        due = core.ticks_until_due()
        for quiet in range(1, due):
            core.tick()
            assert not core.has_ready(), f"a timer fired at tick {quiet} of {due}"
        core.tick()
        fired.append(due)
        drain(core)
    return fired


def isolated_after_election(node_id: int) -> Cluster:
    cluster = Cluster()
    cluster.add_nodes(3)
    cluster.elect(1)
    cluster.partition([{1}, {2}, {3}])
    drain(cluster.core(node_id))
    return cluster


def test_a_cut_off_leader_is_quiet_until_each_of_its_timers_and_resigns_at_check_quorum() -> None:
    cluster = isolated_after_election(1)
    leader = cluster.core(1)

    fired = timers_fired(leader, until_role_is_not=Role.LEADER)

    config = cluster.node(1).config
    # the followers' parked fetches are answered at their deadline; check-quorum resigns
    # fetch_timeout_ticks after their last fetch, which was when they were cut off
    assert fired == [
        config.fetch_max_wait_ticks,
        config.fetch_timeout_ticks - config.fetch_max_wait_ticks,
    ]
    assert leader.role is Role.RESIGNED


def test_a_cut_off_follower_is_quiet_until_each_of_its_timers_and_campaigns_at_its_deadline() -> (
    None
):
    cluster = isolated_after_election(2)
    follower = cluster.core(2)

    fired = timers_fired(follower, until_role_is_not=Role.FOLLOWER)

    # its unanswered fetch is sent again at each request timeout, until the fetch deadline
    # (fetch_timeout_ticks after the leader's last answer) starts a pre-vote
    timeout = cluster.node(2).config.fetch_request_timeout_ticks
    assert fired[:-1] == [timeout, timeout]
    assert follower.role is Role.PROSPECTIVE
