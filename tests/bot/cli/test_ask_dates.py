"""``corpusbot ask --since/--until`` and ``corpusbot new``: dates in, dates shown, clear errors for bad ones."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpusbot.bot.cli import cli
from corpusbot.index import index_corpus

FILLER = (
    "The ministry said the figures would be published later in the month. Analysts expected little change in the "
    "weeks ahead, and markets were calm on the news. Officials declined to comment further on the timetable."
)
QUESTION = "ministry figures analysts timetable"


def write_article(folder: Path, article_id: str, text: str, published: str | None = None) -> None:
    record = {"id": article_id, "title": article_id.title(), "text": text}
    if published:
        record["published"] = published
    (folder / f"{article_id}.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")


@pytest.fixture
def db(tmp_path: Path, corpus_dir: Path) -> Path:
    write_article(corpus_dir, "steel-1", f"Steel output rose. {FILLER}", "2025-05-20")
    write_article(corpus_dir, "wheat-1", f"The wheat harvest was early. {FILLER}", "Tue, 03 Jun 2025 08:00:00 GMT")
    write_article(corpus_dir, "port-1", f"Dock workers went on strike. {FILLER}")
    path = tmp_path / "dates.db"
    index_corpus(path, [str(corpus_dir)])
    return path


def json_line(output: str) -> dict:
    """The JSON object among the lines of output (notices go to stderr, which the runner mixes in)."""
    return json.loads(next(line for line in output.splitlines() if line.startswith("{")))


def run(runner: CliRunner, db: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, [*args, "--db", str(db)])
    return result.exit_code, result.output


def test_since_and_until_filter_by_published_date_and_json_carries_it(runner: CliRunner, db: Path) -> None:
    code, output = run(runner, db, "ask", QUESTION, "-k", "10", "--since", "2025-06-01", "--json")
    assert code == 0
    data = json_line(output)
    assert [r["article"]["id"] for r in data["results"]] == ["wheat-1"]
    assert data["results"][0]["published"] == "Tue, 03 Jun 2025 08:00:00 GMT"  # as the source wrote it
    assert any("left out" in notice for notice in data["notices"])
    code, output = run(runner, db, "ask", QUESTION, "-k", "10", "--until", "2025-06-02", "--json")
    assert [r["article"]["id"] for r in json_line(output)["results"]] == ["steel-1"]
    code, output = run(runner, db, "ask", QUESTION, "-k", "10", "--json")
    results = json_line(output)["results"]
    assert {r["article"]["id"] for r in results} == {"steel-1", "wheat-1", "port-1"}
    assert {r["published"] for r in results if r["article"]["id"] == "port-1"} == {None}


def test_text_citations_show_the_published_date(runner: CliRunner, db: Path) -> None:
    code, output = run(runner, db, "ask", "steel output", "--since", "2025-05-20", "--until", "2025-05-20")
    assert code == 0
    assert "published 2025-05-20" in output and "Steel-1" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2025-13-01"], "not a calendar date"),
        (["--since", "June 1"], "YYYY-MM-DD"),
        (["--until", "2025-6-1"], "YYYY-MM-DD"),
        (["--since", "2025-06-02", "--until", "2025-06-01"], "is after --until"),
    ],
)
def test_malformed_dates_are_usage_errors_without_a_traceback(
    runner: CliRunner, db: Path, args: list[str], message: str
) -> None:
    code, output = run(runner, db, "ask", QUESTION, *args)
    assert code == 2
    assert message in output and "Traceback" not in output


def test_new_lists_the_latest_indexed_articles_first(runner: CliRunner, db: Path, corpus_dir: Path) -> None:
    code, output = run(runner, db, "new", "--json")
    assert code == 0 and json.loads(output)["total"] == 3
    time.sleep(1.05)
    write_article(corpus_dir, "rare-1", f"Rare earth licences. {FILLER}", "2025-06-05")
    index_corpus(db, [str(corpus_dir)])
    code, output = run(runner, db, "new", "--since", "2d", "--limit", "2")
    assert code == 0
    lines = output.splitlines()
    assert (
        lines[0].startswith("4 article(s) indexed since")
        and "rare-1" in lines[1]
        and "published 2025-06-05" in lines[1]
    )
    assert "and 2 more" in output
    code, output = run(runner, db, "new", "--since", "2999-01-01")
    assert code == 0 and "Nothing was indexed since 2999-01-01" in output
    code, output = run(runner, db, "new", "--since", "fortnight")
    assert code == 2 and "time ago" in output and "Traceback" not in output
