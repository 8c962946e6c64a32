"""Attacks on the compiled second-stage helpers (``kernel.near_pairs``, ``kernel.article_scores``).

Whatever they are given, they raise TypeError or ValueError, or return (None for ids they cannot look up); they
never crash the process or read outside the buffers they were handed. A crash is looked for in a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusbot.index.engine.bm25 import kernel
from corpusbot.index.engine.sketches import UNKNOWN

SKETCHES = np.array([0b1011, 0b1011, 0b0111, 0], dtype=np.uint64)
DISTINCT = np.array([3, 3, 3, 0], dtype=np.uint32)
IDS = np.array([0, 2, 5, 9], dtype=np.uint32)
TFS = np.array([1, 2, 3, 4], dtype=np.uint32)
FIRST = np.array([0, 3], dtype=np.intp)
LAST = np.array([2, 9], dtype=np.intp)


def _near(ids: object, sketches: object = SKETCHES, distinct: object = DISTINCT) -> object:
    return kernel.near_pairs(sketches, distinct, ids, 0.8, UNKNOWN)


# -- what held up ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ids", [[-1, 0], [0, 4], [0, 2**62], [-(2**63), 1]], ids=["negative", "past the end", "huge", "most negative"]
)
def test_near_pairs_gives_none_for_ids_it_cannot_look_up(ids: list[int]) -> None:
    assert _near(np.array(ids, dtype=np.intp)) is None


def test_near_pairs_gives_none_past_the_shorter_of_two_blobs_of_different_lengths() -> None:
    assert _near(np.array([0, 3], dtype=np.intp), sketches=SKETCHES[:3]) is None
    assert _near(np.array([0, 3], dtype=np.intp), distinct=DISTINCT[:3]) is None
    assert _near(np.array([0, 1], dtype=np.intp), sketches=np.zeros(0, dtype=np.uint64)) is None


@pytest.mark.parametrize(
    "sketches, distinct, ids",
    [
        (SKETCHES, DISTINCT, np.array([0, 1, 2], dtype=np.int32)),  # 12 bytes: not whole intp items
        (SKETCHES, DISTINCT, np.arange(6, dtype=np.intp)[::2]),  # not contiguous
        (np.arange(8, dtype=np.uint64)[::2], DISTINCT, np.array([0, 1], dtype=np.intp)),
        (SKETCHES, [3, 3, 3, 0], np.array([0, 1], dtype=np.intp)),  # no buffer
        (SKETCHES, DISTINCT, "01"),
        (SKETCHES[:3].tobytes()[:-1], DISTINCT, np.array([0, 1], dtype=np.intp)),
    ],
)
def test_near_pairs_refuses_buffers_of_the_wrong_shape(sketches: object, distinct: object, ids: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        _near(ids, sketches, distinct)


def test_near_pairs_keeps_two_empty_sets_and_rules_out_a_count_its_sketch_contradicts() -> None:
    assert _near(np.array([3, 3], dtype=np.intp)) == [(1, 0)]  # {} and {}: Jaccard 1
    # count 0 with bits set is no set's: the bound is negative, never NaN or a division by zero
    assert kernel.near_pairs(SKETCHES, np.zeros(4, dtype=np.uint32), np.array([0, 2], dtype=np.intp), 0.8, 7) == []


@pytest.mark.parametrize(
    "first, last",
    [
        ([-5, -1], [-1, 2**40]),
        ([2**62, 0], [2**63 - 1, 2**63 - 1]),
        ([0, 2**32 - 1], [2**32 - 1, 2**32]),
        ([9, 5], [2, 3]),  # first after last: no passages
    ],
)
def test_article_scores_over_any_range_read_only_the_postings(first: list[int], last: list[int]) -> None:
    out = np.zeros(2)
    kernel.article_scores(
        [(1.5, IDS, TFS, 4), (0.5, IDS, None, 4)],
        np.array(first, dtype=np.intp),
        np.array(last, dtype=np.intp),
        np.ones(2),
        2.2,
        out,
    )
    assert np.isfinite(out).all()
    assert (out >= 0).all() and (out <= 2.0 * 2.2).all()  # each term's tf / (tf + 1) < 1


@pytest.mark.parametrize(
    "terms, out",
    [
        ([(1.0, IDS, TFS, 2)], np.zeros(2)),  # tfs of another width than said
        ([(1.0, IDS, TFS[:3], 4)], np.zeros(2)),
        ([(1.0, IDS, TFS, 8)], np.zeros(2)),
        ([(1.0, IDS, TFS, -1)], np.zeros(2)),
        ([(1.0, IDS.astype(np.int64), TFS, 4)], np.zeros(2)),
        ([(1.0, IDS, TFS)], np.zeros(2)),
        ([(1.0, np.arange(8, dtype=np.uint32)[::2], TFS, 4)], np.zeros(2)),
        (5, np.zeros(2)),
        ([(1.0, IDS, TFS, 4)], np.zeros(1)),  # out of another length than first
        ([(1.0, IDS, TFS, 4)], np.frombuffer(bytes(16))),  # read-only out
    ],
)
def test_article_scores_refuses_what_it_cannot_read(terms: object, out: np.ndarray) -> None:
    with pytest.raises((TypeError, ValueError, OverflowError)):
        kernel.article_scores(terms, FIRST, LAST, np.ones(2), 2.2, out)


# -- bugs -----------------------------------------------------------------------------------------------------------


def test_article_scores_refuses_a_term_that_is_not_a_tuple_with_a_type_error() -> None:
    # PyArg_ParseTuple on a list item raises SystemError ("new style getargs format but argument is not a tuple")
    with pytest.raises((TypeError, ValueError)):
        kernel.article_scores([[1.0, IDS, TFS, 4]], FIRST, LAST, np.ones(2), 2.2, np.zeros(2))


EMPTIED_WHILE_READ = """
import numpy as np
from corpusbot.index.engine.bm25 import kernel

