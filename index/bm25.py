"""BM25Okapi over compact postings, scoring exactly as ``rank_bm25.BM25Okapi``.

A term's postings are one blob (little-endian):

- a header: id-gap width, term-frequency encoding, posting count, number of
  tf exceptions, number of bound pairs, first passage id;
- bound pairs ``(tf, min doc length)``: for each tf bucket (1, 2, 3, 4+) the
  largest tf and the shortest passage in it. BM25's per-posting factor grows
  with tf and shrinks with the passage length, so the largest factor over the
  postings is found among these pairs, whatever the current average length:
  the scorer's exact upper bound for dynamic pruning;
- the gaps between ascending passage ids (1, 2 or 4 bytes each, the widest
  gap of the term decides);
- the term frequencies: none when all are 1 (most postings), else either all
  of them (1, 2 or 4 bytes each) or only the positions and values of those
  that are not 1, whichever is smaller.

Queries only touch their own terms' postings; the per-passage token counts
live in one array loaded once per index generation. Ranking is exact
BM25Okapi top-k with MaxScore-style pruning: terms with high score bounds are
scored fully, the remaining (common) terms are only looked up for passages
that can still reach the top k.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

_HEADER = struct.Struct("<BBIIHI")  # gap width, tf kind, count, tf exceptions, bound pairs, first id
_WIDTH_DTYPES = {1: np.dtype("u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}
_U4 = np.dtype("<u4")
_TF_ALL_ONES = 0
_TF_SPARSE = 0x80  # or-ed with the value width
TF_BUCKETS = 4  # bound pairs for tf = 1, 2, 3 and 4+
# Pruning compares float sums computed in different orders; keep a safety margin.
_BOUND_SLACK = 1e-9


@dataclass(frozen=True)
class BM25Params:
    """rank-bm25's BM25Okapi parameters (same defaults)."""

    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25

    def to_json(self) -> dict[str, float]:
        return {"k1": self.k1, "b": self.b, "epsilon": self.epsilon}


class Postings(NamedTuple):
    """One term's postings: ascending passage ids, their tfs (None when all are 1), bound pairs."""

    ids: np.ndarray  # uint32
    tfs: np.ndarray | None
    bounds: np.ndarray  # (n, 2) uint32 rows of (tf, shortest passage length)

    def term_frequencies(self) -> np.ndarray:
        return np.ones(len(self.ids), dtype=np.uint8) if self.tfs is None else self.tfs

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + (0 if self.tfs is None else self.tfs.nbytes) + self.bounds.nbytes


class QueryTerm(NamedTuple):
    """A query term for the scorer: its weight (idf x how often the query uses it) and postings."""

    weight: float
    postings: Postings


# -- encoding ------------------------------------------------------------------


def _width(top: int) -> int:
    return 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4


def encode_many(offsets: np.ndarray, ids: np.ndarray, tfs: np.ndarray, lengths: np.ndarray) -> list[bytes | None]:
    """Blobs for many terms at once; term ``t`` owns ``ids[offsets[t]:offsets[t+1]]`` (ascending).

    ``lengths`` is each posting's passage length (for the bound pairs). Terms
    without postings get None.
    """
    n_terms = len(offsets) - 1
    counts = np.diff(offsets)
    blobs: list[bytes | None] = [None] * n_terms
    present = np.flatnonzero(counts)
    if len(present) == 0:
        return blobs
    ids = ids.astype(np.int64, copy=False)
    tfs = tfs.astype(np.int64, copy=False)
    starts = offsets[:-1][present]
    gaps = np.diff(ids, prepend=0)
    gaps[starts] = 0
    max_gap = np.maximum.reduceat(gaps, starts)
    max_tf = np.maximum.reduceat(tfs, starts)
    not_one = tfs != 1
    exceptions = np.add.reduceat(not_one.astype(np.int64), starts)
    gap_views = {w: memoryview(gaps.astype(_WIDTH_DTYPES[w])).cast("B") for w in _WIDTH_DTYPES}
    tf_views = {w: memoryview(tfs.astype(_WIDTH_DTYPES[w])).cast("B") for w in _WIDTH_DTYPES}
    exception_at = np.flatnonzero(not_one)
    exception_pos = memoryview((exception_at - np.repeat(offsets[:-1], counts)[exception_at]).astype(_U4)).cast("B")
    exception_start = np.searchsorted(exception_at, offsets)
    bounds = _bound_pairs(offsets, present, tfs, lengths)

    for j, term in enumerate(present.tolist()):
        start, end = int(offsets[term]), int(offsets[term + 1])
        count = end - start
        gw = _width(int(max_gap[j]))
        tw = _width(int(max_tf[j]))
        n_exc = int(exceptions[j])
        pairs = bounds[j]
        parts = [b"", pairs.tobytes(), gap_views[gw][(start + 1) * gw : end * gw]]
        if n_exc == 0:
            kind = _TF_ALL_ONES
        elif n_exc * (4 + tw) < count * tw:
            kind = _TF_SPARSE | tw
            e0, e1 = int(exception_start[term]), int(exception_start[term + 1])
            parts.append(exception_pos[e0 * 4 : e1 * 4])
            parts.append(tfs[exception_at[e0:e1]].astype(_WIDTH_DTYPES[tw]).tobytes())
        else:
            kind = tw
            parts.append(tf_views[tw][start * tw : end * tw])
        parts[0] = _HEADER.pack(gw, kind, count, n_exc if kind & _TF_SPARSE else 0, len(pairs), int(ids[start]))
        blobs[term] = b"".join(parts)
    return blobs


