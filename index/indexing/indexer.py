"""Build or update the index: files -> articles -> passages -> postings, in one transaction.

Incremental by default: a file whose content hash is unchanged is not read
again; in a changed JSONL file, a line whose hash is stored for one of its
articles is that article, unchanged, and is not parsed again; articles of
removed files are dropped, and only the postings of terms that occur in added
or removed passages are rewritten. Everything is written
in a single ``BEGIN IMMEDIATE`` transaction, so a reader sees the old index or
the new one and a killed run leaves the old one in place.

A passage is indexed as its article title's terms repeated ``title_weight``
times followed by its own terms (BM25 sees one token list per passage).
Splitting and tokenizing run in worker processes on large corpora.

Memory stays bounded however large a file is: the articles read wait in a
spool (a temporary file next to the database) until they are written, split
and tokenized in a stream, their postings kept compact (``postings_buffer``),
and written in batches.

This module runs the steps in order; each step has its own module:
``changes`` (compare the corpus with the index), ``passage_encoding`` (split
and tokenize, with the token cache of ``term_cache``), ``writer`` (write the
changes; ``postings_merge`` for incremental runs). ``progress`` is what a run
reports as it goes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corpusbot.index.engine import migrations, store
from corpusbot.index.engine.bm25 import BM25Params
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.indexing import changes, passage_encoding, writer
from corpusbot.index.indexing.changes import Progress
from corpusbot.index.indexing.progress import IndexProgress, ProgressCallback
from corpusbot.index.indexing.spool import ArticleSpool
from corpusbot.index.indexing.summary import IndexSummary
from corpusbot.index.sources import registry
from corpusbot.index.sources.urls import is_web_url
from corpusbot.index.text.tokenizer import default_tokenizer

if TYPE_CHECKING:  # the readers pull in bs4/yaml/charset_normalizer: imported when indexing starts
    from corpusbot.index.corpus.discover import CorpusFile
    from corpusbot.index.sources.fetch import FetchOptions
    from corpusbot.index.sources.refresh import Refresh

# CHUNK_CHARS, PARALLEL_MIN_CHARS, PassageTerms, _encode_chunk, _write, passage_terms and split_passages are
# defined in the step modules and still importable from here, where they used to live. To monkeypatch one,
# patch the module that defines it (passage_encoding, term_cache, writer): rebinding them here changes nothing.
__all__ = [
    "DEFAULT_TITLE_WEIGHT",
    "IndexProgress",
    "IndexRun",
    "IndexSummary",
    "ProgressCallback",
    "RunSettings",
    "index_corpus",
]

DEFAULT_TITLE_WEIGHT = 1


@dataclass(frozen=True, kw_only=True)
class IndexRun:
    """One ``index_corpus`` call: its arguments and the connection it writes through."""

    db: store.Connection
    db_path: str | os.PathLike[str]
    paths: list[str] | None
    full: bool
    params: BM25Params | None
    progress: Progress[CorpusFile] | None
    on_progress: ProgressCallback | None
    workers: int | None
    title_weight: int | None
    started: float  # time.perf_counter() when the call began
    fetch: FetchOptions | None = None  # how web sources are fetched (None: the defaults)


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """An ``IndexRun``'s arguments settled against what the database holds."""

    meta: dict[str, Any]  # the stored metadata (of another schema: only its corpus paths)
    read_generation: object  # the index generation the corpus is compared with
    replace_schema: bool  # the database holds another schema: replace it (always a full build)
    roots: list[str]  # the corpus paths
    params: BM25Params
    full: bool  # rebuild everything: asked for, or the BM25 parameters, tokenizer or title weight changed
    title_weight: int


