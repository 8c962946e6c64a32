"""Slack payloads, checked where they come in: typed records of clean ``str`` values, or :class:`PayloadError`.

Two levels:

- :func:`envelope` decides whether a parsed body is a Slack payload the bot
  can hand to bolt at all: an events body must hold an ``event`` object with a
  string ``type`` and an ``event_id`` that is a string or a number, a button
  click a list of actions whose first is an object with a string
  ``action_id``, a message shortcut a string ``callback_id``, a view
  submission a view with a string ``type`` and ``callback_id``, an assistant panel event an
  ``assistant_thread`` with string ``channel_id`` and ``thread_ts`` (and a
  ``context`` that is an object), and so on. Anything else raises
  :class:`PayloadError`: HTTP 400 (or, in Socket Mode, acknowledged and
  dropped), one log line, nothing posted. bolt reads these fields itself before any listener runs, so this
  check comes first.
- :func:`chat_event`, :func:`home_opened`, :func:`slash_command` and
  :func:`button_click` give a listener the fields it reads, each a ``str``
  (or None, or a bool where Slack sends one). A field of another JSON type,
  which Slack never sends, is dropped and named in the record's ``problems``
  (logged by the listener in one line); these never raise. The readers of
  the assistant panel, the message shortcut and link unfurls are in
  :mod:`corpusbot.bot.slack.surface_payloads`.

Event ids are compared as strings (:func:`event_key`): ``"Ev1"`` is ``"Ev1"``,
an integer ``12345`` is ``"12345"``, so a retried event is recognised
whatever JSON type its id has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["event", "command", "action", "shortcut", "view", "url_verification", "ssl_check", "other"]
HANDLED_KINDS: tuple[EventKind, ...] = (
    *("event", "command", "action", "shortcut", "view"),
    *("url_verification", "ssl_check"),
)
# Events whose nested objects bolt's assistant middleware reads before any listener (see _event_envelope).
ASSISTANT_EVENTS = ("assistant_thread_started", "assistant_thread_context_changed")


class PayloadError(ValueError):
    """The body is not a Slack payload the bot can handle (the message says why, in a few words)."""


@dataclass(frozen=True)
class Envelope:
    """What a request body is. ``event_id`` is the key duplicates are found by (events only, None without one)."""

    kind: EventKind
    type: str | None = None
    event_type: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class ChatEvent:
    """An ``app_mention`` or ``message`` event, as far as the bot reads it."""

    type: str
    user: str | None = None
    text: str = ""
    channel: str | None = None
    channel_type: str | None = None
    ts: str | None = None
    thread_ts: str | None = None
    bot_id: str | None = None
    subtype: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def from_a_bot(self) -> bool:
        """Bots (this one too), message subtypes (edits, joins…) and messages without a (readable) user."""
        return bool(self.bot_id or self.subtype or not self.user)


@dataclass(frozen=True)
class HomeOpened:
    """An ``app_home_opened`` event. ``tab`` is "home" when Slack leaves it out."""

    user: str | None = None
    tab: str | None = "home"
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class SlashCommand:
    command: str
    text: str = ""
    user_id: str | None = None
    channel_id: str | None = None
    response_url: str | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ButtonClick:
    """A ``block_actions`` payload and its first action (the button that was clicked)."""

    action_id: str
    value: str | None = None
    user_id: str | None = None
    channel_id: str | None = None
    message_ts: str | None = None
    is_ephemeral: bool = False
    response_url: str | None = None
    problems: tuple[str, ...] = ()


# -- the envelope ---------------------------------------------------------------------------------------------


def envelope(body: object) -> Envelope:
    """What ``body`` (a parsed request body) is; :class:`PayloadError` when it is not a Slack payload."""
    if not isinstance(body, Mapping) or not body:
        raise PayloadError("not a Slack payload")
    kind_of = body.get("type")
    if kind_of is not None and not isinstance(kind_of, str):
        raise PayloadError(f"type is {_json_type(kind_of)}")
    if "event" in body and not isinstance(body["event"], Mapping):  # bolt reads it whatever the type says
        raise PayloadError(f"event is {_json_type(body['event'])}, not an object")
    if "command" in body:
        if not isinstance(body["command"], str) or not body["command"]:
            raise PayloadError(f"command is {_json_type(body['command'])}")
        return Envelope("command", kind_of)
    if kind_of == "event_callback":
        return _event_envelope(body)
    if kind_of == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            raise PayloadError("block_actions without a list of actions")
        first = actions[0]
        if not isinstance(first, Mapping) or not isinstance(first.get("action_id"), str):
            raise PayloadError("block_actions: the action has no string action_id")
        return Envelope("action", kind_of)
    if kind_of == "message_action":  # a message shortcut
        if not isinstance(body.get("callback_id"), str):
            raise PayloadError("message_action without a string callback_id")
        return Envelope("shortcut", kind_of)
    if kind_of == "view_submission":
        view = body.get("view")
        if not isinstance(view, Mapping) or not all(
            isinstance(view.get(name), str) for name in ("type", "callback_id")
        ):
            raise PayloadError("view_submission without a view with a string type and callback_id")
        return Envelope("view", kind_of)
    if kind_of == "url_verification":
        if not isinstance(body.get("challenge"), str):
            raise PayloadError("url_verification without a string challenge")
        return Envelope("url_verification", kind_of)
    if "ssl_check" in body:
        return Envelope("ssl_check", kind_of)
    return Envelope("other", kind_of)


def _event_envelope(body: Mapping[str, Any]) -> Envelope:
    event = body.get("event")
    if not isinstance(event, Mapping):
        raise PayloadError("an events body without an event object")
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError(f"event type is {_json_type(event_type)}")
    if event_type in ASSISTANT_EVENTS:
        thread = event.get("assistant_thread")
        if not isinstance(thread, Mapping) or not all(
            isinstance(thread.get(name), str) and thread[name] for name in ("channel_id", "thread_ts")
        ):
            raise PayloadError(f"{event_type} without an assistant_thread with string channel_id and thread_ts")
        if not isinstance(thread.get("context"), Mapping | None):
            raise PayloadError(f"{event_type}: assistant_thread.context is {_json_type(thread['context'])}")
    for nested in ("message", "previous_message"):  # edits and deletions; bolt's assistant middleware reads them
        if event_type == "message" and nested in event and not isinstance(event[nested], Mapping | None):
            raise PayloadError(f"message event whose {nested} is {_json_type(event[nested])}, not an object")
    return Envelope("event", "event_callback", event_type, event_key(body.get("event_id")))


def event_key(event_id: object) -> str | None:
    """The string duplicates are recognised by: the id itself, or a number's decimal form; None without an id.

    An id that is neither (an object, a list, true/false) is not Slack's: :class:`PayloadError`.
    """
    if event_id is None:
        return None
    if isinstance(event_id, str):
        return event_id
    if isinstance(event_id, int) and not isinstance(event_id, bool):
        return str(event_id)
    if isinstance(event_id, float) and math.isfinite(event_id):
        return str(int(event_id)) if event_id.is_integer() else repr(event_id)
    raise PayloadError(f"event_id is {_json_type(event_id)}")


# -- what each listener reads ---------------------------------------------------------------------------------


class _Fields:
    """Reads fields of one JSON object, collecting what was not of the expected type."""

    def __init__(self, raw: object, where: str, problems: list[str] | None = None) -> None:
        self.where = where
        self.problems: list[str] = [] if problems is None else problems
        if isinstance(raw, Mapping):
            self.raw: Mapping[str, Any] = raw
        else:
            self.raw = {}
            if raw is not None:
                self.problems.append(f"{where} is {_json_type(raw)}, not an object")

    def text(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None or isinstance(value, str):
            return value
        self.problems.append(f"{self._name(name)} is {_json_type(value)}, not a string")
        return None

    def marker(self, name: str) -> str | None:
        """A field whose presence matters (``bot_id``, ``subtype``): one of another type still counts, as "?"."""
        value = self.raw.get(name)
        if value is None or isinstance(value, str):
            return value
        self.problems.append(f"{self._name(name)} is {_json_type(value)}, not a string")
        return "?" if value not in ("", [], {}, False, 0) else None

    def flag(self, name: str) -> bool:
        value = self.raw.get(name)
        if value is None or isinstance(value, bool):
            return bool(value)
        self.problems.append(f"{self._name(name)} is {_json_type(value)}, not true or false")
        return False

    def child(self, name: str) -> _Fields:
        return _Fields(self.raw.get(name), self._name(name), self.problems)

    def _name(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name


def chat_event(event: object) -> ChatEvent:
    """An ``app_mention`` or ``message`` event; :class:`PayloadError` only when it is not an event at all."""
    fields = _event_fields(event)
    return ChatEvent(
        type=fields.raw["type"],
        user=fields.text("user"),
        text=fields.text("text") or "",
        channel=fields.text("channel"),
        channel_type=fields.text("channel_type"),
        ts=fields.text("ts"),
        thread_ts=fields.text("thread_ts"),
        bot_id=fields.marker("bot_id"),
        subtype=fields.marker("subtype"),
        problems=tuple(fields.problems),
    )


def home_opened(event: object) -> HomeOpened:
    fields = _event_fields(event)
    tab = fields.text("tab") if "tab" in fields.raw else "home"
    return HomeOpened(user=fields.text("user"), tab=tab, problems=tuple(fields.problems))


def _event_fields(event: object) -> _Fields:
    if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
        raise PayloadError("not an event object")
    return _Fields(event, "")


def slash_command(body: object) -> SlashCommand:
    """A slash command; :class:`PayloadError` only when there is no command name."""
    if not isinstance(body, Mapping) or not isinstance(body.get("command"), str):
        raise PayloadError("not a slash command")
    fields = _Fields(body, "")
    return SlashCommand(
        command=body["command"],
        text=fields.text("text") or "",
        user_id=fields.text("user_id"),
        channel_id=fields.text("channel_id"),
        response_url=fields.text("response_url"),
        problems=tuple(fields.problems),
    )


def button_click(body: object) -> ButtonClick:
    """A ``block_actions`` payload; :class:`PayloadError` only when it has no action with a string ``action_id``."""
    actions = body.get("actions") if isinstance(body, Mapping) else None
    first = actions[0] if isinstance(actions, list) and actions else None
    if not isinstance(first, Mapping) or not isinstance(first.get("action_id"), str):
        raise PayloadError("not a button click")
    fields = _Fields(body, "")
    action = _Fields(first, "action", fields.problems)
    container = fields.child("container")
    channel = fields.child("channel")
    return ButtonClick(
        action_id=first["action_id"],
        value=action.text("value"),
        user_id=fields.child("user").text("id"),
        channel_id=channel.text("id") or container.text("channel_id"),
        message_ts=container.text("message_ts"),
        is_ephemeral=container.flag("is_ephemeral"),
        response_url=fields.text("response_url"),
        problems=tuple(fields.problems),
    )


def _json_type(value: object) -> str:
    """The JSON name of a value's type, for log lines (never the value: it came from outside)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
