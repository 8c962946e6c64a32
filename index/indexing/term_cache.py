"""``PassageTerms``: the tokenizer's terms through a cache of each whitespace-separated token's terms.

The indexer tokenizes every passage it builds (and every passage it removes); most tokens of a corpus
recur, so they are looked up, not matched, normalised and stemmed again. One cache per process
(``passage_terms()``), shared by its threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from itertools import chain

import numpy as np

from corpusbot.index.text.tokenizer import default_tokenizer

_PENDING = -(2**62)  # the code of a token seen for the first time, until it is learned


class _Codes(dict[str, int]):
    """token -> code; a token not seen yet answers _PENDING and is noted (so a lookup pass never stops)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[str] = []

    def __missing__(self, token: str) -> int:
        self[token] = _PENDING  # later occurrences are found without calling back here
        self.pending.append(token)
        return _PENDING


class PassageTerms:
    """``Tokenizer.terms`` through a cache of each whitespace-separated token's terms.

    The terms of a text are the terms of its whitespace-separated tokens, each
    taken on its own (``Tokenizer.terms_per_token``). So a token seen before
    costs one dict lookup instead of regex matching, normalising and stemming
    (tests check both agree), and :meth:`encode` handles a whole list of
    tokens without a Python-level loop over them.
    """

    MAX_CACHED = 2_000_000
    _NONE = -1  # a token that gives no term (stopword, punctuation)

    def __init__(self) -> None:
        self._tokenizer = default_tokenizer()
        # token -> term id; _NONE; or -2 - i for a token of several terms (rock/paper), self._multi[i]
        self._code = _Codes()
        self._terms: list[str] = []
        self._term_id: dict[str, int] = {}
        self._multi: list[tuple[int, ...]] = []
        self._multi_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.lock = threading.RLock()  # the caches are shared by every indexing thread of the process

    def __call__(self, text: str) -> list[str]:
        with self.lock:
            ids, _ = self._expand(self._codes(text.split()))
            return list(map(self._terms.__getitem__, ids.tolist()))

    def distinct(self, texts: Iterable[str]) -> set[str]:
        """Every term of ``texts``, found in one pass over all their tokens (no per-text overhead)."""
        tokens = [token for text in texts for token in text.split()]
        with self.lock:
            ids, _ = self._expand(self._codes(tokens))
            return set(map(self._terms.__getitem__, np.unique(ids).tolist()))

    def passage(self, title_terms: list[str], text: str) -> list[str]:
        return title_terms + self(text)

    def encode(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(term_ids, per_token)`` for whitespace-separated ``tokens``.

        ``term_ids`` (int32) number terms as :meth:`terms_from` lists them, in
        text order; ``per_token[i]`` is how many of them token ``i`` gave (0 for
        a stopword, 2 for "rock/paper").
        """
        with self.lock:
            ids, per_token = self._expand(self._codes(tokens))
            return ids.astype(np.int32), per_token

    def terms_from(self, first: int) -> list[str]:
        """The terms numbered ``first`` and up (numbers never change; new terms get the next ones)."""
        with self.lock:
            return self._terms[first:]

    def _codes(self, tokens: list[str]) -> np.ndarray:
        """Each token's code; one pass over the tokens, new ones learned together afterwards."""
        if len(self._code) > self.MAX_CACHED:
            self._code.clear()
        self._code.pending.clear()
        codes = np.fromiter(map(self._code.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        if self._code.pending:
            try:
                self._learn(self._code.pending)
            except BaseException:
                for token in self._code.pending:  # no placeholder may outlive this call
                    if self._code.get(token) == _PENDING:
                        del self._code[token]
                raise
            finally:
                self._code.pending.clear()
            at = np.flatnonzero(codes == _PENDING)
            if len(at) * 8 > len(codes):  # mostly new tokens (a cold cache): look them all up again
                return np.fromiter(map(self._code.__getitem__, tokens), dtype=np.int64, count=len(tokens))
            codes[at] = list(map(self._code.__getitem__, [tokens[i] for i in at.tolist()]))
        return codes

    def _expand(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Term ids in text order, and how many each token gave."""
        per_token = (codes >= 0).astype(np.int64)
        multi_at = np.flatnonzero(codes <= -2)
        if len(multi_at) == 0:
            return codes[codes >= 0], per_token
        flat, offsets, lengths = self._multi_table()
        which = -2 - codes[multi_at]
        per_token[multi_at] = lengths[which]
        out_start = np.cumsum(per_token) - per_token
        ids = np.repeat(codes, per_token)
        n = lengths[which]
        step = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        ids[np.repeat(out_start[multi_at], n) + step] = flat[np.repeat(offsets[which], n) + step]
        return ids, per_token

    def _multi_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._multi_arrays is None or len(self._multi_arrays[1]) != len(self._multi):
            lengths = np.array([len(m) for m in self._multi], dtype=np.int64)
            offsets = np.cumsum(lengths) - lengths
            flat = np.fromiter(chain.from_iterable(self._multi), dtype=np.int64, count=int(lengths.sum()))
            self._multi_arrays = (flat, offsets, lengths)
        return self._multi_arrays

    def _learn(self, tokens: Iterable[str]) -> None:
        """Cache the terms of new tokens (the tokenizer stems the words of all of them in one call)."""
        new = list(dict.fromkeys(tokens))
        term_id = self._term_id
        for token, terms in zip(new, self._tokenizer.terms_per_token(new), strict=True):
            ids = []
            for term in terms:
                found = term_id.get(term)
                if found is None:
                    found = term_id[term] = len(self._terms)
                    self._terms.append(term)
                ids.append(found)
            if len(ids) == 1:
                self._code[token] = ids[0]
            elif not ids:
                self._code[token] = self._NONE
            else:
                self._code[token] = -2 - len(self._multi)
                self._multi.append(tuple(ids))


_passage_terms: PassageTerms | None = None


def passage_terms() -> PassageTerms:
    """This process's shared ``PassageTerms``."""
    global _passage_terms
    if _passage_terms is None:
        _passage_terms = PassageTerms()
    return _passage_terms


def _fresh_lock_after_fork() -> None:
    """A forked worker must not inherit the lock held by the thread that forked it."""
    if _passage_terms is not None:
        _passage_terms.lock = threading.RLock()


os.register_at_fork(after_in_child=_fresh_lock_after_fork)
