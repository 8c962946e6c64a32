"""Questions about an article itself (link, source, author, date, title): recognised, and answered from metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.search.metadata_questions import MetadataQuestion, parse_metadata_question

NEWS2 = Path(__file__).resolve().parents[2] / "data" / "news2" / "articles.jsonl"


@pytest.mark.parametrize(
    ("question", "fields", "rest"),
    [
        ("link to the original article", ("url",), ""),
        ("url for the reuters rare earth story?", ("url",), "reuters rare earth"),
        ("who wrote the wildfire story?", ("author",), "wildfire"),
        ("who wrote it?", ("author",), ""),
        ("author of the chess champion piece", ("author",), "chess champion"),
        ("when was the malaria vaccine article published", ("published",), "malaria vaccine"),
        ("where was the panda story published?", ("source",), "panda"),  # "where … published": the source
        ("source of the delegation story", ("source",), "delegation"),
        ("source for the ferry fare rise", ("source",), "ferry fare rise"),
        ("which newspaper ran the comet story", ("source",), "ran comet"),
        ("what's the headline of the bridge article", ("title",), "bridge"),
        ("who wrote it and when was it published?", ("author", "published"), "and"),
    ],
)
def test_questions_about_an_article_name_their_fields_and_what_is_left(
    question: str, fields: tuple[str, ...], rest: str
) -> None:
    assert parse_metadata_question(question) == MetadataQuestion(fields, rest)


@pytest.mark.parametrize(
    "question",
    [
        "who wrote Hamlet?",  # "wrote" needs a word naming an article
        "what is the source of rare earth magnets",  # so does "source"
        "what did reuters report",
        "when was the iphone released",
        "who is on the US delegation?",
        "where will the talks be held?",
        "what did trump post on social media",
        "title",
    ],
)
def test_other_questions_are_not_about_an_article(question: str) -> None:
    assert parse_metadata_question(question) is None


@pytest.fixture(scope="module")
def news2(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("news2") / "news2.db"
    index_corpus(db, [str(NEWS2)])
    service = SearchService(db)
    yield service
    service.close()


def test_metadata_answers_come_with_the_article_they_are_from(news2: SearchService) -> None:
    answer = news2.ask("who wrote the wildfire story and when was it published?")
    [about] = answer.about
    assert about.article.id == "n03-wildfire-ridge"
    assert about.asked == ("author", "published")
    assert (about.value("author"), about.value("published")) == ("Jonah Reyes", "2026-07-21")
    assert answer.hits[0].article.id == "n03-wildfire-ridge"  # the passages are found by the rest: "wildfire"
    payload = answer.to_json()["about"]
    assert payload == [
        {
            "asked": ["author", "published"],
            "values": {"author": "Jonah Reyes", "published": "2026-07-21"},
            "article": {
                "id": "n03-wildfire-ridge",
                "title": "Wildfire near Cedar Ridge forces evacuation of 3,000 residents",
                "url": "https://news.example.org/2026/n03-wildfire-ridge",
                "source": "Mountain Post",
                "published": "2026-07-21",
                "author": "Jonah Reyes",
            },
        }
    ]


def test_an_article_is_found_by_words_from_anywhere_in_it(news2: SearchService) -> None:
    # "Westfield" and "panda" are in different sentences; the article as a whole holds both
    [about] = news2.ask("where was the westfield panda story published?").about
    assert (about.article.id, about.value("source")) == ("n18-zoo-panda", "Capital Times")


def test_a_follow_up_finds_its_article_through_the_earlier_question(news2: SearchService) -> None:
    assert news2.ask("who wrote it?").about == ()
    [about] = news2.ask("who wrote it?", context="when did the steamer sink").about
    assert (about.article.id, about.value("author")) == ("n06-museum-reopens", "Sofia Brandt")


def test_no_article_matching_gives_no_metadata_and_says_why(news2: SearchService) -> None:
    for question in ("link to the football transfer story", "who wrote it?"):
        answer = news2.ask(question)
        assert answer.about == ()
        assert any("name it" in notice for notice in answer.notices)


def test_a_question_naming_no_article_lists_the_few_that_have_the_field(sample_service: SearchService) -> None:
    # of the sample's two articles only the first has a URL (its "Original article:" line)
    answer = sample_service.ask("link to the original article")
    assert [(a.article.id, a.value("url")) for a in answer.about] == [
        ("000-6b3987004aa82828", "https://www.toutiao.com/article/7513089098832298534/")
    ]
    # a missing field is said to be missing, not guessed
    [about] = sample_service.ask("who wrote the article about the Treasury Secretary?").about
    assert about.article.id == "001-6346928b0b16da65"
    assert about.value("author") is None
    assert about.to_json()["values"] == {"author": None}


def test_ordinary_questions_carry_no_metadata(news2: SearchService) -> None:
    answer = news2.ask("when does the harbor street bridge close?")
    assert answer.about == ()
    assert answer.to_json()["about"] == []


def test_metadata_questions_over_a_big_corpus_list_nothing_when_no_article_is_named(
    tmp_path: Path, corpus_dir: Path
) -> None:
    lines = [
        json.dumps({"id": f"a{i}", "text": f"Story number {i} about harbours.", "url": f"https://x.example/{i}"})
        for i in range(5)
    ]
    (corpus_dir / "many.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "many.db"
    index_corpus(db, [str(corpus_dir)])
    service = SearchService(db)
    try:
        answer = service.ask("link to the original article")
        assert answer.about == ()
        assert any("name it" in notice for notice in answer.notices)
    finally:
        service.close()
