"""Slack event ids already handled, so a retried event never gets a second reply, even after a restart.

Slack re-sends an event it thinks failed. Each id is remembered for an hour,
in memory and in the ``bot_seen_events`` table of the bot's state database
(never the index, whose write lock a reindex holds for seconds). The check
runs before the request is acknowledged (Slack wants the ack within 3 s), so
it never waits long for the database.

Two implementations of :class:`EventStore`: :class:`SeenEvents` keeps the ids
in the SQLite state file of this host (see :meth:`SeenEvents.first_time`);
:class:`PgSeenEvents` in PostgreSQL (``CORPUSBOT_STATE_URL``), shared by every
replica, so that a retry is answered once whichever replica it reaches.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from corpusbot.bot.state import database
from corpusbot.bot.state.database import EVENTS_TABLE
from corpusbot.bot.state.postgres import PgStore, StateUnavailable

if TYPE_CHECKING:
    import sqlite_utils

EVENT_TTL_SECONDS = 3600.0
EVENT_BUSY_TIMEOUT_MS = 250  # written before the ack, which Slack wants within 3 s
BUSY_BACKOFF_SECONDS = 5.0  # after a busy database, event ids stay in memory only for this long
PURGE_EVERY_SECONDS = 300.0  # expired ids are deleted from the table at most this often
MEMORY_EVENTS = 10_000
EVENT_DEADLINE_SECONDS = 1.0  # PostgreSQL: longest wait for the shared table before an ack, whatever goes wrong
EVENT_CHECK_THREADS = 4  # PostgreSQL: threads running the checks, so that the wait can be cut at the deadline

log = logging.getLogger("corpusbot.state")


class EventStore(Protocol):
    """Where the ids of handled Slack events are kept: :class:`SeenEvents` (SQLite) or :class:`PgSeenEvents`."""

    def first_time(self, event_id: str) -> bool:
        """Record ``event_id``; False when it was already handled within the last ``ttl`` seconds."""
        ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


def remember(recent: dict[str, float], event_id: str, now: float, ttl: float) -> dict[str, float]:
    """``recent`` with ``event_id`` seen at ``now``, kept to ``MEMORY_EVENTS`` ids (expired ones, then the oldest, go)."""
    recent[event_id] = now
    if len(recent) > MEMORY_EVENTS:
        horizon = now - ttl
        recent = {key: at for key, at in recent.items() if at >= horizon}
        while len(recent) > MEMORY_EVENTS:
            recent.pop(next(iter(recent)))
    return recent


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
    ) -> None:
        self.connections = database.Connections(path)
        self.ttl = ttl
        self.clock = clock
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

        Memory answers first, then the database, which every worker of
        ``serve --workers N`` shares. While the database is busy (another
        process writing, a stuck worker holding its lock until gunicorn kills
        it), one check waits up to EVENT_BUSY_TIMEOUT_MS and the following ones
        use memory alone for BUSY_BACKOFF_SECONDS, so acks stay fast (at the
        cost of not recognising an event first seen during that window when its
        retry reaches another worker, or arrives after a restart).
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
        self._recent = remember(self._recent, event_id, now, self.ttl)

    def _purge(self, db: sqlite_utils.Database, now: float) -> None:
        with contextlib.suppress(sqlite3.OperationalError):
            database.write(
                db,
                f"DELETE FROM {EVENTS_TABLE} WHERE seen_at < ?",
                (now - self.ttl,),
                busy_ms=EVENT_BUSY_TIMEOUT_MS,
            )


class PgSeenEvents:
    """The event ids handled within the last ``ttl`` seconds by any process of any replica, in PostgreSQL.

    Memory answers first (an id this process handled), then the table every
    process of every replica shares: one ``INSERT … ON CONFLICT … RETURNING`` per new id, so exactly one process
    gets True, however many receive the event or its retries at once.

    The database is waited for at most ``deadline`` seconds (the check runs on a
    small thread pool of its own, so a hung connection cannot hold the ack
    longer). When it cannot answer in time, or failed moments ago, the id is
    kept in this process only and the check returns True at once: the ack is
    never held up, and until the database is back a retry reaching another
    process may be answered a second time. ``clock`` (None: the database's
    clock, the same for every replica) is for tests.
    """

    def __init__(
        self,
        store: PgStore,
        *,
        ttl: float = EVENT_TTL_SECONDS,
        clock: Callable[[], float] | None = None,
        deadline: float = EVENT_DEADLINE_SECONDS,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self.deadline = deadline
        self._memory_lock = threading.Lock()  # _recent and _next_purge
        self._recent: dict[str, float] = {}
        self._next_purge = 0.0
        self._checks = ThreadPoolExecutor(EVENT_CHECK_THREADS, thread_name_prefix="corpusbot-event-check")

    def close(self) -> None:
        self._checks.shutdown(wait=True, cancel_futures=True)

    def ping(self) -> bool:
        return self.store.problem() is None

    def first_time(self, event_id: str) -> bool:
        """Record ``event_id``; False when any process handled it within the last ``ttl`` seconds."""
        event_id = str(event_id)  # the same id whether Slack sent it as a number or a string
        now = time.time() if self.clock is None else self.clock()
        with self._memory_lock:
            seen = self._recent.get(event_id)
            if seen is not None and now - seen < self.ttl:
                return False
            self._remember(event_id, now)
            purge = now >= self._next_purge
            if purge:
                self._next_purge = now + PURGE_EVERY_SECONDS
        if self.store.waiting() is not None:  # failed moments ago: do not make this ack wait for it
            return True
        database_now = None if self.clock is None else now
        check = self._checks.submit(self.store.record_event, event_id, self.ttl, database_now, purge=purge)
        try:
            return check.result(timeout=self.deadline)
        except FutureTimeout:
            self.store.failed(f"no answer within {self.deadline:g} s")
            return True
        except Exception as error:  # StateUnavailable, logged once per outage by the store; or anything else
            if not isinstance(error, StateUnavailable):
                log.warning("Could not check Slack event %s in the state database: %r", event_id[:80], error)
            return True

    def _remember(self, event_id: str, now: float) -> None:
        self._recent = remember(self._recent, event_id, now, self.ttl)
