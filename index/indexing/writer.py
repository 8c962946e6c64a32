"""Write a run's changes into the index, inside the run's one ``BEGIN IMMEDIATE`` transaction.

A full run empties the index tables and writes everything anew. An incremental run deletes the
stale articles with their passages, appends the new ones (new passage ids are always larger than
the old), and rewrites only the postings of terms whose passages changed. Both then rewrite the
per-passage arrays (lengths, article numbers), the statistics BM25 needs, and the files table.

Everything goes in batches, whatever the size of the run: the new articles are read back from the
run's spool a batch at a time (each passage's text is a slice of its article's), and postings are
encoded (or merged with the stored ones) for a range of terms at a time, about
``POSTINGS_BATCH`` postings.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

import numpy as np

from corpusbot.index.engine import pair_sketches as pair_blobs
from corpusbot.index.engine import sketches as sketch_blobs
from corpusbot.index.engine import store
from corpusbot.index.engine.bm25 import average_idf, encode_many
from corpusbot.index.indexing.changes import CorpusChanges, file_key
from corpusbot.index.indexing.passage_encoding import EncodedArticles
from corpusbot.index.indexing.postings_merge import RemovedPassages, merge_postings
from corpusbot.index.indexing.progress import IndexProgress, ProgressCallback
from corpusbot.index.indexing.term_cache import passage_terms

POSTINGS_BATCH = 4_000_000  # postings encoded (or merged) at a time
ARTICLES_BATCH = 2_000  # articles (and their passages) inserted at a time
_REMOVED_ROWS_BATCH = 20_000  # passages of stale articles tokenized at a time


@dataclass(frozen=True, kw_only=True)
class IndexUpdate:
    """Everything :func:`write_index` writes, worked out before the write lock is taken."""

    changes: CorpusChanges
    encoded: EncodedArticles  # the passages of ``changes.new_articles``, split and tokenized
    removed_files: list[str]  # corpus files that are gone
    full: bool  # replace the whole index instead of updating it
    title_weight: int  # how many times each passage holds its title's terms (for the stale ones too)
    generation: int  # the index generation this run writes (the stored sketches are marked with it)


@contextlib.contextmanager
def write_transaction(db: store.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` ... ``COMMIT``; anything raised (KeyboardInterrupt too) rolls it back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise


def write_index(db: store.Connection, update: IndexUpdate, progress: ProgressCallback | None = None) -> None:
    """Write ``update`` inside the open write transaction (the caller commits)."""
    conn = db.conn
    indexed_at = datetime.now(UTC).isoformat(timespec="seconds")
    removed = RemovedPassages(np.zeros(0, dtype=np.int64), set())
    first_seen = _first_indexed(conn, None if update.full else update.changes.stale_article_ids)
    if update.full:
        for table in ("passages", "articles", "terms", "blobs", "files"):
            conn.execute(f"DELETE FROM {table}")
        doc_len = np.zeros(1, dtype=np.int64)
    else:
        doc_len = _load_doc_len(db)
        if update.changes.stale_article_ids:
            removed = _remove_articles(conn, update.changes.stale_article_ids, update.title_weight)
            doc_len[removed.passage_ids] = 0

    lengths = update.encoded.lengths
    first_id = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM passages").fetchone()[0])
    passage_ids = np.arange(first_id, first_id + len(lengths), dtype=np.int64)
    _insert_articles_and_passages(conn, update, first_id, progress, first_seen, indexed_at)

    size = max(len(doc_len), first_id + len(lengths))
    if size > len(doc_len):
        doc_len = np.concatenate([doc_len, np.zeros(size - len(doc_len), dtype=np.int64)])
    doc_len[passage_ids] = lengths

    _write_postings(conn, update, first_id, removed, doc_len, progress)
    _write_passage_arrays_and_statistics(db, update, passage_ids, removed, doc_len)
    _write_files(conn, update, indexed_at)
    conn.executemany(
        f"UPDATE articles SET path = ?, {store.SOURCE_HASH_COLUMN} = coalesce(?, {store.SOURCE_HASH_COLUMN}) "
        "WHERE id = ?",
        update.changes.kept_paths,
    )


def _first_indexed(conn: sqlite3.Connection, article_ids: set[str] | None) -> dict[str, str]:
    """When each of ``article_ids`` (None: every article) first entered the index, read before they are replaced."""
    column = store.FIRST_INDEXED_COLUMN
    if article_ids is None:
        rows = conn.execute(f"SELECT id, {column} FROM articles WHERE {column} IS NOT NULL")
        return {article_id: at for article_id, at in rows}
    ids = list(article_ids)
    found: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for article_id, at in conn.execute(f"SELECT id, {column} FROM articles WHERE id IN ({marks})", chunk):
            if at is not None:
                found[article_id] = at
    return found


def _insert_articles_and_passages(
    conn: sqlite3.Connection,
    update: IndexUpdate,
    first_id: int,
    progress: ProgressCallback | None,
    first_seen: dict[str, str],
    indexed_at: str,
) -> None:
    """The new articles, read back from the spool ``ARTICLES_BATCH`` at a time, and their passages (ids from ``first_id``).

    An article that was in the index before (changed, or rebuilt by ``--full``) keeps the time it first entered it
    (``first_seen``); the others get ``indexed_at``.
    """
    encoded = update.encoded
    numbers = update.changes.new_articles
    counts = encoded.passage_counts.tolist()
    articles = update.changes.spool.read(numbers)
    done = 0
    at = 0  # passages inserted
    while batch := list(islice(articles, ARTICLES_BATCH)):
        batch_counts = counts[done : done + len(batch)]
        end = at + sum(batch_counts)
        starts, ends = encoded.starts[at:end].tolist(), encoded.ends[at:end].tolist()
        lengths = encoded.lengths[at:end].tolist()
        article_rows = []
        passage_rows = []
        k = 0
        for (_, a, line_hash), count in zip(batch, batch_counts, strict=True):
            first = first_seen.get(a.id, indexed_at)
            article_rows.append(
                (
                    a.id,
                    a.title,
                    a.url,
                    a.source,
                    a.published,
                    a.author,
                    a.path,
                    file_key(a),
                    a.text,
                    count,
                    line_hash,
                    first,
                )
            )
            for ordinal in range(1, count + 1):
                start, stop = starts[k], ends[k]
                passage_rows.append((first_id + at + k, a.id, ordinal, start, stop, lengths[k], a.text[start:stop]))
                k += 1
        conn.executemany(
            "INSERT INTO articles(id, title, url, source, published, author, path, file, text, passage_count, "
            f"{store.SOURCE_HASH_COLUMN}, {store.FIRST_INDEXED_COLUMN}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            article_rows,
        )
        conn.executemany(
            "INSERT INTO passages(id, article_id, ordinal, start, end, length, text) VALUES (?,?,?,?,?,?,?)",
            passage_rows,
        )
        done += len(batch)
        at = end
        if progress:
            progress(IndexProgress("writing", done, len(numbers), "articles"))
    if done != len(counts) or at != len(encoded.lengths):
        raise RuntimeError("the spool and the encoded passages disagree on the new articles")


def _write_postings(
    conn: sqlite3.Connection,
    update: IndexUpdate,
    first_id: int,
    removed: RemovedPassages,
    doc_len: np.ndarray,
    progress: ProgressCallback | None,
) -> None:
    """All postings anew (full run), or the new passages' merged into the stored ones; a range of terms at a time."""
    encoded = update.encoded
    vocabulary, buffer = encoded.vocabulary, encoded.postings
    df = buffer.df
    if not update.full:
        merge_postings(conn, vocabulary, buffer, first_id, removed, doc_len, POSTINGS_BATCH, progress)
        return
    done = 0
    for lo, hi in buffer.term_ranges(POSTINGS_BATCH):
        offsets, ids, tfs = buffer.postings(lo, hi)
        ids += np.uint32(first_id)
        blobs = encode_many(offsets, ids, tfs, doc_len[ids])
        conn.executemany(
            "INSERT INTO terms(term, df, postings) VALUES (?, ?, ?)",
            ((vocabulary[lo + t], int(df[lo + t]), blob) for t, blob in enumerate(blobs) if df[lo + t] > 0),
        )
        done = hi
        if progress:
            progress(IndexProgress("writing postings", done, len(vocabulary), "terms"))


