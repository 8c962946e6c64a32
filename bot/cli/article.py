"""``corpusbot article``: one article by its id, or the articles matching some words."""

from __future__ import annotations

from typing import Any

import click

from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.bot.cli.service import open_service
from corpusbot.index.models import Passage


@click.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--limit", type=click.IntRange(1, 50), default=5, show_default=True, help="Articles listed for WORDS.")
@db_option
@json_option
def article(query: tuple[str, ...], limit: int, db_path: str, as_json: bool) -> None:
    """Show an article by its id, or list the articles matching some words.

    Example: corpusbot article rare earth licenses
    """
    service = open_service(db_path)
    text = " ".join(query).strip()
    found = service.article(text)
    if found is not None:
        info, passages = found
        if as_json:
            echo_json(
                {**info.to_json(), "passage_count": len(passages), "passages": [_passage_json(p) for p in passages]}
            )
            return
        click.echo(info.title)
        for label, value in (
            ("id", info.id),
            ("source", info.source),
            ("published", info.published),
            ("url", info.url),
        ):
            if value:
                click.echo(f"{label}: {value}")
        click.echo(f"passages: {len(passages)}\n")
        for passage in passages:
            click.echo(f"¶{passage.ordinal} {passage.text}\n")
        return
    matches = service.find_articles(text, limit=limit)
    closest = service.closest_ids(text) if " " not in text else []
    if as_json:
        echo_json({"query": text, "articles": [m.to_json() for m in matches], "closest_ids": closest})
        return
    if not matches:
        hint = f" Did you mean: {', '.join(closest)}?" if closest else ""
        raise click.ClickException(
            f"No article with id or words {text!r}.{hint} Try `corpusbot article WORDS` with words from its title."
        )
    if closest:
        click.echo(f"No article has the id {text!r} (closest ids: {', '.join(closest)}). Articles matching it:")
    for match in matches:
        click.echo(f"{match.article.id}  {match.article.title}  ({match.passage_count} passages)")


def _passage_json(passage: Passage) -> dict[str, Any]:
    return {"passage": passage.ordinal, "start": passage.start, "end": passage.end, "text": passage.text}
