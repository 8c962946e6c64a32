"""The end-to-end indexing engine (`corpusbot index` as users run it) runs in the benchmark (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.corpus import generate
from benchmarks.engines import ENGINES


def test_cli_build_indexes_every_passage_and_is_queried_and_reported(tmp_path: Path) -> None:
    where = ["--data", str(tmp_path), "--out", str(tmp_path), "--queries", "10"]
    assert run.main(["--sizes", "1500", "--engines", "corpusbot-cli,sqlite-fts5", *where]) == 0
    result = json.loads((tmp_path / f"{run.label(1500)}.json").read_text())
    cli = result["engines"]["corpusbot-cli"]
    assert cli["build"]["passages"] == 1500
    # Wall time of the whole command, so at least what the command says its indexing took.
    assert cli["build"]["build_s"] >= cli["build"]["command_reported_s"] > 0
    assert max(cli["build"]["peak_rss_mb"], cli["build"]["worker_peak_rss_mb"]) > 0
    assert len(cli["query"]["latencies_ms"]) == 10 and all(cli["query"]["tops"])
    report = (tmp_path / f"report-{run.label(1500)}.md").read_text()
    assert "| corpusbot-cli |" in report


def test_cli_build_says_why_when_the_command_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"exited with 1:\nError: No such folder or file"):
        ENGINES["corpusbot-cli"].build(tmp_path / "missing", None, tmp_path / "index")


def test_cli_build_refuses_a_passage_count_other_than_the_corpus(tmp_path: Path) -> None:
    corpus = generate(tmp_path / "corpus", 300, 5, seed=3)
    info = corpus.folder.parent / "corpus.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "passages": 301}))
    with pytest.raises(RuntimeError, match="made 300 passages, the corpus has 301"):
        ENGINES["corpusbot-cli"].build(corpus.folder, None, tmp_path / "index")
