"""corpusbot's core: corpus reading, passages, the BM25 index and search. Knows nothing of Slack.

The heavy parts (the indexer and its file readers) are imported on first use,
so answering a question does not pay for HTML or YAML parsing libraries.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .bm25 import BM25Params
from .errors import CorpusbotError
from .models import Answer, ArticleInfo, ArticleMatch, Hit, Passage, Span, Stats

if TYPE_CHECKING:
    from .indexer import IndexSummary, index_corpus
    from .search import SearchService

_LAZY = {"IndexSummary": ".indexer", "index_corpus": ".indexer", "SearchService": ".search"}

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
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
