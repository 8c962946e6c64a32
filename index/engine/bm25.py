"""BM25Okapi over compact postings, scoring exactly as ``rank_bm25.BM25Okapi``.

A term's postings are one blob (little-endian):

- a header: id-gap width, term-frequency encoding, posting count, number of
  tf exceptions, number of bound pairs, first passage id;
- bound pairs ``(tf, min doc length)``: for each tf bucket (1, 2, 3, 4+) the
  largest tf and the shortest passage in it. BM25's per-posting factor grows
  with tf and shrinks with the passage length, so the largest factor over the
  postings is found among these pairs, whatever the current average length:
  an exact upper bound of the term's score (the scorer uses it to pick the
  term whose passages give the best early estimate of the k-th score);
- the gaps between ascending passage ids (1, 2 or 4 bytes each, the widest
  gap of the term decides);
- the term frequencies: none when all are 1 (most postings), else either all
  of them (1, 2 or 4 bytes each) or only the positions and values of those
  that are not 1, whichever is smaller.

Queries only touch their own terms' postings; the per-passage token counts
live in one array loaded once per index generation. Ranking is exact
BM25Okapi top-k. The compiled loop (``_bm25_kernel.c``) scores passages in
cache-sized blocks, keeps a k-sized heap, and once the heap is full skips the
postings of terms whose upper bounds cannot lift a passage into it
(MaxScore). Without it, numpy scores every posting into a dense score array
(one scatter-add per term), then a lower bound of the k-th score, taken from
a sample, keeps all but a few hundred passages from being read back and
sorted. Both add a passage's contributions in the same order with the same
operations, so they return the same scores to the bit.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import numpy as np

try:  # the compiled scoring loop (setup.py builds it when a C compiler is there)
    from corpusbot.index.engine import _bm25_kernel as kernel
except ImportError:  # pragma: no cover - depends on the install
    # mypy types `kernel` as the module (from _bm25_kernel.pyi); the code still checks it for None.
    kernel = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from corpusbot.index.engine._bm25_kernel import CheckedPostings

_HEADER = struct.Struct("<BBIIHI")  # gap width, tf kind, count, tf exceptions, bound pairs, first id
_WIDTH_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype("u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}
_U4 = np.dtype("<u4")
_TF_ALL_ONES = 0
_TF_SPARSE = 0x80  # or-ed with the value width
TF_BUCKETS = 4  # bound pairs for tf = 1, 2, 3 and 4+


@dataclass(frozen=True)
class BM25Params:
    """rank-bm25's BM25Okapi parameters (same defaults)."""

    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25

    def to_json(self) -> dict[str, float]:
        return {"k1": self.k1, "b": self.b, "epsilon": self.epsilon}


_ONE = np.ones(1, dtype=np.uint8)


class Postings:
    """One term's postings: ascending passage ids, their tfs (None when all are 1), bound pairs.

    Decoded from a blob, the ids stay gaps (``gaps`` after ``first``, a view
    of the blob) until something asks for ``ids``: the compiled loop reads
    the gaps directly, and a first query then costs no decoding pass.
    ``blob`` and ``gaps_at`` say where the gaps are in the blob (the
    compiled loop checks them there once, see ``Scorer._checked``).
    """

    __slots__ = (
        "_ids",
        "_ones",
        "blob",
        "bounds",
        "checked",
        "checked_for",
        "count",
        "first",
        "gaps",
        "gaps_at",
        "largest_factor",
        "tfs",
    )

    def __init__(
        self,
        ids: np.ndarray | None,
        tfs: np.ndarray | None,
        bounds: np.ndarray,
        *,
        gaps: np.ndarray | None = None,
        first: int = 0,
        blob: bytes | None = None,
        gaps_at: int = 0,
    ) -> None:
        if ids is None and gaps is None:
            raise ValueError("postings need ids or gaps")
        self._ids = ids
        self._ones: np.ndarray | None = None
        self.tfs = tfs
        self.bounds = bounds  # (n, 2) uint32 rows of (tf, shortest passage length)
        self.gaps = gaps
        self.first = first
        self.count = len(ids) if ids is not None else len(gaps) + 1  # type: ignore[arg-type]
        self.blob = blob
        self.gaps_at = gaps_at
        # Worked out by scorers on first use, for the queries after (cached postings come back in many):
        self.checked: CheckedPostings | None = None  # the compiled loop's check (Scorer._checked)
        self.checked_for: object = None  # which passage lengths ``checked`` holds a copy of (Scorer._lengths_key)
        self.largest_factor: tuple[_BoundFor, float] | None = None  # (what it depends on, the factor)

    @property
    def ids(self) -> np.ndarray:
        """Ascending passage ids (uint32), decoded from the gaps on first use."""
        if self._ids is None:
            assert self.gaps is not None
            ids = np.empty(self.count, dtype=_U4)
            ids[0] = self.first
            ids[1:] = self.gaps
            np.cumsum(ids, out=ids)
            self._ids = ids
        return self._ids

    def term_frequencies(self) -> np.ndarray:
        """The tfs; all ones as a read-only view of a single 1 (no array of ``count`` ones), made once."""
        if self.tfs is not None:
            return self.tfs
        if self._ones is None:
            self._ones = np.broadcast_to(_ONE, (self.count,))
        return self._ones

    @property
    def nbytes(self) -> int:
        """Memory held, counting the ids as decoded, the tfs twice and the passage lengths (up to 2 bytes a
        posting) that the compiled loop's check copies."""
        gaps = 0 if self.gaps is None else self.gaps.nbytes
        tfs = 0 if self.tfs is None else 2 * self.tfs.nbytes
        return 6 * self.count + gaps + tfs + self.bounds.nbytes


