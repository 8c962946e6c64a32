"""Slack event ids already handled, so a retried event never gets a second reply, even after a restart.

Slack re-sends an event it thinks failed. Each id is remembered for an hour,
in memory and in the ``bot_seen_events`` table of the bot's state database
(never the index, whose write lock a reindex holds for seconds). The check
runs before the request is acknowledged (Slack wants the ack within 3 s), so
it never waits long for the database: see :meth:`SeenEvents.first_time`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from corpusbot.bot.state import database
from corpusbot.bot.state.database import EVENTS_TABLE

if TYPE_CHECKING:
    import sqlite_utils

EVENT_TTL_SECONDS = 3600.0
EVENT_BUSY_TIMEOUT_MS = 250  # written before the ack, which Slack wants within 3 s
BUSY_BACKOFF_SECONDS = 5.0  # after a busy database, event ids stay in memory only for this long
PURGE_EVERY_SECONDS = 300.0  # expired ids are deleted from the table at most this often
MEMORY_EVENTS = 10_000


class SharedEventIds(Protocol):
    """Event ids that the other processes of ``serve --workers N`` saw lately (`serving.shared_events`)."""

    def first_time(self, event_id: str, ttl: float, now: float | None = None) -> bool: ...


class SeenEvents:
    """The event ids handled within the last ``ttl`` seconds, in the state database at ``path`` (thread-safe).

    Nothing here touches the index database, and no lock is held while SQLite is
    waited for: each thread writes through a connection of its own
    (:class:`database.Connections`), and the one lock shared by the threads
    (``_memory_lock``) only guards dictionaries.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        ttl: float = EVENT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        shared: SharedEventIds | None = None,
    ) -> None:
        self.connections = database.Connections(path)
        self.ttl = ttl
        self.clock = clock
        self.shared = shared  # with `serve --workers N`: the ids every worker saw lately
        self._memory_lock = threading.Lock()  # _recent, _busy_until and _next_purge; never held while waiting
        self._recent: dict[str, float] = {}  # also remembered in memory, in case the database is busy
        self._busy_until = 0.0
        self._next_purge = 0.0
        with self.connections.borrow() as db:
            database.create_tables(db)

    def close(self) -> None:
        self.connections.close()

    def ping(self) -> bool:
        """True when the database answers (for /readyz)."""
        try:
            with self.connections.borrow() as db:
                db.execute("SELECT count(*) FROM " + EVENTS_TABLE).fetchone()
        except sqlite3.Error:
            return False
        return True

    def first_time(self, event_id: str) -> bool:
        """Record ``event_id``; False when it was already handled within the last ``ttl`` seconds.

        Memory answers first, then the ids the other workers saw, then the
        database. While the database is busy (another process writing, a
        stuck worker holding its lock), one check waits up to
        EVENT_BUSY_TIMEOUT_MS and the following ones use memory alone for
        BUSY_BACKOFF_SECONDS, so acks stay fast (at the cost of not recognising,
        across a restart, an event first seen during that window).
        """
        now = self.clock()
        with self._memory_lock:
            seen = self._recent.get(event_id)
            if seen is not None and now - seen < self.ttl:
                return False
            self._remember(event_id, now)  # from here a second thread of this process sees it
            memory_only = now < self._busy_until
            purge = not memory_only and now >= self._next_purge
            if purge:
                self._next_purge = now + PURGE_EVERY_SECONDS
        # Another worker may have it while the database is busy (it could not record it there).
        if self.shared is not None and not self.shared.first_time(event_id, self.ttl, now):
            return False
        if memory_only:
            return True
        try:
            with self.connections.borrow() as db:
                cursor = database.write(
                    db,
                    f"INSERT INTO {EVENTS_TABLE}(event_id, seen_at) VALUES (?, ?) "
                    "ON CONFLICT(event_id) DO UPDATE SET seen_at = excluded.seen_at WHERE seen_at < ?",
                    (event_id, now, now - self.ttl),
                    busy_ms=EVENT_BUSY_TIMEOUT_MS,
                )
                new = cursor.rowcount == 1
                if purge:
                    self._purge(db, now)
        except sqlite3.OperationalError:
            with self._memory_lock:
                self._busy_until = max(self._busy_until, self.clock() + BUSY_BACKOFF_SECONDS)
            return True  # the database is busy or read-only: memory alone keeps this process from repeating
        return new

    def _remember(self, event_id: str, now: float) -> None:
        self._recent[event_id] = now
        if len(self._recent) > MEMORY_EVENTS:
            horizon = now - self.ttl
            self._recent = {key: at for key, at in self._recent.items() if at >= horizon}
            while len(self._recent) > MEMORY_EVENTS:
                self._recent.pop(next(iter(self._recent)))

    def _purge(self, db: sqlite_utils.Database, now: float) -> None:
        with contextlib.suppress(sqlite3.OperationalError):
            database.write(
                db,
                f"DELETE FROM {EVENTS_TABLE} WHERE seen_at < ?",
                (now - self.ttl,),
                busy_ms=EVENT_BUSY_TIMEOUT_MS,
            )
