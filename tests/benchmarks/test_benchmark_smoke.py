"""The benchmark runs end to end on a tiny corpus (no timing assertions; peers not installed are skipped)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from benchmarks import run
from benchmarks.corpus import generate, read_passages


def test_generated_corpus_has_question_like_queries_and_passages(tmp_path: Path) -> None:
    corpus = generate(tmp_path, 300, 30, seed=1)
    assert len(corpus.passages) == 300 == len(read_passages(corpus.folder))
    assert all(60 <= len(p.split()) <= 100 for p in corpus.passages)
    assert len(corpus.queries) == 30 and all(2 <= len(q.split()) <= 6 for q in corpus.queries)
    again = generate(tmp_path, 300, 30, seed=1)  # reused, not regenerated
    assert again.passages == corpus.passages and again.queries == corpus.queries


def test_benchmark_runs_and_corpusbot_matches_rank_bm25(tmp_path: Path) -> None:
    engines = "corpusbot,corpusbot-service,sqlite-fts5,rank-bm25,tantivy"
    code = run.main(
        ["--sizes", "2000", "--engines", engines, "--queries", "25", "--data", str(tmp_path), "--out", str(tmp_path)]
    )
    assert code == 0
    result = json.loads((tmp_path / f"{run.label(2000)}.json").read_text())
    corpusbot = result["engines"]["corpusbot"]
    assert corpusbot["build"]["passages"] == 2000
    assert corpusbot["query"]["identical_top10"] == 25  # exact BM25Okapi, ties aside
    for name in ("corpusbot", "sqlite-fts5", "rank-bm25"):
        query = result["engines"][name]["query"]
        assert len(query["latencies_ms"]) == 25 and query["p50_ms"] > 0 and query["peak_rss_mb"] > 0
    report = (tmp_path / f"report-{run.label(2000)}.md").read_text()
    assert "| corpusbot |" in report and "Ratios vs the fastest peer" in report


def test_an_interrupted_run_keeps_what_it_measured_and_resumes(tmp_path: Path, monkeypatch) -> None:
    common = ["--sizes", "1500", "--queries", "12", "--data", str(tmp_path), "--out", str(tmp_path)]
    result_file = tmp_path / f"{run.label(1500)}.json"
    real_query = run._query

    def crash_on_fts5(name, *args, **kwargs):
        if name == "sqlite-fts5":
            raise KeyboardInterrupt  # as if the run were stopped here
        return real_query(name, *args, **kwargs)

    monkeypatch.setattr(run, "_query", crash_on_fts5)
    with contextlib.suppress(KeyboardInterrupt):
        run.main([*common, "--engines", "corpusbot,sqlite-fts5,rank-bm25"])
    saved = json.loads(result_file.read_text())
    assert "query" in saved["engines"]["corpusbot"]  # written before the run stopped
    assert "query" not in saved["engines"].get("sqlite-fts5", {})
    first_measured = saved["engines"]["corpusbot"]["measured_at"]
    first_latencies = saved["engines"]["corpusbot"]["query"]["latencies_ms"]

    monkeypatch.setattr(run, "_query", real_query)
    assert run.main([*common, "--engines", "corpusbot,sqlite-fts5,rank-bm25", "--resume"]) == 0
    resumed = json.loads(result_file.read_text())
    corpusbot = resumed["engines"]["corpusbot"]
    assert corpusbot["measured_at"] == first_measured and corpusbot["query"]["latencies_ms"] == first_latencies
    assert corpusbot["query"]["identical_top10"] == 12  # scored against rank-bm25, measured after the resume
    assert "query" in resumed["engines"]["sqlite-fts5"]

    assert run.main([*common, "--engines", "corpusbot,sqlite-fts5,rank-bm25", "--resume", "--redo", "corpusbot"]) == 0
    redone = json.loads(result_file.read_text())
    assert redone["engines"]["corpusbot"]["query"]["latencies_ms"] != first_latencies
    assert redone["engines"]["corpusbot"]["query"]["identical_top10"] == 12
    assert redone["engines"]["sqlite-fts5"] == resumed["engines"]["sqlite-fts5"]


def test_reindex_step_times_incremental_and_full_and_checks_they_agree(tmp_path: Path) -> None:
    where = ["--data", str(tmp_path), "--out", str(tmp_path)]
    code = run.main(["--sizes", "1500", "--engines", "corpusbot-reindex", "--queries", "10", *where])
    assert code == 0
    reindex = json.loads((tmp_path / f"{run.label(1500)}.json").read_text())["reindex"]
    assert reindex["changed_articles"] >= 1 and 0.005 < reindex["changed_share"] < 0.02
    assert [s["name"] for s in reindex["scenarios"]] == ["separate-files", "in-place"]
    for scenario in reindex["scenarios"]:
        assert scenario["incremental_s"] > 0 and scenario["full_s"] > 0
        assert scenario["identical_top10"] == scenario["queries"] == 10
        assert scenario["files_changed"] >= 1
    report = (tmp_path / f"report-{run.label(1500)}.md").read_text()
    assert "Incremental reindex" in report and "| separate-files" in report
