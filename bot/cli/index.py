"""``corpusbot index``: the admin reindex, optionally verified, once or every so often."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime

import click

from corpusbot.bot import config
from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.bot.cli.service import indexing_progress
from corpusbot.bot.cli.sources import check_web_url
from corpusbot.index import IndexSummary, index_corpus
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.maintenance.check import check_database
from corpusbot.index.sources.fetch import FetchOptions
from corpusbot.index.sources.urls import looks_like_web_url

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}
MIN_EVERY = 1.0
_sleep = time.sleep  # between runs of --every (a test replaces it)


def parse_duration(text: str) -> float:
    """Seconds in ``15m``, ``1h30m``, ``90s`` or ``2h``; raises ``click.BadParameter`` saying what is accepted."""
    cleaned = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(cleaned)
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if not parts or "".join(n + u for n, u in parts) != cleaned or seconds < MIN_EVERY:
        raise click.BadParameter(
            f"{text!r} is not a duration of at least {MIN_EVERY:g}s: give a number with a unit, "
            "such as 15m, 1h, 90s or 1h30m."
        )
    return seconds


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=False))
@click.option("--full", is_flag=True, help="Rebuild everything instead of only what changed.")
@click.option(
    "--check", "verify", is_flag=True, help="Then verify the database (as `corpusbot check`); exit 1 on problems."
)
@click.option(
    "--every",
    metavar="DURATION",
    callback=lambda ctx, param, value: None if value is None else parse_duration(value),
    help="Keep running: reindex, then again every DURATION (15m, 1h, 90s) until Ctrl-C.",
)
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="HOST",
    help="Also fetch from this intranet host or network (as in CORPUSBOT_FETCH_ALLOW); repeatable.",
)
@db_option
@json_option
def index(
    paths: tuple[str, ...],
    full: bool,
    verify: bool,
    every: float | None,
    allow: tuple[str, ...],
    db_path: str,
    as_json: bool,
) -> None:
    """Index articles (the admin reindex).

    PATHS are folders (read recursively) or files: .txt, .md, .html/.htm,
    .jsonl; or http(s) URLs of web pages and feeds (RSS, Atom, JSON Feed),
    whose entries are fetched as articles. Given paths become the corpus;
    with none, the corpus paths the database remembers are reindexed (the
    bundled sample on a new database). Unchanged files are skipped unless
    --full; unchanged feeds and pages cost one conditional request. A source
    that fails is reported and keeps the articles it gave before.

    Hosts that resolve to private or local addresses are refused unless
    allowed (--allow, CORPUSBOT_FETCH_ALLOW). With --every the command
    reindexes the remembered corpus again and again (one JSON line per run
    with --json) until stopped.

    Example: corpusbot index ~/articles https://news.example/rss.xml
    """
    interval = every
    for path in paths:
        if looks_like_web_url(path):
            check_web_url(path, "PATHS")
    fetch = FetchOptions(allow=config.fetch_allow(extra=allow))

    def run_once(first: bool) -> bool:
        with indexing_progress() as progress:
            given = list(paths) or None if first else None
            summary = index_corpus(db_path, given, full=full and first, on_progress=progress, fetch=fetch)
        report = check_database(db_path) if verify else None
        if as_json:
            echo_json({**summary.to_json(), **({"check": report.to_json()} if report else {})})
        else:
            _print_summary(summary, db_path, stamped=interval is not None)
            if report:
                click.echo(report.to_text())
        return report is None or report.ok

    if interval is None:
        if not run_once(True):
            raise click.exceptions.Exit(1)
        return
    run_every(interval, run_once, sleep=_sleep)


def run_every(
    interval: float,
    run_once: Callable[[bool], bool],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """``run_once(first)`` now and then every ``interval`` seconds (from start to start) until Ctrl-C.

    A run that takes longer than the interval is followed by the next at once. After the first run,
    an error of one run (e.g. another reindex committed meanwhile) is reported and the next run goes
    ahead; the first run's errors stop the command, as they are the user's to fix. Ctrl-C, during a
    run or between runs, stops cleanly: an interrupted run writes nothing (the index stays as it was).
    """
    first = True
    try:
        while True:
            started = clock()
            try:
                run_once(first)
            except (CorpusbotError, sqlite3.OperationalError) as error:
                if first:
                    raise
                click.echo(f"Error: {error} (trying again in {interval:g}s)", err=True)
            first = False
            sleep(max(0.0, started + interval - clock()))
    except KeyboardInterrupt:
        click.echo("Stopped.", err=True)


def _print_summary(summary: IndexSummary, db_path: str, *, stamped: bool = False) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC: ") if stamped else ""
    click.echo(
        f"{stamp}{len(summary.added)} added, {len(summary.updated)} updated, {len(summary.removed)} removed, "
        f"{len(summary.unchanged)} unchanged, {len(summary.skipped)} skipped"
        f" -> {summary.articles} articles, {summary.passages} passages in {db_path} ({summary.seconds:.2f}s)"
    )
    for path, reason in summary.skipped:
        click.echo(f"  skipped {path}: {reason}")
    for path, message in summary.warnings:
        click.echo(f"  warning {path}: {message}")
    for url, reason in summary.failed_sources:
        click.echo(f"  failed {url}: {reason} (what it gave before is kept)")
