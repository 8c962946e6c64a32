"""The assistant panel end to end: signed events over HTTP (and Socket Mode envelopes) to the real app, replies
checked at the fake Slack Web API."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from slack_sdk.socket_mode.request import SocketModeRequest

from corpusbot.bot import config
from corpusbot.bot.serving.server import socket_mode_handler
from corpusbot.bot.slack import surface_blocks
from corpusbot.bot.slack.app import build_app
from corpusbot.bot.slack.runtime import make_runtime
from corpusbot.bot.state.database import ASSISTANT_CONTEXTS_TABLE
from corpusbot.index import SearchService
from tests.bot.slack.surface_helpers import (
    DELEGATION,
    PANEL,
    THREAD,
    build_corpus,
    context_changed,
    markup,
    no_problems,
    panel_message,
    rendered,
    thread_started,
)
from tests.support.fake_slack import APP_TOKEN, FakeSlack
from tests.support.fake_socket_mode import SocketModeSlack
from tests.support.slack_harness import Bot, CapturingClient, TrackedExecutor, environment, running_bot


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def db(tmp_path: Path, corpus_dir: Path) -> Path:
    return build_corpus(tmp_path, corpus_dir)


@pytest.fixture
def bot(slack: FakeSlack, db: Path):
    with running_bot(slack, db) as running:
        yield running


def answers(slack: FakeSlack) -> list[dict]:
    return [call.body for call in slack.calls_to("chat.postMessage")]


def test_a_new_thread_gets_a_greeting_naming_the_viewed_channel_and_suggested_prompts(
    bot: Bot, slack: FakeSlack
) -> None:
    assert bot.event(thread_started("C0VIEWED1")).status == 200
    bot.settle()
    [greeting] = answers(slack)
    assert greeting["channel"] == PANEL and greeting["thread_ts"] == THREAD
    text = rendered(greeting)
    articles = bot.runtime.service.stats().articles
    assert f"*{articles:,}* news articles" in text
    assert "viewing <#C0VIEWED1>" in text
    [prompts] = slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert prompts.body["channel_id"] == PANEL and prompts.body["thread_ts"] == THREAD
    examples = bot.runtime.service.example_questions(4)
    assert examples
    assert [p["message"] for p in prompts.body["prompts"]] == [surface_blocks.unparsed(e) for e in examples[:4]]
    assert 1 <= len(prompts.body["prompts"]) <= 4
    no_problems(slack)


def test_a_question_sets_title_and_status_then_gets_exactly_one_cited_answer_also_when_retried(
    bot: Bot, slack: FakeSlack
) -> None:
    bot.event(thread_started("C0VIEWED1"))
    bot.settle()
    event = panel_message(DELEGATION)
    assert bot.event(event, event_id="Ev0PANEL01").status == 200
    assert bot.event(event, event_id="Ev0PANEL01", retry=1).status == 200
    bot.settle()
    [title] = slack.calls_to("assistant.threads.setTitle")
    assert (title.body["channel_id"], title.body["thread_ts"], title.body["title"]) == (PANEL, THREAD, DELEGATION)
    [status] = slack.calls_to("assistant.threads.setStatus")
    articles = bot.runtime.service.stats().articles
    assert status.body["status"] == f"Searching {articles:,} articles…"
    greeting, answer = answers(slack)  # the greeting, then one answer: not a second from the DM listener
    assert "Hi!" in rendered(greeting)
    assert answer["channel"] == PANEL and answer["thread_ts"] == THREAD
    assert "Treasury Secretary Becente" in rendered(answer)
    assert "[1] " in rendered(answer)
    assert "Asked while viewing <#C0VIEWED1>" in rendered(answer)
    order = [call.method for call in slack.calls if call.method != "auth.test"]
    assert order.index("assistant.threads.setTitle") < order.index("assistant.threads.setStatus")
    assert order.index("assistant.threads.setStatus") < len(order) - 1 - order[::-1].index("chat.postMessage")
    no_problems(slack)


def test_a_changed_context_is_stored_and_named_in_the_next_answer(bot: Bot, slack: FakeSlack) -> None:
    bot.event(thread_started("C0VIEWED1"))
    bot.settle()
    bot.event(context_changed("C0OTHER02"))
    bot.settle()
    assert bot.runtime.state.path is not None
    with sqlite3.connect(bot.runtime.state.path) as conn:
        [(stored,)] = conn.execute(
            f"SELECT context FROM {ASSISTANT_CONTEXTS_TABLE} WHERE channel_id = ? AND thread_ts = ?", (PANEL, THREAD)
        ).fetchall()
    assert json.loads(stored)["channel_id"] == "C0OTHER02"
    bot.event(panel_message("rare earth magnets"))
    bot.settle()
    answer = answers(slack)[-1]
    assert "Asked while viewing <#C0OTHER02>" in rendered(answer)
    assert "C0VIEWED1" not in rendered(answer)


def test_a_follow_up_is_read_with_the_threads_earlier_question(bot: Bot, slack: FakeSlack) -> None:
    asked: list[tuple[str, str | None]] = []
    service = bot.runtime.service
    original = service.ask

    def recording(question: str, *args, context: str | None = None, **kwargs):
        asked.append((question, context))
        return original(question, *args, context=context, **kwargs)

    service.ask = recording  # type: ignore[method-assign]
    bot.event(thread_started(None))
    bot.event(panel_message(DELEGATION, ts="1700000901.000100"))
    bot.settle()
    bot.event(panel_message("and who leads it?", ts="1700000902.000100"))
    bot.settle()
    bot.event(panel_message("magnesium smelter production in Inner Mongolia", ts="1700000903.000100"))
    bot.settle()
    bot.event(panel_message("what about Russia?", ts="1700000904.000100", thread_ts="1700000999.000100"))
    bot.settle()
    assert asked == [
        (DELEGATION, None),
        ("and who leads it?", DELEGATION),
        ("magnesium smelter production in Inner Mongolia", None),  # a question of its own
        ("what about Russia?", None),  # another thread: nothing to follow up on
    ]


def test_a_follow_up_sent_before_the_first_answer_shows_up_still_reads_it(bot: Bot, slack: FakeSlack) -> None:
    asked: list[tuple[str, str | None]] = []
    first_asked, release = threading.Event(), threading.Event()
    service = bot.runtime.service
    original = service.ask

    def slow_first(question: str, *args, context: str | None = None, **kwargs):
        asked.append((question, context))
        if question == DELEGATION:
            first_asked.set()
            release.wait(10)
        return original(question, *args, context=context, **kwargs)

    service.ask = slow_first  # type: ignore[method-assign]
    bot.event(panel_message(DELEGATION, ts="1700000901.000100"))
    assert first_asked.wait(10)
    bot.event(panel_message("and who leads it?", ts="1700000902.000100"))
    deadline = time.monotonic() + 10
    while len(asked) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    bot.settle()
    assert asked == [(DELEGATION, None), ("and who leads it?", DELEGATION)]


def test_the_panel_and_the_dm_listener_share_a_threads_last_question(slack: FakeSlack, db: Path) -> None:
    """Turning the assistant off (or on) keeps a thread's follow-ups: one store of last questions, not two."""
    with running_bot(slack, db) as bot:
        bot.event(panel_message(DELEGATION, ts="1700000901.000100"))
        bot.settle()
        assert bot.runtime.state.thread_questions.earlier(PANEL, THREAD) == DELEGATION


