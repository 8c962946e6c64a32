"""(Re)indexing: corpus files -> articles -> passages -> postings, written in one transaction.

Incremental by content hash. May import `corpus`, `text` and `engine`; never
`search` or `maintenance`.
"""
