"""A seeded, lossy network between simulated nodes.

Every message is delivered after a random delay in ticks, so messages reorder freely. The
network can drop or duplicate messages, block directed links (symmetric and one-way
partitions, bridge topologies), and slow a node down (messages to it take longer). All
randomness comes from the simulation's one `random.Random`; nothing here reads a clock.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class InFlight:
    deliver_at: int
    sequence: int
    source: int
    destination: int
    message: object

    def sort_key(self) -> tuple[int, int]:
        return (self.deliver_at, self.sequence)


@dataclass(slots=True)
class NetworkSettings:
    drop_probability: float = 0.0
    duplicate_probability: float = 0.0
    min_delay_ticks: int = 1
    max_delay_ticks: int = 2
    # A few messages linger in the network far longer, and arrive after timeouts, elections
    # and restarts have moved their receiver on.
    long_delay_probability: float = 0.0
    long_delay_max_ticks: int = 150


@dataclass(slots=True)
class SimNetwork:
    rng: random.Random
    settings: NetworkSettings = field(default_factory=NetworkSettings)
    blocked: set[tuple[int, int]] = field(default_factory=set)  # (source, destination)
    slow_extra_delay_ticks: dict[int, int] = field(default_factory=dict)
    _queue: list[tuple[int, int, InFlight]] = field(default_factory=list)
    _sequence: int = 0
    sent: int = 0
    dropped: int = 0
    duplicated: int = 0

    def send(self, now: int, source: int, destination: int, message: object) -> None:
        self.sent += 1
        if self._is_blocked(source, destination):
            self.dropped += 1
            return
        if self.rng.random() < self.settings.drop_probability:
            self.dropped += 1
            return
        copies = 1
        if self.rng.random() < self.settings.duplicate_probability:
            copies = 2
            self.duplicated += 1
        for _ in range(copies):
            delay = self.rng.randint(self.settings.min_delay_ticks, self.settings.max_delay_ticks)
            delay += self.slow_extra_delay_ticks.get(destination, 0)
            if self.rng.random() < self.settings.long_delay_probability:
                delay += self.rng.randint(1, self.settings.long_delay_max_ticks)
            self._sequence += 1
            item = InFlight(now + delay, self._sequence, source, destination, message)
            heapq.heappush(self._queue, (item.deliver_at, item.sequence, item))

    def next_due(self, now: int) -> InFlight | None:
        """Pops the next message due at or before `now`; a message that meets a partition
        on arrival is lost."""
        while self._queue and self._queue[0][0] <= now:
            item = heapq.heappop(self._queue)[2]
            if self._is_blocked(item.source, item.destination):
                self.dropped += 1
                continue
            return item
        return None

    def in_flight(self) -> int:
        return len(self._queue)

    def _is_blocked(self, source: int, destination: int) -> bool:
        return (source, destination) in self.blocked

    # -- topologies -----------------------------------------------------------------------

    def heal(self) -> None:
        self.blocked = set()
        self.slow_extra_delay_ticks = {}

    def partition(self, side_a: list[int], side_b: list[int]) -> None:
        """Symmetric: nobody in side_a hears anybody in side_b, and back."""
        for a in side_a:
            for b in side_b:
                self.blocked.add((a, b))
                self.blocked.add((b, a))

    def block_one_way(self, source: int, destination: int) -> None:
        self.blocked.add((source, destination))

    def bridge(self, nodes: list[int], bridge_node: int) -> None:
        """Every node hears only `bridge_node`, which hears everyone."""
        for a in nodes:
            for b in nodes:
                if a != b and bridge_node not in (a, b):
                    self.blocked.add((a, b))
