"""Build or update the index: files -> articles -> passages -> postings, in one transaction.

Incremental by default: a file whose content hash is unchanged is not read
again, articles of removed files are dropped, and only the postings of terms
that occur in added or removed passages are rewritten. Everything is written
in a single ``BEGIN IMMEDIATE`` transaction, so a reader sees the old index or
the new one and a killed run leaves the old one in place.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import sqlite_utils

from . import store
from .bm25 import BM25Params, average_idf, build_postings, decode_postings, encode_postings
from .corpus import BUNDLED, CorpusFile, discover
from .models import Article
from .passages import split_passages
from .readers import Unreadable, read_file
from .tokenizer import default_tokenizer

T = TypeVar("T")
Progress = Callable[[Iterable[T], int], Iterator[T]]

PARALLEL_MIN_PASSAGES = 20_000
CHUNK_PASSAGES = 5_000


@dataclass
class IndexSummary:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    articles: int = 0
    passages: int = 0
    seconds: float = 0.0
    full: bool = False
    corpus_paths: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "warnings": [{"path": path, "message": message} for path, message in self.warnings],
            "articles": self.articles,
            "passages": self.passages,
            "seconds": round(self.seconds, 3),
            "full": self.full,
            "corpus_paths": self.corpus_paths,
        }


@dataclass
class _NewPassage:
    article_id: str
    ordinal: int
    start: int
    end: int
    text: str


def index_corpus(
    db_path: str | os.PathLike[str],
    paths: list[str] | None = None,
    *,
    full: bool = False,
    params: BM25Params | None = None,
    progress: Progress[CorpusFile] | None = None,
    workers: int | None = None,
) -> IndexSummary:
    """Index ``paths`` (or the database's remembered corpus, or the bundled sample) into ``db_path``."""
    started = time.perf_counter()
    db = store.connect(db_path, create=True)
    try:
        return _index(db, db_path, paths, full, params, progress, workers, started)
    finally:
        db.conn.close()


def _index(
    db: sqlite_utils.Database,
    db_path: str | os.PathLike[str],
    paths: list[str] | None,
    full: bool,
    params: BM25Params | None,
    progress: Progress[CorpusFile] | None,
    workers: int | None,
    started: float,
) -> IndexSummary:
    meta = store.read_meta(db)
    version = meta.get("schema_version")
    if version is not None and version != store.SCHEMA_VERSION and not full:
        store.check_schema(meta, db_path)
    if version is not None and version != store.SCHEMA_VERSION:
        _drop_all(db)
        meta = {}
    store.create_schema(db)
    db.conn.isolation_level = None  # explicit transactions only

    roots = [str(Path(p).absolute()) if p != BUNDLED else p for p in paths] if paths else None
    roots = roots or meta.get("corpus_paths") or [BUNDLED]
    if params is None:
        params = BM25Params(**meta["bm25"]) if "bm25" in meta else BM25Params()
    if meta.get("bm25") and BM25Params(**meta["bm25"]) != params:
        full = True
    if meta.get("tokenizer") and meta["tokenizer"] != default_tokenizer().name:
        full = True

    summary = IndexSummary(full=full, corpus_paths=list(roots))
    corpus_files, summary.skipped = discover(roots)

    known = {row["path"]: row for row in db.query("SELECT path, sha256, article_ids FROM files")}
    new_articles: list[Article] = []
    changed_files: dict[str, tuple[str, int]] = {}
    file_articles: dict[str, list[str]] = {}
    iterator: Iterable[CorpusFile] = progress(corpus_files, len(corpus_files)) if progress else corpus_files
    for corpus_file in iterator:
        key = str(corpus_file.path)
        try:
            data = corpus_file.path.read_bytes()
        except OSError as error:
            summary.skipped.append((key, f"unreadable: {error.strerror}"))
            if key in known:
                file_articles[key] = json.loads(known[key]["article_ids"])
            continue
        digest = hashlib.sha256(data).hexdigest()
        previous = known.get(key)
        if previous and previous["sha256"] == digest and not full:
            summary.unchanged.append(key)
            file_articles[key] = json.loads(previous["article_ids"])
            continue
        try:
            result = read_file(corpus_file.path, data, corpus_file.article_id)
        except Unreadable as error:
            reason = str(error) + ("; the previously indexed version is kept" if previous and not full else "")
            summary.skipped.append((key, reason))
            if previous and not full:
                file_articles[key] = json.loads(previous["article_ids"])
            continue
        summary.warnings.extend((key, problem) for problem in result.problems)
        (summary.updated if previous else summary.added).append(key)
        changed_files[key] = (digest, len(data))
        file_articles[key] = [article.id for article in result.articles]
        new_articles.extend(result.articles)

    summary.removed = sorted(set(known) - set(file_articles))

    # Duplicate article ids: the first file in path order (then line order) wins.
    owner: dict[str, str] = {}
    for key in sorted(file_articles):
        kept = []
        for article_id in file_articles[key]:
            if article_id in owner:
                summary.warnings.append(
                    (key, f"duplicate article id {article_id!r}: kept the one from {owner[article_id]}")
                )
                continue
            owner[article_id] = key
            kept.append(article_id)
        file_articles[key] = kept
    new_articles = [a for a in new_articles if owner.get(a.id) == _file_key(a)]
    seen_new: set[str] = set()
    unique_new = []
    for article in new_articles:
        if article.id not in seen_new:
            seen_new.add(article.id)
            unique_new.append(article)
    new_articles = unique_new

    if full:
        stale_article_ids = {row[0] for row in db.execute("SELECT id FROM articles")}
    else:
        stale_article_ids = {
            row[0]
            for row in db.execute("SELECT id, file FROM articles")
            if row[1] not in file_articles or row[1] in changed_files or owner.get(row[0]) != row[1]
        }

    if not new_articles and not stale_article_ids and not full and meta.get("schema_version"):
        _record_unchanged(db, summary, roots, meta, started)
        return summary

    passages = [
        _NewPassage(article.id, ordinal, span.start, span.end, article.text[span.start : span.end])
        for article in new_articles
        for ordinal, span in enumerate(split_passages(article.text), start=1)
    ]
    lengths, doc_terms, vocabulary = _tokenize([p.text for p in passages], workers)

    db.execute("BEGIN IMMEDIATE")
    try:
        _write(
            db,
            params,
            full,
            stale_article_ids,
            new_articles,
            passages,
            lengths,
            doc_terms,
            vocabulary,
            changed_files,
            file_articles,
            summary,
        )
        counts = db.execute("SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages)").fetchone()
        summary.articles, summary.passages = counts
        summary.seconds = time.perf_counter() - started
        store.write_meta(
            db,
            {
                "schema_version": store.SCHEMA_VERSION,
                "tokenizer": default_tokenizer().name,
                "bm25": params.to_json(),
                "corpus_paths": roots,
                "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "build_seconds": round(summary.seconds, 3),
                "generation": int(meta.get("generation", 0)) + 1,
                "articles": summary.articles,
                "passages": summary.passages,
            },
        )
        db.execute("DELETE FROM skipped")
        db.conn.executemany("INSERT INTO skipped(path, reason) VALUES (?, ?)", summary.skipped)
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
    _checkpoint(db)
    return summary


def _file_key(article: Article) -> str:
    path = article.path or ""
    # JSONL articles carry "file:line"; single-article files carry the file path.
    head, sep, tail = path.rpartition(":")
    return head if sep and tail.isdigit() else path


def _record_unchanged(
    db: sqlite_utils.Database, summary: IndexSummary, roots: list[str], meta: dict, started: float
) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        summary.articles, summary.passages = db.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages)"
        ).fetchone()
        summary.seconds = time.perf_counter() - started
        if roots != meta.get("corpus_paths"):
            store.write_meta(db, {"corpus_paths": roots})
        db.execute("DELETE FROM skipped")
        db.conn.executemany("INSERT INTO skipped(path, reason) VALUES (?, ?)", summary.skipped)
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise


