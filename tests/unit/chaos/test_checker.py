"""The history checker as a specification. Each anomaly kind is shown on a small run that has
it next to a near-identical run that does not, and every kind is caught when a healthy run is
changed in just that way (so the checker can fail). Jepsen's queue and Kafka checkers are the
model: values are unique per run, so a value names its send."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from chaos.checker import (
    ANOMALY_KINDS,
    DUPLICATE,
    FAILED_WRITE_PRESENT,
    INCONSISTENT_OFFSET,
    LEADERLESS_AFTER_HEAL,
    LOST,
    MAX_EXAMPLES_PER_KIND,
    METADATA_DIVERGENCE,
    NEVER_READ,
    NON_MONOTONIC,
    REPLICA_DIVERGENCE,
    Verdict,
    check,
)
from chaos.history import (
    FinalState,
    read_final_state,
    read_history,
    write_final_state,
    write_history,
)
from tests.unit.chaos.helpers import TOPIC, HistoryBuilder, healthy_run, settled_final


def verdict_of(history: HistoryBuilder, final: FinalState, **options: bool) -> Verdict:
    return check(history.entries, final, **options)


def only(verdict: Verdict, kind: str) -> str:
    """The single example of the single anomaly kind found."""
    assert not verdict.valid
    assert set(verdict.anomalies) == {kind}
    assert len(verdict.anomalies[kind]) == 1
    return verdict.anomalies[kind][0]


# --- a healthy run, and each way of breaking it -------------------------------------------


def test_healthy_run_is_valid_and_counted() -> None:
    history, final = healthy_run()
    verdict = verdict_of(history, final)
    assert verdict.valid
    assert verdict.anomalies == {}
    assert verdict.tolerated == {}
    assert verdict.stats["sends_acknowledged"] == 3
    assert verdict.stats["lost"] == 0
    assert verdict.stats["ops"]["send"] == {"invoke": 3, "ok": 3}
    assert verdict.stats["ops"]["poll"] == {"invoke": 2, "ok": 2}
    assert verdict.stats["records_polled"] == 3
    assert verdict.stats["final_read_records"] == 3


def drop_final_read(final: FinalState) -> None:
    final.final_reads[TOPIC][0] = [[0, "v0"], [2, "v2"]]


def move_acknowledged_offset(final: FinalState) -> None:
    final.final_reads[TOPIC][0] = [[0, "v0"], [1, "v2"], [2, "v1"]]


def write_twice(final: FinalState) -> None:
    final.final_reads[TOPIC][0].append([3, "v2"])


def diverge_replica(final: FinalState) -> None:
    final.replicas[2].records[1] = [1, "other"]


def lose_leader(final: FinalState) -> None:
    for node_metadata in final.metadata.values():
        node_metadata[TOPIC][0]["leader"] = -1


def older_epoch_on_node_3(final: FinalState) -> None:
    final.metadata[3][TOPIC][0]["leader_epoch"] = 2


FINAL_MUTATIONS: list[tuple[Callable[[FinalState], None], set[str]]] = [
    (drop_final_read, {LOST}),
    # v1 and v2 swapped: both at another offset than acknowledged, the polls saw other values
    # at offsets 1 and 2, and each value is now seen at two offsets.
    (move_acknowledged_offset, {LOST, INCONSISTENT_OFFSET, DUPLICATE}),
    (write_twice, {DUPLICATE}),
    (diverge_replica, {REPLICA_DIVERGENCE}),
    (lose_leader, {LEADERLESS_AFTER_HEAL}),
    (older_epoch_on_node_3, {METADATA_DIVERGENCE}),
]


@pytest.mark.parametrize(
    ("mutate", "kinds"), FINAL_MUTATIONS, ids=[m.__name__ for m, _ in FINAL_MUTATIONS]
)
def test_each_change_to_a_healthy_final_state_is_caught_as_its_kind(
    mutate: Callable[[FinalState], None], kinds: set[str]
) -> None:
    history, final = healthy_run()
    mutate(final)
    verdict = verdict_of(history, final, allow_duplicates=False)
    assert not verdict.valid
    assert set(verdict.anomalies) == kinds


def test_each_anomaly_kind_has_a_mutation_or_history_test() -> None:
    covered = {kind for _, kinds in FINAL_MUTATIONS for kind in kinds}
    covered |= {NON_MONOTONIC, NEVER_READ, FAILED_WRITE_PRESENT}  # history-side tests below
    assert covered == set(ANOMALY_KINDS)


# --- lost ----------------------------------------------------------------------------------


def test_acknowledged_send_missing_from_final_reads_is_lost() -> None:
    history, final = healthy_run()
    drop_final_read(final)
    example = only(verdict_of(history, final), LOST)
    assert "send op 2 by producer-1" in example
    assert "'v1'" in example
    assert "orders/0@1" in example
    assert "not in the final reads" in example


def test_acknowledged_send_at_another_offset_than_acknowledged_is_lost() -> None:
    history = HistoryBuilder()
    history.send("v0", 0)
    history.send("v1", 5)  # acknowledged at 5, read back at 1
    example = only(verdict_of(history, settled_final([(0, "v0"), (1, "v1")])), LOST)
    assert "acknowledged at orders/0@5 is at offset 1 instead" in example


@pytest.mark.parametrize("outcome", ["info", "fail", None])
def test_send_not_acknowledged_may_be_missing(outcome: str | None) -> None:
    """Only an ok send promises the value is there; info and an invoke never completed are
    unknown, fail is certainly not done."""
    history = HistoryBuilder()
    history.send("v0", 0)
    history.send("v1", outcome=outcome)  # type: ignore[arg-type]
    assert verdict_of(history, settled_final([(0, "v0")])).valid


def test_examples_are_capped_but_every_anomaly_is_counted() -> None:
    history = HistoryBuilder()
    for offset in range(10):
        history.send(f"v{offset}", offset)
    verdict = verdict_of(history, settled_final([]))
    assert len(verdict.anomalies[LOST]) == MAX_EXAMPLES_PER_KIND
    assert verdict.stats["anomaly_counts"][LOST] == 10
    assert verdict.stats["lost"] == 10


# --- duplicate -----------------------------------------------------------------------------


def duplicated_after_timeout() -> tuple[HistoryBuilder, FinalState]:
    """v1 timed out (info) and the producer's retry wrote it again at offset 2."""
    history = HistoryBuilder()
    history.send("v0", 0)
    history.send("v1", outcome="info")
    return history, settled_final([(0, "v0"), (1, "v1"), (2, "v1")])


