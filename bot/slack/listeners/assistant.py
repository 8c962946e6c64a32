"""The assistant panel (Slack's "Agents & AI Apps" side panel), through bolt's ``Assistant`` middleware.

- A thread opened (``assistant_thread_started``): a greeting naming the
  channel the user is viewing, and up to four suggested prompts built from the
  corpus's example questions.
- The user switched channels with the panel open
  (``assistant_thread_context_changed``): the new context is kept per thread
  in the bot's state (:mod:`corpusbot.bot.state.assistant_contexts`, shared by
  every replica with ``CORPUSBOT_STATE_URL``) through bolt's thread context
  store.
- A question in the thread: its title set from the question, a status line
  ("Searching 153,389 articles…"), then one cited answer in the thread. A
  question that reads as a follow-up ("and who leads it?",
  ``query.is_follow_up``) is asked with the thread's earlier question as
  context, from the same store as mentions and DMs
  (:mod:`corpusbot.bot.state.thread_questions`), kept before answering so that
  a follow-up sent at once finds it.

bolt hands every threaded direct message to this middleware, which answers
without passing it on, so the plain DM listener never answers it too; a
retried event is dropped before (the seen-events middleware). Setting the
title or status is cosmetic: when Slack refuses it (a DM thread that is not a
panel thread) the answer still comes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import App, Assistant, BoltContext
from slack_bolt.context.assistant.thread_context import AssistantThreadContext
from slack_bolt.context.assistant.thread_context_store.store import AssistantThreadContextStore
from slack_bolt.context.get_thread_context import GetThreadContext
from slack_bolt.context.save_thread_context import SaveThreadContext
from slack_bolt.context.set_status import SetStatus
from slack_bolt.context.set_title import SetTitle
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from corpusbot.bot.ops.requestctx import current_request_id
from corpusbot.bot.slack import payloads, replies, surface_blocks, surface_payloads
from corpusbot.bot.slack.blocks import Message
from corpusbot.bot.slack.listeners import after_ack, note_problems, replying
from corpusbot.bot.slack.listeners.events import follow_up_context
from corpusbot.bot.slack.mrkdwn import decode_incoming
from corpusbot.bot.slack.runtime import Runtime, runtime_of
from corpusbot.bot.state.assistant_contexts import ThreadContexts, clean_context

PANEL_KEY = "corpusbot_panel"  # in bolt's context: the Panel

log = logging.getLogger("corpusbot.slack")


class SharedThreadContexts(AssistantThreadContextStore):
    """bolt's thread context store, kept in the bot's state (:class:`ThreadContexts`) instead of a message."""

    def __init__(self, contexts: ThreadContexts) -> None:
        self.contexts = contexts

    def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        self.contexts.save(channel_id, thread_ts, context)

    def find(self, *, channel_id: str, thread_ts: str) -> AssistantThreadContext | None:
        found = self.contexts.find(channel_id, thread_ts)
        return AssistantThreadContext(found) if found and "channel_id" in found else None


class Panel:
    """What the panel's listeners share: the article count of the index (read once per index generation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: tuple[int | None, int] | None = None  # (index generation, articles)

    def article_count(self, rt: Runtime) -> int | None:
        """How many articles the index holds; None when it cannot be read (the status line then says less)."""
        try:
            generation = rt.service.generation
            with self._lock:
                cached = self._count
            if cached is not None and generation is not None and cached[0] == generation:
                return cached[1]
            count = rt.service.stats().articles
        except Exception as error:
            replies.report_failure(rt, "article count", error)
            return None
        with self._lock:
            self._count = (generation, count)
        return count


def register(app: App, contexts: ThreadContexts) -> Assistant:
    """Add the panel's middleware to ``app`` (before the listeners: it takes the DM thread messages)."""
    panel = Panel()

    def attach_panel(context: BoltContext, next: Any) -> Any:
        context[PANEL_KEY] = panel
        return next()

    assistant = Assistant(thread_context_store=SharedThreadContexts(contexts), logger=app.logger)
    assistant.thread_started(on_thread_started)
    assistant.thread_context_changed(on_context_changed)
    assistant.user_message(on_user_message)
    assistant.bot_message(ignore_bot_message)
    app.middleware(attach_panel)
    app.assistant(assistant)
    return assistant


