"""`kraft topic produce` and `kraft topic consume` (SPEC §4): the console producer and
consumer, on top of client.producer and client.consumer. client.cli parses the arguments and
calls `produce_lines` / `consume_records`; the pure helpers here (key splitting, offset
arguments, record rendering) are what the tests pin down.

Results go to the given output, errors and progress to the given error stream. Produce exits
0 only when every line was acknowledged; a line that cannot be sent (no key separator, too
large) is reported with its number and the rest still go.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Literal

from client.consumer import Consumer, ConsumerRecord, OffsetReset
from client.errors import KafkaError
from client.producer import Producer, RecordMetadata
from kraft.protocol.errors import ErrorCode

# The console commands wait this long for a topic's metadata or for buffer space, rather
# than a library's 60 s: a user at a terminal wants to hear about a typo'd topic soon.
CONSOLE_MAX_BLOCK_MS = 15_000
PRODUCE_PROGRESS_INTERVAL_S = 5.0
PRODUCE_ERRORS_SHOWN_MAX = 20  # per-line errors printed; the rest are counted
CONSUME_POLL_TIMEOUT_MS = 1_000

OffsetArgument = Literal["start", "end"] | int
ReadLine = Callable[[], bytes]


def parse_offset_argument(text: str) -> OffsetArgument:
    """`start`, `end` or a non-negative offset; ValueError otherwise."""
    if text in ("start", "end"):
        return "start" if text == "start" else "end"
    if text.isdigit():
        return int(text)
    raise ValueError(f"offset {text!r} is not start, end or a non-negative number")


def split_key(line: bytes, separator: bytes | None) -> tuple[bytes | None, bytes]:
    """(key, value) of one input line: without a separator the whole line is the value and
    the key is null; with one, the line must contain it (Kafka's console producer refuses a
    line without it) and the key is what precedes its first occurrence."""
    if separator is None:
        return None, line
    key, found, value = line.partition(separator)
    if not found:
        raise ValueError(f"no key separator {separator.decode(errors='replace')!r} in the line")
    return key, value


def _text(data: bytes | None) -> str | None:
    # Invalid UTF-8 shows as U+FFFD rather than stopping the stream.
    return None if data is None else data.decode("utf-8", errors="replace")


def render_record(record: ConsumerRecord, output_format: str) -> str:
    """One output line: the value (text; `null` for a null value, as Kafka's console
    consumer prints it), or a JSON object with partition, offset, key, value, timestamp."""
    if output_format == "json":
        fields = {
            "partition": record.partition,
            "offset": record.offset,
            "key": _text(record.key),
            "value": _text(record.value),
            "timestamp": record.timestamp,
        }
        return json.dumps(fields, ensure_ascii=False) + "\n"
    value = _text(record.value)
    return ("null" if value is None else value) + "\n"


# --- produce ----------------------------------------------------------------------------------


@dataclass
class ProduceTally:
    """What happened to the lines read so far; errors are kept for the first few only."""

    read: int = 0
    acknowledged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, line_number: int, problem: str) -> None:
        self.failed += 1
        if len(self.errors) < PRODUCE_ERRORS_SHOWN_MAX:
            self.errors.append(f"line {line_number}: {problem}")

    def on_done(self, line_number: int, future: asyncio.Future[RecordMetadata]) -> None:
        if future.cancelled():
            self.fail(line_number, "cancelled")
        elif future.exception() is not None:
            self.fail(line_number, str(future.exception()))
        else:
            self.acknowledged += 1

    @property
    def all_acknowledged(self) -> bool:
        return self.failed == 0 and self.acknowledged == self.read


async def produce_lines(
    topic: str,
    read_line: ReadLine,
    bootstrap_servers: Sequence[str],
    *,
    acks: str,
    partition: int | None,
    key_separator: str | None,
    errors: IO[str],
) -> ProduceTally:
    """Sends one record per line from `read_line` (b"" at the end; called in a thread, so a
    terminal's stdin does not block the sends) and waits for every acknowledgement.
    Raises ClientError when the topic or the cluster is unusable (nothing more can go)."""
    separator = None if key_separator is None else key_separator.encode()
    tally = ProduceTally()
    loop = asyncio.get_running_loop()
    next_progress = time.monotonic() + PRODUCE_PROGRESS_INTERVAL_S
    async with Producer(
        bootstrap_servers, acks=acks, max_block_ms=CONSOLE_MAX_BLOCK_MS
    ) as producer:
        while line := await loop.run_in_executor(None, read_line):
            tally.read += 1
            line_number = tally.read
            try:
                key, value = split_key(line.rstrip(b"\n").rstrip(b"\r"), separator)
                future = await producer.send(topic, value, key=key, partition=partition)
            except ValueError as error:
                tally.fail(line_number, str(error))
                continue
            except KafkaError as error:
                if error.code != ErrorCode.MESSAGE_TOO_LARGE:
                    raise  # the topic, partition or cluster: every other line would fail too
                tally.fail(line_number, str(error))
                continue
            future.add_done_callback(functools.partial(tally.on_done, line_number))
            if time.monotonic() >= next_progress:
                next_progress += PRODUCE_PROGRESS_INTERVAL_S
                print(f"{tally.read} records read, {tally.acknowledged} acknowledged", file=errors)
        await producer.flush()
    return tally


# --- consume ----------------------------------------------------------------------------------


@dataclass
class ConsumeCount:
    """Records written so far (kept outside the coroutine so Ctrl-C can still report it)."""

    written: int = 0


async def consume_records(
    topic: str,
    bootstrap_servers: Sequence[str],
    *,
    partition: int | None,
    offset: OffsetArgument,
    num: int | None,
    follow: bool,
    output_format: str,
    out: IO[str],
    count: ConsumeCount,
) -> None:
    """Writes records of the topic (or one partition) from `offset` on, until `num` records
    or, without `follow`, until each partition reaches the high watermark it had when this
    started. A numeric offset outside the log is an error (auto_offset_reset 'none')."""
    reset = OffsetReset.NONE if isinstance(offset, int) else OffsetReset.EARLIEST
    async with Consumer(bootstrap_servers, auto_offset_reset=reset.value) as consumer:
        partitions = [partition] if partition is not None else await consumer.partitions_for(topic)
        assigned = [(topic, number) for number in partitions]
        consumer.assign(assigned)
        if offset == "start":
            await consumer.seek_to_beginning()
        elif offset == "end":
            await consumer.seek_to_end()
        else:
            for number in partitions:
                consumer.seek(topic, number, offset)
        stop_offsets = None if follow else await consumer.end_offsets(assigned)
        while num is None or count.written < num:
            if stop_offsets is not None:
                active = [
                    tp
                    for tp in consumer.assignment()
                    if await consumer.position(*tp) < stop_offsets[tp]
                ]
                if not active:
                    return
                consumer.assign(active)  # a finished partition is fetched no more
            limit = None if num is None else num - count.written
            for record in await consumer.poll(CONSUME_POLL_TIMEOUT_MS, max_records=limit):
                if (
                    stop_offsets is not None
                    and record.offset >= stop_offsets[(topic, record.partition)]
                ):
                    continue  # written after we started: beyond this run's end
                out.write(render_record(record, output_format))
                count.written += 1
            out.flush()