def test_duplicate_is_tolerated_by_default_and_labelled_with_its_send_outcome() -> None:
    history, final = duplicated_after_timeout()
    verdict = verdict_of(history, final)
    assert verdict.valid
    assert verdict.stats["duplicates"] == 1
    assert verdict.stats["duplicates_by_send_outcome"] == {"info": 1}
    [example] = verdict.tolerated[DUPLICATE]
    assert "'v1' (send op 2 by producer-1 (info)) read at 2 offsets: orders/0@1, orders/0@2" in (
        example
    )


def test_duplicate_is_an_anomaly_when_duplicates_are_not_allowed() -> None:
    history, final = duplicated_after_timeout()
    verdict = verdict_of(history, final, allow_duplicates=False)
    only(verdict, DUPLICATE)
    assert verdict.tolerated == {}


def test_value_at_one_offset_seen_by_several_readers_is_no_duplicate() -> None:
    history, final = healthy_run()
    history.poll([(0, 0, "v0")], process="consumer-2")
    verdict = verdict_of(history, final, allow_duplicates=False)
    assert verdict.valid
    assert verdict.stats["duplicates"] == 0


# --- inconsistent offsets ------------------------------------------------------------------


def test_two_readers_seeing_different_values_at_one_offset_is_inconsistent() -> None:
    history, final = healthy_run()
    history.poll([(0, 0, "v0"), (0, 1, "other")], process="consumer-2")
    example = only(verdict_of(history, final), INCONSISTENT_OFFSET)
    assert example == (
        "orders/0@1 read as 'v1' by poll op 4 by consumer-1; 'other' by poll op 6 by consumer-2"
    )


