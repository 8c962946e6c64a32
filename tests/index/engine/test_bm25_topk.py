"""The scorer's top-k selection (score floor from a sample, dense or sparse read-back) is exact.

Checked against rank_bm25.BM25Okapi on the same token lists, with exclusions,
several k, both read-back paths and a tiny floor sample.
"""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from corpusbot.index.engine import bm25
from corpusbot.index.engine.bm25 import BM25Params, QueryTerm, Scorer, idf
from tests.support.bm25 import scorer_for

RTOL = 1e-9


def corpus(seed: int, n_docs: int = 600) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(300)]
    p = 1 / np.arange(1, len(words) + 1) ** 1.1
    p /= p.sum()
    return [list(rng.choice(words, size=rng.integers(3, 40), p=p)) for _ in range(n_docs)]


def expected_top(reference: np.ndarray, k: int, exclude: set[int]) -> list[float]:
    scores = np.array([s if d not in exclude else 0.0 for d, s in enumerate(reference)])
    return sorted(scores[scores > 0].tolist(), reverse=True)[:k]


@pytest.mark.parametrize(
    ("compiled", "dense_share", "floor_sample"),
    [
        (False, 0, 3),  # numpy: always the sparse read-back, a tiny floor sample
        (False, 0, 4096),
        (False, 10**9, 3),  # numpy: always the dense read-back
        (False, 10**9, 4096),
        (True, 0, 3),  # the compiled loop (the numpy settings do not apply to it)
    ],
)
def test_top_k_equals_rank_bm25_with_exclusions(
    monkeypatch: pytest.MonkeyPatch, compiled: bool, dense_share: int, floor_sample: int
) -> None:
    monkeypatch.setattr(bm25, "DENSE_SHARE", dense_share)
    monkeypatch.setattr(bm25, "FLOOR_SAMPLE", floor_sample)
    lists = corpus(seed=floor_sample + dense_share % 7 + compiled)
    model = BM25Okapi(lists)
    scorer, postings, mean = scorer_for(lists, compiled=compiled)
    assert scorer.compiled == compiled
    rng = np.random.default_rng(1)
    terms = sorted(postings)
    for n in range(60):
        query = [terms[i] for i in rng.integers(0, len(terms), size=rng.integers(1, 6))]
        if n % 3 == 0:
            query.append("w0")  # the most common word
        exclude_docs = set(rng.choice(len(lists), size=rng.integers(0, 40), replace=False).tolist())
        exclude = np.array(sorted(exclude_docs), dtype=np.intp) if exclude_docs else None
        weighted = [QueryTerm(idf(len(lists), postings[t][0], mean, BM25Params()), postings[t][1]) for t in query]
        reference = model.get_scores(query)
        for k in (1, 5, 10, 50):
            got = scorer.top(weighted, k, exclude)
            want = expected_top(reference, k, exclude_docs)
            assert np.allclose([s for _, s in got], want, rtol=RTOL, atol=0), (query, k)
            assert not exclude_docs & {d for d, _ in got}
            for doc, score in got:
                assert score == pytest.approx(reference[doc], rel=RTOL)
            # Ties with the k-th score break by passage id.
            assert got == sorted(got, key=lambda item: (-item[1], item[0]))
        assert not scorer._buffer.any()  # every query leaves the score buffer clean


def test_the_score_buffer_is_clean_after_an_interrupted_query(monkeypatch: pytest.MonkeyPatch) -> None:
    lists = corpus(seed=3)
    scorer, postings, mean = scorer_for(lists, compiled=False)
    weighted = [QueryTerm(idf(len(lists), postings[t][0], mean, BM25Params()), postings[t][1]) for t in ("w0", "w1")]

    def fail(*args: object) -> float:
        raise KeyboardInterrupt

    monkeypatch.setattr(Scorer, "_kth_floor", fail)
    with pytest.raises(KeyboardInterrupt):
        scorer.top(weighted, 10)
    assert not scorer._buffer.any()
