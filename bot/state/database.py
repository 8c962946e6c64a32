"""Where the seen events and the feedback are stored: a SQLite file of the bot's own, beside the index.

The state database is ``<index stem>-state.db`` in the index's folder
(``corpusbot.db`` → ``corpusbot-state.db``) unless a path is given
(``CORPUSBOT_STATE_DB``, ``--state-db``). It is apart from the index so that a
reindex, which holds the index's write lock for seconds, never delays the
event check that precedes a Slack acknowledgement, nor a feedback write.

This module is the only one that knows that. It finds the file
(:func:`state_path`), makes or upgrades it (:func:`prepare`: ``MIGRATIONS``,
each recorded by name in ``_migrations`` once it has run), opens connections
(:func:`connect`, and :class:`Connections`, one per thread writing at a time),
runs one write with a bounded wait for another writer (:func:`write`) and
opens the feedback for reading (:func:`open_for_reading`).

Before this file existed the bot kept its tables in the index database.
:func:`prepare` copies their rows into the state database once per index
(recorded in ``_imported``), reading the index read-only: feedback whose
content is there already is not copied again, event ids keep the later time.
The old tables stay in the index file, unused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corpusbot.index.errors import CorpusbotError, IndexMissing

if TYPE_CHECKING:
    import sqlite_utils

FEEDBACK_TABLE = "bot_feedback"
EVENTS_TABLE = "bot_seen_events"
WATCHES_TABLE = "bot_watches"
WATCH_POSTED_TABLE = "bot_watch_posted"  # (watch, passage key): claimed before it is posted
ASSISTANT_CONTEXTS_TABLE = "bot_assistant_contexts"
THREAD_QUESTIONS_TABLE = "bot_thread_questions"  # each thread's and DM's last question (follow-ups)
MIGRATIONS_TABLE = "_migrations"
IMPORTED_TABLE = "_imported"  # index databases whose old bot_ tables were copied in
STATE_SUFFIX = "-state.db"
SETUP_BUSY_MS = 10_000  # at start-up another process may be setting the file up too
READ_BUSY_MS = 2_000  # reading the feedback, or the index's old tables

FEEDBACK_COLUMNS = ("created_at", "user_id", "channel_id", "verdict", "question", "passages", "offset")

log = logging.getLogger("corpusbot.state")


def state_path(index_db: str | os.PathLike[str], state_db: str | os.PathLike[str] | None = None) -> Path:
    """The state database: ``state_db`` when given, else ``<index stem>-state.db`` beside the index."""
    if state_db:
        return Path(state_db)
    index = Path(index_db)
    return index.with_name(index.stem + STATE_SUFFIX)


def connect(path: str | os.PathLike[str], *, busy_ms: int = SETUP_BUSY_MS) -> sqlite_utils.Database:
    """A connection to the state database at ``path`` (made if missing, owner-only) in autocommit mode."""
    import sqlite_utils

    path = Path(path)
    if not path.exists():
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as error:
            raise CorpusbotError(
                f"Cannot create the bot's state database {path}: {error.strerror}. "
                "Set CORPUSBOT_STATE_DB (or --state-db) to a writable place."
            ) from None
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer (a no-op once the file is in WAL)
    conn.execute("PRAGMA synchronous = NORMAL")
    return sqlite_utils.Database(conn)


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


def m001_events_and_feedback(db: sqlite_utils.Database) -> None:
    create_tables(db)


def m002_imported(db: sqlite_utils.Database) -> None:
    db.table(IMPORTED_TABLE).create(
        {"source": str, "imported_at": str, "feedback": int, "events": int}, pk="source", if_not_exists=True
    )


def m003_feedback_generation(db: sqlite_utils.Database) -> None:
    add_feedback_generation(db)


def add_feedback_generation(db: sqlite_utils.Database) -> None:
    """Give the feedback table its ``generation`` column (the index generation of the answer) unless it has one."""
    if "generation" in _feedback_columns(db):
        return
    try:
        db.execute(f"ALTER TABLE {FEEDBACK_TABLE} ADD COLUMN generation INTEGER")
    except sqlite3.OperationalError as error:
        if "duplicate column" not in str(error):  # another process added it just now
            raise


def _feedback_columns(db: sqlite_utils.Database) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({FEEDBACK_TABLE})")}


def m004_assistant_contexts(db: sqlite_utils.Database) -> None:
    create_assistant_contexts(db)


def create_assistant_contexts(db: sqlite_utils.Database) -> None:
    """The assistant panel's threads: the channel the user was viewing (bolt's thread context)."""
    db.table(ASSISTANT_CONTEXTS_TABLE).create(
        {"channel_id": str, "thread_ts": str, "context": str, "updated_at": float},
        pk=("channel_id", "thread_ts"),
        if_not_exists=True,
    )


def m005_thread_questions(db: sqlite_utils.Database) -> None:
    create_thread_questions(db)


def create_thread_questions(db: sqlite_utils.Database) -> None:
    """Each thread's and DM's last question, a follow-up's context (:mod:`.thread_questions`)."""
    db.table(THREAD_QUESTIONS_TABLE).create(
        {"channel_id": str, "thread_ts": str, "question": str, "asked_at": float},
        pk=("channel_id", "thread_ts"),
        if_not_exists=True,
    )


