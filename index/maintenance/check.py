"""Integrity check of an index database (``corpusbot check``, ``corpusbot index --check``).

Everything is read in one read transaction, so the check sees one committed
index even while a reindex runs. What is verified:

- SQLite's own ``quick_check`` of the file;
- the metadata: schema version, tokenizer, and the counts it records;
- articles and passages: every passage's article exists, each article's
  ``passage_count`` and ordinals (1..n) match its passages, spans are in order
  and do not overlap, a sample of passages is exactly ``text[start:end]``;
- postings against passages: every posting points at an existing passage,
  ``df`` is the postings' length, ids ascend, the per-passage token counts
  (``doc_len``) equal ``passages.length`` and the sum of that passage's term
  frequencies, and re-tokenizing a sample of passages (with the tokenizer
  itself, title terms included as the indexer adds them) gives exactly their
  postings, and their stored term sketches (``engine.sketches``) are their texts';
- scores: a sample of queries scored by the index's scorer equal
  ``rank_bm25.BM25Okapi.get_scores`` on the same tokens (ties aside).
"""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from corpusbot.index.engine import pair_sketches, sketches, store
from corpusbot.index.engine.bm25 import BM25Params, Collection, Scorer, decode_postings, idf
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.indexing.indexer import DEFAULT_TITLE_WEIGHT
from corpusbot.index.text.tokenizer import Tokenizer, default_tokenizer

SAMPLE_PASSAGES = 300
SCORE_QUERIES = 20
TOP_K = 10
# rank-bm25 keeps every token in Python lists and dicts; above this many tokens in the index the
# score comparison is left out (and said so) rather than taking minutes and gigabytes.
MAX_REFERENCE_TOKENS = 2_000_000
REL_TOLERANCE = 1e-9
MAX_EXAMPLES = 5
_REQUIRED_META = ("articles", "passages", "n_docs", "total_tokens", "average_idf", "vocabulary", "generation", "bm25")
_TABLES = ("meta", "files", "articles", "passages", "terms", "blobs")


@dataclass
class CheckReport:
    """What ``check_database`` found: ``problems`` is empty when the index is sound."""

    db_path: str
    problems: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "db_path": self.db_path,
            "ok": self.ok,
            "problems": self.problems,
            "checks": self.checks,
            "notes": self.notes,
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
        }

    def to_text(self) -> str:
        counts = ", ".join(f"{name} {value}" for name, value in self.counts.items())
        if self.ok:
            lines = [f"OK: {self.db_path} passed {len(self.checks)} checks ({counts}) in {self.seconds:.2f}s."]
        else:
            lines = [f"{len(self.problems)} problem(s) in {self.db_path}:"]
            lines += [f"  - {problem}" for problem in self.problems]
            lines.append(
                "Rebuild the index with `corpusbot index --full`, or put a backup back with `corpusbot restore BACKUP`."
            )
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _pair_sketch_matches(stored: bytes, passage_id: int, terms: list[str]) -> bool:
    """Whether the stored pair sketch of a passage is its text's (or unknown, every bit set: from an older index)."""
    row = pair_sketches.row(stored, passage_id)
    return row == pair_sketches.UNKNOWN or row == pair_sketches.pair_sketch_of(terms)


class _Stop(Exception):
    """The database is too broken for the remaining checks to mean anything."""


def _sketch_matches(stored: tuple[np.ndarray, np.ndarray], passage_id: int, terms: frozenset[str]) -> bool:
    """Whether the stored sketch and count of a passage are those of its text's terms (or unknown: an older index)."""
    sketch, distinct = stored
    if passage_id >= len(distinct):
        return False
    if int(distinct[passage_id]) == sketches.UNKNOWN:
        return True
    return int(sketch[passage_id]) == sketches.sketch_of(terms) and int(distinct[passage_id]) == len(terms)


