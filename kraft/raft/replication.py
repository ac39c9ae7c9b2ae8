"""Log replication by pull (KIP-595 Fetch, KIP-630 FetchSnapshot): both ends.

Followers and observers send one Fetch at a time from their log end offset; the leader
checks the (offset, last fetched epoch) pair against its epoch cache and answers with
entries, with the point where the follower's log diverges, or with the snapshot to load.
A fetch that finds nothing new is parked until there is news or fetch_max_wait_ticks pass.

Callers have already applied the common epoch check: every message handled here carries
the node's current epoch.
"""

from __future__ import annotations

from kraft.raft.context import Context
from kraft.raft.leader import LeaderState, ParkedFetch
from kraft.raft.log import RaftLog
from kraft.raft.messages import (
    ErrorCode,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
)
from kraft.raft.roles import Follower, Leader, SnapshotDownload, Unattached
from kraft.raft.types import Entry, OffsetAndEpoch, Snapshot, SnapshotId

# ---------------------------------------------------------------- follower and observer side


def send_fetch(ctx: Context, state: Follower) -> None:
    """Ask the leader for what follows our log end (or for the next snapshot chunk)."""
    if state.download is not None:
        _send_snapshot_chunk_request(ctx, state, state.download)
        return
    request = FetchRequest(
        epoch=ctx.epoch,
        replica_id=ctx.node_id,
        request_id=ctx.new_request_id(),
        fetch_offset=ctx.log.end_offset,
        last_fetched_epoch=ctx.log.last_epoch,
        max_bytes=ctx.config.fetch_max_bytes,
    )
    ctx.send(state.leader_id, request)


def send_discovery_fetch(ctx: Context, state: Unattached) -> None:
    """An observer that knows no leader asks a voter, chosen at random, who it is."""
    assert not ctx.is_voter, "voters find the leader by election, not by asking around"
    choices = [voter for voter in sorted(ctx.config.voters) if voter != ctx.last_discovery_voter]
    voter = ctx.rng.choice(choices or sorted(ctx.config.voters))
    ctx.last_discovery_voter = voter
    state.next_discovery_tick = ctx.now + ctx.config.fetch_request_timeout_ticks
    request = FetchRequest(
        epoch=ctx.epoch,
        replica_id=ctx.node_id,
        request_id=ctx.new_request_id(),
        fetch_offset=ctx.log.end_offset,
        last_fetched_epoch=ctx.log.last_epoch,
        max_bytes=ctx.config.fetch_max_bytes,
    )
    ctx.send(voter, request)


def _send_snapshot_chunk_request(ctx: Context, state: Follower, download: SnapshotDownload) -> None:
    request = FetchSnapshotRequest(
        epoch=ctx.epoch,
        replica_id=ctx.node_id,
        request_id=ctx.new_request_id(),
        snapshot_id=download.snapshot_id,
        position=len(download.data),
        max_bytes=ctx.config.snapshot_chunk_max_bytes,
    )
    ctx.send(state.leader_id, request)


def _heard_from_leader(ctx: Context, state: Follower) -> None:
    state.last_leader_contact_tick = ctx.now
    if not state.leader_resigned:
        jitter = ctx.jitter() if ctx.is_voter else 0
        state.fetch_deadline = ctx.now + ctx.config.fetch_timeout_ticks + jitter


def handle_fetch_response(ctx: Context, sender: int, response: FetchResponse) -> None:
    state = ctx.role
    if not isinstance(state, Follower) or response.request_id != ctx.outstanding_request_id:
        return  # not the answer to our outstanding request: a duplicate or a stale one
    if sender != state.leader_id or response.error is not ErrorCode.NONE:
        return  # the request timer sends the next fetch
    ctx.outstanding_request_id = None
    _heard_from_leader(ctx, state)
    if response.diverging is not None:
        _truncate_diverging(ctx, response.diverging)
    elif response.snapshot_id is not None:
        state.download = SnapshotDownload(response.snapshot_id)
    else:
        if response.entries and response.entries[0].offset != ctx.log.end_offset:
            return  # not an answer to the fetch we sent: the request timer sends another
        for entry in response.entries:
            ctx.log.append(entry)
        ctx.raise_high_watermark(min(response.high_watermark, ctx.log.end_offset))
    send_fetch(ctx, state)


