"""The search service the commands answer from, indexing the bundled sample on first use; indexing progress."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from corpusbot.bot import config
from corpusbot.index import SearchService, index_corpus
from corpusbot.index.corpus.discover import BUNDLED

if TYPE_CHECKING:
    from corpusbot.index.indexing.progress import IndexProgress, ProgressCallback

_STAGES = {
    "reading": "reading",
    "tokenizing": "splitting and tokenizing",
    "writing": "writing",
    "writing postings": "writing postings",
}


class TerminalProgress:
    """Indexing progress as one line on a terminal, redrawn in place; cleared by :meth:`close`.

    Nothing is drawn during the first ``delay`` seconds (a small corpus is indexed before then),
    and then at most every ``interval`` seconds, or when the stage changes. The line is cut to
    the terminal's width, so that it never wraps (a wrapped line cannot be redrawn in place).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        delay: float = 0.5,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.delay = delay
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self._drawn_at = float("-inf")
        self._stage = ""
        self._width = 0  # characters of the line drawn last

    def __call__(self, report: IndexProgress) -> None:
        now = self.clock()
        if now - self.started < self.delay:
            return
        if now - self._drawn_at < self.interval and report.stage == self._stage:
            return
        self._drawn_at, self._stage = now, report.stage
        columns = shutil.get_terminal_size(fallback=(80, 24)).columns
        line = describe(report, now - self.started)[: max(columns - 1, 10)]
        self.stream.write("\r" + line + " " * max(self._width - len(line), 0))
        self.stream.flush()
        self._width = len(line)

    def close(self) -> None:
        """Clear the line, so that what is printed next starts on a clean one."""
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def describe(report: IndexProgress, seconds: float) -> str:
    """One line for a progress report, e.g. ``Indexing: reading 412 of 1,074 MB (38%), 118,300 articles [0:41]``."""
    share = f" ({100 * report.done // report.total}%)" if report.total else ""
    if report.unit == "bytes":
        scale = 1e6
        digits = 1 if report.total < 10 * scale else 0
        amount = f"{report.done / scale:,.{digits}f} of {report.total / scale:,.{digits}f} MB"
    else:
        amount = f"{report.done:,} of {report.total:,} {report.unit}"
    details = []
    if report.stage == "reading":
        started, files = report.files
        if files > 1:
            details.append(f"file {started:,} of {files:,}")
        details.append(f"{report.articles:,} articles")
    elif report.stage == "tokenizing":
        details.append(f"{report.passages:,} passages")
    minutes, secs = divmod(int(seconds), 60)
    stage = _STAGES.get(report.stage, report.stage)
    return f"Indexing: {stage} {amount}{share}" + "".join(f", {d}" for d in details) + f" [{minutes}:{secs:02d}]"


@contextlib.contextmanager
def indexing_progress(stream: TextIO | None = None) -> Iterator[ProgressCallback | None]:
    """The progress callback for ``index_corpus``: a line on stderr, only when it is a terminal (else None)."""
    stream = stream if stream is not None else sys.stderr
    if not stream.isatty():
        yield None
        return
    progress = TerminalProgress(stream)
    try:
        yield progress
    finally:
        progress.close()


def open_service(db_path: str) -> SearchService:
    """The search service, indexing the bundled corpus first when there is no database yet."""
    cache_bytes, synonyms = config.postings_cache_bytes(), config.synonyms_path()  # a bad setting fails before indexing
    if not Path(db_path).exists():
        click.echo(f"No index at {db_path}; indexing the bundled sample corpus first.", err=True)
        with indexing_progress() as progress:
            summary = index_corpus(db_path, [BUNDLED], on_progress=progress)
        click.echo(f"Indexed {summary.articles} articles ({summary.passages} passages).", err=True)
    return SearchService(db_path, synonyms_path=synonyms, postings_cache_bytes=cache_bytes)
