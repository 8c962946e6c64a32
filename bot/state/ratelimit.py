"""The per-user rate limit on questions, in this process's memory (each worker of ``serve --workers N`` has its own)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from enum import Enum

from corpusbot.bot.config import RateLimit


class Verdict(Enum):
    ALLOW = "allow"
    NOTICE = "notice"  # over the limit: tell the user once
    DROP = "drop"  # still over the limit, already told: stay quiet


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
