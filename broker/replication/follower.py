"""The follower side of partition replication, pure: one `FollowerState` per partition this
broker follows, for one (leader, leader epoch). It says what to fetch next (the log end
offset and the epoch of the last record) and what to do with each answer: append the
records, or truncate a divergent suffix by leader epoch (KIP-101, KIP-279, KIP-320) to
min(the leader's end offset for that epoch, our own end offset for it) — never by the high
watermark alone. The follower's high watermark is min(leader high watermark, own log end).

A new leader epoch from the metadata means a new FollowerState (keeping the log end, last
epoch and high watermark): its first fetch carries the last fetched epoch, so the new
leader answers with a diverging epoch if our suffix is not in its log.
"""

from __future__ import annotations

from broker.replication.types import (
    NO_BROKER_EPOCH,
    UNDEFINED_EPOCH,
    AppendRecords,
    EndOffsetForEpoch,
    EpochEndOffset,
    FetchAnswer,
    FetchRequest,
    FollowerAction,
    IgnoreAnswer,
    ReplicationError,
    TruncateFullyAndStartAt,
    TruncateTo,
)


class FollowerState:
    """Fetch position and high watermark of one followed partition (module docstring)."""

    def __init__(
        self,
        broker_id: int,
        leader_id: int,
        leader_epoch: int,
        log_end_offset: int,
        latest_epoch: int,
        high_watermark: int,
        broker_epoch: int = NO_BROKER_EPOCH,
    ) -> None:
        """`broker_epoch` is this broker's registration epoch (sent for KIP-903);
        `latest_epoch` is the epoch of the log's last record (UNDEFINED_EPOCH if none);
        `high_watermark` the one known before (0 after a restart), at most the log end."""
        assert broker_id != leader_id, f"broker {broker_id} follows itself"
        assert leader_epoch >= 0, f"negative leader epoch {leader_epoch}"
        assert latest_epoch <= leader_epoch, (
            f"log holds epoch {latest_epoch}, newer than the leader epoch {leader_epoch}"
        )
        assert 0 <= high_watermark <= log_end_offset, (
            f"high watermark {high_watermark} outside [0, log end offset {log_end_offset}]"
        )
        self.broker_id = broker_id
        self.broker_epoch = broker_epoch
        self.leader_id = leader_id
        self.leader_epoch = leader_epoch
        self.log_end_offset = log_end_offset
        self.latest_epoch = latest_epoch
        self.high_watermark = high_watermark
        self._expected: FollowerAction | None = None  # what the shell was asked to do
        self._leader_high_watermark = 0  # from the answer whose records are being appended
        self.in_flight: FetchRequest | None = None  # sent by next_fetch, not yet answered

    def next_fetch(self) -> FetchRequest:
        """The fetch to send to the leader now."""
        assert self._expected is None, "fetch planned before the last action was reported"
        self.in_flight = FetchRequest(
            replica_id=self.broker_id,
            current_leader_epoch=self.leader_epoch,
            fetch_offset=self.log_end_offset,
            last_fetched_epoch=self.latest_epoch,
            replica_epoch=self.broker_epoch,
        )
        return self.in_flight

    def on_fetch_answer(
        self, answer: FetchAnswer, end_offset_for_epoch: EndOffsetForEpoch
    ) -> FollowerAction:
        """What to do with the leader's answer; after an append or truncation the shell
        calls on_log_changed. Only an answer to the fetch in flight counts: a late or
        duplicate answer to an earlier one (even at the same offset) is ignored, since the
        log may have changed since (truncated and refilled)."""
        assert self._expected is None, "answer handled before the last action was reported"
        request = self.in_flight
        if (
            request is None
            or answer.leader_epoch != request.current_leader_epoch
            or answer.fetch_offset != request.fetch_offset
            or answer.last_fetched_epoch != request.last_fetched_epoch
        ):
            return IgnoreAnswer()
        self.in_flight = None
        assert request.fetch_offset == self.log_end_offset, "the log changed under a fetch"
        if answer.error is ReplicationError.OFFSET_OUT_OF_RANGE:
            return self._expect(self._out_of_range_action(answer))
        if answer.error is not ReplicationError.NONE:
            # FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, NOT_LEADER and anything else: the
            # metadata will tell us who leads now; retry after a backoff.
            return IgnoreAnswer(backoff=True)
        if answer.diverging_epoch is not None:
            return self._expect(self._truncation(answer.diverging_epoch, end_offset_for_epoch))
        self._leader_high_watermark = answer.high_watermark
        return self._expect(AppendRecords(self.log_end_offset))

    def _expect(self, action: FollowerAction) -> FollowerAction:
        assert not isinstance(action, IgnoreAnswer), "nothing to report for an ignored answer"
        self._expected = action
        return action

    def _out_of_range_action(self, answer: FetchAnswer) -> FollowerAction:
        """Only fetches without a last epoch get here (others are answered by epoch): below
        the leader's log start we restart there; past its end we drop what it lacks."""
        if self.log_end_offset < answer.log_start_offset:
            return TruncateFullyAndStartAt(answer.log_start_offset)
        assert self.latest_epoch == UNDEFINED_EPOCH, "a log with epochs truncates by epoch"
        return TruncateTo(min(answer.log_end_offset, self.log_end_offset))

    def _truncation(
        self, diverging: EpochEndOffset, end_offset_for_epoch: EndOffsetForEpoch
    ) -> FollowerAction:
        """Kafka's AbstractFetcherThread.getOffsetTruncationState. If our log lacks the
        leader's epoch we go back to the end of our largest epoch below it and ask again."""
        own_epoch, own_end = end_offset_for_epoch(diverging.epoch)
        if own_epoch == UNDEFINED_EPOCH:
            offset = min(diverging.end_offset, self.log_end_offset)
        elif own_epoch != diverging.epoch:
            offset = min(own_end, self.log_end_offset)
        else:
            offset = min(own_end, diverging.end_offset, self.log_end_offset)
        assert offset >= 0, f"truncation to negative offset {offset}"
        # KIP-101: what is below the high watermark is on every ISR member, the leader too.
        assert offset >= self.high_watermark, (
            f"truncation to {offset} below the high watermark {self.high_watermark}"
        )
        return TruncateTo(offset)

    def on_log_changed(self, log_end_offset: int, latest_epoch: int) -> None:
        """The shell did the last action; the log now ends at log_end_offset and its last
        record has latest_epoch (UNDEFINED_EPOCH if empty)."""
        expected = self._expected
        assert expected is not None, "log change reported with no action asked"
        self._expected = None
        if isinstance(expected, AppendRecords):
            assert log_end_offset >= self.log_end_offset, "an append shrank the log"
        elif isinstance(expected, TruncateTo):
            assert log_end_offset <= expected.offset, (
                f"log ends at {log_end_offset} after truncation to {expected.offset}"
            )
            # A truncation that changes nothing would be asked again forever.
            assert (log_end_offset, latest_epoch) != (self.log_end_offset, self.latest_epoch), (
                f"truncation to {expected.offset} left the log as it was: epoch entries at or "
                "above the offset must go even at the log end (Kafka's UnifiedLog.truncateTo)"
            )
        else:
            assert isinstance(expected, TruncateFullyAndStartAt), f"no log change for {expected}"
            assert log_end_offset == expected.offset, "log restarted elsewhere"
        assert latest_epoch <= self.leader_epoch, f"epoch {latest_epoch} from the future"
        self.log_end_offset = log_end_offset
        self.latest_epoch = latest_epoch
        self.high_watermark = min(self.high_watermark, log_end_offset)
        if isinstance(expected, AppendRecords):
            self._maybe_raise_high_watermark(self._leader_high_watermark)

    def on_fetch_failed(self) -> None:
        """The fetch timed out or the shell could not do the asked action: forget both (the
        shell reports the log as it is with on_log_changed first if it changed)."""
        self._expected = None
        self.in_flight = None

    def _maybe_raise_high_watermark(self, leader_high_watermark: int) -> None:
        """Follower high watermark = min(leader's, own log end); it does not go back."""
        self.high_watermark = max(
            self.high_watermark, min(leader_high_watermark, self.log_end_offset)
        )