def test_with_the_assistant_turned_off_the_dm_listener_answers_panel_threads(slack: FakeSlack, db: Path) -> None:
    with running_bot(slack, db, CORPUSBOT_SURFACES_OFF="assistant") as bot:
        bot.event(thread_started("C0VIEWED1"))
        bot.event(panel_message(DELEGATION))
        bot.settle()
    assert slack.calls_to("assistant.threads.setSuggestedPrompts") == []
    assert slack.calls_to("assistant.threads.setTitle") == []
    [answer] = answers(slack)  # the plain DM listener answers, in the thread
    assert answer["thread_ts"] == THREAD


def test_a_refused_title_or_status_still_gets_the_answer(bot: Bot, slack: FakeSlack) -> None:
    slack.fail_next("assistant.threads.setTitle", status=200, error="not_allowed")
    slack.fail_next("assistant.threads.setStatus", status=200, error="not_allowed")
    bot.event(panel_message(DELEGATION))
    bot.settle()
    [answer] = answers(slack)
    assert "Treasury Secretary Becente" in rendered(answer)


def test_hostile_text_in_the_panel_is_escaped_and_within_block_kit_limits(bot: Bot, slack: FakeSlack) -> None:
    bot.event(thread_started("C0VIEWED1<!channel>"))  # not a channel id: not shown as one
    bot.event(panel_message("<!channel> magnesium smelter &lt;!here&gt; " + "x" * 5000))
    bot.settle()
    for payload in answers(slack):
        assert markup(rendered(payload)) <= {f"<https://news.example.com/smelter/story-1|{t}>" for t in _titles()}
    for call in slack.calls_to("assistant.threads.setTitle"):
        assert len(call.body["title"]) <= 100
    no_problems(slack)


