"""What the index database remembers of web sources (tables of migration m003).

``sources``: one row per remembered URL (kind ``feed`` or ``page``) with its HTTP validators
(ETag, Last-Modified), when it last worked and, while it fails, since when and why; feed
entries whose page failed have a row too (kind ``entry``, ``parent`` the feed) until they work.
``source_items``: the articles each source gave (its link -> the article's key in ``files``,
the SHA-256 of the article's text), kept while the source is remembered even after the entry
left the feed: a news corpus keeps its past.

The list of remembered sources itself is the index's corpus paths (``meta.corpus_paths``),
folders and URLs alike; :func:`add_roots` and :func:`remove_roots` change it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from corpusbot.index.engine import migrations, store
from corpusbot.index.errors import CorpusbotError

if TYPE_CHECKING:
    from corpusbot.index.sources.refresh import Refresh

SOURCES_TABLE = "sources"
ITEMS_TABLE = "source_items"


@dataclass(frozen=True)
class SourceRow:
    url: str
    kind: str  # feed, page, entry
    parent: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    checked_at: str | None = None
    last_ok_at: str | None = None
    failing_since: str | None = None
    last_error: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "url": self.url,
            "kind": self.kind,
            "parent": self.parent,
            "checked_at": self.checked_at,
            "last_ok_at": self.last_ok_at,
            "failing_since": self.failing_since,
            "error": self.last_error,
        }


@dataclass
class RegistryState:
    """The stored rows, read before a run fetches anything."""

    sources: dict[str, SourceRow] = field(default_factory=dict)
    items: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # source -> link -> (key, text hash)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def has_tables(db: store.Reader) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SOURCES_TABLE,)).fetchone()
    return row is not None


def load(db: store.Reader) -> RegistryState:
    state = RegistryState()
    if not has_tables(db):
        return state
    for row in db.execute(
        "SELECT url, kind, parent, etag, last_modified, checked_at, last_ok_at, failing_since, last_error FROM sources"
    ):
        state.sources[row[0]] = SourceRow(*row)
    for source, link, key, text_sha256 in db.execute("SELECT source, link, key, text_sha256 FROM source_items"):
        state.items.setdefault(source, {})[link] = (key, text_sha256)
    return state


def save(db: store.Connection, refresh: Refresh | None, roots: list[str]) -> None:
    """Inside the run's write transaction: this run's outcome per source, and forget sources no longer remembered.

    Validators are stored with the index they describe: a run that does not commit leaves the old
    ones, so its content is fetched again rather than taken as unchanged.
    """
    if refresh is None and not has_tables(db):
        return
    migrations.migrate(db)  # inside the caller's transaction: an older index gets the tables
    conn = db.conn
    for status in refresh.statuses if refresh else []:
        if status.kind == "entry" and status.error is None:
            conn.execute("DELETE FROM sources WHERE url = ? AND kind = 'entry'", (status.url,))
            continue
        conn.execute(
            "INSERT INTO sources(url, kind, parent, etag, last_modified, checked_at, last_ok_at, failing_since, "
            "last_error) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(url) DO UPDATE SET kind = excluded.kind, "
            "parent = excluded.parent, etag = excluded.etag, last_modified = excluded.last_modified, "
            "checked_at = excluded.checked_at, last_ok_at = excluded.last_ok_at, "
            "failing_since = excluded.failing_since, last_error = excluded.last_error",
            (
                status.url,
                status.kind,
                status.parent,
                status.etag,
                status.last_modified,
                status.checked_at,
                status.last_ok_at,
                status.failing_since,
                status.error,
            ),
        )
    for url in refresh.forgotten if refresh else []:
        conn.execute("DELETE FROM sources WHERE url = ? AND kind = 'entry'", (url,))
    for source, items in (refresh.items if refresh else {}).items():
        conn.execute("DELETE FROM source_items WHERE source = ?", (source,))
        conn.executemany(
            "INSERT INTO source_items(source, link, key, text_sha256) VALUES (?,?,?,?)",
            [(source, link, key, text_sha256) for link, (key, text_sha256) in items.items()],
        )
    remembered = sorted(set(roots))
    marks = ",".join("?" * len(remembered))
    conn.execute(f"DELETE FROM sources WHERE coalesce(parent, url) NOT IN ({marks})", remembered)
    conn.execute(f"DELETE FROM source_items WHERE source NOT IN ({marks})", remembered)


def failing_sources(db_path: str | os.PathLike[str]) -> list[SourceRow]:
    """The sources whose last fetch failed (which, why, since when), oldest failure first; reads only."""
    if not Path(db_path).exists():
        return []
    reader = store.connect_reader(db_path)
    try:
        return failing(reader)
    finally:
        reader.conn.close()


def failing(db: store.Reader) -> list[SourceRow]:
    if not has_tables(db):
        return []
    rows = db.execute(
        "SELECT url, kind, parent, etag, last_modified, checked_at, last_ok_at, failing_since, last_error "
        "FROM sources WHERE failing_since IS NOT NULL ORDER BY failing_since, url"
    )
    return [SourceRow(*row) for row in rows]


def add_roots(db_path: str | os.PathLike[str], roots: list[str]) -> list[str]:
    """Append ``roots`` to the remembered corpus paths (those not there yet); the new list.

    On a database without an index the list starts empty; the bundled sample corpus leaves the list.
    """

    from corpusbot.index.corpus.discover import BUNDLED

    def change(current: list[str]) -> list[str]:
        kept = [r for r in current if r != BUNDLED]  # the sample was only there for want of a corpus
        return kept + [r for r in dict.fromkeys(roots) if r not in kept]

    return _change_roots(db_path, change)


def remove_roots(db_path: str | os.PathLike[str], roots: list[str]) -> list[str]:
    """Remove ``roots`` from the remembered corpus paths; the new list. Unknown ones raise ``CorpusbotError``."""

    def change(current: list[str]) -> list[str]:
        unknown = [r for r in roots if r not in current]
        if unknown:
            listed = ", ".join(current) or "(none)"
            raise CorpusbotError(
                f"Not a remembered source: {', '.join(unknown)}. Remembered: {listed} (`corpusbot sources list`)."
            )
        return [r for r in current if r not in roots]

    return _change_roots(db_path, change)


def _change_roots(db_path: str | os.PathLike[str], change: Callable[[list[str]], list[str]]) -> list[str]:
    db = store.connect_plain(db_path, create=True)
    db.conn.isolation_level = None
    try:
        meta = store.read_meta(db)
        if meta.get("schema_version") is None and not has_tables(db):
            migrations.migrate(db)  # a new database: the whole schema, as the indexer gives it
        db.execute("BEGIN IMMEDIATE")
        try:
            meta = store.read_meta(db)  # again, under the write lock
            current = [p for p in meta.get("corpus_paths") or [] if isinstance(p, str)]
            updated = change(current)
            store.write_meta(db, {"corpus_paths": updated})
            db.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
        return list(updated)
    finally:
        db.conn.close()
