"""Prometheus metrics at GET /metrics, scraped after real signed requests; health and readiness probes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.socket_mode.request import SocketModeRequest

from corpusbot.bot import config
from corpusbot.bot.ops.metrics import BotMetrics, IndexCollector, request_kind
from corpusbot.bot.serving.server import socket_mode_handler
from corpusbot.bot.slack.app import build_app
from corpusbot.bot.slack.blocks import HELPFUL, NOT_HELPFUL, AnswerRef
from corpusbot.bot.slack.runtime import make_runtime
from corpusbot.index import SearchService, index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.engine import store
from tests.support.fake_slack import APP_TOKEN, BOT_USER_ID, FakeSlack
from tests.support.slack_harness import Bot, CapturingClient, TrackedExecutor, environment, running_bot

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def bot(slack: FakeSlack, sample_db: Path) -> Iterator[Bot]:
    with running_bot(slack, sample_db) as running:
        yield running


def scrape(bot: Bot) -> Samples:
    response = bot.request("GET", "/metrics")
    assert response.status == 200
    return parse(response.text)


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def mention(text: str, ts: str) -> dict[str, Any]:
    return {"type": "app_mention", "user": "U0ALICE1", "text": f"<@{BOT_USER_ID}> {text}", "ts": ts, "channel": "C0G1"}


def test_counters_and_histograms_move_with_real_signed_requests(bot: Bot, slack: FakeSlack) -> None:
    before = scrape(bot)
    assert bot.command("/ask", "who is on the US delegation?", hook="a1").status == 200
    assert bot.command("/ask", "zzqxv flurbleworp", hook="a2").status == 200  # words the corpus never mentions
    assert bot.event(mention("rare earth licenses", "1.1"), event_id="Ev0MET01").status == 200
    assert bot.event(mention("rare earth licenses", "1.1"), event_id="Ev0MET01", retry=1).status == 200
    ref = AnswerRef("rare earth", shown=("a ¶1",)).to_value()
    assert bot.click(HELPFUL, ref, ephemeral=True, hook="f1").status == 200
    assert bot.click(NOT_HELPFUL, ref, ephemeral=True, hook="f2").status == 200
    assert bot.click(HELPFUL, ref, ephemeral=True, hook="f3").status == 200
    assert bot.post_signed(b"{}", "application/json", secret="wrong-secret-0000").status == 401
    slack.wait_for("response_url", 5)
    slack.wait_for("chat.postMessage")
    bot.settle()
    after = scrape(bot)

    requests = "corpusbot_slack_requests_total"
    assert moved(before, after, requests, kind="ask", outcome="ok") == 2
    assert moved(before, after, requests, kind="app_mention", outcome="ok") == 2
    assert moved(before, after, requests, kind="action", outcome="ok") == 3
    assert moved(before, after, requests, kind="invalid", outcome="rejected") == 1
    assert moved(before, after, "corpusbot_slack_request_seconds_count", kind="ask") == 2
    assert moved(before, after, "corpusbot_slack_duplicate_events_total") == 1
    assert moved(before, after, "corpusbot_answers_total", result="no_answer") == 1
    answered = sum(moved(before, after, "corpusbot_answers_total", result=r) for r in ("confident", "not_confident"))
    assert answered == 2  # the /ask and the mention; the retried mention was not answered again
    assert moved(before, after, "corpusbot_answer_seconds_count") == 3
    assert moved(before, after, "corpusbot_answer_seconds_sum") > 0
    assert moved(before, after, "corpusbot_feedback_total", verdict="helpful") == 2
    assert moved(before, after, "corpusbot_feedback_total", verdict="not_helpful") == 1
    assert value(after, "corpusbot_slack_request_seconds_bucket", kind="ask", le="+Inf") == 2


def test_index_size_and_age_are_reported_and_follow_a_reindex(bot: Bot, sample_db: Path) -> None:
    stats = bot.runtime.service.stats()
    first = scrape(bot)
    assert value(first, "corpusbot_index_up") == 1
    assert value(first, "corpusbot_index_articles") == stats.articles > 0
    assert value(first, "corpusbot_index_passages") == stats.passages > 0
    assert value(first, "corpusbot_index_db_bytes") >= sample_db.stat().st_size > 0
    built = datetime.fromisoformat(str(stats.built_at)).timestamp()
    assert 0 <= value(first, "corpusbot_index_age_seconds") <= datetime.now(UTC).timestamp() - built + 5
    index_corpus(sample_db, [BUNDLED], full=True)
    second = scrape(bot)
    assert value(second, "corpusbot_index_generation") == value(first, "corpusbot_index_generation") + 1
    assert value(second, "corpusbot_index_passages") == stats.passages


def test_index_age_counts_from_built_at(sample_service: SearchService) -> None:
    built = datetime.fromisoformat(str(sample_service.stats().built_at)).timestamp()
    collector = IndexCollector(sample_service, clock=lambda: built + 3600)
    [age] = [m for m in collector.collect() if m.name == "corpusbot_index_age_seconds"]
    assert age.samples[0].value == 3600


def test_metrics_keep_answering_when_the_index_is_unusable(bot: Bot, sample_db: Path) -> None:
    db = store.connect(sample_db)
    db.execute("DELETE FROM meta WHERE key = 'schema_version'")
    db.conn.commit()
    db.conn.close()
    samples = scrape(bot)
    assert value(samples, "corpusbot_index_up") == 0
    assert ("corpusbot_index_passages", ()) not in samples
    assert bot.request("GET", "/readyz").status == 503


def test_each_app_has_its_own_registry(sample_service: SearchService) -> None:
    one, two = BotMetrics(sample_service), BotMetrics()
    one.request_handled("ask", 200, 0.01)
    assert value(parse(one.exposition()[0].decode()), "corpusbot_slack_requests_total", kind="ask", outcome="ok") == 1
    assert value(parse(two.exposition()[0].decode()), "corpusbot_slack_requests_total", kind="ask", outcome="ok") == 0
    assert REGISTRY.get_sample_value("corpusbot_slack_requests_total", {"kind": "ask", "outcome": "ok"}) is None
    assert "corpusbot_index_passages" not in two.exposition()[0].decode()


def test_label_values_come_from_a_fixed_set_whatever_is_sent() -> None:
    assert request_kind({"command": "/ask"}) == "ask"
    assert request_kind({"command": "/<script>" * 50}) == "command_other"
    assert request_kind({"type": "event_callback", "event": {"type": "x" * 500}}) == "event_other"
    assert request_kind({"type": "event_callback", "event": "not a dict"}) == "event_other"
    assert request_kind({"type": "block_actions"}) == "action"
    assert request_kind({"type": "🙂"}) == "other"


def test_probes_and_the_metrics_endpoint(bot: Bot) -> None:
    assert bot.request("GET", "/healthz").status == 200
    assert bot.request("GET", "/readyz").status == 200
    assert bot.request("POST", "/metrics", b"x").status == 405
    assert bot.request("HEAD", "/metrics").status == 200
    assert bot.request("GET", "/metricsz").status == 404
    before = scrape(bot)
    bot.request("GET", "/healthz")
    bot.request("GET", "/readyz")
    after = scrape(bot)
    assert slack_only(after) == slack_only(before)  # probes and scrapes are not Slack requests


def slack_only(samples: Samples) -> Samples:
    return {key: sample for key, sample in samples.items() if key[0].startswith("corpusbot_slack")}


def test_socket_mode_envelopes_are_counted_and_logged_with_a_request_id(
    slack: FakeSlack, sample_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = environment(slack, sample_db, SLACK_APP_TOKEN=APP_TOKEN)
    settings = config.settings_from_env(env)
    service = SearchService(sample_db)
    runtime = make_runtime(settings, service)
    executor = TrackedExecutor()
    try:
        handler = socket_mode_handler(
            build_app(settings, service, runtime=runtime, executor=executor), settings, runtime.metrics
        )
        payload = {
            "type": "event_callback",
            "team_id": "T0FAKE01",
            "event_id": "Ev0SOCKM1",
            "event": mention("rare earth", "2.1"),
        }
        with caplog.at_level(logging.INFO, logger="corpusbot.http"):
            handler.handle(CapturingClient(), SocketModeRequest("events_api", "env-1", payload))  # type: ignore[arg-type]
        executor.wait_idle()
    finally:
        executor.shutdown(wait=True)
        runtime.state.close()
        service.close()
    samples = parse(runtime.metrics.exposition()[0].decode())
    assert value(samples, "corpusbot_slack_requests_total", kind="app_mention", outcome="ok") == 1
    assert (
        value(samples, "corpusbot_answers_total", result="confident")
        + value(samples, "corpusbot_answers_total", result="not_confident")
        == 1
    )
    [access] = [r for r in caplog.records if getattr(r, "kind", None) == "app_mention"]
    assert len(access.request_id) == 12  # type: ignore[attr-defined]
