"""Schema migrations: every earlier layout of the database ends up with a new database's schema, its data kept.

The earlier layouts are written out by hand below, as those releases left
them (none of them has a ``_migrations`` table):

- schema version 1, the first release (sqlite-utils 3 made the tables): a
  postings format this corpusbot cannot read, so it is rebuilt, never migrated;
- schema version 2 without the line-hash column (same tables, newer postings);
- that one after the previous release's in-place upgrade (column appended);
- schema version 2 as the previous release created it (column before the text).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.engine import migrations, store
from corpusbot.index.errors import SchemaMismatch
from corpusbot.index.maintenance.check import check_database

ALL = [fn.__name__ for fn in migrations.MIGRATIONS]

# The DDL sqlite-utils 3 wrote for the first releases (square-bracket quoting, one column a line).
SQLITE_UTILS_3_TABLES = (
    "CREATE TABLE [meta] (\n   [key] TEXT PRIMARY KEY,\n   [value] TEXT\n)",
    "CREATE TABLE [files] (\n   [path] TEXT PRIMARY KEY,\n   [sha256] TEXT,\n   [size] INTEGER,\n"
    "   [article_ids] TEXT,\n   [indexed_at] TEXT\n)",
    "CREATE TABLE [articles] (\n   [id] TEXT PRIMARY KEY,\n   [title] TEXT,\n   [url] TEXT,\n   [source] TEXT,\n"
    "   [published] TEXT,\n   [author] TEXT,\n   [path] TEXT,\n   [file] TEXT,\n   [text] TEXT,\n"
    "   [passage_count] INTEGER\n)",
    "CREATE TABLE [passages] (\n   [id] INTEGER PRIMARY KEY,\n   [article_id] TEXT,\n   [ordinal] INTEGER,\n"
    "   [start] INTEGER,\n   [end] INTEGER,\n   [length] INTEGER,\n   [text] TEXT\n)",
    "CREATE UNIQUE INDEX [idx_passages_article_id_ordinal]\n    ON [passages] ([article_id], [ordinal])",
    "CREATE TABLE [terms] (\n   [term] TEXT PRIMARY KEY,\n   [df] INTEGER,\n   [postings] BLOB\n)",
    "CREATE TABLE [blobs] (\n   [name] TEXT PRIMARY KEY,\n   [data] BLOB\n)",
    "CREATE TABLE [skipped] (\n   [path] TEXT,\n   [reason] TEXT\n)",
)

# The previous release's own DDL (store._SCHEMA), the line hash before the text.
PREVIOUS_RELEASE_TABLES = (
    'CREATE TABLE IF NOT EXISTS "meta" ("key" TEXT PRIMARY KEY, "value" TEXT)',
    'CREATE TABLE IF NOT EXISTS "files" '
    '("path" TEXT PRIMARY KEY, "sha256" TEXT, "size" INTEGER, "article_ids" TEXT, "indexed_at" TEXT)',
    'CREATE TABLE IF NOT EXISTS "articles" ("id" TEXT PRIMARY KEY, "title" TEXT, "url" TEXT, "source" TEXT, '
    '"published" TEXT, "author" TEXT, "path" TEXT, "file" TEXT, "source_sha256" BLOB, "text" TEXT, '
    '"passage_count" INTEGER)',
    'CREATE TABLE IF NOT EXISTS "passages" ("id" INTEGER PRIMARY KEY, "article_id" TEXT, "ordinal" INTEGER, '
    '"start" INTEGER, "end" INTEGER, "length" INTEGER, "text" TEXT)',
    'CREATE UNIQUE INDEX IF NOT EXISTS "idx_passages_article_id_ordinal" ON "passages" ("article_id", "ordinal")',
    'CREATE TABLE IF NOT EXISTS "terms" ("term" TEXT PRIMARY KEY, "df" INTEGER, "postings" BLOB)',
    'CREATE TABLE IF NOT EXISTS "blobs" ("name" TEXT PRIMARY KEY, "data" BLOB)',
    'CREATE TABLE IF NOT EXISTS "skipped" ("path" TEXT, "reason" TEXT)',
)

# What the bot keeps in the same file (bot/state/'s tables, not the index's): migrations leave it alone.
BOT_TABLE = "CREATE TABLE [bot_feedback] ([id] INTEGER PRIMARY KEY, [verdict] TEXT)"

ROWS: dict[str, list[tuple[Any, ...]]] = {
    "files": [("/c/a.jsonl", "ab" * 32, 120, '["a1", "a2"]', "2025-01-02T03:04:05+00:00")],
    "articles": [
        ("a1", "Trade talks", "https://x/1", "wire", "2025-01-01", "Ann", "/c/a.jsonl:1", "/c/a.jsonl", "Text one.", 2),
        ("a2", "Rare earths", None, None, None, None, "/c/a.jsonl:2", "/c/a.jsonl", "Text two.", 1),
    ],
    "passages": [(1, "a1", 0, 0, 5, 3, "Text"), (2, "a1", 1, 5, 9, 1, "one."), (3, "a2", 0, 0, 9, 2, "Text two.")],
    "terms": [("trade", 1, b"\x01\x02\x03"), ("earth", 1, b"\x04\x05")],
    "blobs": [("doc_len", b"\x00\x00\x00\x00\x03\x00\x00\x00")],
    "skipped": [("/c/bad.pdf", "unsupported format")],
    "bot_feedback": [(1, "good")],
}
ARTICLE_COLUMNS = "id, title, url, source, published, author, path, file, text, passage_count"


def old_database(path: Path, tables: tuple[str, ...], version: int, *, appended_hash: bool = False) -> Path:
    """A database as an earlier release left it: its DDL, a small index's rows, the bot's table."""
    conn = sqlite3.connect(path)
    with conn:
        for statement in (*tables, BOT_TABLE):
            conn.execute(statement)
        if appended_hash:  # what the previous release's in-place upgrade did
            conn.execute("ALTER TABLE articles ADD COLUMN source_sha256 BLOB")
        meta = {"schema_version": version, "generation": 3, "n_docs": 3, "corpus_paths": ["/c"]}
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        for table, rows in ROWS.items():
            columns = ARTICLE_COLUMNS if table == "articles" else "*"
            if columns == "*":
                conn.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * len(rows[0]))})", rows)
            else:
                conn.executemany(f"INSERT INTO {table}({columns}) VALUES ({','.join('?' * len(rows[0]))})", rows)
    conn.close()
    return path


LAYOUTS: dict[str, Callable[[Path], Path]] = {
    "v2 without the line hash": lambda p: old_database(p, SQLITE_UTILS_3_TABLES, 2),
    "v2 with the line hash appended": lambda p: old_database(p, SQLITE_UTILS_3_TABLES, 2, appended_hash=True),
    "v2 of the previous release": lambda p: old_database(p, PREVIOUS_RELEASE_TABLES, 2),
}


def schema(conn: sqlite3.Connection) -> dict[str, tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Per table: its columns (name, type, not null, default, pk) and indexes (name, unique, origin, columns).

    Columns are compared as a set: ALTER TABLE can only append a column, so an
    upgraded table may hold the same columns in another order (see
    test_the_line_hash_sits_before_the_text_in_a_new_database).
    """
    found = {}
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
        columns = sorted(tuple(row[1:]) for row in conn.execute(f'PRAGMA table_info("{table}")'))
        indexes = sorted(
            (name, unique, origin, tuple(row[2] for row in conn.execute(f'PRAGMA index_info("{name}")')))
            for _, name, unique, origin, _ in conn.execute(f'PRAGMA index_list("{table}")')
        )
        found[table] = (columns, indexes)
    return found


