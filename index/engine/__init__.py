"""The index itself: BM25 postings and scoring (`bm25`, with the compiled loop in
`_bm25_kernel.c`) and the SQLite file that holds them (`store`, `migrations`).

Knows terms and passage ids, not questions or files.
May import `corpusbot.index.errors` and `corpusbot.index.models` only.
"""
