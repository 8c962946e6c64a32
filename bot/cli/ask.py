"""``corpusbot ask``: the best passages for a question, with their citations."""

from __future__ import annotations

import sys
from datetime import date
from typing import IO

import click

from corpusbot.bot.cli.dates import check_range, date_range_options
from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.bot.cli.service import open_service
from corpusbot.index.models import Answer, Hit


@click.command()
@click.argument("question", required=False)
@click.option("-k", "k", type=click.IntRange(1, 50), default=3, show_default=True, help="How many passages.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip this many results (paging).")
@click.option("--explain", is_flag=True, help="Show each query term's contribution to every passage's score.")
@click.option(
    "--after",
    "earlier",
    metavar="QUESTION",
    help="Read the question as a follow-up to this earlier one (its words join at 0.3 of a word's weight).",
)
@click.option(
    "--queries",
    type=click.File("r", encoding="utf-8"),
    help="Answer every line of this file instead (one question a line; JSONL with --json).",
)
@date_range_options
@db_option
@json_option
def ask(
    question: str | None,
    k: int,
    offset: int,
    explain: bool,
    earlier: str | None,
    queries: IO[str] | None,
    since: date | None,
    until: date | None,
    db_path: str,
    as_json: bool,
) -> None:
    """Answer a question with the best passages and their citations.

    With --after, the question is a follow-up: "and what did they want?" is
    asked with the earlier question's words at a lower weight.

    --since / --until keep only articles published in that range (both days
    included); articles without a published date are then left out.

    Example: corpusbot ask "who is on the US delegation?" --since 2025-06-01
    """
    check_range(since, until)
    if queries is None and (question is None or not question.strip()):
        raise click.UsageError('Give a question, e.g. corpusbot ask "who is on the US delegation?"')
    service = open_service(db_path)
    if queries is not None:
        for line in queries:
            if line.strip():
                answer = service.ask(
                    line.strip(), k=k, offset=offset, explain=explain, context=earlier, since=since, until=until
                )
                if as_json:
                    _echo_answer_json(answer)
                else:
                    click.echo(_format_answer(answer))
        return
    assert question is not None
    answer = service.ask(question, k=k, offset=offset, explain=explain, context=earlier, since=since, until=until)
    if as_json:
        _echo_answer_json(answer)
    else:
        click.echo(_format_answer(answer, color=sys.stdout.isatty()))


def _echo_answer_json(answer: Answer) -> None:
    """One JSON object on stdout; its notices (e.g. a shortened question) also on stderr, for a person watching."""
    for notice in answer.notices:
        click.echo(notice, err=True)
    data = answer.to_json()
    data["results"] = [  # the article's date beside each result as well (added field)
        {**hit.to_json(), "published": hit.article.published} for hit in answer.hits
    ]
    echo_json(data)


def _format_answer(answer: Answer, color: bool = False) -> str:
    """The answer as text: each passage and its citation; with ``color``, matched words emphasised."""
    lines: list[str] = [*answer.notices, *_direct_answer_lines(answer)]
    if not answer.hits and answer.about:
        return "\n".join(lines)
    if not answer.hits:
        lines.append(f"No passage matches {answer.query!r}.")
        if answer.unknown_terms:
            lines.append("The corpus never mentions: " + ", ".join(answer.unknown_terms) + ".")
        lines.append("Try other words for the same thing, or fewer words; `corpusbot stats` shows what is indexed.")
        return "\n".join(lines)
    if not answer.confident:
        lines.append("No confident match; closest passages:")
    for hit in answer.hits:
        lines.append(f"[{hit.rank}] {_emphasise(hit, color)}")
        lines.append("    — " + citation(hit))
        if hit.duplicates:
            lines.append(f"    (the same passage appears in {hit.duplicates} more article(s))")
        if hit.explanation:
            lines.extend(_format_explanation(hit))
        lines.append("")
    return "\n".join(lines).rstrip()


_ABOUT_LABELS = {
    "url": "Original article",
    "source": "Source",
    "author": "Author",
    "published": "Published",
    "title": "Title",
}


def _direct_answer_lines(answer: Answer) -> list[str]:
    """What the question asked about an article, and the one-line answer, each with its citation."""
    lines = []
    for item in answer.about:
        for name in item.asked:
            lines.append(f"{_ABOUT_LABELS[name]}: {item.value(name) or '(not recorded for this article)'}")
        lines.append(f"    — {item.article.title} · id: {item.article.id}")
    if answer.answer is not None:
        lines.append(f"Answer: {answer.answer.text}")
        lines.append(f"    — from [{answer.answer.hit.rank}]: {citation(answer.answer.hit)}")
    if lines:
        lines.append("")
    return lines


def citation(hit: Hit) -> str:
    """``Title, ¶n · published DATE · url · id: article-id``."""
    parts = [f"{hit.article.title}, ¶{hit.passage.ordinal}"]
    if hit.article.published:
        parts.append(f"published {hit.article.published}")
    if hit.article.url:
        parts.append(hit.article.url)
    parts.append(f"id: {hit.article.id}")
    return " · ".join(parts)


_ORIGINS = {"synonym": "synonym", "context": "earlier question"}


def _format_explanation(hit: Hit) -> list[str]:
    lines = [f"    score {hit.score:.4f} = BM25 {hit.bm25:.4f}" + "".join(f" × boost ({b})" for b in hit.boosts)]
    for part in hit.explanation:
        source = (
            "" if part.origin == "query" else f" ({_ORIGINS.get(part.origin, part.origin)}, weight {part.weight:g})"
        )
        lines.append(f"      {part.term:<16} idf {part.idf:7.4f}  tf {part.tf:<3} → {part.score:.4f}{source}")
    return lines


def _emphasise(hit: Hit, color: bool) -> str:
    """The passage with its matched words bold and its highlight span underlined (when ``color``)."""
    text = hit.passage.text
    if not color:
        return text
    out: list[str] = []
    cursor = 0
    for span in hit.matches:
        out.append(_style_plain(text[cursor : span.start], hit, cursor))
        out.append(click.style(text[span.start : span.end], bold=True, underline=_in_highlight(hit, span.start)))
        cursor = span.end
    out.append(_style_plain(text[cursor:], hit, cursor))
    return "".join(out)


def _in_highlight(hit: Hit, position: int) -> bool:
    return hit.highlight is not None and hit.highlight.start <= position < hit.highlight.end


def _style_plain(piece: str, hit: Hit, offset: int) -> str:
    if hit.highlight is None or not piece:
        return piece
    start = max(hit.highlight.start - offset, 0)
    end = min(hit.highlight.end - offset, len(piece))
    if start >= end:
        return piece
    return piece[:start] + click.style(piece[start:end], underline=True) + piece[end:]
