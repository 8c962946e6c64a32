"""Split articles into passages and turn each passage's tokens into term ids, in worker processes on large corpora.

The articles come as a stream (``PassageEncoder.encode``) and are cut into chunks of about
``CHUNK_CHARS`` characters; each chunk is one task (``_encode_chunk``). A passage's tokens are its
article title's, repeated ``title_weight`` times, then its own. Each process numbers terms on its
own; the results are renumbered into one vocabulary as they come in. On a large corpus the chunks
go to forked worker processes, at most ``IN_FLIGHT_PER_WORKER`` per worker at a time, so however
large the corpus, memory holds a few chunks; the workers are forked when the first chunk is sent,
by a process that does not hold the corpus (the articles wait in the run's spool on disk).

``encode_articles`` is what the indexer runs: passage spans and token counts per passage, and the
postings gathered chunk by chunk (``PostingsBuffer``). ``split_and_tokenize`` keeps every passage's
text and every token in memory instead: for small corpora and the tests of the pipeline.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from itertools import chain, islice, repeat
from operator import getitem
from typing import NamedTuple, TypeVar

import numpy as np

from corpusbot.index.engine import pair_sketches as pair_blobs
from corpusbot.index.engine.sketches import passage_sketches, term_bits
from corpusbot.index.indexing.postings_buffer import PostingsBuffer
from corpusbot.index.indexing.progress import IndexProgress, ProgressCallback
from corpusbot.index.indexing.term_cache import PassageTerms, passage_terms
from corpusbot.index.models import Article
from corpusbot.index.text.passages import split_passages

T = TypeVar("T")

PARALLEL_MIN_CHARS = 8_000_000  # below this, starting worker processes costs more than it saves
CHUNK_CHARS = 2_000_000
IN_FLIGHT_PER_WORKER = 2  # chunks sent to the workers and not yet taken back, per worker


class NewPassage(NamedTuple):  # a tuple, not a dataclass: a large build makes very many of them
    article_id: str
    ordinal: int
    start: int
    end: int
    text: str


class EncodedPassages(NamedTuple):
    """The passages of some articles and their terms, all in memory (``split_and_tokenize``)."""

    passages: list[NewPassage]
    lengths: np.ndarray  # tokens per passage
    term_ids: np.ndarray  # every passage's tokens, concatenated (int32, numbers into ``vocabulary``)
    vocabulary: list[str]


class EncodedChunk(NamedTuple):
    """The passages of consecutive articles (spans into their texts) and their tokens as term ids."""

    passage_counts: np.ndarray  # passages per article
    starts: np.ndarray
    ends: np.ndarray
    lengths: np.ndarray  # tokens per passage
    term_ids: np.ndarray  # every passage's tokens, concatenated (int32, numbers into the encoder's vocabulary)
    sketches: np.ndarray  # each passage's text's term-set sketch and distinct-term count (engine.sketches)
    distinct: np.ndarray
    pair_sketches: np.ndarray  # each passage's text's adjacent-pair sketch, a row of uint8 (engine.pair_sketches)


class EncodedArticles(NamedTuple):
    """The passages of a run's new articles and their postings, ready to be written (``encode_articles``)."""

    passage_counts: np.ndarray  # passages per article, in the order of the articles
    starts: np.ndarray  # each passage's span in its article's text
    ends: np.ndarray
    lengths: np.ndarray  # tokens per passage
    postings: PostingsBuffer  # passages numbered from 0 in the same order
    vocabulary: list[str]  # the postings' term numbers -> terms
    sketches: np.ndarray  # each passage's text's term-set sketch (uint64) and distinct-term count (engine.sketches)
    distinct: np.ndarray
    pair_sketches: np.ndarray  # each passage's text's adjacent-pair sketch, a row of uint8 (engine.pair_sketches)


class _Chunk(NamedTuple):
    """Articles for one split-and-tokenize task."""

    articles: list[tuple[str, str]]  # (title, text)
    title_weight: int
    session: str  # one per encoding of a stream of articles


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
    sketches: np.ndarray
    distinct: np.ndarray
    pair_sketches: np.ndarray


_sent_terms = ("", 0)  # (session, how many of this process's terms its results have carried so far)