class Emptying:
    # A weight (__float__) or a width (__index__) that empties the list of terms as it is read. The list held the
    # only reference to the term's tuple, and the tuple the only ones to its arrays: all are freed while the
    # kernel still reads them through borrowed references.
    def __init__(self, terms, value):
        self.terms, self.value = terms, value
    def __float__(self):
        return self._empty()
    def __index__(self):
        return int(self._empty())
    def _empty(self):
        self.terms.clear()
        return self.value

terms = []
if {where!r} == "weight":
    terms.append((Emptying(terms, 1.0), np.arange(4, dtype=np.uint32), np.arange(1, 5, dtype=np.uint32), 4))
else:
    terms.append((1.0, np.arange(4, dtype=np.uint32), np.arange(1, 5, dtype=np.uint32), Emptying(terms, 4)))
out = np.zeros(1)
try:
    kernel.article_scores(terms, np.array([0], dtype=np.intp), np.array([3], dtype=np.intp), np.ones(1), 2.2, out)
except (TypeError, ValueError):
    pass
print(float(out[0]))
"""


@pytest.mark.parametrize("where", ["weight", "width"])
def test_article_scores_survives_the_terms_being_emptied_while_it_reads_them(where: str) -> None:
    # The items of PySequence_Fast(terms) are borrowed; converting the weight or width runs Python code that can
    # drop them (a use after free). Python's debug allocator overwrites freed objects, so the child dies with
    # SIGSEGV instead of reading stale memory by luck. Fix: PySequence_Tuple, or a reference held per item.
    script = textwrap.dedent(EMPTIED_WHILE_READ).replace("{where!r}", repr(where))
    finished = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONMALLOC": "debug"},
    )
    assert finished.returncode == 0, (finished.returncode, finished.stderr[-2000:])
    # read as given (tf 1+2+3+4 over passages 0-3: 1.0 * 10 * 2.2 / (10 + 1)), or refused
    assert finished.stdout.split() in (["2.0"], ["0.0"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 300), min_size=0, max_size=60, unique=True),
    st.lists(st.tuples(st.integers(-3, 310), st.integers(0, 12)), min_size=1, max_size=12),
    st.booleans(),
    st.booleans(),
)
def test_article_scores_are_the_sums_over_each_range_in_any_order(
    passages: list[int], ranges: list[tuple[int, int]], in_order: bool, with_tfs: bool
) -> None:
    """Articles in passage order search on from where the previous one ended; any order gives the same sums."""
    ids = np.array(sorted(passages), dtype=np.uint32)
    tfs = np.arange(1, len(ids) + 1, dtype=np.uint32) % 7 + 1
    spans = sorted(ranges) if in_order else ranges
    first = np.array([start for start, _ in spans], dtype=np.intp)
    last = np.array([start + size - 1 for start, size in spans], dtype=np.intp)
    norm = np.linspace(0.5, 2.0, len(spans))
    out = np.zeros(len(spans))
    kernel.article_scores([(1.25, ids, tfs if with_tfs else None, 4)], first, last, norm, 2.5, out)
    for i, (start, end) in enumerate(zip(first.tolist(), last.tolist(), strict=True)):
        tf = 0.0
        for at, passage in enumerate(ids.tolist()):
            if start <= passage <= end:
                tf += float(tfs[at]) if with_tfs else 1.0
        expected = 1.25 * tf * 2.5 / (tf + norm[i])
        assert out[i] == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 400), max_size=80, unique=True),
    st.lists(st.integers(-5, 410), max_size=40),
    st.booleans(),
)
def test_contains_says_which_passages_the_postings_hold_in_any_order(
    passages: list[int], wanted: list[int], in_order: bool
) -> None:
    ids = np.array(sorted(passages), dtype=np.uint32)
    asked = sorted(wanted) if in_order else wanted
    assert kernel.contains(ids, asked) == [value in set(passages) for value in asked]


class _Emptying(int):
    """An id whose conversion empties the list it is in."""

    def __index__(self) -> int:
        HELD.clear()
        return int(self)


HELD: list[object] = []


def test_contains_refuses_what_is_not_an_id_and_survives_its_list_being_emptied() -> None:
    ids = np.array([1, 3], dtype=np.uint32)
    with pytest.raises(TypeError):
        kernel.contains(ids, ["3"])
    with pytest.raises(ValueError, match="whole number"):
        kernel.contains(np.array([1, 3, 5], dtype=np.uint16), [3])
    with pytest.raises(OverflowError):
        kernel.contains(ids, [2**70])
    assert kernel.contains(ids, [2**40, 3, -1]) == [False, True, False]  # beyond any passage id: not held
    HELD[:] = [_Emptying(1), 3, 5]
    assert kernel.contains(ids, HELD) == [True, True, False]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 59), min_size=0, max_size=30), st.booleans())
def test_article_scores_of_passages_are_their_articles_scores(window: list[int], with_tfs: bool) -> None:
    """Each passage gets its article's score (every article once, in article order), scaled."""
    of = np.repeat(np.arange(1, 16, dtype=np.intp), 4)  # 15 articles of 4 passages, numbered from 1
    first = np.concatenate([[len(of)], np.arange(0, 60, 4)]).astype(np.intp)  # number 0: no passages
    last = np.concatenate([[-1], np.arange(3, 60, 4)]).astype(np.intp)
    norm = np.linspace(0.5, 2.0, 16)
    ids = np.array([1, 2, 5, 9, 10, 11, 30, 31, 58], dtype=np.uint32)
    tfs = np.array([1, 3, 2, 1, 1, 4, 2, 2, 1], dtype=np.uint32)
    terms = [(1.25, ids, tfs if with_tfs else None, 4), (0.5, ids[::2].copy(), None, 4)]
    scores = kernel.article_scores_of(terms, of, first, last, norm, 2.5, 1.5, np.array(window, dtype=np.intp))
    totals = np.zeros(16)
    kernel.article_scores(terms, first, last, norm, 2.5, totals)
    assert scores == [1.5 * totals[of[pid]] for pid in window]


def test_article_scores_of_refuses_passages_without_an_article_number() -> None:
    of = np.array([1, 1, 2], dtype=np.intp)
    first, last = np.array([3, 0, 2], dtype=np.intp), np.array([-1, 1, 2], dtype=np.intp)
    args = ([(1.0, IDS, None, 4)], of, first, last, np.ones(3), 2.2, 1.0)
    assert len(kernel.article_scores_of(*args, np.array([0, 2], dtype=np.intp))) == 2
    for window in ([3], [-1]):
        with pytest.raises(ValueError, match="no article number"):
            kernel.article_scores_of(*args, np.array(window, dtype=np.intp))
    with pytest.raises(ValueError, match="no article number"):  # an article number beyond the tables
        kernel.article_scores_of(args[0], np.array([7], dtype=np.intp), *args[2:], np.array([0], dtype=np.intp))
    with pytest.raises(ValueError, match="one item per article"):
        kernel.article_scores_of(args[0], of, first, last[:2].copy(), *args[4:], np.array([0], dtype=np.intp))
