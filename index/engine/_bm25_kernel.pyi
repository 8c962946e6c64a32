"""Types of the compiled BM25 scoring loop (``_bm25_kernel.c``); bm25.py is its only caller.

The C module reads every array through the buffer protocol (C-contiguous; the
score buffer and ``touched`` writable), so any such object will do; numpy
arrays are what bm25.py passes. Under Python 3.11 typeshed gives ndarray no
``__buffer__``, hence the union.
"""

from collections.abc import Iterable, Sequence
from typing import Final, TypeAlias, final

import numpy as np
from typing_extensions import Buffer

_Array: TypeAlias = Buffer | np.ndarray

@final
class CheckedPostings:
    """A term's postings checked once by :func:`check_postings` (the only way to make one)."""

    @property
    def count(self) -> int:
        """Postings."""

    @property
    def passages(self) -> int:
        """Every id is below this."""

# One query term: (weight, uint32 ids or the uint8/16/32 gaps between them, gap width in bytes (0: ids),
# first id (with gaps), tfs or None when all are 1, tf width in bytes, upper bound of its score), checked at
# each call; or (weight, CheckedPostings, upper bound of its score), checked once.
_Term: TypeAlias = tuple[float, _Array, int, int, _Array | None, int, float] | tuple[float, CheckedPostings, float]

BLOCK: Final[int]
"""Passages scored per block: ``buffer`` holds this many float64s, ``touched`` more uint32s."""

def check_postings(
    blob: bytes,
    offset: int,
    gap_width: int,
    count: int,
    first: int,
    tfs: _Array | None,
    tf_width: int,
    passages: int,
    lengths: _Array | None = None,
    /,
) -> CheckedPostings:
    """A term's postings for :func:`top_positive`, their ids checked once for all its calls.

    ``count - 1`` gaps of ``gap_width`` (1, 2 or 4) bytes at ``offset`` of ``blob`` (bytes itself: nothing can
    change them after the check; little-endian on a little-endian machine) follow the ``first`` id; ``tfs``: one
    of ``tf_width`` bytes per posting, or None when all are 1 (copied, not checked: any value is safe).
    ``lengths`` (uint8 or uint16, one per passage): each posting's passage length is copied beside it, and
    :func:`top_positive` reads it there instead of looking it up by id (it must be given lengths of the same
    width, and should be given the same lengths). Raises TypeError unless ``blob`` is bytes, ValueError unless
    the gaps lie within it, the ids ascend strictly below ``passages`` and ``lengths`` has ``passages`` items.
    """

def top_positive(
    buffer: _Array,
    lengths: _Array,
    unit: _Array,
    norm: _Array,
    k1_plus_1: float,
    terms: Iterable[_Term],
    exclude: _Array | None,
    k: int,
    touched: _Array,
    /,
) -> tuple[list[tuple[int, float]], int]:
    """Exact BM25 top ``k`` as ``(passage id, score)`` (score desc, id asc; scores > 0), and the postings skipped.

    ``buffer``: float64 zeros, ``BLOCK`` of them (zeros again on return); ``lengths``: uint8 or uint16, one per
    passage; ``unit``/``norm``: float64 factor at tf 1 and length norm, by length, none negative; ``terms``:
    largest bound first; ``exclude``: sorted intp ids; ``touched``: uint32 work array of more than ``BLOCK`` items.
    Raises ValueError on arrays of the wrong size or sign, postings out of order or range, or postings checked
    against more passages than ``lengths`` holds.
    """

def near_pairs(
    sketches: _Array, distinct: _Array, ids: _Array, threshold: float, unknown: int, /
) -> list[tuple[int, int]] | None:
    """The pairs ``(i, j)``, ``i > j``, of positions in ``ids`` whose term sets may have a Jaccard similarity of at
    least ``threshold`` (neither their sizes nor their 64-bit sketches rule it out).

    ``sketches``: uint64 and ``distinct``: uint32, by passage id; ``ids``: intp. None when an id is out of range or
    its count is ``unknown``.
    """

def article_scores(
    terms: Iterable[tuple[float, _Array, _Array | None, int]],
    first: _Array,
    last: _Array,
    norm: _Array,
    k1_plus_1: float,
    out: _Array,
    /,
) -> None:
    """BM25 of whole articles: for each term ``(weight, ids, tfs or None, tf width)`` and article ``i``, ``tf`` is
    the sum of its tfs over passage ids ``first[i]..last[i]`` and ``out[i] += weight * tf * k1_plus_1 / (tf +
    norm[i])``, in that order of operations (the numpy path's). Raises ValueError on arrays of the wrong size.
    """

def passage_sketches(
    term_ids: _Array, lengths: _Array, skip: _Array, bits: _Array, sketches: _Array, distinct: _Array, /
) -> None:
    """Each passage's term-set sketch and distinct-term count into ``sketches`` (uint64) and ``distinct`` (uint32).

    Passage ``i`` has the next ``lengths[i]`` of ``term_ids`` (int32), the first ``skip[i]`` of them left out;
    ``bits``: uint64, each term id's sketch bit; ``lengths``/``skip``: int64. Raises ValueError on a term id
    without a bit or lengths beyond ``term_ids``.
    """

def pair_sketches(
    term_ids: _Array, lengths: _Array, skip: _Array, hashes: _Array, mix: int, sketches: _Array, /
) -> None:
    """Each passage's adjacent-pair sketch into ``sketches`` (uint8, 32 bytes a passage; ``engine.pair_sketches``).

    Passage ``i`` has the next ``lengths[i]`` of ``term_ids`` (int32), the first ``skip[i]`` of them left out; two
    neighbours ``(a, b)`` set bit ``((hashes[a] << 32 | hashes[b]) * mix) >> 56`` (mod 2**64). ``hashes``: uint64
    below 2**32, one per term id. Raises ValueError on a term id without one or lengths beyond ``term_ids``.
    """

def contains(ids: _Array, wanted: Sequence[int], /) -> list[bool]:
    """For each of ``wanted`` (passage ids, best ascending), whether the ascending uint32 ``ids`` hold it."""

def article_scores_of(
    terms: Iterable[tuple[float, _Array, _Array | None, int]],
    of: _Array,
    first: _Array,
    last: _Array,
    norm: _Array,
    k1_plus_1: float,
    scale: float,
    passages: _Array,
    /,
) -> list[float]:
    """For each of ``passages`` (intp ids), ``scale`` × the ``article_scores`` total of its article ``of[id]`` (intp);
    ``first``, ``last`` (intp) and ``norm`` (float64) are by article number. Each article is scored once. Raises
    ValueError on a passage without an article number within the tables."""

def with_pair_bit(sketches: _Array, ids: _Array, bits: Sequence[int], /) -> list[list[int]]:
    """For each of ``bits`` (0-255), the positions in ``ids`` (intp) of the passages whose 32-byte row of ``sketches``
    (the ``pair_sketch`` blob) has it. Raises ValueError on an id without a row or a bit out of range."""
