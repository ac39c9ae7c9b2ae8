"""The fault mix of one run, drawn from its seed.

Each seed picks a profile (no faults, heavy loss, partitions, crash-restart, slow nodes,
duplication and reordering, or everything at once) and the rates within it, so a batch of
seeds covers every mix while any one seed stays reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PROFILES = (
    "calm",
    "lossy",
    "partitions",
    "crashes",
    "slow",
    "duplicate_reorder",
    "stale",
    "chaos",
)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    profile: str
    drop_probability: float
    duplicate_probability: float
    max_delay_ticks: int  # while faults are on; after healing the base delay applies
    long_delay_probability: float  # a message lingers for up to LONG_DELAY_MAX_TICKS
    partition_every_ticks: int | None  # mean gap between partition changes
    crash_every_ticks: int | None  # mean gap between crashes
    slow_every_ticks: int | None  # mean gap between slow-node changes
    max_down_ticks: int  # a crashed node restarts within this many ticks


def choose_plan(rng: random.Random, base_max_delay_ticks: int) -> FaultPlan:
    profile = rng.choice(PROFILES)
    drop = 0.0
    duplicate = 0.0
    long_delay = 0.0
    max_delay = base_max_delay_ticks
    partition_every: int | None = None
    crash_every: int | None = None
    slow_every: int | None = None
    if profile == "lossy":
        drop = rng.uniform(0.1, 0.4)
    elif profile == "partitions":
        partition_every = rng.randint(30, 150)
        drop = rng.choice([0.0, 0.02])
    elif profile == "crashes":
        crash_every = rng.randint(20, 120)
    elif profile == "slow":
        slow_every = rng.randint(30, 150)
    elif profile == "duplicate_reorder":
        duplicate = rng.uniform(0.05, 0.3)
        max_delay = rng.randint(base_max_delay_ticks + 2, base_max_delay_ticks + 8)
    elif profile == "stale":
        # Old messages meet restarted nodes and newer epochs.
        long_delay = rng.uniform(0.02, 0.1)
        duplicate = rng.uniform(0.0, 0.1)
        crash_every = rng.randint(20, 100)
        partition_every = rng.choice([None, rng.randint(40, 200)])
    elif profile == "chaos":
        drop = rng.uniform(0.0, 0.15)
        duplicate = rng.uniform(0.0, 0.1)
        long_delay = rng.uniform(0.0, 0.03)
        max_delay = rng.randint(base_max_delay_ticks, base_max_delay_ticks + 4)
        partition_every = rng.randint(40, 200)
        crash_every = rng.randint(40, 200)
        slow_every = rng.randint(40, 200)
    return FaultPlan(
        profile=profile,
        drop_probability=drop,
        duplicate_probability=duplicate,
        max_delay_ticks=max_delay,
        long_delay_probability=long_delay,
        partition_every_ticks=partition_every,
        crash_every_ticks=crash_every,
        slow_every_ticks=slow_every,
        max_down_ticks=rng.randint(5, 120),
    )
