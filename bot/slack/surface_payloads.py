"""What the assistant panel, the message shortcut and link unfurls read from their payloads: clean ``str`` values.

Like :mod:`corpusbot.bot.slack.payloads` (whose :func:`~corpusbot.bot.slack.payloads.envelope`
already refused bodies bolt itself could not read): a field of a JSON type
Slack never sends is dropped and named in the record's ``problems`` (the
listener logs them in one line); these readers never raise for a field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from corpusbot.bot.slack.payloads import _Fields

MAX_LINKS = 20  # Slack sends at most a handful per message; more are not looked at
QUESTION_BLOCK = "corpusbot_question"
QUESTION_INPUT = "question"


@dataclass(frozen=True)
class AssistantThread:
    """An ``assistant_thread_started`` or ``assistant_thread_context_changed`` event."""

    user_id: str | None
    channel_id: str | None
    thread_ts: str | None
    context: Mapping[str, Any] | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class MessageShortcut:
    """A ``message_action`` payload: the shortcut used on a message."""

    callback_id: str
    user_id: str | None
    channel_id: str | None
    text: str
    trigger_id: str | None
    response_url: str | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Origin:
    """Where a shortcut was used, carried through the modal in its ``private_metadata``."""

    channel_id: str | None = None
    response_url: str | None = None

    def to_value(self) -> str:
        """Compact JSON for the modal's ``private_metadata``."""
        return json.dumps({"c": self.channel_id, "r": self.response_url}, separators=(",", ":"))

    @classmethod
    def from_value(cls, value: str | None) -> Origin:
        """The origin :meth:`to_value` wrote; an empty one for anything else."""
        try:
            data = json.loads(value or "")
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        channel, url = data.get("c"), data.get("r")
        return cls(channel if isinstance(channel, str) else None, url if isinstance(url, str) else None)


@dataclass(frozen=True)
class QuestionSubmitted:
    """A ``view_submission`` of the shortcut's modal: the (edited) question and where the shortcut was used."""

    user_id: str | None
    question: str
    origin: Origin
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkShared:
    """A ``link_shared`` event: the URLs of the links posted (or typed in the composer) and where."""

    channel: str | None
    message_ts: str | None
    unfurl_id: str | None
    source: str | None
    urls: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def assistant_thread(event: object) -> AssistantThread:
    """An ``assistant_thread_started`` or ``assistant_thread_context_changed`` event's thread and context."""
    fields = _Fields(event, "")
    thread = fields.child("assistant_thread")
    context = thread.raw.get("context")
    if context is not None and not isinstance(context, Mapping):
        fields.problems.append("assistant_thread.context is not an object")
        context = None
    return AssistantThread(
        user_id=thread.text("user_id"),
        channel_id=thread.text("channel_id"),
        thread_ts=thread.text("thread_ts"),
        context=context,
        problems=tuple(fields.problems),
    )


def message_shortcut(body: object) -> MessageShortcut:
    """A ``message_action`` payload: who used the shortcut where, on which text."""
    fields = _Fields(body, "")
    message = fields.child("message")
    return MessageShortcut(
        callback_id=fields.text("callback_id") or "",
        user_id=fields.child("user").text("id"),
        channel_id=fields.child("channel").text("id"),
        text=message.text("text") or "",
        trigger_id=fields.text("trigger_id"),
        response_url=fields.text("response_url"),
        problems=tuple(fields.problems),
    )


def question_submitted(body: object) -> QuestionSubmitted:
    """The modal's ``view_submission``: the question typed and the :class:`Origin` kept in ``private_metadata``."""
    fields = _Fields(body, "")
    view = fields.child("view")
    typed = view.child("state").child("values").child(QUESTION_BLOCK).child(QUESTION_INPUT)
    return QuestionSubmitted(
        user_id=fields.child("user").text("id"),
        question=typed.text("value") or "",
        origin=Origin.from_value(view.text("private_metadata")),
        problems=tuple(fields.problems),
    )


def link_shared(event: object) -> LinkShared:
    """A ``link_shared`` event: its URLs (each once, at most :data:`MAX_LINKS`) and where they were shared."""
    fields = _Fields(event, "")
    links = fields.raw.get("links")
    urls: list[str] = []
    if links is not None and not isinstance(links, list):
        fields.problems.append("links is not a list")
    for number, link in enumerate(links if isinstance(links, list) else []):
        if number >= MAX_LINKS:
            fields.problems.append(f"over {MAX_LINKS} links (the rest ignored)")
            break
        url = _Fields(link, f"links[{number}]", fields.problems).text("url")
        if url:
            urls.append(url)
    return LinkShared(
        channel=fields.text("channel"),
        message_ts=fields.text("message_ts"),
        unfurl_id=fields.text("unfurl_id"),
        source=fields.text("source"),
        urls=tuple(dict.fromkeys(urls)),
        problems=tuple(fields.problems),
    )