def test_same_offset_in_two_partitions_is_not_inconsistent() -> None:
    history, final = healthy_run()
    history.poll([(1, 1, "p1-v1")], process="consumer-2")
    assert verdict_of(history, final).valid


# --- non-monotonic polls -------------------------------------------------------------------


def test_consumer_going_back_across_polls_is_non_monotonic() -> None:
    history, final = healthy_run()
    history.poll([(0, 1, "v1")])
    example = only(verdict_of(history, final), NON_MONOTONIC)
    assert example == "consumer-1 in poll op 6 went back on orders/0: offset 1 after 2"


def test_consumer_going_back_after_a_recorded_seek_is_fine() -> None:
    history, final = healthy_run()
    history.poll([(0, 1, "v1")], seek=True)
    assert verdict_of(history, final).valid


def test_consumer_skipping_an_offset_within_a_poll_is_non_monotonic() -> None:
    history = HistoryBuilder()
    history.send("v0", 0)
    history.send("v1", 1)
    history.send("v2", 2)
    history.poll([(0, 0, "v0"), (0, 2, "v2")])
    history.poll([(0, 1, "v1")], process="consumer-2")
    example = only(
        verdict_of(history, settled_final([(0, "v0"), (1, "v1"), (2, "v2")])), NON_MONOTONIC
    )
    assert "skipped ahead on orders/0: offset 2 after 0" in example


def test_each_consumer_and_partition_has_its_own_order() -> None:
    history, final = healthy_run()
    history.poll([(0, 0, "v0"), (1, 0, "p1-v0"), (0, 1, "v1"), (1, 1, "p1-v1")], process="c2")
    assert verdict_of(history, final).valid


def test_consumer_may_start_anywhere() -> None:
    history, final = healthy_run()
    history.poll([(0, 2, "v2")], process="late-consumer")
    assert verdict_of(history, final).valid


# --- never read ----------------------------------------------------------------------------


def test_acknowledged_send_no_poll_saw_is_never_read_without_final_reads() -> None:
    history, final = healthy_run()
    history.send("v3", 3)
    final.final_reads = {}
    example = only(verdict_of(history, final), NEVER_READ)
    assert "send op 6 by producer-1 (ok): value 'v3' acknowledged at orders/0@3" in example


def test_acknowledged_sends_all_polled_are_read_without_final_reads() -> None:
    history, final = healthy_run()
    final.final_reads = {}
    verdict = verdict_of(history, final)
    assert verdict.valid
    assert verdict.stats["acknowledged_never_polled"] == 0


def test_with_final_reads_a_missing_value_is_lost_not_never_read() -> None:
    history, final = healthy_run()
    history.send("v3", 3)
    verdict = verdict_of(history, final)
    assert set(verdict.anomalies) == {LOST}
    assert verdict.stats["acknowledged_never_polled"] == 1


# --- failed writes present -----------------------------------------------------------------


def test_failed_send_whose_value_is_read_is_an_anomaly() -> None:
    history = HistoryBuilder()
    history.send("v0", 0)
    history.send("v1", outcome="fail")
    example = only(verdict_of(history, settled_final([(0, "v0"), (1, "v1")])), FAILED_WRITE_PRESENT)
    assert example == (
        "send op 2 by producer-1 failed (REQUEST_TIMED_OUT) but value 'v1' was read at "
        "orders/0@1 by final read"
    )


def test_indeterminate_send_whose_value_is_read_is_fine() -> None:
    history = HistoryBuilder()
    history.send("v0", 0)
    history.send("v1", outcome="info")
    verdict = verdict_of(history, settled_final([(0, "v0"), (1, "v1")]))
    assert verdict.valid
    assert verdict.stats["indeterminate_sends_present"] == 1


# --- replicas ------------------------------------------------------------------------------


