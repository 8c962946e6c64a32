"""Bad questions through the CLI: clean output, exit 0 (or a usage error for an empty one), never a traceback,
and the database exactly as it was."""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from corpusbot.bot.cli import cli
from corpusbot.index.maintenance.check import check_database
from corpusbot.index.search.service import MAX_QUERY_CHARS

LONG = ("rare earth export licenses for automakers " * 300)[:10_000]
BAD_QUESTIONS = {
    "10,000 characters": LONG,
    "only stopwords": "the of and is it was to be",
    "only punctuation": "?!.,;:--()[]{}'\"…",
    "emoji": "🦀🚀😀 🇺🇸",
    "control characters": "\x00\x01\x07 rare\x1b[31m earth\x1b[0m\x7f\x9b",
    "right-to-left text": "ما هي المحادثات التجارية في لندن؟",
    "bidi override": "\u202erare earth\u202c \u2066licenses\u2069",
    "slack channel mention": "<!channel> rare earth",
    "slack user mention": "<@U012AB3CD> who is on the US delegation?",
    "slack link": "<https://x.example|y> London talks",
    "sql": "'; DROP TABLE passages; --",
    "sql boolean": "rare earth' OR '1'='1",
    "fts syntax": "a OR b NEAR(c) rare* ^earth",
    "unbalanced quote": '"rare earth',
    "lone minus": "- -- -rare",
    "percent and underscore": "%_% \\ \\\\ %s {0}",
    "zero-width": "rare\u200b\u200beart\u200dh",
}


@pytest.fixture
def db_hash(sample_db: Path) -> str:
    return hashlib.sha256(sample_db.read_bytes()).hexdigest()


def assert_clean(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    controls = [ch for ch in result.output if unicodedata.category(ch) in ("Cc", "Cf") and ch != "\n"]
    assert controls == [], f"control/format characters reach the terminal: {controls!r}"


def assert_database_untouched(sample_db: Path, db_hash: str) -> None:
    assert hashlib.sha256(sample_db.read_bytes()).hexdigest() == db_hash
    report = check_database(sample_db, queries=3)
    assert report.ok and report.counts["articles"] == 2, report.problems


@pytest.mark.parametrize("kind", list(BAD_QUESTIONS))
def test_bad_questions_answer_cleanly(kind: str, sample_db: Path, db_hash: str, runner: CliRunner) -> None:
    question = BAD_QUESTIONS[kind]
    started = time.perf_counter()
    # "--" ends the options: a question may start with "-" (an excluded word).
    text = runner.invoke(cli, ["ask", "--db", str(sample_db), "--", question])
    elapsed = time.perf_counter() - started
    assert text.exit_code == 0, text.output
    assert_clean(text)
    as_json = runner.invoke(cli, ["ask", "--json", "--db", str(sample_db), "--", question])
    assert as_json.exit_code == 0, as_json.output
    assert_clean(as_json)
    answer = json.loads(as_json.stdout)  # exactly one JSON object on stdout
    assert isinstance(answer["query"], str) and isinstance(answer["results"], list)
    assert len(answer["query"]) <= MAX_QUERY_CHARS
    if not answer["results"]:
        assert "No passage matches" in text.output
    print(f"{kind}: {elapsed * 1000:.0f} ms")
    assert_database_untouched(sample_db, db_hash)


def test_a_10000_character_question_is_shortened_with_a_notice(sample_db: Path, runner: CliRunner) -> None:
    text = runner.invoke(cli, ["ask", "--db", str(sample_db), LONG])
    assert f"shortened to its first {MAX_QUERY_CHARS} characters" in text.output
    answer = json.loads(runner.invoke(cli, ["ask", "--json", "--db", str(sample_db), LONG]).stdout)
    assert any("shortened" in notice for notice in answer["notices"])
    assert answer["results"] and "rare earth" in answer["results"][0]["text"]


@pytest.mark.parametrize("question", ["", "   ", "\t\n  "])
def test_an_empty_question_is_a_usage_error(question: str, sample_db: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["ask", "--db", str(sample_db), question])
    assert result.exit_code == 2
    assert "Give a question" in result.output and "Traceback" not in result.output


def test_bad_questions_in_a_queries_file(sample_db: Path, db_hash: str, runner: CliRunner, tmp_path: Path) -> None:
    lines = [q.replace("\n", " ") for q in BAD_QUESTIONS.values() if "\x00" not in q] + ["", "   "]
    queries = tmp_path / "queries.txt"
    queries.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(cli, ["ask", "--json", "--queries", str(queries), "--db", str(sample_db)])
    assert result.exit_code == 0, result.output
    assert_clean(result)
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(lines) - 2  # blank lines are not questions
    assert all(isinstance(a["results"], list) for a in answers)
    assert_database_untouched(sample_db, db_hash)


@pytest.mark.parametrize("words", ["'; DROP TABLE articles; --", "%", "_", "<!channel>", "a OR b NEAR(c)", "🦀"])
def test_bad_article_lookups_are_clean(words: str, sample_db: Path, db_hash: str, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["article", "--db", str(sample_db), "--", words])
    assert result.exit_code in (0, 1), result.output
    assert_clean(result)
    if result.exit_code == 1:
        assert "No article with id or words" in result.output
    assert_database_untouched(sample_db, db_hash)
