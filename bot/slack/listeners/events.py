"""Events: a mention is answered in its thread, a direct message in the DM, App Home gets its view.

A question that reads as a follow-up (``query.is_follow_up``: "and what did they want?") is asked with the
conversation's last question as context: the thread's, or in a DM the one asked within the last ten minutes
(:mod:`corpusbot.bot.state.thread_questions`).

Messages from bots (this one included) and message subtypes (edits, joins,
deletions...) are ignored. Every other event is acknowledged with 200 and
dropped, so Slack never retries it. Fields Slack would never send (a ``text``
that is a number, a ``user`` that is a list) are ignored with one log line:
a mention without readable text gets the how-to-ask reply, a message without a
readable user is not answered.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from corpusbot.bot.slack import payloads, replies
from corpusbot.bot.slack.blocks import Message
from corpusbot.bot.slack.listeners import after_ack, note_problems, replying
from corpusbot.bot.slack.mrkdwn import decode_incoming
from corpusbot.bot.slack.payloads import ChatEvent
from corpusbot.bot.slack.runtime import Runtime, runtime_of
from corpusbot.bot.state.thread_questions import DM_THREAD
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.search.query import is_follow_up

log = logging.getLogger("corpusbot.slack")


def register(app: App) -> None:
    app.event("app_mention")(on_mention)
    app.event("message")(on_message)
    app.event("app_home_opened")(on_home_opened)
    app.event(re.compile(".*"))(ignore_other_event)  # last: only events nothing above took


@after_ack
def on_mention(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    mention = payloads.chat_event(event)
    note_problems("app_mention", mention.problems)
    channel = mention.channel
    if mention.from_a_bot or not channel or channel.startswith("D"):  # DMs are answered by on_message
        return
    answer_question(runtime_of(context), client, mention, channel, mention.thread_ts or mention.ts, context.bot_user_id)


@after_ack
def on_message(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    message = payloads.chat_event(event)
    note_problems("message", message.problems)
    channel = message.channel
    if message.channel_type != "im" or message.from_a_bot or not channel:
        return
    answer_question(runtime_of(context), client, message, channel, message.thread_ts, context.bot_user_id)


@after_ack
def on_home_opened(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    opened = payloads.home_opened(event)
    note_problems("app_home_opened", opened.problems)
    if opened.tab != "home" or not opened.user:
        return
    client.views_publish(user_id=opened.user, view=replies.home(runtime_of(context), opened.user))


def ignore_other_event(event: dict[str, Any]) -> None:
    log.debug("Ignoring a %s event", event.get("type"))


def answer_question(
    rt: Runtime, client: WebClient, event: ChatEvent, channel: str, thread_ts: str | None, bot_user_id: str | None
) -> None:
    def send(message: Message) -> None:
        post(client, channel, thread_ts, message)

    with replying(rt, f"{event.type} answer", send):
        gate = rt.admit(event.user, channel)
        if not gate.allowed:
            if gate.reply is not None:
                send(gate.reply)
            return
        question = decode_incoming(event.text, bot_user_id)
        if not question:
            send(replies.usage(rt))
            return
        earlier = follow_up_context(rt, channel, thread_ts or DM_THREAD, question)
        send(replies.answer(rt, question, context=earlier))


def follow_up_context(rt: Runtime, channel: str, conversation: str, question: str) -> str | None:
    """The conversation's earlier question when ``question`` reads as a follow-up to it, else None; and
    ``question`` (with that context) kept for the conversation's next follow-up.

    Kept before answering: a follow-up sent as soon as this answer shows up must find it. When the state
    cannot be used the question is answered on its own (one log line). Used by mentions, DMs and the
    assistant panel alike.
    """
    earlier = None
    try:
        if is_follow_up(question, rt.service.tokenizer):
            earlier = rt.state.thread_questions.earlier(channel, conversation)
    except (sqlite3.Error, CorpusbotError) as error:
        log.warning("Answering without the thread's earlier question: %s", error)
    try:
        rt.state.thread_questions.remember(channel, conversation, f"{earlier} {question}" if earlier else question)
    except (sqlite3.Error, CorpusbotError) as error:
        log.warning("Could not remember the thread's question: %s", error)
    return earlier


def post(client: WebClient, channel: str, thread_ts: str | None, message: Message) -> None:
    client.chat_postMessage(
        channel=channel, thread_ts=thread_ts, unfurl_links=False, unfurl_media=False, **message.payload()
    )