def _bound_pairs(offsets: np.ndarray, present: np.ndarray, tfs: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Per present term, rows of (largest tf, shortest length) for each non-empty tf bucket."""
    counts = np.diff(offsets)
    term_of = np.repeat(np.arange(len(counts)), counts)
    bucket = np.minimum(tfs, TF_BUCKETS) - 1
    found: list[list[tuple[int, int]]] = [[] for _ in range(len(counts))]
    lengths = lengths.astype(np.int64, copy=False)
    for b in range(TF_BUCKETS):
        member = np.flatnonzero(bucket == b)
        if len(member) == 0:
            continue
        terms = term_of[member]
        starts = np.flatnonzero(np.diff(terms, prepend=-1))
        min_len = np.minimum.reduceat(lengths[member], starts)
        top_tf = np.maximum.reduceat(tfs[member], starts)
        for term, tf, length in zip(terms[starts].tolist(), top_tf.tolist(), min_len.tolist(), strict=True):
            found[term].append((tf, length))
    return [np.asarray(found[t], dtype=_U4).reshape(-1, 2) for t in present.tolist()]


def encode_postings(ids: np.ndarray, tfs: np.ndarray, lengths: np.ndarray) -> bytes:
    """One term's blob; ``lengths`` are the passage lengths of its postings."""
    blob = encode_many(np.array([0, len(ids)], dtype=np.int64), ids, tfs, lengths)[0]
    if blob is None:
        raise ValueError("a term needs at least one posting")
    return blob


def decode(blob: bytes) -> Postings:
    gw, kind, count, n_exc, n_pairs, first = _HEADER.unpack_from(blob, 0)
    pos = _HEADER.size
    bounds = np.frombuffer(blob, dtype=_U4, count=2 * n_pairs, offset=pos).reshape(-1, 2)
    pos += 8 * n_pairs
    ids = np.empty(count, dtype=_U4)
    ids[0] = first
    if count > 1:
        ids[1:] = np.frombuffer(blob, dtype=_WIDTH_DTYPES[gw], count=count - 1, offset=pos)
        np.cumsum(ids, out=ids)
    pos += gw * (count - 1)
    tfs: np.ndarray | None
    if kind == _TF_ALL_ONES:
        tfs = None
    elif kind & _TF_SPARSE:
        dtype = _WIDTH_DTYPES[kind & ~_TF_SPARSE]
        where = np.frombuffer(blob, dtype=_U4, count=n_exc, offset=pos)
        values = np.frombuffer(blob, dtype=dtype, count=n_exc, offset=pos + 4 * n_exc)
        tfs = np.ones(count, dtype=dtype)
        tfs[where] = values
    else:
        tfs = np.frombuffer(blob, dtype=_WIDTH_DTYPES[kind], count=count, offset=pos)
    return Postings(ids, tfs, bounds)


def decode_postings(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, tfs)`` of a blob, tfs always materialised."""
    postings = decode(blob)
    return postings.ids, postings.term_frequencies()


# -- idf -----------------------------------------------------------------------


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


# -- scoring -------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    """The numbers BM25 needs about the whole index."""

    n_docs: int
    avgdl: float
    mean_idf: float
    doc_len: np.ndarray  # indexed by passage id; holes are 0
    params: BM25Params


class Scorer:
    """Exact BM25Okapi top-k over query terms' postings; not thread-safe (callers lock)."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        p = collection.params
        self._k1_plus_1 = p.k1 + 1
        self._buffer = np.zeros(len(collection.doc_len), dtype=np.float64)
        # Precomputed exactly as rank-bm25 writes it: k1 * (1 - b + b * doc_len / avgdl).
        self._norm = self._norm_of(collection.doc_len)
        # Bounds need the factor to grow with tf and shrink with the length.
        self._prunable = p.k1 >= 0 and p.b >= 0

    def _norm_of(self, lengths: np.ndarray) -> np.ndarray:
        c, p = self.collection, self.collection.params
        if c.avgdl > 0:
            return p.k1 * (1 - p.b + p.b * lengths.astype(np.float64) / c.avgdl)
        return np.full(len(lengths), p.k1 * (1 - p.b))

    def factor(self, ids: np.ndarray, tfs: np.ndarray | None) -> np.ndarray:
        """The per-posting factor ``tf * (k1 + 1) / (tf + norm)`` (to be multiplied by the idf)."""
        norm = self._norm[ids]
        if tfs is None:
            return self._k1_plus_1 / (1.0 + norm)
        tf = tfs.astype(np.float64)
        return tf * self._k1_plus_1 / (tf + norm)

    def upper_bound(self, term: QueryTerm) -> float:
        """The largest score ``term`` adds to any passage (exact when the postings carry bound pairs)."""
        pairs = term.postings.bounds.tolist()
        if not pairs:  # postings built without pairs: use the largest tf and the shortest passage
            tfs = term.postings.tfs
            positive = self.collection.doc_len[self.collection.doc_len > 0]
            pairs = [[1 if tfs is None else int(tfs.max()), int(positive.min()) if len(positive) else 0]]
        c, p = self.collection, self.collection.params
        best = 0.0
        for tf, length in pairs:
            # The same operations as _norm_of and factor, so the bound is never below a computed score.
            norm = p.k1 * (1 - p.b + p.b * float(length) / c.avgdl) if c.avgdl > 0 else p.k1 * (1 - p.b)
            best = max(best, float(tf) * self._k1_plus_1 / (float(tf) + norm))
        return term.weight * best

    def top(
        self,
        terms: Sequence[QueryTerm | tuple[float, np.ndarray, np.ndarray]],
        k: int,
        exclude: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """Top ``k`` (passage id, score) by score desc, id asc; only scores > 0.

        ``terms`` holds one entry per query token (a repeated token twice, as
        rank-bm25 counts it twice; entries sharing a Postings object are merged).
        ``(weight, ids, tfs)`` tuples are accepted too.
        """
        merged = _merge(terms)
        if not merged or k <= 0:
            return []
        if exclude is not None and len(exclude) == 0:
            exclude = None
        if self._prunable and all(t.weight > 0 for t in merged):
            return self._top_pruned(merged, k, exclude)
        return self._top_exhaustive(merged, k, exclude)

    def _top_exhaustive(self, terms: list[QueryTerm], k: int, exclude: np.ndarray | None) -> list[tuple[int, float]]:
        buffer = self._buffer
        touched = [t.postings.ids for t in terms]
        try:
            for term in terms:
                ids = term.postings.ids
                buffer[ids] += term.weight * self.factor(ids, term.postings.tfs)
        except BaseException:
            buffer.fill(0.0)
            raise
        candidates, scores = _collect(buffer, touched, exclude)
        return _best(candidates, scores, k)

    def _top_pruned(self, terms: list[QueryTerm], k: int, exclude: np.ndarray | None) -> list[tuple[int, float]]:
        bounds = [self.upper_bound(t) for t in terms]
        order = sorted(range(len(terms)), key=lambda i: (-bounds[i], len(terms[i].postings.ids)))
        remaining = [0.0] * (len(order) + 1)
        for position in range(len(order) - 1, -1, -1):
            remaining[position] = remaining[position + 1] + bounds[order[position]]
        buffer = self._buffer
        touched: list[np.ndarray] = []
        threshold = 0.0
        scored = 0
        try:
            # Phase 1: score terms fully, highest bound first, until a passage that
            # none of them contains cannot reach the top k any more.
            for position in range(len(order)):
                if touched and remaining[position] < threshold * (1 - _BOUND_SLACK):
                    break
                term = terms[order[position]]
                ids = term.postings.ids
                buffer[ids] += term.weight * self.factor(ids, term.postings.tfs)
                touched.append(ids)
                scored = position + 1
                if remaining[scored] > 0:
                    threshold = max(threshold, self._threshold(touched, k, exclude))
        except BaseException:
            buffer.fill(0.0)
            raise
        candidates, scores = _collect(buffer, touched, exclude)
        # Phase 2: the other terms only for candidates that can still make it.
        for position in range(scored, len(order)):
            keep = scores + remaining[position] >= threshold * (1 - _BOUND_SLACK)
            candidates, scores = candidates[keep], scores[keep]
            if len(candidates) == 0:
                break
            term = terms[order[position]]
            ids = term.postings.ids
            at = np.searchsorted(ids, candidates)
            np.minimum(at, len(ids) - 1, out=at)
            found = ids[at] == candidates
            if found.any():
                tfs = term.postings.tfs
                scores[found] += term.weight * self.factor(candidates[found], None if tfs is None else tfs[at[found]])
                threshold = max(threshold, _kth_largest(scores, k))
        return _best(candidates, scores, k)

    def _threshold(self, touched: list[np.ndarray], k: int, exclude: np.ndarray | None) -> float:
        """A lower bound of the final k-th best score: the k-th best partial score of some passages."""
        sample = min(touched, key=len)
        if len(sample) < k and sum(len(ids) for ids in touched) <= 4096:
            sample = np.unique(np.concatenate(touched))
        sample = _without(sample, exclude)
        return _kth_largest(self._buffer[sample], k)


def _merge(terms: Sequence[QueryTerm | tuple[float, np.ndarray, np.ndarray]]) -> list[QueryTerm]:
    merged: dict[int, QueryTerm] = {}
    for entry in terms:
        if isinstance(entry, QueryTerm):
            term = entry
        else:
            weight, ids, tfs = entry
            ids = np.asarray(ids).astype(_U4, copy=False)
            tfs = None if tfs is None else np.asarray(tfs)
            term = QueryTerm(weight, Postings(ids, tfs, np.zeros((0, 2), dtype=_U4)))
        if term.weight == 0 or len(term.postings.ids) == 0:
            continue
        key = id(term.postings)
        if key in merged:
            term = QueryTerm(merged[key].weight + term.weight, term.postings)
        merged[key] = term
    return list(merged.values())


def _collect(
    buffer: np.ndarray, touched: list[np.ndarray], exclude: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each touched passage once with its score, zeroing the buffer on the way (no sorting)."""
    candidates: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for ids in touched:
        values = buffer[ids]
        fresh = values != 0
        if len(candidates) == 0 or fresh.all():
            candidates.append(ids)
            scores.append(values)
        else:
            candidates.append(ids[fresh])
            scores.append(values[fresh])
        buffer[ids] = 0.0
    ids = candidates[0] if len(candidates) == 1 else np.concatenate(candidates)
    values = scores[0] if len(scores) == 1 else np.concatenate(scores)
    if exclude is not None:
        keep = ~np.isin(ids, exclude)
        ids, values = ids[keep], values[keep]
    return ids, values


def _without(ids: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    if exclude is None:
        return ids
    return ids[~np.isin(ids, exclude)]


def _kth_largest(scores: np.ndarray, k: int) -> float:
    if len(scores) < k:
        return 0.0
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


def _best(candidates: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    positive = scores > 0
    candidates, scores = candidates[positive], scores[positive]
    if len(candidates) > k:
        # Keep everything tied with the k-th score so ties break by id, deterministically.
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= kth
        candidates, scores = candidates[keep], scores[keep]
    order = np.lexsort((candidates, -scores))[:k]
    return [(int(candidates[i]), float(scores[i])) for i in order]


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
    keys.sort()
    boundary = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate([[0], boundary])
    unique_keys = keys[starts]
    tfs = np.diff(np.concatenate([starts, [len(keys)]]))
    del keys
    posting_terms = unique_keys // n_docs
    ids = unique_keys - posting_terms * n_docs
    df = np.bincount(posting_terms, minlength=vocabulary_size)
    offsets = np.zeros(vocabulary_size + 1, dtype=np.int64)
    np.cumsum(df, out=offsets[1:])
    return offsets, ids, tfs, df
