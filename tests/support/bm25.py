"""A BM25 scorer over hand-made token lists, for tests that compare with rank-bm25."""

from __future__ import annotations

import numpy as np

from corpusbot.index.engine.bm25 import BM25Params, Collection, Postings, Scorer, decode, encode_postings


def scorer_for(lists: list[list[str]], compiled: bool = True) -> tuple[Scorer, dict[str, tuple[int, Postings]], float]:
    doc_len = np.array([len(x) for x in lists])
    postings = {}
    for term in sorted({t for x in lists for t in x}):
        ids = np.array([d for d, x in enumerate(lists) if term in x])
        tfs = np.array([lists[d].count(term) for d in ids])
        postings[term] = (len(ids), decode(encode_postings(ids, tfs, doc_len[ids])))
    dfs = np.array([df for df, _ in postings.values()], dtype=np.float64)
    n = len(lists)
    mean = float(np.mean(np.log(n - dfs + 0.5) - np.log(dfs + 0.5)))
    collection = Collection(n, doc_len.sum() / n, mean, doc_len.astype("<u4"), BM25Params())
    return Scorer(collection, compiled=compiled), postings, mean