class QueryTerm(NamedTuple):
    """A query term for the scorer: its weight (idf x how often the query uses it) and postings."""

    weight: float
    postings: Postings


# -- encoding ------------------------------------------------------------------


def _width(top: int) -> int:
    return 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4


ENCODE_BATCH_POSTINGS = 4_000_000  # encode_many works on groups of terms this large: bounded temporaries


def encode_many(offsets: np.ndarray, ids: np.ndarray, tfs: np.ndarray, lengths: np.ndarray) -> list[bytes | None]:
    """Blobs for many terms at once; term ``t`` owns ``ids[offsets[t]:offsets[t+1]]`` (ascending).

    ``lengths`` is each posting's passage length (for the bound pairs). Terms
    without postings get None. Terms are encoded in groups of about
    ``ENCODE_BATCH_POSTINGS`` postings, so the working memory stays small
    however large the index.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n_terms = len(offsets) - 1
    blobs: list[bytes | None] = []
    first = 0
    while first < n_terms:
        # The largest group of terms from ``first`` within the batch size (at least one term).
        last = int(np.searchsorted(offsets, offsets[first] + ENCODE_BATCH_POSTINGS, side="right")) - 1
        last = min(max(last, first + 1), n_terms)
        a, b = int(offsets[first]), int(offsets[last])
        blobs.extend(_encode_batch(offsets[first : last + 1] - a, ids[a:b], tfs[a:b], lengths[a:b]))
        first = last
    return blobs


def _encode_batch(offsets: np.ndarray, ids: np.ndarray, tfs: np.ndarray, lengths: np.ndarray) -> list[bytes | None]:
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
    gap_views = _width_views(gaps, int(max_gap.max()))
    # Most tfs are 1: everything else about them is worked out from the few that are not.
    not_one = tfs != 1
    exceptions = np.add.reduceat(not_one, starts, dtype=np.int64)
    exception_at = np.flatnonzero(not_one)
    exception_tfs = tfs[exception_at]
    exception_owner = np.searchsorted(starts, exception_at, side="right") - 1  # index into present
    max_tf = np.ones(len(present), dtype=np.int64)
    np.maximum.at(max_tf, exception_owner, exception_tfs)
    exception_pos = memoryview((exception_at - starts[exception_owner]).astype(_U4)).cast("B")
    exception_start = np.searchsorted(exception_at, offsets).tolist()
    pair_counts, pair_bytes = _bound_pairs(starts, not_one, lengths, exception_at, exception_tfs, exception_owner)
    pair_at = (np.cumsum(pair_counts) - pair_counts).tolist()
    pair_counts = pair_counts.tolist()
    first_ids = ids[starts].tolist()

    offs = offsets.tolist()
    for j, (term, g, t, n_exc) in enumerate(
        zip(present.tolist(), max_gap.tolist(), max_tf.tolist(), exceptions.tolist(), strict=True)
    ):
        start, end = offs[term], offs[term + 1]
        count = end - start
        gw = 1 if g < 256 else 2 if g < 65536 else 4
        tw = 1 if t < 256 else 2 if t < 65536 else 4
        pairs = pair_counts[j]
        parts: list[bytes | memoryview] = [
            b"",
            pair_bytes[pair_at[j] * 8 : (pair_at[j] + pairs) * 8],
            gap_views[gw][(start + 1) * gw : end * gw],
        ]
        if n_exc == 0:
            kind = _TF_ALL_ONES
        elif n_exc * (4 + tw) < count * tw:
            kind = _TF_SPARSE | tw
            e0, e1 = exception_start[term], exception_start[term + 1]
            parts.append(exception_pos[e0 * 4 : e1 * 4])
            parts.append(exception_tfs[e0:e1].astype(_WIDTH_DTYPES[tw]).tobytes())
        else:
            kind = tw
            parts.append(tfs[start:end].astype(_WIDTH_DTYPES[tw]).tobytes())
        parts[0] = _HEADER.pack(gw, kind, count, n_exc if kind & _TF_SPARSE else 0, pairs, first_ids[j])
        blobs[term] = b"".join(parts)
    return blobs


def _width_views(values: np.ndarray, top: int) -> dict[int, memoryview]:
    """``values`` as bytes in each width up to the one ``top`` needs."""
    return {w: values.astype(_WIDTH_DTYPES[w]).data.cast("B") for w in _WIDTH_DTYPES if w <= _width(top)}


def _bound_pairs(
    starts: np.ndarray,
    not_one: np.ndarray,
    lengths: np.ndarray,
    exception_at: np.ndarray,
    exception_tfs: np.ndarray,
    exception_owner: np.ndarray,
) -> tuple[np.ndarray, memoryview]:
    """Per term (postings from ``starts``), rows of (largest tf, shortest length) for each non-empty tf bucket.

    Rows come in bucket order (tf 1, 2, 3, 4+). Returns how many rows each
    term has and all the rows as one run of bytes (uint32 pairs). Terms
    are described by where their postings start and by the postings whose tf
    is not 1 (their positions, tfs and terms).
    """
    lengths = lengths.astype(np.int64, copy=False)
    none = np.iinfo(np.int64).max
    rows = np.zeros((len(starts), TF_BUCKETS, 2), dtype=np.int64)
    shortest = np.full((len(starts), TF_BUCKETS), none, dtype=np.int64)
    shortest[:, 0] = np.minimum.reduceat(np.where(not_one, none, lengths), starts)
    rows[:, 0, 0] = 1
    bucket = np.minimum(exception_tfs, TF_BUCKETS) - 1
    exception_lengths = lengths[exception_at]
    for b in range(1, TF_BUCKETS):
        member = bucket == b
        np.maximum.at(rows[:, b, 0], exception_owner[member], exception_tfs[member])
        np.minimum.at(shortest[:, b], exception_owner[member], exception_lengths[member])
    has = shortest != none
    rows[:, :, 1] = np.where(has, shortest, 0)
    return has.sum(axis=1), np.ascontiguousarray(rows[has]).astype(_U4).data.cast("B")


def encode_postings(ids: np.ndarray, tfs: np.ndarray, lengths: np.ndarray) -> bytes:
    """One term's blob; ``lengths`` are the passage lengths of its postings."""
    blob = encode_many(np.array([0, len(ids)], dtype=np.int64), ids, tfs, lengths)[0]
    if blob is None:
        raise ValueError("a term needs at least one posting")
    return blob