def m006_watches(db: sqlite_utils.Database) -> None:
    create_watch_tables(db)


def create_watch_tables(db: sqlite_utils.Database) -> None:
    """Watches (a channel's standing queries) and the passages each one posted (:mod:`.watches`)."""
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {WATCHES_TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, channel_id TEXT NOT NULL, "
        "query TEXT NOT NULL, user_id TEXT NOT NULL, created_at TEXT NOT NULL, checked_through TEXT, checked_at TEXT)"
    )
    db.execute(f"CREATE INDEX IF NOT EXISTS {WATCHES_TABLE}_channel ON {WATCHES_TABLE} (channel_id, id)")
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {WATCH_POSTED_TABLE} (watch_id INTEGER NOT NULL, passage_key TEXT NOT NULL, "
        "posted_at TEXT NOT NULL, PRIMARY KEY (watch_id, passage_key)) WITHOUT ROWID"
    )


# In order; add a new one for every change, never edit one that was released.
MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    m001_events_and_feedback,
    m002_imported,
    m003_feedback_generation,
    m004_assistant_contexts,
    m005_thread_questions,
    m006_watches,
)


def prepare(index_db: str | os.PathLike[str], state_db: str | os.PathLike[str] | None = None) -> Path:
    """Make or upgrade the state database of the index at ``index_db``, copy the index's old tables in once; its path.

    Safe when several processes start at once: everything happens in one write
    transaction of the state database (never of the index), after a read that
    skips it when there is nothing to do.
    """
    path = state_path(index_db, state_db)
    if path.resolve() == Path(index_db).resolve():
        raise CorpusbotError(
            f"The bot's state database cannot be the index database itself ({path}): a reindex would hold up "
            "every Slack acknowledgement. Set CORPUSBOT_STATE_DB (or --state-db) to a file of its own."
        )
    source = _source(index_db)
    db = connect(path)
    try:
        if not _pending(db, source):
            return path
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            _migrate(db)
            copied = _import_once(db, source)
            db.conn.execute("COMMIT")
        except BaseException:
            db.conn.execute("ROLLBACK")
            raise
    finally:
        db.conn.close()
    if copied is not None and any(copied):
        log.info(
            "Copied %d feedback and %d seen event ids from the index's old tables into %s",
            copied[0],
            copied[1],
            path,
        )
    return path


def _source(index_db: str | os.PathLike[str]) -> Path | None:
    """The index file whose old tables may need copying (None when there is no index yet)."""
    index = Path(index_db)
    return index.resolve() if index.is_file() else None


def _applied(db: sqlite_utils.Database) -> set[str]:
    if MIGRATIONS_TABLE not in db.table_names():
        return set()
    return {row[0] for row in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}


def _pending(db: sqlite_utils.Database, source: Path | None) -> bool:
    """Whether a migration has not run yet, or the index's old tables were not copied yet."""
    if {step.__name__ for step in MIGRATIONS} - _applied(db):
        return True
    return source is not None and not _imported(db, source)


def _imported(db: sqlite_utils.Database, source: Path) -> bool:
    row = db.execute(f"SELECT 1 FROM {IMPORTED_TABLE} WHERE source = ?", (str(source),)).fetchone()
    return row is not None


def _migrate(db: sqlite_utils.Database) -> None:
    db.table(MIGRATIONS_TABLE).create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
    done = _applied(db)
    for step in MIGRATIONS:
        if step.__name__ not in done:
            step(db)
            db.execute(f"INSERT INTO {MIGRATIONS_TABLE}(name, applied_at) VALUES (?, ?)", (step.__name__, _now()))


def _import_once(db: sqlite_utils.Database, source: Path | None) -> tuple[int, int] | None:
    """Copy the old ``bot_`` tables of the index at ``source`` (read-only) unless done before; (feedback, events)."""
    if source is None or _imported(db, source):
        return None
    try:
        feedback, events = _old_rows(source)
    except sqlite3.Error as error:  # busy, or not a database: try again at the next start
        log.warning("Could not read the old bot tables of %s (%s); will try again at the next start", source, error)
        return None
    copied = _add_feedback(db, feedback), _add_events(db, events)
    db.execute(
        f"INSERT INTO {IMPORTED_TABLE}(source, imported_at, feedback, events) VALUES (?, ?, ?, ?)",
        (str(source), _now(), *copied),
    )
    return copied


