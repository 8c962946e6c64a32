"""Answering questions: `query` (question analysis, synonyms), the BM25 first stage
from `engine`, `rerank` (the second stage's signals) and `service` (the
`SearchService` the front ends call); `dates` (published dates for `--since`/`--until`)
and `watch` (which newly indexed passages match a watch, and what was indexed since when).

May import `text` and `engine`; never `indexing` or `maintenance`.
"""
