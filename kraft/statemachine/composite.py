"""The state machine a node applies the metadata log to: cluster metadata plus the demo
key-value map, told apart by the first element of each msgpack record.

Metadata records (kraft.controller.serde) start with an integer type tag; key-value records
(kraft.statemachine.kv) with the string "put". A snapshot holds both parts.
"""

from __future__ import annotations

from collections.abc import Callable

import msgpack

from kraft.quorum.runtime import StateMachine
from kraft.raft.types import Entry
from kraft.statemachine.kv import KeyValueStateMachine


def is_kv_record(data: bytes) -> bool:
    # ["put", key, value] encodes as 0x93 (array of 3), then 0xa3 "put"
    return data[:5] == b"\x93\xa3put"


class CompositeStateMachine:
    def __init__(self, metadata: StateMachine, kv: KeyValueStateMachine) -> None:
        self.metadata = metadata
        self.kv = kv

    def apply(self, entry: Entry) -> None:
        if is_kv_record(entry.data):
            self.kv.apply(entry)
        else:
            self.metadata.apply(entry)

    def snapshot_writer(self) -> Callable[[], bytes]:
        write_metadata = self.metadata.snapshot_writer()
        write_kv = self.kv.snapshot_writer()
        return lambda: bytes(msgpack.packb([write_metadata(), write_kv()]))

    def restore(self, data: bytes) -> None:
        metadata, kv = msgpack.unpackb(data)
        self.metadata.restore(metadata)
        self.kv.restore(kv)