def _write_passage_arrays_and_statistics(
    db: store.Connection,
    update: IndexUpdate,
    passage_ids: np.ndarray,
    removed: RemovedPassages,
    doc_len: np.ndarray,
) -> None:
    """The ``doc_len`` and ``article_of`` blobs (by passage id), and the corpus statistics in the metadata."""
    conn = db.conn
    n_docs = int(conn.execute("SELECT count(*) FROM passages").fetchone()[0])
    all_df = np.fromiter((row[0] for row in conn.execute("SELECT df FROM terms")), dtype=np.float64)
    total_tokens = int(doc_len.sum())
    conn.execute(
        "INSERT INTO blobs(name, data) VALUES ('doc_len', ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
        (doc_len.astype("<u4").tobytes(),),
    )
    article_of = _article_numbers(
        db, update.full, removed.passage_ids, passage_ids, update.encoded.passage_counts, len(doc_len)
    )
    conn.execute(
        "INSERT INTO blobs(name, data) VALUES ('article_of', ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
        (article_of.astype("<u4").tobytes(),),
    )
    sketches, distinct = _passage_sketches(db, update, removed.passage_ids, passage_ids, len(doc_len))
    conn.executemany(
        "INSERT INTO blobs(name, data) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
        [
            (sketch_blobs.SKETCH_BLOB, sketches.astype("<u8").tobytes()),
            (sketch_blobs.DISTINCT_BLOB, distinct.astype("<u4").tobytes()),
            (pair_blobs.PAIR_SKETCH_BLOB, _pair_sketches(db, update, removed.passage_ids, passage_ids, len(doc_len))),
        ],
    )
    store.write_meta(
        db,
        {
            "n_docs": n_docs,
            "total_tokens": total_tokens,
            "average_idf": average_idf(n_docs, all_df),
            "vocabulary": len(all_df),
            sketch_blobs.GENERATION_KEY: update.generation,
            pair_blobs.GENERATION_KEY: update.generation,
        },
    )


