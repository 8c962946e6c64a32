"""`BotState`: what one process keeps in the bot's state database, the seen events and the feedback, behind one object."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from corpusbot.bot.config import RateLimit, StateUrl
from corpusbot.bot.state import database
from corpusbot.bot.state.events import EVENT_TTL_SECONDS, EventStore, PgSeenEvents, SeenEvents
from corpusbot.bot.state.feedback import Feedback, FeedbackLog, FeedbackStore, PgFeedbackLog
from corpusbot.bot.state.pending import PgPending
from corpusbot.bot.state.postgres import PgStore
from corpusbot.bot.state.ratelimit import Limiter, PgRateLimiter, RateLimiter
from corpusbot.bot.state.thread_questions import ThreadQuestions
from corpusbot.bot.state.watches import PgWatchList, WatchList, WatchStore


class BotState:
    """Seen events and feedback of the bot answering from the index at ``db_path`` (one per process, thread-safe).

    Without ``url`` they are kept in the state database, ``state_db`` or by
    default beside the index (:func:`database.state_path`), made or upgraded
    here, with the index's old ``bot_`` tables copied in the first time
    (:func:`database.prepare`). The index itself is never opened for writing,
    so a reindex holding its write lock delays neither the event check that
    precedes an ack nor a feedback write. Events and feedback have their own
    connections: a feedback write may wait seconds for another writer, and must
    never hold up an event check. The rate limit (:meth:`limiter`) is counted
    in this process's memory.

    With ``url`` (``CORPUSBOT_STATE_URL``; ``state_db`` is then not used) all of
    it, the rate limit too, is in that PostgreSQL database, shared by every
    process of every replica (:mod:`corpusbot.bot.state.postgres`), made or
    upgraded here: a :class:`~corpusbot.index.errors.CorpusbotError` says so
    when it cannot be used at start. ``clock`` (None: ``time.time``, or the
    database's clock with ``url``) is for tests.
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        state_db: str | Path | None = None,
        url: StateUrl | str | None = None,
        event_ttl: float = EVENT_TTL_SECONDS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.events: EventStore
        self.feedback_log: FeedbackStore
        self.watches: WatchStore  # channels' standing queries (/ask watch)
        self.store: PgStore | None = None
        self.pending: PgPending | None = None  # questions not answered yet: with ``url`` only
        self.path: Path | None = None
        if url is not None:
            self.store = PgStore(url)
            self.location = self.store.display
            self.events = PgSeenEvents(self.store, ttl=event_ttl, clock=clock)
            self.feedback_log = PgFeedbackLog(self.store)
            self.watches = PgWatchList(self.store)
            self.pending = PgPending(self.store)
        else:
            self.path = database.prepare(db_path, state_db)
            self.location = str(self.path)
            self.events = SeenEvents(self.path, ttl=event_ttl, clock=clock or time.time)
            self.feedback_log = FeedbackLog(self.path)
            self.watches = WatchList(self.path)
        self.thread_questions = ThreadQuestions(self.path, self.store, clock=clock or time.time)  # follow-ups' context
        self._clock = clock
        self._also_close: list[Callable[[], None]] = []

    def close_with(self, close: Callable[[], None]) -> None:
        """Call ``close`` when the state closes (what keeps its own connection to it: the assistant's contexts)."""
        self._also_close.append(close)

    def close(self) -> None:
        for close in reversed(self._also_close):
            close()
        self._also_close.clear()
        self.events.close()
        self.feedback_log.close()
        self.watches.close()
        self.thread_questions.close()
        if self.pending is not None:
            self.pending.close()
        if self.store is not None:
            self.store.close()

    def limiter(self, limit: RateLimit) -> Limiter:
        """The per-user rate limiter to go with this state: in PostgreSQL with ``url``, else in this process."""
        if self.store is not None:
            return PgRateLimiter(self.store, limit, clock=self._clock)
        return RateLimiter(limit)

    def problem(self) -> str | None:
        """Why the state cannot be used now, or None (for /readyz): names the database, never a password."""
        if self.store is not None:
            return self.store.problem()
        return None if self.events.ping() else f"{self.location} cannot be read"

    def ping(self) -> bool:
        """True when the state database answers (for /readyz)."""
        return self.problem() is None

    def first_time(self, event_id: str) -> bool:
        """Record ``event_id``; False when it was already handled within ``event_ttl`` seconds (:class:`SeenEvents`)."""
        return self.events.first_time(event_id)

    def add_feedback(self, feedback: Feedback) -> Feedback:
        return self.feedback_log.add(feedback)

    def feedback(self, limit: int | None = None) -> list[Feedback]:
        """Stored feedback, newest first."""
        return self.feedback_log.read(limit)
