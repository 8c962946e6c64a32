"""The message shortcut "Ask corpusbot about this": a message's text, edited in a small modal, becomes the question.

The shortcut opens the modal with the message's text (Slack's markup made
plain); the user edits it and presses Ask (an empty question is refused in
the modal). The answer goes to the user only: an ephemeral message in the
channel through the shortcut's ``response_url``, with Share in channel; where
Slack takes no ephemeral message there (the response_url is refused), a
direct message from the bot. When the modal cannot be opened (the shortcut's
trigger expired), the message's text itself is asked.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from corpusbot.bot.slack import replies, surface_blocks, surface_payloads
from corpusbot.bot.slack.blocks import Message
from corpusbot.bot.slack.listeners import after_ack, note_problems, replying
from corpusbot.bot.slack.mrkdwn import decode_incoming
from corpusbot.bot.slack.runtime import Runtime, runtime_of
from corpusbot.bot.slack.surface_payloads import Origin, QuestionSubmitted

log = logging.getLogger("corpusbot.slack")


def register(app: App) -> None:
    """The message shortcut and its modal's submission."""
    app.shortcut(surface_blocks.SHORTCUT_CALLBACK)(on_shortcut)
    app.view(surface_blocks.MODAL_CALLBACK)(on_question_submitted)


@after_ack
def on_shortcut(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """Open the modal with the message's text; when Slack refuses it, ask that text at once."""
    rt = runtime_of(context)
    shortcut = surface_payloads.message_shortcut(body)
    note_problems("message shortcut", shortcut.problems)
    text = decode_incoming(shortcut.text, context.bot_user_id)
    origin = Origin(shortcut.channel_id, shortcut.response_url)
    if shortcut.trigger_id:
        try:
            client.views_open(trigger_id=shortcut.trigger_id, view=surface_blocks.question_modal(text, origin))
            return
        except SlackApiError as error:  # the trigger lives 3 s: answer the message's text as it is
            log.info("views.open refused (%s); asking the message's text", error.response.get("error"))
    answer_privately(rt, client, shortcut.user_id, origin, text)


def on_question_submitted(ack: Ack, body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """Refuse an empty question in the modal; otherwise close it and answer (after the ack)."""
    submitted = surface_payloads.question_submitted(body)
    note_problems("shortcut modal", submitted.problems)
    if not decode_incoming(submitted.question):
        ack(response_action="errors", errors=surface_blocks.empty_question())
        return
    answer_submitted(submitted=submitted, context=context, client=client)


@after_ack
def answer_submitted(submitted: QuestionSubmitted, context: BoltContext, client: WebClient) -> None:
    """The modal's question, answered privately once the modal is closed."""
    answer_privately(runtime_of(context), client, submitted.user_id, submitted.origin, submitted.question)


def answer_privately(rt: Runtime, client: WebClient, user_id: str | None, origin: Origin, question: str) -> None:
    """The answer only ``user_id`` sees: ephemeral through the response_url, else in a DM from the bot."""
    if not user_id:
        return

    def send(message: Message) -> None:
        if origin.response_url and rt.responder.ephemeral(origin.response_url, message):
            return
        # In a DM, Share in channel would only share into the DM itself.
        direct = surface_blocks.without_share(message)
        client.chat_postMessage(channel=user_id, unfurl_links=False, unfurl_media=False, **direct.payload())

    with replying(rt, "shortcut answer", send):
        gate = rt.admit(user_id, origin.channel_id)
        if not gate.allowed:
            if gate.reply is not None:
                send(gate.reply)
            return
        text = decode_incoming(question)
        send(replies.answer(rt, text, shareable=bool(origin.response_url)) if text else replies.usage(rt))
