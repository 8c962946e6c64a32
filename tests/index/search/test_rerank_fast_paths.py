"""The second stage's fast paths give what the plain way gives, whatever the input.

The near-duplicate collapse rules most pairs of the rerank window out by cheap upper bounds: it must find what
comparing one pair at a time finds (the same candidates kept, the same duplicate counts). An article's term
frequency is summed over its passages' postings for all wanted articles at once: it must be each run's sum. And
the highlighted sentence must not depend on the order a set's weights are added in (it follows the string hashes,
which differ from process to process)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusbot.index.engine.bm25 import kernel
from corpusbot.index.engine.sketches import UNKNOWN, jaccard_upper_bound, sketches_of_sets
from corpusbot.index.models import Span
from corpusbot.index.search.rerank import NEAR_DUPLICATE_JACCARD, jaccard
from corpusbot.index.search.service import (
    NEAR_DUPLICATE_MATRIX_MAX,
    SearchService,
    _Articles,
    _Candidate,
    _collapse_near_duplicates,
    _collapse_pair_by_pair,
    _maybe_near,
)
from corpusbot.index.text.passages import sentence_spans
from corpusbot.index.text.tokenizer import default_tokenizer

# Few distinct terms, so that sets overlap often and land on both sides of the Jaccard threshold.
term_sets = st.lists(st.frozensets(st.sampled_from("abcdefghijkl"), max_size=10), max_size=40)


def _candidates(sets: list[frozenset[str]]) -> list[_Candidate]:
    return [_Candidate(number, 1.0, 1.0, term_set=terms) for number, terms in enumerate(sets)]


def _outcome(kept: list[_Candidate], everyone: list[_Candidate]) -> tuple[list[int], list[int]]:
    return [c.passage_id for c in kept], [c.duplicates for c in everyone]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(term_sets)
def test_the_bounded_collapse_keeps_and_counts_what_pair_by_pair_does(sets: list[frozenset[str]]) -> None:
    bounded, one_by_one = _candidates(sets), _candidates(sets)
    assert _outcome(_collapse_near_duplicates(bounded), bounded) == _outcome(
        _collapse_pair_by_pair(one_by_one), one_by_one
    )


def test_empty_sets_are_copies_of_each_other_and_chains_count_on_the_first_kept() -> None:
    sets = [frozenset(), frozenset(), frozenset("abcde"), frozenset("abcd"), frozenset("abcdf"), frozenset("xyz")]
    candidates = _candidates(sets)
    kept = _collapse_near_duplicates(candidates)
    # {} ~ {}; abcd is 0.8 of abcde; abcdf is 0.67 of abcde but 0.8 of abcd, which is not kept, so it stays.
    assert _outcome(kept, candidates) == ([0, 2, 4, 5], [1, 0, 1, 0, 0, 0])


def test_a_window_longer_than_one_matrix_is_compared_pair_by_pair() -> None:
    sets = [frozenset({f"t{i}", f"u{i}"}) for i in range(NEAR_DUPLICATE_MATRIX_MAX)] + [frozenset({"t0", "u0"})]
    candidates = _candidates(sets)
    kept = _collapse_near_duplicates(candidates)
    assert len(kept) == NEAR_DUPLICATE_MATRIX_MAX and candidates[0].duplicates == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.frozensets(st.text(max_size=4), max_size=90), min_size=2, max_size=12))
def test_the_sketch_bound_is_never_below_the_jaccard_similarity(sets: list[frozenset[str]]) -> None:
    sizes = np.array([len(terms) for terms in sets], dtype=np.int64)
    bound = jaccard_upper_bound(sketches_of_sets(sets)[0], sizes)
    for i, a in enumerate(sets):
        for j, b in enumerate(sets):
            if a or b:
                assert bound[i, j] >= jaccard(a, b) - 1e-12


def test_the_sketch_bound_counts_bits_the_same_without_numpy_2(monkeypatch) -> None:
    sets = [frozenset(f"w{i}" for i in range(start, start + 40)) for start in (0, 5, 30, 100)] + [frozenset()]
    sizes = np.array([len(terms) for terms in sets], dtype=np.int64)
    with_popcount = jaccard_upper_bound(sketches_of_sets(sets)[0], sizes)
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    np.testing.assert_array_equal(jaccard_upper_bound(sketches_of_sets(sets)[0], sizes), with_popcount)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_article_term_frequencies_are_the_sums_of_each_articles_run_of_postings(data: st.DataObject) -> None:
    # article numbers by passage id, ascending, 0 for removed passages (holes); some articles without passages
    article_of = np.array(sorted(data.draw(st.lists(st.integers(0, 12), min_size=1, max_size=80))), dtype="<u4")
    articles = _Articles.from_arrays(article_of, np.ones(len(article_of), dtype="<u4"))
    held = data.draw(st.lists(st.integers(0, len(article_of) - 1), min_size=1, unique=True))
    ids = np.array(sorted(held), dtype=np.uint32)
    tfs = np.array(data.draw(st.lists(st.integers(1, 9), min_size=len(ids), max_size=len(ids))), dtype=np.uint8)
    # the candidates' articles: numbers from 1 (0 marks a hole, never a candidate's), with or without passages
    wanted = np.array(sorted(set(data.draw(st.lists(st.integers(1, len(articles.length) + 2), max_size=6)))))
    wanted = wanted[wanted < len(articles.length)]
    expected = [
        sum(int(tf) for pid, tf in zip(ids.tolist(), tfs.tolist(), strict=True) if article_of[pid] == number)
        for number in wanted.tolist()
    ]
    assert articles.term_frequencies(ids, tfs, wanted.astype(np.intp)).tolist() == expected


def test_of_two_sentences_of_equal_weight_the_first_is_highlighted_whatever_the_order_of_a_sum() -> None:
    # 1.9 + 0.14 + 0.45 is 2.49 in every order of addition; exactly rounded, it is 2.4899999999999998
    weights = {"alpha": 2.4899999999999998, "beta": 1.9, "gamma": 0.14, "delta": 0.45}
    text = "Alpha rose. Beta met gamma and delta."
    _, found = SearchService._highlights(SimpleNamespace(tokenizer=default_tokenizer()), text, weights)  # type: ignore[arg-type]
    assert found is not None and text[found.start : found.end] == "Alpha rose."


def _highlights_sentence_by_sentence(text: str, weights: dict[str, float]) -> tuple[tuple[Span, ...], Span | None]:
    """The plain way: the words found anywhere, then each sentence tokenized on its own."""
    tokenizer = default_tokenizer()
    matches = tuple(Span(start, end) for start, end in tokenizer.spans(text, weights))
    best: tuple[float, Span] | None = None
    for span in sentence_spans(text):
        found = {term for term in tokenizer.terms(text[span.start : span.end]) if term in weights}
        value = math.fsum(weights[term] for term in found)
        if value > 0 and (best is None or value > best[0]):
            best = (value, span)
    return matches, best[1] if best else None


_PIECES = [
    "U.S.", "Mr.", "Dr. Smith", "3.5", "1,000", "China's", "don't", "IL-6", "Café", "naïve", "हिन्दी", "ＵＳ", "rock/paper",
    "“Quoted.”", "(aside.)", "e.g.", "Inc.", "A.", "no.", "June 5", "talks", "talk", "trade", "the", "and", "Beijing",
    "...", "!", "?", "…", '"', "'", ")", "’s",
]  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_PIECES),
            st.sampled_from(["", " ", "  ", "\n", "\n\n", "\t", "\u00a0", "\u2003", "\x1c", "\u2028"]),
        )
    ),
    st.data(),
)
def test_one_pass_highlights_are_what_tokenizing_each_sentence_gives(
    pieces: list[tuple[str, str]], data: st.DataObject
) -> None:
    text = "".join(piece + gap for piece, gap in pieces)
    terms = sorted(set(default_tokenizer().terms(text)))
    chosen = data.draw(st.lists(st.sampled_from(terms), unique=True)) if terms else []
    weights = {term: data.draw(st.sampled_from([0.5, 1.0, 1.9, 2.4899999999999998])) for term in chosen}
    service = SimpleNamespace(tokenizer=default_tokenizer())
    assert SearchService._highlights(service, text, weights) == _highlights_sentence_by_sentence(text, weights)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 70)), max_size=30), st.data())
def test_the_compiled_near_pairs_are_the_numpy_bounds_pairs(sets: list[tuple[int, int]], data: st.DataObject) -> None:
    sketches = np.array([sketch for sketch, _ in sets], dtype=np.uint64)
    sizes = np.array([size for _, size in sets], dtype=np.uint32)
    # sketches with few bits, so that some pairs survive the bound
    sketches &= np.uint64(data.draw(st.sampled_from([0xF, 0xFF, 0xFFFF_FFFF, 2**64 - 1])))
    ids = np.array(data.draw(st.permutations(range(len(sets)))), dtype=np.intp)
    expected = np.tril(_maybe_near(sketches[ids], sizes[ids].astype(np.int64)), k=-1)
    pairs = kernel.near_pairs(sketches, sizes, ids, NEAR_DUPLICATE_JACCARD, UNKNOWN)
    assert pairs is not None and sorted(pairs) == sorted(zip(*map(list, np.nonzero(expected)), strict=True))


def test_the_compiled_near_pairs_refuse_unknown_and_out_of_range_passages() -> None:
    sketches, sizes = np.zeros(3, dtype=np.uint64), np.array([1, UNKNOWN, 2], dtype=np.uint32)
    assert kernel.near_pairs(sketches, sizes, np.array([0, 2], dtype=np.intp), 0.8, UNKNOWN) == []
    assert kernel.near_pairs(sketches, sizes, np.array([0, 1], dtype=np.intp), 0.8, UNKNOWN) is None
    assert kernel.near_pairs(sketches, sizes, np.array([0, 3], dtype=np.intp), 0.8, UNKNOWN) is None
