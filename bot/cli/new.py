"""``corpusbot new``: the articles indexed since a given time, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.bot.cli.service import open_service
from corpusbot.index.search.dates import parse_since


class Since(click.ParamType):
    """``24h``, ``3d``, ``2w``, ``90m`` ago, or a ``YYYY-MM-DD`` day (from its midnight, UTC)."""

    name = "AGO|YYYY-MM-DD"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_since(str(value), datetime.now(UTC), timedelta(hours=24))
        except ValueError as error:
            self.fail(str(error), param, ctx)


@click.command()
@click.option(
    "--since",
    type=Since(),
    default="24h",
    show_default=True,
    help="From when: a time ago (24h, 3d, 2w, 90m) or a day (YYYY-MM-DD, UTC).",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="Articles listed.")
@db_option
@json_option
def new(since: datetime, limit: int, db_path: str, as_json: bool) -> None:
    """List the articles indexed since a given time, newest first.

    An article counts from when it first entered the index: editing it,
    appending lines to its JSONL file or `index --full` does not make it
    new again. (An index last written by an older corpusbot counts when
    its articles' files were last indexed, until its next reindex.)

    Example: corpusbot new --since 3d
    """
    service = open_service(db_path)
    stamp = since.astimezone(UTC).isoformat(timespec="seconds")
    articles, total = service.indexed_since(stamp, limit)
    if as_json:
        echo_json({"since": stamp, "total": total, "articles": [item.to_json() for item in articles]})
        return
    if not articles:
        click.echo(f"Nothing was indexed since {stamp}.")
        return
    click.echo(f"{total} article(s) indexed since {stamp}, newest first:")
    for item in articles:
        published = f"  published {item.article.published}" if item.article.published else ""
        click.echo(f"{item.indexed_at}  {item.article.id}  {item.article.title}{published}")
    if total > len(articles):
        click.echo(f"…and {total - len(articles)} more (--limit {total} lists them all).")
