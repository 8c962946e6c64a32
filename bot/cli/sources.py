"""``corpusbot sources``: the remembered corpus paths (folders, files, feeds, web pages), listed and changed."""

from __future__ import annotations

from pathlib import Path

import click

from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.engine import store
from corpusbot.index.sources import registry
from corpusbot.index.sources.urls import is_web_url, looks_like_web_url, url_problem

ACTIONS = ("add", "list", "remove")


@click.command()
@click.argument("action", type=click.Choice(ACTIONS))
@click.argument("sources", nargs=-1)
@db_option
@json_option
def sources(action: str, sources: tuple[str, ...], db_path: str, as_json: bool) -> None:
    """List, add or remove what `corpusbot index` reindexes.

    ACTION is `list`, `add` or `remove`. SOURCES are http(s) URLs of feeds
    (RSS, Atom, JSON Feed) or web pages, folders or files. `add` and `remove`
    change the remembered list only: the next `corpusbot index` fetches what
    was added and drops the articles of what was removed. `list` shows each
    source with its kind, when it last worked and, if it fails, why and since
    when.

    Example: corpusbot sources add https://news.example/rss.xml
    """
    if action == "list":
        if sources:
            raise click.UsageError("`corpusbot sources list` takes no SOURCES.")
        _list(db_path, as_json)
        return
    if not sources:
        raise click.UsageError(f"Give the SOURCES to {action}: URLs, folders or files.")
    if action == "add":
        remembered = registry.add_roots(db_path, [_root(source) for source in sources])
    else:
        remembered = registry.remove_roots(db_path, [_known_form(source) for source in sources])
    if as_json:
        echo_json({"sources": remembered})
        return
    done = "added" if action == "add" else "removed"
    click.echo(f"{len(sources)} {done}; {len(remembered)} remembered. Run `corpusbot index` to apply it.")


def _root(source: str) -> str:
    """The form a source is remembered in: a URL as given, a path absolute; refuses what cannot be one."""
    if looks_like_web_url(source):
        check_web_url(source)
        return source.strip()
    if "://" in source:
        raise click.BadParameter(f"{source!r}: only http:// and https:// URLs can be fetched.", param_hint="SOURCES")
    path = Path(source).expanduser()
    if not path.exists():
        raise click.BadParameter(
            f"{source!r} is neither an http(s) URL nor an existing folder or file.", param_hint="SOURCES"
        )
    return str(path.absolute())


def check_web_url(url: str, param_hint: str = "SOURCES") -> None:
    """Refuse a URL that could never be fetched (malformed, no host, a bad port) or carries credentials."""
    problem = url_problem(url)
    if problem is not None:
        raise click.BadParameter(
            f"{url.strip()!r}: {problem}. Give a URL like https://news.example/feed.xml", param_hint=param_hint
        )


def _known_form(source: str) -> str:
    """A source to remove: URLs as given, paths made absolute (they need not exist any more)."""
    return source.strip() if is_web_url(source) or source == BUNDLED else str(Path(source).expanduser().absolute())


def _list(db_path: str, as_json: bool) -> None:
    rows, roots = _read(db_path)
    listed = []
    for root in roots:
        row = rows.get(root)
        kind = (row.kind if row else "web (not fetched yet)") if is_web_url(root) else _path_kind(root)
        listed.append(
            {
                "source": root,
                "kind": kind,
                "last_ok_at": row.last_ok_at if row else None,
                "failing_since": row.failing_since if row else None,
                "error": row.last_error if row else None,
            }
        )
    if as_json:
        echo_json({"sources": listed})
        return
    if not listed:
        click.echo("No sources remembered yet: `corpusbot sources add URL` or `corpusbot index PATH`.")
    for item in listed:
        state = (
            f"failing since {item['failing_since']}: {item['error']}"
            if item["error"]
            else (f"ok at {item['last_ok_at']}" if item["last_ok_at"] else "")
        )
        click.echo(f"{item['source']}  [{item['kind']}]" + (f"  {state}" if state else ""))


def _read(db_path: str) -> tuple[dict[str, registry.SourceRow], list[str]]:
    if not Path(db_path).exists():
        return {}, []
    reader = store.connect_reader(db_path)
    try:
        roots = [p for p in store.read_meta(reader).get("corpus_paths") or [] if isinstance(p, str)]
        rows = registry.load(reader).sources
    finally:
        reader.conn.close()
    return rows, roots


def _path_kind(root: str) -> str:
    if root == BUNDLED:
        return "bundled sample"
    path = Path(root)
    return "folder" if path.is_dir() else "file" if path.is_file() else "missing"
