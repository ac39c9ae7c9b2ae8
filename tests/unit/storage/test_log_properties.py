"""Property test: the file LogStore (and the in-memory one) behave like a plain list of
entries under any sequence of append, truncate, delete_before, read and reopen."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kraft.raft.types import Entry, EntryKind
from kraft.storage.batch_format import entry_size_bytes
from kraft.storage.memory import MemoryLogStore
from kraft.storage.segments import FileLogStore

SMALL_SEGMENT_MAX_BYTES = 400  # rolls every few appends, so every path crosses segments


class ListModel:
    """The whole specification: a list of entries and a start offset."""

    def __init__(self) -> None:
        self.start_offset = 0
        self.entries: list[Entry] = []  # entries[i].offset == start_offset + i

    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self.entries)

    def read(self, start: int, max_bytes: int | None) -> list[Entry]:
        result: list[Entry] = []
        total_size_bytes = 0
        for entry in self.entries[start - self.start_offset :]:
            size_bytes = entry_size_bytes(entry)
            if result and max_bytes is not None and total_size_bytes + size_bytes > max_bytes:
                break
            result.append(entry)
            total_size_bytes += size_bytes
        return result


class LogStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="kraft-log-property-"))
        self.log = FileLogStore(self.directory, segment_max_bytes=SMALL_SEGMENT_MAX_BYTES)
        self.memory_log = MemoryLogStore()
        self.model = ListModel()
        self.last_epoch = 0

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(
        data_sizes=st.lists(st.integers(0, 60), min_size=1, max_size=12),
        epoch_step=st.integers(0, 2),
        kind=st.sampled_from(EntryKind),
    )
    def append(self, data_sizes: list[int], epoch_step: int, kind: EntryKind) -> None:
        self.last_epoch += epoch_step
        start = self.model.end_offset
        entries = [
            Entry(start + index, self.last_epoch, bytes([size % 256]) * size, kind)
            for index, size in enumerate(data_sizes)
        ]
        self.log.append(entries)
        self.memory_log.append(entries)
        self.model.entries.extend(entries)

    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        end_offset = data.draw(st.integers(self.model.start_offset, self.model.end_offset + 2))
        self.log.truncate(end_offset)
        self.memory_log.truncate(end_offset)
        del self.model.entries[end_offset - self.model.start_offset :]

    @rule(data=st.data())
    def delete_before(self, data: st.DataObject) -> None:
        start_offset = data.draw(st.integers(0, self.model.end_offset + 3))
        self.log.delete_before(start_offset)
        self.memory_log.delete_before(start_offset)
        if start_offset > self.model.start_offset:
            kept_from = start_offset - self.model.start_offset
            self.model.entries = self.model.entries[kept_from:]
            self.model.start_offset = start_offset

    @precondition(lambda self: self.model.end_offset >= self.model.start_offset)
    @rule(data=st.data(), max_bytes=st.one_of(st.none(), st.integers(1, 300)))
    def read(self, data: st.DataObject, max_bytes: int | None) -> None:
        start = data.draw(st.integers(self.model.start_offset, self.model.end_offset))
        expected = self.model.read(start, max_bytes)
        assert self.log.read(start, max_bytes) == expected
        assert self.memory_log.read(start, max_bytes) == expected

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = FileLogStore(self.directory, segment_max_bytes=SMALL_SEGMENT_MAX_BYTES)
        assert self.log.recovery_reports == []

    @invariant()
    def offsets_agree(self) -> None:
        expected = (self.model.start_offset, self.model.end_offset)
        assert (self.log.start_offset(), self.log.end_offset()) == expected
        assert (self.memory_log.start_offset(), self.memory_log.end_offset()) == expected


LogStoreMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
TestLogStoreMatchesListModel = LogStoreMachine.TestCase
