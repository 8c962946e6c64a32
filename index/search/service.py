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
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from corpusbot.index.engine import pair_sketches as pair_blobs
from corpusbot.index.engine import sketches as sketch_blobs
from corpusbot.index.engine import store
from corpusbot.index.engine.bm25 import BM25Params, Collection, Postings, QueryTerm, Scorer, idf, kernel, raw_idf
from corpusbot.index.engine.pair_sketches import PAIR_SKETCH_BLOB, pair_bit
from corpusbot.index.engine.sketches import DISTINCT_BLOB, SKETCH_BLOB, UNKNOWN, jaccard_upper_bound, sketches_of_sets
from corpusbot.index.errors import CorpusbotError, IndexMissing
from corpusbot.index.models import (
    AboutArticle,
    Answer,
    ArticleInfo,
    ArticleMatch,
    Contribution,
    DirectAnswer,
    Hit,
    Passage,
    Span,
    Stats,
    Token,
)
from corpusbot.index.search import watch
from corpusbot.index.search.answer_line import AnswerFinder, FoundAnswer, shown_as_line
from corpusbot.index.search.dates import published_date
from corpusbot.index.search.metadata_questions import parse_metadata_question
from corpusbot.index.search.query import SYNONYM_WEIGHT, ParsedQuery, Synonyms, WeightedTerm, parse_query
from corpusbot.index.search.rerank import (
    ANSWER_TYPE_BOOST,
    NEAR_DUPLICATE_JACCARD,
    contains_phrase,
    jaccard,
)
from corpusbot.index.search.watch import IndexedArticle, WatchCheck
from corpusbot.index.text.passages import sentence_spans
from corpusbot.index.text.tokenizer import Tokenizer, default_tokenizer

MAX_QUERY_CHARS = 1000
DEFAULT_K = 3
RERANK_DEPTH = 30  # BM25 candidates that get the second-stage signals (a fixed window keeps paging stable)
PHRASE_DEPTH = 1000  # with a quoted phrase, this many candidates are checked for it
NEAR_DUPLICATE_MATRIX_MAX = 64  # up to this many candidates, near-duplicate bounds are worked out for all pairs at once
CONFIDENT_COVERAGE = 0.5
SURE_KNOWN_WORDS = 2  # a question with words the corpus never mentions needs this many of its others in the passage
ARTICLE_WEIGHT = 1.0  # share of the whole article's BM25 added to a passage's score
PAIR_WEIGHT = 0.1  # bonus for two adjacent query words found adjacent, × the smaller idf
MAX_KNOWN_ARTICLES = 20_000  # articles whose citation details are remembered (~450 bytes each, measured: ~9 MB)
MAX_ABOUT = 3  # a question about "the article" that names none is answered for at most this many articles
ANSWER_REACH = 0.4  # a typed question's answer-holding passages rank first when they score this share of the best
_WHICH_ARTICLE = (
    "That asks about an article (its link, source, author, date or title), but no article matches the rest of "
    'the question; name it, e.g. "who wrote the article about the London talks?".'
)

_T = TypeVar("_T")
# The compiled second-stage helpers; None without the compiled module (or with one built before them).
_article_scores_of = getattr(kernel, "article_scores_of", None)
_near_pairs = getattr(kernel, "near_pairs", None)
_contains = getattr(kernel, "contains", None)
_with_pair_bit = getattr(kernel, "with_pair_bit", None)


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
    term_set: frozenset[str] | None = frozenset()  # its text's terms; None: not tokenized (not needed so far)
    answer: FoundAnswer | None = None  # who/when/where/how-many: the answer it holds (answer_line.find_answer)
    answer_type: str | None = None  # the type asked, when it holds an answer of it
    article: float = 0.0  # what its score got from its article's evidence
    proximity: float = 0.0  # … from the question's words found side by side
    lift: float = 0.0  # … to put it above the passages that hold no answer (``_answers_first``)

    @property
    def boosts(self) -> tuple[str, ...]:
        """What raised its score above BM25, as answers show it (written only for the passages shown)."""
        shown = []
        if self.article > 0:
            shown.append(f"article match +{self.article:.3f}")
        if self.proximity > 0:
            shown.append(f"adjacent query words +{self.proximity:.3f}")
        if self.answer_type is not None:
            shown.append(f"answer type {self.answer_type} ×{1 + ANSWER_TYPE_BOOST:g}")
        if self.lift > 0:
            shown.append(f"holds an answer: +{self.lift:.3f} (above passages without one)")
        return tuple(shown)


@dataclass
class _Ranking:
    unknown: tuple[str, ...]
    term_weights: dict[str, float]
    postings: dict[str, tuple[int, np.ndarray, np.ndarray]]
    candidates: list[_Candidate] = field(default_factory=list)
    scored_terms: list[tuple[WeightedTerm, float]] = field(default_factory=list)
    confident: bool = False
    phrase_miss: bool = False
    window: dict[int, Passage] = field(default_factory=dict)  # the rerank window's passages (not their articles)
    # The best candidate's tokens of the question's words (every one of them), when confidence looked for them.
    best_tokens: tuple[int, list[Token]] | None = None

    def tokens_of(self, candidate: _Candidate) -> list[Token] | None:
        """``best_tokens`` when they are this candidate's."""
        return self.best_tokens[1] if self.best_tokens and self.best_tokens[0] == candidate.passage_id else None


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
    norms: dict[tuple[float, float], np.ndarray] = field(default_factory=dict)  # by (k1, b): ``length_norm``

    def length_norm(self, k1: float, b: float) -> np.ndarray:
        """BM25's length normalisation of every article, ``k1 × (1 − b + b × length / average length)`` (once)."""
        norm = self.norms.get((k1, b))
        if norm is None:
            norm = self.norms[(k1, b)] = k1 * (1 - b + b * self.length / self.average_length)
        return norm

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
        # In the ids' own type: another one would make searchsorted convert every id first.
        first = np.minimum(self.first[wanted], np.iinfo(ids.dtype).max).astype(ids.dtype)
        last = np.maximum(self.last[wanted], 0).astype(ids.dtype)  # number 0 (no passages): first > last
        lo = np.searchsorted(ids, first)
        counts = np.maximum(np.searchsorted(ids, last, side="right").astype(np.intp) - lo, 0)
        # every wanted article's run of postings, one after the other, summed by article in one pass
        starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        at = np.arange(len(starts)) + starts
        return np.bincount(np.repeat(np.arange(len(lo)), counts), weights=tfs[at], minlength=len(lo))


