"""The payload parser: any JSON in any field gives a typed record or PayloadError, and valid shapes round-trip."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusbot.bot.slack import payloads
from corpusbot.bot.slack.payloads import ButtonClick, ChatEvent, Envelope, HomeOpened, PayloadError, SlashCommand

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
NOT_STRING = JSON.filter(lambda value: value is not None and not isinstance(value, str))
TEXT = st.text(max_size=30)
ID = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12)

EVENT_FIELDS = ("type", "user", "text", "channel", "channel_type", "ts", "thread_ts", "bot_id", "subtype", "tab")
ENVELOPE_FIELDS = ("type", "event", "event_id", "command", "actions", "challenge", "ssl_check", "team_id")
COMMAND_FIELDS = ("command", "text", "user_id", "channel_id", "response_url")
CLICK_FIELDS = ("type", "actions", "user", "channel", "container", "response_url")
ACTION_FIELDS = ("action_id", "value", "block_id", "type")
CONTAINER_FIELDS = ("channel_id", "message_ts", "is_ephemeral", "type")


def objects(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of ``keys`` (plus a stray key or two), each holding any JSON value."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=8), JSON, max_size=len(keys) + 2)


def assert_typed(record: object) -> None:
    """Every field of a record holds the type it declares: str, str or None, bool, or a tuple of str."""
    for field in fields(record):  # type: ignore[arg-type]
        value = getattr(record, field.name)
        declared = str(field.type)
        if field.name == "problems":
            assert isinstance(value, tuple) and all(isinstance(p, str) for p in value)
        elif declared == "bool":
            assert isinstance(value, bool), field.name
        elif "None" in declared:
            assert value is None or isinstance(value, str), field.name
        else:
            assert isinstance(value, str), field.name


# -- arbitrary JSON never gets through as anything but PayloadError or a typed record -----------------------


@settings(max_examples=300)
@given(st.one_of(JSON, objects(ENVELOPE_FIELDS)))
def test_envelope_of_any_json_is_an_envelope_or_payload_error(body: Any) -> None:
    try:
        found = payloads.envelope(body)
    except PayloadError:
        return
    assert isinstance(found, Envelope)
    assert found.kind in (*payloads.HANDLED_KINDS, "other")
    assert found.event_id is None or isinstance(found.event_id, str)


def valid_event_id(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def expected_key(value: Any) -> str | None:
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return None if value is None else value if isinstance(value, str) else str(value)


@settings(max_examples=300)
@given(objects(ENVELOPE_FIELDS), objects(EVENT_FIELDS))
def test_an_events_body_with_any_fields_is_an_envelope_or_payload_error(body: dict, event: dict) -> None:
    body = {key: value for key, value in body.items() if key != "command"}  # with a command it is a command
    body.update(type="event_callback", event=event)
    good_type = isinstance(event.get("type"), str) and event["type"] != ""
    try:
        found = payloads.envelope(body)
    except PayloadError:
        assert not good_type or not valid_event_id(body.get("event_id"))
        return
    assert good_type and valid_event_id(body.get("event_id"))
    assert found.kind == "event" and found.event_type == event["type"]
    assert found.event_id == expected_key(body.get("event_id"))


@settings(max_examples=300)
@given(st.one_of(JSON, objects(EVENT_FIELDS)))
def test_events_of_any_json_are_typed_records(event: Any) -> None:
    for parse in (payloads.chat_event, payloads.home_opened):
        try:
            record = parse(event)
        except PayloadError:
            assert not isinstance(event, dict) or not isinstance(event.get("type"), str)
            continue
        assert_typed(record)


@settings(max_examples=300)
@given(st.one_of(JSON, objects(COMMAND_FIELDS)))
def test_commands_of_any_json_are_typed_records(body: Any) -> None:
    try:
        record = payloads.slash_command(body)
    except PayloadError:
        assert not isinstance(body, dict) or not isinstance(body.get("command"), str)
        return
    assert_typed(record)


@settings(max_examples=300)
@given(objects(CLICK_FIELDS), st.lists(objects(ACTION_FIELDS), max_size=2), objects(CONTAINER_FIELDS) | JSON)
def test_button_clicks_of_any_json_are_typed_records(body: dict, actions: list, container: Any) -> None:
    body = {**body, "container": container}
    if actions:
        body["actions"] = actions
    try:
        record = payloads.button_click(body)
    except PayloadError:
        first = body.get("actions")
        first = first[0] if isinstance(first, list) and first else None
        assert not isinstance(first, dict) or not isinstance(first.get("action_id"), str)
        return
    assert_typed(record)


@given(NOT_STRING)
def test_a_field_slack_never_sends_is_named_in_the_problems(value: Any) -> None:
    mention = payloads.chat_event({"type": "app_mention", "text": value, "user": "U1", "channel": "C1"})
    assert mention.text == ""
    assert [p for p in mention.problems if p.startswith("text is ")]
    assert mention.user == "U1" and mention.channel == "C1"


@pytest.mark.parametrize("value", [["U1"], {"id": "U1"}, 7, True])
def test_a_user_that_is_not_a_string_makes_the_message_one_not_to_answer(value: Any) -> None:
    message = payloads.chat_event({"type": "message", "user": value, "text": "hi", "channel": "D1"})
    assert message.user is None and message.from_a_bot
    assert message.problems == (f"user is {payloads._json_type(value)}, not a string",)


@pytest.mark.parametrize("value", [["B1"], {"id": "B1"}, 7, True])
def test_a_bot_id_of_another_type_still_marks_a_bot(value: Any) -> None:
    message = payloads.chat_event({"type": "message", "user": "U1", "bot_id": value, "text": "hi", "channel": "D1"})
    assert message.from_a_bot


# -- the edge: what is not a Slack payload ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"type": "event_callback", "event": "hello"},
        {"type": "event_callback", "event": [1, 2]},
        {"type": "event_callback"},
        {"type": "event_callback", "event": {"user": "U1"}},
        {"type": "event_callback", "event": {"type": ["app_mention"]}},
        {"type": "event_callback", "event": {"type": "app_mention"}, "event_id": ["Ev1"]},
        {"type": "event_callback", "event": {"type": "app_mention"}, "event_id": {"id": "Ev1"}},
        {"type": "event_callback", "event": {"type": "app_mention"}, "event_id": True},
        {"type": 5, "event": 1},
        {"type": ["event_callback"]},
        {"type": "block_actions", "actions": "more"},
        {"type": "block_actions", "actions": []},
        {"type": "block_actions", "actions": [{"action_id": ["more"]}]},
        {"type": "url_verification", "challenge": ["x"]},
        {"command": ["/ask"]},
        [],
        "a string",
        {},
    ],
)
def test_what_is_not_a_slack_payload(body: Any) -> None:
    with pytest.raises(PayloadError):
        payloads.envelope(body)


@pytest.mark.parametrize(
    ("event_id", "key"),
    [("Ev0ABC", "Ev0ABC"), (12345, "12345"), (12345.0, "12345"), (1.5, "1.5"), (None, None), ("", "")],
)
def test_event_ids_become_string_keys_whatever_their_type(event_id: Any, key: str | None) -> None:
    body = {"type": "event_callback", "event": {"type": "app_mention"}, "event_id": event_id}
    assert payloads.envelope(body).event_id == key


@given(st.integers())
def test_an_integer_event_id_and_its_decimal_string_are_one_key(number: int) -> None:
    assert payloads.event_key(number) == payloads.event_key(str(number)) == str(number)


def test_kinds() -> None:
    event = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_home_opened"}}
    assert payloads.envelope(event) == Envelope("event", "event_callback", "app_home_opened", "Ev1")
    assert payloads.envelope({"command": "/ask", "text": "x"}).kind == "command"
    assert payloads.envelope({"type": "block_actions", "actions": [{"action_id": "a"}]}).kind == "action"
    assert payloads.envelope({"type": "url_verification", "challenge": "c"}).kind == "url_verification"
    assert payloads.envelope({"ssl_check": "1", "token": "t"}).kind == "ssl_check"
    assert payloads.envelope({"type": "block_suggestion", "view": {}}).kind == "other"
    assert payloads.envelope({"type": "message_action", "callback_id": "c"}).kind == "shortcut"
    assert payloads.envelope({"type": "view_submission", "view": {"type": "modal", "callback_id": "c"}}).kind == "view"
    for not_slack in (
        {"type": "message_action"},
        {"type": "view_submission", "view": {}},
        {"type": "view_submission", "view": {"callback_id": "c"}},  # bolt reads view.type
    ):
        with pytest.raises(PayloadError):
            payloads.envelope(not_slack)


# -- valid shapes round-trip --------------------------------------------------------------------------------


def chat_events() -> st.SearchStrategy[ChatEvent]:
    maybe = st.none() | TEXT
    return st.builds(
        ChatEvent,
        type=st.sampled_from(["app_mention", "message"]),
        user=st.none() | ID,
        text=TEXT,
        channel=st.none() | ID,
        channel_type=st.none() | st.sampled_from(["im", "channel", "group"]),
        ts=maybe,
        thread_ts=maybe,
        bot_id=st.none() | ID,
        subtype=st.none() | st.sampled_from(["bot_message", "message_changed"]),
    )


def as_json(payload: dict[str, Any]) -> Any:
    """What Slack sends is JSON: the parser sees the payload after a round trip through it."""
    return json.loads(json.dumps(payload))


def without_none(record: object, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names if getattr(record, name) is not None}


@given(chat_events())
def test_chat_events_round_trip(event: ChatEvent) -> None:
    names = ("type", "user", "text", "channel", "channel_type", "ts", "thread_ts", "bot_id", "subtype")
    assert payloads.chat_event(as_json(without_none(event, names))) == event


@given(st.builds(HomeOpened, user=st.none() | ID, tab=st.sampled_from(["home", "messages"])))
def test_home_opened_round_trips(opened: HomeOpened) -> None:
    payload = {"type": "app_home_opened", **without_none(opened, ("user", "tab"))}
    assert payloads.home_opened(as_json(payload)) == opened


@given(
    st.builds(
        SlashCommand,
        command=st.sampled_from(["/ask", "/article"]),
        text=TEXT,
        user_id=st.none() | ID,
        channel_id=st.none() | ID,
        response_url=st.none() | st.just("https://hooks.slack.com/commands/T1/2/3"),
    )
)
def test_slash_commands_round_trip(command: SlashCommand) -> None:
    names = ("command", "text", "user_id", "channel_id", "response_url")
    assert payloads.slash_command(as_json(without_none(command, names))) == command


@given(
    st.builds(
        ButtonClick,
        action_id=st.sampled_from(["more", "helpful", "share"]),
        value=st.none() | TEXT,
        user_id=st.none() | ID,
        channel_id=st.none() | ID,
        message_ts=st.none() | TEXT,
        is_ephemeral=st.booleans(),
        response_url=st.none() | TEXT,
    )
)
def test_button_clicks_round_trip(click: ButtonClick) -> None:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "actions": [without_none(click, ("action_id", "value"))],
        "container": {"is_ephemeral": click.is_ephemeral, **without_none(click, ("message_ts",))},
        **without_none(click, ("response_url",)),
    }
    if click.user_id is not None:
        payload["user"] = {"id": click.user_id}
    if click.channel_id is not None:
        payload["channel"] = {"id": click.channel_id}
    assert payloads.button_click(as_json(payload)) == click
    assert payloads.envelope(as_json(payload)).kind == "action"


def test_a_clicks_channel_comes_from_the_container_when_the_body_has_none() -> None:
    body = {"type": "block_actions", "actions": [{"action_id": "more"}], "container": {"channel_id": "C9"}}
    assert payloads.button_click(body).channel_id == "C9"
