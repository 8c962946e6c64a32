"""The per-user rate limit on questions: a sliding window per user, one notice per flood.

Two implementations of :class:`Limiter`: :class:`RateLimiter` counts in this
process's memory (each worker of ``serve --workers N`` and each replica has its
own); :class:`PgRateLimiter` counts in PostgreSQL (``CORPUSBOT_STATE_URL``), one
count per user for every worker of every replica, so the limit is exact.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from corpusbot.bot.config import RateLimit

if TYPE_CHECKING:
    from corpusbot.bot.state.postgres import PgStore

PURGE_EVERY_SECONDS = 300.0  # PostgreSQL: rows of users with nothing left in their window are deleted this often


class Verdict(Enum):
    ALLOW = "allow"
    NOTICE = "notice"  # over the limit: tell the user once
    DROP = "drop"  # still over the limit, already told: stay quiet


class Limiter(Protocol):
    """Counts each user's questions: :class:`RateLimiter` (this process) or :class:`PgRateLimiter` (every replica)."""

    def check(self, user_id: str) -> Verdict:
        """Count a request of ``user_id``: ALLOW, or over the limit NOTICE (the first time) then DROP."""
        ...

    def retry_after(self, user_id: str) -> int:
        """Seconds until ``user_id`` may ask again."""
        ...


class RateLimiter:
    """A sliding window per user: ``limit.requests`` in any ``limit.seconds``; one notice per flood."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, deque[float]] = {}
        self._noticed: set[str] = set()

    def check(self, user_id: str) -> Verdict:
        if not self.limit.enabled:
            return Verdict.ALLOW
        now = self.clock()
        with self._lock:
            recent = self._requests.setdefault(user_id, deque())
            while recent and now - recent[0] >= self.limit.seconds:
                recent.popleft()
            if len(recent) < self.limit.requests:
                recent.append(now)
                self._noticed.discard(user_id)
                return Verdict.ALLOW
            if user_id in self._noticed:
                return Verdict.DROP
            self._noticed.add(user_id)
            return Verdict.NOTICE

    def retry_after(self, user_id: str) -> int:
        """Seconds until ``user_id`` may ask again."""
        with self._lock:
            recent = self._requests.get(user_id)
            if not recent:
                return 0
            return max(1, int(self.limit.seconds - (self.clock() - recent[0]) + 0.999))


class PgRateLimiter:
    """The same sliding window, counted in PostgreSQL for every worker of every replica (thread-safe).

    Each check is one statement on the user's row, which PostgreSQL locks
    meanwhile, so ``limit.requests`` are allowed in any ``limit.seconds`` in
    total, not per process, and a flood gets one notice in total. Times come
    from the database's clock (``clock`` None), the same for every replica.
    When the database cannot be used, ``check`` raises
    :class:`~corpusbot.bot.state.postgres.StateUnavailable`.
    """

    def __init__(self, store: PgStore, limit: RateLimit, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def check(self, user_id: str) -> Verdict:
        if not self.limit.enabled:
            return Verdict.ALLOW
        with self._lock:
            purge = time.monotonic() >= self._next_purge
            if purge:
                self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
        now = None if self.clock is None else self.clock()
        verdict = self.store.rate_check(user_id, self.limit.requests, self.limit.seconds, now, purge=purge)
        return Verdict(verdict)

    def retry_after(self, user_id: str) -> int:
        oldest, now = self.store.rate_oldest(user_id, None if self.clock is None else self.clock())
        if oldest is None:
            return 0
        return max(1, int(self.limit.seconds - (now - oldest) + 0.999))
