"""`BotState`: what one process keeps in the bot's state database, the seen events and the feedback, behind one object."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from corpusbot.bot.state import database
from corpusbot.bot.state.events import EVENT_TTL_SECONDS, SeenEvents, SharedEventIds
from corpusbot.bot.state.feedback import Feedback, FeedbackLog


class BotState:
    """Seen events and feedback of the bot answering from the index at ``db_path`` (one per process, thread-safe).

    They are kept in the state database, ``state_db`` or by default beside the
    index (:func:`database.state_path`), made or upgraded here, with the index's
    old ``bot_`` tables copied in the first time (:func:`database.prepare`). The
    index itself is never opened for writing, so a reindex holding its write
    lock delays neither the event check that precedes an ack nor a feedback write.

    Events and feedback have their own connections: a feedback write may wait
    seconds for another writer, and must never hold up an event check.
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        state_db: str | Path | None = None,
        event_ttl: float = EVENT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        shared: SharedEventIds | None = None,
    ) -> None:
        self.path = database.prepare(db_path, state_db)
        self.events = SeenEvents(self.path, ttl=event_ttl, clock=clock, shared=shared)
        self.feedback_log = FeedbackLog(self.path)

    def close(self) -> None:
        self.events.close()
        self.feedback_log.close()

    def ping(self) -> bool:
        """True when the state database answers (for /readyz)."""
        return self.events.ping()

    def first_time(self, event_id: str) -> bool:
        """Record ``event_id``; False when it was already handled within ``event_ttl`` seconds (:class:`SeenEvents`)."""
        return self.events.first_time(event_id)

    def add_feedback(self, feedback: Feedback) -> Feedback:
        return self.feedback_log.add(feedback)

    def feedback(self, limit: int | None = None) -> list[Feedback]:
        """Stored feedback, newest first."""
        return self.feedback_log.read(limit)
