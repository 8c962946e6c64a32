"""Slack event ids already handled, so a retried event never gets a second reply, even after a restart.

Slack re-sends an event it thinks failed. Each id is remembered for an hour,
in the ``bot_seen_events`` table and in memory. The check runs before the
request is acknowledged (Slack wants the ack within 3 s), so it never waits
long for the database: see :meth:`SeenEvents.first_time`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from corpusbot.bot.state import database
from corpusbot.bot.state.database import EVENTS_TABLE

EVENT_TTL_SECONDS = 3600.0
EVENT_BUSY_TIMEOUT_MS = 250  # written before the ack, which Slack wants within 3 s
BUSY_BACKOFF_SECONDS = 5.0  # after a busy database, event ids stay in memory only for this long
PURGE_EVERY_SECONDS = 300.0  # expired ids are deleted from the table at most this often
MEMORY_EVENTS = 10_000


class SharedEventIds(Protocol):
    """Event ids that the other processes of ``serve --workers N`` saw lately (`serving.shared_events`)."""

    def first_time(self, event_id: str, ttl: float, now: float | None = None) -> bool: ...


class SeenEvents:
    """The event ids handled within the last ``ttl`` seconds, over the database at ``db_path`` (thread-safe)."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        ttl: float = EVENT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        shared: SharedEventIds | None = None,
    ) -> None:
        self.db = database.connect(db_path)
        self.ttl = ttl
        self.clock = clock
        self.shared = shared  # with `serve --workers N`: the ids every worker saw lately
        self._lock = threading.Lock()  # the connection
        self._memory_lock = threading.Lock()  # _recent and _busy_until
        self._recent: dict[str, float] = {}  # also remembered in memory, in case the database is busy
        self._busy_until = 0.0
        self._next_purge = 0.0
        with self._lock:
            database.create_tables(self.db)

    def close(self) -> None:
        self.db.conn.close()

    def ping(self) -> bool:
        """True when the database answers (for /readyz)."""
        try:
            with self._lock:
                self.db.execute("SELECT count(*) FROM " + EVENTS_TABLE).fetchone()
        except sqlite3.Error:
            return False
        return True

    def first_time(self, event_id: str) -> bool:
        """Record ``event_id``; False when it was already handled within the last ``ttl`` seconds.

        Memory answers first. While a reindex holds the database's write lock, one
        check waits up to EVENT_BUSY_TIMEOUT_MS and the following ones use memory
        alone for BUSY_BACKOFF_SECONDS, so acks stay fast (at the cost of not
        recognising, across a restart, an event first seen during that window).
        """
        now = self.clock()
        with self._memory_lock:
            seen = self._recent.get(event_id)
            if seen is not None and now - seen < self.ttl:
                return False
            # Another worker may have it while the database is busy (it could not record it there).
            if self.shared is not None and not self.shared.first_time(event_id, self.ttl, now):
                return False
            self._remember(event_id, now)
            if now < self._busy_until:
                return True
        with self._lock:
            try:
                cursor = database.write(
                    self.db,
                    f"INSERT INTO {EVENTS_TABLE}(event_id, seen_at) VALUES (?, ?) "
                    "ON CONFLICT(event_id) DO UPDATE SET seen_at = excluded.seen_at WHERE seen_at < ?",
                    (event_id, now, now - self.ttl),
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
            horizon = now - self.ttl
            self._recent = {key: at for key, at in self._recent.items() if at >= horizon}
            while len(self._recent) > MEMORY_EVENTS:
                self._recent.pop(next(iter(self._recent)))

    def _purge(self, now: float) -> None:
        self._next_purge = now + PURGE_EVERY_SECONDS
        with contextlib.suppress(sqlite3.OperationalError):
            database.write(
                self.db,
                f"DELETE FROM {EVENTS_TABLE} WHERE seen_at < ?",
                (now - self.ttl,),
                busy_ms=EVENT_BUSY_TIMEOUT_MS,
            )
