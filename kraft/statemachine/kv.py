"""A small replicated key-value map: the demo state machine that exercises the quorum.

Until the quorum controller exists, it is what `kraft kv put/get` and `/v1/kv/{key}` drive,
through exactly the path the controller will use: propose a record, await its commit, apply
it in log order on every node, snapshot and restore.
"""

from __future__ import annotations

import msgpack

from kraft.raft.types import Entry, EntryKind

MAX_KEY_BYTES = 255
MAX_VALUE_BYTES = 64 * 1024


class KeyValueStateMachine:
    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    @staticmethod
    def encode_put(key: str, value: str) -> bytes:
        assert len(key.encode()) <= MAX_KEY_BYTES, "callers validate key length"
        assert len(value.encode()) <= MAX_VALUE_BYTES, "callers validate value length"
        return bytes(msgpack.packb(["put", key, value]))

    def apply(self, entry: Entry) -> None:
        assert entry.kind is EntryKind.DATA, "control entries never reach the state machine"
        operation, key, value = msgpack.unpackb(entry.data)
        assert operation == "put", f"unknown operation {operation!r} at offset {entry.offset}"
        self._values[key] = value

    def get(self, key: str) -> str | None:
        return self._values.get(key)

    def __len__(self) -> int:
        return len(self._values)

    def snapshot(self) -> bytes:
        return bytes(msgpack.packb(self._values))

    def restore(self, data: bytes) -> None:
        values = msgpack.unpackb(data)
        assert isinstance(values, dict), "a snapshot holds a map"
        self._values = values
