"""corpusbot's core: corpus reading, passages, the BM25 index and search. Knows nothing of Slack."""

from .bm25 import BM25Params
from .errors import CorpusbotError
from .indexer import IndexSummary, index_corpus
from .models import Answer, ArticleInfo, ArticleMatch, Hit, Passage, Span, Stats
from .search import SearchService

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