def _write_files(conn: sqlite3.Connection, update: IndexUpdate, indexed_at: str) -> None:
    """Forget removed files; record the hash and articles of changed ones, the articles of the others."""
    changed_files = update.changes.changed_files
    for key in update.removed_files:
        conn.execute("DELETE FROM files WHERE path = ?", (key,))
    for key, article_ids in update.changes.file_articles.items():
        if key in changed_files:
            digest, size_bytes = changed_files[key]
            conn.execute(
                "INSERT INTO files(path, sha256, size, article_ids, indexed_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(path) DO UPDATE SET sha256=excluded.sha256, size=excluded.size, "
                "article_ids=excluded.article_ids, indexed_at=excluded.indexed_at",
                (key, digest, size_bytes, json.dumps(article_ids), indexed_at),
            )
        else:
            conn.execute("UPDATE files SET article_ids = ? WHERE path = ?", (json.dumps(article_ids), key))


def _article_numbers(
    db: store.Connection,
    full: bool,
    removed_ids: np.ndarray,
    passage_ids: np.ndarray,
    passage_counts: np.ndarray,
    size: int,
) -> np.ndarray:
    """Passage id -> a number for its article (0 for no passage), for article-level scoring.

    An article's passages get consecutive ids, so each article is one run of equal
    numbers. Numbers are never reused within a database until a full rebuild.
    ``passage_counts``: the passages of each new article, whose passages are ``passage_ids``.
    """
    article_of = np.zeros(size, dtype=np.int64)
    if not full:
        row = db.execute("SELECT data FROM blobs WHERE name = 'article_of'").fetchone()
        if row is not None:
            previous = np.frombuffer(row[0], dtype="<u4").astype(np.int64)
            article_of[: min(len(previous), size)] = previous[:size]
        article_of[removed_ids] = 0
    next_number = int(article_of.max()) + 1 if len(article_of) else 1
    counts = passage_counts[passage_counts > 0]  # the new articles that have passages, numbered in order
    article_of[passage_ids] = np.repeat(np.arange(next_number, next_number + len(counts), dtype=np.int64), counts)
    return article_of


