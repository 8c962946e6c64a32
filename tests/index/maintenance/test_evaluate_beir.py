"""BEIR evaluation: trec_eval metrics on hand-made runs, and tiny BEIR collections end to end."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest

from corpusbot.index import CorpusbotError, SearchService, index_corpus
from corpusbot.index.engine.bm25 import BM25Params
from corpusbot.index.maintenance.evaluate import evaluate_beir, load_beir, rank_documents, trec_metrics
from tests.support.beir import FILLER, write_beir


def test_ndcg_recall_and_mrr_match_hand_computed_values() -> None:
    qrels = {
        "q1": {"A": 2, "B": 1, "C": 0},
        "q2": {"D": 1},
        "q3": {"E": 1},  # judged, but nothing retrieved: counts as 0
    }
    run = {
        "q1": {"B": 3.0, "X": 2.0, "A": 1.0},  # B (grade 1) at 1, A (grade 2) at 3
        "q2": {"X": 3.0, "Y": 2.0, "D": 1.0},  # D at rank 3
        "q9": {"A": 1.0},  # not judged: ignored
    }
    means, per_query = trec_metrics(qrels, run)

    # trec_eval's nDCG: gain = grade, discount log2(rank + 1), ideal ordering from the qrels.
    q1_ndcg = (1 / math.log2(2) + 2 / math.log2(4)) / (2 / math.log2(2) + 1 / math.log2(3))
    q2_ndcg = (1 / math.log2(4)) / 1
    assert per_query["q1"]["nDCG@10"] == pytest.approx(q1_ndcg)
    assert per_query["q2"]["nDCG@10"] == pytest.approx(q2_ndcg)
    assert per_query["q3"] == {"nDCG@10": 0.0, "R@100": 0.0, "RR@10": 0.0}
    assert set(per_query) == {"q1", "q2", "q3"}
    assert means["nDCG@10"] == pytest.approx((q1_ndcg + q2_ndcg) / 3)
    assert means["RR@10"] == pytest.approx((1 + 1 / 3) / 3)
    assert means["R@100"] == pytest.approx(2 / 3)


def test_cutoffs_are_applied() -> None:
    qrels = {"q": {"rel": 1, "rel2": 1}}
    # One relevant document at rank 11 (outside @10), the other at rank 101 (outside @100).
    ranked = [f"n{i}" for i in range(10)] + ["rel"] + [f"m{i}" for i in range(90)] + ["rel2"]
    run = {"q": {doc: float(len(ranked) - i) for i, doc in enumerate(ranked)}}
    means, _ = trec_metrics(qrels, run)
    assert means["nDCG@10"] == 0.0
    assert means["RR@10"] == 0.0
    assert means["R@100"] == pytest.approx(0.5)


def test_end_to_end_ndcg_on_a_tiny_collection(tmp_path: Path) -> None:
    docs = {
        **FILLER,
        "hot": ("Volcanoes", "The volcano eruption sent ash over the town; the volcano eruption lasted days."),
        "warm": ("Geology", "A dormant volcano can sleep for centuries before anyone notices."),
        "penguin": ("Birds", "Emperor penguins huddle together through the antarctic winter."),
    }
    queries = {"1": "volcano eruption", "2": "emperor penguins antarctic", "3": "unrelated question", "99": "x"}
    qrels = [("1", "warm", 2), ("1", "hot", 0), ("2", "penguin", 1), ("3", "f1", 1)]
    report = evaluate_beir(write_beir(tmp_path / "tiny", docs, queries, qrels))

    # q1: "hot" (both words, judged 0) ranks first, "warm" (grade 2) second -> nDCG = (2/log2 3) / 2.
    assert report.per_query["1"]["nDCG@10"] == pytest.approx(1 / math.log2(3))
    assert report.per_query["1"]["RR@10"] == pytest.approx(0.5)
    assert report.per_query["2"] == {"nDCG@10": 1.0, "R@100": 1.0, "RR@10": 1.0}
    assert report.per_query["3"] == {"nDCG@10": 0.0, "R@100": 0.0, "RR@10": 0.0}
    assert report.queries == 3  # query 99 has no judgments
    assert report.documents == len(docs)
    assert report.ndcg_at_10 == pytest.approx((1 / math.log2(3) + 1.0) / 3)
    assert report.mrr_at_10 == pytest.approx((0.5 + 1.0) / 3)
    assert report.recall_at_100 == pytest.approx(2 / 3)
    assert report.queries_without_relevant_in_top_10 == 1
    payload = report.to_json()
    assert payload["ndcg_at_10"] == report.ndcg_at_10
    assert payload["bm25"] == {"k1": 1.5, "b": 0.75, "epsilon": 0.25}


def test_a_document_ranks_where_its_best_passage_ranks(tmp_path: Path) -> None:
    # "long" has three paragraph passages; only its last one mentions the query words.
    paragraph = "Committee minutes record routine business about budgets, rooms, catering and schedules. " * 5
    long_text = f"{paragraph}\n\n{paragraph}\n\nThe glacier retreat measured by satellites doubled this decade."
    docs = {
        **FILLER,
        "long": ("Minutes", long_text),
        "short": ("Ice", "A glacier is slow ice that flows downhill under its own weight."),
    }
    root = write_beir(tmp_path / "agg", docs, {"1": "glacier retreat satellites"}, [("1", "long", 1)])
    report = evaluate_beir(root)
    assert report.passages > report.documents  # "long" really was split
    assert report.per_query["1"]["RR@10"] == 1.0


def test_rank_documents_matches_grouping_all_passages(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    words = ["river", "delta", "silt", "flood", "bank", "levee", "current", "estuary"]
    with corpus.open("w", encoding="utf-8") as handle:
        for i in range(60):
            picked = " ".join(words[(i + j) % len(words)] for j in range(1 + i % 5))
            padding = " ".join(f"note{i}x{j}" for j in range(40))  # 40+ words: each paragraph is a passage
            text = f"Report {i}: {picked} {padding}.\n\nSecond part {i}: {words[i % len(words)]} {padding}."
            handle.write(json.dumps({"_id": f"d{i}", "text": text}) + "\n")
    db = tmp_path / "rank.db"
    index_corpus(db, [str(corpus)])
    service = SearchService(db)
    try:
        assert service.stats().passages == 120
        query = "river delta silt flood"
        expected: dict[str, float] = {}
        for article_id, _, score in service.rank(query, 10_000):
            expected.setdefault(article_id, score)
        for docs in (1, 5, 30, 200):
            got = rank_documents(service, query, docs=docs)
            assert list(got.items()) == list(expected.items())[:docs]
    finally:
        service.close()


def test_bm25_parameters_reach_the_temporary_index(tmp_path: Path) -> None:
    docs = {**FILLER, "a": ("A", "otters play in the kelp forest"), "b": ("B", "kelp grows fast")}
    root = write_beir(tmp_path / "params", docs, {"1": "otters kelp"}, [("1", "a", 1)])
    report = evaluate_beir(root, params=BM25Params(k1=0.9, b=0.4))
    assert report.params == BM25Params(k1=0.9, b=0.4)
    assert report.to_json()["bm25"] == {"k1": 0.9, "b": 0.4, "epsilon": 0.25}


def test_progress_and_status_are_reported(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "p", {**FILLER}, {"1": "sourdough", "2": "symphony"}, [("1", "f0", 1), ("2", "f1", 1)])
    seen: list[tuple[int, str]] = []
    messages: list[str] = []

    def progress(items, length, label):
        seen.append((length, label))
        yield from items

    evaluate_beir(root, progress=progress, status=messages.append)
    assert seen == [(2, "Queries")]
    assert any(message.startswith("Indexing ") for message in messages)
    assert any(message.startswith("Indexed 6 documents") for message in messages)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("no-dir", "No BEIR folder"),
        ("no-qrels", "qrels/test.tsv is missing"),
        ("no-corpus", "corpus.jsonl is missing"),
        ("bad-qrels", "line 2: expected 'query-id<TAB>corpus-id<TAB>score'"),
        ("bad-queries", "queries.jsonl, line 1"),
        ("unknown-query", "does not have (7)"),
        ("empty-qrels", "holds no judgments"),
    ],
)
def test_bad_beir_folders_explain_the_fix(tmp_path: Path, layout: str, message: str) -> None:
    root = write_beir(tmp_path / "b", FILLER, {"1": "sourdough"}, [("1", "f0", 1)])
    qrels = root / "qrels" / "test.tsv"
    if layout == "no-dir":
        root = tmp_path / "missing"
    elif layout == "no-qrels":
        qrels.unlink()
    elif layout == "no-corpus":
        (root / "corpus.jsonl").unlink()
    elif layout == "bad-qrels":
        qrels.write_text("query-id\tcorpus-id\tscore\n1\tf0\thigh\n", encoding="utf-8")
    elif layout == "bad-queries":
        (root / "queries.jsonl").write_text("{not json\n", encoding="utf-8")
    elif layout == "unknown-query":
        qrels.write_text("query-id\tcorpus-id\tscore\n7\tf0\t1\n", encoding="utf-8")
    elif layout == "empty-qrels":
        qrels.write_text("query-id\tcorpus-id\tscore\n", encoding="utf-8")
    with pytest.raises(CorpusbotError, match=re.escape(message)):
        load_beir(root)


def test_a_corpus_without_usable_documents_is_an_error(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "e", {}, {"1": "anything"}, [("1", "d", 1)])
    (root / "corpus.jsonl").write_text('{"_id": "d", "title": "only a title"}\n', encoding="utf-8")
    with pytest.raises(CorpusbotError, match="gave no documents to index"):
        evaluate_beir(root)


def test_rank_documents_looks_past_collapsed_near_duplicates(tmp_path: Path) -> None:
    # Twenty-five copies of one story lead the ranking; the service collapses them into one passage, so a
    # batch of passages comes back shorter than asked although more documents match further down.
    corpus = tmp_path / "corpus.jsonl"
    rng = random.Random(5)
    story = "River delta silt and flood levees: the estuary survey of the river delta silt, season after season."
    with corpus.open("w", encoding="utf-8") as handle:
        for i in range(25):
            handle.write(json.dumps({"_id": f"copy{i:02d}", "text": story}) + "\n")
        for i in range(60):  # distinct random words: these passages are not near-duplicates of each other
            words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7)) for _ in range(30)]
            other = "The river rose. " + " ".join(words) if i < 30 else " ".join(words)
            handle.write(json.dumps({"_id": f"other{i:02d}", "text": other}) + "\n")
    db = tmp_path / "dups.db"
    index_corpus(db, [str(corpus)])
    service = SearchService(db)
    try:
        assert len(service.rank("river delta silt", 20)) < 20  # the copies were collapsed
        got = rank_documents(service, "river delta silt", docs=10)
        first, *rest = got
        assert first == "copy00" and len(rest) == 9
        assert all(doc.startswith("other") for doc in rest)
    finally:
        service.close()