class PassageEncoder:
    """Splits and tokenizes a stream of articles chunk by chunk, numbering all their terms in one vocabulary.

    ``expected_chars``: about how much text the stream holds (worker processes are used from
    ``PARALLEL_MIN_CHARS`` on, by a single-threaded process, when there is more than one chunk).
    """

    def __init__(self, title_weight: int, workers: int | None, expected_chars: int) -> None:
        self.title_weight = title_weight
        self.workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        self.expected_chars = expected_chars
        self.vocabulary: list[str] = []  # term ids of the chunks -> terms; grows as chunks come
        self._term_ids: dict[str, int] = {}
        self._numbering: dict[int, np.ndarray] = {}  # per process: its term numbers -> vocabulary numbers

    def encode(self, articles: Iterable[tuple[str, str]]) -> Iterator[EncodedChunk]:
        """The chunks of ``(title, text)`` articles, in order."""
        chunks = _chunks(articles, self.title_weight)
        head = list(islice(chunks, 2))
        if not head:
            return
        # Worker processes are forked only from a single-threaded process (the CLI). Forking a process whose
        # other threads may hold locks (the Slack bot's `/ask admin reindex`) can leave a child stuck on a lock
        # that no thread of its own will ever release; there the work stays in this process.
        parallel = (
            self.expected_chars >= PARALLEL_MIN_CHARS
            and self.workers > 1
            and len(head) > 1
            and threading.active_count() == 1
        )
        # One session at a time in this process (the results carry new terms since the last).
        with passage_terms().lock:
            chunks = chain(head, chunks)
            results = _in_workers(chunks, self.workers) if parallel else map(_encode_chunk, chunks)
            for result in results:
                yield self._renumbered(result)

    def _renumbered(self, result: _ChunkResult) -> EncodedChunk:
        known = self._numbering.get(result.process, np.zeros(0, dtype=np.int32))
        if result.first_new_term != len(known):  # results of one process arrive in the order it made them
            raise RuntimeError("tokenizer results arrived out of order")
        term_ids, vocabulary = self._term_ids, self.vocabulary
        new = []
        for term in result.new_terms:
            number = term_ids.get(term)
            if number is None:
                number = term_ids[term] = len(vocabulary)
                vocabulary.append(term)
            new.append(number)
        self._numbering[result.process] = known = np.concatenate([known, np.asarray(new, dtype=np.int32)])
        return EncodedChunk(
            result.passage_counts,
            result.starts,
            result.ends,
            result.lengths,
            known[result.term_ids],
            result.sketches,
            result.distinct,
            result.pair_sketches,
        )


def encode_articles(
    articles: Iterable[tuple[str, str]],
    count: int,
    expected_chars: int,
    title_weight: int,
    workers: int | None,
    progress: ProgressCallback | None = None,
) -> EncodedArticles:
    """Split and tokenize ``count`` ``(title, text)`` articles; keep their passages' spans and their postings.

    Memory holds the postings (about 3 bytes each) and a few numbers per passage, not the
    articles' texts nor their tokens.
    """
    encoder = PassageEncoder(title_weight, workers, expected_chars)
    postings = PostingsBuffer()
    counts: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    sketches: list[np.ndarray] = []
    distinct: list[np.ndarray] = []
    pair_sketches: list[np.ndarray] = []
    done = 0
    for chunk in encoder.encode(articles):
        counts.append(chunk.passage_counts)
        starts.append(chunk.starts)
        ends.append(chunk.ends)
        lengths.append(chunk.lengths)
        sketches.append(chunk.sketches)
        distinct.append(chunk.distinct)
        pair_sketches.append(chunk.pair_sketches)
        postings.add(chunk.lengths, chunk.term_ids)
        done += len(chunk.passage_counts)
        if progress:
            progress(IndexProgress("tokenizing", done, count, "articles", passages=postings.passages))
    postings.finish(len(encoder.vocabulary))
    return EncodedArticles(
        _concatenate(counts),
        _concatenate(starts),
        _concatenate(ends),
        _concatenate(lengths),
        postings,
        encoder.vocabulary,
        np.concatenate(sketches) if sketches else np.zeros(0, dtype=np.uint64),
        np.concatenate(distinct) if distinct else np.zeros(0, dtype=np.uint32),
        np.concatenate(pair_sketches) if pair_sketches else np.zeros((0, pair_blobs.BYTES), dtype=np.uint8),
    )


