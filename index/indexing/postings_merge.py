"""Incremental runs: rewrite the stored postings of the terms whose passages were added or removed.

Each affected term's postings become its old ones without the removed passages, followed by its
new ones (new passage ids are always larger than the old ones, so the result stays sorted). The
shuffling is done for all affected terms at once, in numpy arrays.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

import numpy as np

from corpusbot.index.engine.bm25 import decode, encode_many


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
    new_terms: dict[str, int],
    new: NewPostings,
    removed: RemovedPassages,
    doc_len: np.ndarray,
) -> None:
    """Rewrite the postings of terms that gained or lost passages.

    ``new_terms``: term -> its number in ``new`` (the terms with new postings); ``doc_len``: the
    length of every passage of the updated index, by passage id.
    """
    affected = sorted(set(new_terms) | removed.terms)
    old = _old_postings(conn, affected, removed.passage_ids, len(doc_len))
    merged_offsets, all_ids, all_tfs = _append_new_postings(affected, old, new_terms, new)
    del old
    blobs = encode_many(merged_offsets, all_ids, all_tfs, doc_len.astype(np.uint32)[all_ids])
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
    for start in range(0, len(terms), 500):
        batch = terms[start : start + 500]
        marks = ",".join("?" * len(batch))
        found.update(conn.execute(f"SELECT term, postings FROM terms WHERE term IN ({marks})", batch).fetchall())
    return found
