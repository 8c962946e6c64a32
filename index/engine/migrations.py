"""Schema migrations of the index database: an ordered list of small functions.

Each migration is a function ``mNNN_what_it_does(db)`` that changes the SQL
schema with sqlite-utils (``db.table(name).create(...)``, ``add_column``,
``transform``); ``@migration`` appends it to ``MIGRATIONS``. ``migrate(db)``
runs, in list order, the ones the database's ``_migrations`` table does not
name yet, and records each there by name, so a database knows which ran.

To change the schema, append a new function with the next number. Never edit,
rename or reorder one that has been released: databases out there have it
recorded and will not run it again. m001 and m002 look at what is already
there because databases written before this module have no record at all;
a later migration only ever meets databases that have run m001 and m002.

Migrations change tables and columns only. The format of what is stored in
them (the postings encoding, what a passage is) is ``store.SCHEMA_VERSION``:
an index of another format cannot be upgraded by SQL, so it is never migrated
(``migrate`` refuses it) but rebuilt by ``corpusbot index --full``.

Where they run: in the indexer, the one writer of the index, not whenever a
writing connection opens (other writers, such as copying a backup over the
file, have no use for them). A new database gets the whole schema before the
corpus is read, in a transaction of its own; an existing index is upgraded
inside the write transaction that writes its next generation, so a reindex
that fails leaves the old index exactly as it was (``index/indexing/indexer.py``
calls ``migrate`` at both points).
Readers (the search service, ``check``, ``backup``) never run them: they must
not write. Should a reader ever need what a migration adds, let it refuse a
database with ``pending`` migrations, naming ``corpusbot index``, as it
refuses another schema version.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeAlias

from corpusbot.index.engine import store
from corpusbot.index.errors import CorpusbotError

if TYPE_CHECKING:  # imported when a migration is pending only: the indexer's usual run never needs it
    import sqlite_utils

MIGRATIONS_TABLE = "_migrations"

Migration: TypeAlias = Callable[["sqlite_utils.Database"], None]
AnyDatabase: TypeAlias = "sqlite_utils.Database | store.Reader | sqlite3.Connection"

MIGRATIONS: list[Migration] = []

_NAME = re.compile(r"m\d{3}_[a-z0-9_]+")


def migration(fn: Migration) -> Migration:
    """Append ``fn`` to ``MIGRATIONS``; its name must be ``mNNN_...`` and sort after the last one's."""
    name = fn.__name__
    if not _NAME.fullmatch(name):
        raise ValueError(f"a migration is named mNNN_what_it_does, not {name!r}")
    if MIGRATIONS and name <= MIGRATIONS[-1].__name__:
        raise ValueError(f"migration {name!r} must sort after {MIGRATIONS[-1].__name__!r}, the last one")
    MIGRATIONS.append(fn)
    return fn


# -- the migrations ----------------------------------------------------------------


