"""The build pipeline's shortcuts give exactly what the plain tokenizer, splitter and grouping give.

The indexer looks terms up per whitespace-separated token, splits and
tokenizes in chunks (in worker processes on large corpora), groups postings by
sorting keys in slices, and encodes terms in batches; each is checked here
against the straightforward way on text meant to break it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from index import bm25
from index import indexer as ix
from index.models import Article
from index.passages import split_passages
from index.tokenizer import default_tokenizer

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
    cached = ix.PassageTerms()
    rng = np.random.default_rng(5)
    texts = [tricky_text(rng, int(rng.integers(0, 60))) for _ in range(300)]
    for text in texts * 2:  # learning, then from the cache
        assert cached(text) == tokenizer.terms(text), repr(text)


def test_encode_gives_every_token_its_terms_in_order() -> None:
    tokenizer = default_tokenizer()
    rng = np.random.default_rng(6)
    text = tricky_text(rng, 2000)
    tokens = text.split()
    for terms_of in (ix.PassageTerms(), ix.PassageTerms()):
        terms_of(text[: len(text) // 3])  # part of the tokens already known
        vocabulary, ids, per_token = terms_of.encode(tokens)
        assert [vocabulary[i] for i in ids.tolist()] == tokenizer.terms(text)
        assert per_token.tolist() == [len(tokenizer.terms(token)) for token in tokens]
        assert len(set(vocabulary)) == len(vocabulary) and set(vocabulary) == set(tokenizer.terms(text))


def test_a_full_token_cache_is_emptied_and_answers_stay_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ix.PassageTerms, "MAX_CACHED", 10)
    tokenizer = default_tokenizer()
    cached = ix.PassageTerms()
    rng = np.random.default_rng(7)
    for _ in range(50):
        text = tricky_text(rng, 30)
        assert cached(text) == tokenizer.terms(text)
        vocabulary, ids, _ = cached.encode(text.split())
        assert [vocabulary[i] for i in ids.tolist()] == tokenizer.terms(text)


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
    monkeypatch.setattr(ix, "CHUNK_CHARS", 3_000)  # many chunks
    results = {}
    for workers, parallel_min in ((1, 10**12), (2, 0)):  # in this process, then in two worker processes
        monkeypatch.setattr(ix, "PARALLEL_MIN_CHARS", parallel_min)
        results[workers] = ix._split_and_tokenize(corpus, title_weight, workers)
    expected_passages, expected_tokens = [], []
    for article in corpus:
        title_terms = tokenizer.terms(article.title) * title_weight
        for ordinal, span in enumerate(split_passages(article.text), start=1):
            text = article.text[span.start : span.end]
            expected_passages.append((article.id, ordinal, span.start, span.end, text))
            expected_tokens.append(title_terms + tokenizer.terms(text))
    for passages, lengths, doc_terms, vocabulary in results.values():
        assert [tuple(p) for p in passages] == expected_passages
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
