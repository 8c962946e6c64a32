"""``corpusbot check`` and ``corpusbot backup``: is the index sound, and a safe copy of it."""

from __future__ import annotations

import json

import click

from corpusbot.index.maintenance.backup import backup_database
from corpusbot.index.maintenance.check import SAMPLE_PASSAGES, SCORE_QUERIES, CheckReport, check_database


def print_check(report: CheckReport, as_json: bool) -> None:
    """Print a check report (stdout) and exit 1 when it found problems."""
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        click.echo(report.to_text())
    if not report.ok:
        raise click.exceptions.Exit(1)


def register(cli: click.Group) -> None:
    # Imported here, not at the top: bot.cli imports this module (lazily, through bot.commands.load).
    from corpusbot.bot.cli import db_option, json_option

    @cli.command("check")
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
    def check_command(sample: int, queries: int, db_path: str, as_json: bool) -> None:
        """Verify the index database; exit 1 listing every problem found.

        Checks SQLite's own integrity, the counts against the index metadata,
        that every passage's article exists and passage counts match, that the
        postings agree with the passages (ids exist, df, token counts, a sample
        re-tokenized) and that a sample of scores equals rank-bm25's. Reads one
        consistent snapshot, so it is safe while the bot runs or a reindex writes.

        Example: corpusbot check --db corpusbot.db
        """
        print_check(check_database(db_path, sample=sample, queries=queries), as_json)

    @cli.command("backup")
    @click.argument("path", type=click.Path(dir_okay=False))
    @click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
    @db_option
    @json_option
    def backup_command(path: str, force: bool, db_path: str, as_json: bool) -> None:
        """Copy the index database to PATH, consistently, while the bot keeps running.

        Uses SQLite's online backup: the copy is one committed index even when a
        reindex is writing. The copy is a single self-contained file, readable
        only by you; verify it with `corpusbot check --db PATH`. Refuses to
        overwrite an existing PATH unless --force.

        Example: corpusbot backup backups/corpusbot-2025-06-09.db
        """
        result = backup_database(db_path, path, force=force)
        if as_json:
            click.echo(json.dumps(result.to_json()))
            return
        click.echo(
            f"Backed up {result.source} to {result.target}: {result.articles} articles, {result.passages} passages, "
            f"{result.bytes / 1e6:.2f} MB in {result.seconds:.2f}s. Verify it with `corpusbot check --db {result.target}`."
        )
