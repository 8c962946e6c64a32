"""Slash commands: ``/ask`` (an answer only the asker sees, with Share in channel) and ``/article``.

``/ask`` also takes ``help``, the admin commands (:data:`replies.ADMIN_COMMANDS`), and ``watch WORDS``,
``watches``, ``unwatch N`` and ``new [SINCE]`` (:mod:`corpusbot.bot.slack.watches`).

Each handler is acknowledged first (Slack allows 3 seconds), then answers
through the command's ``response_url`` from the listener pool.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from slack_bolt import App, BoltContext

from corpusbot.bot.slack import blocks, payloads, replies, watches
from corpusbot.bot.slack.blocks import Message
from corpusbot.bot.slack.listeners import after_ack, note_problems, replying
from corpusbot.bot.slack.mrkdwn import decode_incoming
from corpusbot.bot.slack.runtime import Runtime, runtime_of


def register(app: App) -> None:
    app.command("/ask")(on_ask)
    app.command("/article")(on_article)


@after_ack
def on_ask(command: dict[str, Any], context: BoltContext) -> None:
    rt = runtime_of(context)
    ask = payloads.slash_command(command)
    note_problems("/ask", ask.problems)
    answer_ask(rt, ask, partial(rt.responder.ephemeral, ask.response_url))


def answer_ask(rt: Runtime, ask: payloads.SlashCommand, send: Callable[[Message], object]) -> None:
    """The reply to ``/ask`` (also for a question taken over from another replica: :mod:`..pending`)."""
    with replying(rt, "/ask", send):
        text = decode_incoming(ask.text)
        if text.lower() in ("", "help"):
            send(replies.usage(rt))
            return
        if text.lower() in replies.ADMIN_COMMANDS:
            replies.admin(rt, ask.user_id, text.lower(), send)
            return
        gate = rt.admit(ask.user_id, ask.channel_id)
        if not gate.allowed:
            if gate.reply is not None:
                send(gate.reply)
            return
        command = watches.subcommand(text)
        if command is not None:
            send(watch_reply(rt, command, ask))
        else:
            send(replies.answer(rt, text, shareable=True))


@replies.guarded(blocks.unavailable)
def watch_reply(rt: Runtime, command: tuple[str, str], ask: payloads.SlashCommand) -> Message:
    return watches.run(rt, command[0], command[1], ask.user_id, ask.channel_id)


@after_ack
def on_article(command: dict[str, Any], context: BoltContext) -> None:
    rt = runtime_of(context)
    article = payloads.slash_command(command)
    note_problems("/article", article.problems)
    send = partial(rt.responder.ephemeral, article.response_url)
    with replying(rt, "/article", send):
        text = decode_incoming(article.text)
        gate = rt.admit(article.user_id, article.channel_id)
        if gate.allowed:
            send(replies.article(rt, text))
        elif gate.reply is not None:
            send(gate.reply)