def column_names(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]


def dump(conn: sqlite3.Connection) -> list[str]:
    """Every statement and row of the database: equal dumps, equal databases."""
    return list(conn.iterdump())


@pytest.fixture
def new_schema(tmp_path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(tmp_path / "new.db")
    migrations.migrate(conn)
    conn.commit()
    try:
        return schema(conn)
    finally:
        conn.close()


@pytest.fixture
def connect() -> Iterator[Callable[[Path], sqlite3.Connection]]:
    opened: list[sqlite3.Connection] = []

    def open_(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None)  # autocommit, as the indexer runs
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        conn.close()


def rows(conn: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    columns = ARTICLE_COLUMNS if table == "articles" else "*"
    return conn.execute(f"SELECT {columns} FROM {table} ORDER BY rowid").fetchall()


# -- the list -------------------------------------------------------------------------


def test_the_migrations_are_numbered_in_order_from_one() -> None:
    assert ALL == [
        "m001_index_tables",
        "m002_articles_source_sha256",
        "m003_web_sources",
        "m004_articles_first_indexed_at",
    ]
    for number, name in enumerate(ALL, start=1):
        assert re.fullmatch(rf"m{number:03d}_[a-z0-9_]+", name), name


def test_the_decorator_appends_and_refuses_a_misnamed_or_misplaced_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "MIGRATIONS", list(migrations.MIGRATIONS))

    def m099_next(db: sqlite_utils.Database) -> None: ...

    def add_things(db: sqlite_utils.Database) -> None: ...

    def m002_again(db: sqlite_utils.Database) -> None: ...

    assert migrations.migration(m099_next) is m099_next
    assert migrations.MIGRATIONS[-1] is m099_next
    with pytest.raises(ValueError, match="mNNN_"):
        migrations.migration(add_things)
    with pytest.raises(ValueError, match="must sort after 'm099_next'"):
        migrations.migration(m002_again)
    assert [fn.__name__ for fn in migrations.MIGRATIONS] == [*ALL, "m099_next"]


# -- from every earlier layout to the current one --------------------------------------


def test_a_new_database_gets_every_table_and_the_record(tmp_path: Path, connect) -> None:
    conn = connect(tmp_path / "new.db")
    assert migrations.pending(conn) == ALL
    assert migrations.migrate(conn) == ALL
    assert not conn.in_transaction  # committed: another connection sees it
    other = connect(tmp_path / "new.db")
    assert set(store.Reader(other).table_names()) == {
        "_migrations", "meta", "files", "articles", "passages", "terms", "blobs", "skipped", "sources", "source_items"
    }  # fmt: skip
    assert migrations.applied(other) == ALL
    for name, applied_at in other.execute("SELECT name, applied_at FROM _migrations"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", applied_at), name


def test_the_line_hash_sits_before_the_text_in_a_new_database(tmp_path: Path, connect) -> None:
    conn = connect(tmp_path / "new.db")
    migrations.migrate(conn)
    names = column_names(conn, "articles")
    assert names.index(store.SOURCE_HASH_COLUMN) == names.index("text") - 1  # reading it skips the long text


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_earlier_layout_is_migrated_to_the_new_schema_with_its_data(
    tmp_path: Path, layout: str, connect, new_schema: dict[str, Any]
) -> None:
    conn = connect(LAYOUTS[layout](tmp_path / "old.db"))
    before = {table: rows(conn, table) for table in [*ROWS, "meta"]}
    assert migrations.applied(conn) == []
    assert migrations.migrate(conn) == ALL
    migrated = schema(conn)
    assert migrated.pop("bot_feedback") == (
        [("id", "INTEGER", 0, None, 1), ("verdict", "TEXT", 0, None, 0)],
        [],
    )  # the bot's table, as it was
    assert migrated == new_schema
    assert {table: rows(conn, table) for table in [*ROWS, "meta"]} == before
    assert conn.execute(f"SELECT count(*) FROM articles WHERE {store.SOURCE_HASH_COLUMN} IS NOT NULL").fetchone() == (
        0,
    )
    assert migrations.applied(conn) == ALL and migrations.pending(conn) == []
    assert store.has_source_hashes(store.Reader(conn))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_earlier_index_gets_each_articles_first_indexed_time_from_its_file(
    tmp_path: Path, layout: str, connect
) -> None:
    conn = connect(LAYOUTS[layout](tmp_path / "old.db"))
    conn.execute("INSERT INTO articles (id, title, text) VALUES ('orphan', 'No file', 'x')")
    migrations.migrate(conn)
    found = dict(conn.execute(f"SELECT id, {store.FIRST_INDEXED_COLUMN} FROM articles"))
    assert found == {"a1": "2025-01-02T03:04:05+00:00", "a2": "2025-01-02T03:04:05+00:00", "orphan": None}
    assert "temp.first_seen" not in {row[0] for row in conn.execute("SELECT 'temp.' || name FROM temp.sqlite_master")}


@pytest.mark.parametrize("layout", ["a new database", *LAYOUTS])
def test_migrating_again_changes_nothing(tmp_path: Path, layout: str, connect) -> None:
    path = tmp_path / "db.db"
    conn = connect(LAYOUTS[layout](path) if layout in LAYOUTS else path)
    migrations.migrate(conn)
    before = dump(conn)
    cookie = conn.execute("PRAGMA schema_version").fetchone()  # SQLite's: changes with any DDL
    changes = conn.total_changes
    assert migrations.migrate(conn) == []
    assert dump(conn) == before
    assert conn.execute("PRAGMA schema_version").fetchone() == cookie and conn.total_changes == changes


@pytest.mark.parametrize("name", ALL)
def test_each_migration_accepts_a_database_that_already_has_its_changes(
    tmp_path: Path, name: str, connect, new_schema: dict[str, Any]
) -> None:
    """Databases from before the migrations have no record: m001 and m002 meet tables that are already there."""
    conn = connect(LAYOUTS["v2 of the previous release"](tmp_path / "old.db"))
    migrations.migrate(conn)
    data = {table: rows(conn, table) for table in ROWS}
    migrations.rerun(conn, name)
    after = schema(conn)
    after.pop("bot_feedback")
    assert after == new_schema
    assert {table: rows(conn, table) for table in ROWS} == data
    assert migrations.applied(conn)[-1] == name and sorted(migrations.applied(conn)) == ALL


def test_names_a_newer_corpusbot_recorded_are_ignored(tmp_path: Path, connect) -> None:
    conn = connect(tmp_path / "db.db")
    migrations.migrate(conn)
    conn.execute("INSERT INTO _migrations VALUES ('m099_from_the_future', '2030-01-01T00:00:00+00:00')")
    assert migrations.pending(conn) == []
    assert migrations.migrate(conn) == []


# -- another postings format: rebuilt, never migrated -----------------------------------


@pytest.mark.parametrize("version", [1, store.SCHEMA_VERSION + 1])
def test_an_index_of_another_schema_version_is_refused_and_left_alone(tmp_path: Path, version: int, connect) -> None:
    conn = connect(old_database(tmp_path / "v.db", SQLITE_UTILS_3_TABLES, version))
    before = dump(conn)
    with pytest.raises(SchemaMismatch, match=rf"v\.db was written with index schema version {version};") as caught:
        migrations.migrate(conn)
    assert "`corpusbot index --full`" in str(caught.value)
    assert dump(conn) == before and not conn.in_transaction


# -- a failing migration ---------------------------------------------------------------


def m099_fails_half_way(db: sqlite_utils.Database) -> None:
    db.table("articles").add_column("half_done", str)
    db.table("half_done").create({"x": int})
    raise RuntimeError("migration broke")


def m099_interrupted(db: sqlite_utils.Database) -> None:
    db.table("half_done").create({"x": int})
    raise KeyboardInterrupt


@pytest.mark.parametrize("failing", [m099_fails_half_way, m099_interrupted])
@pytest.mark.parametrize("layout", ["a new database", "v2 without the line hash"])
def test_a_failing_migration_rolls_back_every_migration_of_the_run(
    tmp_path: Path, layout: str, failing: Callable[[sqlite_utils.Database], None], connect, monkeypatch
) -> None:
    path = tmp_path / "db.db"
    conn = connect(LAYOUTS[layout](path) if layout in LAYOUTS else path)
    before = dump(conn)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, failing])
    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        migrations.migrate(conn)
    assert not conn.in_transaction
    assert dump(conn) == before  # m001 and m002 undone too: no _migrations, no line-hash column
    monkeypatch.undo()
    assert migrations.migrate(conn) == ALL


