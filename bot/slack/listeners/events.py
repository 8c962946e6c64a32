"""Events: a mention is answered in its thread, a direct message in the DM, App Home gets its view.

Messages from bots (this one included) and message subtypes (edits, joins,
deletions...) are ignored. Every other event is acknowledged with 200 and
dropped, so Slack never retries it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from corpusbot.bot.slack import replies
from corpusbot.bot.slack.blocks import Message
from corpusbot.bot.slack.listeners import after_ack
from corpusbot.bot.slack.mrkdwn import decode_incoming
from corpusbot.bot.slack.runtime import Runtime, runtime_of

log = logging.getLogger("corpusbot.slack")


def register(app: App) -> None:
    app.event("app_mention")(on_mention)
    app.event("message")(on_message)
    app.event("app_home_opened")(on_home_opened)
    app.event(re.compile(".*"))(ignore_other_event)  # last: only events nothing above took


@after_ack
def on_mention(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    channel = event.get("channel")
    if _from_a_bot(event) or not channel or channel.startswith("D"):  # DMs are answered by on_message
        return
    thread = event.get("thread_ts") or event.get("ts")
    answer_question(runtime_of(context), client, event, channel, thread, context.bot_user_id)


@after_ack
def on_message(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    channel = event.get("channel")
    if event.get("channel_type") != "im" or _from_a_bot(event) or not channel:
        return
    answer_question(runtime_of(context), client, event, channel, event.get("thread_ts"), context.bot_user_id)


@after_ack
def on_home_opened(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    user = event.get("user")
    if event.get("tab", "home") != "home" or not user:
        return
    client.views_publish(user_id=user, view=replies.home(runtime_of(context), user))


def ignore_other_event(event: dict[str, Any]) -> None:
    log.debug("Ignoring a %s event", event.get("type"))


def _from_a_bot(event: dict[str, Any]) -> bool:
    return bool(event.get("bot_id") or event.get("subtype") or not event.get("user"))


def answer_question(
    rt: Runtime, client: WebClient, event: dict[str, Any], channel: str, thread_ts: str | None, bot_user_id: str | None
) -> None:
    gate = rt.admit(event.get("user"), channel)
    if not gate.allowed:
        if gate.reply is not None:
            post(client, channel, thread_ts, gate.reply)
        return
    question = decode_incoming(event.get("text") or "", bot_user_id)
    post(client, channel, thread_ts, replies.answer(rt, question) if question else replies.usage(rt))


def post(client: WebClient, channel: str, thread_ts: str | None, message: Message) -> None:
    client.chat_postMessage(
        channel=channel, thread_ts=thread_ts, unfurl_links=False, unfurl_media=False, **message.payload()
    )
