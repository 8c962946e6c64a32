"""Attacks on the compiled scoring loop (``kernel.top_positive``) and the postings it reads unchecked.

Postings checked once (``kernel.check_postings``) are read at every later call without a check, so only the kernel
can make a ``CheckedPostings``, the check refuses whatever could not be read safely later, and the loop refuses the
tables that would break it. Whatever they are given, they raise TypeError or ValueError; they never crash the
process or read outside the buffers they were handed. A crash is looked for in a child process.
"""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from corpusbot.index.engine.bm25 import kernel

GAPS = bytes([3, 1, 4, 1, 5])  # ids 2, 5, 6, 10, 11, 16 from first id 2
PASSAGES = 20


def _check(
    blob: object = GAPS,
    offset: object = 0,
    gap_width: object = 1,
    count: object = 6,
    first: object = 2,
    tfs: object = None,
    tf_width: object = 1,
    passages: object = PASSAGES,
    *lengths: object,
) -> kernel.CheckedPostings:
    return kernel.check_postings(blob, offset, gap_width, count, first, tfs, tf_width, passages, *lengths)  # type: ignore[arg-type]


def _top(terms: list[object], lengths: np.ndarray | None = None, unit: object = None, k1_plus_1: float = 2.5) -> list:
    """``top_positive`` over PASSAGES passages of length 2 (tables of 4 lengths), top 3."""
    lengths = np.full(PASSAGES, 2, dtype=np.uint8) if lengths is None else lengths
    unit = np.linspace(1.0, 0.5, 4) if unit is None else unit
    scores = np.zeros(kernel.BLOCK, dtype=np.float64)
    touched = np.zeros(kernel.BLOCK + 1, dtype=np.uint32)
    try:
        best, _ = kernel.top_positive(
            scores, lengths, unit, np.linspace(0.5, 1.0, 4), k1_plus_1, terms, None, 3, touched
        )
    finally:
        assert not scores.any()  # zeros again, whatever happened
    return best


class Bytes(bytes):
    pass


# -- what held up ---------------------------------------------------------------------------------------------------


def test_checked_postings_are_read_as_checked() -> None:
    checked = _check(tfs=np.array([1, 1, 4, 1, 1, 1], dtype=np.uint8))
    assert (checked.count, checked.passages) == (6, PASSAGES)
    plain = (1.0, np.frombuffer(GAPS, dtype=np.uint8), 1, 2, np.array([1, 1, 4, 1, 1, 1], dtype=np.uint8), 1, 3.0)
    assert _top([(1.0, checked, 3.0)]) == _top([plain])
    assert [pid for pid, _ in _top([(1.0, checked, 3.0)])] == [6, 2, 5]  # the tf 4 first, then by id


def test_only_the_kernel_makes_checked_postings() -> None:
    checked = _check()
    with pytest.raises(TypeError):
        kernel.CheckedPostings()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        copy.copy(checked)
    with pytest.raises(TypeError):
        pickle.dumps(checked)
    with pytest.raises(TypeError):
        type("Forged", (kernel.CheckedPostings,), {})
    with pytest.raises(TypeError):  # anything else in a checked term's place is refused, not read unchecked
        _top([(1.0, np.arange(3, dtype=np.uint32), 1.0)])


@pytest.mark.parametrize(
    "changes",
    [
        {"blob": bytearray(GAPS)},  # mutable: the gaps could change after the check
        {"blob": memoryview(GAPS)},
        {"blob": np.frombuffer(GAPS, dtype=np.uint8)},
        {"blob": Bytes(GAPS)},  # a subclass could export other memory
        {"offset": -1},
        {"offset": len(GAPS) + 1},
        {"offset": 1},  # the last gap would be past the end
        {"count": 0},
        {"count": -3},
        {"count": 7},
        {"count": 2**62},  # count * width would overflow
        {"count": 2**63},
        {"gap_width": 3},
        {"gap_width": 0},
        {"gap_width": 2},  # five bytes are not 2-byte gaps for 6 postings
        {"tf_width": 3},
        {"tfs": np.ones(5, dtype=np.uint8)},
        {"tfs": np.ones(12, dtype=np.uint8)[::2]},  # not contiguous
        {"tfs": np.ones(6, dtype=np.uint8), "tf_width": 2},
        {"first": -1},
        {"first": 2**64},
        {"first": 4.0},
        {"first": 20},  # beyond the last passage
        {"first": 6},  # the gaps lead beyond it
        {"passages": 16},
        {"passages": -1},
        {"blob": bytes([3, 0, 4, 1, 5])},  # a zero gap repeats an id
        {"blob": b"\xff\xff\xff\xff" * 2 + bytes([30, 0, 0, 0]), "gap_width": 4, "count": 4, "first": 0},  # wraps
    ],
)
def test_the_check_refuses_postings_it_could_not_read_safely(changes: dict[str, object]) -> None:
    with pytest.raises((TypeError, ValueError, OverflowError)):
        _check(**changes)


def test_checked_postings_keep_their_own_tfs_however_the_array_changes_after() -> None:
    tfs = np.array([1, 1, 4, 1, 1, 1], dtype=np.uint32)
    checked = _check(tfs=tfs, tf_width=4)
    before = _top([(1.0, checked, 3.0)])
    tfs[:] = [0, 0xFFFF_FFFF, 7, 1, 0, 3]
    tfs.resize(1, refcheck=False)  # numpy frees the memory the tfs were read from
    np.ones(1 << 16, dtype=np.uint32)  # (and may hand it out again)
    assert _top([(1.0, checked, 3.0)]) == before


