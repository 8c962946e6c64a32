"""The compiled scoring loop gives the numpy path's results bit for bit, and refuses damaged postings."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from corpusbot.index.engine import bm25
from corpusbot.index.engine.bm25 import BM25Params, Collection, Postings, QueryTerm, Scorer, decode, encode_postings

NO_PAIRS = np.zeros((0, 2), dtype=np.uint32)


def test_the_compiled_kernel_is_built() -> None:
    assert bm25.kernel is not None, (
        "index/engine/_bm25_kernel.c was not compiled: reinstall with `pip install -e '.[dev]'`"
    )


def random_index(seed: int, n_docs: int, max_len: int = 300) -> tuple[Collection, list[Postings]]:
    rng = np.random.default_rng(seed)
    doc_len = rng.integers(1, max_len, size=n_docs).astype("<u4")
    doc_len[rng.integers(0, n_docs, size=n_docs // 50)] = 0  # holes left by removed passages
    postings = []
    present = np.flatnonzero(doc_len)  # a hole (removed passage) has no postings
    for size, top_tf in ((n_docs // 2, 3), (n_docs // 5, 300), (n_docs // 40, 70_000), (3, 1)):
        ids = np.sort(rng.choice(present, size=min(size, len(present)), replace=False)).astype(np.uint32)
        tfs = rng.integers(1, top_tf + 1, size=len(ids))
        if top_tf == 1:
            stored = None
        else:
            stored = tfs.astype(np.uint8 if top_tf < 256 else np.uint16 if top_tf < 65536 else np.uint32)
        postings.append(Postings(ids, stored, np.zeros((0, 2), dtype=np.uint32)))
    every = present.astype(np.uint32)  # touches every passage of every block
    postings.append(Postings(every, None, np.zeros((0, 2), dtype=np.uint32)))
    mostly_ones = np.sort(rng.choice(present, size=len(present) // 3, replace=False)).astype(np.uint32)
    few_tfs = np.where(rng.random(len(mostly_ones)) < 0.03, rng.integers(2, 9, size=len(mostly_ones)), 1)
    postings.append(Postings(mostly_ones, few_tfs.astype(np.uint8), NO_PAIRS))  # stored as sparse tf exceptions
    for far_apart in (present[[0, len(present) // 2, -1]], present[[0, -1]]):  # wider gaps (2, 4 bytes)
        postings.append(Postings(np.unique(far_apart).astype(np.uint32), None, NO_PAIRS))
    collection = Collection(n_docs, float(doc_len.mean()), 1.3, doc_len, BM25Params())
    return collection, postings


def stored(postings: Postings, doc_len: np.ndarray) -> Postings:
    """The postings as a query reads them from the index: gaps, not ids, until something asks for the ids."""
    ids = postings.ids
    if len(ids) == 0:  # (no term of an index has no postings)
        return postings
    return decode(encode_postings(ids, postings.term_frequencies(), doc_len[ids]))


def scores_are_zero(scorer: Scorer) -> bool:
    return not scorer._buffer.any() and (scorer._tables is None or not scorer._tables.scores.any())


@pytest.mark.parametrize("max_len", [300, 256], ids=["uint16 lengths", "uint8 lengths"])
@pytest.mark.parametrize("from_index", [False, True], ids=["ids", "gaps"])
@pytest.mark.parametrize("n_docs", [7, 1_000, 70_000])  # one block, several blocks, a partial last block
def test_compiled_and_numpy_scores_are_identical(n_docs: int, from_index: bool, max_len: int) -> None:
    collection, postings = random_index(n_docs, n_docs, max_len)
    if from_index:
        postings = [stored(p, collection.doc_len) for p in postings]
        assert {p.gaps.dtype.itemsize for p in postings if p.gaps is not None} >= (
            {1, 2, 4} if n_docs > 65_536 else {1}
        )
    compiled, plain = Scorer(collection), Scorer(collection, compiled=False)
    assert compiled.compiled and not plain.compiled
    assert compiled._tables is not None
    assert compiled._tables.lengths.dtype == (np.uint8 if collection.doc_len.max() < 256 else np.uint16)
    rng = np.random.default_rng(5)
    for _ in range(30):
        chosen = rng.choice(len(postings), size=rng.integers(1, len(postings) + 1), replace=False)
        terms = [QueryTerm(float(rng.uniform(0.1, 5)), postings[i]) for i in chosen]
        exclude = rng.integers(0, n_docs, size=rng.integers(0, 20)) if rng.random() < 0.5 else None
        for k in (1, 10, n_docs + 5):
            assert compiled.top(terms, k, exclude) == plain.top(terms, k, exclude)
    assert scores_are_zero(compiled)
    # Postings read from a blob went to the loop checked once (the other kind is checked at every call).
    assert all((p.checked is not None) == from_index for p in postings if p.count)


def test_the_compiled_loop_reads_stored_postings_without_decoding_their_ids() -> None:
    collection, postings = random_index(3, 40_000)
    terms = [QueryTerm(1.0 + i, stored(p, collection.doc_len)) for i, p in enumerate(postings)]
    got = Scorer(collection).top(terms, 10)
    assert all(t.postings._ids is None for t in terms)  # the loop read the gaps
    assert got == Scorer(collection, compiled=False).top(terms, 10)  # (the numpy path decodes them)
    assert all(t.postings._ids is not None for t in terms)
    for term, original in zip(terms, postings, strict=True):
        assert term.postings.ids.tolist() == original.ids.tolist()


def test_stored_postings_are_checked_once_for_all_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    collection, postings = random_index(4, 40_000)
    terms = [QueryTerm(1.0 + i, stored(p, collection.doc_len)) for i, p in enumerate(postings)]
    kernel = bm25.kernel
    assert kernel is not None
    checks: list[int] = []

    def counted(*args: object) -> object:
        checks.append(1)
        return kernel.check_postings(*args)  # type: ignore[arg-type]

    counting = SimpleNamespace(check_postings=counted, top_positive=kernel.top_positive, BLOCK=kernel.BLOCK)
    monkeypatch.setattr(bm25, "kernel", counting)
    scorer, plain = Scorer(collection), Scorer(collection, compiled=False)
    for k in (3, 10, 30):
        assert scorer.top(terms, k) == plain.top(terms, k)
    assert len(checks) == len(terms)
    assert Scorer(collection).top(terms, 10) == plain.top(terms, 10)  # another scorer of the same index
    assert len(checks) == len(terms)


def test_a_scorer_of_other_passage_lengths_checks_shared_postings_again() -> None:
    # The check copies each posting's passage length; a scorer whose lengths differ (same number of passages)
    # must not read another scorer's copy.
    collection, postings = random_index(6, 40_000)
    terms = [QueryTerm(1.0 + i, stored(p, collection.doc_len)) for i, p in enumerate(postings)]
    assert Scorer(collection).top(terms, 10) == Scorer(collection, compiled=False).top(terms, 10)
    rng = np.random.default_rng(7)
    other_len = np.where(collection.doc_len > 0, rng.integers(1, 300, size=len(collection.doc_len)), 0)
    other = Collection(collection.n_docs, float(other_len.mean()), 1.3, other_len.astype("<u4"), BM25Params())
    checked = [t.postings.checked for t in terms]
    assert Scorer(other).top(terms, 10) == Scorer(other, compiled=False).top(terms, 10)
    assert all(t.postings.checked is not before for t, before in zip(terms, checked, strict=True) if before)


def damaged_blob(blob: bytes, gaps_at: int, gap: int) -> bytes:
    """``blob`` with its first gap (1 byte wide) replaced."""
    return blob[:gaps_at] + bytes([gap]) + blob[gaps_at + 1 :]


@pytest.mark.parametrize("gap", [0, 250], ids=["a repeated id", "beyond the last passage"])
def test_damaged_stored_gaps_are_refused_at_every_query(gap: int) -> None:
    doc_len = np.full(200, 5, dtype="<u4")
    collection = Collection(200, 5.0, 1.0, doc_len, BM25Params())
    ids = np.array([3, 9, 12, 40], dtype=np.uint32)
    good = decode(encode_postings(ids, np.ones(4), doc_len[ids]))
    bad = decode(damaged_blob(good.blob, good.gaps_at, gap))  # type: ignore[arg-type]
    scorer = Scorer(collection)
    for _ in range(2):  # a refused check is not remembered as done
        with pytest.raises(ValueError, match="passage"):
            scorer.top([QueryTerm(1.0, good), QueryTerm(2.0, bad)], 3)
        assert scores_are_zero(scorer)
    assert [pid for pid, _ in scorer.top([QueryTerm(1.0, good)], 3)] == [3, 9, 12]


def test_postings_checked_for_a_larger_index_are_checked_again_for_a_smaller_one() -> None:
    ids = np.array([3, 9, 150], dtype=np.uint32)
    postings = decode(encode_postings(ids, np.ones(3), np.full(3, 5)))
    large = Collection(200, 5.0, 1.0, np.full(200, 5, dtype="<u4"), BM25Params())
    small = Collection(100, 5.0, 1.0, np.full(100, 5, dtype="<u4"), BM25Params())
    assert [pid for pid, _ in Scorer(large).top([QueryTerm(1.0, postings)], 3)] == [3, 9, 150]
    with pytest.raises(ValueError, match="passage"):
        Scorer(small).top([QueryTerm(1.0, postings)], 3)
    # The loop itself refuses postings checked against more passages than its lengths.
    kernel = bm25.kernel
    assert kernel is not None and postings.checked is not None
    scores = np.zeros(kernel.BLOCK, dtype=np.float64)
    touched = np.zeros(kernel.BLOCK + 1, dtype=np.uint32)
    unit, norm = np.full(6, 0.5), np.full(6, 1.0)
    term = (1.0, postings.checked, 1.0)
    with pytest.raises(ValueError, match="checked against 200 passages"):
        kernel.top_positive(scores, np.full(100, 5, dtype=np.uint8), unit, norm, 2.5, [term], None, 3, touched)
    assert not scores.any()


@pytest.mark.parametrize("from_index", [False, True], ids=["ids", "gaps"])
def test_excluded_passages_may_come_in_any_order_repeated_or_strided(from_index: bool) -> None:
    collection, postings = random_index(6, 40_000)
    if from_index:
        postings = [stored(p, collection.doc_len) for p in postings]
    terms = [QueryTerm(1.0 + i, p) for i, p in enumerate(postings)]
    compiled, plain = Scorer(collection), Scorer(collection, compiled=False)
    best = [pid for pid, _ in plain.top(terms, 50)]
    sorted_ids = np.array(sorted(best[::3]), dtype=np.uint32)  # in order (one term's postings usually are)
    shuffled = np.array(best[::-1] + best[:5], dtype=np.int64)  # out of order, repeated
    strided = np.arange(40_000, dtype=np.int64)[::7]  # a view the loop cannot read as it is
    for exclude in (sorted_ids, shuffled, strided, np.array(best[:1])):
        for query in (terms, terms[:1], terms[-1:]):  # one term alone is scored without blocks
            got = compiled.top(query, 10, exclude)
            assert got == plain.top(query, 10, exclude)
            assert not set(exclude.tolist()) & {pid for pid, _ in got}


def test_repeated_terms_and_ties_break_by_passage_id() -> None:
    doc_len = np.full(40, 10, dtype="<u4")
    ids = np.arange(0, 40, 2, dtype=np.uint32)
    same = Postings(ids, None, np.zeros((0, 2), dtype=np.uint32))
    collection = Collection(40, 10.0, 1.0, doc_len, BM25Params())
    got = Scorer(collection).top([QueryTerm(1.5, same), QueryTerm(1.5, same)], 5)
    assert [pid for pid, _ in got] == [0, 2, 4, 6, 8]
    assert got == Scorer(collection, compiled=False).top([QueryTerm(1.5, same), QueryTerm(1.5, same)], 5)


@pytest.mark.parametrize(
    ("n_docs", "bad_ids"),
    [
        (20, [3, 50]),  # beyond the last passage
        (20, [20]),
        (20, [9, 4]),  # out of order
        (20, [7, 7]),  # repeated
        (50_000, [40_000, *range(20_000)]),  # a block's worth of ids after a large one: would overflow the work array
    ],
)
def test_damaged_postings_are_refused_and_leave_the_buffer_clean(n_docs: int, bad_ids: list[int]) -> None:
    collection = Collection(n_docs, 5.0, 1.0, np.full(n_docs, 5, dtype="<u4"), BM25Params())
    scorer = Scorer(collection)
    good = Postings(np.arange(0, 20, dtype=np.uint32), None, np.zeros((0, 2), dtype=np.uint32))
    bad = Postings(np.array(bad_ids, dtype=np.uint32), None, np.zeros((0, 2), dtype=np.uint32))
    with pytest.raises(ValueError, match="passage"):
        scorer.top([QueryTerm(1.0, good), QueryTerm(2.0, bad)], 3)
    assert scores_are_zero(scorer)
    assert len(scorer.top([QueryTerm(1.0, good)], 3)) == 3  # still usable


@pytest.mark.parametrize(
    ("first", "gaps"),
    [
        (3, np.array([1, 0, 2], dtype=np.uint8)),  # a zero gap repeats an id
        (20, np.array([], dtype=np.uint8)),  # the first id is beyond the last passage
        (5, np.array([7, 8], dtype=np.uint8)),  # the gaps lead beyond it
        (0, np.array([0xFFFF_FFFF, 0xFFFF_FFFF, 30], dtype=np.uint32)),  # would wrap around 2**32 back into range
    ],
)
def test_damaged_gaps_are_refused_and_leave_the_buffer_clean(first: int, gaps: np.ndarray) -> None:
    collection = Collection(20, 5.0, 1.0, np.full(20, 5, dtype="<u4"), BM25Params())
    scorer = Scorer(collection)
    good = Postings(np.arange(0, 20, dtype=np.uint32), None, NO_PAIRS)
    bad = Postings(None, None, NO_PAIRS, gaps=gaps, first=first)
    with pytest.raises(ValueError, match="passage"):
        scorer.top([QueryTerm(1.0, good), QueryTerm(2.0, bad)], 3)
    assert scores_are_zero(scorer)
    assert len(scorer.top([QueryTerm(1.0, good)], 3)) == 3


def test_passages_too_long_for_the_length_tables_use_numpy() -> None:
    doc_len = np.array([5, 70_000, 8], dtype="<u4")
    collection = Collection(3, float(doc_len.mean()), 1.0, doc_len, BM25Params())
    scorer = Scorer(collection)
    assert not scorer.compiled
    postings = Postings(np.arange(3, dtype=np.uint32), None, np.zeros((0, 2), dtype=np.uint32))
    assert [pid for pid, _ in scorer.top([QueryTerm(1.0, postings)], 3)] == [0, 2, 1]


@pytest.mark.parametrize("from_index", [False, True], ids=["ids", "gaps"])
def test_terms_that_cannot_lift_a_passage_into_the_top_k_are_skipped_exactly(from_index: bool) -> None:
    # One rare, heavy term and two common, light ones over several blocks: once the heap is full, a
    # passage holding only the light terms cannot reach it, so their postings are skipped.
    rng = np.random.default_rng(11)
    n_docs = 200_000
    doc_len = rng.integers(20, 120, size=n_docs).astype("<u4")
    collection = Collection(n_docs, float(doc_len.mean()), 1.0, doc_len, BM25Params())
    no_pairs = np.zeros((0, 2), dtype=np.uint32)
    rare = Postings(np.sort(rng.choice(n_docs, 3_000, replace=False)).astype(np.uint32), None, no_pairs)
    common = [Postings(np.sort(rng.choice(n_docs, 90_000, replace=False)).astype(np.uint32), None, no_pairs)]
    common.append(Postings(np.arange(0, n_docs, 2, dtype=np.uint32), None, no_pairs))
    terms = [QueryTerm(0.4, common[0]), QueryTerm(9.0, rare), QueryTerm(0.3, common[1])]
    if from_index:
        terms = [QueryTerm(t.weight, stored(t.postings, doc_len)) for t in terms]
    compiled, plain = Scorer(collection), Scorer(collection, compiled=False)
    for k in (1, 10, 100):
        assert compiled.top(terms, k) == plain.top(terms, k)
        assert compiled.skipped_postings > 0
    many = compiled.top(terms, n_docs)  # the heap never fills: nothing can be skipped
    assert compiled.skipped_postings == 0
    assert many == plain.top(terms, n_docs)


def test_a_passage_longer_than_the_factor_tables_is_refused_by_the_loop_itself() -> None:
    # bm25.py builds the tables from the longest passage, so only a direct call can get this wrong.
    kernel = bm25.kernel
    assert kernel is not None
    lengths = np.array([3, 4, 9, 2], dtype=np.uint16)  # 9: beyond the 5-entry tables below
    unit, norm = np.linspace(1.0, 0.5, 5), np.linspace(0.5, 1.0, 5)
    scores = np.zeros(kernel.BLOCK, dtype=np.float64)
    touched = np.zeros(kernel.BLOCK + 1, dtype=np.uint32)
    terms = [(1.0, np.array([1, 1], dtype=np.uint8), 1, 0, None, 1, 2.0)]  # ids 0, 1, 2 as gaps
    with pytest.raises(ValueError, match="longer than the factor tables"):
        kernel.top_positive(scores, lengths, unit, norm, 2.5, terms, None, 3, touched)
    assert not scores.any()
    best, _ = kernel.top_positive(
        scores, lengths[:2], unit, norm, 2.5, [(1.0, np.array([1], np.uint8), 1, 0, None, 1, 2.0)], None, 3, touched
    )
    assert [pid for pid, _ in best] == [0, 1]


def test_a_bare_term_naming_a_zero_length_passage_is_bounded_exactly() -> None:
    # Terms given as (weight, ids, tfs) have no bound pairs: their bound must allow for holes (length 0) too.
    n = 20_000
    doc_len = np.full(n, 5, dtype="<u4")
    doc_len[[100, 19_000]] = 0
    collection = Collection(n - 2, 5.0, 1.0, doc_len, BM25Params())
    ids, tfs = np.arange(n, dtype=np.uint32), np.full(n, 3, dtype=np.uint32)
    tfs[19_000] = 4
    compiled = Scorer(collection).top([(1.0, ids, tfs)], 1)
    assert compiled == Scorer(collection, compiled=False).top([(1.0, ids, tfs)], 1)
    assert compiled[0][0] == 19_000


def test_wide_term_frequencies_read_from_a_blob_are_aligned_for_the_loop() -> None:
    ids = np.arange(4, dtype=np.uint32)  # three 1-byte gaps: full-width tfs start at an odd offset of the blob
    postings = decode(encode_postings(ids, np.array([70_000, 2, 3, 70_001]), np.full(4, 5)))
    assert postings.tfs is not None and postings.tfs.dtype.itemsize == 4
    assert bm25._native_unsigned(postings.tfs).flags.aligned
    collection = Collection(4, 5.0, 1.0, np.full(4, 5, dtype="<u4"), BM25Params())
    terms = [QueryTerm(1.0, postings)]
    assert Scorer(collection).top(terms, 4) == Scorer(collection, compiled=False).top(terms, 4)


def test_a_postings_blob_claiming_no_postings_is_damage() -> None:
    blob = bytearray(encode_postings(np.array([3, 9, 12], dtype=np.uint32), np.ones(3), np.full(3, 5)))
    blob[2:6] = (0).to_bytes(4, "little")  # the posting count
    with pytest.raises(ValueError, match="damaged"):
        decode(bytes(blob))


@pytest.mark.parametrize(
    ("weight", "first", "message"),
    [
        (-1.0, 0, "non-negative"),
        (1.0, -1, "first passage id"),
        (1.0, 2**64 + 3, "first passage id"),
        (1.0, 4, "beyond"),
    ],
)
def test_the_loop_refuses_what_bm25_py_never_passes(weight: float, first: int, message: str) -> None:
    kernel = bm25.kernel
    assert kernel is not None
    lengths = np.full(4, 2, dtype=np.uint16)
    unit, norm = np.linspace(1.0, 0.5, 5), np.linspace(0.5, 1.0, 5)
    scores = np.zeros(kernel.BLOCK, dtype=np.float64)
    touched = np.zeros(kernel.BLOCK + 1, dtype=np.uint32)
    terms = [(weight, np.array([], dtype=np.uint8), 1, first, None, 1, 2.0)]
    with pytest.raises(ValueError, match=message):
        kernel.top_positive(scores, lengths, unit, norm, 2.5, terms, None, 3, touched)
    assert not scores.any()
