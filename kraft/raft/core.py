"""The pure Raft core of the metadata quorum (KIP-595, KIP-996 pre-vote, KIP-630 snapshots).

API CONTRACT (the shells in kraft.quorum and tests/sim are written against it):

    core = RaftCore(config: RaftConfig, restored: RestoredState, rng: random.Random)
    core.tick()                              # one tick of logical time passed
    core.step(sender: int, message)          # a message of kraft.raft.messages arrived
    core.propose(records: Sequence[bytes]) -> ProposalAck   # leader only, else NotLeaderError
    core.resign()                            # graceful shutdown: a leader sends EndQuorumEpoch
    core.compact(snapshot: Snapshot)         # the state machine snapshotted offsets < end_offset
                                             # (end_offset <= high watermark); log start moves
    core.has_ready() -> bool
    core.ready() -> Ready                    # what to persist, send and apply (kraft.raft.types)
    core.advance(ready)                      # the shell did everything `ready` asked
    core.status() -> QuorumStatus
    core.role, core.epoch, core.leader_id, core.high_watermark   (read-only properties)

This file is a placeholder until the core lands.
"""