@migration
def m001_index_tables(db: sqlite_utils.Database) -> None:
    """The index tables as a new database gets them.

    A database written before the migrations existed keeps the tables it has
    (``if_not_exists``); m002 brings what they lack.
    """
    db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db.table("files").create(
        {"path": str, "sha256": str, "size": int, "article_ids": str, "indexed_at": str},
        pk="path",
        if_not_exists=True,
    )
    db.table("articles").create(
        {
            "id": str,
            "title": str,
            "url": str,
            "source": str,
            "published": str,
            "author": str,
            "path": str,
            "file": str,
            # before the long text: reading the line hash does not walk the text's overflow pages
            store.SOURCE_HASH_COLUMN: bytes,
            "text": str,
            "passage_count": int,
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("passages").create(
        {"id": int, "article_id": str, "ordinal": int, "start": int, "end": int, "length": int, "text": str},
        pk="id",
        if_not_exists=True,
    )
    # named idx_passages_article_id_ordinal, as in every database sqlite-utils created before
    db.table("passages").create_index(["article_id", "ordinal"], unique=True, if_not_exists=True)
    db.table("terms").create({"term": str, "df": int, "postings": bytes}, pk="term", if_not_exists=True)
    db.table("blobs").create({"name": str, "data": bytes}, pk="name", if_not_exists=True)
    db.table("skipped").create({"path": str, "reason": str}, if_not_exists=True)


@migration
def m002_articles_source_sha256(db: sqlite_utils.Database) -> None:
    """The line-hash column, for an index written before it (still schema version 2).

    Its rows get NULL (unknown: those lines are compared the old way once).
    ``add_column`` puts it after the text; moving it in front, with
    ``transform``, would copy every article inside the reindex transaction.
    """
    articles = db.table("articles")
    if store.SOURCE_HASH_COLUMN not in articles.columns_dict:
        articles.add_column(store.SOURCE_HASH_COLUMN, bytes)


@migration
def m003_web_sources(db: sqlite_utils.Database) -> None:
    """Web sources (``index/sources/registry.py``): per URL its HTTP validators and failures, and its articles."""
    db.table("sources").create(
        {
            "url": str,
            "kind": str,  # feed, page, or entry (a feed entry whose page failed; parent is the feed)
            "parent": str,
            "etag": str,
            "last_modified": str,
            "checked_at": str,
            "last_ok_at": str,
            "failing_since": str,
            "last_error": str,
        },
        pk="url",
        if_not_exists=True,
    )
    db.table("source_items").create(
        {"source": str, "link": str, "key": str, "text_sha256": str}, pk=("source", "link"), if_not_exists=True
    )


@migration
def m004_articles_first_indexed_at(db: sqlite_utils.Database) -> None:
    """When each article first entered the index (``/ask new``, ``corpusbot new``), kept by later reindexes.

    An index from before gets, for each article, the time its file was indexed (the best there is).
    """
    articles = db.table("articles")
    if store.FIRST_INDEXED_COLUMN not in articles.columns_dict:
        articles.add_column(store.FIRST_INDEXED_COLUMN, str)
        db.execute("CREATE TEMP TABLE first_seen (id TEXT PRIMARY KEY, at TEXT)")
        db.execute(
            "INSERT INTO temp.first_seen SELECT j.value, min(f.indexed_at) "
            "FROM files f, json_each(f.article_ids) j WHERE json_valid(f.article_ids) GROUP BY j.value"
        )
        db.execute(
            f"UPDATE articles SET {store.FIRST_INDEXED_COLUMN} = "
            "(SELECT at FROM temp.first_seen WHERE temp.first_seen.id = articles.id)"
        )
        db.execute("DROP TABLE temp.first_seen")
    articles.create_index([store.FIRST_INDEXED_COLUMN], if_not_exists=True)


# -- running them ------------------------------------------------------------------


def applied(db: AnyDatabase) -> list[str]:
    """The names of the migrations the database has run, in the order it ran them (reads only)."""
    conn = _connection(db)
    if not _has_table(conn, MIGRATIONS_TABLE):
        return []
    return [row[0] for row in conn.execute(f'SELECT name FROM "{MIGRATIONS_TABLE}" ORDER BY rowid')]


def pending(db: AnyDatabase) -> list[str]:
    """The names of the migrations the database has not run yet, in the order they would run (reads only).

    Names the database has and this list has not (a newer corpusbot's) are ignored.
    """
    done = set(applied(db))
    return [fn.__name__ for fn in MIGRATIONS if fn.__name__ not in done]


def migrate(db: AnyDatabase) -> list[str]:
    """Run the pending migrations in order, together, and record them; the names run.

    Outside a transaction this takes the write lock first (``BEGIN
    IMMEDIATE``) and commits. Inside the caller's transaction it works in a
    savepoint and leaves the commit to the caller. Either way, when one
    migration fails, none of this call's changes stay, and the error
    propagates. With nothing pending it only reads (the usual case).

    Raises ``SchemaMismatch`` for an index of another schema version: that
    one is rebuilt (``corpusbot index --full``), not migrated.
    """
    if not pending(db):
        return []
    return _atomically(db, _run_pending)


def rerun(db: AnyDatabase, name: str) -> None:
    """Run the migration ``name`` again (it must accept what is there) and record it, atomically like ``migrate``."""
    fn = next((fn for fn in MIGRATIONS if fn.__name__ == name), None)
    if fn is None:
        raise ValueError(f"no migration named {name!r}")

    def run(utils: sqlite_utils.Database) -> list[str]:
        _refuse_another_format(utils.conn)
        _ensure_migrations_table(utils)
        fn(utils)
        _record(utils, name)
        return [name]

    _atomically(db, run)


def _run_pending(utils: sqlite_utils.Database) -> list[str]:
    _refuse_another_format(utils.conn)
    _ensure_migrations_table(utils)
    done = set(applied(utils.conn))  # read again under the write lock: another writer may have run some
    ran = []
    for fn in MIGRATIONS:
        if fn.__name__ not in done:
            fn(utils)
            _record(utils, fn.__name__)
            ran.append(fn.__name__)
    return ran


def _atomically(db: AnyDatabase, work: Callable[[sqlite_utils.Database], list[str]]) -> list[str]:
    conn = _connection(db)
    utils = _utils_database(db)
    if conn.in_transaction:
        with utils.atomic():  # a savepoint: a failure undoes this work only, the caller's transaction stays open
            return work(utils)
    conn.execute("BEGIN IMMEDIATE")  # the write lock before reading what ran: no other writer migrates meanwhile
    try:
        ran = work(utils)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return ran


def _refuse_another_format(conn: sqlite3.Connection) -> None:
    if not _has_table(conn, "meta"):
        return
    meta = store.read_meta(store.Reader(conn))
    if meta.get("schema_version") not in (None, store.SCHEMA_VERSION):
        store.check_schema(meta, _file_name(conn))


def _ensure_migrations_table(utils: sqlite_utils.Database) -> None:
    utils.table(MIGRATIONS_TABLE).create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)


def _record(utils: sqlite_utils.Database, name: str) -> None:
    applied_at = datetime.now(UTC).isoformat(timespec="seconds")
    utils.table(MIGRATIONS_TABLE).insert({"name": name, "applied_at": applied_at}, replace=True)


def _connection(db: AnyDatabase) -> sqlite3.Connection:
    return db if isinstance(db, sqlite3.Connection) else db.conn


def _utils_database(db: AnyDatabase) -> sqlite_utils.Database:
    import sqlite_utils

    if not hasattr(sqlite_utils.Database, "atomic"):
        # Before 4.0 its create/transform committed a transaction already open: a reindex would not be atomic.
        raise CorpusbotError("corpusbot needs sqlite-utils 4.0 or later to update the database schema.")
    if isinstance(db, sqlite_utils.Database):
        return db
    # The connection as it is: no pragmas, no plugins' functions on the indexer's connection.
    return sqlite_utils.Database(_connection(db), recursive_triggers=False, execute_plugins=False)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    return row is not None


def _file_name(conn: sqlite3.Connection) -> str:
    for _, schema, file in conn.execute("PRAGMA database_list"):
        if schema == "main":
            return str(file) or "the database"
    return "the database"
