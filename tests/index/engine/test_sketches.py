"""Per-passage term-set sketches (``engine.sketches``): what the indexer stores is each passage's own terms."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusbot.index.engine import sketches

VOCABULARY = [f"term{i}" for i in range(40)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.lists(st.integers(0, len(VOCABULARY) - 1), max_size=12)), max_size=25),
    st.integers(1, 30),
)
def test_each_passage_gets_the_sketch_and_count_of_its_own_terms(
    passages: list[tuple[int, list[int]]], block: int
) -> None:
    lengths = np.array([len(ids) for _, ids in passages], dtype=np.int64)
    skip = np.array([min(title, len(ids)) for title, ids in passages], dtype=np.int64)  # the title's terms first
    term_ids = np.array([i for _, ids in passages for i in ids], dtype=np.int32)
    bits = sketches.term_bits(VOCABULARY)
    compiled = sketches.passage_sketches(term_ids, lengths, skip, bits)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sketches, "BLOCK_TERMS", block)  # blocks that cut anywhere, passages longer than one
        plain = sketches.passage_sketches(term_ids, lengths, skip, bits, compiled=False)
    for found, counts in (compiled, plain):
        for (_, ids), title, sketch, count in zip(
            passages, skip.tolist(), found.tolist(), counts.tolist(), strict=True
        ):
            own = {VOCABULARY[i] for i in ids[title:]}
            assert (sketch, count) == (sketches.sketch_of(own), len(own))


def test_the_compiled_sketches_refuse_term_ids_without_a_bit_and_lengths_beyond_the_terms() -> None:
    bits = sketches.term_bits(VOCABULARY[:3])
    one = np.ones(1, dtype=np.int64)
    with pytest.raises(ValueError, match="no sketch bit"):
        sketches.passage_sketches(np.array([5], dtype=np.int32), one, np.zeros(1, dtype=np.int64), bits)
    with pytest.raises(ValueError, match="within term_ids"):
        sketches.passage_sketches(np.array([1], dtype=np.int32), one * 2, np.zeros(1, dtype=np.int64), bits)
    with pytest.raises(ValueError, match="within term_ids"):
        sketches.passage_sketches(np.array([1], dtype=np.int32), -one, np.zeros(1, dtype=np.int64), bits)


def test_a_terms_bit_is_the_same_everywhere() -> None:
    # CRC-32 of the UTF-8 bytes, not hash(): stored sketches must mean the same in every process
    terms = ("rare", "earth", "u_s", "café")
    assert [sketches.term_bit(term) for term in terms] == [zlib.crc32(term.encode()) & 63 for term in terms]
    assert sketches.sketch_of([]) == 0
    assert sketches.term_bit("\ud800") == zlib.crc32("\ud800".encode("utf-8", "surrogatepass")) & 63