def _truncate_diverging(ctx: Context, diverging: OffsetAndEpoch) -> None:
    own_end = ctx.log.end_offset_for_epoch(diverging.epoch).offset
    ctx.truncate_log(min(diverging.offset, own_end))


def handle_fetch_snapshot_response(
    ctx: Context, sender: int, response: FetchSnapshotResponse
) -> None:
    state = ctx.role
    if not isinstance(state, Follower) or response.request_id != ctx.outstanding_request_id:
        return
    if sender != state.leader_id or state.download is None:
        return
    ctx.outstanding_request_id = None
    _heard_from_leader(ctx, state)
    download = state.download
    if response.error is not ErrorCode.NONE or response.snapshot_id != download.snapshot_id:
        state.download = None  # the leader moved on to a newer snapshot: fetch to learn it
    elif response.position == len(download.data):
        download.data.extend(response.chunk)
        assert len(download.data) <= response.size, (
            f"snapshot {download.snapshot_id} longer than its size {response.size}"
        )
        if len(download.data) == response.size:
            state.download = None
            install_snapshot(ctx, Snapshot(download.snapshot_id, bytes(download.data)))
    send_fetch(ctx, state)


def install_snapshot(ctx: Context, snapshot: Snapshot) -> None:
    """Replace the whole log by a snapshot fetched from the leader (KIP-630)."""
    end = snapshot.snapshot_id.end_offset
    assert end > ctx.high_watermark, (
        f"fetched snapshot ending at {end} is not past the high watermark {ctx.high_watermark}"
    )
    ctx.log.reset_to_snapshot(snapshot.snapshot_id)
    ctx.snapshot = snapshot
    ctx.pending_snapshot = snapshot
    ctx.pending_log_start_offset = end
    # After dropping what lies below the new log start, drop what lies above it too: the
    # log is empty and starts at the snapshot's end.
    ctx.pending_truncate_to = end
    ctx.pending_snapshot_to_load = snapshot
    ctx.committed_handed_offset = end
    ctx.raise_high_watermark(end)


# ---------------------------------------------------------------------------- leader side


def validate_fetch_position(
    log: RaftLog, snapshot: Snapshot | None, offset: int, epoch: int
) -> SnapshotId | OffsetAndEpoch | None:
    """None if our log holds the follower's (offset, epoch); else what it must do first:
    load a snapshot (its position is below our log start) or truncate (it diverges)."""
    if log.start_offset > 0:
        below_start = offset < log.start_offset
        at_start_other_epoch = offset == log.start_offset and epoch != log.start_epoch
        if below_start or at_start_other_epoch or epoch < log.start_epoch:
            assert snapshot is not None, f"log starts at {log.start_offset} without a snapshot"
            return snapshot.snapshot_id
    end = log.end_offset_for_epoch(epoch)
    if end.epoch != epoch or end.offset < offset:
        return end
    return None


def handle_fetch_request(ctx: Context, sender: int, request: FetchRequest) -> None:
    state = ctx.role
    if not isinstance(state, Leader):
        answer_fetch_with_error(ctx, sender, request, ErrorCode.NOT_LEADER)
        return
    leader = state.state
    leader.record_fetch_attempt(sender, ctx.now)
    leader.parked.pop(sender, None)  # a replica has one fetch outstanding: the newest
    position = validate_fetch_position(
        ctx.log, ctx.snapshot, request.fetch_offset, request.last_fetched_epoch
    )
    if isinstance(position, SnapshotId):
        ctx.send(sender, _response(ctx, request, snapshot_id=position))
        return
    if isinstance(position, OffsetAndEpoch):
        ctx.send(sender, _response(ctx, request, diverging=position))
        return
    leader.record_valid_fetch(sender, request.fetch_offset, ctx.log.end_offset, ctx.now)
    maybe_advance_high_watermark(ctx, leader)
    news = leader.replica(sender).high_watermark_sent < ctx.high_watermark
    if request.fetch_offset < ctx.log.end_offset or news:
        answer_fetch(ctx, sender, request)
    else:
        deadline = ctx.now + ctx.config.fetch_max_wait_ticks
        leader.parked[sender] = ParkedFetch(request, deadline)


