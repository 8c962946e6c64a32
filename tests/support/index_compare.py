"""Comparing two index databases by what BM25 depends on, keyed by (article, ordinal) instead of passage ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpusbot.index.engine.bm25 import decode
from corpusbot.index.engine.store import TermRanker, connect_reader, read_meta
from corpusbot.index.text.tokenizer import default_tokenizer


def snapshot(db: Path) -> dict:
    """Everything BM25 depends on, keyed by (article, ordinal) instead of passage ids."""
    reader = connect_reader(db)
    try:
        meta = read_meta(reader)
        key_of = {
            pid: (article, ordinal)
            for pid, article, ordinal in reader.execute("SELECT id, article_id, ordinal FROM passages")
        }
        terms = {}
        for term, df, blob in reader.execute("SELECT term, df, postings FROM terms"):
            postings = decode(blob)
            entries = sorted(
                zip([key_of[i] for i in postings.ids.tolist()], postings.term_frequencies().tolist(), strict=True)
            )
            assert len(entries) == df
            terms[term] = entries
        lengths = dict(reader.execute("SELECT article_id || ':' || ordinal, length FROM passages").fetchall())
    finally:
        reader.conn.close()
    return {
        "meta": {k: meta[k] for k in ("n_docs", "total_tokens", "vocabulary", "title_weight")},
        "average_idf": meta["average_idf"],
        "terms": terms,
        "lengths": lengths,
    }


def ranked(db: Path, queries: list[str]) -> list[list[tuple[str, float]]]:
    ranker = TermRanker(db)
    reader = connect_reader(db)
    key_of = {pid: f"{a}:{o}" for pid, a, o in reader.execute("SELECT id, article_id, ordinal FROM passages")}
    tokenizer = default_tokenizer()
    out = [[(key_of[pid], score) for pid, score in ranker.top(tokenizer.terms(q), 10)] for q in queries]
    ranker.close()
    reader.conn.close()
    return out


def assert_same_index(incremental: Path, full: Path) -> None:
    a, b = snapshot(incremental), snapshot(full)
    assert a["meta"] == b["meta"]
    assert a["average_idf"] == pytest.approx(b["average_idf"], rel=1e-12)
    assert a["lengths"] == b["lengths"]
    assert a["terms"] == b["terms"]
    queries = ["rare earth magnet", "court ruling trade", "vaccine vaccine trial", "budget senate union strike"]
    for got, want in zip(ranked(incremental, queries), ranked(full, queries), strict=True):
        assert [k for k, _ in got] == [k for k, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-12)
