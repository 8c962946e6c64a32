"""Each passage's adjacent term pairs in 32 bytes: a 256-bit sketch.

A pair ``(a, b)``, term ``b`` right after term ``a`` in the passage's text (its ``Tokenizer.terms``), sets bit
``pair_bit(a, b)``. Stored by the indexer (blob ``pair_sketch``, by passage id), it tells the search service
which candidates cannot hold a pair of the question's words side by side, so their text is neither tokenized
for the adjacent-word bonus nor, for a question that can skip them, read at all. A clear bit is certain (the
pair is absent); a set one is only possible (another pair may have set it): the text decides. A passage whose
pairs were never worked out (indexed by a corpusbot without this blob) has every bit set.

The bit mixes the CRC-32 of both terms (the same in every process and on every machine, unlike ``hash``) by
Fibonacci hashing of the 64-bit ``crc(a) << 32 | crc(b)``: the top bits of the product depend on every bit of
both, so ``(a, b)`` and ``(a, c)`` rarely share a bit. With ~75 pairs a passage sets about a quarter of the bits.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

from corpusbot.index.engine.bm25 import kernel
from corpusbot.index.engine.sketches import term_blocks, text_terms

PAIR_SKETCH_BLOB = "pair_sketch"
# meta: the index generation the blob was written for. A writer that does not know it (a corpusbot from before it,
# still indexing during an upgrade) leaves it as it was while passage ids are reused; then it is not used.
GENERATION_KEY = "pair_sketches_generation"
BYTES = 32  # per passage: 256 bits
UNKNOWN = b"\xff" * BYTES  # a passage whose pairs are not known: every pair possible

_MIX = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd
_MASK = (1 << 64) - 1
_SHIFT = 64 - 8  # the top 8 bits: 0-255
BLOCK_TERMS = 1 << 20  # terms handled at a time: a few arrays of this many items, however large the input


@lru_cache(maxsize=1 << 18)
def term_hash(term: str) -> int:
    """The 32-bit hash of ``term`` that its pairs' bits are made of."""
    return zlib.crc32(term.encode("utf-8", "surrogatepass"))


def term_hashes(terms: Iterable[str]) -> np.ndarray:
    return np.fromiter(map(term_hash, terms), dtype=np.uint64)


def pair_bit(first: str, second: str) -> int:
    """The sketch bit (0-255) of ``second`` right after ``first``."""
    return (((term_hash(first) << 32 | term_hash(second)) * _MIX) & _MASK) >> _SHIFT


def pair_sketch_of(terms: Sequence[str]) -> bytes:
    """The sketch of a text's terms, in order."""
    flags = np.zeros(BYTES * 8, dtype=bool)
    for first, second in itertools.pairwise(terms):
        flags[pair_bit(first, second)] = True
    return np.packbits(flags, bitorder="little").tobytes()


def passage_pair_sketches(
    term_ids: np.ndarray, lengths: np.ndarray, skip: np.ndarray, hashes: np.ndarray, compiled: bool = True
) -> np.ndarray:
    """The sketch of each passage, one row of ``BYTES`` uint8; passage ``i`` has the next ``lengths[i]`` of
    ``term_ids``, of which the first ``skip[i]`` (its title's terms) are left out. ``hashes``: ``term_hashes`` of
    every term id. By the compiled module when it is built (``compiled``: one pass); else with numpy,
    ``BLOCK_TERMS`` terms at a time (a passage longer than that on its own), ~10× slower."""
    n = len(lengths)
    sketches = np.zeros((n, BYTES), dtype=np.uint8)
    lengths = np.asarray(lengths, dtype=np.int64)
    skip = np.asarray(skip, dtype=np.int64)
    if compiled and kernel is not None and hasattr(kernel, "pair_sketches"):
        kernel.pair_sketches(
            np.ascontiguousarray(term_ids, dtype=np.int32),
            lengths,
            np.ascontiguousarray(skip),
            np.ascontiguousarray(hashes, dtype=np.uint64),
            _MIX,
            sketches,
        )
        return sketches
    for block, start, end in term_blocks(lengths, BLOCK_TERMS):
        sketches[block] = _block(term_ids[start:end], lengths[block], skip[block], hashes)
    return sketches


def _block(term_ids: np.ndarray, lengths: np.ndarray, skip: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    n = len(lengths)
    flags = np.zeros((n, BYTES * 8), dtype=bool)
    owner, own = text_terms(lengths, skip)
    # a pair is two neighbouring terms of one passage's text
    pair = own[1:] & own[:-1] & (owner[1:] == owner[:-1])
    if pair.any():
        ids = np.asarray(term_ids, dtype=np.int64)
        first, second = hashes[ids[:-1][pair]], hashes[ids[1:][pair]]
        bits = ((first << np.uint64(32) | second) * np.uint64(_MIX)) >> np.uint64(_SHIFT)
        flags[owner[:-1][pair], bits.astype(np.intp)] = True
    return np.packbits(flags, axis=1, bitorder="little")


def from_blob(blob: object, meta: dict, size: int) -> bytes | None:
    """The stored sketches (``size`` rows of ``BYTES``), or None when they cannot be trusted: missing, damaged (not
    ``size`` whole rows) or written for another index generation than ``meta``'s."""
    if not isinstance(blob, bytes) or len(blob) != size * BYTES:
        return None
    if meta.get(GENERATION_KEY) is None or meta.get(GENERATION_KEY) != meta.get("generation"):
        return None
    return blob


def row(sketches: bytes, passage_id: int) -> bytes:
    """The sketch of passage ``passage_id`` in the blob ``sketches`` (empty beyond its end)."""
    return sketches[passage_id * BYTES : (passage_id + 1) * BYTES]


def may_hold(sketches: bytes, passage_id: int, bit: int) -> bool:
    """Whether the sketch of passage ``passage_id`` (a row of ``sketches``) has ``bit``: whether it may hold the pair."""
    return sketches[passage_id * BYTES + (bit >> 3)] >> (bit & 7) & 1 == 1
