"""The search service: questions -> cited passages, article lookup, stats.

Knows nothing of Slack or the CLI. One :class:`SearchService` per process is
enough; it is thread-safe (a lock around each query) and notices a reindex by
another process through the database's generation counter and build id, and a
database file replaced under it (see "consistency" below), without a restart.
While the path holds no index it raises ``IndexMissing``/``SchemaMismatch``, and
answers again once one is back.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from corpusbot.index.engine import store
from corpusbot.index.engine.bm25 import BM25Params, Collection, Postings, QueryTerm, Scorer, idf, raw_idf
from corpusbot.index.errors import CorpusbotError, IndexMissing
from corpusbot.index.models import Answer, ArticleInfo, ArticleMatch, Contribution, Hit, Passage, Span, Stats
from corpusbot.index.search.query import ParsedQuery, Synonyms, WeightedTerm, parse_query
from corpusbot.index.search.rerank import (
    ANSWER_TYPE_BOOST,
    NEAR_DUPLICATE_JACCARD,
    answer_type_matches,
    contains_phrase,
    jaccard,
)
from corpusbot.index.text.passages import sentence_spans
from corpusbot.index.text.tokenizer import Tokenizer, default_tokenizer

MAX_QUERY_CHARS = 1000
DEFAULT_K = 3
RERANK_DEPTH = 30  # BM25 candidates that get the second-stage signals (a fixed window keeps paging stable)
PHRASE_DEPTH = 1000  # with a quoted phrase, this many candidates are checked for it
CONFIDENT_COVERAGE = 0.5
ARTICLE_WEIGHT = 1.0  # share of the whole article's BM25 added to a passage's score
PAIR_WEIGHT = 0.1  # bonus for two adjacent query words found adjacent, × the smaller idf

_T = TypeVar("_T")


def _busy(error: sqlite3.Error) -> bool:
    """Whether SQLite failed because another connection holds a lock (waiting again is the cure, not reopening)."""
    text = str(error).lower()
    return "locked" in text or "busy" in text


@dataclass
class _Candidate:
    passage_id: int
    score: float
    bm25: float
    duplicates: int = 0
    boosts: tuple[str, ...] = ()
    term_set: frozenset[str] = frozenset()


@dataclass
class _Ranking:
    unknown: tuple[str, ...]
    term_weights: dict[str, float]
    postings: dict[str, tuple[int, np.ndarray, np.ndarray]]
    candidates: list[_Candidate] = field(default_factory=list)
    scored_terms: list[tuple[WeightedTerm, float]] = field(default_factory=list)
    confident: bool = False
    phrase_miss: bool = False


@dataclass(frozen=True)
class _Articles:
    """Passage id -> article number, each article's length in tokens and passage-id range (index generation-wide).

    An article's passages have consecutive ids and article numbers grow with
    them; removed passages leave holes with article number 0.
    """

    of: np.ndarray
    length: np.ndarray
    first: np.ndarray  # by article number: its lowest and highest passage id
    last: np.ndarray
    passages: np.ndarray  # by article number: how many passages it has (0 for number 0, the holes)
    count: int
    average_length: float
    df: dict[str, int] = field(default_factory=dict)  # by term: how many articles hold it (cached)

    @classmethod
    def from_arrays(cls, article_of: np.ndarray, doc_len: np.ndarray) -> _Articles:
        of = article_of.astype(np.intp)
        length = np.bincount(of, weights=doc_len[: len(of)].astype(np.float64))
        length[0] = 0.0
        passages = np.bincount(of, minlength=len(length))
        passages[0] = 0
        count = int(np.count_nonzero(passages))
        ids = np.arange(len(of), dtype=np.intp)
        first = np.full(len(length), len(of), dtype=np.intp)
        last = np.full(len(length), -1, dtype=np.intp)
        np.minimum.at(first, of, ids)
        np.maximum.at(last, of, ids)
        return cls(of, length, first, last, passages, count, float(length.sum()) / count if count else 0.0)

    def document_frequency(self, term: str, ids: np.ndarray) -> int:
        """How many articles hold ``term`` (``ids``: its postings); each article is one run of them."""
        df = self.df.get(term)
        if df is None:
            numbers = self.of[ids]
            df = self.df[term] = int(np.count_nonzero(numbers[1:] != numbers[:-1])) + 1 if len(numbers) else 0
        return df

    def term_frequencies(self, ids: np.ndarray, tfs: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        """The term's frequency in each of the ``wanted`` articles (the sum over its passages there)."""
        lo = np.searchsorted(ids, self.first[wanted])
        hi = np.searchsorted(ids, self.last[wanted], side="right")
        return np.array([tfs[a:b].sum() if b > a else 0 for a, b in zip(lo.tolist(), hi.tolist(), strict=True)])


