"""The bot's own state: feedback and already-handled Slack events (SQLite), and a per-user rate limiter.

Both tables live in the index database, next to but separate from the index
tables (``bot_`` prefix), so a backup of the one file has everything. Event
ids are remembered for an hour: Slack retries an event it thinks failed, and a
retry must never produce a second reply, even after a restart.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import sqlite_utils

from corpusbot.bot.config import RateLimit
from corpusbot.bot.serving.shared_events import SharedEvents
from corpusbot.index.engine import store

FEEDBACK_TABLE = "bot_feedback"
EVENTS_TABLE = "bot_seen_events"
EVENT_TTL_SECONDS = 3600.0
BUSY_TIMEOUT_MS = 10_000  # feedback: written after the ack, so it can wait out a reindex's write lock
EVENT_BUSY_TIMEOUT_MS = 250  # event ids: written before the ack, which Slack wants within 3 s
BUSY_BACKOFF_SECONDS = 5.0  # after a busy database, event ids stay in memory only for this long
MEMORY_EVENTS = 10_000
VERDICTS = ("helpful", "not_helpful")


@dataclass(frozen=True)
class Feedback:
    """One Helpful / Not helpful click."""

    user_id: str
    channel_id: str | None
    verdict: str
    question: str
    passages: tuple[str, ...]
    offset: int = 0
    created_at: str = ""
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "verdict": self.verdict,
            "question": self.question,
            "passages": list(self.passages),
            "offset": self.offset,
        }


def create_tables(db: sqlite_utils.Database) -> None:
    db[FEEDBACK_TABLE].create(
        {
            "id": int,
            "created_at": str,
            "user_id": str,
            "channel_id": str,
            "verdict": str,
            "question": str,
            "passages": str,
            "offset": int,
        },
        pk="id",
        if_not_exists=True,
    )
    db[EVENTS_TABLE].create({"event_id": str, "seen_at": float}, pk="event_id", if_not_exists=True)


class BotState:
    """Feedback and seen events in the database at ``db_path`` (one instance per process, thread-safe)."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        event_ttl: float = EVENT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        shared: SharedEvents | None = None,
    ) -> None:
        # Two connections, each behind its own lock: a feedback write may wait seconds for a
        # reindex's write lock, and must never hold up the event check that precedes an ack.
        self.db = store.connect(db_path)
        self.db.conn.isolation_level = None  # autocommit: every statement is its own short transaction
        self._feedback_db = store.connect(db_path)
        self._feedback_db.conn.isolation_level = None
        self.event_ttl = event_ttl
        self.clock = clock
        self.shared = shared  # with `serve --workers N`: the ids every worker saw lately
        self._lock = threading.Lock()  # the event connection
        self._memory_lock = threading.Lock()  # _recent and _busy_until
        self._feedback_lock = threading.Lock()
        self._recent: dict[str, float] = {}  # also remembered in memory, in case the database is busy
        self._busy_until = 0.0
        self._next_purge = 0.0
        with self._lock:
            create_tables(self.db)

    def close(self) -> None:
        self.db.conn.close()
        self._feedback_db.conn.close()

    def ping(self) -> bool:
        """True when the database answers (for /readyz)."""
        try:
            with self._lock:
                self.db.execute("SELECT count(*) FROM " + EVENTS_TABLE).fetchone()
        except sqlite3.Error:
            return False
        return True

    # -- events ----------------------------------------------------------

    def first_time(self, event_id: str) -> bool:
        """Record ``event_id``; False when it was already handled within the last hour.

        Memory answers first. While a reindex holds the database's write lock, one
        check waits up to EVENT_BUSY_TIMEOUT_MS and the following ones use memory
        alone for BUSY_BACKOFF_SECONDS, so acks stay fast (at the cost of not
        recognising, across a restart, an event first seen during that window).
        """
        now = self.clock()
        with self._memory_lock:
            seen = self._recent.get(event_id)
            if seen is not None and now - seen < self.event_ttl:
                return False
            # Another worker may have it while the database is busy (it could not record it there).
            if self.shared is not None and not self.shared.first_time(event_id, self.event_ttl, now):
                return False
            self._remember(event_id, now)
            if now < self._busy_until:
                return True
        with self._lock:
            try:
                cursor = self._write(
                    self.db,
                    f"INSERT INTO {EVENTS_TABLE}(event_id, seen_at) VALUES (?, ?) "
                    "ON CONFLICT(event_id) DO UPDATE SET seen_at = excluded.seen_at WHERE seen_at < ?",
                    (event_id, now, now - self.event_ttl),
                    busy_ms=EVENT_BUSY_TIMEOUT_MS,
                )
            except sqlite3.OperationalError:
                with self._memory_lock:
                    self._busy_until = self.clock() + BUSY_BACKOFF_SECONDS
                return True  # the database is busy or read-only: memory alone keeps this process from repeating
            if now >= self._next_purge:
                self._purge(now)
            return cursor.rowcount == 1

    def _remember(self, event_id: str, now: float) -> None:
        self._recent[event_id] = now
        if len(self._recent) > MEMORY_EVENTS:
            horizon = now - self.event_ttl
            self._recent = {key: at for key, at in self._recent.items() if at >= horizon}
            while len(self._recent) > MEMORY_EVENTS:
                self._recent.pop(next(iter(self._recent)))

    def _purge(self, now: float) -> None:
        self._next_purge = now + 300
        with contextlib.suppress(sqlite3.OperationalError):
            self._write(
                self.db, f"DELETE FROM {EVENTS_TABLE} WHERE seen_at < ?", (now - self.event_ttl,), EVENT_BUSY_TIMEOUT_MS
            )

    @staticmethod
    def _write(
        db: sqlite_utils.Database, sql: str, params: tuple[Any, ...], busy_ms: int = BUSY_TIMEOUT_MS
    ) -> sqlite3.Cursor:
        """Run one write (its own transaction), waiting at most ``busy_ms`` for another writer such as a reindex."""
        db.conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        try:
            return db.conn.execute(sql, params)
        except sqlite3.OperationalError as error:
            if "no such table" not in str(error):
                raise
            create_tables(db)  # tables can vanish if the database file was replaced
            return db.conn.execute(sql, params)

    # -- feedback --------------------------------------------------------

    def add_feedback(self, feedback: Feedback) -> Feedback:
        if feedback.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}")
        created = feedback.created_at or datetime.now(UTC).isoformat(timespec="seconds")
        with self._feedback_lock:
            cursor = self._write(
                self._feedback_db,
                f"INSERT INTO {FEEDBACK_TABLE}(created_at, user_id, channel_id, verdict, question, passages, offset) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    created,
                    feedback.user_id,
                    feedback.channel_id,
                    feedback.verdict,
                    feedback.question,
                    json.dumps(list(feedback.passages)),
                    feedback.offset,
                ),
            )
        return Feedback(**{**feedback.__dict__, "created_at": created, "id": cursor.lastrowid})

    def feedback(self, limit: int | None = None) -> list[Feedback]:
        """Stored feedback, newest first."""
        return read_feedback(self._feedback_db, limit, lock=self._feedback_lock)


def read_feedback(
    db: sqlite_utils.Database, limit: int | None = None, lock: threading.Lock | None = None
) -> list[Feedback]:
    """Feedback in ``db``, newest first (none when the bot never stored any)."""
    sql = (
        f"SELECT id, created_at, user_id, channel_id, verdict, question, passages, offset FROM {FEEDBACK_TABLE} "
        "ORDER BY id DESC" + (" LIMIT ?" if limit is not None else "")
    )
    with lock or threading.Lock():
        if FEEDBACK_TABLE not in db.table_names():
            return []
        rows = db.execute(sql, (limit,) if limit is not None else ()).fetchall()
    return [
        Feedback(
            id=row[0],
            created_at=row[1],
            user_id=row[2],
            channel_id=row[3],
            verdict=row[4],
            question=row[5],
            passages=tuple(json.loads(row[6] or "[]")),
            offset=row[7] or 0,
        )
        for row in rows
    ]


# -- rate limiting ---------------------------------------------------------------


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
