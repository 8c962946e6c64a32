"""(Re)indexing: corpus files -> articles -> passages -> postings, written in one transaction.

Incremental by content hash. ``indexer.index_corpus`` is the entry point and runs the steps in order:
``changes`` compares the corpus with what the index was built from, ``passage_encoding`` splits and
tokenizes the new articles (through the token cache of ``term_cache``), ``writer`` writes everything
in one transaction (``postings_merge`` rewrites the touched postings of an incremental run), and
``summary`` holds what the run reports.

May import `corpus`, `text` and `engine`; never `search` or `maintenance`.
"""