def _each_term_once(terms: list[WeightedTerm]) -> list[WeightedTerm]:
    """The first occurrence of each term: a question repeats words for grammar, not emphasis.

    ("Ly6C hi monocytes ... than Ly6C lo monocytes".) This is BM25's query-term
    saturation with k3 = 0 (Robertson et al. 1994); rank-bm25 and Lucene add a
    repeated word's score twice instead.
    """
    first: dict[str, WeightedTerm] = {}
    for term in terms:
        first.setdefault(term.term, term)
    return list(first.values())


def _adjacent_pairs(parsed: ParsedQuery) -> set[tuple[str, str]]:
    words = parsed.query_terms
    return {(a, b) for a, b in itertools.pairwise(words) if a != b}


def _tokenizer_notice(built_with: str | None, current: str) -> str | None:
    """What to tell users of an index built by another tokenizer (its terms differ for some words)."""
    if not built_with or built_with == current:
        return None
    return (
        "The index was built with another version of the tokenizer, so some words may not match; "
        "an admin should run `corpusbot index` (it rebuilds the index)."
    )


def _collapse_near_duplicates(scored: list[_Candidate]) -> list[_Candidate]:
    """Best first, each candidate whose term set is a near-duplicate of a better one's counted on that one instead."""
    kept: list[tuple[int, frozenset[str], _Candidate]] = []
    for candidate in scored:
        terms = candidate.term_set
        size = len(terms)
        for other_size, other, twin in kept:
            # Jaccard(a, b) <= min(|a|, |b|) / max(|a|, |b|): sets of very different sizes are never near-duplicates.
            if min(size, other_size) < NEAR_DUPLICATE_JACCARD * max(size, other_size):
                continue
            if jaccard(terms, other) >= NEAR_DUPLICATE_JACCARD:
                twin.duplicates += 1
                break
        else:
            kept.append((size, terms, candidate))
    return [candidate for _, _, candidate in kept]


def _clean_question(question: str) -> tuple[str, list[str]]:
    """NFC (as the corpus is read), whitespace collapsed, control characters dropped, length capped."""
    notices = []
    composed = unicodedata.normalize("NFC", question)
    query = " ".join("".join(ch if ch.isprintable() else " " for ch in composed).split())
    if len(query) > MAX_QUERY_CHARS:
        query = query[:MAX_QUERY_CHARS]
        notices.append(f"The question was shortened to its first {MAX_QUERY_CHARS} characters.")
    return query, notices


