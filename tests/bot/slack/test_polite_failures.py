"""An acknowledged question always gets a reply, and /readyz tells when answering fails.

The search service is made to raise (a bug, not a database problem) inside
``ask()``; the user still gets the polite "not available" reply through the
fake Slack API, the log has one line per failure with the request id (the
traceback once), and ``/readyz`` answers 503 with the reason until answering
works again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from corpusbot.bot.ops.health import FAILING_STREAK, AnswerHealth
from corpusbot.bot.slack import blocks
from corpusbot.bot.slack.blocks import AnswerRef, PageRef
from corpusbot.bot.slack.listeners import events
from tests.support.fake_slack import FakeSlack
from tests.support.slack_harness import Bot, running_bot

SORRY = blocks.unavailable().text
QUESTION = "who is on the US delegation?"


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def bot(slack: FakeSlack, sample_db: Path):
    with running_bot(slack, sample_db, CORPUSBOT_RATE_LIMIT="off") as running:
        yield running


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


class Broken:
    """Stands in for ``SearchService.ask`` while it is broken (a KeyError from deep inside)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise KeyError("passage 42")


def readiness(bot: Bot) -> tuple[int, dict[str, Any]]:
    response = bot.request("GET", "/readyz")
    return response.status, json.loads(response.text)


def error_lines(logs: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in logs.records if record.levelno >= logging.ERROR]