def test_postings_checked_against_more_passages_than_the_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="checked against 20 passages"):
        _top([(1.0, _check(), 3.0)], lengths=np.full(17, 2, dtype=np.uint8))
    assert _top([(1.0, _check(passages=17), 3.0)], lengths=np.full(PASSAGES, 2, dtype=np.uint8))  # fewer: fine


@pytest.mark.parametrize("dtype", [np.uint32, np.int64, np.float64])
def test_lengths_of_another_item_size_are_refused(dtype: type) -> None:
    with pytest.raises(ValueError, match="uint8 or uint16"):
        _top([(1.0, _check(), 3.0)], lengths=np.full(PASSAGES, 2, dtype=dtype))


def _with_lengths(lengths: object) -> kernel.CheckedPostings:
    return _check(GAPS, 0, 1, 6, 2, None, 1, PASSAGES, lengths)


def test_checked_lengths_are_read_beside_the_postings_not_by_id() -> None:
    lengths = np.array([i % 4 for i in range(PASSAGES)], dtype=np.uint8)
    plain = (1.0, np.frombuffer(GAPS, dtype=np.uint8), 1, 2, None, 1, 3.0)
    copied = _with_lengths(lengths)
    assert _top([(1.0, copied, 3.0)], lengths=lengths) == _top([plain], lengths=lengths)
    # The copy is what the loop reads: other lengths handed to it later (a caller's mistake) change nothing.
    assert _top([(1.0, copied, 3.0)], lengths=np.full(PASSAGES, 3, dtype=np.uint8)) == _top([plain], lengths=lengths)
    lengths[:] = 0  # nor does the array the copy was made from
    assert _top([(1.0, copied, 3.0)], lengths=np.full(PASSAGES, 3, dtype=np.uint8)) == _top(
        [plain], lengths=np.array([i % 4 for i in range(PASSAGES)], dtype=np.uint8)
    )


@pytest.mark.parametrize(
    "lengths",
    [
        np.full(PASSAGES - 1, 2, dtype=np.uint8),  # not one per passage
        np.full(PASSAGES + 1, 2, dtype=np.uint8),
        np.full(PASSAGES, 2, dtype=np.uint32),
        np.full(PASSAGES, 2.0),
        np.full(2 * PASSAGES, 2, dtype=np.uint8)[::2],  # not contiguous
        "twenty",
    ],
)
def test_lengths_the_check_could_not_copy_safely_are_refused(lengths: object) -> None:
    with pytest.raises((TypeError, ValueError, BufferError)):
        _with_lengths(lengths)


def test_copied_lengths_of_another_width_than_the_loops_are_refused() -> None:
    copied = _with_lengths(np.full(PASSAGES, 2, dtype=np.uint16))
    with pytest.raises(ValueError, match="another width"):
        _top([(1.0, copied, 3.0)], lengths=np.full(PASSAGES, 2, dtype=np.uint8))
    assert _top([(1.0, copied, 3.0)], lengths=np.full(PASSAGES, 2, dtype=np.uint16))


def test_copied_lengths_beyond_the_factor_tables_are_refused_not_read() -> None:
    copied = _with_lengths(np.full(PASSAGES, 60_000, dtype=np.uint16))  # tables of 4 lengths
    with pytest.raises(ValueError, match="longer than the factor tables"):
        _top([(1.0, copied, 3.0)], lengths=np.full(PASSAGES, 2, dtype=np.uint16))


def test_a_checked_term_with_a_negative_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        _top([(-1.0, _check(), 3.0)])


# -- bugs -----------------------------------------------------------------------------------------------------------

NEGATIVE_FACTORS = """
import numpy as np
from corpusbot.index.engine.bm25 import kernel

# tf 2 with k1_plus_1 = -0.5 and norm 0 gives a factor of -0.5: the second term takes every score of the first
# back to 0.0, the third lifts them again, and each passage is counted as touched anew every time.
n = kernel.BLOCK
ids = np.arange(n, dtype=np.uint32)
twos = np.full(n, 2, dtype=np.uint8)
terms = [(1.0, ids, 0, 0, None, 1, 0.0)] + [(1.0, ids, 0, 0, twos, 1, 0.0), (1.0, ids, 0, 0, None, 1, 0.0)] * 20
unit, norm, k1_plus_1 = {tables}
try:
    kernel.top_positive(
        np.zeros(n), np.zeros(n, dtype=np.uint16), unit, norm, k1_plus_1, terms, None, 3,
        np.zeros(n + 1, dtype=np.uint32),
    )
except ValueError as error:
    print(error)
"""


@pytest.mark.parametrize(
    "tables",
    [
        "np.array([0.5]), np.array([0.0]), -0.5",
        "np.array([-0.5]), np.array([0.0]), 2.5",
        "np.array([0.5]), np.array([-3.0]), 2.5",
    ],
    ids=["k1_plus_1", "unit", "norm"],
)
def test_tables_giving_negative_factors_are_refused(tables: str) -> None:
    # A score taken back to 0.0 had its passage counted in the touched array again: written past its end (the
    # child died with SIGSEGV). bm25.py never builds such tables; the loop now refuses them.
    script = textwrap.dedent(NEGATIVE_FACTORS).replace("{tables}", tables)
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env={**os.environ}
    )
    assert finished.returncode == 0, (finished.returncode, finished.stderr[-2000:])
    assert "must be non-negative" in finished.stdout
