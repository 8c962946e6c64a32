"""Where the state is stored: a file of its own beside the index, its schema, autocommit connections, a bounded
wait, tables that come back, and the one-time copy of the tables older versions kept in the index."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from corpusbot.bot.state import database
from corpusbot.bot.state.database import EVENTS_TABLE, FEEDBACK_TABLE, IMPORTED_TABLE, MIGRATIONS_TABLE
from corpusbot.bot.state.events import SeenEvents
from corpusbot.bot.state.feedback import Feedback, FeedbackLog, read_feedback
from corpusbot.index.engine import store
from corpusbot.index.errors import CorpusbotError


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def fingerprint(path: Path) -> dict[str, str]:
    """The bytes of a database and its journals: equal before and after means nothing was written.

    (An empty ``-wal`` is what SQLite leaves when it merely opens a WAL database read-only.)
    """
    files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.exists() and f.stat().st_size}


def tables(path: Path) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()


def rows(path: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


OLD_FEEDBACK = [
    (1, "2025-01-01T10:00:00+00:00", "U1", "C1", "helpful", "who is on the US delegation?", '["a \\u00b61"]', 0),
    (2, "2025-01-02T10:00:00+00:00", "U2", None, "not_helpful", "rare earth", "[]", 3),
]


def with_old_tables(index: Path, events: list[tuple[str, float]] | None = None) -> None:
    """Give ``index`` the bot_ tables (and rows) a bot of an earlier version kept in the index database."""
    db = store.connect(index)
    database.create_tables(db)
    db.conn.executemany(f"INSERT INTO {FEEDBACK_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", OLD_FEEDBACK)
    db.conn.executemany(
        f"INSERT INTO {EVENTS_TABLE}(event_id, seen_at) VALUES (?, ?)",
        events if events is not None else [("EvOld1", 1000.0), ("EvOld2", 2000.0)],
    )
    db.conn.commit()
    db.conn.close()


def test_the_state_database_sits_beside_the_index_and_is_named_after_it(tmp_path: Path) -> None:
    assert database.state_path(tmp_path / "corpusbot.db") == tmp_path / "corpusbot-state.db"
    assert database.state_path("data/news.sqlite3") == Path("data/news-state.db")
    assert database.state_path("corpusbot.db", tmp_path / "elsewhere.db") == tmp_path / "elsewhere.db"
    assert database.state_path("corpusbot.db", None) == Path("corpusbot-state.db")


def test_prepare_makes_the_state_database_and_never_writes_to_the_index(sample_db: Path) -> None:
    before = fingerprint(sample_db)
    path = database.prepare(sample_db)
    assert path == sample_db.parent / "sample-state.db"
    assert {EVENTS_TABLE, FEEDBACK_TABLE, MIGRATIONS_TABLE, IMPORTED_TABLE} <= tables(path)
    assert [name for (name,) in rows(path, f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY name")] == [
        step.__name__ for step in database.MIGRATIONS
    ]
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert path.stat().st_mode & 0o077 == 0  # owner-only, like the index
    assert not any(name.startswith("bot_") for name in tables(sample_db))
    assert fingerprint(sample_db) == before
    assert database.prepare(sample_db) == path  # again: nothing to do


def test_old_tables_in_the_index_are_copied_once_and_left_in_place(sample_db: Path) -> None:
    with_old_tables(sample_db)
    before = fingerprint(sample_db)
    path = database.prepare(sample_db)
    stored = rows(path, f"SELECT id, {database._columns()} FROM {FEEDBACK_TABLE} ORDER BY id")
    assert stored == OLD_FEEDBACK  # ids, times and everything else kept
    assert rows(path, f"SELECT DISTINCT generation FROM {FEEDBACK_TABLE}") == [(None,)]  # not known for old ones
    assert rows(path, f"SELECT event_id, seen_at FROM {EVENTS_TABLE} ORDER BY event_id") == [
        ("EvOld1", 1000.0),
        ("EvOld2", 2000.0),
    ]
    assert rows(path, f"SELECT source, feedback, events FROM {IMPORTED_TABLE}") == [(str(sample_db.resolve()), 2, 2)]
    assert fingerprint(sample_db) == before  # read only
    assert len(rows(sample_db, f"SELECT * FROM {FEEDBACK_TABLE}")) == 2  # the old tables stay
    # Once copied, never again: feedback deleted from the state database does not come back.
    connection = sqlite3.connect(path)
    connection.execute(f"DELETE FROM {FEEDBACK_TABLE} WHERE id = 1")
    connection.commit()
    connection.close()
    database.prepare(sample_db)
    assert [row[0] for row in rows(path, f"SELECT id FROM {FEEDBACK_TABLE}")] == [2]


def test_copying_again_adds_only_what_is_missing(sample_db: Path, state: Path) -> None:
    with_old_tables(sample_db)
    path = database.prepare(sample_db, state)
    log = FeedbackLog(path)
    log.add(Feedback("U9", None, "helpful", "new since the move", ()))
    log.close()
    connection = sqlite3.connect(path)
    connection.execute(f"DELETE FROM {IMPORTED_TABLE}")  # as if this state database had not seen the index
    connection.execute(f"UPDATE {EVENTS_TABLE} SET seen_at = 5000.0 WHERE event_id = 'EvOld2'")
    connection.commit()
    connection.close()
    database.prepare(sample_db, state)
    assert [row[0] for row in rows(path, f"SELECT question FROM {FEEDBACK_TABLE} ORDER BY id")] == [
        "who is on the US delegation?",
        "rare earth",
        "new since the move",
    ]
    assert dict(rows(path, f"SELECT event_id, seen_at FROM {EVENTS_TABLE}"))["EvOld2"] == 5000.0  # the later time


def test_old_feedback_whose_id_is_taken_gets_a_new_one(sample_db: Path, state: Path) -> None:
    log = FeedbackLog(state)  # feedback stored before the index had anything to copy
    log.add(Feedback("U7", None, "helpful", "first in the state database", ()))
    log.close()
    with_old_tables(sample_db)
    database.prepare(sample_db, state)
    stored = rows(state, f"SELECT id, question FROM {FEEDBACK_TABLE} ORDER BY id")
    assert stored == [
        (1, "first in the state database"),
        (2, "rare earth"),  # old id 2 was free
        (3, "who is on the US delegation?"),  # old id 1 was taken
    ]


def test_workers_starting_together_copy_the_old_tables_once(sample_db: Path) -> None:
    with_old_tables(sample_db, events=[(f"Ev{n}", float(n)) for n in range(500)])
    start, failures = threading.Barrier(4), []

    def start_worker() -> None:
        start.wait()
        try:
            database.prepare(sample_db)
        except Exception as error:  # reported below: a thread's exception would be lost
            failures.append(error)

    threads = [threading.Thread(target=start_worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    path = database.state_path(sample_db)
    assert rows(path, f"SELECT count(*) FROM {FEEDBACK_TABLE}") == [(2,)]
    assert rows(path, f"SELECT count(*) FROM {EVENTS_TABLE}") == [(500,)]
    assert rows(path, f"SELECT count(*) FROM {IMPORTED_TABLE}") == [(1,)]


def test_a_reindex_holding_the_index_does_not_stop_the_copy(sample_db: Path) -> None:
    with_old_tables(sample_db)
    blocker = sqlite3.connect(sample_db)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("DELETE FROM bot_feedback")  # uncommitted: the copy sees the committed rows
    try:
        path = database.prepare(sample_db)
    finally:
        blocker.rollback()
        blocker.close()
    assert len(rows(path, f"SELECT * FROM {FEEDBACK_TABLE}")) == 2


def test_an_index_that_appears_later_is_copied_then(tmp_path: Path, sample_db: Path) -> None:
    index = tmp_path / "later.db"
    path = database.prepare(index)  # no index yet (serve indexes first; a state path may be set on its own)
    assert rows(path, f"SELECT count(*) FROM {IMPORTED_TABLE}") == [(0,)]
    with_old_tables(sample_db)
    source, copy = sqlite3.connect(sample_db), sqlite3.connect(index)
    source.backup(copy)
    source.close()
    copy.close()
    database.prepare(index)
    assert len(rows(path, f"SELECT * FROM {FEEDBACK_TABLE}")) == 2


def test_the_index_itself_is_refused_as_the_state_database(sample_db: Path) -> None:
    before = fingerprint(sample_db)
    with pytest.raises(CorpusbotError, match=r"cannot be the index database itself.*CORPUSBOT_STATE_DB"):
        database.prepare(sample_db, sample_db.parent / "." / sample_db.name)
    assert fingerprint(sample_db) == before


def test_a_state_database_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusbotError, match=r"Cannot create the bot's state database .*CORPUSBOT_STATE_DB"):
        database.prepare(tmp_path / "index.db", tmp_path / "no" / "such" / "folder.db")


def test_feedback_is_read_from_the_state_database_or_else_from_the_old_index_table(
    sample_db: Path, state: Path
) -> None:
    with_old_tables(sample_db)
    before = fingerprint(sample_db)
    old = database.open_for_reading(sample_db, state)  # no state database yet: the index's old table
    assert [(record.user_id, record.generation) for record in read_feedback(old)] == [("U2", None), ("U1", None)]
    old.conn.close()
    assert not state.exists() and fingerprint(sample_db) == before
    log = FeedbackLog(database.prepare(sample_db, state))
    log.add(Feedback("U3", None, "helpful", "q", ()))
    log.close()
    new = database.open_for_reading(sample_db, state)
    assert [record.user_id for record in read_feedback(new)] == ["U3", "U2", "U1"]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        new.execute(f"DELETE FROM {FEEDBACK_TABLE}")
    new.conn.close()


def test_a_state_database_made_before_generations_gets_the_column_and_keeps_its_feedback(sample_db: Path) -> None:
    path = database.state_path(sample_db)
    db = database.connect(path)  # as an earlier release left it: only the first two migrations
    database.MIGRATIONS[0](db)
    database.MIGRATIONS[1](db)
    db.table(MIGRATIONS_TABLE).create({"name": str, "applied_at": str}, pk="name")
    for step in database.MIGRATIONS[:2]:
        db.execute(f"INSERT INTO {MIGRATIONS_TABLE}(name, applied_at) VALUES (?, 't')", (step.__name__,))
    db.execute(
        f"INSERT INTO {FEEDBACK_TABLE}(created_at, user_id, channel_id, verdict, question, passages, offset) "
        "VALUES ('2025-01-01T00:00:00+00:00', 'U1', NULL, 'helpful', 'old', '[]', 0)"
    )
    db.conn.close()
    assert "generation" not in [row[1] for row in rows(path, f"PRAGMA table_info({FEEDBACK_TABLE})")]
    old = database.open_for_reading(sample_db)
    assert [(record.question, record.generation) for record in read_feedback(old)] == [("old", None)]
    old.conn.close()
    assert database.prepare(sample_db) == path
    assert "m003_feedback_generation" in [name for (name,) in rows(path, f"SELECT name FROM {MIGRATIONS_TABLE}")]
    log = FeedbackLog(path)
    log.add(Feedback("U2", None, "not_helpful", "new", (), generation=7))
    assert [(record.question, record.generation) for record in log.read()] == [("new", 7), ("old", None)]
    log.close()


def test_the_tables_are_created_once(state: Path) -> None:
    db = database.connect(state)
    database.create_tables(db)
    db.execute(f"INSERT INTO {EVENTS_TABLE}(event_id, seen_at) VALUES ('Ev1', 1.0)")
    database.create_tables(db)  # again: what exists is kept
    assert {EVENTS_TABLE, FEEDBACK_TABLE} <= set(db.table_names())
    assert db.execute(f"SELECT event_id FROM {EVENTS_TABLE}").fetchall() == [("Ev1",)]
    db.conn.close()


def test_a_write_is_committed_at_once(state: Path) -> None:
    db = database.connect(state)
    database.create_tables(db)
    database.write(db, f"INSERT INTO {EVENTS_TABLE}(event_id, seen_at) VALUES (?, ?)", ("Ev1", 1.0), busy_ms=100)
    assert not db.conn.in_transaction
    assert rows(state, f"SELECT count(*) FROM {EVENTS_TABLE}") == [(1,)]
    db.conn.close()


def test_a_write_waits_at_most_busy_ms_for_another_writer(state: Path) -> None:
    db = database.connect(state)
    database.create_tables(db)
    blocker = sqlite3.connect(state)
    blocker.execute("BEGIN IMMEDIATE")  # another process writing, or a stuck one holding the lock
    started = time.monotonic()
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            database.write(db, f"DELETE FROM {EVENTS_TABLE}", (), busy_ms=50)
    finally:
        blocker.rollback()
        blocker.close()
    assert time.monotonic() - started < database.SETUP_BUSY_MS / 1000 / 2  # not the connection's long wait
    db.conn.close()


def test_other_errors_are_not_hidden(state: Path) -> None:
    db = database.connect(state)
    database.create_tables(db)
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        database.write(db, f"UPDATE {EVENTS_TABLE} SET nope = 1", (), busy_ms=100)
    db.conn.close()


def test_tables_dropped_under_the_bot_are_recreated(state: Path) -> None:
    seen, log = SeenEvents(state), FeedbackLog(state)
    other = sqlite3.connect(state)
    other.execute(f"DROP TABLE {EVENTS_TABLE}")
    other.execute(f"DROP TABLE {FEEDBACK_TABLE}")
    other.commit()
    other.close()
    assert seen.first_time("EvAfterDrop") is True
    log.add(Feedback("U1", None, "helpful", "q", ()))
    assert len(log.read()) == 1
    seen.close()
    log.close()


def test_each_thread_borrows_its_own_connection_and_close_closes_them_all(state: Path) -> None:
    connections = database.Connections(state)
    with connections.borrow() as first:
        with connections.borrow() as second:  # another thread writing at the same time gets another one
            assert first is not second
        with connections.borrow() as again:
            assert again is second  # given back, used again
    connections.close()
    for db in (first, second):
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            db.execute("SELECT 1")
    with pytest.raises(sqlite3.ProgrammingError, match="closed"), connections.borrow():
        pass