def test_a_failing_search_gets_the_polite_reply_everywhere_and_readyz_recovers(
    bot: Bot, slack: FakeSlack, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert readiness(bot)[0] == 200
    broken = Broken()
    monkeypatch.setattr(bot.runtime.service, "ask", broken)

    assert bot.command("/ask", QUESTION, hook="ask").status == 200
    [ephemeral] = slack.wait_for("response_url")
    assert ephemeral.body["text"] == SORRY and ephemeral.body["response_type"] == "ephemeral"
    bot.settle()
    status, body = readiness(bot)  # one failure: /readyz asks a question of its own, which fails too
    assert status == 503 and body["reason"] == "answers: a probe question failed too (KeyError)"

    assert bot.event({"type": "app_mention", "user": "U0B", "text": QUESTION, "ts": "5.5", "channel": "C0G"}).status
    [threaded] = slack.wait_for("chat.postMessage")
    assert threaded.body["text"] == SORRY and threaded.body["thread_ts"] == "5.5"
    more = AnswerRef(QUESTION, 3).to_value()
    assert bot.click(blocks.MORE, more, ephemeral=True, hook="more").status == 200
    replies = slack.wait_for("response_url", 2)
    assert replies[1].body["text"] == SORRY
    bot.settle()

    status, body = readiness(bot)
    assert status == 503
    assert body["reason"].startswith(f"answers: the last {FAILING_STREAK} failed (KeyError)")
    failures = [r for r in error_lines(logs) if "failed: KeyError" in r.getMessage()]
    assert len(failures) == 3
    assert [bool(r.exc_info) for r in failures] == [True, False, False]  # the traceback once
    access = {r.request_id for r in logs.records if getattr(r, "kind", None) in ("ask", "app_mention", "action")}
    assert {r.request_id for r in failures} == access and None not in access

    monkeypatch.undo()  # the failure stops; the streak stands until an answer works
    assert readiness(bot)[0] == 503
    assert bot.command("/ask", QUESTION, hook="again").status == 200
    assert "Treasury Secretary Becente" in slack.wait_for("response_url", 3)[2].body["blocks"][1]["text"]["text"]
    bot.settle()
    assert readiness(bot) == (200, {"status": "ready", "generation": readiness(bot)[1]["generation"]})


def test_one_failed_question_while_the_probe_works_leaves_the_bot_ready(
    bot: Bot, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_ask = bot.runtime.service.ask

    def broken_for_one_question(question: str, *args: Any, **kwargs: Any) -> Any:
        if question == QUESTION:
            raise KeyError("passage 42")
        return real_ask(question, *args, **kwargs)

    monkeypatch.setattr(bot.runtime.service, "ask", broken_for_one_question)
    bot.command("/ask", QUESTION)
    assert slack.wait_for("response_url")[0].body["text"] == SORRY
    bot.settle()
    assert readiness(bot)[0] == 200


def test_an_error_outside_the_search_still_gets_the_polite_reply(
    bot: Bot, slack: FakeSlack, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_decode(*args: Any, **kwargs: Any) -> str:
        raise IndexError("a bug in the listener")

    monkeypatch.setattr(events, "decode_incoming", broken_decode)
    assert bot.event({"type": "app_mention", "user": "U0B", "text": QUESTION, "ts": "6.6", "channel": "C0G"}).status
    [reply] = slack.wait_for("chat.postMessage")
    bot.settle()
    assert reply.body["text"] == SORRY and reply.body["thread_ts"] == "6.6"
    [line] = error_lines(logs)
    assert line.getMessage().startswith("app_mention answer failed: IndexError('a bug in the listener')")


def test_an_error_in_show_passages_gets_the_polite_reply(
    bot: Bot, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("bad page")

    monkeypatch.setattr(bot.runtime.service, "passages_of", broken)
    value = PageRef("000-6b3987004aa82828", 0).to_value()  # an article of the bundled sample
    assert bot.click(blocks.PASSAGES, value, ephemeral=True).status == 200
    [reply] = slack.wait_for("response_url")
    assert reply.body["text"] == SORRY


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        (
            RuntimeError("the database file was replaced\nreopen it"),
            "index: RuntimeError: the database file was replaced",
        ),
        (
            "No index database at /x.db. Run `corpusbot index`.",
            "index: No index database at /x.db. Run `corpusbot index`.",
        ),
        (False, "index: not ready"),
        (None, None),
    ],
)
def test_the_services_own_readiness_check_comes_first(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, verdict: object, reason: str | None
) -> None:
    def check_ready() -> object:
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    monkeypatch.setattr(bot.runtime.service, "check_ready", check_ready, raising=False)
    status, body = readiness(bot)
    if reason is None:
        assert status == 200 and body["status"] == "ready"
    else:
        assert (status, body) == (503, {"status": "unavailable", "reason": reason})


# -- the record of recent answers ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failing_takes_a_streak_within_the_window_and_ages_out() -> None:
    clock = Clock()
    health = AnswerHealth(streak=3, window=60.0, clock=clock)
    assert health.failing() is None and not health.suspect()
    health.failed(KeyError("x"))
    assert health.suspect() and health.failing() is None
    clock.now += 10
    health.failed(KeyError("x"))
    health.failed(ValueError("y"))
    failing = health.failing()
    assert failing is not None and (failing.count, failing.error, failing.seconds_ago) == (3, "ValueError", 0.0)
    assert failing.reason() == "answers: the last 3 failed (ValueError), the latest 0 s ago"
    clock.now = 1050.0
    assert health.failing() is not None  # the first of the three was 50 s ago
    clock.now = 1061.0
    assert health.failing() is None and health.suspect()  # the first 61 s ago, the last 51 s ago
    clock.now = 1071.0
    assert not health.suspect()
    health.failed(KeyError("x"))  # the last three: 61, 61 and 0 s ago
    assert health.failing() is None and health.suspect()


def test_one_answer_that_works_clears_it() -> None:
    health = AnswerHealth(streak=2, clock=Clock())
    health.failed(KeyError("x"))
    health.failed(KeyError("x"))
    assert health.failing() is not None
    health.succeeded()
    assert health.failing() is None and not health.suspect()


def test_a_traceback_once_per_kind_of_error_and_place() -> None:
    health = AnswerHealth()
    assert health.first_of_its_kind("answer", KeyError("a"))
    assert not health.first_of_its_kind("answer", KeyError("b"))
    assert health.first_of_its_kind("answer", ValueError("a"))
    assert health.first_of_its_kind("passages", KeyError("a"))