def decode(blob: bytes) -> Postings:
    gw, kind, count, n_exc, n_pairs, first = _HEADER.unpack_from(blob, 0)
    if count == 0:
        raise ValueError("a postings blob without postings: the index is damaged")
    pos = _HEADER.size
    bounds = np.frombuffer(blob, dtype=_U4, count=2 * n_pairs, offset=pos).reshape(-1, 2)
    pos += 8 * n_pairs
    gaps_at = pos
    gaps = np.frombuffer(blob, dtype=_WIDTH_DTYPES[gw], count=count - 1, offset=pos)
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
    # Only bytes for the compiled loop: nothing can change their gaps once it has checked them.
    owner = blob if type(blob) is bytes else None
    return Postings(None, tfs, bounds, gaps=gaps, first=first, blob=owner, gaps_at=gaps_at)


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


class _KernelTables(NamedTuple):
    """What the compiled loop reads besides the postings, made once per index generation."""

    lengths: np.ndarray  # uint8 (all passages under 256 tokens) or uint16, per passage
    unit: np.ndarray  # float64 factor at tf 1, by length
    norm: np.ndarray  # float64 length norm, by length
    touched: np.ndarray  # uint32 work array
    scores: np.ndarray  # float64 scores of one block of passages (zeros between queries)


_BoundFor: TypeAlias = tuple[float, float, float, int]  # what a term's largest factor depends on besides its postings
_LITTLE_ENDIAN = sys.byteorder == "little"  # the blobs' byte order, which the compiled loop reads them in


