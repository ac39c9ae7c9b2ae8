"""Figures of the internal RPC: codec throughput and loopback transport throughput.

    .venv/bin/python bench/rpc_codec.py [--quick]

Prints: encode and decode time of a FetchResponse with 1,000 entries of 100 bytes (and of
10,000), one-way raft messages per second between two PeerTransports on 127.0.0.1, the
same for FetchResponses of 1,000 entries (MB/s), and request/response round trips per
second. Single process, one event loop: both ends share one CPU core.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from kraft.raft.messages import ErrorCode, FetchRequest, FetchResponse, Message
from kraft.raft.types import Entry
from kraft.rpc.codec import pack_message, unpack_message
from kraft.rpc.server import RpcServer
from kraft.rpc.transport import PeerTransport

CLUSTER_ID = "YmVuY2htYXJrLWNsdXN0ZX"


def fetch_response(entry_count: int, entry_bytes: int = 100) -> FetchResponse:
    entries = tuple(Entry(offset, 5, b"x" * entry_bytes) for offset in range(entry_count))
    return FetchResponse(5, 1, 99, ErrorCode.NONE, entry_count, 0, entries)


def best_of(repeats: int, runs: int, action: Callable[[], object]) -> float:
    """Seconds per call of `action`, best of `repeats` rounds of `runs` calls."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(runs):
            action()
        best = min(best, (time.perf_counter() - started) / runs)
    return best


def bench_codec(quick: bool) -> None:
    for entry_count in (1_000, 10_000):
        message = fetch_response(entry_count)
        packed = pack_message(message)
        assert unpack_message(packed) == message
        runs = max(1, (20 if quick else 200) * 1000 // entry_count)
        encode_s = best_of(5, runs, lambda m=message: pack_message(m))  # type: ignore[misc]
        decode_s = best_of(5, runs, lambda p=packed: unpack_message(p))  # type: ignore[misc]
        total_s = encode_s + decode_s
        print(
            f"codec  FetchResponse {entry_count:>6} x 100 B ({len(packed) / 1e6:.2f} MB): "
            f"encode {encode_s * 1e3:.3f} ms, decode {decode_s * 1e3:.3f} ms, "
            f"both {total_s * 1e3:.3f} ms = {entry_count / total_s / 1e6:.2f} M entries/s, "
            f"{len(packed) / total_s / 1e6:.0f} MB/s"
        )


async def bench_transport(count: int, message: Message, label: str) -> None:
    received = 0
    done = asyncio.Event()

    def on_raft_message(sender: int, _: Message) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set()

    async def on_request(sender: int | None, body: dict[str, Any]) -> dict[str, Any]:
        return {"n": body["n"]}

    server = RpcServer("127.0.0.1", 0, CLUSTER_ID, 2, on_raft_message, on_request)
    await server.start()
    transport = PeerTransport(1, CLUSTER_ID, "dir-1", {2: ("127.0.0.1", server.port)},
                              rng=random.Random(1))  # fmt: skip
    await transport.start()
    try:
        transport.send(2, message)  # connect before the clock starts
        count += 1
        await asyncio.wait_for(_wait_for(lambda: received == 1), 5)
        started = time.perf_counter()
        for _ in range(count - 1):
            # Stay under the queue bound (drop-oldest would lose messages, not slow down).
            while transport.queued_messages(2) >= 512:
                await asyncio.sleep(0)
            transport.send(2, message)
        await asyncio.wait_for(done.wait(), 60)
        elapsed_s = time.perf_counter() - started
        stats = transport.stats()
        per_s = (count - 1) / elapsed_s
        print(
            f"loop   {label}: {count - 1} in {elapsed_s:.2f} s = {per_s:,.0f} msg/s, "
            f"{stats['bytes_sent'] / elapsed_s / 1e6:.1f} MB/s, dropped {stats['messages_dropped']}"
        )
        rounds = 2000
        started = time.perf_counter()
        for n in range(rounds):
            await transport.request(2, {"kind": "bench", "n": n}, 5)
        sequential_s = time.perf_counter() - started
        started = time.perf_counter()
        await asyncio.gather(
            *(transport.request(2, {"kind": "bench", "n": n}, 30) for n in range(rounds))
        )
        concurrent_s = time.perf_counter() - started
        if label.startswith("small"):
            print(
                f"loop   requests: {rounds / sequential_s:,.0f}/s one at a time "
                f"({sequential_s / rounds * 1e6:.0f} us each), "
                f"{rounds / concurrent_s:,.0f}/s with {rounds} in flight (64 per connection)"
            )
    finally:
        await transport.close()
        await server.close()


async def _wait_for(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.001)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI smoke)")
    quick = parser.parse_args().quick
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    bench_codec(quick)
    small = FetchRequest(5, 1, 7, 1234, 5, 1024 * 1024)
    asyncio.run(bench_transport(20_000 if quick else 200_000, small, "small FetchRequest"))
    big = fetch_response(1000)
    asyncio.run(bench_transport(200 if quick else 2_000, big, "FetchResponse 1000 x 100 B"))


if __name__ == "__main__":
    main()