def _native(ids: np.ndarray, tfs: np.ndarray) -> bool:
    """Whether the compiled module can read these postings as they are (native uint32 ids, native tfs)."""
    return ids.dtype == np.uint32 and ids.dtype.isnative and tfs.dtype.isnative


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


def _asked_weights(ranking: _Ranking) -> dict[str, float]:
    """The question's words by scoring weight, for answer finding: its own, an earlier question's (a follow-up) and
    their synonyms (at their lower weight: "work will begin in August" answers "when does work start")."""
    return {term.term: weight for term, weight in ranking.scored_terms}


def _said_otherwise(parsed: ParsedQuery, present: AbstractSet[str]) -> dict[str, float]:
    """The question's words whose synonyms ``present`` holds, each with the share of its weight they stand for
    (a synonym's weight, up to SYNONYM_WEIGHT: "boss" said as "chief executive" counts half)."""
    shares: dict[str, float] = {}
    for term in parsed.terms:
        if term.origin == "synonym" and term.term in present:
            for word in term.source.split():
                shares[word] = min(SYNONYM_WEIGHT, shares.get(word, 0.0) + term.weight)
    return shares


def _answers_first(scored: list[_Candidate]) -> list[_Candidate]:
    """For a who/when/where/how-many question, the passages holding an answer above those that only match words.

    Only answers within reach count: a passage scoring below ANSWER_REACH × the best score is left where it is.
    Each promoted passage's score is lifted by one amount (the gap to the best passage left below), so the
    scores stay in ranking order and the promoted keep their order among themselves.
    """
    if not scored:
        return scored
    floor = ANSWER_REACH * scored[0].score
    promoted = [c for c in scored if c.answer is not None and c.score >= floor]
    if not promoted:
        return scored
    chosen = {id(c) for c in promoted}
    others = [c for c in scored if id(c) not in chosen]
    best_other = max((c.score for c in others), default=0.0)
    lift = max(0.0, best_other - promoted[-1].score)
    if lift > 0:
        for candidate in promoted:
            candidate.score = max(candidate.score + lift, best_other)  # never a rounding error below it
            candidate.lift += lift
    return promoted + others


def _answer_line(
    parsed: ParsedQuery, ranking: _Ranking, hits: tuple[Hit, ...], offset: int, tokenizer: Tokenizer
) -> DirectAnswer | None:
    """The answer found in the best passage of a confident who/when/where/how-many answer, when
    ``answer_line.shown_as_line`` says it is sure enough; None when unsure."""
    if offset or not hits or not ranking.confident or parsed.answer_type is None:
        return None
    found = ranking.candidates[0].answer
    best = hits[0]
    if found is None or not shown_as_line(found, best.passage.text, _asked_weights(ranking), tokenizer):
        return None
    return DirectAnswer(best.passage.text[found.span.start : found.span.end], parsed.answer_type, best, found.span)


def _tokenizer_notice(built_with: str | None, current: str) -> str | None:
    """What to tell users of an index built by another tokenizer (its terms differ for some words)."""
    if not built_with or built_with == current:
        return None
    return (
        "The index was built with another version of the tokenizer, so some words may not match; "
        "an admin should run `corpusbot index` (it rebuilds the index)."
    )


def _collapse_near_duplicates(scored: list[_Candidate], pairs: list[tuple[int, int]] | None = None) -> list[_Candidate]:
    """Best first, each candidate whose term set is a near-duplicate of a better one's counted on that one instead.

    That is the first better candidate still kept whose set is a near-duplicate. Jaccard (``rerank.jaccard``) is
    worked out only for the pairs that two cheap upper bounds of it leave possible (``pairs``: the ``(later,
    better)`` positions in ``scored`` that the stored sketches leave possible, else worked out from the sets); most
    pairs of a rerank window are ruled out. The longer window of a quoted phrase is compared pair by pair.
    """
    if len(scored) > NEAR_DUPLICATE_MATRIX_MAX:
        return _collapse_pair_by_pair(scored)
    sets = [candidate.term_set or frozenset() for candidate in scored]
    if pairs is None:
        laters, betters = np.nonzero(np.tril(_maybe_near(*sketches_of_sets(sets)), k=-1))
        pairs = list(zip(laters.tolist(), betters.tolist(), strict=True))
    near: dict[int, list[int]] = {}  # later -> the better ones it is a near-duplicate of
    for later, better in pairs:
        if jaccard(sets[later], sets[better]) >= NEAR_DUPLICATE_JACCARD:
            near.setdefault(later, []).append(better)
    if not near:
        return scored
    kept = [True] * len(scored)
    for later in sorted(near):
        for better in sorted(near[later]):
            if kept[better]:
                scored[better].duplicates += 1
                kept[later] = False
                break
    return [candidate for candidate, keep in zip(scored, kept, strict=True) if keep]


def _pair_bonus_bounds(held: list[tuple[float, set[int]]], count: int) -> list[float]:
    """For each of ``count`` candidates, the most the adjacent-word bonus can give it: ``PAIR_WEIGHT`` × the weight
    of each question pair it may hold (``held``: ``SearchService._pairs_held``)."""
    bounds = [0.0] * count
    weights_at: dict[int, list[float]] = {}  # (most candidates may hold no pair: they keep 0.0)
    for weight, present in held:
        for at in present:
            weights_at.setdefault(at, []).append(weight)
    for at, weights in weights_at.items():
        bounds[at] = PAIR_WEIGHT * math.fsum(weights)
    return bounds


def _needing_terms(ids: np.ndarray, near: list[tuple[int, int]], held: list[tuple[float, set[int]]]) -> set[int]:
    """The passages of ``ids`` whose terms the second stage needs: those that may hold a question pair (``held``),
    and those of the ``near`` pairs (positions in ``ids``)."""
    positions = {at for pair in near for at in pair}
    for _, present in held:
        positions |= present
    return {int(ids[at]) for at in positions}


def _in_order(
    pairs: list[tuple[int, int]], head: list[tuple[int, float]], scored: list[_Candidate]
) -> list[tuple[int, int]]:
    """``pairs`` of positions in ``head`` as ``(later, better)`` positions in ``scored`` (every one of them there)."""
    position = {candidate.passage_id: at for at, candidate in enumerate(scored)}
    at = [position.get(pid, -1) for pid, _ in head]
    return [(max(at[i], at[j]), min(at[i], at[j])) for i, j in pairs]


