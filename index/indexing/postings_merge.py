"""Incremental runs: rewrite the stored postings of the terms whose passages were added or removed.

Each affected term's postings become its old ones without the removed passages, followed by its
new ones (new passage ids are always larger than the old ones, so the result stays sorted). The
shuffling is done in numpy arrays for a batch of terms at a time: a range of the new terms with
about ``max_postings`` postings, old and new together, then the terms that only lost passages.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from corpusbot.index.engine.bm25 import decode, encode_many
from corpusbot.index.indexing.progress import IndexProgress, ProgressCallback

if TYPE_CHECKING:
    from corpusbot.index.indexing.postings_buffer import PostingsBuffer

_TERMS_PER_QUERY = 500


class NewPostings(NamedTuple):
    """The new passages' postings as ``build_postings`` gives them: term t's are ``ids[offsets[t]:offsets[t+1]]``."""

    offsets: np.ndarray
    ids: np.ndarray
    tfs: np.ndarray


class RemovedPassages(NamedTuple):
    passage_ids: np.ndarray
    terms: set[str]  # every term they were indexed with


def merge_postings(
    conn: sqlite3.Connection,
    vocabulary: list[str],
    new: PostingsBuffer,
    first_id: int,
    removed: RemovedPassages,
    doc_len: np.ndarray,
    max_postings: int,
    progress: ProgressCallback | None = None,
) -> None:
    """Rewrite the postings of terms that gained or lost passages, a batch of terms at a time.

    ``new``: the new passages' postings (term numbers into ``vocabulary``, passage ``i`` is passage id
    ``first_id + i``); ``doc_len``: the length of every passage of the updated index, by passage id.
    """
    df = new.df
    lengths = doc_len.astype(np.uint32)
    lost_only = set(removed.terms)
    for lo, hi in new.term_ranges(max_postings, extra=_stored_df(conn, vocabulary)):
        offsets, ids, tfs = new.postings(lo, hi)
        ids += np.uint32(first_id)
        new_terms = {vocabulary[t]: t - lo for t in range(lo, hi) if df[t] > 0}
        lost_only.difference_update(new_terms)
        _merge_batch(conn, list(new_terms), new_terms, NewPostings(offsets, ids, tfs), removed.passage_ids, lengths)
        if progress:
            progress(IndexProgress("writing postings", hi, len(vocabulary), "terms"))
    empty = NewPostings(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint32))
    rest = sorted(lost_only)  # terms that only lost passages
    for start in range(0, len(rest), _TERMS_PER_QUERY):
        _merge_batch(conn, rest[start : start + _TERMS_PER_QUERY], {}, empty, removed.passage_ids, lengths)


def _merge_batch(
    conn: sqlite3.Connection,
    affected: list[str],
    new_terms: dict[str, int],
    new: NewPostings,
    removed_ids: np.ndarray,
    lengths: np.ndarray,
) -> None:
    """Rewrite the postings of the ``affected`` terms: the stored ones without ``removed_ids``, then the new.

    ``new_terms``: term -> its number in ``new`` (the affected terms with new postings); ``lengths``:
    every passage's length by passage id (uint32).
    """
    if not affected:
        return
    old = _old_postings(conn, affected, removed_ids, len(lengths))
    merged_offsets, all_ids, all_tfs = _append_new_postings(affected, old, new_terms, new)
    del old
    blobs = encode_many(merged_offsets, all_ids, all_tfs, lengths[all_ids])
    counts = np.diff(merged_offsets).tolist()
    conn.executemany(
        "DELETE FROM terms WHERE term = ?",
        [(term,) for term, blob in zip(affected, blobs, strict=True) if blob is None],
    )
    conn.executemany(
        "INSERT INTO terms(term, df, postings) VALUES (?, ?, ?) "
        "ON CONFLICT(term) DO UPDATE SET df = excluded.df, postings = excluded.postings",
        [(term, n, blob) for term, n, blob in zip(affected, counts, blobs, strict=True) if blob is not None],
    )


def _stored_df(conn: sqlite3.Connection, vocabulary: list[str]) -> np.ndarray | None:
    """The stored postings count of each term of ``vocabulary`` (0 when it has none); None if no term is stored."""
    if conn.execute("SELECT 1 FROM terms LIMIT 1").fetchone() is None:
        return None
    df = np.zeros(len(vocabulary), dtype=np.int64)
    for start in range(0, len(vocabulary), _TERMS_PER_QUERY):
        batch = vocabulary[start : start + _TERMS_PER_QUERY]
        marks = ",".join("?" * len(batch))
        found = dict(conn.execute(f"SELECT term, df FROM terms WHERE term IN ({marks})", batch).fetchall())
        df[start : start + len(batch)] = [found.get(term, 0) for term in batch]
    return df


class _OldPostings(NamedTuple):
    counts: np.ndarray  # postings per affected term
    ids: np.ndarray  # all affected terms' postings, concatenated (uint32)
    tfs: np.ndarray


def _old_postings(conn: sqlite3.Connection, affected: list[str], removed_ids: np.ndarray, size: int) -> _OldPostings:
    """The stored postings of the ``affected`` terms, without those of the removed passages (ids below ``size``)."""
    n = len(affected)
    stored = _stored_postings(conn, affected)
    present = [j for j, term in enumerate(affected) if term in stored]
    decoded = [decode(stored[affected[j]]) for j in present]
    del stored
    old_counts = np.zeros(n, dtype=np.int64)
    old_counts[present] = [len(postings.ids) for postings in decoded]
    # Four bytes a posting: even a small update rewrites most of the postings of a large index.
    old_ids = np.concatenate([p.ids for p in decoded]) if decoded else np.zeros(0, dtype=np.uint32)
    old_tfs = (
        np.concatenate([p.term_frequencies() for p in decoded], dtype=np.uint32)
        if decoded
        else np.zeros(0, dtype=np.uint32)
    )
    del decoded
    if len(removed_ids) and len(old_ids):
        is_removed = np.zeros(size, dtype=bool)
        is_removed[removed_ids] = True
        gone = is_removed[old_ids]
        dropped = np.flatnonzero(gone)  # few: the postings of the removed passages
        owners = np.searchsorted(np.cumsum(old_counts), dropped, side="right")
        old_counts = old_counts - np.bincount(owners, minlength=n)
        old_ids, old_tfs = np.delete(old_ids, dropped), np.delete(old_tfs, dropped)
    return _OldPostings(old_counts, old_ids, old_tfs)


def _append_new_postings(
    affected: list[str], old: _OldPostings, new_terms: dict[str, int], new: NewPostings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(offsets, ids, tfs)`` of the affected terms' postings: each term's old ones, then its new ones.

    Works out where the (few) new postings land in the merged arrays; the old postings fill the
    other places, in order.
    """
    n = len(affected)
    offsets, ids, tfs = new
    position = dict(zip(affected, range(n), strict=True))
    vocab_of = np.fromiter(new_terms.values(), dtype=np.int64, count=len(new_terms))
    affected_of = np.fromiter(map(position.__getitem__, new_terms), dtype=np.int64, count=len(new_terms))
    new_counts = np.zeros(n, dtype=np.int64)
    new_counts[affected_of] = offsets[vocab_of + 1] - offsets[vocab_of]
    merged_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(old.counts + new_counts, out=merged_offsets[1:])
    shift = np.zeros(len(offsets) - 1, dtype=np.int64)
    shift[vocab_of] = merged_offsets[affected_of] + old.counts[affected_of] - offsets[vocab_of]
    new_at = np.arange(len(ids), dtype=np.int64) + np.repeat(shift, np.diff(offsets))
    is_old = np.ones(int(merged_offsets[-1]), dtype=bool)
    is_old[new_at] = False
    all_ids = np.empty(len(is_old), dtype=np.uint32)
    all_tfs = np.empty(len(is_old), dtype=np.uint32)
    all_ids[is_old] = old.ids
    all_ids[new_at] = ids
    all_tfs[is_old] = old.tfs
    all_tfs[new_at] = tfs
    return merged_offsets, all_ids, all_tfs


def _stored_postings(conn: sqlite3.Connection, terms: list[str]) -> dict[str, bytes]:
    """The stored postings blob of each of ``terms`` that has one."""
    found: dict[str, bytes] = {}
    for start in range(0, len(terms), _TERMS_PER_QUERY):
        batch = terms[start : start + _TERMS_PER_QUERY]
        marks = ",".join("?" * len(batch))
        found.update(conn.execute(f"SELECT term, postings FROM terms WHERE term IN ({marks})", batch).fetchall())
    return found
