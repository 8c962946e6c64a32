"""The ``corpusbot`` command line: a thin click layer over ``index``."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from corpusbot.bot import config
from corpusbot.index import CorpusbotError, SearchService, index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.models import Answer, Hit, Passage

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class CorpusbotGroup(click.Group):
    """Loads feature commands lazily; turns user-fixable errors into one clear line (exit 1), never a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from corpusbot.bot.cli.lazy import COMMANDS

        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from corpusbot.bot.cli.lazy import COMMANDS, load

        if cmd_name not in self.commands and cmd_name in COMMANDS:
            load(self, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CorpusbotError as error:
            raise click.ClickException(str(error)) from None
        except sqlite3.OperationalError as error:
            raise click.ClickException(_sqlite_advice(error)) from None
        except sqlite3.DatabaseError as error:
            raise click.ClickException(
                f"The database is not usable ({error}). Move it aside and run `corpusbot index --full`, "
                "or restore a backup."
            ) from None


def _sqlite_advice(error: sqlite3.OperationalError) -> str:
    message = str(error)
    if "locked" in message or "busy" in message:
        return f"The database is locked by another process ({message}). Try again when it finishes."
    if "readonly" in message or "read-only" in message:
        return f"The database is read-only ({message}). Check the file's permissions or set CORPUSBOT_DB."
    return f"Database error: {message}."


@click.group(cls=CorpusbotGroup)
@click.version_option(package_name="corpusbot")
def cli() -> None:
    """corpusbot: cited answers from a corpus of news articles, in the terminal and in Slack.

    Start with `corpusbot ask "who is on the US delegation?"` (the bundled
    sample corpus is indexed on first use).
    """
    config.load_environment()


def db_option(func: F) -> F:
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False),
        default=lambda: config.db_path(),
        show_default="$CORPUSBOT_DB or corpusbot.db",
        help="The index database file.",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def _progress(items: Iterable[T], length: int) -> Iterator[T]:
    if not sys.stderr.isatty() or length < 20:
        yield from items
        return
    with click.progressbar(items, length=length, label="Indexing", file=sys.stderr) as bar:
        yield from bar


def open_service(db_path: str) -> SearchService:
    """The search service, indexing the bundled corpus first when there is no database yet."""
    if not Path(db_path).exists():
        click.echo(f"No index at {db_path}; indexing the bundled sample corpus first.", err=True)
        summary = index_corpus(db_path, [BUNDLED], progress=_progress)
        click.echo(f"Indexed {summary.articles} articles ({summary.passages} passages).", err=True)
    return SearchService(db_path, synonyms_path=config.synonyms_path())


@cli.command()
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
    summary = index_corpus(db_path, list(paths) or None, full=full, progress=_progress)
    from corpusbot.index.maintenance.check import check_database

    report = check_database(db_path) if verify else None
    if as_json:
        click.echo(json.dumps({**summary.to_json(), **({"check": report.to_json()} if report else {})}))
    else:
        _print_summary(summary, db_path)
        if report:
            click.echo(report.to_text())
    if report is not None and not report.ok:
        raise click.exceptions.Exit(1)


def _print_summary(summary: Any, db_path: str) -> None:
    click.echo(
        f"{len(summary.added)} added, {len(summary.updated)} updated, {len(summary.removed)} removed, "
        f"{len(summary.unchanged)} unchanged, {len(summary.skipped)} skipped"
        f" -> {summary.articles} articles, {summary.passages} passages in {db_path} ({summary.seconds:.2f}s)"
    )
    for path, reason in summary.skipped:
        click.echo(f"  skipped {path}: {reason}")
    for path, message in summary.warnings:
        click.echo(f"  warning {path}: {message}")


@cli.command()
@click.argument("question", required=False)
@click.option("-k", "k", type=click.IntRange(1, 50), default=3, show_default=True, help="How many passages.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip this many results (paging).")
@click.option("--explain", is_flag=True, help="Show each query term's contribution to every passage's score.")
@click.option(
    "--queries",
    type=click.File("r", encoding="utf-8"),
    help="Answer every line of this file instead (one question a line; JSONL with --json).",
)
@db_option
@json_option
def ask(question: str | None, k: int, offset: int, explain: bool, queries: Any, db_path: str, as_json: bool) -> None:
    """Answer a question with the best passages and their citations.

    Example: corpusbot ask "who is on the US delegation?"
    """
    if queries is None and (question is None or not question.strip()):
        raise click.UsageError('Give a question, e.g. corpusbot ask "who is on the US delegation?"')
    service = open_service(db_path)
    if queries is not None:
        for line in queries:
            if line.strip():
                answer = service.ask(line.strip(), k=k, offset=offset, explain=explain)
                if as_json:
                    _echo_json(answer)
                else:
                    click.echo(_format_answer(answer))
        return
    assert question is not None
    answer = service.ask(question, k=k, offset=offset, explain=explain)
    if as_json:
        _echo_json(answer)
    else:
        click.echo(_format_answer(answer, color=sys.stdout.isatty()))


def _echo_json(answer: Answer) -> None:
    """One JSON object on stdout; its notices (e.g. a shortened question) also on stderr, for a person watching."""
    for notice in answer.notices:
        click.echo(notice, err=True)
    click.echo(json.dumps(answer.to_json()))


def _format_answer(answer: Answer, color: bool = False) -> str:
    lines: list[str] = [*answer.notices]
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


def _format_explanation(hit: Hit) -> list[str]:
    lines = [f"    score {hit.score:.4f} = BM25 {hit.bm25:.4f}" + "".join(f" × boost ({b})" for b in hit.boosts)]
    for part in hit.explanation:
        source = "" if part.weight == 1 else f" (synonym, weight {part.weight:g})"
        lines.append(f"      {part.term:<16} idf {part.idf:7.4f}  tf {part.tf:<3} → {part.score:.4f}{source}")
    return lines


def citation(hit: Hit) -> str:
    parts = [f"{hit.article.title}, ¶{hit.passage.ordinal}"]
    if hit.article.url:
        parts.append(hit.article.url)
    parts.append(f"id: {hit.article.id}")
    return " · ".join(parts)


def _emphasise(hit: Hit, color: bool) -> str:
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


@cli.command()
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
            click.echo(
                json.dumps(
                    {**info.to_json(), "passage_count": len(passages), "passages": [_passage_json(p) for p in passages]}
                )
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
        click.echo(json.dumps({"query": text, "articles": [m.to_json() for m in matches], "closest_ids": closest}))
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


@cli.command()
@db_option
@json_option
def stats(db_path: str, as_json: bool) -> None:
    """Show what the index holds: articles, passages, vocabulary, build time, database size.

    Example: corpusbot stats --json
    """
    info = open_service(db_path).stats()
    if as_json:
        click.echo(json.dumps(info.to_json()))
        return
    click.echo(f"articles:     {info.articles}")
    click.echo(f"passages:     {info.passages}")
    click.echo(f"vocabulary:   {info.vocabulary}")
    click.echo(f"built at:     {info.built_at} ({info.build_seconds}s)")
    click.echo(f"database:     {info.db_path} ({info.db_bytes / 1e6:.2f} MB)")
    click.echo(f"corpus:       {', '.join(info.corpus_paths)}")
    click.echo("bm25:         " + ", ".join(f"{k}={v}" for k, v in info.bm25.items()))


def main() -> None:
    cli(prog_name="corpusbot")