@after_ack
def on_thread_started(
    event: dict[str, Any], context: BoltContext, client: WebClient, save_thread_context: SaveThreadContext
) -> None:
    """A new panel thread: keep its context, greet the user, suggest prompts."""
    rt, panel = runtime_of(context), context[PANEL_KEY]
    thread = surface_payloads.assistant_thread(event)
    note_problems("assistant_thread_started", thread.problems)
    channel, thread_ts = thread.channel_id, thread.thread_ts
    if not channel or not thread_ts:
        return
    _keep_context(save_thread_context, thread.context)
    with replying(rt, "assistant greeting", lambda message: _post(client, channel, thread_ts, message)):
        suggestions = surface_blocks.prompts(_examples(rt))
        greeting = surface_blocks.greeting(
            panel.article_count(rt), _viewed(thread.context), suggestions=bool(suggestions)
        )
        _post(client, channel, thread_ts, greeting)
        if suggestions:
            _cosmetic(
                "setSuggestedPrompts",
                lambda: client.assistant_threads_setSuggestedPrompts(
                    channel_id=channel, thread_ts=thread_ts, prompts=suggestions, title="Try asking:"
                ),
            )


@after_ack
def on_context_changed(event: dict[str, Any], save_thread_context: SaveThreadContext, context: BoltContext) -> None:
    """The user switched channels with the panel open: keep the new context for the thread."""
    thread = surface_payloads.assistant_thread(event)
    note_problems("assistant_thread_context_changed", thread.problems)
    _keep_context(save_thread_context, thread.context)


@after_ack
def on_user_message(
    event: dict[str, Any],
    context: BoltContext,
    client: WebClient,
    set_title: SetTitle,
    set_status: SetStatus,
    get_thread_context: GetThreadContext,
) -> None:
    """A question in a panel thread (or any threaded DM): title, status, then the answer in the thread."""
    rt, panel = runtime_of(context), context[PANEL_KEY]
    message = payloads.chat_event(event)
    note_problems("assistant message", message.problems)
    channel, thread_ts = message.channel, message.thread_ts
    if message.from_a_bot or not channel or not thread_ts:
        return

    def send(reply: Message) -> None:
        _post(client, channel, thread_ts, reply)

    with replying(rt, "assistant answer", send):
        gate = rt.admit(message.user, channel)
        if not gate.allowed:
            if gate.reply is not None:
                send(gate.reply)
            return
        question = decode_incoming(message.text, context.bot_user_id)
        if not question:
            send(replies.usage(rt))
            return
        _cosmetic("setTitle", lambda: set_title(surface_blocks.thread_title(question)))
        _cosmetic("setStatus", lambda: set_status(surface_blocks.searching(panel.article_count(rt))))
        earlier = follow_up_context(rt, channel, thread_ts, question)
        viewing = _viewed(_thread_context(get_thread_context))
        send(surface_blocks.with_viewing(replies.answer(rt, question, context=earlier), viewing))


def ignore_bot_message() -> None:
    """The bot's own messages in a panel thread (its answers): nothing to do."""


# -- helpers ------------------------------------------------------------------------------------------------------


def _post(client: WebClient, channel: str, thread_ts: str, message: Message) -> None:
    client.chat_postMessage(
        channel=channel, thread_ts=thread_ts, unfurl_links=False, unfurl_media=False, **message.payload()
    )


def _cosmetic(method: str, call: Callable[[], object]) -> None:
    """A call that only decorates the thread: when Slack refuses it, one log line, and the answer goes on."""
    try:
        call()
    except SlackApiError as error:
        log.info(
            "assistant.threads.%s refused (%s); answering anyway",
            method,
            error.response.get("error"),
            extra={"request_id": current_request_id()},
        )


def _keep_context(save_thread_context: SaveThreadContext, context: Mapping[str, Any] | None) -> None:
    """Keep the thread's context through bolt's store; without the state database the thread goes on without it."""
    kept = clean_context(context)
    if kept is None:
        return
    try:
        save_thread_context(kept)
    except Exception as error:
        log.warning("Could not keep the assistant thread's context: %r", error)


def _thread_context(get_thread_context: GetThreadContext) -> Mapping[str, Any] | None:
    try:
        return get_thread_context()
    except Exception as error:
        log.warning("Could not read the assistant thread's context: %r", error)
        return None


def _viewed(context: Mapping[str, Any] | None) -> str | None:
    kept = clean_context(context)
    return kept.get("channel_id") if kept else None


def _examples(rt: Runtime) -> list[str]:
    try:
        return rt.service.example_questions(surface_blocks.MAX_PROMPTS)
    except Exception as error:
        replies.report_failure(rt, "suggested prompts", error)
        return []