def _maybe_near(sketches: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``maybe[i, j]``: whether sets ``i`` and ``j`` may be near-duplicates (their sizes and sketches allow it)."""
    sizes = sizes.astype(np.int64)
    a, b = sizes[:, None], sizes[None, :]
    # Jaccard(a, b) <= min(|a|, |b|) / max(|a|, |b|): sets of very different sizes are never near-duplicates.
    maybe = ~(np.minimum(a, b) < NEAR_DUPLICATE_JACCARD * np.maximum(a, b))
    if maybe.any():
        maybe &= ~(jaccard_upper_bound(sketches, sizes) < NEAR_DUPLICATE_JACCARD - 1e-9)  # a margin for rounding
    return maybe


def _collapse_pair_by_pair(scored: list[_Candidate]) -> list[_Candidate]:
    """``_collapse_near_duplicates`` one pair at a time (for windows too long for one matrix of all pairs)."""
    kept: list[tuple[int, frozenset[str], _Candidate]] = []
    for candidate in scored:
        terms = candidate.term_set or frozenset()
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


def _rows_in(db: store.Reader, sql: str, values: Sequence[Any]) -> list[Any]:
    """The rows of ``sql`` (a query with one ``IN ({marks})``) for all of ``values``, in as many statements as the
    connection's limit of SQL variables needs (a watch after ``--full`` at 1M passages can match more)."""
    limit = db.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    rows: list[Any] = []
    for start in range(0, len(values), limit):
        chunk = values[start : start + limit]
        rows.extend(db.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall())
    return rows


def _clean_question(question: str) -> tuple[str, list[str]]:
    """NFC (as the corpus is read), whitespace collapsed, control characters dropped, length capped."""
    notices = []
    composed = unicodedata.normalize("NFC", question)
    printable = composed if composed.isprintable() else "".join(ch if ch.isprintable() else " " for ch in composed)
    query = " ".join(printable.split())
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
        postings_cache_bytes: int = store.DEFAULT_POSTINGS_CACHE_BYTES,
    ) -> None:
        """``postings_cache_bytes``: memory for decoded postings kept between questions (``store.PostingsCache``)."""
        self.db_path = Path(db_path)
        self.tokenizer = tokenizer or default_tokenizer()
        self.synonyms = Synonyms.load(self.tokenizer, synonyms_path)
        self._db: store.Reader | None = None  # None: to be opened before the next question
        self._reopened = False  # the connection is new: check the whole metadata before trusting what is loaded
        self._closed = False
        self._seen: tuple[int, int, int, int] | None = None  # the file's state when last looked at (FileState.db)
        self._wal_header: bytes | None = None  # and its WAL index header then (store.wal_index_header)
        self._postings_cache = store.PostingsCache(postings_cache_bytes)
        self._known_articles: dict[str, ArticleInfo] = {}  # per generation: title, URL, source, date (the citations)
        self._lock = threading.RLock()
        self._build: tuple[object, object] | None = None  # (generation, build_id) of what is loaded
        self._generation: int | None = None
        self._stored: tuple[str, str, str | None] | None = None  # as stored: to see cheaply it is unchanged
        self._meta: dict = {}
        self._scorer: Scorer | None = None
        self._articles: _Articles | None = None
        self._sketches: tuple[np.ndarray, np.ndarray] | None = None  # by passage id: term-set sketch, distinct terms
        self._pair_sketches: bytes | None = None  # by passage id: adjacent-pair sketch (engine.pair_sketches)
        self.compiled_second_stage = True  # False: numpy only (the same results; for tests and comparisons)
        self._examples: dict[int, list[str]] = {}  # per generation: the query scans and sorts every article
        self._published_days: np.ndarray | None = None  # per generation: by article number, its published day
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
        rows = dict(
            db.execute(
                "SELECT name, data FROM blobs WHERE name IN (?, ?, ?)", (SKETCH_BLOB, DISTINCT_BLOB, PAIR_SKETCH_BLOB)
            ).fetchall()
        )
        same_terms = meta.get("tokenizer") == self.tokenizer.name  # else their terms are not the ones texts give now
        self._sketches = (
            sketch_blobs.from_blobs(rows.get(SKETCH_BLOB), rows.get(DISTINCT_BLOB), meta, len(doc_len))
            if same_terms
            else None
        )
        self._pair_sketches = (
            pair_blobs.from_blob(rows.get(PAIR_SKETCH_BLOB), meta, len(doc_len)) if same_terms else None
        )
        self._postings_cache.clear()
        self._known_articles.clear()
        self._examples = {}
        self._published_days = None
        self._tokenizer_notice = _tokenizer_notice(meta.get("tokenizer"), self.tokenizer.name)
        self._meta = meta
        self._generation = meta.get("generation")
        self._build = (meta.get("generation"), meta.get("build_id"))

    @property
    def generation(self) -> int | None:
        return self._read(lambda db: self._generation)

    # -- questions ---------------------------------------------------------

    def ask(
        self,
        question: str,
        k: int = DEFAULT_K,
        offset: int = 0,
        explain: bool = False,
        context: str | None = None,
        *,
        since: date | None = None,
        until: date | None = None,
    ) -> Answer:
        """The top ``k`` passages for ``question`` after skipping ``offset``.

        ``since`` / ``until`` (inclusive): only passages of articles published on those days or between
        them (:func:`~corpusbot.index.search.dates.published_date`); with either, an article without a
        readable ``published`` date is left out.

        ``context``: the earlier question when ``question`` follows up on it (a thread reply, a DM soon
        after); its words the follow-up lacks are searched at ``query.CONTEXT_WEIGHT`` (0.3) of a word's
        weight, in full when the follow-up has no words of its own.
        """
        query, notices = _clean_question(question)
        context_query = _clean_question(context)[0] if context else None
        parsed = parse_query(query, self.tokenizer, self.synonyms, context_query)
        metadata = parse_metadata_question(query)
        if metadata is not None:  # the article is found by the rest of the question, not by "link" or "author"
            parsed = parse_query(metadata.rest, self.tokenizer, self.synonyms, context_query)

        def read(
            db: store.Reader,
        ) -> tuple[_Ranking, dict[int, Passage], dict[str, ArticleInfo], str | None, tuple[AboutArticle, ...]]:
            ranking = self._rank(db, parsed, offset + k + 1, self._published_between(db, since, until))
            wanted = [c.passage_id for c in ranking.candidates[offset : offset + k]]
            read_already = ranking.window
            passages = (
                {pid: read_already[pid] for pid in wanted}
                if all(pid in read_already for pid in wanted)
                else self._passages(db, wanted)
            )
            articles = self._cited_articles(db, {p.article_id for p in passages.values()})
            about = self._about_articles(db, metadata.fields, parsed, ranking) if metadata else ()
            return ranking, passages, articles, self._tokenizer_notice, about

        ranking, passages, articles, stale, about = self._read(read)
        if metadata is not None and not about:
            notices.append(_WHICH_ARTICLE)
        page = ranking.candidates[offset : offset + k]
        if since is not None or until is not None:
            span = f"from {since} " if since else ""
            span += f"until {until}" if until else ""
            notices.append(f"Only articles published {span.strip()}; articles without a published date are left out.")
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
                matches=matches,
                highlight=highlight,
                duplicates=c.duplicates,
                bm25=c.bm25,
                explanation=self._explain(ranking, c.passage_id) if explain else (),
                boosts=c.boosts,
            )
            for rank, c in enumerate(page, start=1)
            for matches, highlight in [self._highlights(passages[c.passage_id].text, weights, ranking.tokens_of(c))]
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
            context=parsed.context,
            about=about,
            answer=_answer_line(parsed, ranking, hits, offset, self.tokenizer),
        )

    def _about_articles(
        self, db: store.Reader, fields: tuple[str, ...], parsed: ParsedQuery, ranking: _Ranking
    ) -> tuple[AboutArticle, ...]:
        """The metadata ``fields`` of the article the question points to.

        That is the best passage's article when the article as a whole holds at least CONFIDENT_COVERAGE of
        the question's weight (a story is named by words from anywhere in it). A question that names no
        article ("link to the original article") on an index where at most MAX_ABOUT articles have any of the
        fields gets each of them; on a bigger one, none (the service adds a notice asking which).
        """
        if not parsed.terms:
            marks = " OR ".join(f"({name} IS NOT NULL AND {name} != '')" for name in fields)
            ids = [row[0] for row in db.execute(f"SELECT id FROM articles WHERE {marks} LIMIT {MAX_ABOUT + 1}")]
            return self._about(db, ids, fields) if len(ids) <= MAX_ABOUT else ()
        if not ranking.candidates:
            return ()
        best = ranking.candidates[0].passage_id
        article_id = self._article_ids(db, [best])[best]
        row = db.execute("SELECT text FROM articles WHERE id = ?", (article_id,)).fetchone()
        if row is None or not self._covers(parsed, row[0], ranking.term_weights):
            return ()
        return self._about(db, [article_id], fields)

    def _about(self, db: store.Reader, ids: list[str], fields: tuple[str, ...]) -> tuple[AboutArticle, ...]:
        infos = self._article_infos(db, set(ids))
        authors = dict(_rows_in(db, "SELECT id, author FROM articles WHERE id IN ({marks})", ids))
        return tuple(AboutArticle(infos[i], authors.get(i), fields) for i in ids if i in infos)

    def _covers(self, parsed: ParsedQuery, text: str, weights: dict[str, float]) -> bool:
        """Whether ``text`` holds at least CONFIDENT_COVERAGE of the asked words' weight (unknown words weigh
        the average known one, as in ``_is_confident``)."""
        asked = list(dict.fromkeys(parsed.asked_terms))
        known = [weights[t] for t in asked if t in weights]
        if not known:
            return False
        typical = sum(known) / len(known)
        present = set(self.tokenizer.terms(text))
        total = sum(weights.get(t, typical) for t in asked)
        covered = sum(weights[t] for t in asked if t in weights and t in present)
        return total > 0 and covered / total >= CONFIDENT_COVERAGE

    def rank(self, question: str, depth: int) -> list[tuple[str, int, float]]:
        """``(article id, passage id, score)`` of the best ``depth`` passages, best first (for evaluation)."""
        return self._read(lambda db: self._ranked(db, question, depth))

    def _ranked(self, db: store.Reader, question: str, depth: int) -> list[tuple[str, int, float]]:
        query, _ = _clean_question(question)
        parsed = parse_query(query, self.tokenizer, self.synonyms)
        ranking = self._rank(db, parsed, depth)
        owners = self._article_ids(db, [c.passage_id for c in ranking.candidates[:depth]])
        return [(owners[c.passage_id], c.passage_id, c.score) for c in ranking.candidates[:depth]]

    def _rank(self, db: store.Reader, parsed: ParsedQuery, depth: int, allowed: np.ndarray | None = None) -> _Ranking:
        """``allowed``: by article number, whether its passages may be found (None: all of them)."""
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
        if allowed is not None and self._articles is not None:
            excluded.extend(self._outside(allowed, [postings[t.term][1] for t in known]))
        exclude = np.concatenate(excluded).astype(np.intp) if excluded else None
        window = PHRASE_DEPTH if parsed.phrases else RERANK_DEPTH
        top = self._scorer.top(scored, max(depth, window), exclude) or self._zero_score_matches(
            known, postings, max(depth, window), exclude
        )
        head, tail = top[:window], top[window:]
        reranked = None if tail else self._rerank_lazily(db, parsed, head, ranking, depth)
        if reranked is None:
            ranking.window = self._passages(db, [pid for pid, _ in head])
            reranked = self._rerank(parsed, head, ranking)
        if parsed.phrases:
            ranking.phrase_miss = not reranked
            tail = []
        ranking.candidates = reranked + [_Candidate(pid, score, score) for pid, score in tail]
        if reranked:
            answered = parsed.answer_type is not None and reranked[0].answer is not None
            ranking.confident = self._is_confident(
                parsed, self._words_held(parsed, ranking, reranked[0]), raw, answered
            )
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

    def _rerank(self, parsed: ParsedQuery, head: list[tuple[int, float]], ranking: _Ranking) -> list[_Candidate]:
        """The second stage over every candidate of the window (their passages are in ``ranking.window``).

        A passage is tokenized only when something needs its terms: a quoted phrase, the adjacent-word bonus (its
        postings hold both words of a pair of the question), a near-duplicate check the stored sketches leave open
        (or none stored), and later the confidence of the best.
        """
        ids = np.fromiter((pid for pid, _ in head), dtype=np.intp, count=len(head))
        articles = self._article_evidence(ranking, ids)
        near = None if parsed.phrases else self._maybe_near_pairs(ids)
        read = None if near is None else _needing_terms(ids, near, self._pairs_held(parsed, ranking, ids))
        adjacent = _adjacent_pairs(parsed)
        finder = self._answer_finder(parsed, ranking)
        scored = []
        for pid, score in head:
            candidate = self._second_stage(
                parsed, ranking, pid, score, articles.get(pid, 0.0), adjacent, finder, read is None or pid in read
            )
            if candidate is not None:
                scored.append(candidate)
        scored.sort(key=lambda c: (-c.score, c.passage_id))
        ordered = _answers_first(scored)
        return _collapse_near_duplicates(ordered, None if near is None else _in_order(near, head, ordered))

    def _words_held(self, parsed: ParsedQuery, ranking: _Ranking, candidate: _Candidate) -> AbstractSet[str]:
        """The question's words (its own, an earlier question's, their synonyms) that the candidate's text holds, for
        ``_is_confident``: from its terms when the second stage tokenized it, else found in its text now."""
        if candidate.term_set is not None:
            return candidate.term_set
        wanted = set(parsed.asked_terms) | {term.term for term in parsed.terms}
        found = self.tokenizer.tokens_of(ranking.window[candidate.passage_id].text, wanted)
        ranking.best_tokens = (candidate.passage_id, found)  # its highlights need no second scan
        return {token.term for token in found}

    def _second_stage(
        self,
        parsed: ParsedQuery,
        ranking: _Ranking,
        pid: int,
        score: float,
        article: float,
        pairs: set[tuple[str, str]],
        finder: AnswerFinder | None,
        tokenize: bool = True,
    ) -> _Candidate | None:
        """One candidate's final score from its passage's text: BM25 ``score`` plus ``article`` (its article's
        evidence) plus the adjacent-word bonus, times the answer-type boost; None when it lacks a quoted phrase.

        ``tokenize`` False: the text is not tokenized (its postings lack a word of each pair of the question, so
        there is no adjacent-word bonus, and nothing else needs its terms yet).
        """
        weights = ranking.term_weights
        text = ranking.window[pid].text
        terms = self.tokenizer.terms(text) if tokenize else []
        if parsed.phrases and not all(contains_phrase(terms, phrase) for phrase in parsed.phrases):
            return None
        term_set = frozenset(terms) if tokenize else None
        proximity = 0.0
        if term_set is not None and pairs:
            # a question's pair is looked for (a scan in C) only in passages holding both of its words
            found_pairs = [
                (a, b) for a, b in pairs if a in term_set and b in term_set and (a, b) in itertools.pairwise(terms)
            ]
            if found_pairs:
                # fsum: the same in any order (a set's order, and so a plain sum's last bit, varies between processes)
                proximity = PAIR_WEIGHT * math.fsum(min(weights[a], weights[b]) for a, b in found_pairs)
        found = finder(text) if finder is not None else None
        final = (score + article + proximity) * (1.0 + ANSWER_TYPE_BOOST if found is not None else 1.0)
        return _Candidate(
            pid,
            final,
            score,
            term_set=term_set,
            answer=found,
            answer_type=parsed.answer_type if found is not None else None,
            article=article,
            proximity=proximity,
        )

    def _answer_finder(self, parsed: ParsedQuery, ranking: _Ranking) -> AnswerFinder | None:
        """The candidates' answer search for a who/when/where/how-many question, by the question's words' weights."""
        if not parsed.answer_type:
            return None
        return AnswerFinder(parsed.answer_type, _asked_weights(ranking), self.tokenizer, parsed.text)

    def _maybe_near_pairs(self, passage_ids: list[int] | np.ndarray) -> list[tuple[int, int]] | None:
        """The pairs ``(i, j)``, ``i > j``, of positions in ``passage_ids`` that may be near-duplicates, by the stored
        sizes and sketches of their term sets (``_maybe_near``); None when the index has not all of them."""
        if self._sketches is None or len(passage_ids) == 0:
            return None
        sketches, distinct = self._sketches
        ids = np.asarray(passage_ids, dtype=np.intp)
        if self.compiled_second_stage and _near_pairs is not None:
            return _near_pairs(sketches, distinct, ids, NEAR_DUPLICATE_JACCARD, UNKNOWN)
        if int(ids.max()) >= min(len(distinct), len(sketches)) or (distinct[ids] == UNKNOWN).any():
            return None
        maybe = np.tril(_maybe_near(sketches[ids], distinct[ids].astype(np.int64)), k=-1)
        return [(int(i), int(j)) for i, j in zip(*np.nonzero(maybe), strict=True)]

    def _rerank_lazily(
        self, db: store.Reader, parsed: ParsedQuery, head: list[tuple[int, float]], ranking: _Ranking, depth: int
    ) -> list[_Candidate] | None:
        """``_rerank``'s best ``depth`` candidates and their order, reading and tokenizing only the passages that
        can reach them; None when that is not known to be exact here (then ``_rerank`` does all of them).

        For a question without a quoted phrase or an answer type, a candidate's final score is its BM25 score plus
        its article's evidence (from the postings) plus an adjacent-word bonus that only its text gives. The bonus
        is at most ``PAIR_WEIGHT`` × the question's pairs whose words the postings show in the passage, so each
        candidate has a lower and an upper bound without its text. The near-duplicate collapse is bounded by the
        stored sketches (``engine.sketches``): the ``involved`` candidates, those that may be a near-duplicate of
        another, are at most all it can remove. A candidate whose upper bound is below the ``depth +
        involved``-th best lower bound cannot reach the best ``depth + involved``, of which at least ``depth``
        are kept; only the others and the involved ones are read and scored exactly.
        """
        if parsed.phrases or parsed.answer_type is not None or len(head) <= depth:
            return None
        ids = np.fromiter((pid for pid, _ in head), dtype=np.intp, count=len(head))
        pairs = self._maybe_near_pairs(ids)
        if pairs is None:
            return None
        involved = {at for pair in pairs for at in pair}
        reach = depth + len(involved)
        if reach >= len(head):
            return None
        articles = self._article_evidence(ranking, ids)
        lower = [score + articles.get(pid, 0.0) for pid, score in head]
        held = self._pairs_held(parsed, ranking, ids)
        upper = [low + extra for low, extra in zip(lower, _pair_bonus_bounds(held, len(ids)), strict=True)]
        floor = sorted(lower, reverse=True)[reach - 1]
        chosen = [i for i in range(len(head)) if upper[i] >= floor or i in involved]
        ranking.window = self._passages(db, [head[i][0] for i in chosen])
        read = _needing_terms(ids, pairs, held)
        adjacent = _adjacent_pairs(parsed)
        finder = self._answer_finder(parsed, ranking)
        scored = []
        for i in chosen:
            pid, score = head[i]
            candidate = self._second_stage(
                parsed, ranking, pid, score, articles.get(pid, 0.0), adjacent, finder, pid in read
            )
            if candidate is not None:
                scored.append(candidate)
        scored.sort(key=lambda c: (-c.score, c.passage_id))
        kept = _collapse_near_duplicates(scored, _in_order(pairs, head, scored))  # the involved are all scored
        # The best ``reach`` are all among the chosen, ahead of every candidate not chosen; what they keep is exact.
        best = {c.passage_id for c in scored[:reach]}
        return [c for c in kept if c.passage_id in best]

    def _pairs_held(self, parsed: ParsedQuery, ranking: _Ranking, ids: np.ndarray) -> list[tuple[float, set[int]]]:
        """Each adjacent pair of the question's known words: its bonus weight (the smaller idf) and the positions in
        ``ids`` of the passages that may hold the pair: their stored pair sketch does not rule it out, and their
        postings hold both words (their text's words and their title's, so no pair found in a text is missed).

        The sketches first: a word's postings (a binary search in a long array) are looked up only for the passages
        some pair of that word may be in. Plain Python over the window's ~30 ids: less work than numpy's calls.
        """
        weights = ranking.term_weights
        pairs = [(a, b) for a, b in _adjacent_pairs(parsed) if a in weights and b in weights]
        if not pairs:
            return []
        id_list = ids.tolist()
        sketches, size = self._pair_sketches, pair_blobs.BYTES
        if sketches is None or not id_list or max(id_list) >= len(sketches) // size:
            everywhere = set(range(len(id_list)))
            maybe = [everywhere for _ in pairs]
        elif self.compiled_second_stage and _with_pair_bit is not None:
            bits = [pair_bit(a, b) for a, b in pairs]
            maybe = [set(positions) for positions in _with_pair_bit(sketches, ids.astype(np.intp, copy=False), bits)]
        else:
            maybe = [
                {i for i, pid in enumerate(id_list) if pair_blobs.may_hold(sketches, pid, pair_bit(a, b))}
                for a, b in pairs
            ]
        wanted: dict[str, set[int]] = {}
        for (a, b), positions in zip(pairs, maybe, strict=True):
            wanted.setdefault(a, set()).update(positions)
            wanted.setdefault(b, set()).update(positions)
        holding: dict[str, set[int]] = {}
        for term, positions in wanted.items():
            order = sorted(positions, key=id_list.__getitem__)
            holds = self._postings_hold(ranking.postings[term][1], [id_list[i] for i in order])
            holding[term] = {i for i, hit in zip(order, holds, strict=True) if hit}
        return [
            (min(weights[a], weights[b]), positions & holding[a] & holding[b])
            for (a, b), positions in zip(pairs, maybe, strict=True)
        ]

    def _postings_hold(self, postings: np.ndarray, passage_ids: list[int]) -> list[bool]:
        """For each of ``passage_ids`` (ascending), whether the ascending ``postings`` hold it."""
        if self.compiled_second_stage and _contains is not None and postings.dtype == np.uint32:
            return _contains(postings, passage_ids)
        looked_up = np.array(passage_ids, dtype=postings.dtype)
        at = np.minimum(np.searchsorted(postings, looked_up), len(postings) - 1)
        return (postings[at] == looked_up).tolist()

    def _article_evidence(self, ranking: _Ranking, passage_ids: np.ndarray) -> dict[int, float]:
        """ARTICLE_WEIGHT × BM25 of each candidate's whole article (its passages' terms together).

        An article's passages have consecutive ids, so in a term's postings each
        article is one run: its document frequency over articles is the number of
        runs, and its term frequency in an article the sum over that run.
        """
        articles = self._articles
        if articles is None or not len(passage_ids) or articles.count == 0:
            return {}
        p = self._scorer.collection.params if self._scorer else BM25Params()
        weighted = []  # (weight × article idf, ids, tfs) of each term found in some article
        for term, _ in ranking.scored_terms:
            _, ids, tfs = ranking.postings[term.term]
            df = articles.document_frequency(term.term, ids)
            if df > 0:
                weighted.append((term.weight * math.log(1 + (articles.count - df + 0.5) / (df + 0.5)), ids, tfs))
        norms = articles.length_norm(p.k1, p.b)
        if self.compiled_second_stage and _article_scores_of is not None and all(_native(i, t) for _, i, t in weighted):
            compiled = [(w, ids, None if tfs.strides == (0,) else tfs, tfs.itemsize) for w, ids, tfs in weighted]
            window = np.ascontiguousarray(passage_ids, dtype=np.intp)
            scores = _article_scores_of(
                compiled, articles.of, articles.first, articles.last, norms, p.k1 + 1, ARTICLE_WEIGHT, window
            )
            return dict(zip(window.tolist(), scores, strict=True))
        numbers = articles.of[passage_ids].tolist()
        wanted = np.array(sorted(set(numbers)), dtype=np.intp)
        totals = np.zeros(len(wanted))
        norm = norms[wanted]
        for weight, ids, tfs in weighted:
            tf = articles.term_frequencies(ids, tfs, wanted)
            totals += weight * tf * (p.k1 + 1) / (tf + norm)
        per_article = dict(zip(wanted.tolist(), (ARTICLE_WEIGHT * totals).tolist(), strict=True))
        return {pid: per_article[number] for pid, number in zip(passage_ids.tolist(), numbers, strict=True)}

    def _is_confident(
        self, parsed: ParsedQuery, present: AbstractSet[str], raw: dict[str, float], answered: bool = False
    ) -> bool:
        """Whether the best passage (``present``: its text's terms) covers at least half of the question's
        informative weight.

        A term found in over half the passages (raw idf <= 0) carries no weight, and a word the corpus never
        mentions weighs as much as the question's average known word. When the question has such words, one
        known word is too little evidence ("what is the price of gold" on a corpus without gold is not half
        answered by a passage about prices): the passage must hold at least SURE_KNOWN_WORDS informative words
        of the question, or (``answered``) hold an answer of the asked type beside its words.
        """
        asked = list(dict.fromkeys(parsed.asked_terms))
        known = [max(raw[t], 0.0) for t in asked if t in raw]
        if not known:
            return False
        typical = sum(known) / len(known)
        total = sum(max(raw[t], 0.0) if t in raw else typical for t in asked)
        held = [t for t in asked if t in raw and t in present and raw[t] > 0]
        if len(known) < len(asked) and len(held) < SURE_KNOWN_WORDS and not answered:
            return False
        covered = sum(raw[t] for t in held)
        for term, share in _said_otherwise(parsed, present).items():
            if term in asked and term not in held:
                covered += share * (max(raw[term], 0.0) if term in raw else typical)
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
            parts.append(Contribution(term.term, term.weight, term_idf / term.weight, tf, score, term.origin))
        return tuple(parts)

    def _highlights(
        self, text: str, weights: dict[str, float], found: list[Token] | None = None
    ) -> tuple[tuple[Span, ...], Span | None]:
        """Where the question's words are in ``text``, and the sentence holding the most weight of them; of equal
        ones, the first (None when no sentence holds any).

        One pass of the tokenizer: a sentence's words are the passage's words inside its span (sentences end at
        punctuation before whitespace, where no word runs on). ``fsum``: the weights of a set, summed in the set's
        order, could differ in the last bit from process to process (the order follows the string hashes), and so
        could which of two equal sentences is highlighted.
        """
        if found is None:
            found = self.tokenizer.tokens_of(text, weights)
        else:  # the tokens of more words than these: the ones of these, in the same order
            found = [token for token in found if token.term in weights]
        matches = tuple(Span(token.start, token.end) for token in found)
        best: tuple[float, Span] | None = None
        at = 0
        for span in sentence_spans(text):
            while at < len(found) and found[at].start < span.start:
                at += 1
            inside = set()
            while at < len(found) and found[at].end <= span.end:
                inside.add(found[at].term)
                at += 1
            value = math.fsum(weights[term] for term in inside)
            if value > 0 and (best is None or value > best[0]):
                best = (value, span)
        return matches, best[1] if best else None

    def _postings(self, db: store.Reader, terms: set[str]) -> dict[str, tuple[int, Postings]]:
        return self._postings_cache.get(db, terms)

    def _article_ids(self, db: store.Reader, ids: list[int]) -> dict[int, str]:
        return dict(_rows_in(db, "SELECT id, article_id FROM passages WHERE id IN ({marks})", ids))

    def _passages(self, db: store.Reader, ids: list[int]) -> dict[int, Passage]:
        rows = _rows_in(db, "SELECT id, article_id, ordinal, start, end, text FROM passages WHERE id IN ({marks})", ids)
        return {row[0]: Passage(*row) for row in rows}

    def _article_infos(self, db: store.Reader, ids: set[str]) -> dict[str, ArticleInfo]:
        """The articles ``ids`` (those the index has), remembered for this index generation: a page's articles come
        back often, and each costs two lookups in the big ``articles`` rows."""
        found = {article_id: info for article_id in ids if (info := self._known_articles.get(article_id))}
        missing = [article_id for article_id in ids if article_id not in found]
        if not missing:
            return found
        rows = _rows_in(db, "SELECT id, title, url, source, published FROM articles WHERE id IN ({marks})", missing)
        if len(self._known_articles) + len(missing) > MAX_KNOWN_ARTICLES:
            self._known_articles.clear()
        for row in rows:
            found[row[0]] = info = ArticleInfo(*row)
            if len(self._known_articles) < MAX_KNOWN_ARTICLES:  # a watch after `--full` may look up every article
                self._known_articles[row[0]] = info
        return found

    def _cited_articles(self, db: store.Reader, ids: set[str]) -> dict[str, ArticleInfo]:
        """The articles ``ids`` as citations: one whose row is gone (a damaged index; `corpusbot check` names it)
        is still cited, by its id."""
        articles = self._article_infos(db, ids)
        articles.update((gone, ArticleInfo(gone, gone, None, None, None)) for gone in ids - articles.keys())
        return articles

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

    def article_urls(self) -> list[tuple[str, str]]:
        """(article id, URL) of every article that has a URL, in id order (for link unfurls and the manifest)."""
        return self._read(
            lambda db: [
                (str(row[0]), str(row[1]))
                for row in db.execute("SELECT id, url FROM articles WHERE url IS NOT NULL AND url != '' ORDER BY id")
            ]
        )

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

    # -- dates -------------------------------------------------------------

    def _published_between(self, db: store.Reader, since: date | None, until: date | None) -> np.ndarray | None:
        """By article number: whether the article was published from ``since`` to ``until`` (None: no filter)."""
        if since is None and until is None:
            return None
        days = self._article_days(db)
        low = since.toordinal() if since else 1
        high = until.toordinal() if until else date.max.toordinal()
        return (days >= low) & (days <= high)  # 0, no date, is below every low

    def _article_days(self, db: store.Reader) -> np.ndarray:
        """By article number, its published date as a proleptic ordinal (0: none), read once per generation.

        Through each article's first passage (``passages(article_id, ordinal)`` is indexed), so the article
        texts are never read.
        """
        if self._published_days is None:
            articles = self._articles
            days = np.zeros(len(articles.length) if articles is not None else 1, dtype=np.int64)
            if articles is not None:
                rows = db.execute(
                    "SELECT p.id, a.published FROM articles a JOIN passages p ON p.article_id = a.id AND p.ordinal = 1 "
                    "WHERE a.published IS NOT NULL AND a.published != ''"
                )
                for passage_id, published in rows:
                    day = published_date(published)
                    if day is not None and passage_id < len(articles.of):
                        days[int(articles.of[passage_id])] = day.toordinal()
                days[0] = 0
            self._published_days = days
        return self._published_days

    def _outside(self, allowed: np.ndarray, id_lists: list[np.ndarray]) -> list[np.ndarray]:
        """The passages among ``id_lists`` whose article ``allowed`` (by article number) leaves out (a passage in
        several lists comes back as often: the scorer takes excluded ids in any order, repeated or not)."""
        articles = self._articles
        assert articles is not None
        ids = np.concatenate(id_lists) if id_lists else np.zeros(0, dtype=np.intp)
        ids = ids[ids < len(articles.of)]
        return [ids[~allowed[articles.of[ids]]]]

    # -- what is new ---------------------------------------------------------

    def latest_indexed_at(self) -> str | None:
        """When the most recently (re)indexed file was indexed (ISO 8601, UTC); None when no file is indexed."""
        return self._read(lambda db: db.execute("SELECT max(indexed_at) FROM files").fetchone()[0])

    def indexed_since(self, since: str | None, limit: int = 20) -> tuple[list[IndexedArticle], int]:
        """The articles that first entered the index after ``since`` (ISO 8601, UTC; None: all), newest first, at
        most ``limit``; and how many there are in all.

        An article changed or rebuilt later (``--full``) keeps the time it first came. An index not reindexed since
        that time was recorded (migration m004) counts the time its articles' files were last indexed instead.
        """

        def read(db: store.Reader) -> tuple[list[IndexedArticle], int]:
            found = (
                self._first_indexed_after(db, since) if store.has_first_indexed(db) else self._indexed_after(db, since)
            )
            infos = self._article_infos(db, {article_id for article_id, _ in found[:limit]})
            counts = self._passage_counts(db, list(infos))
            page = [
                IndexedArticle(infos[article_id], indexed_at, counts.get(article_id, 0))
                for article_id, indexed_at in found[:limit]
                if article_id in infos
            ]
            return page, len(found)

        return self._read(read)

    def _first_indexed_after(self, db: store.Reader, since: str | None) -> list[tuple[str, str]]:
        """(article id, first_indexed_at) of the articles that first entered the index after ``since``, newest first."""
        column = store.FIRST_INDEXED_COLUMN
        rows = db.execute(
            f"SELECT id, {column} FROM articles WHERE {column} > ? ORDER BY {column} DESC, id", (since or "",)
        ).fetchall()
        return [(str(article_id), str(at)) for article_id, at in rows]

    def _indexed_after(self, db: store.Reader, since: str | None, *, inclusive: bool = False) -> list[tuple[str, str]]:
        """(article id, indexed_at) of the articles of files indexed after ``since`` (or at it, ``inclusive``),
        newest first, then by id."""
        after = ">=" if inclusive else ">"
        rows = db.execute(
            "SELECT DISTINCT j.value, f.indexed_at FROM files f, json_each(f.article_ids) j "
            f"WHERE f.indexed_at {after} ? AND json_valid(f.article_ids) ORDER BY f.indexed_at DESC, j.value",
            (since or "",),
        ).fetchall()
        seen: set[str] = set()
        found = []
        for article_id, indexed_at in rows:
            if isinstance(article_id, str) and article_id not in seen:
                seen.add(article_id)
                found.append((article_id, str(indexed_at)))
        return found

    def _passage_counts(self, db: store.Reader, ids: list[str]) -> dict[str, int]:
        rows = _rows_in(db, "SELECT id, passage_count FROM articles WHERE id IN ({marks})", ids)
        return {row[0]: int(row[1] or 0) for row in rows}

    def watch_matches(self, queries: list[str], since: str | None) -> WatchCheck:
        """For each query, the passages of articles indexed at or after ``since`` that match it confidently
        (None: every article).

        ``since`` itself is included: ``indexed_at`` has one-second resolution, so a reindex in the second of
        the last check shares its stamp; the caller drops what it saw before by the passages' keys.

        The rule is an answer's (``CONFIDENT_COVERAGE``; see :mod:`corpusbot.index.search.watch`), worked
        out from the query words' postings, so the new passages are never tokenized: a reindex that makes
        the whole corpus new costs one pass over each query word's postings. Matches are in article order
        (newest indexed first), then passage order.
        """
        parsed = [parse_query(_clean_question(query)[0], self.tokenizer, self.synonyms) for query in queries]

        def read(db: store.Reader) -> WatchCheck:
            through = db.execute("SELECT max(indexed_at) FROM files").fetchone()[0]
            if not queries or through is None:
                return WatchCheck(through, self._generation, tuple(() for _ in queries))
            found = self._indexed_after(db, since, inclusive=True)
            new = self._passages_of_articles(db, [article_id for article_id, _ in found])
            when = dict(found)
            order = {article_id: rank for rank, (article_id, _) in enumerate(found)}
            matches = tuple(self._watch_hits(db, query, new, when, order) for query in parsed)
            return WatchCheck(through, self._generation, matches)

        return self._read(read)

    def _passages_of_articles(self, db: store.Reader, article_ids: list[str]) -> np.ndarray:
        """By passage id: whether it is a passage of one of ``article_ids`` (each one's first passage looked up)."""
        articles = self._articles
        if articles is None:
            return np.zeros(0, dtype=bool)
        mask = np.zeros(len(articles.of), dtype=bool)
        for (passage_id,) in _rows_in(
            db, "SELECT id FROM passages WHERE ordinal = 1 AND article_id IN ({marks})", article_ids
        ):
            number = int(articles.of[passage_id]) if passage_id < len(articles.of) else 0
            if number:
                mask[articles.first[number] : articles.last[number] + 1] = True
        return mask

    def _watch_hits(
        self, db: store.Reader, parsed: ParsedQuery, new: np.ndarray, when: dict[str, str], order: dict[str, int]
    ) -> tuple[watch.WatchMatch, ...]:
        """The passages marked in ``new`` that match ``parsed`` confidently."""
        asked = list(dict.fromkeys(parsed.query_terms))
        if not asked or not new.any() or self._scorer is None:
            return ()
        found = self._postings(db, set(asked) | parsed.excluded)
        ids_of = {term: np.asarray(postings.ids, dtype=np.intp) for term, (_, postings) in found.items()}
        n_docs = self._scorer.collection.n_docs
        raw = {term: raw_idf(n_docs, found[term][0]) for term in asked if term in found}
        inside = [ids[ids < len(new)] for term, ids in ids_of.items() if term in raw]
        new_ids = [ids[new[ids]] for ids in inside]
        if not new_ids:
            return ()
        candidates = np.unique(np.concatenate(new_ids))
        holds = {term: np.isin(candidates, ids_of[term]) for term in raw}
        share = watch.coverages(asked, raw, holds, len(candidates))
        confident = (share > 0) & (share >= CONFIDENT_COVERAGE)
        for term in parsed.excluded:
            if term in ids_of:
                confident &= ~np.isin(candidates, ids_of[term])
        passages = self._passages(db, candidates[confident].tolist())
        infos = self._cited_articles(db, {passage.article_id for passage in passages.values()})
        hits = []
        for passage in passages.values():
            # The postings also give each passage its title's words; like an answer's, a match is judged on its text.
            terms = self.tokenizer.terms(passage.text)
            text_share = watch.coverage(asked, raw, set(terms))
            if text_share < CONFIDENT_COVERAGE or text_share <= 0:
                continue
            if parsed.phrases and not all(contains_phrase(terms, phrase) for phrase in parsed.phrases):
                continue
            spans = tuple(Span(a, b) for a, b in self.tokenizer.spans(passage.text, set(asked)))
            key = watch.passage_key(passage.article_id, passage.text)
            indexed_at = when.get(passage.article_id, "")
            hits.append(watch.WatchMatch(passage, infos[passage.article_id], indexed_at, key, text_share, spans))
        hits.sort(key=lambda hit: (order.get(hit.article.id, len(order)), hit.passage.ordinal))
        return tuple(hits)

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
