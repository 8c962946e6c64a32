"""The Slack app: a bolt ``App`` wired to the search service. Works the same in HTTP and Socket Mode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
from slack_sdk import WebClient

from corpusbot.bot.config import Settings
from corpusbot.bot.ops.requestctx import ContextThreadPoolExecutor
from corpusbot.bot.slack import payloads, pending
from corpusbot.bot.slack.listeners import EXECUTOR_KEY, actions, assistant, events, shortcuts, unfurls
from corpusbot.bot.slack.listeners import slash_commands as commands
from corpusbot.bot.slack.mrkdwn import shorten
from corpusbot.bot.slack.runtime import CONTEXT_KEY, Runtime, make_runtime, retry_handlers
from corpusbot.bot.state.assistant_contexts import ThreadContexts
from corpusbot.index import SearchService

log = logging.getLogger("corpusbot.slack")
# The listener pool, larger than bolt's default: when every thread is busy (searching, or a feedback write waiting
# out a reindex), other requests' work queues behind them. Idle threads cost little; CPU-bound work shares the GIL
# either way.
LISTENER_THREADS = 32


def build_app(
    settings: Settings,
    service: SearchService,
    *,
    runtime: Runtime | None = None,
    verify_token: bool = True,
    executor: Executor | None = None,
) -> App:
    """The bolt app. With ``verify_token`` it calls ``auth.test`` once now, so a bad token fails at start-up.

    Requests are acknowledged in the thread that received them; listeners then run on ``executor`` (the default
    pool keeps each request's id for the logs).
    """
    runtime = runtime or make_runtime(settings, service)
    client = WebClient(token=settings.bot_token, base_url=settings.api_url, retry_handlers=retry_handlers(), logger=log)
    bolt_logger = logging.getLogger("corpusbot.bolt")
    if not any(isinstance(f, _ClientTokenNotice) for f in bolt_logger.filters):
        bolt_logger.addFilter(_ClientTokenNotice())
    executor = executor or ContextThreadPoolExecutor(max_workers=LISTENER_THREADS)
    app = App(
        name="corpusbot",
        client=client,
        signing_secret=settings.signing_secret or "",
        token_verification_enabled=verify_token,
        logger=bolt_logger,
        listener_executor=executor,
        process_before_response=True,  # listeners ack in the request's thread, then go on in the pool: listeners.after_ack
    )
    app.middleware(_attach(runtime, executor))
    app.middleware(_skip_seen_events(runtime))
    app.error(_log_error)
    if settings.surface_on("assistant"):  # before events: bolt's Assistant takes the DM thread messages
        assistant.register(app, ThreadContexts(runtime.state))
    if settings.surface_on("shortcut"):
        shortcuts.register(app)
    if settings.surface_on("unfurls"):
        unfurls.register(app)
    for listeners in (events, commands, actions):  # events last: it ends with a catch-all listener
        listeners.register(app)
    return app


class _ClientTokenNotice(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN from the environment by itself, then warns that our client's token wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _attach(runtime: Runtime, executor: Executor) -> Callable[..., Any]:
    def attach_runtime(context: BoltContext, next: Callable[[], Any]) -> Any:
        context[CONTEXT_KEY] = runtime
        context[EXECUTOR_KEY] = executor
        return next()

    return attach_runtime


def _skip_seen_events(runtime: Runtime) -> Callable[..., Any]:
    """Slack re-sends an event it thinks failed (HTTP retries, Socket Mode ``retry_attempt``): answer it once.

    The id is compared as a string (:func:`corpusbot.bot.slack.payloads.event_key`), whatever JSON type it came as.
    """

    def skip_seen_events(body: dict[str, Any], context: BoltContext, next: Callable[[], Any]) -> Any:
        try:
            envelope = payloads.envelope(body)
        except payloads.PayloadError as error:  # checked before bolt already (server.py); here for any other way in
            log.warning("Not a Slack payload (%s); dropped", error)
            return BoltResponse(status=400, body="not a Slack payload")
        event_id = envelope.event_id
        if envelope.kind == "event" and event_id is not None and not runtime.state.first_time(event_id):
            log.info("Event %s was already handled; not answering it again", shorten(event_id, 80))
            runtime.metrics.duplicate_event()
            return BoltResponse(status=200, body="")
        pending.record(runtime, body, context)  # before the ack: another replica answers it should this one die
        return next()

    return skip_seen_events


def _log_error(error: Exception, body: dict[str, Any]) -> None:
    kind = body.get("type") or body.get("command") or "request"
    log.error("Unexpected error handling a Slack %s: %r", kind, error, exc_info=error)