def _passage_sketches(
    db: store.Connection, update: IndexUpdate, removed_ids: np.ndarray, passage_ids: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Passage id -> its term-set sketch and distinct-term count (``engine.sketches``), the stored ones updated.

    Passages of an index written before these blobs existed get the count ``sketches.UNKNOWN`` (the search
    service works theirs out from the text) until the next ``--full``.
    """
    sketches = np.zeros(size, dtype=np.uint64)
    distinct = np.zeros(size, dtype=np.uint32)
    if not update.full:
        rows = dict(
            db.execute(
                "SELECT name, data FROM blobs WHERE name IN (?, ?)",
                (sketch_blobs.SKETCH_BLOB, sketch_blobs.DISTINCT_BLOB),
            ).fetchall()
        )
        meta = store.read_meta(db)  # the index being updated (this run's metadata is written after)
        stored = sketch_blobs.from_blobs(rows.get(sketch_blobs.SKETCH_BLOB), rows.get(sketch_blobs.DISTINCT_BLOB), meta)
        if stored is not None and len(stored[1]) <= size:
            sketches[: len(stored[0])] = stored[0]
            distinct[: len(stored[1])] = stored[1]
        else:  # none, damaged, or left by a writer that did not keep them: the texts say
            distinct[:] = sketch_blobs.UNKNOWN
        sketches[removed_ids] = 0
        distinct[removed_ids] = 0
    sketches[passage_ids] = update.encoded.sketches
    distinct[passage_ids] = update.encoded.distinct
    return sketches, distinct


def _pair_sketches(
    db: store.Connection, update: IndexUpdate, removed_ids: np.ndarray, passage_ids: np.ndarray, size: int
) -> bytes:
    """Passage id -> its adjacent-pair sketch (``engine.pair_sketches``), the stored ones updated, as the blob.

    Passages of an index written before the blob existed (or by a corpusbot that did not keep it) get every bit
    set, so the search service reads their text for every pair, until the next ``--full``.
    """
    sketches = np.zeros((size, pair_blobs.BYTES), dtype=np.uint8)
    if not update.full:
        row = db.execute("SELECT data FROM blobs WHERE name = ?", (pair_blobs.PAIR_SKETCH_BLOB,)).fetchone()
        meta = store.read_meta(db)  # the index being updated (this run's metadata is written after)
        rows = len(row[0]) // pair_blobs.BYTES if row is not None and isinstance(row[0], bytes) else 0
        stored = pair_blobs.from_blob(row[0], meta, rows) if row is not None else None
        if stored is not None and rows <= size:
            sketches[:rows] = np.frombuffer(stored, dtype=np.uint8).reshape(rows, pair_blobs.BYTES)
        else:
            sketches[:] = np.frombuffer(pair_blobs.UNKNOWN, dtype=np.uint8)
        sketches[removed_ids] = 0
    sketches[passage_ids] = update.encoded.pair_sketches
    return sketches.tobytes()


def _remove_articles(conn: sqlite3.Connection, article_ids: set[str], title_weight: int) -> RemovedPassages:
    """Delete articles and their passages; return the passage ids and every term they were indexed with."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS stale(id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM stale")
    conn.executemany("INSERT INTO stale(id) VALUES (?)", [(i,) for i in article_ids])
    rows = conn.execute(
        "SELECT p.id, p.text, a.title FROM passages p JOIN articles a ON a.id = p.article_id "
        "WHERE p.article_id IN (SELECT id FROM stale)"
    )
    terms_of = passage_terms()
    terms: set[str] = set()
    titles: set[str] = set()
    passage_ids: list[np.ndarray] = []
    while batch := rows.fetchmany(_REMOVED_ROWS_BATCH):  # bounded token lists however much is removed
        passage_ids.append(np.array([row[0] for row in batch], dtype=np.int64))
        terms |= terms_of.distinct(row[1] for row in batch)
        if title_weight:
            titles.update(row[2] or "" for row in batch)
    if title_weight:
        terms |= terms_of.distinct(titles)
    conn.execute("DELETE FROM passages WHERE article_id IN (SELECT id FROM stale)")
    conn.execute("DELETE FROM articles WHERE id IN (SELECT id FROM stale)")
    return RemovedPassages(np.concatenate(passage_ids) if passage_ids else np.zeros(0, dtype=np.int64), terms)


def _load_doc_len(db: store.Connection) -> np.ndarray:
    row = db.execute("SELECT data FROM blobs WHERE name = 'doc_len'").fetchone()
    if row is None:
        return np.zeros(1, dtype=np.int64)
    return np.frombuffer(row[0], dtype="<u4").astype(np.int64)


def drop_index_tables(db: store.Connection) -> None:
    """Drop the index tables of an old schema; tables of the front ends (``bot_*``, e.g. feedback) stay."""
    for table in db.table_names():
        if not table.startswith(("bot_", "sqlite_")):
            # IF EXISTS: dropping a virtual table (full-text search) has dropped its shadow tables already
            db.execute(f'DROP TABLE IF EXISTS "{table.replace(chr(34), chr(34) * 2)}"')


def checkpoint(db: store.Connection) -> None:
    """Fold the write-ahead log back into the database file, if no reader holds it."""
    # A reader may hold the WAL; SQLite then checkpoints later on its own.
    with contextlib.suppress(sqlite3.OperationalError):
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
