"""Ranking choices of the search service: repeated question words, letter/digit forms, stale indexes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from corpusbot.index import SearchService, index_corpus

FILLER = "Officials met on Tuesday to discuss shipping schedules, harbour fees and several other routine matters. " * 2
OTHERS = {f"other{i}.txt": f"Story {i}. " + FILLER for i in range(4)}


@pytest.fixture
def make_service(tmp_path: Path):
    services: list[SearchService] = []

    def make(articles: dict[str, str]) -> SearchService:
        folder = tmp_path / f"corpus{len(services)}"
        folder.mkdir()
        for name, text in articles.items():
            (folder / name).write_text(text, encoding="utf-8")
        db = tmp_path / f"db{len(services)}.db"
        index_corpus(db, [str(folder)])
        service = SearchService(db)
        services.append(service)
        return service

    yield make
    for service in services:
        service.close()


def test_a_repeated_question_word_counts_once(make_service) -> None:
    service = make_service(
        {
            "a.txt": "Steel tariffs were raised on Monday. " + FILLER,
            "b.txt": "Tariffs on grain and tariffs on fruit were discussed. " + FILLER,
            **OTHERS,
        }
    )
    once = service.ask("steel tariffs", k=5, explain=True)
    twice = service.ask("tariffs on steel, and which tariffs?", k=5, explain=True)
    assert [(h.passage.id, h.score) for h in twice.hits] == [(h.passage.id, h.score) for h in once.hits]
    assert [part.term for part in twice.hits[0].explanation].count("tariff") == 1


def test_a_name_written_without_its_hyphen_finds_the_hyphenated_form(make_service) -> None:
    # Both passages match "patients" and "raised"; only the second names IL-6. Before letters and digits were
    # split, "IL6" was an unknown word and the tie went to the first article.
    service = make_service(
        {
            "a.txt": "Patients showed raised cortisol after the operation. " + FILLER,
            "b.txt": "Patients showed raised IL-6 after the operation. " + FILLER,
            **OTHERS,
        }
    )
    answer = service.ask("Which patients had raised IL6?")
    assert answer.unknown_terms == ()
    assert answer.hits[0].article.id == "b"
    matched = {answer.hits[0].passage.text[s.start : s.end] for s in answer.hits[0].matches}
    assert {"IL", "6"} <= matched


def test_an_index_built_by_another_tokenizer_says_so(make_service, tmp_path: Path) -> None:
    service = make_service({"a.txt": "Copper prices rose sharply this week. " + FILLER, **OTHERS})
    assert not any("tokenizer" in notice for notice in service.ask("copper prices").notices)
    db_path = service.db_path
    service.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("""UPDATE meta SET value = '"corpusbot-v0 (old)"' WHERE key = 'tokenizer'""")
    stale = SearchService(db_path)
    try:
        answer = stale.ask("copper prices")
        assert answer.hits
        assert any("tokenizer" in notice and "corpusbot index" in notice for notice in answer.notices)
    finally:
        stale.close()
    index_corpus(db_path, [])  # the indexer rebuilds an index made by another tokenizer
    rebuilt = SearchService(db_path)
    try:
        assert not any("tokenizer" in notice for notice in rebuilt.ask("copper prices").notices)
    finally:
        rebuilt.close()


def test_finding_articles_by_a_split_word_needs_all_its_parts(make_service) -> None:
    service = make_service(
        {
            "a.txt": "The IL-6 assay was repeated twice. " + FILLER,
            "b.txt": "Room 6 of the clinic was closed. " + FILLER,
            **OTHERS,
        }
    )
    assert [m.article.id for m in service.find_articles("IL6")] == ["a"]
    assert service.find_articles("6b39") == []  # part of an id, not a mention of 6
    assert {m.article.id for m in service.find_articles("IL6 clinic")} == {"a", "b"}  # words still OR
