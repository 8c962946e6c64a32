"""BM25Okapi over compact postings, scoring exactly as ``rank_bm25.BM25Okapi``.

A term's postings are stored as one blob: a one-byte header giving the width
of the term-frequency integers, then the passage ids (uint32, ascending), then
the term frequencies. Queries only touch the postings of their own terms; the
per-passage token counts live in one array that is loaded once per index
generation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_ID_DTYPE = np.dtype("<u4")
_TF_DTYPES = {1: np.dtype("u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}


@dataclass(frozen=True)
class BM25Params:
    """rank-bm25's BM25Okapi parameters (same defaults)."""

    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25

    def to_json(self) -> dict[str, float]:
        return {"k1": self.k1, "b": self.b, "epsilon": self.epsilon}


def encode_postings(ids: np.ndarray, tfs: np.ndarray) -> bytes:
    top = int(tfs.max()) if len(tfs) else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4
    return bytes([width]) + ids.astype(_ID_DTYPE).tobytes() + tfs.astype(_TF_DTYPES[width]).tobytes()


def decode_postings(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    width = blob[0]
    count = (len(blob) - 1) // (4 + width)
    ids = np.frombuffer(blob, dtype=_ID_DTYPE, count=count, offset=1)
    tfs = np.frombuffer(blob, dtype=_TF_DTYPES[width], count=count, offset=1 + 4 * count)
    return ids, tfs


def raw_idf(n_docs: int, df: int) -> float:
    return math.log(n_docs - df + 0.5) - math.log(df + 0.5)


def average_idf(n_docs: int, dfs: np.ndarray) -> float:
    """Mean raw idf over the whole vocabulary, as rank-bm25 computes it for its floor."""
    if len(dfs) == 0:
        return 0.0
    values = np.log(n_docs - dfs + 0.5) - np.log(dfs + 0.5)
    return math.fsum(values.tolist()) / len(dfs)


def idf(n_docs: int, df: int, mean_idf: float, params: BM25Params) -> float:
    """rank-bm25's idf: negative values are replaced by ``epsilon * average_idf``."""
    value = raw_idf(n_docs, df)
    return params.epsilon * mean_idf if value < 0 else value


@dataclass(frozen=True)
class Collection:
    """The numbers BM25 needs about the whole index."""

    n_docs: int
    avgdl: float
    mean_idf: float
    doc_len: np.ndarray  # indexed by passage id; holes are 0
    params: BM25Params


class Scorer:
    """Accumulates BM25 scores into a reusable buffer; not thread-safe (callers lock)."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self._buffer = np.zeros(len(collection.doc_len), dtype=np.float64)
        p = collection.params
        # Precomputed exactly as rank-bm25 writes it: k1 * (1 - b + b * doc_len / avgdl).
        if collection.avgdl > 0:
            self._norm = p.k1 * (1 - p.b + p.b * collection.doc_len.astype(np.float64) / collection.avgdl)
        else:
            self._norm = np.full(len(collection.doc_len), p.k1 * (1 - p.b))

    def top(
        self,
        postings: Sequence[tuple[float, np.ndarray, np.ndarray]],
        k: int,
        exclude: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """Top ``k`` (passage id, score) by score desc, id asc; only scores > 0.

        ``postings`` holds one ``(idf, ids, tfs)`` per query token, in query order
        (a repeated query term appears twice, as rank-bm25 counts it twice).
        """
        buffer = self._buffer
        k1_plus_1 = self.collection.params.k1 + 1
        touched: list[np.ndarray] = []
        for term_idf, ids, tfs in postings:
            if len(ids) == 0 or term_idf == 0:
                continue
            idx = ids.astype(np.intp)
            tf = tfs.astype(np.float64)
            buffer[idx] += term_idf * (tf * k1_plus_1 / (tf + self._norm[idx]))
            touched.append(idx)
        if not touched:
            return []
        try:
            total = sum(len(ids) for ids in touched)
            if len(touched) == 1:
                candidates = touched[0]
            elif total * 8 < len(buffer):
                candidates = np.unique(np.concatenate(touched))
            else:
                candidates = np.flatnonzero(buffer)
            if exclude is not None and len(exclude):
                candidates = candidates[~np.isin(candidates, exclude)]
            scores = buffer[candidates]
            positive = scores > 0
            candidates, scores = candidates[positive], scores[positive]
            if len(candidates) > k:
                # Keep everything tied with the k-th score so ties break by id, deterministically.
                kth = np.partition(scores, len(scores) - k)[len(scores) - k]
                keep = scores >= kth
                candidates, scores = candidates[keep], scores[keep]
            order = np.lexsort((candidates, -scores))[:k]
            return [(int(candidates[i]), float(scores[i])) for i in order]
        finally:
            for idx in touched:
                buffer[idx] = 0.0


def build_postings(
    doc_ids: np.ndarray, term_ids: np.ndarray, vocabulary_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group (doc, term) token occurrences into postings.

    Returns ``(offsets, ids, tfs, df)``: term ``t``'s postings are
    ``ids[offsets[t]:offsets[t+1]]`` (ascending) with frequencies ``tfs[...]``.
    """
    if len(term_ids) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(vocabulary_size + 1, dtype=np.int64), empty, empty, np.zeros(vocabulary_size, dtype=np.int64)
    n_docs = int(doc_ids.max()) + 1
    keys = term_ids.astype(np.int64) * n_docs + doc_ids.astype(np.int64)
    unique_keys, tfs = np.unique(keys, return_counts=True)
    posting_terms = unique_keys // n_docs
    ids = unique_keys % n_docs
    df = np.bincount(posting_terms, minlength=vocabulary_size)
    offsets = np.zeros(vocabulary_size + 1, dtype=np.int64)
    np.cumsum(df, out=offsets[1:])
    return offsets, ids, tfs, df
