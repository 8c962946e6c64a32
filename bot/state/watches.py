"""Watches: standing queries of a Slack channel, and the passages each one already posted.

A watch is (channel, query, the user who made it, when); ``checked_through`` is the index's latest
``files.indexed_at`` when the watch was last checked. A new watch is stored with the keys of every
passage that matches it already (recorded as if posted, in the same transaction), so it never posts
what was indexed before it, even when a reindex marks old articles as new (a grown JSONL file, a
full rebuild). Two implementations of :class:`WatchStore`:
:class:`WatchList` in the SQLite state file of this host, :class:`PgWatchList` in PostgreSQL
(``CORPUSBOT_STATE_URL``), shared by every replica.

No passage is posted twice by a watch, by any process: :meth:`WatchStore.claim` moves the watch's
``checked_through`` forward only if it is still what the caller read (compare and set), and in the
same transaction records the passages about to be posted (their keys,
:func:`corpusbot.index.search.watch.passage_key`; ``INSERT … ON CONFLICT DO NOTHING``), returning only
those no one recorded before. Exactly one process wins each step of a watch and posts one message for
it; the others get None. A process that dies between the claim and the post loses that message: a
passage is posted at most once, never twice.

The tables are made by the state migrations (``m006_watches`` in :mod:`.database`, ``m007_watches`` in
:mod:`.postgres`); the statements that use them are here, next to the code that needs them.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from corpusbot.bot.config import StateUrl
from corpusbot.bot.state import database
from corpusbot.bot.state.database import WATCH_POSTED_TABLE, WATCHES_TABLE
from corpusbot.index.errors import CorpusbotError

if TYPE_CHECKING:
    from corpusbot.bot.state.postgres import PgStore

WATCH_BUSY_TIMEOUT_MS = 10_000  # watches are written after the ack, or by the background check
MAX_QUERY_CHARS = 300
MAX_WATCHES_PER_CHANNEL = 25


@dataclass(frozen=True)
class Watch:
    id: int
    channel_id: str
    query: str
    user_id: str
    created_at: str
    checked_through: str | None  # the index's latest files.indexed_at when last checked (None: no file then)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "query": self.query,
            "user_id": self.user_id,
            "created_at": self.created_at,
            "checked_through": self.checked_through,
        }


class WatchRefused(Exception):
    """A watch not added: its channel already has one of the same words, or :data:`MAX_WATCHES_PER_CHANNEL`."""

    def __init__(self, existing: list[Watch]) -> None:
        super().__init__(f"the channel has {len(existing)} watches")
        self.existing = existing  # the channel's watches, read in the transaction that refused it


def same_query(existing: Sequence[Watch], query: str) -> Watch | None:
    """The watch among ``existing`` of the same words as ``query`` (letter case aside), if any."""
    return next((watch for watch in existing if watch.query.lower() == query.lower()), None)


def _check_room(existing: list[Watch], query: str) -> None:
    if len(existing) >= MAX_WATCHES_PER_CHANNEL or same_query(existing, query) is not None:
        raise WatchRefused(existing)


class WatchStore(Protocol):
    """Where watches are kept: :class:`WatchList` (SQLite) or :class:`PgWatchList` (PostgreSQL)."""

    def add(
        self, channel_id: str, query: str, user_id: str, checked_through: str | None, seen: Sequence[str] = ()
    ) -> Watch:
        """Store a new watch, and ``seen`` (the keys of the passages that match it now) as already posted.

        :class:`WatchRefused` when the channel has a watch of the same words or is full, checked in the
        same transaction, so adds racing in other threads or processes cannot get past either.
        """
        ...

    def of_channel(self, channel_id: str) -> list[Watch]:
        """The channel's watches, oldest first."""
        ...

    def all(self) -> list[Watch]: ...

    def get(self, watch_id: int) -> Watch | None: ...

    def remove(self, watch_id: int) -> bool:
        """Delete the watch and what it posted; False when there was none."""
        ...

    def claim(self, watch: Watch, checked_through: str | None, keys: Sequence[str]) -> list[str] | None:
        """Move ``watch`` from its ``checked_through`` to the new one and record ``keys`` as posted, atomically.

        The keys recorded now (not before), in the order given; None when another process moved the
        watch on first, or it was removed.
        """
        ...

    def close(self) -> None: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_COLUMNS = "id, channel_id, query, user_id, created_at, checked_through"


def _watch(row: Sequence[Any]) -> Watch:
    created = row[4]
    if isinstance(created, datetime):
        created = created.astimezone(UTC).isoformat(timespec="seconds")
    return Watch(int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(created), row[5])