def _lengths_key(lengths: np.ndarray) -> tuple[int, int, bytes]:
    """What tells one array of passage lengths from another (a digest: one pass, once per scorer)."""
    return (
        len(lengths),
        lengths.dtype.itemsize,
        hashlib.blake2b(np.ascontiguousarray(lengths).data, digest_size=16).digest(),
    )


class Scorer:
    """Exact BM25Okapi top-k over query terms' postings; not thread-safe (callers lock)."""

    def __init__(self, collection: Collection, compiled: bool = True) -> None:
        self.collection = collection
        self.compiled = compiled and kernel is not None
        p = collection.params
        self._k1_plus_1 = p.k1 + 1
        self._buffer = np.zeros(len(collection.doc_len), dtype=np.float64)
        self._index: np.ndarray | None = None  # work arrays, made on the first query
        self._values: np.ndarray | None = None
        self._mask = np.zeros(0, dtype=bool)
        self._tables = self._length_tables() if self.compiled else None
        self.skipped_postings = 0
        self.compiled = self._tables is not None
        # What cached postings' checks were made for: their copy of these passage lengths (any scorer of the index).
        self._lengths_key = _lengths_key(self._tables.lengths) if self._tables is not None else None
        # Bounds need the factor to grow with tf and shrink with the length.
        self._prunable = p.k1 >= 0 and 0 <= p.b <= 1  # with b > 1 the length norm can go negative

    def _length_tables(self) -> _KernelTables | None:
        """For the compiled loop: passage lengths (uint8 or uint16) and the per-length norm and tf-1 factor.

        A passage's factor depends only on its length, so a table by length
        (computed with the same operations as ``_norm``/``_unit``, hence the
        same values) replaces two float arrays as large as the index with one
        a quarter of the size: the loop then runs in the CPU cache.
        """
        doc_len = self.collection.doc_len
        longest = int(doc_len.max()) if len(doc_len) else 0
        if longest >= 1 << 16:
            return None
        norm = self._norm_of(np.arange(longest + 1, dtype=np.int64))
        unit = self._k1_plus_1 / (1.0 + norm)
        assert kernel is not None
        touched = np.zeros(kernel.BLOCK + 1, dtype=np.uint32)
        # Half the memory (a cache-sized array at 1M passages) when no passage has 256 tokens or more.
        lengths = doc_len.astype(np.uint8 if longest < 1 << 8 else np.uint16)
        return _KernelTables(lengths, unit, norm, touched, np.zeros(kernel.BLOCK, dtype=np.float64))

    @cached_property
    def _norm(self) -> np.ndarray:
        """Per passage, exactly as rank-bm25 writes it: k1 * (1 - b + b * doc_len / avgdl) (numpy path only)."""
        return self._norm_of(self.collection.doc_len)

    @cached_property
    def _unit(self) -> np.ndarray:
        """Per passage, the factor at tf 1 with the same operations (numpy path only)."""
        return self._k1_plus_1 / (1.0 + self._norm)

    @cached_property
    def _shortest(self) -> int:
        """The shortest passage length, holes (0) included: postings given as bare ids may name them."""
        doc_len = self.collection.doc_len
        return int(doc_len.min()) if len(doc_len) else 0

    def _norm_of(self, lengths: np.ndarray) -> np.ndarray:
        c, p = self.collection, self.collection.params
        if c.avgdl > 0:
            return p.k1 * (1 - p.b + p.b * lengths.astype(np.float64) / c.avgdl)
        return np.full(len(lengths), p.k1 * (1 - p.b))

    def factor(self, ids: np.ndarray, tfs: np.ndarray | None) -> np.ndarray:
        """The per-posting factor ``tf * (k1 + 1) / (tf + norm)`` (to be multiplied by the idf)."""
        factor = self._unit[ids]  # most postings have tf 1: one lookup
        if tfs is not None:
            other = np.flatnonzero(tfs != 1)
            tf = tfs[other].astype(np.float64)
            factor[other] = tf * self._k1_plus_1 / (tf + self._norm[ids[other]])
        return factor

    def upper_bound(self, term: QueryTerm) -> float:
        """The largest score ``term`` adds to any passage (exact when the postings carry bound pairs)."""
        postings = term.postings
        known = postings.largest_factor  # worked out once per postings (and parameters)
        if known is None or known[0] != self._bound_for:
            known = postings.largest_factor = (self._bound_for, self._largest_factor(postings))
        return term.weight * known[1]

    @cached_property
    def _bound_for(self) -> _BoundFor:
        c = self.collection
        return (c.params.k1, c.params.b, c.avgdl, self._shortest)

    def _largest_factor(self, postings: Postings) -> float:
        pairs = postings.bounds.tolist()
        if not pairs:  # postings built without pairs: use the largest tf and the shortest passage
            tfs = postings.tfs
            pairs = [[1 if tfs is None else int(tfs.max()), self._shortest]]
        c, p = self.collection, self.collection.params
        best = 0.0
        for tf, length in pairs:
            # The same operations as _norm_of and factor, so the bound is never below a computed score.
            norm = p.k1 * (1 - p.b + p.b * float(length) / c.avgdl) if c.avgdl > 0 else p.k1 * (1 - p.b)
            best = max(best, float(tf) * self._k1_plus_1 / (float(tf) + norm))
        return best

    def _checked(self, postings: Postings) -> CheckedPostings | None:
        """``postings`` checked by the compiled loop once for all its calls (None: it checks them at every call).

        The check is a pass over every posting; cached postings come back in
        many queries. Only postings read from a bytes blob qualify: the loop
        reads their gaps there, where nothing can change them after the check.
        Only the loop's module can make a CheckedPostings, so nothing else can
        pass for checked. Raises ValueError on postings the loop refuses.

        The check also copies each posting's passage length beside it: looking
        each one up in the array of every passage's length is a random read in
        a megabyte a posting, which leaves the CPU cache cold for the second
        stage; this scorer's lengths, so made again for another scorer.
        """
        if not self.compiled or postings.blob is None or postings.gaps is None or not _LITTLE_ENDIAN:
            return None
        assert kernel is not None and self._tables is not None
        lengths = self._tables.lengths
        checked = postings.checked
        if checked is None or postings.checked_for != self._lengths_key:
            tfs = _native_unsigned(postings.tfs)
            checked = kernel.check_postings(
                postings.blob,
                postings.gaps_at,
                postings.gaps.dtype.itemsize,
                postings.count,
                int(postings.first),
                tfs,
                1 if tfs is None else tfs.dtype.itemsize,
                len(lengths),
                lengths,
            )
            postings.checked, postings.checked_for = checked, self._lengths_key
        return checked  # (this scorer's, whatever another scorer sharing the postings stores meanwhile)

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
            # Largest bounds first, in both paths: the compiled loop may then leave out a suffix of
            # terms for passages that cannot reach the top k, and still add in the same order.
            bounds = [self.upper_bound(t) for t in merged]
            order = sorted(range(len(merged)), key=lambda i: -bounds[i])
            merged, bounds = [merged[i] for i in order], [bounds[i] for i in order]
            if self.compiled:
                return self._top_compiled(merged, bounds, k, exclude)
            return self._top_positive(merged, k, exclude)
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

    def _top_compiled(
        self, terms: list[QueryTerm], bounds: list[float], k: int, exclude: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """``_top_positive`` in C: the same scores, from factor tables indexed by passage length.

        Each term's upper bound lets the loop skip the postings of terms that
        can no longer bring a passage into the top k (``skipped_postings``
        counts them, for tests and benchmarks).
        """
        assert kernel is not None and self._tables is not None
        lengths, unit, norm, touched, block_scores = self._tables
        work: list[
            tuple[float, CheckedPostings, float] | tuple[float, np.ndarray, int, int, np.ndarray | None, int, float]
        ] = []
        for term, bound in zip(terms, bounds, strict=True):
            postings = term.postings
            checked = self._checked(postings)
            if checked is not None:
                work.append((term.weight, checked, bound))
                continue
            tfs = _native_unsigned(postings.tfs)
            width = 1 if tfs is None else tfs.dtype.itemsize
            gaps = _native_unsigned(postings.gaps)
            if gaps is not None:
                work.append((term.weight, gaps, gaps.dtype.itemsize, int(postings.first), tfs, width, bound))
            else:
                ids = np.ascontiguousarray(postings.ids, dtype=np.uint32)
                work.append((term.weight, ids, 0, 0, tfs, width, bound))
        if exclude is not None:
            # The loop wants them in order (repeats do no harm); they often are already (one term's postings),
            # and checking costs far less than np.unique (5 ms for 50,000 ids).
            exclude = np.ascontiguousarray(exclude, dtype=np.intp)
            if not bool(np.all(exclude[1:] >= exclude[:-1])):
                exclude = np.sort(exclude)
        best, self.skipped_postings = kernel.top_positive(
            block_scores, lengths, unit, norm, self._k1_plus_1, work, exclude, k, touched
        )
        return best

    def _top_positive(self, terms: list[QueryTerm], k: int, exclude: np.ndarray | None) -> list[tuple[int, float]]:
        """Every posting scored (one scatter-add per term), then only passages that can be in the top k read back.

        With positive weights a passage's score only grows, so the k-th best
        score among any passages is a lower bound of the final k-th score:
        taken from a sample (the postings of the term most likely to be in the
        best passages), it lets one pass keep only the passages at or above it.
        Work arrays are allocated once per index generation: fresh memory is
        slow to touch on small VMs, and numpy would otherwise convert the
        uint32 ids to its index type in a new array at every step.
        """
        buffer = self._buffer
        total = sum(len(t.postings.ids) for t in terms)
        dense = total * DENSE_SHARE >= len(buffer) or total > len(buffer)  # (sparse keeps all ids at once)
        index, values = self._work()
        spans: list[tuple[int, int]] = []
        try:
            at = 0
            for term in terms:
                n = len(term.postings.ids)
                ids = index[at : at + n]
                np.copyto(ids, term.postings.ids, casting="unsafe")
                contribution = self._factor_into(values[:n], ids, term.postings.tfs)
                contribution *= term.weight
                np.add.at(buffer, ids, contribution)
                spans.append((at, at + n))
                if not dense:  # the ids are read again to collect the scores
                    at += n
            floor = self._kth_floor(terms, k, exclude)
            if dense:
                if floor > 0:
                    np.greater_equal(buffer, floor, out=self._mask)
                else:
                    np.greater(buffer, 0.0, out=self._mask)
                candidates = np.flatnonzero(self._mask)
                scores = buffer[candidates]
                buffer.fill(0.0)
                if exclude is not None:
                    keep = ~np.isin(candidates, exclude)
                    candidates, scores = candidates[keep], scores[keep]
            else:
                candidates, scores = _collect(buffer, [index[a:b] for a, b in spans], exclude, floor)
        except BaseException:
            buffer.fill(0.0)
            raise
        return _best(candidates, scores, k)

    def _work(self) -> tuple[np.ndarray, np.ndarray]:
        if self._index is None:
            n = len(self._buffer)
            self._index, self._values, self._mask = (np.empty(n, dtype=t) for t in (np.intp, np.float64, bool))
            for array in (self._index, self._values, self._mask, self._buffer):
                array.fill(0)  # touch the pages now, not in the middle of a later query
        assert self._values is not None
        return self._index, self._values

    def _factor_into(self, out: np.ndarray, ids: np.ndarray, tfs: np.ndarray | None) -> np.ndarray:
        """``factor(ids, tfs)`` written into ``out`` (the same operations, so the same values)."""
        np.take(self._unit, ids, out=out)
        if tfs is not None:
            other = np.flatnonzero(tfs != 1)
            tf = tfs[other].astype(np.float64)
            out[other] = tf * self._k1_plus_1 / (tf + self._norm[ids[other]])
        return out

    def _kth_floor(self, terms: list[QueryTerm], k: int, exclude: np.ndarray | None) -> float:
        """A lower bound of the final k-th best score (0.0 when no sample has k passages).

        ``terms`` come largest upper bound first (``top`` sorts them), so the first
        one with k postings is the one most likely to hold the best passages.
        """
        sample = next((t.postings.ids for t in terms if len(t.postings.ids) >= k), None)
        if sample is None:
            return 0.0
        if len(sample) > FLOOR_SAMPLE:
            sample = sample[:: len(sample) // FLOOR_SAMPLE]
        return _kth_largest(self._buffer[_without(sample, exclude)], k)


DENSE_SHARE = 12  # read the whole score buffer back once the postings touch more than 1/12 of it
FLOOR_SAMPLE = 4_096


def _native_unsigned(values: np.ndarray | None) -> np.ndarray | None:
    """``values`` as the compiled loop reads them: contiguous native uint8/16/32."""
    if values is None:
        return None
    if values.dtype.kind != "u" or values.dtype.itemsize not in (1, 2, 4) or not values.dtype.isnative:
        values = values.astype(np.uint32)
    # Aligned too: wide tfs decoded straight from a blob can start at an odd offset (C reads them as uint16/32).
    return np.require(values, requirements=("C", "A"))


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
        if term.weight == 0 or term.postings.count == 0:
            continue
        key = id(term.postings)
        if key in merged:
            term = QueryTerm(merged[key].weight + term.weight, term.postings)
        merged[key] = term
    return list(merged.values())


def _collect(
    buffer: np.ndarray, touched: list[np.ndarray], exclude: np.ndarray | None, floor: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Each touched passage once with its score (those below ``floor`` left out), zeroing the buffer on the way."""
    candidates: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for ids in touched:
        values = buffer[ids]
        keep = values >= floor if floor > 0 else values != 0
        if (len(candidates) == 0 and floor <= 0) or keep.all():
            candidates.append(ids)
            scores.append(values)
        else:
            candidates.append(ids[keep])
            scores.append(values[keep])
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
    ``ids[offsets[t]:offsets[t+1]]`` (ascending, uint32) with frequencies
    ``tfs[...]`` (uint32). Working memory: one int64 key per token, sorted in
    place (on two cores when there are), plus the postings.
    """
    if len(term_ids) == 0:
        empty = np.zeros(0, dtype=np.uint32)
        return np.zeros(vocabulary_size + 1, dtype=np.int64), empty, empty, np.zeros(vocabulary_size, dtype=np.int64)
    n_docs = int(doc_ids.max()) + 1
    keys = term_ids.astype(np.int64)
    keys *= n_docs
    keys += doc_ids
    _sort_in_place(keys)
    first = np.empty(len(keys), dtype=bool)  # the first token of each (term, doc) pair
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    n_postings = int(np.count_nonzero(first))
    id_dtype = np.uint32 if n_docs <= 1 << 32 else np.uint64
    ids = np.empty(n_postings, dtype=id_dtype)
    tfs = np.empty(n_postings, dtype=np.uint32)
    df = np.zeros(vocabulary_size, dtype=np.int64)
    at = 0
    for a in range(0, len(keys), _POSTINGS_SLICE):
        b = min(a + _POSTINGS_SLICE, len(keys))
        starts = np.flatnonzero(first[a:b])
        if len(starts) == 0:
            continue
        end = _next_pair(first, b)  # the slice's last pair may go on into the next slice
        pair_keys = keys[a + starts]
        terms = pair_keys // n_docs
        n = len(starts)
        ids[at : at + n] = pair_keys - terms * n_docs
        tfs[at : at + n] = np.diff(starts, append=end - a)
        df += np.bincount(terms, minlength=vocabulary_size)
        at += n
    offsets = np.zeros(vocabulary_size + 1, dtype=np.int64)
    np.cumsum(df, out=offsets[1:])
    return offsets, ids, tfs, df


_POSTINGS_SLICE = 8_000_000


def _next_pair(first: np.ndarray, position: int) -> int:
    """The index of the first pair start at or after ``position`` (or the end); usually a few tokens on."""
    while position < len(first):
        window = first[position : position + 4096]
        hit = int(window.argmax())
        if window[hit]:
            return position + hit
        position += len(window)
    return len(first)


def _sort_in_place(keys: np.ndarray) -> None:
    """Sort ``keys``; on two or more cores, partition around the median and sort both halves at once."""
    if len(keys) < 4_000_000 or (os.cpu_count() or 1) < 2:
        keys.sort()
        return
    middle = len(keys) // 2
    keys.partition(middle)
    other = threading.Thread(target=keys[middle:].sort)  # numpy releases the GIL while sorting
    other.start()
    keys[:middle].sort()
    other.join()
