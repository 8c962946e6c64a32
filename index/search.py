"""The search service: questions -> cited passages, article lookup, stats.

Knows nothing of Slack or the CLI. One :class:`SearchService` per process is
enough; it is thread-safe (a lock around each query) and notices a reindex by
another process through the database's generation counter, without a restart.
"""

from __future__ import annotations

import difflib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlite_utils

from . import store
from .bm25 import BM25Params, Collection, Scorer, decode_postings, idf, raw_idf
from .models import Answer, ArticleInfo, ArticleMatch, Hit, Passage, Span, Stats
from .passages import sentence_spans
from .tokenizer import Tokenizer, default_tokenizer

MAX_QUERY_CHARS = 1000
DEFAULT_K = 3


class SearchService:
    """Read-only access to an index database."""

    def __init__(self, db_path: str | os.PathLike[str], tokenizer: Tokenizer | None = None) -> None:
        self.db_path = Path(db_path)
        self.tokenizer = tokenizer or default_tokenizer()
        self._db: sqlite_utils.Database = store.connect(self.db_path)
        self._db.conn.isolation_level = None
        self._lock = threading.RLock()
        self._generation: int | None = None
        self._meta: dict = {}
        self._scorer: Scorer | None = None
        with self._snapshot():
            pass

    def close(self) -> None:
        self._db.conn.close()

    # -- consistency -------------------------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite_utils.Database]:
        """A read transaction: everything read inside sees one committed index."""
        with self._lock:
            conn = self._db.conn
            conn.execute("BEGIN")
            try:
                meta = store.read_meta(self._db)
                store.check_schema(meta, self.db_path)
                if meta.get("generation") != self._generation:
                    self._load(meta)
                yield self._db
            finally:
                conn.execute("COMMIT")

    def _load(self, meta: dict) -> None:
        row = self._db.execute("SELECT data FROM blobs WHERE name = 'doc_len'").fetchone()
        doc_len = np.frombuffer(row[0], dtype="<u4") if row else np.zeros(1, dtype="<u4")
        n_docs = int(meta.get("n_docs", 0))
        collection = Collection(
            n_docs=n_docs,
            avgdl=(meta.get("total_tokens", 0) / n_docs) if n_docs else 0.0,
            mean_idf=float(meta.get("average_idf", 0.0)),
            doc_len=doc_len,
            params=BM25Params(**meta.get("bm25", {})),
        )
        self._scorer = Scorer(collection)
        self._meta = meta
        self._generation = meta.get("generation")

    @property
    def generation(self) -> int | None:
        with self._snapshot():
            return self._generation

    # -- questions ---------------------------------------------------------

    def ask(self, question: str, k: int = DEFAULT_K, offset: int = 0) -> Answer:
        """The top ``k`` passages for ``question`` after skipping ``offset``."""
        notices: list[str] = []
        query = " ".join(question.split())
        if len(query) > MAX_QUERY_CHARS:
            query = query[:MAX_QUERY_CHARS]
            notices.append(f"The question was shortened to its first {MAX_QUERY_CHARS} characters.")
        tokens = self.tokenizer.tokens(query)
        terms = [token.term for token in tokens]
        with self._snapshot() as db:
            assert self._scorer is not None
            collection = self._scorer.collection
            dfs = self._document_frequencies(db, set(terms))
            unknown = tuple(dict.fromkeys(query[t.start : t.end] for t in tokens if t.term not in dfs))
            known = [t for t in terms if t in dfs]
            if not known:
                return Answer(query, (), tuple(terms), unknown, confident=False, offset=offset, notices=tuple(notices))
            # A match on terms found in over half the passages only is weak evidence.
            informative = [t for t in known if raw_idf(collection.n_docs, dfs[t][0]) > 0]
            postings = [
                (idf(collection.n_docs, dfs[t][0], collection.mean_idf, collection.params), *dfs[t][1])
                for t in terms
                if t in dfs
            ]
            ranked = self._scorer.top(postings, offset + k + 1)
            page = ranked[offset : offset + k]
            passages = self._passages(db, [pid for pid, _ in page])
            articles = self._article_infos(db, {p.article_id for p in passages.values()})
        term_weights = {t: max(raw_idf(collection.n_docs, dfs[t][0]), 0.01) for t in known}
        hits = tuple(
            self._hit(offset + rank, score, passages[pid], articles[passages[pid].article_id], term_weights)
            for rank, (pid, score) in enumerate(page, start=1)
        )
        return Answer(
            query,
            hits,
            tuple(terms),
            unknown,
            confident=bool(hits) and bool(informative),
            offset=offset,
            has_more=len(ranked) > offset + k,
            notices=tuple(notices),
        )

    def _hit(self, rank: int, score: float, passage: Passage, article: ArticleInfo, weights: dict[str, float]) -> Hit:
        matches = tuple(Span(tok.start, tok.end) for tok in self.tokenizer.tokens(passage.text) if tok.term in weights)
        return Hit(rank, score, passage, article, matches, self._best_sentence(passage.text, weights))

    def _best_sentence(self, text: str, weights: dict[str, float]) -> Span | None:
        best: tuple[float, Span] | None = None
        for span in sentence_spans(text):
            found = {t for t in self.tokenizer.terms(text[span.start : span.end]) if t in weights}
            value = sum(weights[t] for t in found)
            if value > 0 and (best is None or value > best[0]):
                best = (value, span)
        return best[1] if best else None

    def _document_frequencies(
        self, db: sqlite_utils.Database, terms: set[str]
    ) -> dict[str, tuple[int, tuple[np.ndarray, np.ndarray]]]:
        found = {}
        for term in terms:
            row = db.execute("SELECT df, postings FROM terms WHERE term = ?", (term,)).fetchone()
            if row is not None:
                found[term] = (int(row[0]), decode_postings(row[1]))
        return found

    def _passages(self, db: sqlite_utils.Database, ids: list[int]) -> dict[int, Passage]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = db.execute(
            f"SELECT id, article_id, ordinal, start, end, text FROM passages WHERE id IN ({marks})", ids
        ).fetchall()
        return {row[0]: Passage(*row) for row in rows}

    def _article_infos(self, db: sqlite_utils.Database, ids: set[str]) -> dict[str, ArticleInfo]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = db.execute(
            f"SELECT id, title, url, source, published FROM articles WHERE id IN ({marks})", list(ids)
        ).fetchall()
        return {row[0]: ArticleInfo(*row) for row in rows}

    # -- articles ----------------------------------------------------------

    def article(self, article_id: str) -> tuple[ArticleInfo, list[Passage]] | None:
        """An article and all its passages, or None when the id is unknown."""
        with self._snapshot() as db:
            infos = self._article_infos(db, {article_id})
            if article_id not in infos:
                return None
            return infos[article_id], self._article_passages(db, article_id)

    def passages_of(self, article_id: str, offset: int = 0, limit: int = 5) -> tuple[list[Passage], int]:
        """A page of an article's passages and the article's passage count."""
        with self._snapshot() as db:
            rows = db.execute(
                "SELECT id, article_id, ordinal, start, end, text FROM passages WHERE article_id = ? "
                "ORDER BY ordinal LIMIT ? OFFSET ?",
                (article_id, limit, offset),
            ).fetchall()
            total = db.execute("SELECT count(*) FROM passages WHERE article_id = ?", (article_id,)).fetchone()[0]
        return [Passage(*row) for row in rows], int(total)

    def _article_passages(self, db: sqlite_utils.Database, article_id: str) -> list[Passage]:
        rows = db.execute(
            "SELECT id, article_id, ordinal, start, end, text FROM passages WHERE article_id = ? ORDER BY ordinal",
            (article_id,),
        ).fetchall()
        return [Passage(*row) for row in rows]

    def closest_ids(self, article_id: str, n: int = 5) -> list[str]:
        """Known article ids that look like ``article_id`` (for "did you mean")."""
        with self._snapshot() as db:
            ids = [row[0] for row in db.execute("SELECT id FROM articles")]
        lowered = article_id.lower()
        prefixed = [i for i in ids if i.lower().startswith(lowered) or lowered in i.lower()]
        close = difflib.get_close_matches(article_id, ids, n=n, cutoff=0.4)
        return list(dict.fromkeys(prefixed + close))[:n]

    def find_articles(self, words: str, limit: int = 5) -> list[ArticleMatch]:
        """Articles matching ``words``: title matches first, then by their best passage's BM25 score."""
        terms = set(self.tokenizer.terms(words))
        if not terms:
            return []
        answer = self.ask(words, k=200)
        best: dict[str, float] = {}
        for hit in answer.hits:
            best.setdefault(hit.article.id, hit.score)
        with self._snapshot() as db:
            title_ids = [
                row[0]
                for row in db.execute("SELECT id, title FROM articles")
                if terms <= set(self.tokenizer.terms(row[1] or ""))
            ]
            infos = self._article_infos(db, set(title_ids) | set(best))
            counts = (
                dict(
                    db.execute(
                        f"SELECT id, passage_count FROM articles WHERE id IN ({','.join('?' * len(infos))})",
                        list(infos),
                    ).fetchall()
                )
                if infos
                else {}
            )
        ordered = sorted(infos, key=lambda i: (i not in title_ids, -best.get(i, 0.0), i))
        return [
            ArticleMatch(infos[i], best.get(i, 0.0), i in title_ids, int(counts.get(i, 0))) for i in ordered[:limit]
        ]

    def example_questions(self, n: int = 3) -> list[str]:
        """Example questions built from article titles (for help texts)."""
        with self._snapshot() as db:
            titles = [
                row[0] for row in db.execute("SELECT title FROM articles ORDER BY passage_count DESC, id LIMIT ?", (n,))
            ]
        return [f"What does the corpus say about {title.rstrip('.…')}?" for title in titles if title]

    # -- stats -------------------------------------------------------------

    def stats(self) -> Stats:
        with self._snapshot() as db:
            meta = self._meta
            articles, passages = db.execute(
                "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages)"
            ).fetchone()
        size = sum(os.path.getsize(p) for p in (self.db_path, Path(f"{self.db_path}-wal")) if os.path.exists(p))
        return Stats(
            articles=int(articles),
            passages=int(passages),
            vocabulary=int(meta.get("vocabulary", 0)),
            built_at=meta.get("built_at"),
            build_seconds=meta.get("build_seconds"),
            db_path=str(self.db_path.absolute()),
            db_bytes=size,
            corpus_paths=tuple(meta.get("corpus_paths", ())),
            schema_version=int(meta.get("schema_version", 0)),
            tokenizer=str(meta.get("tokenizer", "")),
            bm25=dict(meta.get("bm25", {})),
        )
