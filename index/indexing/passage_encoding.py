"""Split articles into passages and turn each passage's tokens into term ids, in worker processes on large corpora.

The articles are cut into chunks of about ``CHUNK_CHARS`` characters; each chunk is one task
(``_encode_chunk``). A passage's tokens are its article title's, repeated ``title_weight`` times,
then its own. Each process numbers terms on its own; the results are renumbered into one vocabulary
as they come in.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from itertools import chain, repeat
from operator import getitem
from typing import NamedTuple, TypeVar

import numpy as np

from corpusbot.index.indexing.term_cache import passage_terms
from corpusbot.index.models import Article
from corpusbot.index.text.passages import split_passages

T = TypeVar("T")

PARALLEL_MIN_CHARS = 8_000_000  # below this, starting worker processes costs more than it saves
CHUNK_CHARS = 2_000_000


class NewPassage(NamedTuple):  # a tuple, not a dataclass: a large build makes very many of them
    article_id: str
    ordinal: int
    start: int
    end: int
    text: str


class EncodedPassages(NamedTuple):
    """The passages of some articles and their terms, ready to be written."""

    passages: list[NewPassage]
    lengths: np.ndarray  # tokens per passage
    term_ids: np.ndarray  # every passage's tokens, concatenated (int32, numbers into ``vocabulary``)
    vocabulary: list[str]


class _Chunk(NamedTuple):
    """Articles for one split-and-tokenize task."""

    articles: list[tuple[str, str]]  # (title, text)
    title_weight: int
    session: str  # one per split_and_tokenize call


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


def split_and_tokenize(articles: list[Article], title_weight: int, workers: int | None) -> EncodedPassages:
    """The articles' passages, their token counts, the concatenated term ids (int32) and the vocabulary."""
    chunks = _chunks(articles, title_weight)
    total = sum(len(a.text) for a in articles)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    # Worker processes are forked only from a single-threaded process (the CLI). Forking a process whose
    # other threads may hold locks (the Slack bot's `/ask admin reindex`) can leave a child stuck on a lock
    # that no thread of its own will ever release; there the work stays in this process.
    if total >= PARALLEL_MIN_CHARS and workers > 1 and len(chunks) > 1 and threading.active_count() == 1:
        return _encode_in_workers(articles, chunks, workers)
    with passage_terms().lock:  # one session at a time in this process (the results carry new terms since the last)
        return _collect_chunks(articles, map(_encode_chunk, chunks))


def _chunks(articles: list[Article], title_weight: int) -> list[_Chunk]:
    """The articles in consecutive groups of about ``CHUNK_CHARS`` characters of text."""
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
    return chunks


def _encode_in_workers(articles: list[Article], chunks: list[_Chunk], workers: int) -> EncodedPassages:
    """Encode the chunks in a pool of worker processes (forked where the platform can fork)."""
    global _forked_chunks
    fork = "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if fork else None)
    with passage_terms().lock:
        _forked_chunks = chunks if fork else []
        try:
            with ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_exit_with_parent, initargs=(os.getpid(),)
            ) as pool:
                # Each chunk's result is taken in while the workers go on with the next ones.
                tasks = pool.map(_encode_forked_chunk, range(len(chunks))) if fork else pool.map(_encode_chunk, chunks)
                return _collect_chunks(articles, tasks)
        finally:
            _forked_chunks = []


def _collect_chunks(articles: list[Article], results: Iterable[_ChunkResult]) -> EncodedPassages:
    """Passages with their text, token counts, term ids in one vocabulary (int32), the vocabulary."""
    collecting = gc.isenabled()
    gc.disable()  # so many new tuples would set off full collections over everything alive, again and again
    try:
        return _collect_results(articles, results)
    finally:
        if collecting:
            gc.enable()


def _collect_results(articles: list[Article], results: Iterable[_ChunkResult]) -> EncodedPassages:
    passages: list[NewPassage] = []
    vocabulary: dict[str, int] = {}
    numbering: dict[int, np.ndarray] = {}  # per process: its term numbers -> vocabulary numbers
    lengths: list[np.ndarray] = []
    terms: list[np.ndarray] = []
    new_passage = partial(tuple.__new__, NewPassage)
    at = 0
    for result in results:
        # One passage record per span, built by C-level iterators (there are very many on a large build).
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
