"""Where the seen events and the feedback are stored: two ``bot_`` tables in the index database.

They sit next to, but apart from, the index tables, so a backup of the one
file has everything. This module is the only one that knows that: it opens a
connection (:func:`connect`), creates the tables (:func:`create_tables`) and
runs one write with a bounded wait for another writer (:func:`write`).
Moving the state into a file of its own, or another database, starts here.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corpusbot.index.engine import store

if TYPE_CHECKING:
    import sqlite_utils

FEEDBACK_TABLE = "bot_feedback"
EVENTS_TABLE = "bot_seen_events"


def connect(db_path: str | Path) -> sqlite_utils.Database:
    """A connection to the database at ``db_path`` in autocommit mode: every statement is its own short transaction."""
    db = store.connect(db_path)
    db.conn.isolation_level = None
    return db


def create_tables(db: sqlite_utils.Database) -> None:
    """Create the bot's tables that do not exist yet."""
    db.table(FEEDBACK_TABLE).create(
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
    db.table(EVENTS_TABLE).create({"event_id": str, "seen_at": float}, pk="event_id", if_not_exists=True)


def write(db: sqlite_utils.Database, sql: str, params: tuple[Any, ...], *, busy_ms: int) -> sqlite3.Cursor:
    """Run one write (its own transaction), waiting at most ``busy_ms`` for another writer such as a reindex.

    Raises ``sqlite3.OperationalError`` when the database stays busy (or is read-only).
    """
    db.conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    try:
        return db.conn.execute(sql, params)
    except sqlite3.OperationalError as error:
        if "no such table" not in str(error):
            raise
        create_tables(db)  # tables can vanish if the database file was replaced
        return db.conn.execute(sql, params)