def test_replicas_disagreeing_below_the_high_watermark_diverge() -> None:
    history, final = healthy_run()
    diverge_replica(final)
    example = only(verdict_of(history, final), REPLICA_DIVERGENCE)
    assert example == (
        "orders/0: replicas disagree at 1 offsets below high watermark 3, first at offset 1: "
        "node 1 'v1', node 2 'v1', node 3 'other'"
    )


def test_replica_missing_a_record_below_the_high_watermark_diverges() -> None:
    history, final = healthy_run()
    del final.replicas[1].records[2]
    assert "node 2 missing" in only(verdict_of(history, final), REPLICA_DIVERGENCE)


def test_replicas_may_differ_above_the_smallest_high_watermark() -> None:
    """A follower's uncommitted suffix is truncated when it catches up (KIP-101)."""
    history, final = healthy_run()
    lagging = final.replicas[2]
    final.replicas[2] = replace(
        lagging, high_watermark=2, log_end_offset=4, records=lagging.records[:2] + [[2, "x"]]
    )
    verdict = verdict_of(history, final)
    assert verdict.valid
    assert verdict.stats["log_end_offset_differences"] == ["orders/0: node 1 3, node 2 3, node 3 4"]


# --- metadata ------------------------------------------------------------------------------


def test_partition_without_leader_after_healing_is_leaderless() -> None:
    history, final = healthy_run()
    lose_leader(final)
    verdict = verdict_of(history, final)
    assert set(verdict.anomalies) == {LEADERLESS_AFTER_HEAL}
    assert verdict.anomalies[LEADERLESS_AFTER_HEAL][0] == (
        "orders/0 has no leader in node 1's metadata"
    )


def test_nodes_disagreeing_on_a_partition_diverge() -> None:
    history, final = healthy_run()
    older_epoch_on_node_3(final)
    example = only(verdict_of(history, final), METADATA_DIVERGENCE)
    assert example == (
        "orders/0: nodes [1, 2]: leader 1 epoch 3 isr [1, 2, 3] replicas [1, 2, 3]; "
        "nodes [3]: leader 1 epoch 2 isr [1, 2, 3] replicas [1, 2, 3]"
    )


def test_node_missing_a_topic_diverges() -> None:
    history, final = healthy_run()
    final.metadata[2] = {}
    assert "nodes [2]: absent" in only(verdict_of(history, final), METADATA_DIVERGENCE)


def test_isr_order_does_not_matter() -> None:
    history, final = healthy_run()
    final.metadata[2][TOPIC][0]["isr"] = [3, 1, 2]
    assert verdict_of(history, final).valid


# --- deleted topics and the history on disk -------------------------------------------------


def test_sends_to_a_deleted_topic_are_left_out_and_counted() -> None:
    history, _ = healthy_run()
    history.delete_topic(TOPIC)
    verdict = verdict_of(history, FinalState())
    assert verdict.valid
    assert verdict.stats["deleted_topics"] == [TOPIC]
    assert verdict.stats["sends_unchecked_in_deleted_topics"] == 3


def test_a_failed_delete_leaves_the_topic_checked() -> None:
    history, final = healthy_run()
    history.delete_topic(TOPIC, outcome="fail")
    drop_final_read(final)
    only(verdict_of(history, final), LOST)


def test_verdict_is_the_same_after_a_round_trip_through_files(tmp_path: Path) -> None:
    """On disk partition keys become strings; the checker reads them either way."""
    history, final = healthy_run()
    older_epoch_on_node_3(final)
    write_history(tmp_path / "history.jsonl", history.entries)
    write_final_state(tmp_path / "final.json", final)
    reread = check(
        read_history(tmp_path / "history.jsonl"), read_final_state(tmp_path / "final.json")
    )
    assert reread == check(history.entries, final)


def test_history_lines_written_before_seek_existed_still_load(tmp_path: Path) -> None:
    line = {"op_id": 1, "process": "c", "type": "ok", "f": "poll", "time_s": 0.5, "kind": "op"}
    (tmp_path / "history.jsonl").write_text(json.dumps(line) + "\n")
    [op] = read_history(tmp_path / "history.jsonl")
    assert op.seek is False  # type: ignore[union-attr]
