"""No acknowledged question lost: recorded before the ack, answered by another replica if this one dies.

With ``CORPUSBOT_STATE_URL`` (:mod:`corpusbot.bot.state.pending`), :func:`record` runs before a mention in a
channel, a direct message (also one in a thread: the assistant panel's questions) or an ``/ask`` question is
acknowledged and stores what is needed to answer it (a mention or a DM: channel, thread ts, user, text; ``/ask``:
response_url, user, channel, text); a question taken over is answered in its thread, without the panel's title and
status line. The listener marks it done once its reply
is posted (:func:`corpusbot.bot.slack.listeners.after_ack`). :class:`Sweeper`, a thread in every replica, takes
over every :data:`~corpusbot.bot.state.pending.SWEEP_SECONDS` the questions whose claimer has not finished within
:data:`~corpusbot.bot.state.pending.TAKEOVER_SECONDS` (it was killed, its host died) and answers them.

A duplicate is still possible in one window: the claimer posted the reply but did not mark it done (it died
between the two, or the database was unreachable at that moment); the question is then answered once more.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Any

from slack_sdk import WebClient

from corpusbot.bot.slack import payloads, replies, watches
from corpusbot.bot.slack.mrkdwn import decode_incoming
from corpusbot.bot.slack.runtime import Runtime
from corpusbot.bot.state import StateUnavailable
from corpusbot.bot.state.pending import SWEEP_SECONDS, TAKEOVER_SECONDS, Pending

PENDING_KEY = "corpusbot_pending"  # in bolt's context: the id of the question recorded for this request
MENTION = "app_mention"
DIRECT_MESSAGE = "message"
ASK = "/ask"

log = logging.getLogger("corpusbot.slack")


def question_of(body: dict[str, Any], bot_user_id: str | None) -> tuple[str, str, dict[str, Any]] | None:
    """(id, kind, payload) when ``body`` is a question to protect: a channel mention, a DM, an ``/ask`` question."""
    if body.get("type") == "event_callback" and isinstance(body.get("event"), dict):
        event = payloads.chat_event(body["event"])
        event_id = payloads.event_key(body.get("event_id"))
        if event_id is None or event.from_a_bot or not event.channel:
            return None
        if event.type == MENTION and not event.channel.startswith("D"):  # DMs are answered as messages
            thread_ts = event.thread_ts or event.ts
        elif event.type == DIRECT_MESSAGE and event.channel_type == "im":
            thread_ts = event.thread_ts  # in the DM itself, or in its thread (the assistant panel's)
        else:
            return None
        payload = {
            "channel": event.channel,
            "thread_ts": thread_ts,
            "user": event.user,
            "text": event.text,
            "bot_user_id": bot_user_id,
        }
        return f"event:{event_id}", event.type, payload
    if body.get("command") == ASK:
        ask = payloads.slash_command(body)
        text = decode_incoming(ask.text)
        if text.lower() in ("", "help") or text.lower() in replies.ADMIN_COMMANDS or not ask.response_url:
            return None
        if _changes_watches(text):  # done twice, a second watch would be refused: not worth a takeover
            return None
        payload = {"response_url": ask.response_url, "user": ask.user_id, "channel": ask.channel_id, "text": ask.text}
        return f"ask:{ask.response_url}", ASK, payload  # unique to each invocation of the command
    return None


def _changes_watches(text: str) -> bool:
    command = watches.subcommand(text)
    return command is not None and command[0] in (watches.WATCH, watches.UNWATCH)


def record(rt: Runtime, body: dict[str, Any], context: Any) -> None:
    """Before the ack: record ``body``'s question as pending (with ``CORPUSBOT_STATE_URL``) and note its id."""
    pending = rt.state.pending
    if pending is None:
        return
    try:
        found = question_of(body, context.bot_user_id)
    except payloads.PayloadError:
        return
    if found is not None and pending.record(*found):
        context[PENDING_KEY] = found[0]


def finish(rt: Runtime, context: Any) -> None:
    """After the listener: the recorded question (if any) was answered."""
    pending_id = context.get(PENDING_KEY) if context is not None else None
    if pending_id and rt.state.pending is not None:
        rt.state.pending.finish(pending_id)


def answer(rt: Runtime, client: WebClient, question: Pending) -> None:
    """Answer a question taken over from another process, as its listener would have."""
    from corpusbot.bot.slack.listeners.events import answer_question
    from corpusbot.bot.slack.listeners.slash_commands import answer_ask

    payload = question.payload
    if question.kind in (MENTION, DIRECT_MESSAGE):
        event = payloads.ChatEvent(type=question.kind, user=payload.get("user"), text=payload.get("text") or "")
        answer_question(rt, client, event, payload["channel"], payload.get("thread_ts"), payload.get("bot_user_id"))
    elif question.kind == ASK:
        ask = payloads.SlashCommand(
            command=ASK,
            text=payload.get("text") or "",
            user_id=payload.get("user"),
            channel_id=payload.get("channel"),
            response_url=payload.get("response_url"),
        )
        answer_ask(rt, ask, partial(rt.responder.ephemeral, ask.response_url))


class Sweeper:
    """The thread taking over questions other processes left unanswered (one per process, with PostgreSQL)."""

    def __init__(
        self, rt: Runtime, client: WebClient, *, every: float = SWEEP_SECONDS, after: float = TAKEOVER_SECONDS
    ) -> None:
        self.rt = rt
        self.client = client
        self.every = every
        self.after = after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="corpusbot-pending-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sweep()
            except Exception as error:  # never let the thread die
                log.error("The pending question sweeper failed: %r", error)

    def sweep(self) -> int:
        """Take over and answer the questions left unfinished; how many were taken."""
        pending = self.rt.state.pending
        if pending is None:
            return 0
        try:
            taken = pending.claim(self.after)
        except StateUnavailable:
            return 0
        for question in taken:
            if question.too_old:
                log.warning("Pending question %s is too old to answer now; dropped", question.id[:80])
            else:
                log.info("Answering question %s left unanswered by another process", question.id[:80])
                with self.rt.in_progress.working():
                    answer(self.rt, self.client, question)
            pending.finish(question.id)
        return len(taken)
