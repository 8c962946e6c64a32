"""The `corpusbot` CLI contract for the core commands: JSON shapes, exit codes, messages, first use."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import corpusbot.bot.cli.service as service_module
from corpusbot.bot.cli import cli

DELEGATION = "who is on the US delegation?"
NONSENSE = "xyzzy plugh"


def invoke(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args))


# -- ask --json ------------------------------------------------------------------------


def assert_answer_shape(answer: dict) -> None:
    """The shape issue 2 specifies (extra keys allowed)."""
    assert isinstance(answer["query"], str)
    assert isinstance(answer["results"], list)
    for rank, result in enumerate(answer["results"], start=1):
        assert result["rank"] == rank and type(result["rank"]) is int
        assert type(result["score"]) is float
        assert isinstance(result["text"], str) and result["text"]
        assert type(result["passage"]) is int and result["passage"] >= 1
        article = result["article"]
        assert isinstance(article["id"], str) and article["id"]
        assert isinstance(article["title"], str) and article["title"]
        for key in ("url", "source", "published"):
            assert article[key] is None or isinstance(article[key], str)
    scores = [result["score"] for result in answer["results"]]
    assert scores == sorted(scores, reverse=True)


def test_ask_json_prints_exactly_one_object_of_the_specified_shape(sample_db: Path, runner: CliRunner) -> None:
    result = invoke(runner, "ask", "--json", "--db", str(sample_db), DELEGATION)
    assert result.exit_code == 0
    assert result.stderr == ""
    answer = json.loads(result.stdout)  # raises if anything else is on stdout
    assert_answer_shape(answer)
    assert answer["query"] == DELEGATION and len(answer["results"]) == 3
    best = answer["results"][0]
    assert "Treasury Secretary Becente" in best["text"]
    # The text is that article's passage ¶n.
    shown = json.loads(invoke(runner, "article", "--json", "--db", str(sample_db), best["article"]["id"]).stdout)
    assert shown["passages"][best["passage"] - 1]["text"] == best["text"]


def test_ask_k_limits_the_results(sample_db: Path, runner: CliRunner) -> None:
    for k in ("1", "5"):
        answer = json.loads(invoke(runner, "ask", "--json", "-k", k, "--db", str(sample_db), "rare earth").stdout)
        assert len(answer["results"]) == int(k)


def test_nothing_relevant_is_said_plainly_exit_0(sample_db: Path, runner: CliRunner) -> None:
    text = invoke(runner, "ask", "--db", str(sample_db), NONSENSE)
    assert text.exit_code == 0
    assert f"No passage matches '{NONSENSE}'." in text.stdout
    assert "The corpus never mentions: xyzzy, plugh." in text.stdout
    assert "Try other words" in text.stdout
    answer = json.loads(invoke(runner, "ask", "--json", "--db", str(sample_db), NONSENSE).stdout)
    assert answer["results"] == []
    assert_answer_shape(answer)


def test_notices_go_to_stderr_in_json_mode(sample_db: Path, runner: CliRunner) -> None:
    result = invoke(runner, "ask", "--json", "--db", str(sample_db), "rare earth " * 200)
    assert "shortened" in result.stderr
    assert json.loads(result.stdout)["results"]


def test_queries_file_gives_one_json_line_per_question_loading_the_index_once(
    sample_db: Path, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = []
    original = service_module.SearchService

    class CountingService(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            opened.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(service_module, "SearchService", CountingService)
    questions = [DELEGATION, NONSENSE, "", "When will the London talks be held?", "   "]
    path = tmp_path / "questions.txt"
    path.write_text("\n".join(questions) + "\n", encoding="utf-8")
    result = invoke(runner, "ask", "--json", "--queries", str(path), "--db", str(sample_db))
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["query"] for a in answers] == [DELEGATION, NONSENSE, "When will the London talks be held?"]
    for answer in answers:
        assert_answer_shape(answer)
    assert answers[1]["results"] == []
    assert len(opened) == 1
    text = invoke(runner, "ask", "--queries", str(path), "--db", str(sample_db))
    assert text.exit_code == 0 and text.stdout.count("[1] ") == 2 and "No passage matches" in text.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ask"], 2, "Give a question"),
        (["ask", ""], 2, "Give a question"),
        (["ask", "  \t "], 2, "Give a question"),
        (["ask", "-k", "0", "trade"], 2, "-k"),
        (["ask", "-k", "51", "trade"], 2, "-k"),
        (["ask", "--no-such-option", "trade"], 2, "No such option"),
        (["ask", "--queries", "/no/such/file.txt"], 2, "/no/such/file.txt"),
        (["article"], 2, "Missing argument"),
        (["nosuchcommand"], 2, "No such command"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    sample_db: Path, runner: CliRunner, args: list[str], code: int, message: str
) -> None:
    result = invoke(runner, *args, "--db", str(sample_db)) if args[0] != "nosuchcommand" else invoke(runner, *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


# -- article ---------------------------------------------------------------------------------


def test_article_by_id_shows_metadata_and_every_passage(sample_db: Path, runner: CliRunner) -> None:
    article_id = "000-6b3987004aa82828"
    text = invoke(runner, "article", "--db", str(sample_db), article_id)
    assert text.exit_code == 0
    assert f"id: {article_id}" in text.stdout
    assert "url: https://www.toutiao.com/article/7513089098832298534/" in text.stdout
    assert "passages: 11" in text.stdout and "¶1 " in text.stdout and "¶11 " in text.stdout
    shown = json.loads(invoke(runner, "article", "--json", "--db", str(sample_db), article_id).stdout)
    assert shown["id"] == article_id and shown["passage_count"] == len(shown["passages"]) == 11
    assert [p["passage"] for p in shown["passages"]] == list(range(1, 12))
    assert all(p["end"] - p["start"] == len(p["text"]) for p in shown["passages"])


def test_article_by_words_lists_matching_articles_with_their_ids(sample_db: Path, runner: CliRunner) -> None:
    text = invoke(runner, "article", "--db", str(sample_db), "rare", "earth", "licenses")
    assert text.exit_code == 0
    assert "001-6346928b0b16da65" in text.stdout and "passages)" in text.stdout
    found = json.loads(invoke(runner, "article", "--json", "--db", str(sample_db), "rare earth licenses").stdout)
    assert found["query"] == "rare earth licenses"
    assert {a["id"] for a in found["articles"]} <= {"000-6b3987004aa82828", "001-6346928b0b16da65"}
    assert found["articles"]


def test_unknown_article_id_names_the_closest_ids(sample_db: Path, runner: CliRunner) -> None:
    result = invoke(runner, "article", "--db", str(sample_db), "000-6b39")
    assert result.exit_code == 1
    assert "Did you mean: 000-6b3987004aa82828" in result.output
    found = json.loads(invoke(runner, "article", "--json", "--db", str(sample_db), "000-6b39").stdout)
    assert found["articles"] == [] and found["closest_ids"][0] == "000-6b3987004aa82828"


# -- stats -----------------------------------------------------------------------------------------


def test_stats_json(sample_db: Path, runner: CliRunner) -> None:
    result = invoke(runner, "stats", "--json", "--db", str(sample_db))
    assert result.exit_code == 0
    stats = json.loads(result.stdout)
    assert stats["articles"] == 2 and stats["passages"] == 23
    assert isinstance(stats["vocabulary"], int) and stats["vocabulary"] > 100
    assert isinstance(stats["built_at"], str) and isinstance(stats["build_seconds"], float)
    assert stats["db_path"] == str(sample_db.absolute()) and stats["db_bytes"] > 0
    text = invoke(runner, "stats", "--db", str(sample_db))
    assert "articles:     2" in text.stdout and "passages:     23" in text.stdout


# -- first use --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["ask", "--json", DELEGATION], ["stats", "--json"], ["article", "--json", "000-6b3987004aa82828"]]
)
def test_first_use_indexes_the_bundled_corpus_saying_so_on_stderr(
    fresh_db: Path, runner: CliRunner, args: list[str]
) -> None:
    assert not fresh_db.exists()
    result = invoke(runner, *args, "--db", str(fresh_db))
    assert result.exit_code == 0, result.output
    assert "indexing the bundled sample corpus first" in result.stderr
    assert "Indexed 2 articles" in result.stderr
    json.loads(result.stdout)  # stdout stays pure JSON
    again = invoke(runner, *args, "--db", str(fresh_db))
    assert again.stderr == ""  # only the first time


# -- commands ---------------------------------------------------------------------------------------
# (every command's help and example: test_docs.py; how commands are registered and loaded: test_commands.py)


def test_the_core_and_admin_commands_are_all_there() -> None:
    names = set(cli.list_commands(click.Context(cli)))
    assert {"index", "ask", "article", "stats", "check", "backup"} <= names
