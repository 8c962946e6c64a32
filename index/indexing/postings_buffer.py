"""``PostingsBuffer``: the postings of a run's new passages, gathered chunk by chunk in compact arrays.

The tokens of every new passage as term ids (4 bytes a token) and the passage of each token
(8 bytes) took most of the memory of a large build. Instead, each group of up to ``GROUP_PASSAGES``
consecutive passages (and about ``GROUP_TOKENS`` tokens) is turned into postings as soon as it
is tokenized: per group, its terms in ascending order with their number of postings, and for
each posting the passage (its number within the group, 16 bits) and the term frequency (8 bits
unless one is 256 or more): 3 bytes a posting, and a posting stands for all the occurrences of
a term in a passage. ``postings(lo, hi)`` gathers the postings of a range of term numbers from
all groups, the form ``bm25.encode_many`` and ``postings_merge`` take, so the writer works on a
range of terms at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

GROUP_PASSAGES = 1 << 16  # passages of a group are numbered within it in 16 bits
GROUP_TOKENS = 4_000_000  # tokens of a group: bounds the keys sorted when a group is made (8 bytes each)


class _Group(NamedTuple):
    first: int  # the number of its first passage
    terms: np.ndarray  # its terms, ascending (int32)
    offsets: np.ndarray  # term terms[i]'s postings are [offsets[i], offsets[i + 1]) (int64)
    passages: np.ndarray  # each posting's passage, counted from ``first`` (uint16, or uint32 for a larger group)
    tfs: np.ndarray  # each posting's term frequency (uint8, uint16 or uint32: the narrowest that fits)


class PostingsBuffer:
    """Postings of passages numbered 0, 1, ... in the order they are added; term numbers are the caller's."""

    def __init__(self) -> None:
        self._groups: list[_Group] = []
        self._pending_lengths: list[np.ndarray] = []
        self._pending_terms: list[np.ndarray] = []
        self._pending_passages = 0
        self._pending_tokens = 0
        self._grouped = 0  # passages in groups
        self._df = np.zeros(0, dtype=np.int64)

    @property
    def passages(self) -> int:
        """How many passages have been added."""
        return self._grouped + self._pending_passages

    def add(self, lengths: np.ndarray, term_ids: np.ndarray) -> None:
        """The next passages: ``lengths[i]`` tokens each, their term numbers ``term_ids`` concatenated."""
        bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=bounds[1:])
        if bounds[-1] != len(term_ids):
            raise ValueError("the passage lengths do not add up to the number of term ids")
        at = 0
        while at < len(lengths):
            take = min(GROUP_PASSAGES - self._pending_passages, len(lengths) - at)
            self._pending_lengths.append(lengths[at : at + take])
            self._pending_terms.append(term_ids[bounds[at] : bounds[at + take]])
            self._pending_passages += take
            self._pending_tokens += int(bounds[at + take] - bounds[at])
            at += take
            if self._pending_passages >= GROUP_PASSAGES or self._pending_tokens >= GROUP_TOKENS:
                self._make_group()

    def finish(self, vocabulary_size: int) -> None:
        """After the last passage: group what is pending; ``df`` then counts ``vocabulary_size`` terms."""
        self._make_group()
        if self._df[vocabulary_size:].any():
            raise ValueError("a term number is beyond the vocabulary")
        df = np.zeros(vocabulary_size, dtype=np.int64)
        df[: min(len(self._df), vocabulary_size)] = self._df[:vocabulary_size]
        self._df = df

    @property
    def df(self) -> np.ndarray:
        """Postings per term number (after :meth:`finish`: one per term of the vocabulary)."""
        return self._df

    def postings(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(offsets, ids, tfs)`` of terms ``lo`` to ``hi - 1``: term ``lo + t``'s postings are
        ``ids[offsets[t]:offsets[t + 1]]`` (ascending passage numbers, uint32) with frequencies ``tfs`` (uint32).
        """
        terms: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        tfs: list[np.ndarray] = []
        for group in self._groups:
            a, b = np.searchsorted(group.terms, [lo, hi]).tolist()
            if a == b:
                continue
            first, last = int(group.offsets[a]), int(group.offsets[b])
            terms.append(np.repeat(group.terms[a:b], np.diff(group.offsets[a : b + 1])))
            ids.append(group.passages[first:last].astype(np.uint32) + np.uint32(group.first))
            tfs.append(group.tfs[first:last])
        offsets = np.zeros(hi - lo + 1, dtype=np.int64)
        if not terms:
            empty = np.zeros(0, dtype=np.uint32)
            return offsets, empty, empty
        all_terms = np.concatenate(terms)
        # Groups come in passage order and each is sorted by term: a stable sort by term keeps each term's
        # passages ascending.
        order = np.argsort(all_terms, kind="stable")
        np.cumsum(np.bincount(all_terms - lo, minlength=hi - lo), out=offsets[1:])
        return offsets, np.concatenate(ids)[order], np.concatenate(tfs).astype(np.uint32)[order]

    def term_ranges(self, max_postings: int, extra: np.ndarray | None = None) -> Iterator[tuple[int, int]]:
        """Consecutive ranges ``[lo, hi)`` of term numbers covering the vocabulary, each with at most
        ``max_postings`` postings (counting ``extra[t]`` more for term t) unless it is a single term.
        """
        sizes = self._df if extra is None else self._df + extra
        ends = np.cumsum(sizes)
        lo = 0
        while lo < len(sizes):
            before = int(ends[lo - 1]) if lo else 0
            hi = int(np.searchsorted(ends, before + max_postings, side="right"))
            hi = min(max(hi, lo + 1), len(sizes))
            yield lo, hi
            lo = hi

    def _make_group(self) -> None:
        if not self._pending_passages:
            return
        lengths = np.concatenate(self._pending_lengths)
        term_ids = np.concatenate(self._pending_terms)
        self._pending_lengths, self._pending_terms = [], []
        self._pending_passages = self._pending_tokens = 0
        group = _make_group(self._grouped, lengths, term_ids)
        self._grouped += len(lengths)
        self._groups.append(group)
        if len(group.terms):
            top = int(group.terms[-1]) + 1
            if top > len(self._df):
                self._df = np.concatenate([self._df, np.zeros(max(top - len(self._df), len(self._df)), np.int64)])
            self._df[group.terms] += np.diff(group.offsets)

    def __len__(self) -> int:  # postings
        return sum(int(group.offsets[-1]) for group in self._groups)


def _make_group(first: int, lengths: np.ndarray, term_ids: np.ndarray) -> _Group:
    """The postings of passages ``first``, ``first + 1``, ... with ``lengths`` tokens, ``term_ids`` concatenated."""
    n = len(lengths)
    passage_dtype = np.uint16 if n <= 1 << 16 else np.uint32
    if len(term_ids) == 0:
        return _Group(
            first, np.zeros(0, np.int32), np.zeros(1, np.int64), np.zeros(0, passage_dtype), np.zeros(0, np.uint8)
        )
    keys = term_ids.astype(np.int64)
    keys *= n
    keys += np.repeat(np.arange(n, dtype=np.int64), lengths)
    keys.sort()
    first_of_pair = np.empty(len(keys), dtype=bool)  # the first token of each (term, passage) pair
    first_of_pair[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first_of_pair[1:])
    starts = np.flatnonzero(first_of_pair)
    del first_of_pair
    tfs = np.diff(starts, append=len(keys))
    pairs = keys[starts]
    del keys, starts
    terms = pairs // n
    passages = pairs - terms * n
    term_starts = np.flatnonzero(np.diff(terms, prepend=-1))
    offsets = np.append(term_starts, len(terms)).astype(np.int64)
    top = int(tfs.max())
    tf_dtype = np.uint8 if top < 1 << 8 else np.uint16 if top < 1 << 16 else np.uint32
    return _Group(
        first, terms[term_starts].astype(np.int32), offsets, passages.astype(passage_dtype), tfs.astype(tf_dtype)
    )