def answer_fetch(ctx: Context, sender: int, request: FetchRequest) -> None:
    max_bytes = min(request.max_bytes, ctx.config.fetch_max_bytes)
    entries = ctx.log.read(request.fetch_offset, max_bytes)
    if isinstance(ctx.role, Leader):
        ctx.role.state.replica(sender).high_watermark_sent = ctx.high_watermark
    ctx.send(sender, _response(ctx, request, entries=entries))


def answer_parked_fetches(ctx: Context, leader: LeaderState, only_expired: bool) -> None:
    for replica_id in sorted(leader.parked):
        parked = leader.parked[replica_id]
        if only_expired and parked.deadline > ctx.now:
            continue
        del leader.parked[replica_id]
        answer_fetch(ctx, replica_id, parked.request)


def maybe_advance_high_watermark(ctx: Context, leader: LeaderState) -> bool:
    value = leader.quorum_high_watermark(ctx.log.persisted_end_offset)
    return value is not None and ctx.raise_high_watermark(value)


def _servable_snapshot(ctx: Context, snapshot_id: SnapshotId) -> Snapshot | None:
    """The latest snapshot, or an older one still being downloaded (see Context)."""
    timeout = ctx.config.fetch_timeout_ticks
    for stale_id in [
        known for known, (_, tick) in ctx.snapshots_in_download.items() if ctx.now - tick > timeout
    ]:
        del ctx.snapshots_in_download[stale_id]
    if ctx.snapshot is not None and ctx.snapshot.snapshot_id == snapshot_id:
        return ctx.snapshot
    in_download = ctx.snapshots_in_download.get(snapshot_id)
    return in_download[0] if in_download is not None else None


def handle_fetch_snapshot_request(ctx: Context, sender: int, request: FetchSnapshotRequest) -> None:
    state = ctx.role
    snapshot = _servable_snapshot(ctx, request.snapshot_id)
    if not isinstance(state, Leader):
        error = ErrorCode.NOT_LEADER
    elif snapshot is None:
        error = ErrorCode.SNAPSHOT_NOT_FOUND
    else:
        ctx.snapshots_in_download[snapshot.snapshot_id] = (snapshot, ctx.now)
        state.state.record_fetch_attempt(sender, ctx.now)
        max_bytes = min(request.max_bytes, ctx.config.snapshot_chunk_max_bytes)
        chunk = snapshot.data[request.position : request.position + max_bytes]
        ctx.send(sender, _snapshot_response(ctx, request, len(snapshot.data), chunk))
        return
    ctx.send(sender, _snapshot_response(ctx, request, 0, b"", error))


def _snapshot_response(
    ctx: Context,
    request: FetchSnapshotRequest,
    size: int,
    chunk: bytes,
    error: ErrorCode = ErrorCode.NONE,
) -> FetchSnapshotResponse:
    return FetchSnapshotResponse(
        epoch=ctx.epoch,
        leader_id=ctx.leader_id,
        request_id=request.request_id,
        error=error,
        snapshot_id=request.snapshot_id,
        size=size,
        position=request.position,
        chunk=chunk,
    )


def answer_fetch_with_error(
    ctx: Context, sender: int, request: FetchRequest, error: ErrorCode
) -> None:
    ctx.send(sender, _response(ctx, request, error=error))


def _response(
    ctx: Context,
    request: FetchRequest,
    error: ErrorCode = ErrorCode.NONE,
    entries: tuple[Entry, ...] = (),
    diverging: OffsetAndEpoch | None = None,
    snapshot_id: SnapshotId | None = None,
) -> FetchResponse:
    return FetchResponse(
        epoch=ctx.epoch,
        leader_id=ctx.leader_id,
        request_id=request.request_id,
        error=error,
        high_watermark=ctx.high_watermark,
        log_start_offset=ctx.log.start_offset,
        entries=entries,
        diverging=diverging,
        snapshot_id=snapshot_id,
    )