def check_database(
    db_path: str | os.PathLike[str],
    *,
    sample: int = SAMPLE_PASSAGES,
    queries: int = SCORE_QUERIES,
    seed: int = 0,
    tokenizer: Tokenizer | None = None,
) -> CheckReport:
    """Check the index at ``db_path``; raises ``CorpusbotError`` only when it cannot be opened at all."""
    started = time.perf_counter()
    report = CheckReport(str(db_path))
    conn = store.connect(db_path, readonly=True).conn
    conn.isolation_level = None
    try:
        conn.execute("BEGIN")
        try:
            _Checker(conn, report, tokenizer or default_tokenizer(), random.Random(seed), sample, queries).run()
        except _Stop:
            pass
        except sqlite3.DatabaseError as error:
            report.problems.append(f"the database could not be read to the end ({error})")
        except Exception as error:  # damage nobody foresaw: report it, never a traceback
            report.problems.append(f"the index data is damaged ({type(error).__name__}: {str(error)[:200]})")
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")
    finally:
        conn.close()
    report.seconds = time.perf_counter() - started
    return report


class _Checker:
    def __init__(
        self,
        conn: sqlite3.Connection,
        report: CheckReport,
        tokenizer: Tokenizer,
        rng: random.Random,
        sample: int,
        queries: int,
    ) -> None:
        self.conn = conn
        self.report = report
        self.tokenizer = tokenizer
        self.rng = rng
        self.sample_size = sample
        self.query_count = queries
        self.meta: dict[str, Any] = {}
        self.lengths = np.zeros(0, dtype=np.int64)  # passages.length by passage id (-1: no such passage)
        self.doc_len = np.zeros(0, dtype=np.int64)
        self.dfs: dict[str, int] = {}
        self._title_terms: dict[str, list[str]] = {}
        self.tokens: dict[int, list[str]] = {}

    def problem(self, message: str) -> None:
        self.report.problems.append(message)

    def passed(self, name: str) -> None:
        self.report.checks.append(name)

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.conn.execute(sql, params).fetchone()[0]

    def run(self) -> None:
        self.check_sqlite()
        self.check_meta()
        self.check_counts()
        self.check_articles_and_passages()
        self.check_files()
        self.check_doc_len()
        sampled = self.sample_passages()
        observed = self.check_postings(set(sampled))
        self.check_sample(sampled, observed)
        self.check_scores(sampled)

    # -- structure ---------------------------------------------------------

    def check_sqlite(self) -> None:
        rows = [row[0] for row in self.conn.execute("PRAGMA quick_check")]
        if rows != ["ok"]:
            self.problem("SQLite quick_check failed: " + "; ".join(rows[:MAX_EXAMPLES]))
            raise _Stop
        missing = [t for t in _TABLES if self.scalar("SELECT count(*) FROM sqlite_master WHERE name = ?", (t,)) == 0]
        if missing:
            self.problem(f"tables missing: {', '.join(missing)}; this is not a complete corpusbot index")
            raise _Stop
        self.passed("sqlite quick_check")

    def check_meta(self) -> None:
        try:
            self.meta = store.read_meta(store.Reader(self.conn))
        except CorpusbotError as error:
            self.problem(str(error))
            raise _Stop from None
        version = self.meta.get("schema_version")
        if version is None:
            self.problem("no index metadata (schema_version); the database holds no complete index")
            raise _Stop
        if version != store.SCHEMA_VERSION:
            self.problem(
                f"index schema version {version}, this corpusbot reads version {store.SCHEMA_VERSION} "
                "(run `corpusbot index --full`)"
            )
            raise _Stop
        missing = [key for key in _REQUIRED_META if key not in self.meta]
        if missing:
            self.problem(f"index metadata lacks {', '.join(missing)}")
            raise _Stop
        if self.meta.get("tokenizer") != self.tokenizer.name:
            self.problem(
                f"index built with tokenizer {self.meta.get('tokenizer')!r}, this corpusbot uses "
                f"{self.tokenizer.name!r}: questions would not match its terms (run `corpusbot index --full`)"
            )
        self.passed("metadata")

    def check_counts(self) -> None:
        articles = self.scalar("SELECT count(*) FROM articles")
        passages = self.scalar("SELECT count(*) FROM passages")
        terms = self.scalar("SELECT count(*) FROM terms")
        tokens = self.scalar("SELECT coalesce(sum(length), 0) FROM passages")
        self.report.counts = {"articles": articles, "passages": passages, "terms": terms}
        expected = (
            ("articles", articles, self.meta["articles"]),
            ("passages", passages, self.meta["passages"]),
            ("passages (n_docs)", passages, self.meta["n_docs"]),
            ("terms (vocabulary)", terms, self.meta["vocabulary"]),
            ("tokens (total_tokens)", tokens, self.meta["total_tokens"]),
        )
        wrong = [
            f"{name}: {actual} in the tables, {recorded} in meta"
            for name, actual, recorded in expected
            if actual != recorded
        ]
        if wrong:
            self.problem("counts do not match the index metadata: " + "; ".join(wrong))
        else:
            self.passed("counts match metadata")

    def check_articles_and_passages(self) -> None:
        queries = (
            (
                "passages whose article does not exist",
                "SELECT p.id FROM passages p LEFT JOIN articles a ON a.id = p.article_id WHERE a.id IS NULL",
            ),
            (
                "articles whose passage_count differs from their passages (or that have none)",
                "SELECT a.id FROM articles a LEFT JOIN (SELECT article_id, count(*) AS n FROM passages "
                "GROUP BY article_id) c ON c.article_id = a.id WHERE coalesce(c.n, 0) != a.passage_count "
                "OR coalesce(c.n, 0) = 0",
            ),
            (
                "articles whose passage ordinals are not 1..n",
                "SELECT article_id FROM passages GROUP BY article_id HAVING min(ordinal) != 1 OR max(ordinal) != count(*)",
            ),
            (
                "passages with a bad span (start/end do not fit their text) or a negative length",
                "SELECT id FROM passages WHERE start < 0 OR end <= start OR end - start != length(text) OR length < 0",
            ),
            (
                "passages that overlap or come before the previous passage of their article",
                "SELECT id FROM (SELECT id, start, lag(end) OVER (PARTITION BY article_id ORDER BY ordinal) AS previous "
                "FROM passages) WHERE previous IS NOT NULL AND start < previous",
            ),
        )
        for description, sql in queries:
            self._expect_none(description, sql)

    def check_files(self) -> None:
        files = {row[0]: row[1] for row in self.conn.execute("SELECT path, article_ids FROM files")}
        self._expect_none(
            "articles whose source file is not recorded",
            "SELECT id FROM articles WHERE file IS NULL OR file NOT IN (SELECT path FROM files)",
        )
        listed = {article_id for ids in files.values() for article_id in json.loads(ids or "[]")}
        known = {row[0] for row in self.conn.execute("SELECT id FROM articles")}
        missing = sorted(listed - known)
        if missing:
            self.problem(f"{len(missing)} article ids listed for files do not exist: {_examples(missing)}")
        else:
            self.passed("files list existing articles")

    def _expect_none(self, description: str, sql: str) -> None:
        ids = [row[0] for row in self.conn.execute(sql)]
        if ids:
            self.problem(f"{len(ids)} {description}: {_examples(ids)}")
        else:
            self.passed(f"no {description}")

    # -- postings ------------------------------------------------------------

    def check_doc_len(self) -> None:
        rows = self.conn.execute("SELECT id, length FROM passages").fetchall()
        top = max((row[0] for row in rows), default=0)
        self.lengths = np.full(top + 1, -1, dtype=np.int64)
        for passage_id, length in rows:
            self.lengths[passage_id] = length
        blob = self.conn.execute("SELECT data FROM blobs WHERE name = 'doc_len'").fetchone()
        if blob is None or len(blob[0]) % 4:
            self.problem("the per-passage token counts (doc_len) are missing or damaged")
            self.doc_len = np.zeros(len(self.lengths), dtype=np.int64)
            return
        self.doc_len = np.frombuffer(blob[0], dtype="<u4").astype(np.int64)
        if len(self.doc_len) < len(self.lengths):
            self.problem(f"doc_len covers passage ids < {len(self.doc_len)}, the largest passage id is {top}")
            self.doc_len = np.concatenate([self.doc_len, np.zeros(len(self.lengths) - len(self.doc_len), np.int64)])
        padded = np.concatenate([self.lengths, np.full(len(self.doc_len) - len(self.lengths), -1, np.int64)])
        exists = padded >= 0
        wrong = np.flatnonzero(exists & (self.doc_len != padded))
        stray = np.flatnonzero(~exists & (self.doc_len != 0))
        if len(wrong):
            self.problem(f"{len(wrong)} passages whose doc_len differs from passages.length: {_examples(wrong)}")
        if len(stray):
            self.problem(f"doc_len has token counts for {len(stray)} passage ids that do not exist: {_examples(stray)}")
        if not len(wrong) and not len(stray):
            self.passed("doc_len matches passages.length")

    def sample_passages(self) -> list[int]:
        ids = np.flatnonzero(self.lengths >= 0).tolist()
        return sorted(self.rng.sample(ids, min(self.sample_size, len(ids))))

    def check_postings(self, sampled: set[int]) -> dict[int, dict[str, int]]:
        """Scan every term's postings; returns the sampled passages' term frequencies as the postings say.

        Also keeps every passage's tokens as the postings hold them (for the
        rank-bm25 comparison) when the index is small enough for that.
        """
        size = max(len(self.lengths), len(self.doc_len))
        scan = _PostingsScan(size, self.lengths, sampled, keep_tokens=self._reference_fits())
        for term, df, blob in self.conn.execute("SELECT term, df, postings FROM terms"):
            try:
                ids, tfs = decode_postings(blob)
            except Exception:  # any decoding failure is damage to report, not a crash
                scan.bad.setdefault("undecodable postings", []).append(term)
                continue
            self.dfs[term] = int(df)
            scan.add(term, int(df), ids, tfs)
        scan.flush()
        self.tokens = scan.tokens
        for description, terms in scan.bad.items():
            self.problem(f"{len(terms)} terms with {description}: {_examples(terms)}")
        if not scan.bad:
            self.passed("postings well formed, df = len(postings), ids exist")
        doc_len = np.pad(self.doc_len, (0, size - len(self.doc_len)))
        mismatch = np.flatnonzero(scan.is_passage & (scan.token_sums != doc_len))
        if len(mismatch):
            self.problem(
                f"{len(mismatch)} passages whose term frequencies in the postings do not add up to their token "
                f"count: {_examples(mismatch)}"
            )
        else:
            self.passed("postings add up to every passage's token count")
        n_docs = int(self.meta["n_docs"])
        if self.dfs:
            dfs = np.fromiter(self.dfs.values(), dtype=np.float64, count=len(self.dfs))
            mean = math.fsum((np.log(n_docs - dfs + 0.5) - np.log(dfs + 0.5)).tolist()) / len(dfs)
            if not math.isclose(mean, float(self.meta["average_idf"]), rel_tol=1e-9, abs_tol=1e-12):
                self.problem(f"average_idf in meta is {self.meta['average_idf']}, the postings give {mean}")
        return scan.observed

    def check_sample(self, sampled: list[int], observed: dict[int, dict[str, int]]) -> None:
        wrong_terms, wrong_text = [], []
        rows = []
        for start in range(0, len(sampled), 500):
            chunk = sampled[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows += self.conn.execute(
                f"SELECT p.id, p.text, p.length, p.start, p.end, a.id, a.title "
                f"FROM passages p JOIN articles a ON a.id = p.article_id WHERE p.id IN ({marks})",
                chunk,
            ).fetchall()
        # Sliced in Python, one article at a time: SQLite's substr() walks a long article's UTF-8 from its start.
        rows.sort(key=lambda row: row[5])
        stored = self.stored_sketches()
        stored_pairs = self.stored_pair_sketches()
        wrong_sketches, wrong_pairs = [], []
        article_id, article = None, ""
        for pid, text, length, start, end, owner, title in rows:
            if owner != article_id:
                article_id = owner
                article = self.scalar("SELECT text FROM articles WHERE id = ?", (owner,)) or ""
            terms = self.indexed_terms(owner, title, text)
            if Counter(terms) != observed.get(pid, {}) or len(terms) != length:
                wrong_terms.append(pid)
            if article[start:end] != text:
                wrong_text.append(pid)
            text_terms = self.tokenizer.terms(text)
            if stored is not None and not _sketch_matches(stored, pid, frozenset(text_terms)):
                wrong_sketches.append(pid)
            if stored_pairs is not None and not _pair_sketch_matches(stored_pairs, pid, text_terms):
                wrong_pairs.append(pid)
        if wrong_sketches:
            self.problem(
                f"{len(wrong_sketches)} of {len(sampled)} sampled passages have another term sketch or distinct-term "
                f"count stored than their text gives (run `corpusbot index --full`): {_examples(wrong_sketches)}"
            )
        if wrong_pairs:
            self.problem(
                f"{len(wrong_pairs)} of {len(sampled)} sampled passages have another pair sketch stored than their "
                f"text gives (run `corpusbot index --full`): {_examples(wrong_pairs)}"
            )
        if wrong_terms:
            self.problem(
                f"{len(wrong_terms)} of {len(sampled)} sampled passages re-tokenize to other terms than their "
                f"postings and length say: {_examples(wrong_terms)}"
            )
        if wrong_text:
            self.problem(
                f"{len(wrong_text)} of {len(sampled)} sampled passages are not their article's text[start:end]: "
                f"{_examples(wrong_text)}"
            )
        if not wrong_terms and not wrong_text:
            self.passed(f"{len(sampled)} sampled passages re-tokenize to their postings and match their article")

    def stored_sketches(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``sketch`` and ``distinct_terms`` blobs (None when the index has none: written before them)."""
        rows = dict(
            self.conn.execute(
                "SELECT name, data FROM blobs WHERE name IN (?, ?)", (sketches.SKETCH_BLOB, sketches.DISTINCT_BLOB)
            ).fetchall()
        )
        if sketches.SKETCH_BLOB not in rows and sketches.DISTINCT_BLOB not in rows:
            return None
        if self.meta.get(sketches.GENERATION_KEY) != self.meta.get("generation"):
            return None  # another generation's (left by an older corpusbot): the search service does not use them
        stored = sketches.from_blobs(rows.get(sketches.SKETCH_BLOB), rows.get(sketches.DISTINCT_BLOB), self.meta)
        if stored is None:
            self.problem("the term sketches (blobs sketch, distinct_terms) are damaged (run `corpusbot index --full`)")
        return stored

    def stored_pair_sketches(self) -> bytes | None:
        """The ``pair_sketch`` blob, a row per passage id (None when the index has none: written before it)."""
        row = self.conn.execute("SELECT data FROM blobs WHERE name = ?", (pair_sketches.PAIR_SKETCH_BLOB,)).fetchone()
        if row is None:
            return None
        if self.meta.get(pair_sketches.GENERATION_KEY) != self.meta.get("generation"):
            return None  # another generation's (left by an older corpusbot): the search service does not use it
        blob = row[0]
        size = len(blob) // pair_sketches.BYTES if isinstance(blob, bytes) else 0
        stored = pair_sketches.from_blob(blob, self.meta, size)
        if stored is None or size != len(self.doc_len):
            self.problem("the pair sketches (blob pair_sketch) are damaged (run `corpusbot index --full`)")
            return None
        return stored

    def _reference_fits(self) -> bool:
        return int(self.meta["total_tokens"]) <= MAX_REFERENCE_TOKENS

    def indexed_terms(self, article_id: str | None, title: str | None, text: str) -> list[str]:
        """A passage's tokens as the indexer defines them: its article title's terms, then its own."""
        key = article_id or ""
        if key not in self._title_terms:
            weight = int(self.meta.get("title_weight", DEFAULT_TITLE_WEIGHT))
            self._title_terms[key] = self.tokenizer.terms(title or "") * weight
        return self._title_terms[key] + self.tokenizer.terms(text)

    # -- scores --------------------------------------------------------------

    def check_scores(self, sampled: list[int]) -> None:
        from rank_bm25 import BM25Okapi  # only the check needs it at run time

        n_docs = int(self.meta["n_docs"])
        if n_docs == 0 or not sampled or self.query_count <= 0:
            self.report.notes.append("no scores compared with rank-bm25 (empty index or --queries 0)")
            return
        if not self._reference_fits():
            self.report.notes.append(
                f"scores not compared with rank-bm25: the index holds {self.meta['total_tokens']} tokens, more than "
                f"the {MAX_REFERENCE_TOKENS} rank-bm25 can hold in reasonable time and memory"
            )
            return
        # The tokens the postings hold (the sample check showed they are the tokenizer's).
        passage_ids = np.flatnonzero(self.lengths >= 0).tolist()
        row_of = {pid: row for row, pid in enumerate(passage_ids)}
        corpus = [self.tokens.get(pid, []) for pid in passage_ids]
        params = BM25Params(**self.meta["bm25"])
        reference = BM25Okapi(corpus, k1=params.k1, b=params.b, epsilon=params.epsilon)
        collection = Collection(
            n_docs=n_docs,
            avgdl=float(self.meta["total_tokens"]) / n_docs,
            mean_idf=float(self.meta["average_idf"]),
            doc_len=self.doc_len.astype("<u4"),
            params=params,
        )
        scorer = Scorer(collection)
        mismatches: list[str] = []
        compared = 0
        for query in self._queries(sampled, row_of, corpus):
            expected = reference.get_scores(query)
            postings = {}
            for term in set(query):
                found = self.conn.execute("SELECT df, postings FROM terms WHERE term = ?", (term,)).fetchone()
                if found is not None:
                    postings[term] = (int(found[0]), *decode_postings(found[1]))
            scored = [
                (idf(n_docs, postings[t][0], collection.mean_idf, params), postings[t][1], postings[t][2])
                for t in query
                if t in postings
            ]
            try:
                top = scorer.top(scored, TOP_K)
            except ValueError as error:  # damaged postings (out of order, beyond the index): the scorer refuses them
                mismatches.append(f"query {query}: {error}")
                compared += 1
                continue
            got = [score for _, score in top]
            want = sorted((s for s in expected.tolist() if s > 0), reverse=True)[:TOP_K]
            per_passage = [(pid, score, float(expected[row_of[pid]])) for pid, score in top if pid in row_of]
            wrong = [
                f"passage {pid}: {score!r} vs {ref!r}" for pid, score, ref in per_passage if not _close(score, ref)
            ]
            if len(per_passage) != len(top):
                wrong.append("top results include passages that do not exist")
            if len(got) != len(want) or not all(_close(a, b) for a, b in zip(got, want, strict=False)):
                wrong.append(f"top-{TOP_K} scores {_rounded(got)} vs rank-bm25's {_rounded(want)}")
            if wrong:
                mismatches.append(f"query {query}: " + "; ".join(wrong[:2]))
            compared += 1
        if mismatches:
            self.problem(
                f"{len(mismatches)} of {compared} sampled queries score differently from rank_bm25.BM25Okapi: "
                + " | ".join(mismatches[:3])
            )
        else:
            self.passed(f"{compared} sampled queries score as rank_bm25.BM25Okapi")

    def _queries(self, sampled: list[int], row_of: dict[int, int], corpus: list[list[str]]) -> list[list[str]]:
        """Queries made of sampled passages' own terms: 1-4 terms, sometimes repeated, sometimes a common one."""
        common = max(self.dfs, key=lambda t: (self.dfs[t], t)) if self.dfs else None
        queries: list[list[str]] = []
        candidates = [pid for pid in sampled if corpus[row_of[pid]]]
        for index in range(self.query_count if candidates else 0):
            terms = sorted(set(corpus[row_of[self.rng.choice(candidates)]]))
            query = self.rng.sample(terms, min(len(terms), self.rng.randint(1, 4)))
            if index % 4 == 1:
                query.append(query[0])  # rank-bm25 counts a repeated query token twice
            if index % 4 == 2 and common is not None:
                query.append(common)  # exercises the idf floor for terms in over half the passages
            queries.append(query)
        return queries


class _PostingsScan:
    """Checks postings in batches of many terms at once (one numpy pass per batch, not per term)."""

    BATCH_POSTINGS = 1 << 22

    def __init__(self, size: int, lengths: np.ndarray, sampled: set[int], keep_tokens: bool) -> None:
        self.size = size
        self.is_passage = np.zeros(size, dtype=bool)
        self.is_passage[: len(lengths)] = lengths >= 0
        self.in_sample = np.zeros(size, dtype=bool)
        self.in_sample[sorted(sampled)] = True
        self.token_sums = np.zeros(size, dtype=np.int64)
        self.observed: dict[int, dict[str, int]] = {pid: {} for pid in sampled}
        self.tokens: dict[int, list[str]] = {}
        self.keep_tokens = keep_tokens
        self.bad: dict[str, list[str]] = {}
        self._terms: list[str] = []
        self._dfs: list[int] = []
        self._ids: list[np.ndarray] = []
        self._tfs: list[np.ndarray] = []
        self._pending = 0

    def add(self, term: str, df: int, ids: np.ndarray, tfs: np.ndarray) -> None:
        self._terms.append(term)
        self._dfs.append(df)
        self._ids.append(ids)
        self._tfs.append(tfs)
        self._pending += len(ids)
        if self._pending >= self.BATCH_POSTINGS:
            self.flush()

    def _flag(self, description: str, term_indexes: np.ndarray) -> None:
        if len(term_indexes):
            self.bad.setdefault(description, []).extend(self._terms[i] for i in np.unique(term_indexes).tolist())

    def flush(self) -> None:
        if not self._terms:
            return
        counts = np.array([len(ids) for ids in self._ids], dtype=np.int64)
        ids = np.concatenate(self._ids).astype(np.int64) if self._pending else np.zeros(0, np.int64)
        tfs = np.concatenate(self._tfs).astype(np.int64) if self._pending else np.zeros(0, np.int64)
        term_of = np.repeat(np.arange(len(counts)), counts)
        dfs = np.array(self._dfs, dtype=np.int64)
        self._flag("df differs from the number of postings", np.flatnonzero((dfs != counts) | (dfs <= 0)))
        if len(ids) > 1:
            descending = (term_of[1:] == term_of[:-1]) & (np.diff(ids) <= 0)
            self._flag("postings not in ascending passage order", term_of[1:][descending])
        self._flag("term frequencies below 1", term_of[tfs <= 0])
        valid = (ids >= 0) & (ids < self.size)
        valid[valid] = self.is_passage[ids[valid]]
        self._flag("postings pointing at passages that do not exist", term_of[~valid])
        ids, tfs, term_of = ids[valid], tfs[valid], term_of[valid]
        self.token_sums += np.bincount(ids, weights=tfs, minlength=self.size).astype(np.int64)
        hit = self.in_sample[ids]
        for pid, index, tf in zip(ids[hit].tolist(), term_of[hit].tolist(), tfs[hit].tolist(), strict=True):
            self.observed[pid][self._terms[index]] = tf
        if self.keep_tokens:
            for pid, index, tf in zip(ids.tolist(), term_of.tolist(), tfs.tolist(), strict=True):
                self.tokens.setdefault(pid, []).extend([self._terms[index]] * tf)
        self._terms, self._dfs, self._ids, self._tfs, self._pending = [], [], [], [], 0


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=1e-12)


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 6) for v in values]


def _examples(values: Any) -> str:
    items = [str(v) for v in list(values)[:MAX_EXAMPLES]]
    more = len(values) - len(items)
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")
