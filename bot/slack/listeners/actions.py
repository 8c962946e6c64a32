"""Buttons: More results and Show passages (edit the message in place), Helpful / Not helpful, Share in channel,
and a watch message's More (the rest of what a reindex brought, shown only to the one who clicked)."""

from __future__ import annotations

import logging
import sqlite3
from functools import partial
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from corpusbot.bot.slack import blocks, payloads, replies, watches
from corpusbot.bot.slack.blocks import AnswerRef, Message, PageRef
from corpusbot.bot.slack.listeners import after_ack, note_problems, replying
from corpusbot.bot.slack.payloads import ButtonClick
from corpusbot.bot.slack.runtime import Runtime, runtime_of
from corpusbot.bot.state import Feedback

log = logging.getLogger("corpusbot.slack")


def register(app: App) -> None:
    app.action(blocks.MORE)(on_more)
    app.action(blocks.HELPFUL)(on_feedback)
    app.action(blocks.NOT_HELPFUL)(on_feedback)
    app.action(blocks.SHARE)(on_share)
    app.action(blocks.PASSAGES_PATTERN)(on_passages)
    app.action(watches.MORE)(on_watch_more)


@after_ack
def on_more(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    rt, click = runtime_of(context), _click(body)
    ref = AnswerRef.from_value(click.value)
    if ref is None or not _admitted(rt, click):
        return
    with replying(rt, "More results", partial(_tell, rt, click)):
        message = replies.answer(rt, ref.question, ref.offset, shareable=click.is_ephemeral, since=ref.generation)
        replace_message(rt, client, click, message)


@after_ack
def on_passages(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    rt, click = runtime_of(context), _click(body)
    ref = PageRef.from_value(click.value)
    if ref is None or not _admitted(rt, click):
        return
    with replying(rt, "Show passages", partial(_tell, rt, click)):
        replace_message(rt, client, click, replies.passages(rt, ref))


@after_ack
def on_watch_more(body: dict[str, Any], context: BoltContext) -> None:
    rt, click = runtime_of(context), _click(body)
    page = watches.WatchPage.from_value(click.value)
    if page is None or not _admitted(rt, click):
        return
    with replying(rt, "More of a watch", partial(_tell, rt, click)):
        _tell(rt, click, watches.more_of_a_watch(rt, page))


@after_ack
def on_share(body: dict[str, Any], context: BoltContext) -> None:
    rt, click = runtime_of(context), _click(body)
    ref = AnswerRef.from_value(click.value)
    if ref is None or not _admitted(rt, click):
        return
    url = click.response_url
    with replying(rt, "Share in channel", partial(_tell, rt, click)):
        message = replies.shared(rt, click.user_id or "?", ref.question, ref.offset)
        if rt.responder.send(url, {**message.payload(), "response_type": "in_channel", "replace_original": False}):
            rt.responder.send(url, {"delete_original": True})


@after_ack
def on_feedback(body: dict[str, Any], context: BoltContext) -> None:
    rt, click = runtime_of(context), _click(body)
    ref = AnswerRef.from_value(click.value)
    if ref is None:
        return
    verdict = "helpful" if click.action_id == blocks.HELPFUL else "not_helpful"
    record = Feedback(
        click.user_id or "?", click.channel_id, verdict, ref.question, ref.shown, ref.offset, generation=ref.generation
    )
    try:
        rt.state.add_feedback(record)
    except Exception as error:  # sqlite3.Error while a reindex holds the database, or anything else
        first = rt.health.first_of_its_kind("feedback", error)
        log.error(
            "Could not store feedback: %r",
            error,
            exc_info=error if first and not isinstance(error, sqlite3.Error) else None,
        )
        reply = blocks.notice("Sorry, I couldn't save your feedback just now. Please try again in a minute.")
    else:
        rt.metrics.feedback_stored(verdict)
        reply = blocks.feedback_thanks(verdict)
    rt.responder.ephemeral(click.response_url, reply)


def replace_message(rt: Runtime, client: WebClient, click: ButtonClick, message: Message) -> None:
    """Edit the clicked message: chat.update for a normal message, the response_url for an ephemeral one."""
    channel, ts = click.channel_id, click.message_ts
    if not click.is_ephemeral and channel and ts:
        try:
            client.chat_update(channel=channel, ts=ts, **message.payload())
            return
        except SlackApiError as error:  # e.g. a message posted through a response_url
            log.warning("chat.update failed (%s); replacing through the response_url", error.response.get("error"))
    rt.responder.send(click.response_url, {**message.payload(), "replace_original": True})


def _click(body: dict[str, Any]) -> ButtonClick:
    click = payloads.button_click(body)
    note_problems("button", click.problems)
    return click


def _tell(rt: Runtime, click: ButtonClick, message: Message) -> None:
    """A message only the clicker sees (the clicked message stays as it was)."""
    rt.responder.ephemeral(click.response_url, message)


def _admitted(rt: Runtime, click: ButtonClick) -> bool:
    gate = rt.admit(click.user_id or "?", click.channel_id)
    if not gate.allowed and gate.reply is not None:
        rt.responder.ephemeral(click.response_url, gate.reply)
    return gate.allowed
