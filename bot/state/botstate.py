"""`BotState`: what one process keeps in the database, the seen events and the feedback, behind one object."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from corpusbot.bot.state.events import EVENT_TTL_SECONDS, SeenEvents, SharedEventIds
from corpusbot.bot.state.feedback import Feedback, FeedbackLog


class BotState:
    """Seen events and feedback in the database at ``db_path`` (one instance per process, thread-safe).

    Each has its own connection and lock: a feedback write may wait seconds for a
    reindex's write lock, and must never hold up the event check that precedes an ack.
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        event_ttl: float = EVENT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        shared: SharedEventIds | None = None,
    ) -> None:
        self.events = SeenEvents(db_path, ttl=event_ttl, clock=clock, shared=shared)
        self.feedback_log = FeedbackLog(db_path)

    def close(self) -> None:
        self.events.close()
        self.feedback_log.close()

    def ping(self) -> bool:
        """True when the database answers (for /readyz)."""
        return self.events.ping()

    def first_time(self, event_id: str) -> bool:
        """Record ``event_id``; False when it was already handled within ``event_ttl`` seconds (:class:`SeenEvents`)."""
        return self.events.first_time(event_id)

    def add_feedback(self, feedback: Feedback) -> Feedback:
        return self.feedback_log.add(feedback)

    def feedback(self, limit: int | None = None) -> list[Feedback]:
        """Stored feedback, newest first."""
        return self.feedback_log.read(limit)
