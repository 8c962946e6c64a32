"""``corpusbot stats``: what the index holds."""

from __future__ import annotations

import click

from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.bot.cli.service import open_service


@click.command()
@db_option
@json_option
def stats(db_path: str, as_json: bool) -> None:
    """Show what the index holds: articles, passages, vocabulary, build time, database size.

    Example: corpusbot stats --json
    """
    info = open_service(db_path).stats()
    if as_json:
        echo_json(info.to_json())
        return
    click.echo(f"articles:     {info.articles}")
    click.echo(f"passages:     {info.passages}")
    click.echo(f"vocabulary:   {info.vocabulary}")
    click.echo(f"built at:     {info.built_at} ({info.build_seconds}s)")
    click.echo(f"database:     {info.db_path} ({info.db_bytes / 1e6:.2f} MB)")
    click.echo(f"corpus:       {', '.join(info.corpus_paths)}")
    click.echo("bm25:         " + ", ".join(f"{k}={v}" for k, v in info.bm25.items()))