class WatchList:
    """The watches in the SQLite state database at ``path`` (thread-safe; processes share it through SQLite)."""

    def __init__(self, path: str | Path) -> None:
        self.db = database.connect(path)
        self._lock = threading.Lock()  # the connection
        with self._lock:
            database.create_watch_tables(self.db)

    def close(self) -> None:
        self.db.conn.close()

    def add(
        self, channel_id: str, query: str, user_id: str, checked_through: str | None, seen: Sequence[str] = ()
    ) -> Watch:
        created = _now()
        with self._lock, self._transaction():
            _check_room(self._of_channel(channel_id), query)
            cursor = self.db.execute(
                f"INSERT INTO {WATCHES_TABLE} (channel_id, query, user_id, created_at, checked_through, checked_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (channel_id, query, user_id, created, checked_through, created),
            )
            watch_id = int(cursor.lastrowid or 0)
            self._record(watch_id, seen, created)
        return Watch(watch_id, channel_id, query, user_id, created, checked_through)

    def of_channel(self, channel_id: str) -> list[Watch]:
        with self._lock:
            return self._of_channel(channel_id)

    def _of_channel(self, channel_id: str) -> list[Watch]:
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM {WATCHES_TABLE} WHERE channel_id = ? ORDER BY id", (channel_id,)
        ).fetchall()
        return [_watch(row) for row in rows]

    def all(self) -> list[Watch]:
        with self._lock:
            rows = self.db.execute(f"SELECT {_COLUMNS} FROM {WATCHES_TABLE} ORDER BY id").fetchall()
        return [_watch(row) for row in rows]

    def get(self, watch_id: int) -> Watch | None:
        with self._lock:
            row = self.db.execute(f"SELECT {_COLUMNS} FROM {WATCHES_TABLE} WHERE id = ?", (watch_id,)).fetchone()
        return _watch(row) if row else None

    def remove(self, watch_id: int) -> bool:
        with self._lock, self._transaction():
            removed = self.db.execute(f"DELETE FROM {WATCHES_TABLE} WHERE id = ?", (watch_id,)).rowcount
            self.db.execute(f"DELETE FROM {WATCH_POSTED_TABLE} WHERE watch_id = ?", (watch_id,))
        return removed > 0

    def claim(self, watch: Watch, checked_through: str | None, keys: Sequence[str]) -> list[str] | None:
        now = _now()
        with self._lock, self._transaction():
            moved = self.db.execute(
                f"UPDATE {WATCHES_TABLE} SET checked_through = ?, checked_at = ? WHERE id = ? AND checked_through IS ?",
                (checked_through, now, watch.id, watch.checked_through),
            ).rowcount
            if not moved:
                return None
            return self._record(watch.id, keys, now)

    def _record(self, watch_id: int, keys: Sequence[str], now: str) -> list[str]:
        """Record ``keys`` as posted by the watch (inside the caller's transaction); those not recorded before."""
        recorded = []
        for key in dict.fromkeys(keys):
            cursor = self.db.execute(
                f"INSERT INTO {WATCH_POSTED_TABLE} (watch_id, passage_key, posted_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (watch_id, key, now),
            )
            if cursor.rowcount:
                recorded.append(key)
        return recorded

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        return _immediate(self.db.conn)


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, waiting out another writer; anything raised, a failed COMMIT too, rolls
    it back (a transaction left open would refuse every later ``BEGIN`` on this connection)."""
    conn.execute(f"PRAGMA busy_timeout = {WATCH_BUSY_TIMEOUT_MS}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


_PG_COLUMNS = (
    "id, channel_id, query, user_id, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"'), checked_through"
)


class PgWatchList:
    """The watches of every replica, in the PostgreSQL state database (thread-safe).

    A use that cannot be done (the database unreachable or too slow) raises
    :class:`~corpusbot.bot.state.postgres.StateUnavailable`, which says why.
    """

    def __init__(self, store: PgStore) -> None:
        self.store = store

    def close(self) -> None:
        pass  # the store's connections are closed with the store

    def add(
        self, channel_id: str, query: str, user_id: str, checked_through: str | None, seen: Sequence[str] = ()
    ) -> Watch:
        with self.store.general.borrow() as conn, conn.transaction():
            # Adds to one channel wait for each other (until commit), so each sees the one before it.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"corpusbot watches {channel_id}",))
            _check_room(_pg_of_channel(conn, channel_id), query)
            row = conn.execute(
                f"INSERT INTO {WATCHES_TABLE} (channel_id, query, user_id, checked_through, checked_at) "
                f"VALUES (%s, %s, %s, %s, now()) RETURNING {_PG_COLUMNS}",
                (channel_id, query, user_id, checked_through),
            ).fetchone()
            assert row is not None
            watch = _watch(row)
            _pg_record(conn, watch.id, seen)
        return watch

    def of_channel(self, channel_id: str) -> list[Watch]:
        with self.store.general.borrow() as conn:
            return _pg_of_channel(conn, channel_id)

    def all(self) -> list[Watch]:
        with self.store.general.borrow() as conn:
            rows = conn.execute(f"SELECT {_PG_COLUMNS} FROM {WATCHES_TABLE} ORDER BY id").fetchall()
        return [_watch(row) for row in rows]

    def get(self, watch_id: int) -> Watch | None:
        with self.store.general.borrow() as conn:
            row = conn.execute(f"SELECT {_PG_COLUMNS} FROM {WATCHES_TABLE} WHERE id = %s", (watch_id,)).fetchone()
        return _watch(row) if row else None

    def remove(self, watch_id: int) -> bool:
        with self.store.general.borrow() as conn, conn.transaction():
            removed = conn.execute(f"DELETE FROM {WATCHES_TABLE} WHERE id = %s", (watch_id,)).rowcount
            conn.execute(f"DELETE FROM {WATCH_POSTED_TABLE} WHERE watch_id = %s", (watch_id,))
        return removed > 0

    def claim(self, watch: Watch, checked_through: str | None, keys: Sequence[str]) -> list[str] | None:
        with self.store.general.borrow() as conn, conn.transaction():
            moved = conn.execute(
                f"UPDATE {WATCHES_TABLE} SET checked_through = %s, checked_at = now() "
                "WHERE id = %s AND checked_through IS NOT DISTINCT FROM %s RETURNING id",
                (checked_through, watch.id, watch.checked_through),
            ).fetchone()
            if moved is None:
                return None
            return _pg_record(conn, watch.id, keys)


def _pg_of_channel(conn: Any, channel_id: str) -> list[Watch]:
    rows = conn.execute(
        f"SELECT {_PG_COLUMNS} FROM {WATCHES_TABLE} WHERE channel_id = %s ORDER BY id", (channel_id,)
    ).fetchall()
    return [_watch(row) for row in rows]


def _pg_record(conn: Any, watch_id: int, keys: Sequence[str]) -> list[str]:
    """Record ``keys`` as posted by the watch (inside the caller's transaction); those not recorded before."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        return []
    rows = conn.execute(
        f"INSERT INTO {WATCH_POSTED_TABLE} (watch_id, passage_key) SELECT %s, k FROM unnest(%s::text[]) AS k "
        "ON CONFLICT DO NOTHING RETURNING passage_key",
        (watch_id, unique),
    ).fetchall()
    recorded = {row[0] for row in rows}
    return [key for key in unique if key in recorded]


def stored_watches(
    index_db: str | os.PathLike[str],
    state_db: str | os.PathLike[str] | None = None,
    *,
    url: StateUrl | str | None = None,
) -> list[Watch]:
    """Every watch the bot stored for the index at ``index_db``, oldest first, read without writing anything.

    With ``url``, from that PostgreSQL database (``CORPUSBOT_STATE_URL``: every replica's); otherwise from
    the state database (``state_db``, by default beside the index). None there yet: an empty list.
    Raises :class:`~corpusbot.index.errors.CorpusbotError` when the database cannot be read.
    """
    if url is not None:
        from corpusbot.bot.state import postgres

        psycopg = postgres._psycopg()
        url = url if isinstance(url, StateUrl) else StateUrl(url)
        options = postgres._connect_options(url.value, postgres.STATEMENT_TIMEOUT_MS)
        try:
            with psycopg.connect(url.value, autocommit=True, **options) as conn:
                if conn.execute("SELECT to_regclass(%s)", (WATCHES_TABLE,)).fetchone() == (None,):
                    return []
                rows = conn.execute(f"SELECT {_PG_COLUMNS} FROM {WATCHES_TABLE} ORDER BY id").fetchall()
        except psycopg.Error as error:
            raise CorpusbotError(
                f"Cannot read the watches from the bot's state database {url.display}: "
                f"{postgres._reason(error, url)}. Check CORPUSBOT_STATE_URL and that PostgreSQL is running."
            ) from None
        return [_watch(row) for row in rows]
    db = database.open_for_reading(index_db, state_db)
    try:
        if WATCHES_TABLE not in db.table_names():
            return []
        return [_watch(row) for row in db.execute(f"SELECT {_COLUMNS} FROM {WATCHES_TABLE} ORDER BY id").fetchall()]
    finally:
        db.conn.close()
