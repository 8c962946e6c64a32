"""Watch matching, "what's new" and published-date filters in the search service (real index files)."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import date
from pathlib import Path

import pytest

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.engine import store
from corpusbot.index.search.dates import parse_day, published_date
from corpusbot.index.search.service import CONFIDENT_COVERAGE
from corpusbot.index.search.watch import coverage, passage_key

FILLER = (
    "The ministry said the figures would be published later in the month. Analysts expected little change in the "
    "weeks ahead, and markets were calm on the news. Officials declined to comment further on the timetable."
)


def write_article(folder: Path, article_id: str, title: str, text: str, published: str | None = None) -> Path:
    record = {"id": article_id, "title": title, "text": text, "url": f"https://news.example/{article_id}"}
    if published is not None:
        record["published"] = published
    path = folder / f"{article_id}.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def base_corpus(folder: Path) -> None:
    write_article(folder, "steel-1", "Steel output", f"Steel output rose in the north. {FILLER}", "2025-05-20")
    write_article(folder, "wheat-1", "Wheat harvest", f"The wheat harvest was early this year. {FILLER}", "2025-06-03")
    write_article(folder, "port-1", "Port strike", f"Dock workers went on strike at the port. {FILLER}")


@pytest.fixture
def db(tmp_path: Path, corpus_dir: Path) -> Path:
    base_corpus(corpus_dir)
    path = tmp_path / "watch.db"
    index_corpus(path, [str(corpus_dir)])
    return path


def reindex_later(db: Path, corpus_dir: Path) -> None:
    """Reindex in a later second than the last run (indexed_at has one-second resolution)."""
    time.sleep(1.05)
    index_corpus(db, [str(corpus_dir)])


def test_published_dates_in_the_forms_sources_write_them() -> None:
    assert published_date("2025-06-01") == date(2025, 6, 1)
    assert published_date("2025-06-01T23:30:00-05:00") == date(2025, 6, 1)  # the day the page says
    assert published_date("Mon, 02 Jun 2025 09:30:00 GMT") == date(2025, 6, 2)
    assert published_date("June 3, 2025") == date(2025, 6, 3)
    assert published_date("3 June 2025") == date(2025, 6, 3)
    for nothing in (None, "", "   ", "yesterday", "2025-02-30", "x" * 200):
        assert published_date(nothing) is None


def test_parse_day_refuses_anything_but_a_calendar_day() -> None:
    assert parse_day(" 2025-06-01 ") == date(2025, 6, 1)
    for bad in ("2025-6-1", "06/01/2025", "2025-02-30", "tomorrow", ""):
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            parse_day(bad)


def test_ask_since_and_until_keep_articles_published_in_the_range(db: Path) -> None:
    service = SearchService(db)
    try:
        question = "ministry figures analysts timetable"
        everything = {hit.article.id for hit in service.ask(question, k=10).hits}
        assert everything == {"steel-1", "wheat-1", "port-1"}
        since = service.ask(question, k=10, since=date(2025, 6, 1))
        assert {hit.article.id for hit in since.hits} == {"wheat-1"}
        assert any("without a published date are left out" in notice for notice in since.notices)
        until = service.ask(question, k=10, until=date(2025, 6, 1))
        assert {hit.article.id for hit in until.hits} == {"steel-1"}
        both = service.ask(question, k=10, since=date(2025, 6, 3), until=date(2025, 6, 3))  # both days included
        assert {hit.article.id for hit in both.hits} == {"wheat-1"}
        assert service.ask(question, k=10, since=date(2026, 1, 1)).hits == ()
        assert service.ask("dock workers strike", since=date(2000, 1, 1)).hits == ()  # no date: left out
    finally:
        service.close()


def test_the_date_filter_follows_a_reindex(db: Path, corpus_dir: Path) -> None:
    service = SearchService(db)
    try:
        assert service.ask("dock workers strike", since=date(2025, 1, 1)).hits == ()
        write_article(
            corpus_dir, "port-1", "Port strike", f"Dock workers went on strike at the port. {FILLER}", "2025-07-01"
        )
        reindex_later(db, corpus_dir)
        assert [hit.article.id for hit in service.ask("dock workers strike", since=date(2025, 1, 1)).hits] == ["port-1"]
    finally:
        service.close()


def test_indexed_since_lists_the_articles_of_newly_indexed_files_newest_first(db: Path, corpus_dir: Path) -> None:
    service = SearchService(db)
    try:
        first = service.latest_indexed_at()
        assert first is not None
        articles, total = service.indexed_since(None, limit=2)
        assert total == 3 and len(articles) == 2
        assert service.indexed_since(first, limit=10) == ([], 0)
        write_article(corpus_dir, "rare-1", "Rare earths", f"Rare earth export licences were granted. {FILLER}")
        reindex_later(db, corpus_dir)
        articles, total = service.indexed_since(first, limit=10)
        assert total == 1 and [a.article.id for a in articles] == ["rare-1"]
        assert articles[0].indexed_at > first and articles[0].passage_count >= 1
        everything, _ = service.indexed_since(None, limit=10)
        assert everything[0].article.id == "rare-1"  # newest first
    finally:
        service.close()


def test_watch_matches_only_confident_passages_of_articles_indexed_since(db: Path, corpus_dir: Path) -> None:
    service = SearchService(db)
    try:
        before = service.latest_indexed_at()
        write_article(corpus_dir, "rare-1", "Rare earths", f"Rare earth export licences were granted. {FILLER}")
        write_article(corpus_dir, "rare-2", "Earth science", f"The earth science fair opened. {FILLER}")
        write_article(corpus_dir, "rare-3", "Rare earth export licences", f"A bakery opened downtown. {FILLER}")
        reindex_later(db, corpus_dir)
        queries = [
            "rare earth export licences",
            "steel output",
            "-ministry rare earth",
            '"licences were granted"',
            '"licences were refused" rare earth',
        ]
        check = service.watch_matches(queries, before)
        assert check.checked_through == service.latest_indexed_at() != before
        rare, steel, excluded, phrase, missing_phrase = check.matches
        assert [m.article.id for m in phrase] == ["rare-1"] and missing_phrase == ()
        # rare-2 holds only "earth" (under the threshold); rare-3 has the words in its title only
        assert [m.article.id for m in rare] == ["rare-1"]
        assert rare[0].coverage >= CONFIDENT_COVERAGE
        assert rare[0].key == passage_key("rare-1", rare[0].passage.text)
        marked = [rare[0].passage.text[s.start : s.end].lower() for s in rare[0].matches]
        assert {"rare", "earth", "export", "licences"} <= set(marked)
        assert [m.article.id for m in steel] == ["steel-1"]  # indexed in the very second given: included
        assert excluded == ()  # its passage holds the excluded word
        assert [m.article.id for m in service.watch_matches(["steel output"], None).matches[0]] == ["steel-1"]
        later = service.watch_matches(["rare earth export licences", "steel output"], check.checked_through)
        assert [m.article.id for m in later.matches[0]] == ["rare-1"]  # of the second given
        assert later.matches[1] == ()  # steel-1 was indexed before it
    finally:
        service.close()


def test_passage_keys_survive_a_full_rebuild_that_renumbers_passages(db: Path, corpus_dir: Path) -> None:
    conn = sqlite3.connect(db)
    before = {passage_key(a, t): i for i, a, t in conn.execute("SELECT id, article_id, text FROM passages")}
    conn.close()
    write_article(corpus_dir, "aaa-first", "First", f"Another article first in line. {FILLER}")
    index_corpus(db, [str(corpus_dir)], full=True)
    conn = sqlite3.connect(db)
    after = {passage_key(a, t): i for i, a, t in conn.execute("SELECT id, article_id, text FROM passages")}
    conn.close()
    assert set(before) <= set(after)
    assert any(before[key] != after[key] for key in before), "the rebuild renumbered the passages"
    assert passage_key("a", "one  two\nthree") == passage_key("a", "one two three")
    assert passage_key("a", "text") != passage_key("b", "text")


def test_coverage_weighs_words_by_idf_and_unknown_words_as_the_average() -> None:
    raw = {"rare": 2.0, "earth": 1.0, "the": -0.5}
    assert coverage(["rare", "earth"], raw, {"rare"}) == pytest.approx(2 / 3)
    assert coverage(["rare", "earth", "zzz"], raw, {"rare", "earth"}) == pytest.approx(3 / 4.5)
    assert coverage(["the"], raw, {"the"}) == 0.0
    assert coverage(["zzz"], raw, set()) == 0.0


def test_reads_of_more_ids_than_sqlite_takes_variables_are_split(
    db: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watch after ``--full`` can match more passages than one statement takes ``?`` (250,000 here); a connection
    limited to 5 stands in for that."""
    for number in range(12):
        write_article(corpus_dir, f"crane-{number}", f"Crane {number}", f"A harbour crane toppled, number {number}.")
        write_article(corpus_dir, f"bakery-{number}", f"Bakery {number}", f"A bakery opened downtown. {FILLER}")
    index_corpus(db, [str(corpus_dir)])
    unlimited = SearchService(db)
    try:
        expected = unlimited.watch_matches(["harbour crane"], None).matches[0]
    finally:
        unlimited.close()
    assert len(expected) == 12
    opened = store.connect_reader

    def limited(path: Path) -> store.Reader:
        reader = opened(path)
        reader.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 5)
        return reader

    monkeypatch.setattr(store, "connect_reader", limited)
    service = SearchService(db)
    try:
        found = service.watch_matches(["harbour crane"], None).matches[0]
        assert service._db is not None and service._db.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) == 5
        assert [(m.passage.id, m.article.title, m.key) for m in found] == [
            (m.passage.id, m.article.title, m.key) for m in expected
        ]
        assert len(service.ask("harbour crane toppled", k=8).hits) == 8
    finally:
        service.close()
