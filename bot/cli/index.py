"""``corpusbot index``: the admin reindex, optionally verified."""

from __future__ import annotations

import click

from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.bot.cli.service import indexing_progress
from corpusbot.index import IndexSummary, index_corpus
from corpusbot.index.maintenance.check import check_database


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=False))
@click.option("--full", is_flag=True, help="Rebuild everything instead of only what changed.")
@click.option(
    "--check", "verify", is_flag=True, help="Then verify the database (as `corpusbot check`); exit 1 on problems."
)
@db_option
@json_option
def index(paths: tuple[str, ...], full: bool, verify: bool, db_path: str, as_json: bool) -> None:
    """Index articles (the admin reindex).

    PATHS are folders (read recursively) or files: .txt, .md, .html/.htm,
    .jsonl. Given paths become the corpus; with none, the corpus paths the
    database remembers are reindexed (the bundled sample on a new database).
    Unchanged files are skipped unless --full.

    Example: corpusbot index ~/articles
    """
    with indexing_progress() as progress:
        summary = index_corpus(db_path, list(paths) or None, full=full, on_progress=progress)
    report = check_database(db_path) if verify else None
    if as_json:
        echo_json({**summary.to_json(), **({"check": report.to_json()} if report else {})})
    else:
        _print_summary(summary, db_path)
        if report:
            click.echo(report.to_text())
    if report is not None and not report.ok:
        raise click.exceptions.Exit(1)


def _print_summary(summary: IndexSummary, db_path: str) -> None:
    click.echo(
        f"{len(summary.added)} added, {len(summary.updated)} updated, {len(summary.removed)} removed, "
        f"{len(summary.unchanged)} unchanged, {len(summary.skipped)} skipped"
        f" -> {summary.articles} articles, {summary.passages} passages in {db_path} ({summary.seconds:.2f}s)"
    )
    for path, reason in summary.skipped:
        click.echo(f"  skipped {path}: {reason}")
    for path, message in summary.warnings:
        click.echo(f"  warning {path}: {message}")
