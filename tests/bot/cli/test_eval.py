"""``corpusbot eval``: the text table, the --json contract and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpusbot.bot.cli import cli
from corpusbot.index.engine.bm25 import BM25Params
from corpusbot.index.maintenance.evaluate import evaluate_beir
from tests.support import DEV_QUESTIONS
from tests.support.beir import FILLER, write_beir

DEV_QUESTIONS = str(DEV_QUESTIONS)


def test_questions_json_contract(runner: CliRunner, fresh_db: Path) -> None:
    result = runner.invoke(cli, ["eval", DEV_QUESTIONS, "--json", "--db", str(fresh_db)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # one JSON object; notes about indexing go to stderr
    payload = json.loads(lines[0])
    assert payload["mode"] == "questions"
    assert payload["questions"] == 12
    assert 0.0 <= payload["hit_at_1"] <= payload["hit_at_3"] <= 1.0
    assert 0.0 <= payload["mrr_at_10"] <= 1.0
    assert len(payload["misses"]) == round((1 - payload["hit_at_1"]) * 12)
    assert "indexing the bundled sample corpus" in result.stderr


def test_questions_table_lists_each_miss_with_what_came_back(
    runner: CliRunner, sample_db: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "q.json"
    questions.write_text(
        json.dumps(
            [
                {"q": "rare earth licenses six months", "expect_any": ["six months"]},
                {"q": "rare earth magnets", "expect_any": ["zebra crossing"]},
            ]
        ),
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["eval", str(questions), "--db", str(sample_db)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "hit@1      0.500  (1/2)" in out
    assert "MRR@10     0.500" in out
    assert "- rare earth magnets" in out
    assert 'expected any of: "zebra crossing" (no hit in the top 10)' in out
    assert "[1] " in out and "[3] " in out  # ranks 1-3 of the miss are shown
    assert "- rare earth licenses six months" not in out  # a hit at rank 1 is not a miss


def test_beir_json_contract(runner: CliRunner, tmp_path: Path) -> None:
    docs = {**FILLER, "kelp": ("Kelp", "Sea otters float in kelp forests."), "reef": ("Reef", "Coral reef fish.")}
    root = write_beir(
        tmp_path / "mini", docs, {"1": "otters kelp", "2": "coral reef"}, [("1", "kelp", 1), ("2", "reef", 2)]
    )
    result = runner.invoke(cli, ["eval", "--beir", str(root), "--json", "--k1", "1.2", "--b", "0.5"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    expected = evaluate_beir(root, params=BM25Params(k1=1.2, b=0.5)).to_json()
    for key in ("ndcg_at_10", "recall_at_100", "mrr_at_10", "queries", "documents", "passages", "bm25"):
        assert payload[key] == expected[key], key
    assert payload["mode"] == "beir"
    assert payload["bm25"] == {"k1": 1.2, "b": 0.5, "epsilon": 0.25}
    assert payload["ndcg_at_10"] == 1.0
    assert "Indexing " in result.stderr


def test_beir_table(runner: CliRunner, tmp_path: Path) -> None:
    root = write_beir(tmp_path / "t", FILLER, {"1": "sourdough loaves", "2": "chess"}, [("1", "f0", 1), ("2", "f1", 1)])
    result = runner.invoke(cli, ["eval", "--beir", str(root)])
    assert result.exit_code == 0, result.output
    assert "nDCG@10     0.5000" in result.stdout  # q1 finds f0 first; q2 never finds f1
    assert "Recall@100  0.5000" in result.stdout
    assert "MRR@10      0.5000" in result.stdout
    assert "queries with no relevant document in the top 10: 1" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Give a questions file or --beir DIR"),
        (["q.json", "--beir", "somewhere"], "Give a questions file or --beir DIR"),
        (["q.json", "--k1", "1.2"], "--k1 and --b set the BM25 parameters of the temporary --beir index"),
    ],
)
def test_usage_errors(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(cli, ["eval", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_and_malformed_files_are_clean_errors(runner: CliRunner, tmp_path: Path, sample_db: Path) -> None:
    missing = runner.invoke(cli, ["eval", str(tmp_path / "nope.json"), "--db", str(sample_db)])
    assert missing.exit_code == 1
    assert "No questions file at" in missing.output
    bad = tmp_path / "bad.json"
    bad.write_text('[{"q": "x", "expect_any": ["y"],}]', encoding="utf-8")
    malformed = runner.invoke(cli, ["eval", str(bad), "--db", str(sample_db)])
    assert malformed.exit_code == 1
    assert "is not valid JSON" in malformed.output
    assert missing.exception is None or isinstance(missing.exception, SystemExit)


def test_beir_folder_without_qrels_is_a_clean_error(runner: CliRunner, tmp_path: Path) -> None:
    root = write_beir(tmp_path / "noqrels", FILLER, {"1": "chess"}, [("1", "f4", 1)])
    (root / "qrels" / "test.tsv").unlink()
    result = runner.invoke(cli, ["eval", "--beir", str(root)])
    assert result.exit_code == 1
    assert "qrels/test.tsv is missing" in result.output
    assert "Traceback" not in result.output
    other_split = runner.invoke(cli, ["eval", "--beir", str(root), "--split", "dev"])
    assert "qrels/dev.tsv is missing" in other_split.output
