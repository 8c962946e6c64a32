"""The last question asked in each Slack thread and DM, so that a follow-up is read with it.

"and what did they want from China?" in the thread of "who is on the US
delegation?" is asked with that question as its context
(``SearchService.ask(..., context=...)``: the earlier words at 0.3 of a word's
weight). A thread remembers its question for :data:`THREAD_SECONDS`; a DM has
no threads, so its last question counts for :data:`DM_SECONDS` only (a
question minutes later is about something else as often as not).

One row per conversation in ``bot_thread_questions`` of the bot's state: the
SQLite state file of this host, or with ``CORPUSBOT_STATE_URL`` PostgreSQL, so
every replica answering a thread sees its last question. Rows older than
:data:`THREAD_SECONDS` are deleted now and then.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from corpusbot.bot.state import database
from corpusbot.bot.state.database import THREAD_QUESTIONS_TABLE
from corpusbot.bot.state.postgres import PgStore

if TYPE_CHECKING:
    import sqlite_utils

THREAD_SECONDS = 86_400.0  # a thread's question is context for a day
DM_SECONDS = 600.0  # a DM's for ten minutes
PURGE_EVERY_SECONDS = 3_600.0
# Written before the answer (a quick follow-up must find it), one listener at a time: a state file held by
# another writer must not hold answers back, so the write gives up soon (the follow-up is then read alone).
WRITE_BUSY_MS = 250
MAX_QUESTION_CHARS = 1_000  # a chain of follow-ups keeps the newest part
DM_THREAD = "dm"  # the key of a DM's conversation outside any thread

_PG_FIND = f"SELECT question, asked_at FROM {THREAD_QUESTIONS_TABLE} WHERE channel_id = %s AND thread_ts = %s"
_PG_SAVE = f"""
    INSERT INTO {THREAD_QUESTIONS_TABLE} (channel_id, thread_ts, question, asked_at)
    VALUES (%(channel)s, %(thread)s, %(question)s, %(now)s)
    ON CONFLICT (channel_id, thread_ts) DO UPDATE SET question = EXCLUDED.question, asked_at = EXCLUDED.asked_at
"""
_PG_PURGE = f"DELETE FROM {THREAD_QUESTIONS_TABLE} WHERE asked_at < %(oldest)s"


def window(thread_ts: str) -> float:
    """How long a conversation's last question stays context: a day in a thread, ten minutes in a DM."""
    return DM_SECONDS if thread_ts == DM_THREAD else THREAD_SECONDS


class ThreadQuestions:
    """Each conversation's last question (thread-safe). ``thread_ts``: the thread's root, or DM_THREAD.

    Raises what the state raises when it cannot be used (``sqlite3.Error``, ``StateUnavailable``).
    """

    def __init__(
        self, path: Path | None, store: PgStore | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._pg = store
        self._clock = clock
        self._lock = threading.Lock()
        self._next_purge = 0.0
        self._db: sqlite_utils.Database | None = None
        if store is None:
            assert path is not None
            self._db = database.connect(path)

    def close(self) -> None:
        if self._db is not None:
            self._db.conn.close()

    def earlier(self, channel_id: str, thread_ts: str) -> str | None:
        """The conversation's last question, when it was asked within its :func:`window`; else None."""
        if self._pg is not None:
            with self._pg.general.borrow() as conn:
                row = conn.execute(_PG_FIND, (channel_id, thread_ts)).fetchone()
        else:
            with self._lock:
                assert self._db is not None
                row = self._sqlite_find(self._db, channel_id, thread_ts)
        if row is None or self._clock() - float(row[1]) > window(thread_ts):
            return None
        return str(row[0])

    def remember(self, channel_id: str, thread_ts: str, question: str) -> None:
        """Keep ``question`` (its last MAX_QUESTION_CHARS characters) as the conversation's last one."""
        question = question[-MAX_QUESTION_CHARS:]
        now = self._clock()
        if self._pg is not None:
            with self._pg.general.borrow() as conn:
                conn.execute(_PG_SAVE, {"channel": channel_id, "thread": thread_ts, "question": question, "now": now})
                if now >= self._next_purge:
                    self._next_purge = now + PURGE_EVERY_SECONDS
                    conn.execute(_PG_PURGE, {"oldest": now - THREAD_SECONDS})
            return
        with self._lock:
            assert self._db is not None
            database.create_thread_questions(self._db)  # a state file replaced under the bot has none
            database.write(
                self._db,
                f"INSERT INTO {THREAD_QUESTIONS_TABLE}(channel_id, thread_ts, question, asked_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(channel_id, thread_ts) DO UPDATE SET question = excluded.question, "
                "asked_at = excluded.asked_at",
                (channel_id, thread_ts, question, now),
                busy_ms=WRITE_BUSY_MS,
            )
            if now >= self._next_purge:
                self._next_purge = now + PURGE_EVERY_SECONDS
                database.write(
                    self._db,
                    f"DELETE FROM {THREAD_QUESTIONS_TABLE} WHERE asked_at < ?",
                    (now - THREAD_SECONDS,),
                    busy_ms=WRITE_BUSY_MS,
                )

    @staticmethod
    def _sqlite_find(db: sqlite_utils.Database, channel_id: str, thread_ts: str) -> tuple[str, float] | None:
        try:
            row = db.conn.execute(
                f"SELECT question, asked_at FROM {THREAD_QUESTIONS_TABLE} WHERE channel_id = ? AND thread_ts = ?",
                (channel_id, thread_ts),
            ).fetchone()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return None  # nothing remembered yet in a state file replaced under the bot
            raise
        return (row[0], row[1]) if row else None