def test_inside_the_callers_transaction_a_failure_undoes_the_migrations_only(
    tmp_path: Path, connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connect(LAYOUTS["v2 without the line hash"](tmp_path / "old.db"))
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m099_fails_half_way])
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO meta VALUES ('callers', '1')")
    with pytest.raises(RuntimeError, match="migration broke"):
        migrations.migrate(conn)
    assert conn.in_transaction  # the caller decides what happens to its transaction
    assert conn.execute("SELECT value FROM meta WHERE key = 'callers'").fetchone() == ("1",)
    assert migrations.applied(conn) == [] and store.SOURCE_HASH_COLUMN not in column_names(conn, "articles")
    assert "half_done" not in column_names(conn, "articles")
    conn.execute("ROLLBACK")


def test_inside_the_callers_transaction_the_migrations_commit_with_it(tmp_path: Path, connect) -> None:
    path = LAYOUTS["v2 without the line hash"](tmp_path / "old.db")
    conn, other = connect(path), connect(path)
    conn.execute("BEGIN IMMEDIATE")
    assert migrations.migrate(conn) == ALL
    assert migrations.applied(other) == []  # not committed yet
    conn.execute("ROLLBACK")
    assert migrations.applied(conn) == [] and store.SOURCE_HASH_COLUMN not in column_names(conn, "articles")
    conn.execute("BEGIN IMMEDIATE")
    migrations.migrate(conn)
    conn.execute("COMMIT")
    assert migrations.applied(other) == ALL


