"""(Re)indexing: corpus files -> articles -> passages -> postings, written in one transaction.

Incremental by content hash. ``indexer.index_corpus`` is the entry point and runs the steps in order:
``changes`` compares the corpus with what the index was built from (reading JSONL files as streams;
the articles read wait in the run's ``spool``, a temporary file), ``passage_encoding`` splits and
tokenizes the new articles (through the token cache of ``term_cache``; their postings are gathered
compactly in a ``postings_buffer``), ``writer`` writes everything in batches inside one transaction
(``postings_merge`` rewrites the touched postings of an incremental run), ``summary`` holds what the
run reports and ``progress`` what it reports as it goes.

Web sources (URLs among the corpus paths) are fetched by `corpusbot.index.sources` and compared like files.

May import `corpus`, `text`, `engine` and `sources`; never `search` or `maintenance`.
"""
