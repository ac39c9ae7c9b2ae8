"""Named limits and timeouts of the internal RPC (STYLE.md §5: bound everything).

Every queue, frame, wait and retry of kraft.rpc is bounded by one of these. The node may
override the per-instance ones through constructor arguments; the protocol ones
(PROTOCOL_VERSION, MAX_FRAME_BYTES) are the same on every node.
"""

from __future__ import annotations

# The version every frame carries (`v`) and the hello announces. A node accepts only the
# versions in SUPPORTED_PROTOCOL_VERSIONS; bump both when the wire layout changes.
PROTOCOL_VERSION = 1
SUPPORTED_PROTOCOL_VERSIONS = frozenset({1})

# A frame's body (after the 4-byte length) may not exceed this; checked before the body is
# read, so a bad length never makes us allocate. A FetchResponse is capped far below it
# (kraft.raft.config.FETCH_MAX_BYTES).
MAX_FRAME_BYTES = 16 * 1024 * 1024

# Handshake: a connection that has not completed its hello in this time is closed.
HANDSHAKE_TIMEOUT_S = 5.0
# A server closes a connection on which nothing arrived for this long; a transport
# reconnects lazily on its next message.
CONNECTION_IDLE_TIMEOUT_S = 300.0
# A write that cannot drain in this time means the peer stopped reading: close.
WRITE_TIMEOUT_S = 10.0
# A server stops to wait for the socket once this much of its answers is still unsent.
WRITE_BUFFER_HIGH_BYTES = 1024 * 1024
# Closing a socket waits at most this long for buffered bytes to go out, then aborts.
CLOSE_TIMEOUT_S = 1.0

# Requests a connection may have in flight at once: a server stops reading that connection
# beyond it (the slow client waits, others do not); a client waits for a free slot.
MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION = 64

# Peer transport (one outbound connection per peer).
PEER_QUEUE_MAX_MESSAGES = 1024  # raft messages queued per peer; beyond it the oldest drop
PEER_QUEUE_MAX_BYTES = 64 * 1024 * 1024  # encoded bytes queued per peer; same policy
WRITE_BATCH_MAX_BYTES = 1024 * 1024  # frames coalesced into one write + drain
CONNECT_TIMEOUT_S = 2.0
RECONNECT_BACKOFF_INITIAL_S = 0.02
RECONNECT_BACKOFF_MAX_S = 1.0
# Each backoff is drawn uniformly in [(1 - this) * delay, delay] from the injected random.
RECONNECT_BACKOFF_JITTER_FRACTION = 0.5

# Connections a server holds open at once; beyond it a new one is refused with an error.
MAX_CONNECTIONS = 1024