def _concatenate(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


def split_and_tokenize(articles: list[Article], title_weight: int, workers: int | None) -> EncodedPassages:
    """The articles' passages, their token counts, the concatenated term ids (int32) and the vocabulary.

    Everything at once, in memory; the indexer streams instead (``encode_articles``).
    """
    encoder = PassageEncoder(title_weight, workers, sum(len(a.text) for a in articles))
    chunks = encoder.encode((article.title or "", article.text) for article in articles)
    collecting = gc.isenabled()
    gc.disable()  # so many new tuples would set off full collections over everything alive, again and again
    try:
        return _collect_results(articles, chunks, encoder.vocabulary)
    finally:
        if collecting:
            gc.enable()


def _chunks(articles: Iterable[tuple[str, str]], title_weight: int) -> Iterator[_Chunk]:
    """The articles in consecutive groups of about ``CHUNK_CHARS`` characters of text."""
    current: list[tuple[str, str]] = []
    session = os.urandom(8).hex()
    size = 0
    for title, text in articles:
        current.append((title, text))
        size += len(text)
        if size >= CHUNK_CHARS:
            yield _Chunk(current, title_weight, session)
            current, size = [], 0
    if current:
        yield _Chunk(current, title_weight, session)


def _in_workers(chunks: Iterable[_Chunk], workers: int) -> Iterator[_ChunkResult]:
    """Encode the chunks in a pool of worker processes (forked where the platform can fork), results in order.

    At most ``IN_FLIGHT_PER_WORKER`` chunks per worker are sent and not yet taken back: the next
    chunk is read (and sent) only when a result has been taken.
    """
    fork = "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if fork else None)
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_exit_with_parent, initargs=(os.getpid(),)
    )
    try:
        pending: deque[Future[_ChunkResult]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_encode_task, chunk))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _collect_results(articles: list[Article], chunks: Iterable[EncodedChunk], vocabulary: list[str]) -> EncodedPassages:
    """Passages with their text, token counts, term ids in one vocabulary (int32), the vocabulary."""
    passages: list[NewPassage] = []
    lengths: list[np.ndarray] = []
    terms: list[np.ndarray] = []
    new_passage = partial(tuple.__new__, NewPassage)
    at = 0
    for chunk in chunks:
        # One passage record per span, built by C-level iterators (there are very many on a large build).
        counts = chunk.passage_counts.tolist()
        owners = articles[at : at + len(counts)]
        at += len(counts)
        starts, ends = chunk.starts.tolist(), chunk.ends.tolist()
        texts = map(getitem, _repeat_each([a.text for a in owners], counts), map(slice, starts, ends))
        article_ids = _repeat_each([a.id for a in owners], counts)
        ordinals = chain.from_iterable(map(range, repeat(1), [c + 1 for c in counts]))
        passages.extend(map(new_passage, zip(article_ids, ordinals, starts, ends, texts, strict=True)))
        lengths.append(chunk.lengths)
        terms.append(chunk.term_ids)
    return EncodedPassages(
        passages,
        np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64),
        np.concatenate(terms) if terms else np.zeros(0, dtype=np.int32),
        list(vocabulary),
    )


def _repeat_each(values: list[T], counts: list[int]) -> Iterator[T]:
    return chain.from_iterable(map(repeat, values, counts))


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: die with the indexing process, even when it is SIGKILLed.

    Otherwise idle workers wait on the task queue forever (tests/index/indexing/test_crash.py kills one).
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
    title_sizes: list[int] = []
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
            title_sizes.append(len(title_tokens))
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
    lengths = terms_before[token_bounds[1:]] - terms_before[token_bounds[:-1]]
    title_terms = (
        terms_before[token_bounds[:-1] + np.asarray(title_sizes, dtype=np.int64)] - terms_before[token_bounds[:-1]]
    )
    bits, hashes = _term_bits_and_hashes(terms_of)
    sketches, distinct = passage_sketches(ids, lengths, title_terms, bits)
    pairs = pair_blobs.passage_pair_sketches(ids, lengths, title_terms, hashes)
    return _ChunkResult(
        os.getpid(),
        first,
        new_terms,
        np.asarray(passage_counts, dtype=np.int64),
        np.asarray(starts, dtype=np.int64),
        np.asarray(ends, dtype=np.int64),
        lengths,
        ids,
        sketches,
        distinct,
        pairs,
    )


def _encode_task(chunk: _Chunk) -> _ChunkResult:
    """What a worker process runs: ``_encode_chunk``, looked up when it runs (so a patched one is called)."""
    return _encode_chunk(chunk)


# The sketch bit and pair-sketch hash of each term number of this process's PassageTerms (grown as it numbers more
# terms).
_known_terms: tuple[PassageTerms | None, np.ndarray, np.ndarray] = (
    None,
    np.zeros(0, dtype=np.uint64),
    np.zeros(0, dtype=np.uint64),
)


def _term_bits_and_hashes(terms_of: PassageTerms) -> tuple[np.ndarray, np.ndarray]:
    """The term-set sketch bit (``sketches.term_bits``) and the pair-sketch hash (``pair_sketches.term_hashes``) of
    every term ``terms_of`` has numbered."""
    global _known_terms
    owner, bits, hashes = _known_terms
    if owner is not terms_of:
        bits, hashes = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    new = terms_of.terms_from(len(bits))
    if new:
        bits = np.concatenate([bits, term_bits(new)])
        hashes = np.concatenate([hashes, pair_blobs.term_hashes(new)])
    _known_terms = (terms_of, bits, hashes)
    return bits, hashes
