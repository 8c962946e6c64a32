"""What an indexing run reports as it goes: ``IndexProgress`` records, given to a ``ProgressCallback``.

A run has three stages, each reported from 0 to its total, several times a second at most
on a large corpus (after each part of a file read, each chunk tokenized, each batch written):

- ``reading``: bytes of the corpus files read (of their total size), with the files started
  and the articles read so far;
- ``tokenizing``: new articles split into passages and tokenized, with the passages made;
- ``writing``: new articles written, then ``writing postings``: terms whose postings were written.

The callback only displays them (the CLI draws a line on a terminal); it must not raise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class IndexProgress(NamedTuple):
    stage: str  # "reading", "tokenizing", "writing" or "writing postings"
    done: int
    total: int
    unit: str  # what ``done`` and ``total`` count: "bytes", "articles" or "terms"
    articles: int = 0  # articles read so far (reading)
    passages: int = 0  # passages made so far (tokenizing)
    files: tuple[int, int] = (0, 0)  # (files started, files) while reading


ProgressCallback = Callable[[IndexProgress], None]
