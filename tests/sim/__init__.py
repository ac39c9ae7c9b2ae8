"""A deterministic simulator that runs the real Raft cores (STYLE.md §3).

Modules: simulation (the event loop, phases and fault injection), node (the shell that
drives one RaftCore through its Ready values, with crash points), storage (durable and
unsynced writes, crash, recovery), network (delays, drops, duplicates, partitions),
statemachine (the replicated value list and its snapshots), workload (clients and their
acknowledgements), checker (the invariants), faults (the fault mix of a seed), soak (many
seeds from the command line), fake_core (a single-voter stand-in for testing the
simulator itself), known_failures (seeds xfailed for known core and controller bugs).

The controller mode runs the real QuorumController on the quorum leader and a real
MetadataStateMachine on every node: controller_simulation (the mode and its controller
shell, after kraft.controller.service), controller_statemachine (the MetadataStateMachine
behind the shell's state-machine interface), controller_workload (brokers and an
administrator in simulated time), controller_checker (the committed-history invariants).

    .venv/bin/python -m pytest tests/sim -q              # the CI batch of seeds
    .venv/bin/python -m pytest tests/sim --seed=N --sim-trace   # replay one seed
    .venv/bin/python -m tests.sim.soak --seeds 10000 --jobs 2    # a soak
    .venv/bin/python -m pytest tests/sim/test_controller_seeds.py -q   # the controller batch
    .venv/bin/python -m tests.sim.soak --controller --seeds 5000 --jobs 2   # its soak
"""