class SearchService:
    """Read-only access to an index database."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        tokenizer: Tokenizer | None = None,
        synonyms_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.tokenizer = tokenizer or default_tokenizer()
        self.synonyms = Synonyms.load(self.tokenizer, synonyms_path)
        self._db: store.Reader | None = None  # None: to be opened before the next question
        self._reopened = False  # the connection is new: check the whole metadata before trusting what is loaded
        self._closed = False
        self._seen: tuple[int, int, int, int] | None = None  # the file's state when last looked at (FileState.db)
        self._wal_header: bytes | None = None  # and its WAL index header then (store.wal_index_header)
        self._postings_cache = store.PostingsCache()
        self._lock = threading.RLock()
        self._build: tuple[object, object] | None = None  # (generation, build_id) of what is loaded
        self._generation: int | None = None
        self._stored: tuple[str, str, str | None] | None = None  # as stored: to see cheaply it is unchanged
        self._meta: dict = {}
        self._scorer: Scorer | None = None
        self._articles: _Articles | None = None
        self._examples: dict[int, list[str]] = {}  # per generation: the query scans and sorts every article
        self._tokenizer_notice: str | None = None
        self._read(lambda db: None)  # errors in the constructor: no database, not one at all, another schema

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._disconnect()

    # -- consistency -------------------------------------------------------
    #
    # Before each question, the path is looked at (store.FileState: two stat calls). The connection is
    # opened again when the path names another file than the one it has open (renamed over, deleted and
    # built again) or its -shm is another file or gone (deleted under the running service), and when the
    # file was written (another size or modification time) while SQLite's WAL index stayed the same: not
    # a commit or checkpoint but a copy over it in place, and the connection's cached pages are stale. In
    # the read transaction, the stored generation, build id and schema version are compared with what is
    # loaded (one SELECT), and the in-memory arrays are loaded again when the build differs. A SQLite
    # error other than busy or locked during a question closes the connection, and the question is asked
    # once more on a new one.

    def check_ready(self) -> str | None:
        """None when questions can be answered now, else why not (one line, for a readiness probe).

        Does what a question does before it reads (notices a replaced file, reopens, loads a new
        build), so the next question finds the service ready; never raises for a missing, foreign,
        damaged or unreadable database.
        """
        try:
            generation = self.generation
        except CorpusbotError as error:
            return str(error)
        except (sqlite3.Error, OSError) as error:
            return f"Cannot read the index at {self.db_path} ({error})."
        if generation is None:
            return f"{self.db_path} holds no complete index (no generation). Run `corpusbot index --full`."
        return None

    def _connection(self) -> store.Reader:
        """The connection to the file at the path now, opened again when it would read another or stale file."""
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        try:
            now = store.FileState.of(self.db_path)
        except FileNotFoundError:
            self._disconnect()  # keep no deleted file open: a new one at the path is opened afresh
            raise IndexMissing(f"No index database at {self.db_path}. Run `corpusbot index` to build one.") from None
        except OSError as error:
            raise CorpusbotError(f"Cannot read {self.db_path}: {error.strerror or error}.") from None
        db = self._db
        if db is None or db.opened is None or not now.same_file(db.opened) or now.shm != db.opened.shm:
            return self._reconnect()
        if now.db != self._seen:
            header = store.wal_index_header(self.db_path)
            if header is None or header == self._wal_header:  # written, but not by SQLite: copied over in place
                return self._reconnect()
            self._seen, self._wal_header = now.db, header
        return db

    def _reconnect(self) -> store.Reader:
        self._disconnect()  # closed first: the new connection must not share the old one's -shm mapping
        db = store.connect_reader(self.db_path)
        db.conn.isolation_level = None
        self._db = db
        self._reopened = True
        self._seen = db.opened.db if db.opened else None
        self._wal_header = store.wal_index_header(self.db_path)
        return db

    def _disconnect(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with suppress(sqlite3.Error):
                db.conn.close()

    def _read(self, work: Callable[[store.Reader], _T]) -> _T:
        """``work`` in one read transaction; on a SQLite error (not busy or locked) once more on a new connection."""
        with self._lock:
            try:
                with self._snapshot() as db:
                    return work(db)
            except sqlite3.DatabaseError as error:
                if self._closed or _busy(error):
                    raise
                self._disconnect()
            with self._snapshot() as db:
                return work(db)

    @contextmanager
    def _snapshot(self) -> Iterator[store.Reader]:
        """A read transaction: everything read inside sees one committed index."""
        with self._lock:
            db = self._connection()
            conn = db.conn
            conn.execute("BEGIN")
            try:
                stored = self._stored_generation(conn)
                if stored is None or stored != self._stored or self._reopened:
                    meta = store.read_meta(db)
                    store.check_schema(meta, self.db_path)
                    build = (meta.get("generation"), meta.get("build_id"))
                    # An index written before build ids existed is loaded again whenever the file changed.
                    if build != self._build or (build[1] is None and self._reopened):
                        self._load(db, meta)
                    self._stored = stored
                    self._reopened = False
                yield db
            except BaseException:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    @staticmethod
    def _stored_generation(conn: sqlite3.Connection) -> tuple[str, str, str | None] | None:
        """The index generation, schema version and build id as stored (cheaper than all metadata every question).

        Every reindex changes the generation and the build id (a restore or a rebuilt file can repeat a
        generation); the schema version is read too, so that a database changed under the bot some other
        way is still checked (and refused) on the next question.
        """
        try:
            row = conn.execute(
                "SELECT (SELECT value FROM meta WHERE key = 'generation'), "
                "(SELECT value FROM meta WHERE key = 'schema_version'), (SELECT value FROM meta WHERE key = 'build_id')"
            ).fetchone()
        except sqlite3.OperationalError:  # no meta table: read_meta and check_schema say what is wrong
            return None
        return row if row[0] is not None and row[1] is not None else None

    def _load(self, db: store.Reader, meta: dict) -> None:
        row = db.execute("SELECT data FROM blobs WHERE name = 'doc_len'").fetchone()
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
        row = db.execute("SELECT data FROM blobs WHERE name = 'article_of'").fetchone()
        self._articles = _Articles.from_arrays(np.frombuffer(row[0], dtype="<u4"), doc_len) if row else None
        self._postings_cache.clear()
        self._examples = {}
        self._tokenizer_notice = _tokenizer_notice(meta.get("tokenizer"), self.tokenizer.name)
        self._meta = meta
        self._generation = meta.get("generation")
        self._build = (meta.get("generation"), meta.get("build_id"))

    @property
    def generation(self) -> int | None:
        return self._read(lambda db: self._generation)

    # -- questions ---------------------------------------------------------

    def ask(self, question: str, k: int = DEFAULT_K, offset: int = 0, explain: bool = False) -> Answer:
        """The top ``k`` passages for ``question`` after skipping ``offset``."""
        query, notices = _clean_question(question)
        parsed = parse_query(query, self.tokenizer, self.synonyms)

        def read(db: store.Reader) -> tuple[_Ranking, dict[int, Passage], dict[str, ArticleInfo], str | None]:
            ranking = self._rank(db, parsed, offset + k + 1)
            passages = self._passages(db, [c.passage_id for c in ranking.candidates[offset : offset + k]])
            articles = self._article_infos(db, {p.article_id for p in passages.values()})
            return ranking, passages, articles, self._tokenizer_notice

        ranking, passages, articles, stale = self._read(read)
        page = ranking.candidates[offset : offset + k]
        if stale:
            notices.append(stale)
        if ranking.phrase_miss:
            notices.append("No passage contains the quoted phrase exactly.")
        weights = ranking.term_weights
        hits = tuple(
            Hit(
                rank=offset + rank,
                score=c.score,
                passage=passages[c.passage_id],
                article=articles[passages[c.passage_id].article_id],
                matches=self._matches(passages[c.passage_id].text, weights),
                highlight=self._best_sentence(passages[c.passage_id].text, weights),
                duplicates=c.duplicates,
                bm25=c.bm25,
                explanation=self._explain(ranking, c.passage_id) if explain else (),
                boosts=c.boosts,
            )
            for rank, c in enumerate(page, start=1)
        )
        return Answer(
            query,
            hits,
            parsed.query_terms,
            ranking.unknown,
            confident=bool(hits) and ranking.confident,
            offset=offset,
            has_more=len(ranking.candidates) > offset + k,
            notices=tuple(notices),
        )

    def rank(self, question: str, depth: int) -> list[tuple[str, int, float]]:
        """``(article id, passage id, score)`` of the best ``depth`` passages, best first (for evaluation)."""
        return self._read(lambda db: self._ranked(db, question, depth))

    def _ranked(self, db: store.Reader, question: str, depth: int) -> list[tuple[str, int, float]]:
        query, _ = _clean_question(question)
        parsed = parse_query(query, self.tokenizer, self.synonyms)
        ranking = self._rank(db, parsed, depth)
        owners = self._article_ids(db, [c.passage_id for c in ranking.candidates[:depth]])
        return [(owners[c.passage_id], c.passage_id, c.score) for c in ranking.candidates[:depth]]

    def _rank(self, db: store.Reader, parsed: ParsedQuery, depth: int) -> _Ranking:
        assert self._scorer is not None
        collection = self._scorer.collection
        found = self._postings(db, {t.term for t in parsed.terms} | parsed.excluded)
        postings = {term: (df, p.ids, p.term_frequencies()) for term, (df, p) in found.items()}
        n_docs = collection.n_docs
        unknown = tuple(dict.fromkeys(parsed.surface.get(t, t) for t in parsed.query_terms if t not in postings))
        known = _each_term_once([t for t in parsed.terms if t.term in postings])
        raw = {t.term: raw_idf(n_docs, postings[t.term][0]) for t in known}
        weights = {term: max(value, 0.01) for term, value in raw.items()}
        ranking = _Ranking(unknown=unknown, term_weights=weights, postings=postings)
        if not known:
            return ranking
        scored = [
            QueryTerm(
                idf(n_docs, found[t.term][0], collection.mean_idf, collection.params) * t.weight, found[t.term][1]
            )
            for t in known
        ]
        ranking.scored_terms = [(t, q.weight) for t, q in zip(known, scored, strict=True)]
        excluded = [postings[t][1] for t in parsed.excluded if t in postings]
        exclude = np.concatenate(excluded).astype(np.intp) if excluded else None
        window = PHRASE_DEPTH if parsed.phrases else RERANK_DEPTH
        top = self._scorer.top(scored, max(depth, window), exclude) or self._zero_score_matches(
            known, postings, max(depth, window), exclude
        )
        head, tail = top[:window], top[window:]
        texts = self._passage_texts(db, [pid for pid, _ in head])
        reranked = self._rerank(parsed, head, texts, ranking)
        if parsed.phrases:
            ranking.phrase_miss = not reranked
            tail = []
        ranking.candidates = reranked + [_Candidate(pid, score, score) for pid, score in tail]
        if reranked:
            ranking.confident = self._is_confident(parsed, texts[reranked[0].passage_id], raw)
        return ranking

    @staticmethod
    def _zero_score_matches(
        known: list[WeightedTerm],
        postings: dict[str, tuple[int, np.ndarray, np.ndarray]],
        depth: int,
        exclude: np.ndarray | None,
    ) -> list[tuple[int, float]]:
        """Passages holding query words when BM25 gives them all 0.

        In a tiny corpus every idf can be 0 (rank-bm25 gives a word found in one of
        two passages idf 0); the passages that hold the most query words are still
        the best there is, so they are returned with score 0 (and not as confident).
        """
        counts: dict[int, int] = {}
        for term in {t.term for t in known if t.origin == "query"}:
            for pid in postings[term][1].tolist():
                counts[pid] = counts.get(pid, 0) + 1
        if exclude is not None:
            for pid in exclude.tolist():
                counts.pop(pid, None)
        ordered = sorted(counts, key=lambda pid: (-counts[pid], pid))
        return [(pid, 0.0) for pid in ordered[:depth]]

    def _rerank(
        self, parsed: ParsedQuery, head: list[tuple[int, float]], texts: dict[int, str], ranking: _Ranking
    ) -> list[_Candidate]:
        weights = ranking.term_weights
        articles = self._article_evidence(ranking, [pid for pid, _ in head])
        pairs = _adjacent_pairs(parsed)
        scored: list[_Candidate] = []
        for pid, score in head:
            text = texts[pid]
            terms = self.tokenizer.terms(text)
            if parsed.phrases and not all(contains_phrase(terms, phrase) for phrase in parsed.phrases):
                continue
            boosts: list[str] = []
            article = articles.get(pid, 0.0)
            if article > 0:
                boosts.append(f"article match +{article:.3f}")
            found_pairs = pairs & set(itertools.pairwise(terms))
            proximity = PAIR_WEIGHT * sum(min(weights[a], weights[b]) for a, b in found_pairs)
            if proximity > 0:
                boosts.append(f"adjacent query words +{proximity:.3f}")
            multiplier = 1.0
            if parsed.answer_type and self._has_answer_type(parsed.answer_type, text, weights):
                boosts.append(f"answer type {parsed.answer_type} ×{1 + ANSWER_TYPE_BOOST:g}")
                multiplier += ANSWER_TYPE_BOOST
            final = (score + article + proximity) * multiplier
            scored.append(_Candidate(pid, final, score, boosts=tuple(boosts), term_set=frozenset(terms)))
        scored.sort(key=lambda c: (-c.score, c.passage_id))
        return _collapse_near_duplicates(scored)

    def _has_answer_type(self, answer_type: str, text: str, weights: dict[str, float]) -> bool:
        """Whether a sentence of ``text`` that holds a query term also holds the kind of answer asked for."""
        if not answer_type_matches(answer_type, [text]):  # nothing answer-like anywhere: no sentence to look at
            return False
        for span in sentence_spans(text):
            sentence = text[span.start : span.end]
            if answer_type_matches(answer_type, [sentence]) and any(
                term in weights for term in self.tokenizer.terms(sentence)
            ):
                return True
        return False

    def _article_evidence(self, ranking: _Ranking, passage_ids: list[int]) -> dict[int, float]:
        """ARTICLE_WEIGHT × BM25 of each candidate's whole article (its passages' terms together).

        An article's passages have consecutive ids, so in a term's postings each
        article is one run: its document frequency over articles is the number of
        runs, and its term frequency in an article the sum over that run.
        """
        articles = self._articles
        if articles is None or not passage_ids or articles.count == 0:
            return {}
        p = self._scorer.collection.params if self._scorer else BM25Params()
        of = articles.of
        wanted = np.unique(of[np.asarray(passage_ids, dtype=np.intp)])
        totals = np.zeros(len(wanted))
        norm = p.k1 * (1 - p.b + p.b * articles.length[wanted] / articles.average_length)
        for term, _ in ranking.scored_terms:
            _, ids, tfs = ranking.postings[term.term]
            df = articles.document_frequency(term.term, ids)
            if df == 0:
                continue
            term_idf = math.log(1 + (articles.count - df + 0.5) / (df + 0.5))
            tf = articles.term_frequencies(ids, tfs, wanted).astype(np.float64)
            totals += term.weight * term_idf * tf * (p.k1 + 1) / (tf + norm)
        per_article = dict(zip(wanted.tolist(), (ARTICLE_WEIGHT * totals).tolist(), strict=True))
        return {pid: per_article[int(of[pid])] for pid in passage_ids}

    def _is_confident(self, parsed: ParsedQuery, text: str, raw: dict[str, float]) -> bool:
        """Whether the best passage covers at least half of the question's informative weight.

        A term found in over half the passages (raw idf <= 0) carries no weight, and
        a word the corpus never mentions weighs as much as the question's average known word.
        """
        asked = list(dict.fromkeys(parsed.query_terms))
        known = [max(raw[t], 0.0) for t in asked if t in raw]
        if not known:
            return False
        typical = sum(known) / len(known)
        total = sum(max(raw[t], 0.0) if t in raw else typical for t in asked)
        present = set(self.tokenizer.terms(text))
        covered = sum(max(raw[t], 0.0) for t in asked if t in raw and t in present)
        return covered > 0 and total > 0 and covered / total >= CONFIDENT_COVERAGE

    def _explain(self, ranking: _Ranking, passage_id: int) -> tuple[Contribution, ...]:
        assert self._scorer is not None
        collection = self._scorer.collection
        p = collection.params
        norm = p.k1 * (1 - p.b + p.b * float(collection.doc_len[passage_id]) / collection.avgdl)
        parts = []
        for term, term_idf in ranking.scored_terms:
            _, ids, tfs = ranking.postings[term.term]
            at = int(np.searchsorted(ids, passage_id))
            tf = int(tfs[at]) if at < len(ids) and ids[at] == passage_id else 0
            score = term_idf * (tf * (p.k1 + 1) / (tf + norm)) if tf else 0.0
            parts.append(Contribution(term.term, term.weight, term_idf / term.weight, tf, score))
        return tuple(parts)

    def _matches(self, text: str, weights: dict[str, float]) -> tuple[Span, ...]:
        return tuple(Span(start, end) for start, end in self.tokenizer.spans(text, weights))

    def _best_sentence(self, text: str, weights: dict[str, float]) -> Span | None:
        best: tuple[float, Span] | None = None
        for span in sentence_spans(text):
            found = {t for t in self.tokenizer.terms(text[span.start : span.end]) if t in weights}
            value = sum(weights[t] for t in found)
            if value > 0 and (best is None or value > best[0]):
                best = (value, span)
        return best[1] if best else None

    def _postings(self, db: store.Reader, terms: set[str]) -> dict[str, tuple[int, Postings]]:
        return self._postings_cache.get(db, terms)

    def _passage_texts(self, db: store.Reader, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        rows = db.execute(f"SELECT id, text FROM passages WHERE id IN ({','.join('?' * len(ids))})", ids)
        return dict(rows.fetchall())

    def _article_ids(self, db: store.Reader, ids: list[int]) -> dict[int, str]:
        owners: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = db.execute(f"SELECT id, article_id FROM passages WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            owners.update(rows.fetchall())
        return owners

    def _passages(self, db: store.Reader, ids: list[int]) -> dict[int, Passage]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = db.execute(
            f"SELECT id, article_id, ordinal, start, end, text FROM passages WHERE id IN ({marks})", ids
        ).fetchall()
        return {row[0]: Passage(*row) for row in rows}

    def _article_infos(self, db: store.Reader, ids: set[str]) -> dict[str, ArticleInfo]:
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

        def read(db: store.Reader) -> tuple[ArticleInfo, list[Passage]] | None:
            infos = self._article_infos(db, {article_id})
            if article_id not in infos:
                return None
            return infos[article_id], self._article_passages(db, article_id)

        return self._read(read)

    def passages_of(self, article_id: str, offset: int = 0, limit: int = 5) -> tuple[list[Passage], int]:
        """A page of an article's passages and the article's passage count."""

        def read(db: store.Reader) -> tuple[list[Passage], int]:
            rows = db.execute(
                "SELECT id, article_id, ordinal, start, end, text FROM passages WHERE article_id = ? "
                "ORDER BY ordinal LIMIT ? OFFSET ?",
                (article_id, limit, offset),
            ).fetchall()
            total = db.execute("SELECT count(*) FROM passages WHERE article_id = ?", (article_id,)).fetchone()[0]
            return [Passage(*row) for row in rows], int(total)

        return self._read(read)

    def _article_passages(self, db: store.Reader, article_id: str) -> list[Passage]:
        rows = db.execute(
            "SELECT id, article_id, ordinal, start, end, text FROM passages WHERE article_id = ? ORDER BY ordinal",
            (article_id,),
        ).fetchall()
        return [Passage(*row) for row in rows]

    def closest_ids(self, article_id: str, n: int = 5) -> list[str]:
        """Known article ids that look like ``article_id`` (for "did you mean")."""
        ids = self._read(lambda db: [row[0] for row in db.execute("SELECT id FROM articles")])
        lowered = article_id.lower()
        prefixed = [i for i in ids if i.lower().startswith(lowered) or lowered in i.lower()]
        close = difflib.get_close_matches(article_id, ids, n=n, cutoff=0.4)
        return list(dict.fromkeys(prefixed + close))[:n]

    def find_articles(self, words: str, limit: int = 5) -> list[ArticleMatch]:
        """Articles matching ``words``: title matches first, then by their best passage's BM25 score."""
        terms = set(self.tokenizer.terms(words))
        if not terms:
            return []
        return self._read(lambda db: self._matching_articles(db, words, terms, limit))

    def _matching_articles(self, db: store.Reader, words: str, terms: set[str], limit: int) -> list[ArticleMatch]:
        """``find_articles`` in one read transaction (the ranked passage ids are of the index read next)."""
        best: dict[str, float] = {}
        passage_of: dict[str, int] = {}
        for article_id, passage_id, score in self._ranked(db, words, depth=200):
            best.setdefault(article_id, score)
            passage_of.setdefault(article_id, passage_id)
        whole = self._holding_a_whole_word(db, words, list(passage_of.values()))
        best = {article_id: score for article_id, score in best.items() if passage_of[article_id] in whole}
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

    def _holding_a_whole_word(self, db: store.Reader, words: str, passage_ids: list[int]) -> set[int]:
        """The passages of ``passage_ids`` whose article holds every term of at least one word of ``words``.

        A word the tokenizer splits stands for one thing: "6b39" (part of an article id) is 6, b and 39,
        and an article that only mentions a 6 does not match it.
        """
        groups = [set(group) for group in map(self.tokenizer.terms, words.split()) if group]
        articles = self._articles
        if articles is None or not groups or all(len(group) == 1 for group in groups):
            return set(passage_ids)
        found = self._postings(db, set().union(*groups))
        numbers = articles.of[np.asarray(passage_ids, dtype=np.intp)]
        keep = np.zeros(len(numbers), dtype=bool)
        for group in groups:
            inside = np.ones(len(numbers), dtype=bool)
            for term in group:
                inside &= np.isin(numbers, articles.of[found[term][1].ids]) if term in found else False
            keep |= inside
        return {passage_id for passage_id, kept in zip(passage_ids, keep.tolist(), strict=True) if kept}

    def example_questions(self, n: int = 3) -> list[str]:
        """Example questions built from article titles (for help texts)."""

        def read(db: store.Reader) -> list[str]:
            if n not in self._examples:
                titles = self._longest_article_titles(db, n)
                self._examples[n] = [f"What does the corpus say about {t.rstrip('.…')}?" for t in titles if t]
            return list(self._examples[n])

        return self._read(read)

    def _longest_article_titles(self, db: store.Reader, n: int) -> list[str]:
        """Titles of the ``n`` articles with the most passages (ties: the earlier indexed first).

        From the in-memory passage -> article array: sorting the articles table by its
        passage count would read every article's text.
        """
        articles = self._articles
        if articles is None or articles.count == 0 or n <= 0:
            return []
        counts = articles.passages
        numbers = np.flatnonzero(counts)
        best = numbers[np.lexsort((numbers, -counts[numbers]))[:n]]
        first = [int(articles.first[number]) for number in best]
        marks = ",".join("?" * len(first))
        owner = dict(db.execute(f"SELECT id, article_id FROM passages WHERE id IN ({marks})", first).fetchall())
        ids = [owner[pid] for pid in first if pid in owner]
        if not ids:
            return []
        rows = db.execute(f"SELECT id, title FROM articles WHERE id IN ({','.join('?' * len(ids))})", ids)
        title = dict(rows.fetchall())
        return [title[i] for i in ids if title.get(i)]

    # -- stats -------------------------------------------------------------

    def stats(self) -> Stats:
        meta, (articles, passages) = self._read(
            lambda db: (
                self._meta,
                db.execute("SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages)").fetchone(),
            )
        )
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