def test_suggested_prompts_and_the_title_carry_no_markup_from_the_corpus_or_the_user(
    bot: Bot, slack: FakeSlack
) -> None:
    """A prompt's message is sent as the user's own message when clicked: no mention or disguised link in it."""
    evil = "Ping <!channel> & <@U0VICTIM>"
    assert any(evil in example for example in bot.runtime.service.example_questions(4))  # from the article's title
    bot.event(thread_started("C0VIEWED1"))
    bot.event(panel_message("&lt;!here&gt; magnesium smelter &lt;https://evil.example|official&gt;"))
    bot.settle()
    [prompts] = slack.calls_to("assistant.threads.setSuggestedPrompts")
    texts = [text for prompt in prompts.body["prompts"] for text in (prompt["title"], prompt["message"])]
    assert any("Ping" in text and "channel" in text for text in texts)  # still recognisable
    assert [text for text in texts if "<" in text or ">" in text] == []
    [title] = slack.calls_to("assistant.threads.setTitle")
    assert "here" in title.body["title"] and "<" not in title.body["title"] and ">" not in title.body["title"]


def _titles() -> set[str]:
    return {"Ping &lt;!channel&gt; &amp; &lt;@U0VICTIM&gt;"}


@pytest.mark.parametrize(
    "event",
    [
        {"type": "assistant_thread_started"},
        {"type": "assistant_thread_started", "assistant_thread": "D0PANEL01"},
        {"type": "assistant_thread_started", "assistant_thread": {"channel_id": 5, "thread_ts": THREAD}},
        {"type": "assistant_thread_context_changed", "assistant_thread": {"channel_id": PANEL}},
        {
            "type": "assistant_thread_started",
            "assistant_thread": {"channel_id": PANEL, "thread_ts": THREAD, "context": "C0VIEWED1"},
        },
        {"type": "message", "channel_type": "im", "channel": PANEL, "thread_ts": THREAD, "message": "edited"},
    ],
)
def test_assistant_events_of_the_wrong_shape_are_refused_with_400_and_one_line(
    bot: Bot, slack: FakeSlack, event: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert bot.event(event).status == 400
    bot.settle()
    assert slack.replies() == []
    assert not [record for record in caplog.records if record.exc_info]


def test_wrongly_typed_fields_inside_a_panel_message_are_logged_in_one_line(
    bot: Bot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    event = panel_message(DELEGATION)
    event["user"] = ["U0ALICE1"]
    bot.event(event)
    started = thread_started("C0VIEWED1")
    started["assistant_thread"]["context"] = {"channel_id": 42}
    bot.event(started)
    bot.settle()
    assert not [record for record in caplog.records if record.exc_info]
    assert any("Odd Slack assistant message payload" in r.getMessage() for r in caplog.records)
    [greeting] = answers(slack)  # the message without a readable user is not answered; the greeting is
    assert "viewing" not in rendered(greeting)


# -- Socket Mode ---------------------------------------------------------------------------------------------------


def test_socket_mode_envelopes_reach_the_panel_and_a_retried_one_is_answered_once(slack: FakeSlack, db: Path) -> None:
    env = environment(slack, db, SLACK_APP_TOKEN=APP_TOKEN)
    del env["SLACK_SIGNING_SECRET"]
    settings = config.settings_from_env(env)
    service = SearchService(db)
    runtime = make_runtime(settings, service)
    executor = TrackedExecutor()
    app = build_app(settings, service, runtime=runtime, executor=executor)
    handler = socket_mode_handler(app, settings)
    client = CapturingClient()
    try:
        for event_id, event, attempt in (
            ("Ev0SOCKP1", thread_started("C0VIEWED1"), None),
            ("Ev0SOCKP2", panel_message(DELEGATION), None),
            ("Ev0SOCKP2", panel_message(DELEGATION), 1),
        ):
            payload = {"type": "event_callback", "team_id": "T0FAKE01", "event_id": event_id, "event": event}
            handler.handle(client, SocketModeRequest("events_api", f"env-{event_id}-{attempt}", payload, attempt))
        executor.wait_idle()
    finally:
        executor.shutdown(wait=True)
        runtime.state.close()
        service.close()
    assert len(client.acks) == 3
    assert len(answers(slack)) == 2  # the greeting and one answer (the listeners run side by side)
    assert any("viewing <#C0VIEWED1>" in rendered(body) for body in answers(slack))
    assert any("Treasury Secretary Becente" in rendered(body) for body in answers(slack))
    assert len(slack.calls_to("assistant.threads.setTitle")) == 1


def test_over_a_real_socket_mode_connection_a_redelivered_panel_question_is_answered_once(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with SocketModeSlack(ping_interval=0.1) as slack:
        env = environment(slack, db, SLACK_APP_TOKEN=APP_TOKEN)
        del env["SLACK_SIGNING_SECRET"]
        settings = config.settings_from_env(env)
        service = SearchService(db)
        runtime = make_runtime(settings, service)
        executor = TrackedExecutor()
        app = build_app(settings, service, runtime=runtime, executor=executor)
        handler = socket_mode_handler(app, settings)
        handler.connect()
        try:
            socket_mode = slack.socket_mode
            [link] = socket_mode.wait_for_connections(1)
            socket_mode.deliver_event(thread_started("C0VIEWED1"), event_id="Ev0WSP01")
            question = socket_mode.deliver_event(panel_message(DELEGATION), event_id="Ev0WSP02")
            socket_mode.wait_for_acks(2)
            socket_mode.redeliver(question.envelope_id, to=link)  # one connection: the retry comes back on it
            socket_mode.wait_for_acks(3)
            slack.wait_for("chat.postMessage", 2)
            executor.wait_idle()
        finally:
            handler.close()
            executor.shutdown(wait=True)
            runtime.state.close()
            service.close()
        [greeting] = [body for body in answers(slack) if "Hi!" in rendered(body)]  # listeners run side by side
        [answer] = [body for body in answers(slack) if "Treasury Secretary Becente" in rendered(body)]
        assert "viewing <#C0VIEWED1>" in rendered(greeting) and len(answers(slack)) == 2
        assert answer["thread_ts"] == THREAD and answer["metadata"]["event_type"] == "corpusbot_answer"
        assert len(slack.calls_to("assistant.threads.setSuggestedPrompts")) == 1
        assert len(slack.calls_to("assistant.threads.setTitle")) == 1
        assert len(socket_mode.acks_for(question.envelope_id)) == 2  # the retry acknowledged too
