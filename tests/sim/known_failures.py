"""Seeds that fail because of a known, not yet fixed bug of the core (kraft/raft/core.py).

Each is marked xfail(strict=True) in the seed batch, so CI stays green while the failure
stays visible (and the mark must go once the bug is fixed). The reason names the bug.
"""

from __future__ import annotations

KNOWN_CORE_BUGS: dict[int, str] = {}
