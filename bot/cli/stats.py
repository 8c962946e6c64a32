"""``corpusbot stats``: what the index holds."""

from __future__ import annotations

import click

from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.bot.cli.service import open_service
from corpusbot.index.sources.registry import failing_sources


@click.command()
@db_option
@json_option
def stats(db_path: str, as_json: bool) -> None:
    """Show what the index holds: articles, passages, vocabulary, build time, database size.

    Web sources (feeds, pages) whose last fetch failed are listed with the
    reason and since when; the articles they gave before stay indexed.

    Example: corpusbot stats --json
    """
    info = open_service(db_path).stats()
    failing = failing_sources(db_path)
    if as_json:
        echo_json({**info.to_json(), "failing_sources": [row.to_json() for row in failing]})
        return
    click.echo(f"articles:     {info.articles}")
    click.echo(f"passages:     {info.passages}")
    click.echo(f"vocabulary:   {info.vocabulary}")
    click.echo(f"built at:     {info.built_at} ({info.build_seconds}s)")
    click.echo(f"database:     {info.db_path} ({info.db_bytes / 1e6:.2f} MB)")
    click.echo(f"corpus:       {', '.join(info.corpus_paths)}")
    click.echo("bm25:         " + ", ".join(f"{k}={v}" for k, v in info.bm25.items()))
    if failing:
        click.echo(f"failing:      {len(failing)} web source(s)")
    for row in failing:
        what = f"{row.kind} of {row.parent}" if row.parent else row.kind
        click.echo(f"  {row.url} ({what}): {row.last_error}; failing since {row.failing_since}")
