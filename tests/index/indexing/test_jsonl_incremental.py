"""Editing some articles inside a big JSONL file reindexes only those articles."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from corpusbot.index import SearchService, index_corpus

FILLER = "Analysts said the figures were broadly in line with expectations for the quarter. " * 3


def write_jsonl(path: Path, articles: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(a) + "\n" for a in articles), encoding="utf-8")


def passage_ids(db: Path) -> dict[str, list[int]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT article_id, id FROM passages ORDER BY id").fetchall()
    found: dict[str, list[int]] = {}
    for article_id, pid in rows:
        found.setdefault(article_id, []).append(pid)
    return found


def articles(n: int) -> list[dict[str, str]]:
    return [
        {"id": f"a{i}", "title": f"Report {i}", "text": f"Item {i} about copper exports. " + FILLER} for i in range(n)
    ]


@pytest.fixture
def indexed_jsonl(tmp_path: Path) -> tuple[Path, Path, list[dict[str, str]]]:
    """(corpus folder, database, its articles): six articles in one JSONL file, indexed."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    db = tmp_path / "index.db"
    items = articles(6)
    write_jsonl(corpus / "news.jsonl", items)
    index_corpus(db, [str(corpus)])
    return corpus, db, items


def test_only_the_edited_articles_of_a_jsonl_file_are_reindexed(indexed_jsonl, tmp_path: Path) -> None:
    corpus, db, items = indexed_jsonl
    before = passage_ids(db)

    items[2] = {**items[2], "text": "Item 2 now reports nickel shortages in Indonesia. " + FILLER}
    items.insert(0, items.pop(5))  # a moved line is still the same article
    write_jsonl(corpus / "news.jsonl", items)
    summary = index_corpus(db)
    after = passage_ids(db)

    assert summary.updated == [str(corpus / "news.jsonl")]
    assert {k: v for k, v in after.items() if k != "a2"} == {k: v for k, v in before.items() if k != "a2"}
    assert after["a2"] != before["a2"]
    service = SearchService(db)
    assert service.ask("nickel shortages").hits[0].article.id == "a2"
    assert service.ask("copper exports", k=10).hits  # the untouched articles still answer
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT path FROM articles WHERE id = 'a5'").fetchone()[0].endswith("news.jsonl:1")
    service.close()

    full = tmp_path / "full.db"
    index_corpus(full, [str(corpus)], full=True)
    fresh = SearchService(full)
    incremental = SearchService(db)
    for question in ("nickel shortages", "copper exports", "Report 3"):
        # Equal scores; which of two tied passages comes first depends on passage ids, which differ.
        got = sorted(round(h.score, 9) for h in incremental.ask(question, k=10).hits)
        want = sorted(round(h.score, 9) for h in fresh.ask(question, k=10).hits)
        assert got == want


def test_a_jsonl_change_that_keeps_every_article_is_recorded(indexed_jsonl) -> None:
    corpus, db, _ = indexed_jsonl
    before = passage_ids(db)
    (corpus / "news.jsonl").write_text((corpus / "news.jsonl").read_text() + "\n\n", encoding="utf-8")
    assert index_corpus(db).updated == [str(corpus / "news.jsonl")]
    assert passage_ids(db) == before
    assert index_corpus(db).unchanged == [str(corpus / "news.jsonl")]  # the new hash was stored
