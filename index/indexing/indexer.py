"""Build or update the index: files -> articles -> passages -> postings, in one transaction.

Incremental by default: a file whose content hash is unchanged is not read
again; in a changed JSONL file, a line whose hash is stored for one of its
articles is that article, unchanged, and is not parsed again; articles of
removed files are dropped, and only the postings of terms that occur in added
or removed passages are rewritten. Everything is written
in a single ``BEGIN IMMEDIATE`` transaction, so a reader sees the old index or
the new one and a killed run leaves the old one in place.

A passage is indexed as its article title's terms repeated ``title_weight``
times followed by its own terms (BM25 sees one token list per passage).
Splitting and tokenizing run in worker processes on large corpora.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import hashlib
import json
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import chain, repeat
from operator import getitem
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import numpy as np

from corpusbot.index.engine import store
from corpusbot.index.engine.bm25 import BM25Params, average_idf, build_postings, decode, encode_many
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.models import Article
from corpusbot.index.text.passages import split_passages
from corpusbot.index.text.tokenizer import _WORD, _normalise, default_tokenizer

if TYPE_CHECKING:  # the readers pull in bs4/yaml/charset_normalizer: imported when indexing starts
    from corpusbot.index.corpus.discover import CorpusFile
    from corpusbot.index.corpus.readers import ReadResult

T = TypeVar("T")
Progress = Callable[[Iterable[T], int], Iterator[T]]

PARALLEL_MIN_CHARS = 8_000_000  # below this, starting worker processes costs more than it saves
CHUNK_CHARS = 2_000_000
DEFAULT_TITLE_WEIGHT = 1


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


class _NewPassage(NamedTuple):  # a tuple: a million of them are made on a large build
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
    title_weight: int | None = None,
) -> IndexSummary:
    """Index ``paths`` (or the database's remembered corpus, or the bundled sample) into ``db_path``.

    ``title_weight``: how many times each passage repeats its article title's
    terms (0: titles are not indexed); None keeps the database's setting
    (default 1). Changing it, like the BM25 parameters, rebuilds everything.
    """
    if title_weight is not None and title_weight < 0:
        raise ValueError("title_weight must be 0 or more")
    started = time.perf_counter()
    db = store.connect_plain(db_path, create=True)  # not sqlite_utils: it takes ~0.3 s to import
    db.conn.isolation_level = None  # autocommit; the index is written in one explicit transaction
    try:
        return _index(db, db_path, paths, full, params, progress, workers, title_weight, started)
    finally:
        db.conn.close()


def _index(
    db: store.Connection,
    db_path: str | os.PathLike[str],
    paths: list[str] | None,
    full: bool,
    params: BM25Params | None,
    progress: Progress[CorpusFile] | None,
    workers: int | None,
    title_weight: int | None,
    started: float,
) -> IndexSummary:
    from corpusbot.index.corpus.discover import BUNDLED, discover
    from corpusbot.index.corpus.readers import Unreadable

    meta = store.read_meta(db)
    read_generation = meta.get("generation")
    version = meta.get("schema_version")
    if version is not None and version != store.SCHEMA_VERSION and not full:
        store.check_schema(meta, db_path)
    # The tables of another schema are dropped inside the write transaction that builds the new index,
    # so a run that stops before its COMMIT leaves them as they were.
    replace_schema = version is not None and version != store.SCHEMA_VERSION
    if replace_schema:  # nothing of the old index is reused but the corpus it was built from
        remembered = meta.get("corpus_paths")
        valid = isinstance(remembered, list) and remembered and all(isinstance(p, str) for p in remembered)
        meta = {"corpus_paths": remembered} if valid else {}
    else:
        store.create_schema(db)

    roots = [str(Path(p).absolute()) if p != BUNDLED else p for p in paths] if paths else None
    roots = roots or meta.get("corpus_paths") or [BUNDLED]
    if params is None:
        params = BM25Params(**meta["bm25"]) if "bm25" in meta else BM25Params()
    if meta.get("bm25") and BM25Params(**meta["bm25"]) != params:
        full = True
    if meta.get("tokenizer") and meta["tokenizer"] != default_tokenizer().name:
        full = True
    stored_weight = int(meta.get("title_weight", DEFAULT_TITLE_WEIGHT))
    if title_weight is None:
        title_weight = stored_weight
    if meta.get("schema_version") and title_weight != stored_weight:
        full = True

    summary = IndexSummary(full=full, corpus_paths=list(roots))
    corpus_files, summary.skipped = discover(roots)

    known = {} if replace_schema else {row[0]: row for row in db.execute("SELECT path, sha256, article_ids FROM files")}
    stored = {} if full else _stored_articles(db)
    stored_lines = _lines_by_file(stored)
    new_articles: list[Article] = []
    changed_files: dict[str, tuple[str, int]] = {}
    file_articles: dict[str, list[str]] = {}
    line_hashes: dict[str, bytes] = {}  # article path ("file:line") -> SHA-256 of the JSONL line it was read from
    kept_lines: dict[str, tuple[str, str]] = {}  # id -> (file, path) of a stored article found on an unchanged line
    iterator: Iterable[CorpusFile] = progress(corpus_files, len(corpus_files)) if progress else corpus_files
    for corpus_file in iterator:
        key = str(corpus_file.path)
        try:
            data = corpus_file.path.read_bytes()
        except OSError as error:
            summary.skipped.append((key, f"unreadable: {error.strerror}"))
            if key in known:
                file_articles[key] = json.loads(known[key][2])
            continue
        digest = hashlib.sha256(data).hexdigest()
        previous = known.get(key)
        if previous and previous[1] == digest and not full:
            summary.unchanged.append(key)
            file_articles[key] = json.loads(previous[2])
            continue
        lines = _plain_utf8_lines(data) if corpus_file.path.suffix.lower() == ".jsonl" else None
        hashes = [hashlib.sha256(line).digest() for line in lines] if lines is not None else None
        matched: dict[int, str] = {}  # line index -> id of the stored article read from that very line
        if hashes is not None and previous and not full and key in stored_lines:
            on_file = stored_lines[key]
            matched = {i: on_file[h] for i, h in enumerate(hashes) if h in on_file}
        try:
            result, matched = _read_unmatched_lines(corpus_file, data, lines, matched)
        except Unreadable as error:
            reason = str(error) + ("; the previously indexed version is kept" if previous and not full else "")
            summary.skipped.append((key, reason))
            if previous and not full:
                file_articles[key] = json.loads(previous[2])
            continue
        summary.warnings.extend((key, problem) for problem in result.problems)
        (summary.updated if previous else summary.added).append(key)
        changed_files[key] = (digest, len(data))
        if hashes is not None:
            line_hashes.update((a.path or "", hashes[_line_index(a)]) for a in result.articles)
        if matched:
            file_articles[key], fresh = _merge_lines(key, corpus_file.path, matched, result.articles, kept_lines)
        else:
            file_articles[key], fresh = [article.id for article in result.articles], result.articles
        new_articles.extend(fresh)

    summary.removed = sorted(set(known) - set(file_articles))

    # Duplicate article ids: the first file in path order (then line order) wins.
    owner: dict[str, str] = {}
    lost: set[str] = set()  # files that lost an id to another file
    for key in sorted(file_articles):
        kept = []
        for article_id in file_articles[key]:
            if article_id in owner:
                summary.warnings.append(
                    (key, f"duplicate article id {article_id!r}: kept the one from {owner[article_id]}")
                )
                lost.update([key] if owner[article_id] != key else [])
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

    kept_paths: list[tuple[str, bytes | None, str]] = []  # (path, line hash or None to keep it, id)
    if full:
        stale_article_ids = set() if replace_schema else {row[0] for row in db.execute("SELECT id FROM articles")}
    else:
        stale_article_ids = {
            article_id
            for article_id, (file, _, _) in stored.items()
            if file not in file_articles or file in changed_files or owner.get(article_id) != file
        }
        for article_id, (file, path) in kept_lines.items():
            if owner.get(article_id) == file:  # still that file's article: its index entry stays
                stale_article_ids.discard(article_id)
                if path != stored[article_id][2]:
                    kept_paths.append((path, None, article_id))
        new_articles = _skip_unchanged_articles(
            db, new_articles, changed_files, known, stored, stale_article_ids, line_hashes, kept_paths
        )

    for key in lost:
        # No recorded hash: read again next run, when the id may be its own again (as a full rebuild would).
        changed_files[key] = ("", changed_files[key][1] if key in changed_files else 0)

    if not new_articles and not stale_article_ids and not changed_files and not full and meta.get("schema_version"):
        _record_unchanged(db, summary, roots, meta, started)
        return summary

    passages, lengths, doc_terms, vocabulary = _split_and_tokenize(new_articles, title_weight, workers)

    with _write_transaction(db):
        _check_not_reindexed_meanwhile(db, db_path, read_generation)
        if replace_schema:
            _drop_all(db)
            store.create_schema(db)
        else:
            store.add_source_hashes(db)  # an index written before the column: upgraded in this transaction
        _write(
            db,
            params,
            title_weight,
            full,
            stale_article_ids,
            new_articles,
            passages,
            lengths,
            doc_terms,
            vocabulary,
            changed_files,
            file_articles,
            line_hashes,
            summary,
        )
        db.conn.executemany(
            f"UPDATE articles SET path = ?, {store.SOURCE_HASH_COLUMN} = coalesce(?, {store.SOURCE_HASH_COLUMN}) "
            "WHERE id = ?",
            kept_paths,
        )
        _record_run(db, summary, started)
        store.write_meta(
            db,
            {
                "schema_version": store.SCHEMA_VERSION,
                "tokenizer": default_tokenizer().name,
                "bm25": params.to_json(),
                "title_weight": title_weight,
                "corpus_paths": roots,
                "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "build_seconds": round(summary.seconds, 3),
                "generation": int(meta.get("generation", 0)) + 1,
                "articles": summary.articles,
                "passages": summary.passages,
            },
        )
    _checkpoint(db)
    return summary


def _stored_articles(db: store.Connection) -> dict[str, tuple[str, bytes | None, str | None]]:
    """id -> (file, line hash or None, path) of every indexed article."""
    column = store.SOURCE_HASH_COLUMN if store.has_source_hashes(db) else "NULL"
    return {row[0]: row[1:] for row in db.execute(f"SELECT id, file, {column}, path FROM articles")}


def _lines_by_file(stored: dict[str, tuple[str, bytes | None, str | None]]) -> dict[str, dict[bytes, str]]:
    """file -> {line hash: id} of the stored articles whose JSONL line hash is known."""
    found: dict[str, dict[bytes, str]] = {}
    for article_id, (file, line_hash, _) in stored.items():
        if line_hash is not None:
            found.setdefault(file, {})[line_hash] = article_id
    return found


def _plain_utf8_lines(data: bytes) -> list[bytes] | None:
    """The file's lines, if the readers decode it as plain UTF-8 (no byte-order mark, no NUL byte).

    Each line of such a file then reads the same on its own as inside the file: no UTF-8
    sequence contains a newline byte, and NFC normalisation never joins characters across a
    newline. Other encodings are decoded by guessing from the whole file: no line hashes then.
    """
    if data.startswith(b"\xef\xbb\xbf") or b"\x00" in data:
        return None
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return data.split(b"\n")


def _read_unmatched_lines(
    corpus_file: CorpusFile, data: bytes, lines: list[bytes] | None, matched: dict[int, str]
) -> tuple[ReadResult, dict[int, str]]:
    """Parse the lines of the file that no stored article was read from (every line if none was).

    The matched lines are blanked, which keeps the line numbers of the others. If what is left
    does not read (e.g. only malformed lines), the whole file is read instead, as a full rebuild
    would: then nothing counts as matched. Returns the result and the matched lines it relied on.
    """
    from corpusbot.index.corpus.readers import ReadResult, Unreadable, read_file

    if not matched or lines is None:
        return read_file(corpus_file.path, data, corpus_file.article_id), {}
    rest = b"\n".join(b"" if i in matched else line for i, line in enumerate(lines))
    if not rest.strip():
        return ReadResult(), matched
    try:
        return read_file(corpus_file.path, rest, corpus_file.article_id), matched
    except Unreadable:
        return read_file(corpus_file.path, data, corpus_file.article_id), {}


def _merge_lines(
    key: str,
    path: Path,
    matched: dict[int, str],
    parsed: list[Article],
    kept_lines: dict[str, tuple[str, str]],
) -> tuple[list[str], list[Article]]:
    """A file's article ids in line order, from its matched and its parsed lines, and the parsed articles to index.

    The first line of an id is its article (as when the whole file is parsed): a matched first
    line goes into ``kept_lines``; a parsed article whose id came earlier is left out.
    """
    first_line = {article_id: line for line, article_id in reversed(matched.items())}  # each id's first
    order = sorted(matched)
    ids: list[str] = []
    taken = 0
    fresh: list[Article] = []
    for article in sorted(parsed, key=_line_index):
        line = _line_index(article)
        at = bisect.bisect_left(order, line, lo=taken)
        ids.extend(matched[i] for i in order[taken:at])
        ids.append(article.id)
        taken = at
        earlier = first_line.get(article.id)
        if earlier is not None and earlier < line:
            continue  # a repeated id: the matched line above is its article
        if earlier is not None:
            del first_line[article.id]  # this line comes first: the matched one below is the repeat
        fresh.append(article)
    ids.extend(matched[i] for i in order[taken:])
    for article_id, line in first_line.items():
        kept_lines[article_id] = (key, f"{path}:{line + 1}")
    return ids, fresh


def _line_index(article: Article) -> int:
    """The 0-based line of a JSONL article (its path is "file:line")."""
    return int((article.path or "").rpartition(":")[2]) - 1


def _skip_unchanged_articles(
    db: store.Connection,
    new_articles: list[Article],
    changed_files: dict[str, tuple[str, int]],
    known: dict[str, object],
    stored: dict[str, tuple[str, bytes | None, str | None]],
    stale_article_ids: set[str],
    line_hashes: dict[str, bytes],
    kept_paths: list[tuple[str, bytes | None, str]],
) -> list[Article]:
    """Keep the indexed copy of parsed articles of a changed file that are the same as the stored ones.

    These are lines changed without changing their article (e.g. keys reordered), and the lines of
    files whose line hashes are not stored yet. Removes them from ``new_articles`` (returned) and
    ``stale_article_ids`` (in place), and adds their (path, line hash, id) to ``kept_paths``.
    """
    reread = {key for key in changed_files if key in known}
    fresh: dict[str, Article] = {}
    for article in new_articles:
        file = _file_key(article)
        if file in reread and article.id in stored and stored[article.id][0] == file:
            fresh[article.id] = article
    if not fresh:
        return new_articles
    unchanged: set[str] = set()
    candidates = list(fresh)
    for start in range(0, len(candidates), 500):
        chunk = candidates[start : start + 500]
        rows = db.execute(
            "SELECT id, title, text, url, source, published, author FROM articles "
            f"WHERE id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for row in rows:
            article = fresh[row[0]]
            if tuple(row[1:]) == (
                article.title,
                article.text,
                article.url,
                article.source,
                article.published,
                article.author,
            ):
                unchanged.add(article.id)
                kept_paths.append((article.path or "", line_hashes.get(article.path or ""), article.id))
    stale_article_ids.difference_update(unchanged)
    return [a for a in new_articles if a.id not in unchanged]


def _file_key(article: Article) -> str:
    path = article.path or ""
    # JSONL articles carry "file:line"; single-article files carry the file path.
    head, sep, tail = path.rpartition(":")
    return head if sep and tail.isdigit() else path


def _check_not_reindexed_meanwhile(db: store.Connection, db_path: str | os.PathLike[str], read: object) -> None:
    """Inside the write transaction: the index must still be the one this run compared the corpus with.

    The corpus is read and tokenized before the write lock is taken (readers and the bot keep working
    meanwhile), so another reindex may have committed in between; writing on top of it would mix the two.
    """
    if store.read_meta(db).get("generation") != read:
        raise CorpusbotError(
            f"Another `corpusbot index` updated {db_path} while this one was reading the corpus; nothing was "
            "written by this run. Run it again."
        )


def _record_unchanged(
    db: store.Connection, summary: IndexSummary, roots: list[str], meta: dict, started: float
) -> None:
    with _write_transaction(db):
        _record_run(db, summary, started)
        if roots != meta.get("corpus_paths"):
            store.write_meta(db, {"corpus_paths": roots})


def _record_run(db: store.Connection, summary: IndexSummary, started: float) -> None:
    """Counts and duration into ``summary``; this run's skipped files into the ``skipped`` table."""
    summary.articles, summary.passages = db.execute(
        "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages)"
    ).fetchone()
    summary.seconds = time.perf_counter() - started
    db.execute("DELETE FROM skipped")
    db.conn.executemany("INSERT INTO skipped(path, reason) VALUES (?, ?)", summary.skipped)


@contextlib.contextmanager
def _write_transaction(db: store.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` ... ``COMMIT``; anything raised (KeyboardInterrupt too) rolls it back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise


_PENDING = -(2**62)  # the code of a token seen for the first time, until it is learned


class _Codes(dict[str, int]):
    """token -> code; a token not seen yet answers _PENDING and is noted (so a lookup pass never stops)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[str] = []

    def __missing__(self, token: str) -> int:
        self[token] = _PENDING  # later occurrences are found without calling back here
        self.pending.append(token)
        return _PENDING


class PassageTerms:
    """``Tokenizer.terms`` through a cache of each whitespace-separated token's terms.

    The tokenizer's word pattern never matches whitespace and looks neither
    behind nor ahead, so the words of a text are the words of its
    whitespace-separated tokens, each found on its own; and it turns each word
    into a term on its own. So a token seen before costs one dict lookup
    instead of regex matching, normalising and stemming (tests check both
    agree), and :meth:`encode` handles a whole list of tokens without a
    Python-level loop over them.
    """

    MAX_CACHED = 2_000_000
    _NONE = -1  # a token that gives no term (stopword, punctuation)

    def __init__(self) -> None:
        self._tokenizer = default_tokenizer()
        # token -> term id; _NONE; or -2 - i for a token of several terms (rock/paper), self._multi[i]
        self._code = _Codes()
        self._terms: list[str] = []
        self._term_id: dict[str, int] = {}
        self._multi: list[tuple[int, ...]] = []
        self._multi_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.lock = threading.RLock()  # the caches are shared by every indexing thread of the process

    def __call__(self, text: str) -> list[str]:
        with self.lock:
            ids, _ = self._expand(self._codes(text.split()))
            return list(map(self._terms.__getitem__, ids.tolist()))

    def distinct(self, texts: Iterable[str]) -> set[str]:
        """Every term of ``texts``, found in one pass over all their tokens (no per-text overhead)."""
        tokens = [token for text in texts for token in text.split()]
        with self.lock:
            ids, _ = self._expand(self._codes(tokens))
            return set(map(self._terms.__getitem__, np.unique(ids).tolist()))

    def passage(self, title_terms: list[str], text: str) -> list[str]:
        return title_terms + self(text)

    def encode(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(term_ids, per_token)`` for whitespace-separated ``tokens``.

        ``term_ids`` (int32) number terms as :meth:`terms_from` lists them, in
        text order; ``per_token[i]`` is how many of them token ``i`` gave (0 for
        a stopword, 2 for "rock/paper").
        """
        with self.lock:
            ids, per_token = self._expand(self._codes(tokens))
            return ids.astype(np.int32), per_token

    def terms_from(self, first: int) -> list[str]:
        """The terms numbered ``first`` and up (numbers never change; new terms get the next ones)."""
        with self.lock:
            return self._terms[first:]

    def _codes(self, tokens: list[str]) -> np.ndarray:
        """Each token's code; one pass over the tokens, new ones learned together afterwards."""
        if len(self._code) > self.MAX_CACHED:
            self._code.clear()
        self._code.pending.clear()
        codes = np.fromiter(map(self._code.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        if self._code.pending:
            try:
                self._learn(self._code.pending)
            except BaseException:
                for token in self._code.pending:  # no placeholder may outlive this call
                    if self._code.get(token) == _PENDING:
                        del self._code[token]
                raise
            finally:
                self._code.pending.clear()
            at = np.flatnonzero(codes == _PENDING)
            if len(at) * 8 > len(codes):  # mostly new tokens (a cold cache): look them all up again
                return np.fromiter(map(self._code.__getitem__, tokens), dtype=np.int64, count=len(tokens))
            codes[at] = list(map(self._code.__getitem__, [tokens[i] for i in at.tolist()]))
        return codes

    def _expand(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Term ids in text order, and how many each token gave."""
        per_token = (codes >= 0).astype(np.int64)
        multi_at = np.flatnonzero(codes <= -2)
        if len(multi_at) == 0:
            return codes[codes >= 0], per_token
        flat, offsets, lengths = self._multi_table()
        which = -2 - codes[multi_at]
        per_token[multi_at] = lengths[which]
        out_start = np.cumsum(per_token) - per_token
        ids = np.repeat(codes, per_token)
        n = lengths[which]
        step = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        ids[np.repeat(out_start[multi_at], n) + step] = flat[np.repeat(offsets[which], n) + step]
        return ids, per_token

    def _multi_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._multi_arrays is None or len(self._multi_arrays[1]) != len(self._multi):
            lengths = np.array([len(m) for m in self._multi], dtype=np.int64)
            offsets = np.cumsum(lengths) - lengths
            flat = np.fromiter(chain.from_iterable(self._multi), dtype=np.int64, count=int(lengths.sum()))
            self._multi_arrays = (flat, offsets, lengths)
        return self._multi_arrays

    def _learn(self, tokens: Iterable[str]) -> None:
        """Cache the terms of new tokens: match, normalise, then stem all their words in one call."""
        new = list(dict.fromkeys(tokens))
        normalised = [[_normalise(word) for word in _WORD.findall(token)] for token in new]
        stems = iter(self._tokenizer._stem([word for words in normalised for word in words if word]))
        term_id = self._term_id
        for token, words in zip(new, normalised, strict=True):
            ids = []
            for word in words:
                if word:
                    term = next(stems)
                    found = term_id.get(term)
                    if found is None:
                        found = term_id[term] = len(self._terms)
                        self._terms.append(term)
                    ids.append(found)
            if len(ids) == 1:
                self._code[token] = ids[0]
            elif not ids:
                self._code[token] = self._NONE
            else:
                self._code[token] = -2 - len(self._multi)
                self._multi.append(tuple(ids))


_passage_terms: PassageTerms | None = None


def passage_terms() -> PassageTerms:
    global _passage_terms
    if _passage_terms is None:
        _passage_terms = PassageTerms()
    return _passage_terms


def _fresh_lock_after_fork() -> None:
    """A forked worker must not inherit the lock held by the thread that forked it."""
    if _passage_terms is not None:
        _passage_terms.lock = threading.RLock()


os.register_at_fork(after_in_child=_fresh_lock_after_fork)


class _Chunk(NamedTuple):
    """Articles for one split-and-tokenize task."""

    articles: list[tuple[str, str]]  # (title, text)
    title_weight: int
    session: str  # one per _split_and_tokenize call


class _ChunkResult(NamedTuple):
    """A chunk's passages (spans into their article's text) and token ids, in article order.

    Term ids are the numbers of the process that encoded the chunk; each
    result carries the terms that process numbered since its previous result
    of the same session, so the terms themselves cross between processes once.
    """

    process: int
    first_new_term: int  # the number of new_terms[0]
    new_terms: list[str]
    passage_counts: np.ndarray  # passages per article
    starts: np.ndarray
    ends: np.ndarray
    lengths: np.ndarray  # tokens per passage
    term_ids: np.ndarray  # every passage's tokens, concatenated (int32)


_sent_terms = ("", 0)  # (session, how many of this process's terms its results have carried so far)
_forked_chunks: list[_Chunk] = []  # what forked workers read instead of having it pickled to them


def _split_and_tokenize(
    articles: list[Article], title_weight: int, workers: int | None
) -> tuple[list[_NewPassage], np.ndarray, np.ndarray, list[str]]:
    """The articles' passages, their token counts, the concatenated term ids (int32) and the vocabulary."""
    chunks: list[_Chunk] = []
    current: list[tuple[str, str]] = []
    session = os.urandom(8).hex()
    size = 0
    for article in articles:
        current.append((article.title or "", article.text))
        size += len(article.text)
        if size >= CHUNK_CHARS:
            chunks.append(_Chunk(current, title_weight, session))
            current, size = [], 0
    if current:
        chunks.append(_Chunk(current, title_weight, session))
    total = sum(len(a.text) for a in articles)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    # Worker processes are forked only from a single-threaded process (the CLI). Forking a process whose
    # other threads may hold locks (the Slack bot's `/ask admin reindex`) can leave a child stuck on a lock
    # that no thread of its own will ever release; there the work stays in this process.
    if total >= PARALLEL_MIN_CHARS and workers > 1 and len(chunks) > 1 and threading.active_count() == 1:
        fork = "fork" in multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if fork else None)
        global _forked_chunks
        with passage_terms().lock:
            _forked_chunks = chunks if fork else []
            try:
                with ProcessPoolExecutor(
                    max_workers=workers, mp_context=context, initializer=_exit_with_parent, initargs=(os.getpid(),)
                ) as pool:
                    # Each chunk's result is taken in while the workers go on with the next ones.
                    tasks = (
                        pool.map(_encode_forked_chunk, range(len(chunks))) if fork else pool.map(_encode_chunk, chunks)
                    )
                    return _collect_chunks(articles, tasks)
            finally:
                _forked_chunks = []
    with passage_terms().lock:  # one session at a time in this process (the results carry new terms since the last)
        return _collect_chunks(articles, map(_encode_chunk, chunks))


def _collect_chunks(
    articles: list[Article], results: Iterable[_ChunkResult]
) -> tuple[list[_NewPassage], np.ndarray, np.ndarray, list[str]]:
    """Passages with their text, token counts, term ids in one vocabulary (int32), the vocabulary."""
    collecting = gc.isenabled()
    gc.disable()  # a million new tuples would set off full collections over everything alive, again and again
    try:
        return _collect_results(articles, results)
    finally:
        if collecting:
            gc.enable()


def _collect_results(
    articles: list[Article], results: Iterable[_ChunkResult]
) -> tuple[list[_NewPassage], np.ndarray, np.ndarray, list[str]]:
    passages: list[_NewPassage] = []
    vocabulary: dict[str, int] = {}
    numbering: dict[int, np.ndarray] = {}  # per process: its term numbers -> vocabulary numbers
    lengths: list[np.ndarray] = []
    terms: list[np.ndarray] = []
    new_passage = partial(tuple.__new__, _NewPassage)
    at = 0
    for result in results:
        # One passage record per span, built by C-level iterators (a million of them on a large build).
        counts = result.passage_counts.tolist()
        owners = articles[at : at + len(counts)]
        at += len(counts)
        starts, ends = result.starts.tolist(), result.ends.tolist()
        texts = map(getitem, _repeat_each([a.text for a in owners], counts), map(slice, starts, ends))
        article_ids = _repeat_each([a.id for a in owners], counts)
        ordinals = chain.from_iterable(map(range, repeat(1), [c + 1 for c in counts]))
        passages.extend(map(new_passage, zip(article_ids, ordinals, starts, ends, texts, strict=True)))
        known = numbering.get(result.process, np.zeros(0, dtype=np.int32))
        if result.first_new_term != len(known):  # results of one process arrive in the order it made them
            raise RuntimeError("tokenizer results arrived out of order")
        new = [vocabulary.setdefault(term, len(vocabulary)) for term in result.new_terms]
        numbering[result.process] = known = np.concatenate([known, np.asarray(new, dtype=np.int32)])
        lengths.append(result.lengths)
        terms.append(known[result.term_ids])
    return (
        passages,
        np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64),
        np.concatenate(terms) if terms else np.zeros(0, dtype=np.int32),
        list(vocabulary),
    )


def _repeat_each(values: list[T], counts: list[int]) -> Iterator[T]:
    return chain.from_iterable(map(repeat, values, counts))


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: die with the indexing process, even when it is SIGKILLed.

    Otherwise idle workers wait on the task queue forever (found by tests/test_reliability_crash.py).
    """
    with contextlib.suppress(Exception):  # PR_SET_PDEATHSIG is Linux-only
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _encode_chunk(chunk: _Chunk) -> _ChunkResult:
    """Split and tokenize some articles (runs in a worker process on large corpora).

    A passage's tokens are its title's repeated ``title_weight`` times, then
    its own; all the chunk's tokens are turned into terms at once.
    """
    tokens: list[str] = []
    sizes: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    passage_counts: list[int] = []
    for title, text in chunk.articles:
        title_tokens = title.split() * chunk.title_weight if chunk.title_weight else []
        spans = split_passages(text)
        passage_counts.append(len(spans))
        for start, end in spans:
            starts.append(start)
            ends.append(end)
            found = text[start:end].split()
            if title_tokens:
                tokens += title_tokens
            tokens += found
            sizes.append(len(title_tokens) + len(found))
    terms_of = passage_terms()
    ids, per_token = terms_of.encode(tokens)
    global _sent_terms
    first = _sent_terms[1] if _sent_terms[0] == chunk.session else 0
    new_terms = terms_of.terms_from(first)
    _sent_terms = (chunk.session, first + len(new_terms))
    token_bounds = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=token_bounds[1:])
    terms_before = np.zeros(len(tokens) + 1, dtype=np.int64)
    np.cumsum(per_token, out=terms_before[1:])
    return _ChunkResult(
        os.getpid(),
        first,
        new_terms,
        np.asarray(passage_counts, dtype=np.int64),
        np.asarray(starts, dtype=np.int64),
        np.asarray(ends, dtype=np.int64),
        terms_before[token_bounds[1:]] - terms_before[token_bounds[:-1]],
        ids,
    )


def _encode_forked_chunk(number: int) -> _ChunkResult:
    """``_encode_chunk`` of a chunk the worker inherited when it was forked."""
    return _encode_chunk(_forked_chunks[number])


def _write(
    db: store.Connection,
    params: BM25Params,
    title_weight: int,
    full: bool,
    stale_article_ids: set[str],
    new_articles: list[Article],
    passages: list[_NewPassage],
    lengths: np.ndarray,
    doc_terms: np.ndarray,
    vocabulary: list[str],
    changed_files: dict[str, tuple[str, int]],
    file_articles: dict[str, list[str]],
    line_hashes: dict[str, bytes],
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
            removed_ids, removed_terms = _remove_articles(conn, stale_article_ids, title_weight)
            doc_len[removed_ids] = 0

    first_id = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM passages").fetchone()[0])
    passage_ids = np.arange(first_id, first_id + len(passages), dtype=np.int64)
    per_article: dict[str, int] = {}
    for passage in passages:
        per_article[passage.article_id] = per_article.get(passage.article_id, 0) + 1
    conn.executemany(
        "INSERT INTO articles(id, title, url, source, published, author, path, file, text, passage_count, "
        f"{store.SOURCE_HASH_COLUMN}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
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
                line_hashes.get(a.path or ""),
            )
            for a in new_articles
        ],
    )
    conn.executemany(
        "INSERT INTO passages(id, article_id, ordinal, start, end, length, text) VALUES (?,?,?,?,?,?,?)",
        [
            (pid, p.article_id, p.ordinal, p.start, p.end, n, p.text)
            for pid, p, n in zip(passage_ids.tolist(), passages, lengths.tolist(), strict=True)
        ],
    )

    size = max(len(doc_len), first_id + len(passages))
    if size > len(doc_len):
        doc_len = np.concatenate([doc_len, np.zeros(size - len(doc_len), dtype=np.int64)])
    doc_len[passage_ids] = lengths

    token_docs = np.repeat(passage_ids, lengths)
    offsets, ids, tfs, df = build_postings(token_docs, doc_terms, len(vocabulary))
    del token_docs
    new_index = {term: t for t, term in enumerate(vocabulary) if df[t] > 0}
    if full:
        blobs = encode_many(offsets, ids, tfs, doc_len[ids])
        conn.executemany(
            "INSERT INTO terms(term, df, postings) VALUES (?, ?, ?)",
            ((term, int(df[t]), blobs[t]) for term, t in new_index.items()),
        )
    else:
        _merge_postings(conn, new_index, offsets, ids, tfs, removed_ids, removed_terms, doc_len)

    n_docs = int(conn.execute("SELECT count(*) FROM passages").fetchone()[0])
    all_df = np.fromiter((row[0] for row in conn.execute("SELECT df FROM terms")), dtype=np.float64)
    total_tokens = int(doc_len.sum())
    conn.execute(
        "INSERT INTO blobs(name, data) VALUES ('doc_len', ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
        (doc_len.astype("<u4").tobytes(),),
    )
    article_of = _article_numbers(db, full, removed_ids, passage_ids, passages, len(doc_len))
    conn.execute(
        "INSERT INTO blobs(name, data) VALUES ('article_of', ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
        (article_of.astype("<u4").tobytes(),),
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
                "ON CONFLICT(path) DO UPDATE SET sha256=excluded.sha256, size=excluded.size, "
                "article_ids=excluded.article_ids, indexed_at=excluded.indexed_at",
                (key, digest, size_bytes, json.dumps(article_ids), now),
            )
        else:
            conn.execute("UPDATE files SET article_ids = ? WHERE path = ?", (json.dumps(article_ids), key))


def _article_numbers(
    db: store.Connection,
    full: bool,
    removed_ids: np.ndarray,
    passage_ids: np.ndarray,
    passages: list[_NewPassage],
    size: int,
) -> np.ndarray:
    """Passage id -> a number for its article (0 for no passage), for article-level scoring.

    An article's passages get consecutive ids, so each article is one run of equal
    numbers. Numbers are never reused within a database until a full rebuild.
    """
    article_of = np.zeros(size, dtype=np.int64)
    if not full:
        row = db.execute("SELECT data FROM blobs WHERE name = 'article_of'").fetchone()
        if row is not None:
            previous = np.frombuffer(row[0], dtype="<u4").astype(np.int64)
            article_of[: min(len(previous), size)] = previous[:size]
        article_of[removed_ids] = 0
    next_number = int(article_of.max()) + 1 if len(article_of) else 1
    numbers: dict[str, int] = {}
    for pid, passage in zip(passage_ids.tolist(), passages, strict=True):
        if passage.article_id not in numbers:
            numbers[passage.article_id] = next_number + len(numbers)
        article_of[pid] = numbers[passage.article_id]
    return article_of


def _remove_articles(conn: sqlite3.Connection, article_ids: set[str], title_weight: int) -> tuple[np.ndarray, set[str]]:
    """Delete articles and their passages; return the passage ids and every term they were indexed with."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS stale(id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM stale")
    conn.executemany("INSERT INTO stale(id) VALUES (?)", [(i,) for i in article_ids])
    rows = conn.execute(
        "SELECT p.id, p.text, a.title FROM passages p JOIN articles a ON a.id = p.article_id "
        "WHERE p.article_id IN (SELECT id FROM stale)"
    ).fetchall()
    terms_of = passage_terms()
    terms: set[str] = set()
    for start in range(0, len(rows), 20_000):  # bounded token lists however much is removed
        terms |= terms_of.distinct(row[1] for row in rows[start : start + 20_000])
    if title_weight:
        terms |= terms_of.distinct({row[2] or "" for row in rows})
    conn.execute("DELETE FROM passages WHERE article_id IN (SELECT id FROM stale)")
    conn.execute("DELETE FROM articles WHERE id IN (SELECT id FROM stale)")
    return np.array([row[0] for row in rows], dtype=np.int64), terms


def _merge_postings(
    conn: sqlite3.Connection,
    new_index: dict[str, int],
    offsets: np.ndarray,
    ids: np.ndarray,
    tfs: np.ndarray,
    removed_ids: np.ndarray,
    removed_terms: set[str],
    doc_len: np.ndarray,
) -> None:
    """Rewrite the postings of terms that gained or lost passages (new passage ids are all larger).

    Each affected term's postings become its old ones without the removed
    passages, followed by its new ones; the shuffling is done for all terms
    at once.
    """
    affected = sorted(set(new_index) | removed_terms)
    n = len(affected)
    stored = _stored_postings(conn, affected)
    present = [j for j, term in enumerate(affected) if term in stored]
    decoded = [decode(stored[affected[j]]) for j in present]
    del stored
    old_counts = np.zeros(n, dtype=np.int64)
    old_counts[present] = [len(postings.ids) for postings in decoded]
    # Four bytes a posting: a 1% update still rewrites most of the postings of a large index.
    old_ids = np.concatenate([p.ids for p in decoded]) if decoded else np.zeros(0, dtype=np.uint32)
    old_tfs = (
        np.concatenate([p.term_frequencies() for p in decoded], dtype=np.uint32)
        if decoded
        else np.zeros(0, dtype=np.uint32)
    )
    del decoded
    if len(removed_ids) and len(old_ids):
        removed = np.zeros(len(doc_len), dtype=bool)
        removed[removed_ids] = True
        gone = removed[old_ids]
        dropped = np.flatnonzero(gone)  # few: the postings of the removed passages
        owners = np.searchsorted(np.cumsum(old_counts), dropped, side="right")
        old_counts = old_counts - np.bincount(owners, minlength=n)
        old_ids, old_tfs = np.delete(old_ids, dropped), np.delete(old_tfs, dropped)  # faster than a mask here
    # Each term's new postings go right after its old ones: work out where the (few) new postings
    # land in the merged arrays; the old postings fill the other places, in order.
    position = dict(zip(affected, range(n), strict=True))
    vocab_of = np.fromiter(new_index.values(), dtype=np.int64, count=len(new_index))
    affected_of = np.fromiter(map(position.__getitem__, new_index), dtype=np.int64, count=len(new_index))
    new_counts = np.zeros(n, dtype=np.int64)
    new_counts[affected_of] = offsets[vocab_of + 1] - offsets[vocab_of]
    merged_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(old_counts + new_counts, out=merged_offsets[1:])
    shift = np.zeros(len(offsets) - 1, dtype=np.int64)
    shift[vocab_of] = merged_offsets[affected_of] + old_counts[affected_of] - offsets[vocab_of]
    new_at = np.arange(len(ids), dtype=np.int64) + np.repeat(shift, np.diff(offsets))
    is_old = np.ones(int(merged_offsets[-1]), dtype=bool)
    is_old[new_at] = False
    all_ids = np.empty(len(is_old), dtype=np.uint32)
    all_tfs = np.empty(len(is_old), dtype=np.uint32)
    all_ids[is_old] = old_ids
    all_ids[new_at] = ids
    all_tfs[is_old] = old_tfs
    all_tfs[new_at] = tfs
    del old_ids, old_tfs, is_old
    blobs = encode_many(merged_offsets, all_ids, all_tfs, doc_len.astype(np.uint32)[all_ids])
    counts = np.diff(merged_offsets).tolist()
    conn.executemany(
        "DELETE FROM terms WHERE term = ?",
        [(term,) for term, blob in zip(affected, blobs, strict=True) if blob is None],
    )
    conn.executemany(
        "INSERT INTO terms(term, df, postings) VALUES (?, ?, ?) "
        "ON CONFLICT(term) DO UPDATE SET df = excluded.df, postings = excluded.postings",
        [(term, n, blob) for term, n, blob in zip(affected, counts, blobs, strict=True) if blob is not None],
    )


def _stored_postings(conn: sqlite3.Connection, terms: list[str]) -> dict[str, bytes]:
    """The stored postings blob of each of ``terms`` that has one."""
    found: dict[str, bytes] = {}
    for start in range(0, len(terms), 500):
        batch = terms[start : start + 500]
        marks = ",".join("?" * len(batch))
        found.update(conn.execute(f"SELECT term, postings FROM terms WHERE term IN ({marks})", batch).fetchall())
    return found


def _load_doc_len(db: store.Connection) -> np.ndarray:
    row = db.execute("SELECT data FROM blobs WHERE name = 'doc_len'").fetchone()
    if row is None:
        return np.zeros(1, dtype=np.int64)
    return np.frombuffer(row[0], dtype="<u4").astype(np.int64)


def _drop_all(db: store.Connection) -> None:
    """Drop the index tables of an old schema; tables of the front ends (``bot_*``, e.g. feedback) stay."""
    for table in db.table_names():
        if not table.startswith(("bot_", "sqlite_")):
            # IF EXISTS: dropping a virtual table (full-text search) has dropped its shadow tables already
            db.execute(f'DROP TABLE IF EXISTS "{table.replace(chr(34), chr(34) * 2)}"')


def _checkpoint(db: store.Connection) -> None:
    # A reader may hold the WAL; SQLite then checkpoints later on its own.
    with contextlib.suppress(sqlite3.OperationalError):
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
