"""corpusbot's BM25 equals rank_bm25.BM25Okapi on the same token lists (scores and top-10, ties aside)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from corpusbot.index import index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.engine.bm25 import Postings, QueryTerm, Scorer, decode, encode_postings, idf
from corpusbot.index.engine.store import TermRanker, connect_reader
from corpusbot.index.indexing.term_cache import PassageTerms
from corpusbot.index.text.tokenizer import default_tokenizer
from tests.support.bm25 import scorer_for

RTOL = 1e-9


def indexed_token_lists(db: Path, title_weight: int) -> tuple[list[int], list[list[str]]]:
    """Passage ids and the token list of each, rebuilt with the plain tokenizer (not the indexer's cache)."""
    tokenizer = default_tokenizer()
    reader = connect_reader(db)
    rows = reader.execute(
        "SELECT p.id, p.text, a.title FROM passages p JOIN articles a ON a.id = p.article_id ORDER BY p.id"
    ).fetchall()
    reader.conn.close()
    return [r[0] for r in rows], [tokenizer.terms(r[2] or "") * title_weight + tokenizer.terms(r[1]) for r in rows]


def assert_parity(ranker: TermRanker, ids: list[int], model: BM25Okapi, query: list[str]) -> None:
    reference = model.get_scores(query)
    position = {pid: i for i, pid in enumerate(ids)}
    # Every passage's score: ask for all of them (only positive scores are returned).
    everything = np.zeros(len(ids))
    for pid, score in ranker.top(query, k=len(ids)):
        everything[position[pid]] = score
    assert np.allclose(everything, np.where(reference > 0, reference, 0.0), rtol=RTOL, atol=1e-12), query
    # Top 10 (pruned path): the same scores in the same order, and the same passages above the 10th score.
    top = ranker.top(query, k=10)
    want = np.sort(reference[reference > 0])[::-1][:10]
    got = np.array([score for _, score in top])
    assert len(got) == len(want) and np.allclose(got, want, rtol=RTOL, atol=0), query
    if len(want):
        above = {ids[i] for i in np.flatnonzero(reference > want[-1] * (1 + 1e-7))}
        assert above <= {pid for pid, _ in top}, query
        assert all(reference[position[pid]] >= want[-1] * (1 - 1e-7) for pid, _ in top), query


def made_up_corpus(folder: Path, articles: int, seed: int) -> list[str]:
    """JSONL articles of 60-100-word paragraphs drawn from a Zipf vocabulary (a few words in over half the passages)."""
    rng = np.random.default_rng(seed)
    syllables = ["ba", "ko", "ri", "tem", "lu", "sa", "nor", "vi", "del", "ma", "pe", "gro", "zu", "fan", "lis"]
    vocabulary = sorted({"".join(rng.choice(syllables, size=rng.integers(2, 4))) for _ in range(4000)})
    p = 1 / np.arange(1, len(vocabulary) + 1) ** 1.05
    p /= p.sum()
    with (folder / "corpus.jsonl").open("w") as out:
        for a in range(articles):
            paragraphs = [
                " ".join(vocabulary[i] for i in rng.choice(len(vocabulary), size=rng.integers(60, 100), p=p)) + "."
                for _ in range(rng.integers(1, 12))
            ]
            title = " ".join(vocabulary[i] for i in rng.choice(len(vocabulary), size=4, p=p))
            out.write(json.dumps({"id": f"a{a}", "title": title, "text": "\n\n".join(paragraphs)}) + "\n")
    return vocabulary


def test_bundled_corpus_matches_rank_bm25(tmp_path: Path) -> None:
    db = tmp_path / "bundled.db"
    index_corpus(db, [BUNDLED])
    ids, lists = indexed_token_lists(db, title_weight=1)
    model = BM25Okapi(lists)
    ranker = TermRanker(db)
    vocabulary = sorted({t for tokens in lists for t in tokens})
    common = max(vocabulary, key=lambda t: sum(t in set(tokens) for tokens in lists))
    tokenizer = default_tokenizer()
    queries = [
        tokenizer.terms("who is on the US delegation?"),
        tokenizer.terms("rare earth export licenses"),
        tokenizer.terms("tariffs tariffs trade"),  # a repeated term counts twice
        tokenizer.terms("zyxwv trade"),  # an unknown term adds nothing
        [common, common, vocabulary[3]],
        *[[vocabulary[i], vocabulary[(i * 7) % len(vocabulary)]] for i in range(0, len(vocabulary), 37)],
    ]
    for query in queries:
        assert_parity(ranker, ids, model, query)


@pytest.mark.parametrize("title_weight", [0, 2])
def test_generated_corpus_matches_rank_bm25(tmp_path: Path, title_weight: int) -> None:
    vocabulary = made_up_corpus(tmp_path, articles=450, seed=3)
    db = tmp_path / "made-up.db"
    summary = index_corpus(db, [str(tmp_path / "corpus.jsonl")], title_weight=title_weight)
    assert summary.passages > 2000
    ids, lists = indexed_token_lists(db, title_weight)
    model = BM25Okapi(lists)
    floored = [t for t, v in model.idf.items() if v == model.epsilon * model.average_idf]
    assert floored, "the corpus must have terms in over half the passages (epsilon floor)"
    ranker = TermRanker(db)
    rng = np.random.default_rng(11)
    terms_of = PassageTerms()
    for n in range(120):
        words = [vocabulary[i] for i in rng.choice(len(vocabulary), size=rng.integers(1, 6), p=None)]
        query = terms_of(" ".join(words))
        if n % 4 == 0:
            query += query[:1]  # repeated
        if n % 5 == 0:
            query.append("qqqunknownqqq")
        if n % 3 == 0:
            query.append(floored[n % len(floored)])  # in over half the passages
        assert_parity(ranker, ids, model, query)


def test_tiny_corpora_edge_cases() -> None:
    """Two passages: every idf is 0 (rank-bm25 agrees); negative idf floors; empty queries."""
    two = [["alpha", "beta"], ["gamma"]]
    model = BM25Okapi(two)
    scorer, postings, _ = scorer_for(two)
    assert np.all(model.get_scores(["alpha"]) == 0)
    assert scorer.top(_terms(scorer, postings, ["alpha"]), 10) == []
    three = [["x", "y"], ["x"], ["z"]]
    model = BM25Okapi(three)
    scorer, postings, _ = scorer_for(three)
    for query in (["x"], ["x", "z"], ["z", "z", "y"], []):
        reference = model.get_scores(query)
        got = dict(scorer.top(_terms(scorer, postings, query), 10))
        for doc, score in enumerate(reference):
            if score > 0:
                assert got[doc] == pytest.approx(score, rel=RTOL)
            else:
                assert doc not in got


def _terms(scorer: Scorer, postings: dict[str, tuple[int, Postings]], query: list[str]) -> list[QueryTerm]:
    c = scorer.collection
    return [QueryTerm(idf(c.n_docs, postings[t][0], c.mean_idf, c.params), postings[t][1]) for t in query]


def test_postings_round_trip_and_bounds() -> None:
    rng = np.random.default_rng(5)
    for size, top_tf, gap in ((1, 1, 5), (50, 1, 300), (3000, 3, 2), (400, 70_000, 100_000)):
        ids = np.cumsum(rng.integers(1, gap + 1, size=size))
        tfs = np.where(rng.random(size) < 0.1, rng.integers(1, top_tf + 1, size=size), 1)
        lengths = rng.integers(1, 200, size=size)
        got = decode(encode_postings(ids, tfs, lengths))
        assert got.ids.tolist() == ids.tolist()
        assert got.term_frequencies().tolist() == tfs.tolist()
        # The bound pairs dominate every posting: some pair has tf >= its tf and length <= its length.
        for tf, length in zip(tfs.tolist(), lengths.tolist(), strict=True):
            assert any(t >= tf and n <= length for t, n in got.bounds.tolist())
