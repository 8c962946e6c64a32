"""Answering questions: `query` (question analysis, synonyms), the BM25 first stage
from `engine`, `rerank` (the second stage's signals) and `service` (the
`SearchService` the front ends call).

May import `text` and `engine`; never `indexing` or `maintenance`.
"""
