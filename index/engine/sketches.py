"""Each passage's term set in 12 bytes: how many distinct terms it has and a 64-bit sketch of them.

A term sets bit ``crc32(term) % 64`` of the sketch (CRC-32: the same bit in every process and on every
machine, unlike ``hash``). Stored by the indexer (blobs ``sketch`` and ``distinct_terms``, by passage id),
they let the search service rule out near-duplicate pairs among its candidates without reading or
tokenizing their text: :func:`jaccard_upper_bound`. A passage indexed before the blobs existed has the
count ``UNKNOWN``; its sketch is worked out from its text when it is needed.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

import numpy as np

from corpusbot.index.engine.bm25 import kernel

UNKNOWN = 0xFFFFFFFF  # distinct_terms of a passage whose sketch was never stored
SKETCH_BLOB = "sketch"
DISTINCT_BLOB = "distinct_terms"
# meta: the index generation the blobs were written for. A writer that does not know them (a corpusbot from before
# them, still indexing during an upgrade) leaves them as they were while passage ids are reused: then they are
# another generation's, and not used.
GENERATION_KEY = "sketches_generation"

_ONE = np.uint64(1)


def from_blobs(
    sketch: object, distinct: object, meta: dict, size: int | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The stored ``(sketches, distinct counts)``, or None when they cannot be trusted: missing, damaged (not whole
    items, not as many of each, not ``size`` of them) or written for another index generation than ``meta``'s."""
    if not isinstance(sketch, bytes) or not isinstance(distinct, bytes):
        return None
    if meta.get(GENERATION_KEY) is None or meta.get(GENERATION_KEY) != meta.get("generation"):
        return None
    if len(sketch) % 8 or len(distinct) % 4 or len(sketch) // 8 != len(distinct) // 4:
        return None
    if size is not None and len(distinct) // 4 != size:
        return None
    return np.frombuffer(sketch, dtype="<u8"), np.frombuffer(distinct, dtype="<u4")


@lru_cache(maxsize=1 << 18)
def term_bit(term: str) -> int:
    """The sketch bit of ``term`` (0-63)."""
    return zlib.crc32(term.encode("utf-8", "surrogatepass")) & 63


def term_bits(terms: Iterable[str]) -> np.ndarray:
    """Each term's sketch bit as a uint64 mask (``1 << term_bit``)."""
    shifts = np.fromiter(map(term_bit, terms), dtype=np.uint64)
    return np.left_shift(_ONE, shifts)


def sketch_of(terms: Iterable[str]) -> int:
    """The sketch of a set of terms."""
    value = 0
    for term in terms:
        value |= 1 << term_bit(term)
    return value


BLOCK_TERMS = 1 << 20  # terms handled at a time: a few arrays of this many items, however large the input


def passage_sketches(
    term_ids: np.ndarray, lengths: np.ndarray, skip: np.ndarray, bits: np.ndarray, compiled: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(sketch, distinct)`` of each passage; passage ``i`` has the next ``lengths[i]`` of ``term_ids``.

    The first ``skip[i]`` of them are not the passage's text (its title's terms) and are left out.
    ``bits``: the sketch mask of every term id (``term_bits`` of the vocabulary). A passage without terms
    of their own (stopwords only) has sketch 0 and count 0. By the compiled module when it is built
    (``compiled``: one pass, a mark per term id); else with numpy, ``BLOCK_TERMS`` terms at a time (a passage
    longer than that on its own).
    """
    n = len(lengths)
    sketches = np.zeros(n, dtype=np.uint64)
    distinct = np.zeros(n, dtype=np.uint32)
    lengths = np.asarray(lengths, dtype=np.int64)
    if compiled and kernel is not None and hasattr(kernel, "passage_sketches"):
        kernel.passage_sketches(
            np.ascontiguousarray(term_ids, dtype=np.int32),
            lengths,
            np.ascontiguousarray(skip, dtype=np.int64),
            np.ascontiguousarray(bits, dtype=np.uint64),
            sketches,
            distinct,
        )
        return sketches, distinct
    for block, start, end in term_blocks(lengths, BLOCK_TERMS):
        sketches[block], distinct[block] = _block_sketches(
            term_ids[start:end], lengths[block], np.asarray(skip[block], dtype=np.int64), bits
        )
    return sketches, distinct


def term_blocks(lengths: np.ndarray, block_terms: int) -> Iterator[tuple[slice, int, int]]:
    """Runs of consecutive passages of about ``block_terms`` terms in all (a longer passage on its own): each as
    (its passages, the position of its first term, the position after its last)."""
    ends = np.cumsum(lengths)
    first = 0
    while first < len(lengths):
        start = int(ends[first] - lengths[first])
        last = max(first + 1, int(np.searchsorted(ends, start + block_terms, side="right")))
        yield slice(first, last), start, int(ends[last - 1])
        first = last


def text_terms(lengths: np.ndarray, skip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each term of passages of ``lengths`` terms whose first ``skip`` are their title's: the passage it is in,
    and whether it is of the passage's text."""
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    own = np.arange(len(owner), dtype=np.int64) >= np.repeat(np.cumsum(lengths) - lengths + skip, lengths)
    return owner, own


def _block_sketches(
    term_ids: np.ndarray, lengths: np.ndarray, skip: np.ndarray, bits: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = len(lengths)
    sketches = np.zeros(n, dtype=np.uint64)
    owner, own = text_terms(lengths, skip)
    ids, owner = term_ids[own].astype(np.int64), owner[own]
    if len(ids) == 0:
        return sketches, np.zeros(n, dtype=np.uint32)
    counts = np.bincount(owner, minlength=n)
    filled = counts > 0
    # reduceat over the non-empty passages only: an empty range would give its next element instead of 0
    sketches[filled] = np.bitwise_or.reduceat(bits[ids], (np.cumsum(counts) - counts)[filled])
    span = int(ids.max()) + 1
    distinct = np.bincount(np.unique(owner * span + ids) // span, minlength=n).astype(np.uint32)
    return sketches, distinct


def jaccard_upper_bound(sketches: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``bound[i, j]`` >= the Jaccard similarity of term sets ``i`` and ``j`` (NaN for two empty sets).

    A bit in A's sketch but not in B's comes from a term of A that B lacks (were it in B, B would have the
    bit), and different bits from different terms: so ``|A - B|`` is at least the number of such bits, the
    terms shared are at most ``|A|`` minus it (and ``|B|`` minus B's count), and Jaccard,
    ``shared / (|A| + |B| - shared)``, grows with the terms shared.
    """
    only = sketches[:, None] & ~sketches[None, :]  # [i, j]: bits of set i that set j lacks
    lacking = _bit_counts(only)
    a, b = sizes[:, None].astype(np.int64), sizes[None, :].astype(np.int64)
    shared = np.minimum(a - lacking, b - lacking.T)
    with np.errstate(divide="ignore", invalid="ignore"):
        return shared / (a + b - shared)


_BITS_SET = np.array([bin(byte).count("1") for byte in range(256)], dtype=np.int64)


def _bit_counts(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(values).astype(np.int64)
    return _BITS_SET[values[..., None].view(np.uint8)].sum(axis=-1).reshape(values.shape)


def sketches_of_sets(sets: Sequence[frozenset[str]]) -> tuple[np.ndarray, np.ndarray]:
    """``(sketches, sizes)`` of term sets worked out from the terms (for passages without stored ones)."""
    sketches = np.fromiter((sketch_of(terms) for terms in sets), dtype=np.uint64, count=len(sets))
    sizes = np.fromiter(map(len, sets), dtype=np.int64, count=len(sets))
    return sketches, sizes