def _tokenize(texts: list[str], workers: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-passage token counts, the concatenated term ids, and the local vocabulary."""
    chunks = [texts[i : i + CHUNK_PASSAGES] for i in range(0, len(texts), CHUNK_PASSAGES)]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    if len(texts) >= PARALLEL_MIN_PASSAGES and workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_encode_chunk, chunks))
    else:
        results = [_encode_chunk(chunk) for chunk in chunks]
    vocabulary: dict[str, int] = {}
    lengths: list[np.ndarray] = []
    terms: list[np.ndarray] = []
    for local_vocab, local_lengths, local_ids in results:
        mapping = np.fromiter(
            (vocabulary.setdefault(t, len(vocabulary)) for t in local_vocab), dtype=np.int64, count=len(local_vocab)
        )
        lengths.append(local_lengths)
        terms.append(mapping[local_ids] if len(local_ids) else local_ids.astype(np.int64))
    return (
        np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64),
        np.concatenate(terms) if terms else np.zeros(0, dtype=np.int64),
        list(vocabulary),
    )


def _encode_chunk(texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    tokenizer = default_tokenizer()
    vocab: dict[str, int] = {}
    ids: list[int] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    for index, text in enumerate(texts):
        terms = tokenizer.terms(text)
        lengths[index] = len(terms)
        ids.extend(vocab.setdefault(term, len(vocab)) for term in terms)
    return list(vocab), lengths, np.asarray(ids, dtype=np.int64)


def _write(
    db: sqlite_utils.Database,
    params: BM25Params,
    full: bool,
    stale_article_ids: set[str],
    new_articles: list[Article],
    passages: list[_NewPassage],
    lengths: np.ndarray,
    doc_terms: np.ndarray,
    vocabulary: list[str],
    changed_files: dict[str, tuple[str, int]],
    file_articles: dict[str, list[str]],
    summary: IndexSummary,
) -> None:
    conn = db.conn
    now = datetime.now(UTC).isoformat(timespec="seconds")
    removed_ids = np.zeros(0, dtype=np.int64)
    removed_terms: set[str] = set()
    if full:
        for table in ("passages", "articles", "terms", "blobs", "files"):
            conn.execute(f"DELETE FROM {table}")
        doc_len = np.zeros(1, dtype=np.int64)
    else:
        doc_len = _load_doc_len(db)
        if stale_article_ids:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS stale(id TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM stale")
            conn.executemany("INSERT INTO stale(id) VALUES (?)", [(i,) for i in stale_article_ids])
            rows = conn.execute("SELECT id, text FROM passages WHERE article_id IN (SELECT id FROM stale)").fetchall()
            removed_ids = np.array([row[0] for row in rows], dtype=np.int64)
            tokenizer = default_tokenizer()
            for _, text in rows:
                removed_terms.update(tokenizer.terms(text))
            conn.execute("DELETE FROM passages WHERE article_id IN (SELECT id FROM stale)")
            conn.execute("DELETE FROM articles WHERE id IN (SELECT id FROM stale)")
            if len(removed_ids):
                doc_len[removed_ids] = 0

    first_id = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM passages").fetchone()[0])
    passage_ids = np.arange(first_id, first_id + len(passages), dtype=np.int64)
    per_article: dict[str, int] = {}
    for passage in passages:
        per_article[passage.article_id] = per_article.get(passage.article_id, 0) + 1
    conn.executemany(
        "INSERT INTO articles(id, title, url, source, published, author, path, file, text, passage_count) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            (
                a.id,
                a.title,
                a.url,
                a.source,
                a.published,
                a.author,
                a.path,
                _file_key(a),
                a.text,
                per_article.get(a.id, 0),
            )
            for a in new_articles
        ],
    )
    conn.executemany(
        "INSERT INTO passages(id, article_id, ordinal, start, end, length, text) VALUES (?,?,?,?,?,?,?)",
        [
            (int(pid), p.article_id, p.ordinal, p.start, p.end, int(n), p.text)
            for pid, p, n in zip(passage_ids, passages, lengths, strict=True)
        ],
    )

    size = max(len(doc_len), first_id + len(passages))
    if size > len(doc_len):
        doc_len = np.concatenate([doc_len, np.zeros(size - len(doc_len), dtype=np.int64)])
    doc_len[passage_ids] = lengths

    token_docs = np.repeat(passage_ids, lengths)
    offsets, ids, tfs, df = build_postings(token_docs, doc_terms, len(vocabulary))
    new_postings = {
        term: (ids[offsets[t] : offsets[t + 1]], tfs[offsets[t] : offsets[t + 1]])
        for t, term in enumerate(vocabulary)
        if df[t] > 0
    }

    affected = set(new_postings) | removed_terms
    updates: list[tuple[str, int, bytes]] = []
    deletes: list[tuple[str]] = []
    existing = _existing_postings(conn, affected - set(new_postings) if full else affected)
    for term in affected:
        parts_ids, parts_tfs = [], []
        if term in existing:
            old_ids, old_tfs = existing[term]
            if len(removed_ids):
                keep = ~np.isin(old_ids, removed_ids)
                old_ids, old_tfs = old_ids[keep], old_tfs[keep]
            parts_ids.append(old_ids.astype(np.int64))
            parts_tfs.append(old_tfs.astype(np.int64))
        if term in new_postings:
            parts_ids.append(new_postings[term][0])
            parts_tfs.append(new_postings[term][1])
        merged_ids = np.concatenate(parts_ids) if parts_ids else np.zeros(0, dtype=np.int64)
        if len(merged_ids) == 0:
            deletes.append((term,))
            continue
        merged_tfs = np.concatenate(parts_tfs)
        updates.append((term, len(merged_ids), encode_postings(merged_ids, merged_tfs)))
    conn.executemany("DELETE FROM terms WHERE term = ?", deletes)
    conn.executemany(
        "INSERT INTO terms(term, df, postings) VALUES (?, ?, ?) ON CONFLICT(term) DO UPDATE SET df = excluded.df, postings = excluded.postings",
        updates,
    )

    n_docs = int(conn.execute("SELECT count(*) FROM passages").fetchone()[0])
    all_df = np.fromiter((row[0] for row in conn.execute("SELECT df FROM terms")), dtype=np.float64)
    total_tokens = int(doc_len.sum())
    conn.execute(
        "INSERT INTO blobs(name, data) VALUES ('doc_len', ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
        (doc_len.astype("<u4").tobytes(),),
    )
    store.write_meta(
        db,
        {
            "n_docs": n_docs,
            "total_tokens": total_tokens,
            "average_idf": average_idf(n_docs, all_df),
            "vocabulary": len(all_df),
        },
    )

    for key in summary.removed:
        conn.execute("DELETE FROM files WHERE path = ?", (key,))
    for key, article_ids in file_articles.items():
        if key in changed_files:
            digest, size_bytes = changed_files[key]
            conn.execute(
                "INSERT INTO files(path, sha256, size, article_ids, indexed_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(path) DO UPDATE SET sha256=excluded.sha256, size=excluded.size, article_ids=excluded.article_ids, indexed_at=excluded.indexed_at",
                (key, digest, size_bytes, json.dumps(article_ids), now),
            )
        else:
            conn.execute("UPDATE files SET article_ids = ? WHERE path = ?", (json.dumps(article_ids), key))


def _existing_postings(conn: sqlite3.Connection, terms: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    found = {}
    for term in terms:
        row = conn.execute("SELECT postings FROM terms WHERE term = ?", (term,)).fetchone()
        if row is not None:
            found[term] = decode_postings(row[0])
    return found


def _load_doc_len(db: sqlite_utils.Database) -> np.ndarray:
    row = db.execute("SELECT data FROM blobs WHERE name = 'doc_len'").fetchone()
    if row is None:
        return np.zeros(1, dtype=np.int64)
    return np.frombuffer(row[0], dtype="<u4").astype(np.int64)


def _drop_all(db: sqlite_utils.Database) -> None:
    for table in db.table_names():
        db[table].drop()


def _checkpoint(db: sqlite_utils.Database) -> None:
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError:
        pass  # a reader holds the WAL; SQLite checkpoints later on its own
