"""Looking after an index: `check` (verify a database), `backup` (a consistent copy)
and `evaluate` (answer quality on question files and BEIR collections).

May import any other part of `corpusbot.index`.
"""
