"""The message shortcut "Ask corpusbot about this" end to end: signed interactivity payloads to the real app."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.socket_mode.request import SocketModeRequest

from corpusbot.bot import config
from corpusbot.bot.serving.server import socket_mode_handler
from corpusbot.bot.slack import blocks, surface_blocks
from corpusbot.bot.slack.app import build_app
from corpusbot.bot.slack.runtime import make_runtime
from corpusbot.bot.slack.surface_payloads import QUESTION_BLOCK, QUESTION_INPUT, Origin
from corpusbot.index import SearchService
from tests.bot.slack.surface_helpers import DELEGATION, EVIL_TEXT, build_corpus, markup, no_problems, rendered
from tests.support.fake_slack import APP_TOKEN, TEAM_ID, FakeSlack
from tests.support.fake_socket_mode import SocketModeSlack
from tests.support.slack_harness import (
    Bot,
    CapturingClient,
    Response,
    TrackedExecutor,
    environment,
    running_bot,
)


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


def interactive(bot: Bot, payload: dict[str, Any]) -> Response:
    form = urlencode({"payload": json.dumps(payload)}).encode()
    return bot.post_signed(form, "application/x-www-form-urlencoded")


def shortcut(bot: Bot, text: str, *, channel: str = "C0GENERAL", trigger: str | None = "12345.98765.abcd") -> Response:
    payload: dict[str, Any] = {
        "type": "message_action",
        "token": "legacy-verification-token",
        "action_ts": "1700001000.000100",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": "U0ALICE1", "username": "alice", "team_id": TEAM_ID},
        "channel": {"id": channel, "name": "general"},
        "callback_id": surface_blocks.SHORTCUT_CALLBACK,
        "message_ts": "1700000999.000100",
        "message": {"type": "message", "user": "U0BOB0001", "ts": "1700000999.000100", "text": text},
        "response_url": bot.slack.response_url("shortcut"),
    }
    if trigger is not None:
        payload["trigger_id"] = trigger
    return interactive(bot, payload)


def submit(bot: Bot, question: Any, origin: Origin | str) -> Response:
    metadata = origin if isinstance(origin, str) else origin.to_value()
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": "U0ALICE1", "username": "alice", "team_id": TEAM_ID},
        "trigger_id": "12345.98765.efgh",
        "view": {
            "id": "V0002",
            "type": "modal",
            "callback_id": surface_blocks.MODAL_CALLBACK,
            "private_metadata": metadata,
            "state": {"values": {QUESTION_BLOCK: {QUESTION_INPUT: {"type": "plain_text_input", "value": question}}}},
        },
    }
    return interactive(bot, payload)


def test_the_shortcut_opens_a_modal_holding_the_messages_text_made_plain(bot: Bot, slack: FakeSlack) -> None:
    assert shortcut(bot, "<@U0BOB0001> says: who is on the US &amp; UK delegation?").status == 200
    bot.settle()
    [opened] = slack.calls_to("views.open")
    view = opened.body["view"]
    assert view["callback_id"] == surface_blocks.MODAL_CALLBACK
    assert view["blocks"][0]["element"]["initial_value"] == "@U0BOB0001 says: who is on the US & UK delegation?"
    assert Origin.from_value(view["private_metadata"]) == Origin("C0GENERAL", slack.response_url("shortcut"))
    assert len(view["title"]["text"]) <= 24
    assert slack.replies() == []  # nothing answered before the user presses Ask
    no_problems(slack)


def test_the_submitted_question_is_answered_privately_with_share_in_channel(bot: Bot, slack: FakeSlack) -> None:
    assert submit(bot, DELEGATION, Origin("C0GENERAL", slack.response_url("shortcut"))).status == 200
    bot.settle()
    [reply] = slack.calls_to("response_url")
    assert reply.body["response_type"] == "ephemeral"
    assert "Treasury Secretary Becente" in rendered(reply.body)
    values = {
        element["action_id"]: element["value"]
        for block in reply.body["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    }
    assert blocks.SHARE in values
    assert json.loads(values[blocks.SHARE])["q"] == DELEGATION
    assert slack.calls_to("chat.postMessage") == []
    no_problems(slack)


def test_an_empty_question_is_refused_inside_the_modal(bot: Bot, slack: FakeSlack) -> None:
    response = submit(bot, "   ", Origin("C0GENERAL", slack.response_url("shortcut")))
    bot.settle()
    assert response.status == 200
    body = json.loads(response.text)
    assert body["response_action"] == "errors"
    assert QUESTION_BLOCK in body["errors"]
    assert slack.replies() == []


def test_a_wrongly_typed_question_is_refused_in_the_modal_and_logged_in_one_line(
    bot: Bot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = submit(bot, 42, Origin("C0GENERAL", slack.response_url("shortcut")))
    bot.settle()
    assert json.loads(response.text)["response_action"] == "errors"
    [line] = [r.getMessage() for r in caplog.records if "Odd Slack shortcut modal payload" in r.getMessage()]
    assert "value is a number" in line
    assert slack.replies() == []


def test_where_no_ephemeral_can_go_the_answer_comes_as_a_direct_message_without_share(
    bot: Bot, slack: FakeSlack
) -> None:
    slack.fail_next("response_url", status=404)
    submit(bot, DELEGATION, Origin("C0GENERAL", slack.response_url("shortcut")))
    bot.settle()
    [dm] = slack.calls_to("chat.postMessage")
    assert dm.body["channel"] == "U0ALICE1"
    assert "Treasury Secretary Becente" in rendered(dm.body)
    assert blocks.SHARE not in json.dumps(dm.body["blocks"])


def test_without_a_response_url_the_answer_comes_as_a_direct_message(bot: Bot, slack: FakeSlack) -> None:
    submit(bot, DELEGATION, "not json at all")
    bot.settle()
    [dm] = slack.calls_to("chat.postMessage")
    assert dm.body["channel"] == "U0ALICE1"
    assert slack.calls_to("response_url") == []


def test_an_expired_trigger_asks_the_messages_text_itself(bot: Bot, slack: FakeSlack) -> None:
    slack.fail_next("views.open", status=200, error="expired_trigger_id")
    shortcut(bot, DELEGATION)
    bot.settle()
    [reply] = slack.calls_to("response_url")
    assert reply.body["response_type"] == "ephemeral"
    assert "Treasury Secretary Becente" in rendered(reply.body)


def test_a_hostile_shared_message_is_escaped_in_modal_and_answer(bot: Bot, slack: FakeSlack) -> None:
    hostile = EVIL_TEXT + " <!everyone> " + "&lt;!channel&gt; " * 400
    shortcut(bot, hostile)
    bot.settle()
    [opened] = slack.calls_to("views.open")
    initial = opened.body["view"]["blocks"][0]["element"]["initial_value"]
    assert len(initial) <= surface_blocks.MODAL_INPUT_CHARS  # plain text input: shown as typed, never parsed
    submit(bot, initial, Origin("C0GENERAL", slack.response_url("shortcut")))
    bot.settle()
    [reply] = slack.calls_to("response_url")
    shown = rendered(reply.body)
    assert not {m for m in markup(shown) if m.startswith(("<!", "<@"))}
    assert "&lt;!channel&gt;" in shown
    no_problems(slack)


def test_a_huge_message_with_an_expired_trigger_gets_one_answer_within_block_kit_limits(
    bot: Bot, slack: FakeSlack
) -> None:
    slack.fail_next("views.open", status=200, error="expired_trigger_id")
    shortcut(bot, "magnesium smelter ünïcödé <!channel> " + "&lt;@U0VICTIM&gt; " * 2_500)  # ~45,000 characters
    bot.settle()
    [reply] = slack.calls_to("response_url")
    assert not {m for m in markup(rendered(reply.body)) if m.startswith(("<!", "<@"))}
    assert "shortened" in rendered(reply.body)
    no_problems(slack)


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "message_action"},
        {"type": "message_action", "callback_id": ["x"]},
        {"type": "view_submission"},
        {"type": "view_submission", "view": {"callback_id": 7}},
        {"type": "view_submission", "view": {"callback_id": surface_blocks.MODAL_CALLBACK}},
    ],
)
def test_interactive_payloads_of_the_wrong_shape_are_refused_with_400(
    bot: Bot, slack: FakeSlack, payload: dict, caplog: pytest.LogCaptureFixture
) -> None:
    assert interactive(bot, payload).status == 400
    bot.settle()
    assert slack.replies() == [] and slack.calls_to("views.open") == []
    assert not [record for record in caplog.records if record.exc_info]


def test_wrongly_typed_fields_of_a_shortcut_are_logged_in_one_line(
    bot: Bot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    payload = {
        "type": "message_action",
        "callback_id": surface_blocks.SHORTCUT_CALLBACK,
        "user": {"id": "U0ALICE1"},
        "channel": "C0GENERAL",
        "message": {"text": 42},
        "trigger_id": "1.2.3",
    }
    assert interactive(bot, payload).status == 200
    bot.settle()
    assert not [record for record in caplog.records if record.exc_info]
    assert any("Odd Slack message shortcut payload" in r.getMessage() for r in caplog.records)
    [opened] = slack.calls_to("views.open")
    assert "initial_value" not in opened.body["view"]["blocks"][0]["element"]


def test_the_shortcut_can_be_turned_off(slack: FakeSlack, db: Path) -> None:
    with running_bot(slack, db, CORPUSBOT_SURFACES_OFF="shortcut") as bot:
        response = shortcut(bot, DELEGATION)
        bot.settle()
    assert response.status == 404  # bolt has no listener for it
    assert slack.calls_to("views.open") == []


def test_in_socket_mode_the_shortcut_opens_the_modal_and_an_empty_question_is_refused_in_the_ack(
    slack: FakeSlack, db: Path
) -> None:
    env = environment(slack, db, SLACK_APP_TOKEN=APP_TOKEN)
    del env["SLACK_SIGNING_SECRET"]
    settings = config.settings_from_env(env)
    service = SearchService(db)
    runtime = make_runtime(settings, service)
    executor = TrackedExecutor()
    handler = socket_mode_handler(build_app(settings, service, runtime=runtime, executor=executor), settings)
    client = CapturingClient()
    origin = Origin("C0GENERAL", slack.response_url("shortcut"))
    shortcut_payload = {
        "type": "message_action",
        "callback_id": surface_blocks.SHORTCUT_CALLBACK,
        "user": {"id": "U0ALICE1"},
        "channel": {"id": "C0GENERAL"},
        "message": {"type": "message", "text": DELEGATION, "ts": "1700000999.000100"},
        "trigger_id": "1.2.3",
        "response_url": origin.response_url,
    }
    empty = {
        "type": "view_submission",
        "user": {"id": "U0ALICE1"},
        "view": {
            "type": "modal",
            "callback_id": surface_blocks.MODAL_CALLBACK,
            "private_metadata": origin.to_value(),
            "state": {"values": {QUESTION_BLOCK: {QUESTION_INPUT: {"type": "plain_text_input", "value": ""}}}},
        },
    }
    no_type = {**empty, "view": {key: value for key, value in empty["view"].items() if key != "type"}}
    try:
        handler.handle(client, SocketModeRequest("interactive", "env-shortcut", shortcut_payload))
        handler.handle(client, SocketModeRequest("interactive", "env-empty", empty))
        handler.handle(client, SocketModeRequest("interactive", "env-no-type", no_type))  # dropped, acknowledged
        executor.wait_idle()
    finally:
        executor.shutdown(wait=True)
        runtime.state.close()
        service.close()
    assert [ack.envelope_id for ack in client.acks] == ["env-shortcut", "env-empty", "env-no-type"]
    assert client.acks[1].payload["response_action"] == "errors"
    [opened] = slack.calls_to("views.open")
    assert opened.body["view"]["blocks"][0]["element"]["initial_value"] == DELEGATION
    assert slack.replies() == []


def test_over_a_real_socket_mode_connection_shortcut_modal_and_answer_work(
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
        handler = socket_mode_handler(build_app(settings, service, runtime=runtime, executor=executor), settings)
        handler.connect()
        origin = Origin("C0GENERAL", slack.response_url("shortcut"))
        used = {
            "type": "message_action",
            "callback_id": surface_blocks.SHORTCUT_CALLBACK,
            "trigger_id": "1.2.3",
            "user": {"id": "U0ALICE1"},
            "channel": {"id": "C0GENERAL"},
            "message": {"type": "message", "text": f"<!here> {DELEGATION}", "ts": "1700000999.000100"},
            "response_url": origin.response_url,
        }

        def submission(question: str) -> dict[str, Any]:
            values = {QUESTION_BLOCK: {QUESTION_INPUT: {"type": "plain_text_input", "value": question}}}
            view = {"type": "modal", "callback_id": surface_blocks.MODAL_CALLBACK, "state": {"values": values}}
            return {
                "type": "view_submission",
                "user": {"id": "U0ALICE1"},
                "view": {**view, "private_metadata": origin.to_value()},
            }

        try:
            socket_mode = slack.socket_mode
            socket_mode.wait_for_connections(1)
            socket_mode.deliver(used, "interactive")
            slack.wait_for("views.open", 1)
            empty = socket_mode.deliver(submission(" "), "interactive")
            socket_mode.deliver(submission(DELEGATION), "interactive")
            socket_mode.wait_for_acks(3)
            slack.wait_for("response_url", 1)
            executor.wait_idle()
        finally:
            handler.close()
            executor.shutdown(wait=True)
            runtime.state.close()
            service.close()
        [opened] = slack.calls_to("views.open")
        assert opened.body["view"]["blocks"][0]["element"]["initial_value"] == DELEGATION
        [refused] = socket_mode.acks_for(empty.envelope_id)
        assert refused.payload["response_action"] == "errors"
        [reply] = slack.calls_to("response_url")
        assert reply.body["response_type"] == "ephemeral" and "Treasury Secretary Becente" in rendered(reply.body)
        no_problems(slack)


HOSTILE_SOCKET_MODE = [
    ("interactive", {"type": "message_action", "callback_id": surface_blocks.SHORTCUT_CALLBACK, "message": "x"}),
    (
        "interactive",
        {
            "type": "message_action",
            "callback_id": surface_blocks.SHORTCUT_CALLBACK,
            "user": "U0ALICE1",
            "channel": ["C0GENERAL"],
            "trigger_id": 5,
            "response_url": {"u": 1},
        },
    ),
    ("interactive", {"type": "message_action", "callback_id": 7}),
    (
        "interactive",
        {
            "type": "view_submission",
            "view": {
                "type": "modal",
                "callback_id": surface_blocks.MODAL_CALLBACK,
                "state": "values",
                "private_metadata": 9,
            },
            "user": None,
        },
    ),
    ("interactive", {"type": "view_submission", "view": []}),
    (
        "events_api",
        {
            "type": "event_callback",
            "event_id": "Ev0H1",
            "event": {
                "type": "assistant_thread_started",
                "assistant_thread": {"channel_id": "D1", "thread_ts": "1.1", "context": []},
            },
        },
    ),
    ("events_api", {"type": "event_callback", "event_id": "Ev0H2", "event": {"type": "link_shared", "links": [[]]}}),
    (
        "events_api",
        {
            "type": "event_callback",
            "event_id": "Ev0H3",
            "event": {
                "type": "message",
                "channel_type": "im",
                "channel": "D1",
                "thread_ts": "1.1",
                "previous_message": 5,
            },
        },
    ),
]


def test_hostile_envelopes_in_socket_mode_are_acknowledged_without_a_traceback(
    slack: FakeSlack, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = environment(slack, db, SLACK_APP_TOKEN=APP_TOKEN)
    del env["SLACK_SIGNING_SECRET"]
    settings = config.settings_from_env(env)
    service = SearchService(db)
    runtime = make_runtime(settings, service)
    executor = TrackedExecutor()
    handler = socket_mode_handler(build_app(settings, service, runtime=runtime, executor=executor), settings)
    client = CapturingClient()
    try:
        for number, (kind, payload) in enumerate(HOSTILE_SOCKET_MODE):
            handler.handle(client, SocketModeRequest(kind, f"env-{number}", payload))
        executor.wait_idle()
    finally:
        executor.shutdown(wait=True)
        runtime.state.close()
        service.close()
    assert len(client.acks) == len(HOSTILE_SOCKET_MODE)
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []
    assert slack.replies() == [] and slack.calls_to("chat.unfurl") == []
