"""The SQLite database: schema, opening, metadata.

One file holds the articles, their passages, the BM25 postings and the index
metadata. It runs in WAL mode so readers keep answering from the last
committed index while a reindex writes the next one in a single transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlite_utils

from .errors import CorpusbotError, IndexMissing, SchemaMismatch

SCHEMA_VERSION = 1
DEFAULT_DB = "corpusbot.db"
BUSY_TIMEOUT_MS = 30_000


def create_schema(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db["files"].create(
        {"path": str, "sha256": str, "size": int, "article_ids": str, "indexed_at": str},
        pk="path",
        if_not_exists=True,
    )
    db["articles"].create(
        {
            "id": str,
            "title": str,
            "url": str,
            "source": str,
            "published": str,
            "author": str,
            "path": str,
            "file": str,
            "text": str,
            "passage_count": int,
        },
        pk="id",
        if_not_exists=True,
    )
    db["passages"].create(
        {"id": int, "article_id": str, "ordinal": int, "start": int, "end": int, "length": int, "text": str},
        pk="id",
        if_not_exists=True,
    )
    db["passages"].create_index(["article_id", "ordinal"], unique=True, if_not_exists=True)
    db["terms"].create({"term": str, "df": int, "postings": bytes}, pk="term", if_not_exists=True)
    db["blobs"].create({"name": str, "data": bytes}, pk="name", if_not_exists=True)
    db["skipped"].create({"path": str, "reason": str}, if_not_exists=True)


def connect(path: str | os.PathLike[str], *, create: bool = False, readonly: bool = False) -> sqlite_utils.Database:
    """Open the database; ``create`` makes a new file (owner-only permissions)."""
    db_path = Path(path)
    if not db_path.exists():
        if not create:
            raise IndexMissing(f"No index database at {db_path}. Run `corpusbot index` to build one.")
        if not db_path.parent.exists():
            raise CorpusbotError(f"Cannot create {db_path}: folder {db_path.parent} does not exist.")
        try:
            fd = os.open(db_path, os.O_CREAT | os.O_WRONLY, 0o600)
        except OSError as error:
            raise CorpusbotError(f"Cannot create {db_path}: {error.strerror}.") from None
        os.close(fd)
    try:
        if readonly:
            conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        else:
            conn = sqlite3.connect(db_path, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as error:
        raise CorpusbotError(
            f"Cannot open {db_path} as a corpusbot database ({error}). "
            "If the file is damaged, move it aside and run `corpusbot index --full`, or restore a backup."
        ) from None
    return sqlite_utils.Database(conn)


def read_meta(db: sqlite_utils.Database) -> dict[str, Any]:
    if "meta" not in db.table_names():
        return {}
    return {row[0]: json.loads(row[1]) for row in db.execute("SELECT key, value FROM meta")}


def write_meta(db: sqlite_utils.Database, values: dict[str, Any]) -> None:
    db.conn.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(key, json.dumps(value)) for key, value in values.items()],
    )


def check_schema(meta: dict[str, Any], db_path: str | os.PathLike[str]) -> None:
    version = meta.get("schema_version")
    if version is None:
        raise IndexMissing(f"{db_path} holds no corpusbot index yet. Run `corpusbot index` to build one.")
    if version != SCHEMA_VERSION:
        raise SchemaMismatch(
            f"{db_path} was written with index schema version {version}; this corpusbot uses "
            f"version {SCHEMA_VERSION}. Run `corpusbot index --full` to rebuild it."
        )