def index_corpus(
    db_path: str | os.PathLike[str],
    paths: list[str] | None = None,
    *,
    full: bool = False,
    params: BM25Params | None = None,
    progress: Progress[CorpusFile] | None = None,
    workers: int | None = None,
    title_weight: int | None = None,
    on_progress: ProgressCallback | None = None,
    fetch: FetchOptions | None = None,
) -> IndexSummary:
    """Index ``paths`` (or the database's remembered corpus, or the bundled sample) into ``db_path``.

    A path may be an http(s) URL of a feed or a web page (``corpusbot.index.sources``), fetched as
    ``fetch`` says (its allow-list of intranet hosts included); a source that fails is reported in
    ``IndexSummary.failed_sources`` and keeps the articles it gave before.

    ``title_weight``: how many times each passage repeats its article title's
    terms (0: titles are not indexed); None keeps the database's setting
    (default 1). Changing it, like the BM25 parameters, rebuilds everything.
    ``progress(files, how many)`` wraps the corpus files as they are compared; ``on_progress`` is called
    with an ``IndexProgress`` now and then as the run reads, tokenizes and writes (bytes, articles, terms).
    """
    if title_weight is not None and title_weight < 0:
        raise ValueError("title_weight must be 0 or more")
    started = time.perf_counter()
    db = store.connect_plain(db_path, create=True)  # not sqlite_utils: it is slow to import
    db.conn.isolation_level = None  # autocommit; the index is written in one explicit transaction
    try:
        run = IndexRun(
            db=db,
            db_path=db_path,
            paths=paths,
            full=full,
            params=params,
            progress=progress,
            on_progress=on_progress,
            workers=workers,
            title_weight=title_weight,
            started=started,
            fetch=fetch,
        )
        return _index(run)
    finally:
        db.conn.close()


def _index(run: IndexRun) -> IndexSummary:
    """Settle the settings, compare the corpus with the index, split and tokenize what is new, write it all."""
    from corpusbot.index.corpus.discover import discover

    settings = _settle(run)
    summary = IndexSummary(full=settings.full, corpus_paths=list(settings.roots))
    local = [root for root in settings.roots if not is_web_url(root)]
    corpus_files, summary.skipped = discover(local) if local else ([], [])
    web = _refresh_web_sources(run, settings)
    summary.failed_sources = web.failures if web else []
    # The articles read wait on disk, next to the database (which has room for them), until they are written.
    with ArticleSpool(str(Path(run.db_path).absolute().parent)) as spool:
        return _index_changes(run, settings, summary, corpus_files, spool, web)


def _refresh_web_sources(run: IndexRun, settings: RunSettings) -> Refresh | None:
    """Fetch the URLs among the corpus paths (None when there are none)."""
    urls = [root for root in settings.roots if is_web_url(root)]
    if not urls:
        return None
    from corpusbot.index.sources.refresh import refresh_sources

    return refresh_sources(run.db, urls, run.fetch, full=settings.full)


def _index_changes(
    run: IndexRun,
    settings: RunSettings,
    summary: IndexSummary,
    corpus_files: list[CorpusFile],
    spool: ArticleSpool,
    web: Refresh | None,
) -> IndexSummary:
    found = changes.find_changes(
        run.db,
        corpus_files,
        summary,
        spool,
        full=settings.full,
        replace_schema=settings.replace_schema,
        progress=run.progress,
        on_progress=run.on_progress,
        fetched=web.articles if web else (),
    )
    if found.nothing_changed and not settings.full and settings.meta.get("schema_version"):
        _record_unchanged(run, settings, summary, web)
        return summary

    numbers = found.new_articles
    encoded = passage_encoding.encode_articles(
        ((article.title or "", article.text) for _, article, _ in spool.read(numbers)),
        len(numbers),
        spool.chars(numbers),
        settings.title_weight,
        run.workers,
        run.on_progress,
    )
    update = writer.IndexUpdate(
        changes=found,
        encoded=encoded,
        removed_files=summary.removed,
        full=settings.full,
        title_weight=settings.title_weight,
        generation=_next_generation(settings),
    )
    with writer.write_transaction(run.db):
        _check_not_reindexed_meanwhile(run, settings)
        if settings.replace_schema:
            writer.drop_index_tables(run.db)
        migrations.migrate(run.db)  # an older index is upgraded inside this transaction
        writer.write_index(run.db, update, run.on_progress)
        registry.save(run.db, web, settings.roots)  # validators with the content they describe
        _record_run(run, summary)
        store.write_meta(run.db, _new_meta(settings, summary))
    writer.checkpoint(run.db)
    # What the user waited for, the commit and the checkpoint too (the stored build_seconds is taken before them).
    summary.seconds = time.perf_counter() - run.started
    return summary


