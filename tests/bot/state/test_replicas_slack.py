"""Two bots (two replicas) with CORPUSBOT_STATE_URL on one real PostgreSQL, driven by signed Slack requests.

The state is built the way `corpusbot serve` builds it, from the settings
(``make_runtime``). Events and their retries are answered once whichever
replica gets them, the rate limit is one count for both, and while the
database is down the acks stay fast, /readyz answers 503 with the reason, and
users get the polite replies; once it is back, everything works again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from corpusbot.bot.slack import blocks
from tests.support.fake_slack import BOT_USER_ID, FakeSlack
from tests.support.postgres import PASSWORD, PostgresServer
from tests.support.slack_harness import Bot, running_bot

DELEGATION = "who is on the US delegation?"
ACK_SECONDS = 2.5  # Slack wants the ack within 3 s; the check waits at most 1 s for the database


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def two_bots(slack: FakeSlack, sample_db: Path, postgres_url: str) -> Iterator[tuple[Bot, Bot]]:
    with ExitStack() as stack:
        env = {"CORPUSBOT_STATE_URL": postgres_url, "CORPUSBOT_STATE_DB": "", "CORPUSBOT_RATE_LIMIT": "3/60"}
        one = stack.enter_context(running_bot(slack, sample_db, **env))
        two = stack.enter_context(running_bot(slack, sample_db, **env))
        yield one, two


def mention(text: str, ts: str = "1700000100.000200") -> dict:
    return {
        "type": "app_mention",
        "user": "U0ALICE1",
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "channel": "C0GENERAL",
        "event_ts": ts,
    }


def timed_event(bot: Bot, event: dict, event_id: str, retry: int | None = None) -> tuple[int, float]:
    began = time.monotonic()
    status = bot.event(event, event_id=event_id, retry=retry).status
    return status, time.monotonic() - began


def texts(call) -> str:
    return json.dumps(call.body)


def test_an_event_and_its_retries_are_answered_once_across_replicas(
    two_bots: tuple[Bot, Bot], slack: FakeSlack, sample_db: Path
) -> None:
    one, two = two_bots
    event = mention(DELEGATION)
    assert one.event(event, event_id="Ev0SHARED1").status == 200
    assert two.event(event, event_id="Ev0SHARED1", retry=1).status == 200  # the retry reached the other replica
    assert two.event(event, event_id="Ev0SHARED1", retry=2).status == 200
    assert one.event(event, event_id="Ev0SHARED1", retry=3).status == 200
    one.settle()
    two.settle()
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert not (sample_db.parent / "sample-state.db").exists(), "nothing in a local state file"


def test_the_rate_limit_counts_once_for_both_replicas(two_bots: tuple[Bot, Bot], slack: FakeSlack) -> None:
    one, two = two_bots
    for number, bot in enumerate((one, two, one, two, one)):  # 3 allowed per minute, whichever replica
        bot.command("/ask", DELEGATION, hook=f"ask{number}")
        bot.settle()
    replies = {call.path: texts(call) for call in slack.calls_to("response_url")}
    answered = [path for path, text in replies.items() if "slow down" not in text.lower()]
    assert sorted(answered) == ["/response/ask0", "/response/ask1", "/response/ask2"]
    assert "/response/ask3" in replies and "/response/ask4" not in replies  # one notice, then quiet


def test_while_the_database_is_down_acks_stay_fast_users_get_polite_replies_and_it_all_comes_back(
    two_bots: tuple[Bot, Bot], slack: FakeSlack, postgres_server: PostgresServer
) -> None:
    one, two = two_bots
    assert json.loads(one.request("GET", "/readyz").text)["status"] == "ready"
    postgres_server.stop()
    try:
        status, took = timed_event(one, mention(DELEGATION, "1700000200.000100"), "Ev0DOWN01")
        assert status == 200 and took < ACK_SECONDS
        status, took = timed_event(one, mention(DELEGATION, "1700000200.000100"), "Ev0DOWN01", retry=1)
        assert status == 200 and took < ACK_SECONDS
        one.settle()
        [reply] = slack.calls_to("chat.postMessage")  # answered once, politely: the limit cannot be counted
        assert reply.body["text"] == blocks.unavailable().text
        ready = one.request("GET", "/readyz")
        reason = json.loads(ready.text)["reason"]
        assert ready.status == 503 and reason.startswith("state database: postgresql://127.0.0.1:")
        assert PASSWORD not in ready.text
        one.click(blocks.HELPFUL, blocks.AnswerRef(DELEGATION, 0).to_value(), hook="vote")
        one.settle()
        [vote] = slack.calls_to("response_url")
        assert "couldn't save your feedback" in texts(vote)
    finally:
        postgres_server.start()
    deadline = time.monotonic() + 30
    while one.request("GET", "/readyz").status != 200 or two.request("GET", "/readyz").status != 200:
        assert time.monotonic() < deadline, "not ready again within 30 s of the database's return"
        time.sleep(0.2)
    two.event(mention(DELEGATION, "1700000300.000100"), event_id="Ev0BACK01")
    two.settle()
    one.event(mention(DELEGATION, "1700000300.000100"), event_id="Ev0BACK01", retry=1)
    one.settle()
    answers = slack.calls_to("chat.postMessage")[1:]
    assert len(answers) == 1 and answers[0].body["text"] != blocks.unavailable().text
    assert len(two.runtime.state.feedback()) == 0
    one.click(blocks.HELPFUL, blocks.AnswerRef(DELEGATION, 0).to_value(), hook="vote2")
    one.settle()
    assert [record.verdict for record in two.runtime.state.feedback()] == ["helpful"]