def _old_rows(index: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    conn = _read_only(index)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        feedback = (
            conn.execute(f"SELECT id, {_columns()} FROM {FEEDBACK_TABLE} ORDER BY id").fetchall()
            if FEEDBACK_TABLE in tables
            else []
        )
        events = (
            conn.execute(f"SELECT event_id, seen_at FROM {EVENTS_TABLE}").fetchall() if EVENTS_TABLE in tables else []
        )
    finally:
        conn.close()
    return feedback, events


def _add_feedback(db: sqlite_utils.Database, rows: list[tuple[Any, ...]]) -> int:
    """Add the feedback whose content is not stored yet, under its old id when that is free; how many."""
    stored = db.execute(f"SELECT id, {_columns()} FROM {FEEDBACK_TABLE}").fetchall()
    ids, contents = {row[0] for row in stored}, {tuple(row[1:]) for row in stored}
    missing = []
    for row in rows:
        if tuple(row[1:]) not in contents:
            contents.add(tuple(row[1:]))
            missing.append(row)
    # Old ids that are free first, so that a renumbered row never takes the id of a row still to come.
    missing.sort(key=lambda row: (row[0] in ids, row[0]))
    insert = f"INSERT INTO {FEEDBACK_TABLE}(id, {_columns()}) VALUES ({', '.join('?' * (len(FEEDBACK_COLUMNS) + 1))})"
    for row in missing:
        db.execute(insert, (None if row[0] in ids else row[0], *row[1:]))
    return len(missing)


def _add_events(db: sqlite_utils.Database, rows: list[tuple[Any, ...]]) -> int:
    before = db.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0]
    db.conn.executemany(
        f"INSERT INTO {EVENTS_TABLE}(event_id, seen_at) VALUES (?, ?) "
        "ON CONFLICT(event_id) DO UPDATE SET seen_at = max(seen_at, excluded.seen_at)",
        rows,
    )
    return int(db.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0] - before)


def _columns() -> str:
    return ", ".join(f'"{name}"' for name in FEEDBACK_COLUMNS)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {READ_BUSY_MS}")
    return conn


def open_for_reading(
    index_db: str | os.PathLike[str], state_db: str | os.PathLike[str] | None = None
) -> sqlite_utils.Database:
    """A read-only connection to where the feedback is (``IndexMissing`` when there is neither file).

    The state database when it exists; otherwise the index itself, whose old
    ``bot_`` tables hold the feedback of a bot that has not run since the state
    moved out of it. Neither is written to.
    """
    import sqlite_utils

    from corpusbot.index.engine import store

    for path in (state_path(index_db, state_db), Path(index_db)):
        if path.is_file():
            # The store's read-only open also works in a read-only folder (no -shm can be made there).
            return sqlite_utils.Database(store.connect(path, readonly=True).conn)
    raise IndexMissing(f"No index database at {index_db}. Run `corpusbot index` to build one.")


def write(db: sqlite_utils.Database, sql: str, params: tuple[Any, ...], *, busy_ms: int) -> sqlite3.Cursor:
    """Run one write (its own transaction), waiting at most ``busy_ms`` for another writer.

    Raises ``sqlite3.OperationalError`` when the database stays busy (or is read-only).
    """
    db.conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    try:
        return db.conn.execute(sql, params)
    except sqlite3.OperationalError as error:
        if "no such table" not in str(error):
            raise
        create_tables(db)  # tables can vanish if the database file was replaced
        add_feedback_generation(db)
        return db.conn.execute(sql, params)


class Connections:
    """Connections to the state database at ``path``: each thread borrows one of its own for as long as it needs it.

    No thread waits for another's connection, so one write waiting (at most its
    busy timeout) for the database never holds up another thread's.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # _idle and _closed, never held while using a connection
        self._closed = False
        self._idle = [connect(self.path)]  # opened now: a file that cannot be opened fails at start

    @contextlib.contextmanager
    def borrow(self) -> Iterator[sqlite_utils.Database]:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            db = self._idle.pop() if self._idle else None
        if db is None:
            db = connect(self.path)
        try:
            yield db
        finally:
            with self._lock:
                closed = self._closed
                if not closed:
                    self._idle.append(db)
            if closed:
                db.conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for db in idle:
            db.conn.close()
