"""The assistant panel's threads: the channel the user was viewing (bolt's thread context).

bolt's ``Assistant`` keeps a thread's context (the channel the user had open
when they opened the panel, or switched to since) in a thread context store;
its default one edits the bot's first message of the thread, which takes two
Web API calls per question. Ours is a row per thread in the
``bot_assistant_contexts`` table of the bot's state: the SQLite state file of
this host, or with ``CORPUSBOT_STATE_URL`` PostgreSQL, so that every replica
answering a thread sees the same context. (The thread's last question, which a
follow-up is read with, is kept with every other conversation's:
:mod:`corpusbot.bot.state.thread_questions`.)

Rows not written for :data:`KEEP_SECONDS` are deleted now and then.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from corpusbot.bot.state import database
from corpusbot.bot.state.botstate import BotState
from corpusbot.bot.state.database import ASSISTANT_CONTEXTS_TABLE
from corpusbot.bot.state.postgres import PgStore

if TYPE_CHECKING:
    import sqlite_utils

KEEP_SECONDS = 30 * 86400.0  # a thread untouched this long is forgotten
PURGE_EVERY_SECONDS = 3600.0
WRITE_BUSY_MS = 5_000  # written after the ack
MAX_CONTEXT_CHARS = 2_000  # a context is a few ids; anything longer is not Slack's
CONTEXT_FIELDS = ("channel_id", "team_id", "enterprise_id")

_PG_SAVE = f"""
    INSERT INTO {ASSISTANT_CONTEXTS_TABLE} AS t (channel_id, thread_ts, context, updated_at)
    VALUES (%(channel)s, %(thread)s, %(context)s, now())
    ON CONFLICT (channel_id, thread_ts) DO UPDATE SET context = EXCLUDED.context, updated_at = now()
"""
_PG_FIND = f"SELECT context::text FROM {ASSISTANT_CONTEXTS_TABLE} WHERE channel_id = %s AND thread_ts = %s"
_PG_PURGE = f"DELETE FROM {ASSISTANT_CONTEXTS_TABLE} WHERE updated_at < now() - make_interval(secs => %(keep)s)"


def clean_context(context: object) -> dict[str, str] | None:
    """The fields of a thread context worth keeping (string ids only), or None when there are none."""
    if not isinstance(context, Mapping):
        return None
    kept = {name: value for name in CONTEXT_FIELDS if isinstance(value := context.get(name), str) and value}
    if not kept or len(json.dumps(kept)) > MAX_CONTEXT_CHARS:
        return None
    return kept


class ThreadContexts:
    """Each assistant thread's context, in the bot's state (thread-safe; bolt's store wraps it).

    Raises what the state raises when it cannot be used (``sqlite3.Error``, :class:`StateUnavailable`).
    """

    def __init__(self, state: BotState, *, clock: Callable[[], float] = time.time) -> None:
        self._pg: PgStore | None = state.store
        self._clock = clock
        self._lock = threading.Lock()  # the SQLite connection
        self._next_purge = 0.0
        self._db: sqlite_utils.Database | None = None
        if self._pg is None:
            assert state.path is not None
            self._db = database.connect(state.path)
            database.create_assistant_contexts(self._db)  # a state file replaced under the bot has none
            state.close_with(self.close)

    def close(self) -> None:
        """Close the SQLite connection (the bot's state closes it too: ``BotState.close_with``); idempotent."""
        if self._db is not None:
            self._db.conn.close()

    # -- the context ------------------------------------------------------------------------------------------

    def save(self, channel_id: str, thread_ts: str, context: object) -> None:
        """Keep ``context`` (its string ids; nothing when it has none) as the thread's context."""
        kept = clean_context(context)
        payload = json.dumps(kept) if kept else None
        if self._pg is not None:
            from psycopg.types.json import Jsonb

            with self._pg.general.borrow() as conn:
                conn.execute(
                    _PG_SAVE, {"channel": channel_id, "thread": thread_ts, "context": Jsonb(kept) if kept else None}
                )
                self._purge_pg(conn)
            return
        self._write(
            f"INSERT INTO {ASSISTANT_CONTEXTS_TABLE}(channel_id, thread_ts, context, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(channel_id, thread_ts) "
            "DO UPDATE SET context = excluded.context, updated_at = excluded.updated_at",
            (channel_id, thread_ts, payload, self._clock()),
        )

    def find(self, channel_id: str, thread_ts: str) -> dict[str, str] | None:
        """The thread's context, or None when none was kept."""
        if self._pg is not None:
            with self._pg.general.borrow() as conn:
                row = conn.execute(_PG_FIND, (channel_id, thread_ts)).fetchone()
        else:
            with self._lock:
                assert self._db is not None
                row = self._db.conn.execute(
                    f"SELECT context FROM {ASSISTANT_CONTEXTS_TABLE} WHERE channel_id = ? AND thread_ts = ?",
                    (channel_id, thread_ts),
                ).fetchone()
        return clean_context(_loads(row[0])) if row is not None else None

    # -- storage ------------------------------------------------------------------------------------------------

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            assert self._db is not None
            database.write(self._db, sql, params, busy_ms=WRITE_BUSY_MS)
            now = self._clock()
            if now >= self._next_purge:
                self._next_purge = now + PURGE_EVERY_SECONDS
                database.write(
                    self._db,
                    f"DELETE FROM {ASSISTANT_CONTEXTS_TABLE} WHERE updated_at < ?",
                    (now - KEEP_SECONDS,),
                    busy_ms=WRITE_BUSY_MS,
                )

    def _purge_pg(self, conn: Any) -> None:
        now = self._clock()
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY_SECONDS
            conn.execute(_PG_PURGE, {"keep": KEEP_SECONDS})


def _loads(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None
