"""Attacks on the citation details remembered per index generation (``SearchService._known_articles``).

Each test builds real index files; the articles are JSONL records so that their titles and URLs are known.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.models import ArticleInfo
from corpusbot.index.search import service as service_module

FILLER = (
    "The harbour board said the figures would be published later in the month. Analysts expected little change in "
    "the weeks ahead, and markets were calm on the news. Officials declined to comment further on the timetable."
)
# What each harbour article is about besides the cranes (so that no two are near-duplicates), and two articles
# about something else (so that the harbour words are in fewer than half the passages).
TOPICS = [
    "A ferry timetable for the winter was agreed with the island councils",
    "Fishermen protested against new quotas for cod and haddock",
    "A container ship ran aground on a sandbank near the lighthouse",
    "Dredging of the eastern channel will begin after the storm season",
    "The customs office hired twelve inspectors to clear a backlog of cargo",
    "A museum of maritime history opened in the old warehouse by the docks",
]
OTHERS = [f"Weather report {day}: rain in the hills and sun on the plains." for day in range(10)]


def write_articles(folder: Path, count: int, url: str = "https://news.example/{}") -> Path:
    """``count`` (up to 6) articles about harbour cranes, titled "Harbour report N", and ten others, in a JSONL file."""
    folder.mkdir(exist_ok=True)
    records = [
        {
            "id": f"harbour-{number}",
            "title": f"Harbour report {number}",
            "text": f"Harbour cranes were repaired this week. {TOPICS[number]}. {FILLER}",
            "url": url.format(number),
        }
        for number in range(count)
    ]
    records += [{"id": f"other-{number}", "title": "Elsewhere", "text": text} for number, text in enumerate(OTHERS)]
    (folder / "harbour.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return folder


def stored_articles(db: Path) -> dict[str, ArticleInfo]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, title, url, source, published FROM articles").fetchall()
    return {row[0]: ArticleInfo(*row) for row in rows}


@pytest.fixture
def harbour_db(tmp_path: Path) -> Path:
    db = tmp_path / "harbour.db"
    index_corpus(db, [str(write_articles(tmp_path / "corpus", 6))])
    return db


def test_find_articles_and_watches_remember_no_more_articles_than_the_bound(
    harbour_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup of more articles than MAX_KNOWN_ARTICLES (every title matches; a reindex makes all new) answers in
    full but remembers at most the bound: at 1M articles one watch check after `--full` kept them all."""
    monkeypatch.setattr(service_module, "MAX_KNOWN_ARTICLES", 2)
    service = SearchService(harbour_db)
    try:
        found = service.find_articles("harbour", limit=10)
        assert sorted(match.article.id for match in found) == [f"harbour-{n}" for n in range(6)]
        assert len(service._known_articles) <= 2
        watched = service.watch_matches(["harbour cranes repaired"], None).matches[0]
        assert {match.article.id for match in watched} == {f"harbour-{n}" for n in range(6)}
        assert len(service._known_articles) <= 2
        articles = stored_articles(harbour_db)
        assert all(match.article == articles[match.article.id] for match in [*found, *watched])
    finally:
        service.close()


def test_every_page_cites_the_articles_the_file_holds(harbour_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages past the rerank window, with few articles remembered, cite the rows of the file now."""
    monkeypatch.setattr(service_module, "MAX_KNOWN_ARTICLES", 1)
    monkeypatch.setattr(service_module, "RERANK_DEPTH", 2)
    service = SearchService(harbour_db)
    try:
        articles = stored_articles(harbour_db)
        cited = []
        for offset in range(0, 8, 2):
            for hit in service.ask("harbour cranes repaired", k=2, offset=offset, explain=True).hits:
                assert hit.article == articles[hit.passage.article_id]
                cited.append(hit.article.id)
        assert len(set(cited)) == 6
    finally:
        service.close()


@pytest.mark.parametrize("how", ["copied in place", "renamed over"])
def test_another_index_at_the_path_is_cited_with_its_own_details(tmp_path: Path, harbour_db: Path, how: str) -> None:
    """The same article ids with other URLs, in an index of the same generation put at the path: its URLs are shown
    (the remembered ones belong to the index read before)."""
    other = tmp_path / "other.db"
    index_corpus(other, [str(write_articles(tmp_path / "other-corpus", 6, url="https://mirror.example/{}"))])
    service = SearchService(harbour_db)
    try:
        assert all("news.example" in (hit.article.url or "") for hit in service.ask("harbour cranes", k=6).hits)
        if how == "copied in place":
            with open(other, "rb") as source, open(harbour_db, "r+b") as target:
                shutil.copyfileobj(source, target)
                target.truncate()
        else:
            os.replace(other, harbour_db)
        hits = service.ask("harbour cranes", k=6).hits
        assert hits and all("mirror.example" in (hit.article.url or "") for hit in hits)
        looked_up = [service.article(hit.article.id) for hit in hits]  # `corpusbot article`
        assert all(found is not None and found[0] == hit.article for found, hit in zip(looked_up, hits, strict=True))
    finally:
        service.close()


def test_a_watch_on_a_damaged_index_cites_an_article_without_its_row_by_id(harbour_db: Path) -> None:
    """As an answer does: a passage whose article row is gone is a watch match cited by its id, not a KeyError."""
    with sqlite3.connect(harbour_db) as conn:
        conn.execute("DELETE FROM articles WHERE id = 'harbour-3'")
    service = SearchService(harbour_db)
    try:
        watched = service.watch_matches(["harbour cranes repaired"], None).matches[0]
        orphan = [match for match in watched if match.passage.article_id == "harbour-3"]
        assert orphan and orphan[0].article == ArticleInfo("harbour-3", "harbour-3", None, None, None)
        assert {match.article.title for match in watched} >= {"harbour-3", "Harbour report 2"}
    finally:
        service.close()
