"""What every listener needs, one object per process: settings, the search service, state, limits.

Listeners reach it through bolt's context (``runtime_of(context)``); it is put
there by a middleware in :mod:`corpusbot.bot.slack.app`. There is one
:class:`SearchService` per process, and it notices a reindex by itself, so
nothing here caches answers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler

from corpusbot.bot.config import Settings
from corpusbot.bot.ops.health import AnswerHealth
from corpusbot.bot.ops.metrics import BotMetrics
from corpusbot.bot.slack import blocks, webhook
from corpusbot.bot.slack.blocks import Message
from corpusbot.bot.state import BotState, Limiter, StateUnavailable, Verdict
from corpusbot.index import SearchService

CONTEXT_KEY = "corpusbot_runtime"
DEFAULT_K = 3
SLACK_HOOK_DOMAINS = ("slack.com", "slack-gov.com")

log = logging.getLogger("corpusbot.slack")


def retry_handlers() -> list[RetryHandler]:
    """Retry dropped connections once and HTTP 429s after their Retry-After, so no reply is lost."""
    return [ConnectionErrorRetryHandler(max_retry_count=1), RateLimitErrorRetryHandler(max_retry_count=3)]


class Responder:
    """Posts to a ``response_url``; unlike bolt's ``respond()`` it retries (:mod:`corpusbot.bot.slack.webhook`) and
    only talks to Slack.
    """

    def __init__(self, api_url: str) -> None:
        parts = urlsplit(api_url)
        self._api_origin = (parts.scheme, parts.netloc)
        self.connections = webhook.pool()  # kept open for the next answer

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) == self._api_origin:
            return True
        host = (parts.hostname or "").lower()
        return parts.scheme == "https" and any(host == d or host.endswith("." + d) for d in SLACK_HOOK_DOMAINS)

    def send(self, response_url: str | None, payload: dict[str, Any]) -> bool:
        if not response_url or not self.allowed(response_url):
            log.warning("Not posting to a response_url outside Slack")
            return False
        response = webhook.post(self.connections, response_url, payload)
        if response.status != 200:
            log.warning("response_url answered HTTP %s", response.status)
        return response.status == 200

    def ephemeral(self, response_url: str | None, message: Message, *, replace: bool = False) -> bool:
        return self.send(response_url, {**message.payload(), "response_type": "ephemeral", "replace_original": replace})


class InProgress:
    """How many requests this process is working on: being checked and acknowledged, or answered after the ack.

    A ``serve --workers N`` worker waits (:meth:`wait_idle`, bounded) for its answers before it accepts the next
    connection, so that an idle worker takes it (:mod:`corpusbot.bot.serving.workers`).
    """

    def __init__(self) -> None:
        self._idle = threading.Condition()
        self.count = 0

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is in progress, at most ``timeout`` seconds; whether it is idle."""
        with self._idle:
            return self._idle.wait_for(lambda: self.count <= 0, timeout)

    def started(self) -> None:
        self._change(1)

    def finished(self) -> None:
        self._change(-1)

    @contextmanager
    def working(self) -> Iterator[None]:
        self.started()
        try:
            yield
        finally:
            self.finished()

    def _change(self, delta: int) -> None:
        with self._idle:
            self.count += delta
            if self.count <= 0:
                self._idle.notify_all()


class Gate(NamedTuple):
    """Whether to answer a request, and what to say instead when not (None: stay quiet)."""

    allowed: bool
    reply: Message | None = None


@dataclass
class Runtime:
    settings: Settings
    service: SearchService
    state: BotState
    limiter: Limiter
    responder: Responder
    k: int = DEFAULT_K
    reindex_lock: threading.Lock = field(default_factory=threading.Lock)
    metrics: BotMetrics = field(default_factory=BotMetrics)
    in_progress: InProgress = field(default_factory=InProgress)
    health: AnswerHealth = field(default_factory=AnswerHealth)

    def is_admin(self, user_id: str | None) -> bool:
        return bool(user_id) and user_id in self.settings.admins

    def channel_enabled(self, channel_id: str | None) -> bool:
        """Every channel without an allow-list; with one, its channels plus direct messages."""
        if not self.settings.channels:
            return True
        if not channel_id:
            return False
        return channel_id in self.settings.channels or channel_id.startswith("D")

    def admit(self, user_id: str | None, channel_id: str | None) -> Gate:
        """The per-user rate limit first (so a flood anywhere gets one notice), then the channel allow-list.

        While the shared state database cannot count (``CORPUSBOT_STATE_URL``), the user gets the "not available" reply.
        """
        try:
            verdict = self.limiter.check(user_id or "?")
            if verdict is Verdict.NOTICE:
                return Gate(False, blocks.slow_down(self.limiter.retry_after(user_id or "?")))
        except StateUnavailable as error:
            log.warning("Rate limit not checked (%s); replying that the bot is not available", error)
            return Gate(False, blocks.unavailable())
        if verdict is Verdict.DROP:
            return Gate(False)
        if not self.channel_enabled(channel_id):
            return Gate(False, blocks.not_enabled_here())
        return Gate(True)


def make_runtime(settings: Settings, service: SearchService, state: BotState | None = None) -> Runtime:
    """The runtime of this process; its state from ``settings`` (PostgreSQL with ``state_url``) unless given.

    The rate limiter goes with the state: in PostgreSQL, exact across every process, when the state is there.
    """
    if state is None:
        state = BotState(service.db_path, state_db=settings.state_db_path, url=settings.state_url)
    return Runtime(
        settings=settings,
        service=service,
        state=state,
        limiter=state.limiter(settings.rate_limit),
        responder=Responder(settings.api_url),
        metrics=BotMetrics(service),
    )


def runtime_of(context: Any) -> Runtime:
    return context[CONTEXT_KEY]