# -- who runs them: writers, at the right moment; readers never ---------------------------


def index_from_before_the_migrations(tmp_path: Path) -> Path:
    """A real index of the bundled sample as the release before the line hash left it."""
    path = tmp_path / "index.db"
    index_corpus(path, [BUNDLED])
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TABLE _migrations")
        conn.execute(f"ALTER TABLE articles DROP COLUMN {store.SOURCE_HASH_COLUMN}")
    conn.close()
    return path


def test_readers_never_upgrade_an_index_from_before_the_migrations(tmp_path: Path, connect) -> None:
    path = index_from_before_the_migrations(tmp_path)
    before = dump(connect(path))
    service = SearchService(path)
    try:
        assert service.ask("who is on the US delegation?").hits
    finally:
        service.close()
    assert check_database(path, queries=3).problems == []
    ranker = store.TermRanker(path)
    assert ranker.top(["deleg"], 3)
    ranker.close()
    conn = connect(path)
    assert dump(conn) == before
    assert migrations.applied(conn) == [] and not store.has_source_hashes(store.Reader(conn))


def test_migrate_commits_on_its_own_but_inside_a_callers_transaction_becomes_part_of_it(
    tmp_path: Path, connect
) -> None:
    new = store.connect_plain(tmp_path / "new.db", create=True)
    new.conn.isolation_level = None
    migrations.migrate(new)  # a new database: the whole schema now, committed
    assert migrations.applied(connect(tmp_path / "new.db")) == ALL
    new.conn.close()

    path = LAYOUTS["v2 without the line hash"](tmp_path / "old.db")
    db = store.connect_plain(path)
    db.conn.isolation_level = None
    assert migrations.applied(db) == [] and not store.has_source_hashes(db)
    db.execute("BEGIN IMMEDIATE")
    migrations.migrate(db)
    assert store.has_source_hashes(db) and migrations.applied(db) == ALL
    assert migrations.applied(connect(path)) == []  # part of the caller's transaction until it commits
    db.execute("COMMIT")
    assert migrations.applied(connect(path)) == ALL
    db.conn.close()


def test_a_reindex_upgrades_an_index_from_before_the_migrations_in_its_write_transaction(
    tmp_path: Path, connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = index_from_before_the_migrations(tmp_path)
    conn = connect(path)
    conn.execute("UPDATE files SET sha256 = 'changed'")  # so the next run writes a new generation
    before = dump(conn)

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "write_meta", fail)  # raised inside the write transaction
    with pytest.raises(RuntimeError, match="disk on fire"):
        index_corpus(path)
    monkeypatch.undo()
    assert dump(conn) == before  # not upgraded either: the upgrade was part of the failed transaction

    summary = index_corpus(path)
    assert summary.updated
    assert migrations.applied(conn) == ALL and store.has_source_hashes(store.Reader(conn))
    assert check_database(path, queries=3).problems == []
