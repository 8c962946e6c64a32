"""Correctly signed but malformed Slack payloads, over HTTP through the real app.

What is not a Slack payload gets 400 and one log line; an odd field in a real
payload (a ``text`` that is a number, a ``user`` that is a list) gets 200 and a
polite reply or one log line. Never a 500, never a traceback, never a reply to
garbage; a retried event is answered once whatever the type of its id.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusbot.bot.slack import blocks
from corpusbot.bot.slack.blocks import AnswerRef
from tests.support.fake_slack import TEAM_ID, FakeSlack
from tests.support.slack_harness import Bot, Response, running_bot

MENTION = {"type": "app_mention", "user": "U0ALICE1", "text": "rare earth", "ts": "1.1", "channel": "C0GENERAL"}
DM = {"type": "message", "channel_type": "im", "user": "U0ALICE1", "text": "rare earth", "ts": "2.1", "channel": "D0A"}
HOME = {"type": "app_home_opened", "user": "U0ALICE1", "tab": "home"}
HOW_TO_ASK = blocks.help_message([]).text


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


def send_envelope(bot: Bot, envelope: dict[str, Any]) -> Response:
    return bot.post_signed(json.dumps(envelope).encode(), "application/json")


def events_body(event: Any, event_id: Any = None) -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": "A0FAKE01",
        "type": "event_callback",
        "event_id": event_id if event_id is not None else f"Ev{time.monotonic_ns()}",
        "event_time": int(time.time()),
        "event": event,
    }


def send_click(bot: Bot, payload: dict[str, Any]) -> Response:
    return bot.post_signed(urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded")


def assert_no_traceback(logs: pytest.LogCaptureFixture) -> None:
    assert not [record for record in logs.records if record.exc_info]
    assert "Traceback" not in logs.text


def warnings(logs: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in logs.records if record.levelno == logging.WARNING]


# -- not a Slack payload: 400 -------------------------------------------------------------------------------

NOT_SLACK = {
    "event is a string": events_body("hello"),
    "event is a list": events_body([1, 2]),
    "event without a type": events_body({"user": "U0ALICE1", "text": "hi"}),
    "event type is a list": events_body({**MENTION, "type": ["app_mention"]}),
    "event_id is a list": events_body(MENTION, ["Ev1"]),
    "event_id is an object": events_body(MENTION, {"id": "Ev1"}),
    "no event at all": {k: v for k, v in events_body(MENTION).items() if k != "event"},
    "type is a number": {"type": 5, "event": 1},
    "an event that is a string beside a challenge": {"type": "url_verification", "challenge": "c", "event": "x"},
    "url_verification without a string challenge": {"type": "url_verification", "challenge": ["x"]},
}


@pytest.mark.parametrize("body", NOT_SLACK.values(), ids=NOT_SLACK.keys())
def test_what_is_not_a_slack_payload_is_400_with_one_line(
    bot: Bot, slack: FakeSlack, logs: pytest.LogCaptureFixture, body: dict[str, Any]
) -> None:
    assert send_envelope(bot, body).status == 400
    bot.settle()
    assert slack.replies() == []
    assert_no_traceback(logs)
    [line] = [w for w in warnings(logs) if w.startswith("Rejected a Slack request")]
    assert "HTTP 400, not a Slack payload" in line


CLICKS_NOT_SLACK = {
    "actions is a string": {"type": "block_actions", "actions": "more", "user": {"id": "U0ALICE1"}},
    "actions is empty": {"type": "block_actions", "actions": [], "user": {"id": "U0ALICE1"}},
    "action_id is a list": {"type": "block_actions", "actions": [{"action_id": [blocks.MORE]}]},
}


@pytest.mark.parametrize("payload", CLICKS_NOT_SLACK.values(), ids=CLICKS_NOT_SLACK.keys())
def test_a_click_without_a_readable_action_is_400(
    bot: Bot, slack: FakeSlack, logs: pytest.LogCaptureFixture, payload: dict[str, Any]
) -> None:
    assert send_click(bot, payload).status == 400
    bot.settle()
    assert slack.replies() == []
    assert_no_traceback(logs)


def test_a_kind_of_request_the_bot_does_not_handle_is_404_without_bolt_reading_it(
    bot: Bot, slack: FakeSlack, logs: pytest.LogCaptureFixture
) -> None:
    assert send_click(bot, {"type": "block_suggestion", "view": 5, "user": {"id": "U0ALICE1"}}).status == 404
    assert_no_traceback(logs)
    assert slack.replies() == []


# -- odd but valid: 200, and a polite reply or one line -----------------------------------------------------


@pytest.mark.parametrize("text", [42, ["rare", "earth"], {"text": "rare earth"}], ids=["number", "list", "object"])
def test_a_mention_whose_text_is_not_a_string_gets_the_how_to_ask_reply(
    bot: Bot, slack: FakeSlack, logs: pytest.LogCaptureFixture, text: Any
) -> None:
    assert send_envelope(bot, events_body({**MENTION, "text": text})).status == 200
    [reply] = slack.wait_for("chat.postMessage")
    bot.settle()
    assert reply.body["thread_ts"] == "1.1" and reply.body["text"] == HOW_TO_ASK
    assert_no_traceback(logs)
    [line] = [w for w in warnings(logs) if w.startswith("Odd Slack")]
    assert line.startswith("Odd Slack app_mention payload (fields ignored): text is ")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({**MENTION, "user": ["U0ALICE1"]}, "user is a list"),
        ({**DM, "user": ["U0ALICE1"]}, "user is a list"),
        ({**HOME, "user": {"id": "U0ALICE1"}}, "user is an object"),
        ({**MENTION, "channel": ["C0GENERAL"]}, "channel is a list"),
    ],
    ids=["mention user list", "dm user list", "home user object", "mention channel list"],
)
def test_an_event_without_a_readable_user_or_channel_is_one_line_and_no_reply(
    bot: Bot, slack: FakeSlack, logs: pytest.LogCaptureFixture, event: dict[str, Any], field: str
) -> None:
    assert send_envelope(bot, events_body(event)).status == 200
    bot.settle()
    assert slack.replies() == [] and slack.calls_to("views.publish") == []
    assert_no_traceback(logs)
    [line] = [w for w in warnings(logs) if w.startswith("Odd Slack")]
    assert line.endswith(f"{field}, not a string")


def test_a_click_whose_value_is_a_number_is_one_line_and_no_reply(
    bot: Bot, slack: FakeSlack, logs: pytest.LogCaptureFixture
) -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE1"},
        "container": {"channel_id": "C0GENERAL", "message_ts": "1.1", "is_ephemeral": "yes"},
        "response_url": slack.response_url("click"),
        "actions": [{"action_id": blocks.MORE, "value": 42}],
    }
    assert send_click(bot, payload).status == 200
    bot.settle()
    assert slack.replies() == []
    assert_no_traceback(logs)
    [line] = [w for w in warnings(logs) if w.startswith("Odd Slack")]
    assert "action.value is a number" in line and "container.is_ephemeral is a string" in line


def test_a_click_from_an_odd_user_is_still_answered(bot: Bot, slack: FakeSlack, logs: pytest.LogCaptureFixture) -> None:
    payload = {
        "type": "block_actions",
        "user": "U0ALICE1",  # a string, not the object Slack sends
        "container": {"channel_id": "C0GENERAL", "message_ts": "1.1", "is_ephemeral": True},
        "response_url": slack.response_url("click"),
        "actions": [{"action_id": blocks.MORE, "value": AnswerRef("rare earth", 0).to_value()}],
    }
    assert send_click(bot, payload).status == 200
    [reply] = slack.wait_for("response_url")
    bot.settle()
    assert reply.body["replace_original"] is True and "blocks" in reply.body
    assert_no_traceback(logs)


# -- duplicates, whatever the type of the id ----------------------------------------------------------------


@pytest.mark.parametrize("first,again", [(12345, 12345), (12345, "12345"), (7.0, 7), ("Ev0DUP", "Ev0DUP")])
def test_a_retried_event_is_answered_once_whatever_its_id_type(
    bot: Bot, slack: FakeSlack, logs: pytest.LogCaptureFixture, first: Any, again: Any
) -> None:
    assert send_envelope(bot, events_body(MENTION, first)).status == 200
    slack.wait_for("chat.postMessage")
    retry = events_body(MENTION, again)
    response = bot.post_signed(
        json.dumps(retry).encode(), "application/json", extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "x"}
    )
    assert response.status == 200
    bot.settle()
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert any("already handled" in record.getMessage() for record in logs.records)


# -- anything at all in any field: never a 500 or a traceback -----------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def with_odd_fields(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(sorted(base)), JSON, max_size=3).map(lambda odd: {**base, **odd})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        with_odd_fields(MENTION).map(events_body),
        with_odd_fields(DM).map(events_body),
        with_odd_fields(HOME).map(events_body),
        with_odd_fields(events_body(MENTION)),
        st.dictionaries(st.sampled_from(["type", "event", "event_id", "command", "actions", "challenge"]), JSON),
    )
)
def test_any_json_in_any_field_is_never_a_500_or_a_traceback(
    bot: Bot, logs: pytest.LogCaptureFixture, body: dict[str, Any]
) -> None:
    logs.clear()
    status = send_envelope(bot, body).status
    bot.settle()
    assert status in (200, 400, 404), status
    assert_no_traceback(logs)