def _settle(run: IndexRun) -> RunSettings:
    """Read the stored metadata; create the tables unless another schema's are to be replaced."""
    from corpusbot.index.corpus.discover import BUNDLED

    meta = store.read_meta(run.db)
    read_generation = meta.get("generation")
    version = meta.get("schema_version")
    full = run.full
    if version is not None and version != store.SCHEMA_VERSION and not full:
        store.check_schema(meta, run.db_path)
    # The tables of another schema are dropped inside the write transaction that builds the new index,
    # so a run that stops before its COMMIT leaves them as they were.
    replace_schema = version is not None and version != store.SCHEMA_VERSION
    if replace_schema:  # nothing of the old index is reused but the corpus it was built from
        remembered = meta.get("corpus_paths")
        valid = isinstance(remembered, list) and remembered and all(isinstance(p, str) for p in remembered)
        meta = {"corpus_paths": remembered} if valid else {}
    elif version is None:
        migrations.migrate(run.db)  # a new database: the whole schema, before the corpus is read

    paths = run.paths
    roots = [p if p == BUNDLED or is_web_url(p) else str(Path(p).absolute()) for p in paths] if paths else None
    roots = roots or meta.get("corpus_paths") or [BUNDLED]
    params = run.params
    if params is None:
        params = BM25Params(**meta["bm25"]) if "bm25" in meta else BM25Params()
    if meta.get("bm25") and BM25Params(**meta["bm25"]) != params:
        full = True
    if meta.get("tokenizer") and meta["tokenizer"] != default_tokenizer().name:
        full = True
    stored_weight = int(meta.get("title_weight", DEFAULT_TITLE_WEIGHT))
    title_weight = stored_weight if run.title_weight is None else run.title_weight
    if meta.get("schema_version") and title_weight != stored_weight:
        full = True
    return RunSettings(
        meta=meta,
        read_generation=read_generation,
        replace_schema=replace_schema,
        roots=roots,
        params=params,
        full=full,
        title_weight=title_weight,
    )


def _next_generation(settings: RunSettings) -> int:
    """The generation this run's index will be (one more than the one it compared the corpus with)."""
    return int(settings.meta.get("generation", 0)) + 1


def _new_meta(settings: RunSettings, summary: IndexSummary) -> dict[str, Any]:
    """The metadata of the index this run wrote."""
    return {
        "schema_version": store.SCHEMA_VERSION,
        "tokenizer": default_tokenizer().name,
        "bm25": settings.params.to_json(),
        "title_weight": settings.title_weight,
        "corpus_paths": settings.roots,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(summary.seconds, 3),
        "generation": _next_generation(settings),
        "build_id": store.new_build_id(),  # a reader tells this build from another of the same generation
        "articles": summary.articles,
        "passages": summary.passages,
    }


def _check_not_reindexed_meanwhile(run: IndexRun, settings: RunSettings) -> None:
    """Inside the write transaction: the index must still be the one this run compared the corpus with.

    The corpus is read and tokenized before the write lock is taken (readers and the bot keep working
    meanwhile), so another reindex may have committed in between; writing on top of it would mix the two.
    """
    if store.read_meta(run.db).get("generation") != settings.read_generation:
        raise CorpusbotError(
            f"Another `corpusbot index` updated {run.db_path} while this one was reading the corpus; nothing was "
            "written by this run. Run it again."
        )


def _record_unchanged(run: IndexRun, settings: RunSettings, summary: IndexSummary, web: Refresh | None) -> None:
    """Nothing to index: record the run (and the corpus paths, if they changed, and how the web sources did)."""
    with writer.write_transaction(run.db):
        registry.save(run.db, web, settings.roots)
        _record_run(run, summary)
        if settings.roots != settings.meta.get("corpus_paths"):
            store.write_meta(run.db, {"corpus_paths": settings.roots})


def _record_run(run: IndexRun, summary: IndexSummary) -> None:
    """Counts and duration into ``summary``; this run's skipped files into the ``skipped`` table."""
    summary.articles, summary.passages = run.db.execute(
        "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages)"
    ).fetchone()
    summary.seconds = time.perf_counter() - run.started
    run.db.execute("DELETE FROM skipped")
    run.db.conn.executemany("INSERT INTO skipped(path, reason) VALUES (?, ?)", summary.skipped)
