"""Watches without Slack: which newly indexed passages match a standing query, and what is new at all.

A watch is a query a user asked to follow. After a reindex, the passages of the articles indexed since
the watch was last checked are matched against it (:func:`confident_matches`) with the rule answers use
to call their best passage confident: the passage holds at least ``CONFIDENT_COVERAGE`` (half) of the
query's informative weight (each word weighs its idf, a word the corpus never mentions the query's
average), it holds every quoted phrase, and none of the ``-excluded`` words.

"Indexed since" is read from the index's ``files`` table: every file (a folder's file, a feed, a page) a
reindex added or changed gets that run's ``indexed_at``, and each of its articles counts as indexed
then. So a changed JSONL file makes all of its lines new, and a full rebuild (``corpusbot index
--full``) makes every article new. What keeps a watch from posting a passage twice, or posting one
that was there before the watch, is not this but the passage's key (:func:`passage_key`): the bot
records, per watch, the keys of every passage that matched when the watch was made and of every
passage it posts.

Passage ids are no identity across reindexes: a full rebuild numbers every passage again, and an
article that changed gets new ids for unchanged paragraphs too. A passage is keyed instead by its
article id and its text (whitespace collapsed), hashed: the same paragraph of the same article is the
same passage in any generation; an edited paragraph is a new one (and may be posted again: it changed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from corpusbot.index.models import ArticleInfo, Passage, Span


@dataclass(frozen=True)
class IndexedArticle:
    """An article and when it first entered the index (ISO 8601, UTC; for an index from before that was recorded,
    when its file was last indexed)."""

    article: ArticleInfo
    indexed_at: str
    passage_count: int

    def to_json(self) -> dict[str, object]:
        return {**self.article.to_json(), "indexed_at": self.indexed_at, "passages": self.passage_count}


@dataclass(frozen=True)
class WatchMatch:
    """A new passage that matches a watch confidently."""

    passage: Passage
    article: ArticleInfo
    indexed_at: str
    key: str  # :func:`passage_key`: the passage's identity across reindexes
    coverage: float  # the share of the query's informative weight the passage holds (at least the threshold)
    matches: tuple[Span, ...] = ()  # where the query's words are in the passage text


@dataclass(frozen=True)
class WatchCheck:
    """The new passages matching each of some watch queries, and up to when the index was looked at."""

    checked_through: str | None  # the latest ``indexed_at`` in the index read (None: no files indexed)
    generation: int | None
    matches: tuple[tuple[WatchMatch, ...], ...]  # one tuple per query, in the order given


def passage_key(article_id: str, text: str) -> str:
    """A passage's identity across reindexes: a hash of its article id and its whitespace-collapsed text."""
    digest = hashlib.sha256()
    digest.update(article_id.encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    digest.update(" ".join(text.split()).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def coverage(asked: Sequence[str], raw_idf: Mapping[str, float], present: set[str]) -> float:
    """The share of the query's informative weight that a passage with the terms ``present`` holds.

    A term found in over half the passages (raw idf <= 0) weighs nothing, and a word the corpus never
    mentions weighs as much as the query's average known word (as :meth:`SearchService.ask` judges).
    """
    holds = {term: np.array([term in present]) for term in raw_idf}
    return float(coverages(asked, raw_idf, holds, 1)[0])


def coverages(
    asked: Sequence[str], raw_idf: Mapping[str, float], holds: Mapping[str, np.ndarray], count: int
) -> np.ndarray:
    """:func:`coverage` of ``count`` passages at once; ``holds[term]``: which of them hold the known term."""
    words = list(dict.fromkeys(asked))
    known = [max(raw_idf[t], 0.0) for t in words if t in raw_idf]
    covered = np.zeros(count)
    if not known:
        return covered
    typical = sum(known) / len(known)
    total = sum(max(raw_idf[t], 0.0) if t in raw_idf else typical for t in words)
    if total <= 0:
        return covered
    for term in words:
        if term in raw_idf and raw_idf[term] > 0:
            covered += raw_idf[term] * holds[term]
    return covered / total
