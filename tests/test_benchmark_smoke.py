"""The benchmark runs end to end on a tiny corpus (no timing assertions; peers not installed are skipped)."""

from __future__ import annotations

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
