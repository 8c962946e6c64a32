"""corpusbot's core: corpus reading, passages, the BM25 index and search. Knows nothing of Slack.

The heavy parts (the indexer and its file readers) are imported on first use,
so answering a question does not pay for HTML or YAML parsing libraries.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from corpusbot.index.engine.bm25 import BM25Params
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.models import Answer, ArticleInfo, ArticleMatch, Hit, Passage, Span, Stats

if TYPE_CHECKING:
    from corpusbot.index.indexing.indexer import IndexSummary, index_corpus
    from corpusbot.index.search.service import SearchService

_LAZY = {
    "IndexSummary": "corpusbot.index.indexing.indexer",
    "index_corpus": "corpusbot.index.indexing.indexer",
    "SearchService": "corpusbot.index.search.service",
}

__all__ = [
    "Answer",
    "ArticleInfo",
    "ArticleMatch",
    "BM25Params",
    "CorpusbotError",
    "Hit",
    "IndexSummary",
    "Passage",
    "SearchService",
    "Span",
    "Stats",
    "index_corpus",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
