"""Slash commands: ``/ask`` (an answer only the asker sees, with Share in channel) and ``/article``.

Each handler is acknowledged first (Slack allows 3 seconds), then answers
through the command's ``response_url`` from the listener pool.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from corpusbot.bot.slack import replies
from corpusbot.bot.slack.listeners import after_ack
from corpusbot.bot.slack.mrkdwn import decode_incoming
from corpusbot.bot.slack.runtime import runtime_of


def register(app: App) -> None:
    app.command("/ask")(on_ask)
    app.command("/article")(on_article)


@after_ack
def on_ask(command: dict[str, Any], context: BoltContext) -> None:
    rt = runtime_of(context)
    text = decode_incoming(command.get("text") or "")
    url = command.get("response_url")
    if text.lower() in ("", "help"):
        rt.responder.ephemeral(url, replies.usage(rt))
        return
    if text.lower() in replies.ADMIN_COMMANDS:
        replies.admin(rt, command.get("user_id"), text.lower(), lambda message: rt.responder.ephemeral(url, message))
        return
    gate = rt.admit(command.get("user_id"), command.get("channel_id"))
    if gate.allowed:
        rt.responder.ephemeral(url, replies.answer(rt, text, shareable=True))
    elif gate.reply is not None:
        rt.responder.ephemeral(url, gate.reply)


@after_ack
def on_article(command: dict[str, Any], context: BoltContext) -> None:
    rt = runtime_of(context)
    text = decode_incoming(command.get("text") or "")
    url = command.get("response_url")
    gate = rt.admit(command.get("user_id"), command.get("channel_id"))
    if gate.allowed:
        rt.responder.ephemeral(url, replies.article(rt, text))
    elif gate.reply is not None:
        rt.responder.ephemeral(url, gate.reply)
