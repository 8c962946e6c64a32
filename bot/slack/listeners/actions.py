"""Buttons: More results and Show passages (edit the message in place), Helpful / Not helpful, Share in channel."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from corpusbot.bot.slack import blocks, replies
from corpusbot.bot.slack.blocks import AnswerRef, Message, PageRef
from corpusbot.bot.slack.listeners import after_ack
from corpusbot.bot.slack.runtime import Runtime, runtime_of
from corpusbot.bot.state import Feedback

log = logging.getLogger("corpusbot.slack")


def register(app: App) -> None:
    app.action(blocks.MORE)(on_more)
    app.action(blocks.HELPFUL)(on_feedback)
    app.action(blocks.NOT_HELPFUL)(on_feedback)
    app.action(blocks.SHARE)(on_share)
    app.action(blocks.PASSAGES_PATTERN)(on_passages)


@after_ack
def on_more(body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    rt = runtime_of(context)
    ref = AnswerRef.from_value(action.get("value"))
    if ref is None or not _admitted(rt, body):
        return
    replace_message(rt, client, body, replies.answer(rt, ref.question, ref.offset, shareable=_is_ephemeral(body)))


@after_ack
def on_passages(body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    rt = runtime_of(context)
    ref = PageRef.from_value(action.get("value"))
    if ref is None or not _admitted(rt, body):
        return
    replace_message(rt, client, body, replies.passages(rt, ref))


@after_ack
def on_share(body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    rt = runtime_of(context)
    ref = AnswerRef.from_value(action.get("value"))
    if ref is None or not _admitted(rt, body):
        return
    url = body.get("response_url")
    message = replies.shared(rt, _user(body), ref.question, ref.offset)
    if rt.responder.send(url, {**message.payload(), "response_type": "in_channel", "replace_original": False}):
        rt.responder.send(url, {"delete_original": True})


@after_ack
def on_feedback(body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    rt = runtime_of(context)
    ref = AnswerRef.from_value(action.get("value"))
    if ref is None:
        return
    verdict = "helpful" if action.get("action_id") == blocks.HELPFUL else "not_helpful"
    record = Feedback(_user(body), _channel(body), verdict, ref.question, ref.shown, ref.offset)
    try:
        rt.state.add_feedback(record)
    except sqlite3.Error as error:
        log.error("Could not store feedback: %s", error)
        reply = blocks.notice("Sorry, I couldn't save your feedback just now. Please try again in a minute.")
    else:
        rt.metrics.feedback_stored(verdict)
        reply = blocks.feedback_thanks(verdict)
    rt.responder.ephemeral(body.get("response_url"), reply)


def replace_message(rt: Runtime, client: WebClient, body: dict[str, Any], message: Message) -> None:
    """Edit the clicked message: chat.update for a normal message, the response_url for an ephemeral one."""
    container = body.get("container") or {}
    channel, ts = container.get("channel_id"), container.get("message_ts")
    if not _is_ephemeral(body) and channel and ts:
        try:
            client.chat_update(channel=channel, ts=ts, **message.payload())
            return
        except SlackApiError as error:  # e.g. a message posted through a response_url
            log.warning("chat.update failed (%s); replacing through the response_url", error.response.get("error"))
    rt.responder.send(body.get("response_url"), {**message.payload(), "replace_original": True})


def _admitted(rt: Runtime, body: dict[str, Any]) -> bool:
    gate = rt.admit(_user(body), _channel(body))
    if not gate.allowed and gate.reply is not None:
        rt.responder.ephemeral(body.get("response_url"), gate.reply)
    return gate.allowed


def _is_ephemeral(body: dict[str, Any]) -> bool:
    return bool((body.get("container") or {}).get("is_ephemeral"))


def _user(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id") or "?")


def _channel(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
