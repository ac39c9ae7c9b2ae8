"""The pure Raft core of the metadata quorum (KIP-595 with KIP-996 pre-vote and KIP-630
snapshots). No I/O, no wall clock, no global random: see kraft.raft.core for the API.

    core.py         RaftCore: the API; builds Readies, dispatches messages
    epoch_check.py  the one common epoch check every message passes first
    election.py     votes, pre-votes, BeginQuorumEpoch, EndQuorumEpoch
    replication.py  Fetch and FetchSnapshot, both ends; the leader's high watermark
    transitions.py  every change of role, and the list of legal ones
    timers.py       what a tick does in each role
    roles.py        the role types (Unattached, Voted, Prospective, Candidate, Leader,
                    Follower, Resigned)
    leader.py       replica progress, parked fetches, check-quorum bookkeeping
    log.py          the in-memory log view and its epoch cache
    context.py      the mutable state the modules above share
    types.py, messages.py, config.py   the contract with the shells
"""
