"""The search service the commands answer from, indexing the bundled sample on first use."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import click

from corpusbot.bot import config
from corpusbot.index import SearchService, index_corpus
from corpusbot.index.corpus.discover import BUNDLED

T = TypeVar("T")


def indexing_progress(items: Iterable[T], length: int) -> Iterator[T]:
    """A progress bar on stderr while indexing, only on a terminal and for more than a few files."""
    if not sys.stderr.isatty() or length < 20:
        yield from items
        return
    with click.progressbar(items, length=length, label="Indexing", file=sys.stderr) as bar:
        yield from bar


def open_service(db_path: str) -> SearchService:
    """The search service, indexing the bundled corpus first when there is no database yet."""
    if not Path(db_path).exists():
        click.echo(f"No index at {db_path}; indexing the bundled sample corpus first.", err=True)
        summary = index_corpus(db_path, [BUNDLED], progress=indexing_progress)
        click.echo(f"Indexed {summary.articles} articles ({summary.passages} passages).", err=True)
    return SearchService(db_path, synonyms_path=config.synonyms_path())
