"""Limits and constants of the native data protocol (docs/decisions/0005): request kinds,
the sentinel values, and the bounds a broker enforces on every request."""

from __future__ import annotations

KIND_METADATA = "metadata"
KIND_PRODUCE = "produce"
KIND_FETCH = "fetch"
KIND_LIST_OFFSETS = "list_offsets"
DATA_REQUEST_KINDS = frozenset({KIND_METADATA, KIND_PRODUCE, KIND_FETCH, KIND_LIST_OFFSETS})

CONSUMER_REPLICA_ID = -1  # a fetch from a consumer, not a follower
NO_LEADER = -1
UNKNOWN_LEADER_EPOCH = -1  # a fetch that does not check the leader epoch
EARLIEST_TIMESTAMP = -2  # list_offsets: the log start offset
LATEST_TIMESTAMP = -1  # list_offsets: the high watermark

# Bounds checked on every request (STYLE §5): beyond them the request is INVALID_REQUEST.
MAX_PARTITIONS_PER_REQUEST = 1000
MAX_PRODUCE_TIMEOUT_MS = 300_000
MAX_FETCH_WAIT_MS = 30_000
# A fetch answer must fit an rpc frame (kraft.rpc.config.MAX_FRAME_BYTES, 16 MiB) with room
# for its envelope.
MAX_FETCH_BYTES = 8 * 1024 * 1024
MAX_TOPIC_NAME_LENGTH = 249
