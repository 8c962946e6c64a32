"""Where the state is stored: the bot_ tables, autocommit connections, a bounded wait, tables that come back."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from corpusbot.bot.state import database
from corpusbot.bot.state.database import EVENTS_TABLE, FEEDBACK_TABLE
from corpusbot.bot.state.events import SeenEvents
from corpusbot.bot.state.feedback import Feedback, FeedbackLog
from corpusbot.index.engine import store


def test_the_tables_are_created_once_next_to_the_index(sample_db: Path) -> None:
    db = database.connect(sample_db)
    database.create_tables(db)
    db.execute(f"INSERT INTO {EVENTS_TABLE}(event_id, seen_at) VALUES ('Ev1', 1.0)")
    database.create_tables(db)  # again: what exists is kept
    assert {EVENTS_TABLE, FEEDBACK_TABLE, "articles", "passages"} <= set(db.table_names())
    assert db.execute(f"SELECT event_id FROM {EVENTS_TABLE}").fetchall() == [("Ev1",)]
    db.conn.close()


def test_a_write_is_committed_at_once(sample_db: Path) -> None:
    db = database.connect(sample_db)
    database.create_tables(db)
    database.write(db, f"INSERT INTO {EVENTS_TABLE}(event_id, seen_at) VALUES (?, ?)", ("Ev1", 1.0), busy_ms=100)
    assert not db.conn.in_transaction
    other = sqlite3.connect(sample_db)
    assert other.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone() == (1,)
    other.close()
    db.conn.close()


def test_a_write_waits_at_most_busy_ms_for_another_writer(sample_db: Path) -> None:
    db = database.connect(sample_db)
    database.create_tables(db)
    blocker = sqlite3.connect(sample_db)
    blocker.execute("BEGIN IMMEDIATE")  # what a reindex holds while it writes
    started = time.monotonic()
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            database.write(db, f"DELETE FROM {EVENTS_TABLE}", (), busy_ms=50)
    finally:
        blocker.rollback()
        blocker.close()
    assert time.monotonic() - started < store.BUSY_TIMEOUT_MS / 1000 / 2  # not the index connection's long wait
    db.conn.close()


def test_other_errors_are_not_hidden(sample_db: Path) -> None:
    db = database.connect(sample_db)
    database.create_tables(db)
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        database.write(db, f"UPDATE {EVENTS_TABLE} SET nope = 1", (), busy_ms=100)
    db.conn.close()


def test_tables_dropped_under_the_bot_are_recreated(sample_db: Path) -> None:
    seen, log = SeenEvents(sample_db), FeedbackLog(sample_db)
    other = store.connect(sample_db)
    other.execute(f"DROP TABLE {EVENTS_TABLE}")
    other.execute(f"DROP TABLE {FEEDBACK_TABLE}")
    other.conn.commit()
    other.conn.close()
    assert seen.first_time("EvAfterDrop") is True
    log.add(Feedback("U1", None, "helpful", "q", ()))
    assert len(log.read()) == 1
    seen.close()
    log.close()
