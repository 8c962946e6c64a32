"""``corpusbot check``: is the index database sound."""

from __future__ import annotations

import click

from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.index.maintenance.check import SAMPLE_PASSAGES, SCORE_QUERIES, CheckReport, check_database


@click.command()
@click.option(
    "--sample",
    type=click.IntRange(0),
    default=SAMPLE_PASSAGES,
    show_default=True,
    help="Passages re-tokenized and compared with their postings.",
)
@click.option(
    "--queries",
    type=click.IntRange(0),
    default=SCORE_QUERIES,
    show_default=True,
    help="Sampled queries whose scores are compared with rank-bm25's.",
)
@db_option
@json_option
def check(sample: int, queries: int, db_path: str, as_json: bool) -> None:
    """Verify the index database; exit 1 listing every problem found.

    Checks SQLite's own integrity, the counts against the index metadata,
    that every passage's article exists and passage counts match, that the
    postings agree with the passages (ids exist, df, token counts, a sample
    re-tokenized) and that a sample of scores equals rank-bm25's. Reads one
    consistent snapshot, so it is safe while the bot runs or a reindex writes.

    Example: corpusbot check --db corpusbot.db
    """
    print_check(check_database(db_path, sample=sample, queries=queries), as_json)


def print_check(report: CheckReport, as_json: bool) -> None:
    """Print a check report (stdout) and exit 1 when it found problems."""
    if as_json:
        echo_json(report.to_json())
    else:
        click.echo(report.to_text())
    if not report.ok:
        raise click.exceptions.Exit(1)
