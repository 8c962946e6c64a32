"""Per-passage adjacent-pair sketches (``engine.pair_sketches``): a clear bit means the pair is not in the text."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusbot.index.engine import pair_sketches
from corpusbot.index.engine.bm25 import kernel

VOCABULARY = [f"term{i}" for i in range(40)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.lists(st.integers(0, len(VOCABULARY) - 1), max_size=12)), max_size=25),
    st.integers(1, 30),
)
def test_each_passage_gets_the_sketch_of_its_own_texts_pairs(passages: list[tuple[int, list[int]]], block: int) -> None:
    lengths = np.array([len(ids) for _, ids in passages], dtype=np.int64)
    skip = np.array([min(title, len(ids)) for title, ids in passages], dtype=np.int64)  # the title's terms first
    term_ids = np.array([i for _, ids in passages for i in ids], dtype=np.int32)
    hashes = pair_sketches.term_hashes(VOCABULARY)
    whole = pair_sketches.passage_pair_sketches(term_ids, lengths, skip, hashes)  # compiled
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pair_sketches, "BLOCK_TERMS", block)  # blocks that cut anywhere, passages longer than one
        blocked = pair_sketches.passage_pair_sketches(term_ids, lengths, skip, hashes, compiled=False)
    assert whole.shape == (len(passages), pair_sketches.BYTES)
    for (_, ids), title, row, other in zip(passages, skip.tolist(), whole, blocked, strict=True):
        own = [VOCABULARY[i] for i in ids[title:]]  # not a pair across the title and the text, nor two passages
        assert row.tobytes() == other.tobytes() == pair_sketches.pair_sketch_of(own)
        stored = bytes(pair_sketches.BYTES) + row.tobytes()  # as passage 1 of a blob
        for first, second in itertools.pairwise(own):
            assert pair_sketches.may_hold(stored, 1, pair_sketches.pair_bit(first, second))
        absent = [(a, b) for a in VOCABULARY for b in VOCABULARY if (a, b) not in set(itertools.pairwise(own))]
        clear = [pair for pair in absent if not pair_sketches.may_hold(stored, 1, pair_sketches.pair_bit(*pair))]
        assert len(clear) >= len(absent) - len(own) * 60  # most absent pairs are ruled out (each set bit lets ~6 in)


def test_a_pairs_bit_is_the_same_everywhere_and_depends_on_both_terms_and_their_order() -> None:
    # CRC-32 of the UTF-8 bytes, not hash(): stored sketches must mean the same in every process
    crc = zlib.crc32
    expected = (((crc(b"rare") << 32 | crc(b"earth")) * 0x9E3779B97F4A7C15) % 2**64) >> 56
    assert pair_sketches.pair_bit("rare", "earth") == expected
    assert pair_sketches.term_hash("\ud800") == crc("\ud800".encode("utf-8", "surrogatepass"))
    # the second term moves the bit: pairs of one first term spread over the sketch (a mix of the first alone
    # would give them all one bit, and every passage holding that term would look like it held each pair)
    for first in VOCABULARY[:5]:
        assert len({pair_sketches.pair_bit(first, second) for second in VOCABULARY}) >= 30
    assert (
        sum(pair_sketches.pair_bit(a, b) != pair_sketches.pair_bit(b, a) for a, b in itertools.pairwise(VOCABULARY))
        >= 35
    )
    assert pair_sketches.pair_sketch_of(["only"]) == bytes(pair_sketches.BYTES)


def test_stored_sketches_are_used_only_whole_and_of_the_index_generation() -> None:
    rows = np.arange(3 * pair_sketches.BYTES, dtype=np.uint8).reshape(3, pair_sketches.BYTES)
    blob = rows.tobytes()
    meta = {"generation": 4, pair_sketches.GENERATION_KEY: 4}
    assert pair_sketches.from_blob(blob, meta, 3) == blob
    assert pair_sketches.from_blob(blob, meta, 2) is None  # another number of passages
    assert pair_sketches.from_blob(blob[:-1], meta, 3) is None  # damaged
    assert pair_sketches.from_blob(None, meta, 3) is None
    assert pair_sketches.from_blob(blob, {"generation": 5, pair_sketches.GENERATION_KEY: 4}, 3) is None  # older writer
    assert pair_sketches.from_blob(blob, {"generation": 4}, 3) is None


def test_the_compiled_pair_sketches_are_built_and_refuse_what_they_cannot_read() -> None:
    assert kernel is not None and hasattr(kernel, "pair_sketches")  # the C compiler is there in development and CI
    hashes = pair_sketches.term_hashes(VOCABULARY[:3])
    one, none = np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    row = np.zeros((1, pair_sketches.BYTES), dtype=np.uint8)
    with pytest.raises(ValueError, match="no 32-bit hash"):
        kernel.pair_sketches(np.array([5], dtype=np.int32), one, none, hashes, 3, row)
    with pytest.raises(ValueError, match="no 32-bit hash"):
        kernel.pair_sketches(np.array([-1], dtype=np.int32), one, none, hashes, 3, row)
    with pytest.raises(ValueError, match="no 32-bit hash"):
        kernel.pair_sketches(np.array([0], dtype=np.int32), one, none, np.array([2**40], dtype=np.uint64), 3, row)
    with pytest.raises(ValueError, match="within term_ids"):
        kernel.pair_sketches(np.array([1], dtype=np.int32), one * 2, none, hashes, 3, row)
    with pytest.raises(ValueError, match="within term_ids"):
        kernel.pair_sketches(np.array([1], dtype=np.int32), -one, none, hashes, 3, row)
    with pytest.raises(ValueError, match="32 bytes per passage"):
        kernel.pair_sketches(np.array([1], dtype=np.int32), one, none, hashes, 3, row[:, :31].copy())
    with pytest.raises(ValueError, match="one item per passage"):
        kernel.pair_sketches(np.array([1], dtype=np.int32), one, np.zeros(2, dtype=np.int64), hashes, 3, row)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=pair_sketches.BYTES * 6, max_size=pair_sketches.BYTES * 6),
    st.lists(st.integers(0, 5), max_size=12),
    st.lists(st.integers(0, 255), max_size=4),
)
def test_the_compiled_scan_lists_the_passages_whose_sketch_has_each_bit(
    sketches: bytes, ids: list[int], bits: list[int]
) -> None:
    assert kernel is not None
    found = kernel.with_pair_bit(sketches, np.array(ids, dtype=np.intp), bits)
    assert found == [[at for at, pid in enumerate(ids) if pair_sketches.may_hold(sketches, pid, bit)] for bit in bits]


def test_the_compiled_scan_refuses_passages_without_a_row_and_bits_out_of_range() -> None:
    assert kernel is not None
    rows = bytes(pair_sketches.BYTES * 2)
    for ids, bits, message in (
        ([2], [0], "no row"),
        ([-1], [0], "no row"),
        ([0], [256], "0-255"),
        ([0], [-1], "0-255"),
    ):
        with pytest.raises(ValueError, match=message):
            kernel.with_pair_bit(rows, np.array(ids, dtype=np.intp), bits)
    with pytest.raises(ValueError, match="whole number"):
        kernel.with_pair_bit(rows[:-1], np.array([0], dtype=np.intp), [0])
