"""The Slack load script runs end to end on a tiny corpus: nothing lost, duplicated or failed (no timing assertions)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from benchmarks import slack_load


def test_mixed_load_with_a_reindex_running_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    options = slack_load.Options(
        mode="mixed", requests=40, concurrency=4, passages=300, max_seconds=120, workdir=tmp_path
    )
    report = slack_load.run(options)
    assert report.requests_sent == report.requests_planned == 40
    assert report.by_kind.get("ask", 0) > 0 and report.by_kind.get("mention", 0) > 0
    assert report.by_kind.get("more", 0) + report.by_kind.get("helpful", 0) + report.by_kind.get("not_helpful", 0) > 0
    assert (report.non_2xx, report.server_5xx, report.connection_errors) == (0, 0, 0)
    assert (report.lost_replies, report.duplicate_replies, report.unexpected_replies) == (0, 0, 0)
    assert report.invalid_blocks == 0 and report.server_error_lines == 0
    assert report.log_lines_without_request_id == 0
    assert report.reindex_runs >= 1 and report.reindex_failures == 0
    assert report.metrics_requests_total == 40  # the bot counted every request it was sent
    assert len(report.reply_ms) == 4 and not report.failed
    assert "| lost / duplicated / unexpected replies | 0 / 0 / 0 |" in report.markdown()


def test_the_plan_sends_each_retry_after_its_original_and_expects_one_reply_per_request() -> None:
    planned = slack_load.plan(400, ["what about rare earths"], "abc123", seed=3, mode="mixed")
    assert len(planned) == 400
    retries = [i for i, p in enumerate(planned) if p.kind == "mention_retry"]
    assert retries and all(not planned[i].expects_reply for i in retries)
    for i in retries:
        [original] = [j for j, p in enumerate(planned) if p.key == planned[i].key and p.kind == "mention"]
        assert original < i
    expected = Counter(p.key for p in planned if p.expects_reply)
    assert set(expected.values()) == {1}  # so one reply per key is exact, and a second one a duplicate
    assert {p.kind for p in slack_load.plan(20, ["q"], "x", seed=1, mode="ask")} == {"ask"}
