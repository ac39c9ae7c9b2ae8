"""Seeds that fail because of a known, not yet fixed bug of the core (kraft/raft/core.py).

Each is marked xfail(strict=True) in the seed batch, so CI stays green while the failure
stays visible; once the bug is fixed the seed passes, strict xfail turns that into a
failure, and the entry must go. The reason names the bug.
"""

from __future__ import annotations

KNOWN_CORE_BUGS: dict[int, str] = {}
