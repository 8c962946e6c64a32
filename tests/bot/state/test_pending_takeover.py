"""Questions recorded as pending in PostgreSQL before their ack, taken over by another replica's sweeper.

The kill test with real processes on two hosts is tests/bot/replicas/test_takeover.py (mentions and ``/ask``).
Here two bots share one real PostgreSQL in this process, so the moment a replica "dies" can be placed exactly:
after the ack and before the answer (its listener pool drops the work), or after the answer was posted and before
it was marked done (the one window where a question is answered twice, docs/operations.md). Direct messages, also
those in a thread (the assistant panel's questions), are protected like mentions and ``/ask``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from corpusbot.bot.slack.pending import Sweeper
from corpusbot.bot.state import StateUnavailable
from tests.support.fake_slack import BOT_USER_ID, FakeSlack
from tests.support.slack_harness import Bot, running_bot

TAKEOVER = 0.3  # seconds a question may stay unanswered here before the sweeper takes it (20 s in production)
DELEGATION = "who is on the US delegation?"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def two_replicas(slack: FakeSlack, sample_db: Path, postgres_url: str) -> Iterator[tuple[Bot, Bot]]:
    env = {"CORPUSBOT_STATE_URL": postgres_url, "CORPUSBOT_STATE_DB": "", "CORPUSBOT_RATE_LIMIT": "off"}
    with ExitStack() as stack:
        yield (
            stack.enter_context(running_bot(slack, sample_db, **env)),
            stack.enter_context(running_bot(slack, sample_db, **env)),
        )


def dies_after_the_ack(bot: Bot) -> None:
    """From now on ``bot`` acknowledges requests and never runs their listeners, as a process killed just then."""

    def dropped(fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        bot.runtime.in_progress.finished()  # the listener wrapper counted it as started
        return Future()

    bot.executor.submit = dropped  # type: ignore[method-assign]


def direct_message(text: str, ts: str, thread_ts: str | None = None) -> dict[str, Any]:
    event = {"type": "message", "channel_type": "im", "channel": "D0ALICE1", "user": "U0ALICE1", "text": text, "ts": ts}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def sweep_until_taken(bot: Bot, *, timeout: float = 10.0) -> int:
    sweeper = Sweeper(bot.runtime, bot.app.client, after=TAKEOVER)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        taken = sweeper.sweep()
        if taken:
            return taken
        time.sleep(0.1)
    return 0


def test_a_direct_message_acknowledged_by_a_replica_that_died_is_answered_in_the_dm_by_the_other(
    two_replicas: tuple[Bot, Bot], slack: FakeSlack
) -> None:
    one, two = two_replicas
    dies_after_the_ack(one)
    assert one.event(direct_message(DELEGATION, "1700000400.000100"), event_id="Ev0DMKILL1").status == 200
    one.settle()
    assert slack.replies() == []
    assert sweep_until_taken(two) == 1
    [reply] = slack.calls_to("chat.postMessage")
    assert reply.body["channel"] == "D0ALICE1"
    assert reply.body.get("thread_ts") is None  # in the DM, as the DM listener answers
    assert "Becente" in str(reply.body)
    assert sweep_until_taken(two, timeout=1.0) == 0, "taken over once"


def test_a_question_in_the_assistant_panel_is_answered_in_its_thread_by_the_other_replica(
    two_replicas: tuple[Bot, Bot], slack: FakeSlack
) -> None:
    one, two = two_replicas
    dies_after_the_ack(one)
    panel = direct_message(DELEGATION, "1700000500.000200", thread_ts="1700000500.000100")
    assert one.event(panel, event_id="Ev0PANEL01").status == 200
    one.settle()
    assert slack.replies() == []
    assert sweep_until_taken(two) == 1
    [reply] = slack.calls_to("chat.postMessage")
    assert (reply.body["channel"], reply.body.get("thread_ts")) == ("D0ALICE1", "1700000500.000100")
    assert "Becente" in str(reply.body)


def test_a_panel_question_answered_normally_is_not_taken_over(two_replicas: tuple[Bot, Bot], slack: FakeSlack) -> None:
    one, two = two_replicas
    panel = direct_message(DELEGATION, "1700000550.000200", thread_ts="1700000550.000100")
    assert one.event(panel, event_id="Ev0PANEL02").status == 200
    one.settle()
    assert len(slack.calls_to("chat.postMessage")) == 1
    time.sleep(TAKEOVER + 0.2)
    assert sweep_until_taken(two, timeout=1.0) == 0, "its listener marked it done"
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_a_bot_message_and_a_mention_in_a_dm_are_not_recorded(two_replicas: tuple[Bot, Bot], slack: FakeSlack) -> None:
    one, two = two_replicas
    dies_after_the_ack(one)
    from_a_bot = {**direct_message(DELEGATION, "1700000500.000300"), "bot_id": "B0OTHER1"}
    mention_in_dm = {**direct_message(f"<@{BOT_USER_ID}> {DELEGATION}", "1700000500.000400"), "type": "app_mention"}
    for number, event in enumerate((from_a_bot, mention_in_dm)):
        assert one.event(event, event_id=f"Ev0DMSKIP{number}").status == 200
    time.sleep(TAKEOVER + 0.2)
    assert sweep_until_taken(two, timeout=1.0) == 0
    assert slack.replies() == []


def test_answered_and_then_not_marked_done_is_the_one_duplicate_window(
    two_replicas: tuple[Bot, Bot], slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    one, two = two_replicas
    pending = one.runtime.state.pending
    assert pending is not None

    def database_gone(pending_id: str) -> None:
        raise StateUnavailable("postgresql://127.0.0.1", "connection refused")

    store = pending.store
    store.finish_pending = database_gone  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="corpusbot")
    assert one.event(direct_message(DELEGATION, "1700000600.000100"), event_id="Ev0DMDUP01").status == 200
    one.settle()
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert "Could not mark question event:Ev0DMDUP01 answered" in caplog.text
    assert sweep_until_taken(two) == 1
    assert len(slack.calls_to("chat.postMessage")) == 2, "the documented duplicate: posted, not marked done"


def test_an_ask_question_is_taken_over_but_a_watch_being_added_or_removed_is_not(
    two_replicas: tuple[Bot, Bot], slack: FakeSlack
) -> None:
    one, two = two_replicas
    dies_after_the_ack(one)
    assert one.command("/ask", "watch rare earth export licences", hook="watch").status == 200
    assert one.command("/ask", "unwatch 1", hook="unwatch").status == 200
    assert one.command("/ask", DELEGATION, hook="question").status == 200
    assert sweep_until_taken(two) == 1
    [reply] = slack.calls_to("response_url")
    assert reply.path.endswith("/question") and "Becente" in str(reply.body)
    assert two.runtime.state.watches.all() == []
