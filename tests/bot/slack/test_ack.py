"""Acknowledge first: the HTTP answer to Slack never waits for the search, and a failure after the ack is logged."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from corpusbot.bot.ops.requestctx import current_request_id
from corpusbot.bot.slack import blocks, replies
from tests.support.fake_slack import FakeSlack
from tests.support.slack_harness import running_bot


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


def test_ask_is_acknowledged_while_its_answer_is_still_being_computed(
    slack: FakeSlack, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, computing = threading.Event(), threading.Event()
    real_answer = replies.answer

    def slow_answer(*args, **kwargs):
        computing.set()
        assert release.wait(10), "the test never released the answer"
        return real_answer(*args, **kwargs)

    monkeypatch.setattr(replies, "answer", slow_answer)
    with running_bot(slack, sample_db) as bot:
        try:
            assert bot.command("/ask", "who is on the US delegation?").status == 200  # while the answer is held
            assert computing.wait(5)
            assert slack.calls_to("response_url") == []
        finally:
            release.set()
        [reply] = slack.wait_for("response_url")
        assert "Treasury Secretary Becente" in reply.body["blocks"][1]["text"]["text"]


class _RequestIds(logging.Handler):
    """Keeps each record with the request id current when it was logged (as the bot's log filter sees it)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[tuple[logging.LogRecord, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record, current_request_id()))


def test_a_failure_after_the_ack_is_logged_with_the_request_id_and_the_user_told(
    slack: FakeSlack, sample_db: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_answer(*args, **kwargs):
        raise RuntimeError("the answer broke")

    monkeypatch.setattr(replies, "answer", broken_answer)
    handler = _RequestIds()
    logger = logging.getLogger("corpusbot")
    logger.addHandler(handler)
    caplog.set_level(logging.INFO)
    try:
        with running_bot(slack, sample_db) as bot:
            assert bot.command("/ask", "who is on the US delegation?").status == 200
            bot.settle()
    finally:
        logger.removeHandler(handler)
    [(error, error_request)] = [(r, rid) for r, rid in handler.seen if r.levelno == logging.ERROR]
    assert error.getMessage().startswith("/ask failed: RuntimeError('the answer broke')")
    assert error.exc_info is not None and error.threadName != "MainThread"
    [access] = [r for r, _ in handler.seen if getattr(r, "kind", None) == "ask"]
    assert error_request is not None and error_request == access.request_id
    [reply] = slack.calls_to("response_url")
    assert reply.body["text"] == blocks.unavailable().text
