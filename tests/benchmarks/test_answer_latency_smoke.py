"""The answer-latency and answer-parity scripts run on the sample corpus (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import answer_latency, answer_parity
from corpusbot.index.search import service as service_module

QUESTIONS = Path(__file__).parents[1] / "data" / "questions-dev.json"


@pytest.fixture
def questions_file(tmp_path: Path) -> Path:
    path = tmp_path / "questions.txt"
    asked = [item["q"] for item in json.loads(QUESTIONS.read_text(encoding="utf-8"))]
    path.write_text("\n".join([*asked, "when did the leaders call?", "zzzz unknown words"]) + "\n", encoding="utf-8")
    return path


def test_every_stage_is_timed_and_the_stages_add_up_to_the_total(sample_db: Path, questions_file: Path) -> None:
    questions = questions_file.read_text(encoding="utf-8").splitlines()
    timings = answer_latency.measure(sample_db, questions, k=3, rounds=2)
    assert set(timings.stages) == set(answer_latency.STAGES)
    assert all(len(values) == 2 * len(questions) for values in timings.stages.values())
    assert len(timings.core_alone) == 2 * len(questions)
    for i in range(len(questions)):
        parts = sum(timings.stages[stage][i] for stage in answer_latency.STAGES if stage != "total")
        assert parts == pytest.approx(timings.stages["total"][i], abs=1e-6)
    for stage in ("core", "fetch", "rerank", "highlight/near-dups", "total"):
        assert max(timings.stages[stage]) > 0, stage  # each stage's steps were found and wrapped
    assert max(timings.stages["answers"]) > 0  # a when-question looked for dates
    table = answer_latency.table(timings, "smoke")
    assert "| smoke | total |" in table and "| smoke | core alone (TermRanker, top-10) |" in table


def test_the_wrappers_are_taken_off_afterwards(sample_db: Path, questions_file: Path) -> None:
    before = {name: getattr(service_module, name) for _, where, name in answer_latency.HOOKS if where == "module"}
    call = service_module.AnswerFinder.__call__
    answer_latency.measure(sample_db, questions_file.read_text(encoding="utf-8").splitlines()[:2])
    assert {name: getattr(service_module, name) for name in before} == before
    assert service_module.AnswerFinder.__call__ is call


def test_the_command_refuses_a_missing_index_with_the_fix(tmp_path: Path, questions_file: Path, capsys) -> None:
    assert answer_latency.main(["--db", str(tmp_path / "none.db"), "--queries", str(questions_file)]) == 2
    assert "corpusbot index --db" in capsys.readouterr().err


def test_parity_finds_no_difference_between_two_dumps_of_one_index_and_names_a_changed_answer(
    sample_db: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    for out in (first, second):
        assert answer_parity.main(["dump", "--db", str(sample_db), str(QUESTIONS), "--out", str(out)]) == 0
    assert answer_parity.main(["diff", str(first), str(second)]) == 0
    records = [json.loads(line) for line in first.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(json.loads(QUESTIONS.read_text(encoding="utf-8")))
    assert all(len(record["pages"]) == answer_parity.PAGES for record in records)
    records[3]["pages"][0]["results"][0]["score"] += 1e-12  # the last bit of one score
    second.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    problems = answer_parity.diff(first, second)
    assert len(problems) == 1 and "#3" in problems[0] and ".pages[0].results[0].score" in problems[0]
    assert answer_parity.main(["diff", str(first), str(second)]) == 1
