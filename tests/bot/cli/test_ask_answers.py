"""``corpusbot ask``: the answer line, what a question asks about an article, follow-ups (--after); eval's new lines."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from corpusbot.bot.cli import cli
from tests.support import DATA

DELEGATION = "who is on the US delegation?"
MEMBERS = "Treasury Secretary Becente, Commerce Secretary Lutnik and Trade Representative Greer"


def test_the_answer_line_comes_first_with_its_citation(runner: CliRunner, sample_db: Path) -> None:
    result = runner.invoke(cli, ["ask", "--db", str(sample_db), DELEGATION])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Answer: {MEMBERS}"
    assert lines[1].startswith("    — from [1]: ") and "¶2" in lines[1]
    assert lines[3].startswith("[1] ")


def test_json_has_answer_about_and_context(runner: CliRunner, sample_db: Path) -> None:
    result = runner.invoke(cli, ["ask", "--json", "--db", str(sample_db), DELEGATION])
    payload = json.loads(result.stdout)
    assert payload["answer"]["text"] == MEMBERS
    assert payload["answer"]["type"] == "person"
    assert payload["about"] == [] and payload["context"] is None
    result = runner.invoke(cli, ["ask", "--json", "--db", str(sample_db), "link to the original article"])
    payload = json.loads(result.stdout)
    assert payload["answer"] is None
    assert payload["about"][0]["values"] == {"url": "https://www.toutiao.com/article/7513089098832298534/"}


def test_a_question_about_an_article_is_answered_from_its_metadata(runner: CliRunner, sample_db: Path) -> None:
    result = runner.invoke(cli, ["ask", "--db", str(sample_db), "link to the original article"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "Original article: https://www.toutiao.com/article/7513089098832298534/"
    result = runner.invoke(cli, ["ask", "--db", str(sample_db), "who wrote the article about the Treasury Secretary?"])
    assert result.output.splitlines()[0] == "Author: (not recorded for this article)"


def test_after_reads_the_question_as_a_follow_up_and_explain_says_so(runner: CliRunner, sample_db: Path) -> None:
    args = ["ask", "--db", str(sample_db), "--explain", "--after", "when are the london talks?"]
    result = runner.invoke(cli, [*args, "and who's in the delegation?"])
    assert result.exit_code == 0, result.output
    assert "Treasury Secretary Becente" in result.output
    assert "(earlier question, weight 0.3)" in result.output
    result = runner.invoke(cli, [*args, "and who's going?"])  # filler only: the earlier words in full
    assert "Treasury Secretary Becente" in result.output
    assert "(earlier question, weight 1)" in result.output
    result = runner.invoke(cli, ["ask", "--json", "--db", str(sample_db), "--after", "who?", "and when?"])
    assert json.loads(result.stdout)["context"] == "who?"


def test_after_applies_to_every_line_of_queries(runner: CliRunner, sample_db: Path, tmp_path: Path) -> None:
    queries = tmp_path / "q.txt"
    queries.write_text("and who's going?\nhow long are they valid?\n", encoding="utf-8")
    args = ["ask", "--json", "--db", str(sample_db), "--after", "when are the london talks?", "--queries", str(queries)]
    result = runner.invoke(cli, args)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["context"] for line in lines] == ["when are the london talks?"] * 2


def test_eval_prints_flagged_share_and_answer_line_figures(runner: CliRunner, sample_db: Path) -> None:
    result = runner.invoke(cli, ["eval", str(DATA / "questions-slack.json"), "--db", str(sample_db)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "(13 unanswerable)" in out.splitlines()[0]
    assert "unanswerable flagged  1.000  (13/13)" in out
    assert "answer line precision  1.000" in out
    assert "answer line coverage" in out and "answer exact match" in out
    assert "Unanswerable but answered" not in out  # the section listing them is left out when there are none
    result = runner.invoke(cli, ["eval", str(DATA / "questions-slack.json"), "--json", "--db", str(sample_db)])
    payload = json.loads(result.stdout)
    assert payload["unanswerable"] == 13 and payload["answer_precision"] == 1.0
