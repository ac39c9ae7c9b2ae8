"""A small replicated key-value map: the demo state machine that exercises the quorum.

Until the quorum controller exists, it is what `kraft kv put/get` and `/v1/kv/{key}` drive,
through exactly the path the controller will use: propose a record, await its commit, apply
it in log order on every node, snapshot and restore.
"""

from __future__ import annotations

from collections.abc import Callable

import msgpack

from kraft.raft.types import Entry, EntryKind

MAX_KEY_BYTES = 255
MAX_VALUE_BYTES = 64 * 1024


class InvalidRecordError(ValueError):
    """Bytes that are not a record of this state machine; refused before they are proposed,
    since a committed record every node fails to apply would stop the whole quorum."""


def decode_put(data: bytes) -> tuple[str, str]:
    """The (key, value) of a put record; InvalidRecordError for anything else."""
    try:
        decoded = msgpack.unpackb(data)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as error:
        raise InvalidRecordError(f"not a msgpack record: {error}") from None
    if not (isinstance(decoded, list) and len(decoded) == 3 and decoded[0] == "put"):
        raise InvalidRecordError('a record is the array ["put", key, value]')
    _, key, value = decoded
    if not isinstance(key, str) or not isinstance(value, str):
        raise InvalidRecordError("a record's key and value are strings")
    if not 0 < len(key.encode()) <= MAX_KEY_BYTES:
        raise InvalidRecordError(f"a key has 1 to {MAX_KEY_BYTES} bytes")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise InvalidRecordError(f"a value has at most {MAX_VALUE_BYTES} bytes")
    return key, value


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
        # Records are validated before they are proposed (decode_put), so a committed record
        # that does not decode is a bug: crash rather than diverge from the other replicas.
        key, value = decode_put(entry.data)
        self._values[key] = value

    def get(self, key: str) -> str | None:
        return self._values.get(key)

    def __len__(self) -> int:
        return len(self._values)

    def snapshot(self) -> bytes:
        return bytes(msgpack.packb(self._values))

    def snapshot_writer(self) -> Callable[[], bytes]:
        values = dict(self._values)  # strings are immutable: a shallow copy is a capture
        return lambda: bytes(msgpack.packb(values))

    def restore(self, data: bytes) -> None:
        values = msgpack.unpackb(data)
        assert isinstance(values, dict), "a snapshot holds a map"
        self._values = values
