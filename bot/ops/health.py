"""Whether answering works: the outcome of recent answers, for ``GET /readyz`` and the log.

Every answer to a question reports here whether it worked (other replies —
help, article cards, App Home — only use the error log). An error while answering is told to the user
politely and logged in one line; its traceback is logged only the first time
an error of that kind (where, and which exception) is seen in the process, so
a failure that repeats for every question does not flood the log.

``/readyz`` reads :meth:`AnswerHealth.failing`: the last ``streak`` answers
all failed within ``window`` seconds of each other and of now. One answer that
works clears it, and so does time without failures (a server taken out of
rotation for being unready gets no questions to prove itself with); a failure
since the last answer that worked is :meth:`AnswerHealth.suspect`, which makes
``/readyz`` try a question of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

FAILING_STREAK = 3  # answers failed in a row before /readyz says 503 on their account
FAILING_WINDOW_SECONDS = 60.0  # ... all within this long, the latest this long ago at most
MAX_KINDS = 256  # error kinds remembered for "traceback once"; past that no more tracebacks (one-liners only)


@dataclass(frozen=True)
class Failing:
    """Answers failing: how many in a row, the latest error's kind, and how long ago it was."""

    count: int
    error: str
    seconds_ago: float

    def reason(self) -> str:
        return f"answers: the last {self.count} failed ({self.error}), the latest {self.seconds_ago:.0f} s ago"


class AnswerHealth:
    """The recent answers' outcomes (thread-safe; one per process)."""

    def __init__(
        self,
        streak: int = FAILING_STREAK,
        window: float = FAILING_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.streak = streak
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: list[float] = []  # times of the failures since the last answer that worked
        self._last_error = ""
        self._kinds_seen: set[tuple[str, str]] = set()

    def succeeded(self) -> None:
        with self._lock:
            self._failures.clear()

    def failed(self, error: BaseException) -> None:
        """An answer failed with ``error``."""
        with self._lock:
            self._failures.append(self.clock())
            del self._failures[: -self.streak]
            self._last_error = type(error).__name__

    def first_of_its_kind(self, where: str, error: BaseException) -> bool:
        """True the first time an error of this type is seen at ``where`` (log its traceback then), else False."""
        kind = (where, type(error).__qualname__)
        with self._lock:
            first = kind not in self._kinds_seen and len(self._kinds_seen) < MAX_KINDS
            if first:
                self._kinds_seen.add(kind)
            return first

    def suspect(self) -> bool:
        """An answer failed since the last one that worked (and not longer than ``window`` ago)."""
        with self._lock:
            return bool(self._failures) and self.clock() - self._failures[-1] <= self.window

    def failing(self) -> Failing | None:
        """The last ``streak`` answers failed, within ``window`` seconds of now; None otherwise."""
        with self._lock:
            if len(self._failures) < self.streak:
                return None
            now = self.clock()
            if now - self._failures[0] > self.window:
                return None
            return Failing(len(self._failures), self._last_error, max(0.0, now - self._failures[-1]))
