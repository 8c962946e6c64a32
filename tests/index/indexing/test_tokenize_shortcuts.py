"""The build pipeline's shortcuts give exactly what the plain tokenizer, splitter and grouping give.

The indexer looks terms up per whitespace-separated token, splits and
tokenizes in chunks (in worker processes on large corpora), groups postings by
sorting keys in slices, and encodes terms in batches; each is checked here
against the straightforward way on text meant to break it.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from corpusbot.index.engine import bm25
from corpusbot.index.indexing import passage_encoding, term_cache
from corpusbot.index.models import Article
from corpusbot.index.text.passages import split_passages
from corpusbot.index.text.tokenizer import default_tokenizer

FRAGMENTS = [
    "The",
    "the",
    "U.S.",
    "US",
    "U.S.A.",
    "us",
    "U.S.-China",
    "rare-earth",
    "rock/paper",
    "3.5%",
    "1,000.25",
    "2025.06.01",
    "don't",
    "O'Neil's",
    "China’s",
    "licences",
    "colour",
    "café",
    "Ünïcödé",
    "ﬁne",
    "ＵＳ",
    "__init__",
    "a_b",
    "—",
    "word—word",
    "(quoted)",
    '"Hello,"',
    "e.g.",
    "Mr.",
    "3rd",
    "x²",
    "١٢٣",
    "日本語",
    "🙂",
    "naïve",
    "’s",
    "'",
    "''",
    "...",
    "Dr.Smith",
    "well-known",
    "it's",
    "IT'S",
    "ﬀ",
    "\u00ad",
    "co-op",
    "A.B.C.",
]
SPACES = [" ", "  ", "\n", "\n\n", "\t", "\u00a0", "\u2028", "\u3000", " \u200b "]


def tricky_text(rng: np.random.Generator, words: int) -> str:
    parts = []
    for _ in range(words):
        parts.append(str(rng.choice(FRAGMENTS)))
        parts.append(str(rng.choice(SPACES)))
    return "".join(parts)


def test_passage_terms_equal_the_tokenizer_on_tricky_text() -> None:
    tokenizer = default_tokenizer()
    cached = term_cache.PassageTerms()
    rng = np.random.default_rng(5)
    texts = [tricky_text(rng, int(rng.integers(0, 60))) for _ in range(300)]
    for text in texts * 2:  # learning, then from the cache
        assert cached(text) == tokenizer.terms(text), repr(text)


def test_encode_gives_every_token_its_terms_in_order() -> None:
    tokenizer = default_tokenizer()
    rng = np.random.default_rng(6)
    text = tricky_text(rng, 2000)
    tokens = text.split()
    for terms_of in (term_cache.PassageTerms(), term_cache.PassageTerms()):
        terms_of(text[: len(text) // 3])  # part of the tokens already known
        ids, per_token = terms_of.encode(tokens)
        vocabulary = terms_of.terms_from(0)
        assert [vocabulary[i] for i in ids.tolist()] == tokenizer.terms(text)
        assert per_token.tolist() == [len(tokenizer.terms(token)) for token in tokens]
        assert len(set(vocabulary)) == len(vocabulary) and set(vocabulary) == set(tokenizer.terms(text))
        assert terms_of.terms_from(5) == vocabulary[5:]


def test_a_full_token_cache_is_emptied_and_answers_stay_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(term_cache.PassageTerms, "MAX_CACHED", 10)
    tokenizer = default_tokenizer()
    cached = term_cache.PassageTerms()
    rng = np.random.default_rng(7)
    for _ in range(50):
        text = tricky_text(rng, 30)
        assert cached(text) == tokenizer.terms(text)
        ids, _ = cached.encode(text.split())
        assert [cached.terms_from(0)[i] for i in ids.tolist()] == tokenizer.terms(text)


def articles(n: int, seed: int) -> list[Article]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        paragraphs = ["\n".join(tricky_text(rng, int(rng.integers(5, 90))) for _ in range(2)) for _ in range(3)]
        title = tricky_text(rng, 4).strip() if i % 3 else ""
        out.append(Article(id=f"a{i}", title=title, text="\n\n".join(paragraphs).strip() or "x"))
    return out


@pytest.mark.parametrize("title_weight", [0, 2])
def test_split_and_tokenize_equals_split_passages_and_tokenizer(
    monkeypatch: pytest.MonkeyPatch, title_weight: int
) -> None:
    tokenizer = default_tokenizer()
    corpus = articles(60, seed=title_weight)
    monkeypatch.setattr(passage_encoding, "CHUNK_CHARS", 3_000)  # many chunks
    results = {}
    for workers, parallel_min in ((1, 10**12), (2, 0)):  # in this process, then in two worker processes
        monkeypatch.setattr(passage_encoding, "PARALLEL_MIN_CHARS", parallel_min)
        results[workers] = passage_encoding.split_and_tokenize(corpus, title_weight, workers)
    expected_passages, expected_tokens = [], []
    for article in corpus:
        title_terms = tokenizer.terms(article.title) * title_weight
        for ordinal, span in enumerate(split_passages(article.text), start=1):
            text = article.text[span.start : span.end]
            expected_passages.append((article.id, ordinal, span.start, span.end, text))
            expected_tokens.append(title_terms + tokenizer.terms(text))
    for passages, lengths, doc_terms, vocabulary in results.values():
        assert [tuple(p) for p in passages] == expected_passages
        assert [(p.article_id, p.ordinal, p.start, p.end, p.text) for p in passages] == expected_passages
        assert lengths.tolist() == [len(tokens) for tokens in expected_tokens]
        assert doc_terms.dtype == np.int32
        assert [vocabulary[t] for t in doc_terms.tolist()] == [t for tokens in expected_tokens for t in tokens]


def naive_postings(docs: np.ndarray, terms: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    counts = Counter(zip(terms.tolist(), docs.tolist(), strict=True))
    grouped: dict[int, list[tuple[int, int]]] = {}
    for (term, doc), tf in sorted(counts.items()):
        grouped.setdefault(term, []).append((doc, tf))
    return grouped


@pytest.mark.parametrize("slice_size", [1, 7, 10_000])
def test_build_postings_in_slices_equals_plain_grouping(monkeypatch: pytest.MonkeyPatch, slice_size: int) -> None:
    monkeypatch.setattr(bm25, "_POSTINGS_SLICE", slice_size)
    rng = np.random.default_rng(slice_size)
    lengths = rng.integers(0, 30, size=200)
    docs = np.repeat(np.arange(1, 201), lengths)
    terms = (rng.zipf(1.3, size=len(docs)) % 50).astype(np.int32)  # many repeats (tf > 1)
    terms[:40] = 7  # a long run of one pair across slices
    docs[:40] = 1
    offsets, ids, tfs, df = bm25.build_postings(docs, terms, 60)
    expected = naive_postings(docs, terms)
    for term in range(60):
        a, b = offsets[term], offsets[term + 1]
        got = list(zip(ids[a:b].tolist(), tfs[a:b].tolist(), strict=True))
        assert got == expected.get(term, []), term
        assert df[term] == len(expected.get(term, []))


def test_build_postings_sorts_on_two_threads_like_on_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 1 << 40, size=5_000_000)
    expected = np.sort(keys)
    monkeypatch.setattr(bm25.os, "cpu_count", lambda: 2)
    bm25._sort_in_place(keys)
    assert np.array_equal(keys, expected)


def test_encoding_in_batches_equals_one_term_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    lengths = rng.integers(1, 40, size=3000)
    docs = np.repeat(np.arange(1, 3001), lengths)
    terms = (rng.zipf(1.2, size=len(docs)) % 400).astype(np.int32)
    terms[:60] = 3  # tf 4+ in one passage
    doc_len = np.concatenate([[0], lengths])
    offsets, ids, tfs, _ = bm25.build_postings(docs, terms, 500)
    monkeypatch.setattr(bm25, "ENCODE_BATCH_POSTINGS", 50)  # big terms alone, small ones grouped
    batched = bm25.encode_many(offsets, ids, tfs, doc_len[ids])
    for term in range(500):
        a, b = offsets[term], offsets[term + 1]
        if a == b:
            assert batched[term] is None
            continue
        assert batched[term] == bm25.encode_postings(ids[a:b], tfs[a:b], doc_len[ids[a:b]])
        decoded = bm25.decode(batched[term])
        assert decoded.ids.tolist() == ids[a:b].tolist()
        assert decoded.term_frequencies().tolist() == tfs[a:b].tolist()
        buckets: dict[int, list[tuple[int, int]]] = {}
        for tf, length in zip(tfs[a:b].tolist(), doc_len[ids[a:b]].tolist(), strict=True):
            buckets.setdefault(min(tf, bm25.TF_BUCKETS), []).append((tf, length))
        expected = [[max(t for t, _ in rows), min(n for _, n in rows)] for _, rows in sorted(buckets.items())]
        assert decoded.bounds.tolist() == expected


def token_lists(result: tuple) -> list[list[str]]:
    _, lengths, doc_terms, vocabulary = result
    flat = [vocabulary[t] for t in doc_terms.tolist()]
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    return [flat[a:b] for a, b in itertools.pairwise(bounds)]


def test_threads_indexing_at_once_share_the_caches_safely(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokenizing in threads of one process while another thread tokenizes queries.

    With other threads running the indexer never forks worker processes (a child could inherit a lock held
    by another thread), so all of this runs in-process and must still share the caches safely.
    """
    tokenizer = default_tokenizer()
    corpora = [articles(40 if i % 2 else 10, seed=10 + i) for i in range(4)]
    expected = [
        [tokenizer.terms(a.title) + tokenizer.terms(a.text[s.start : s.end]) for a in c for s in split_passages(a.text)]
        for c in corpora
    ]
    monkeypatch.setattr(passage_encoding, "CHUNK_CHARS", 2_000)
    # Large enough to fork, were this process single-threaded.
    monkeypatch.setattr(passage_encoding, "PARALLEL_MIN_CHARS", 30_000)
    stop = threading.Event()
    texts = [a.text for a in corpora[0]]

    def querying() -> int:
        done = 0
        while not stop.is_set():
            text = texts[done % len(texts)]
            assert term_cache.passage_terms()(text) == tokenizer.terms(text)
            done += 1
        return done

    with ThreadPoolExecutor(max_workers=3) as pool:
        background = pool.submit(querying)
        runs = [pool.submit(passage_encoding.split_and_tokenize, corpora[i % 4], 1, 2) for i in range(8)]
        got = [future.result(timeout=120) for future in runs]
        stop.set()
        assert background.result(timeout=30) > 0
    for i, result in enumerate(got):
        assert token_lists(result) == expected[i % 4]


def test_a_multi_threaded_process_never_forks_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passage_encoding, "CHUNK_CHARS", 2_000)
    monkeypatch.setattr(passage_encoding, "PARALLEL_MIN_CHARS", 1_000)

    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("forked worker processes from a multi-threaded process")

    monkeypatch.setattr(passage_encoding, "ProcessPoolExecutor", no_pool)
    corpus = articles(20, seed=3)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the calling thread is not alone any more
        passages, *_ = pool.submit(passage_encoding.split_and_tokenize, corpus, 1, 2).result(timeout=60)
    assert passages
