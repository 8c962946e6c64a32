"""Dev-question evaluation: loading question files, phrase matching, hit@k and MRR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpusbot.index import CorpusbotError, SearchService, index_corpus
from corpusbot.index.maintenance.evaluate import DevQuestion, contains_any, evaluate_questions, load_questions
from tests.support import DEV_QUESTIONS

# Distinct filler topics keep the query words rare (positive idf) in a tiny corpus.
FILLER = [
    "Bakers knead sourdough before dawn and sell warm loaves at the market stall.",
    "The orchestra rehearsed a long symphony while the conductor tapped the score.",
    "Cyclists climbed the mountain pass in heavy rain during the final stage.",
    "Gardeners planted tulips along the riverbank beside the old stone bridge.",
    "Chess players studied endgames late into the night at the club.",
]


@pytest.fixture
def tiny_service(corpus_dir: Path, tmp_path: Path):
    articles = {
        "eruption.txt": "The volcano eruption covered the valley; the volcano eruption went on for days.",
        "etna.txt": "Mount Etna is a volcano in Sicily that farmers watch closely.",
        **{f"filler{i}.txt": text for i, text in enumerate(FILLER)},
    }
    for name, text in articles.items():
        (corpus_dir / name).write_text(text, encoding="utf-8")
    db = tmp_path / "tiny.db"
    index_corpus(db, [str(corpus_dir)])
    service = SearchService(db)
    yield service
    service.close()


def test_hit_at_k_and_mrr_from_known_ranks(tiny_service: SearchService) -> None:
    questions = [
        DevQuestion("volcano eruption", ("valley",)),  # the eruption article ranks first
        DevQuestion("volcano eruption", ("MOUNT   etna",)),  # second (case and spacing ignored)
        DevQuestion("volcano eruption", ("not in any passage",)),
    ]
    report = evaluate_questions(tiny_service, questions)
    assert [r.first_hit_rank for r in report.results] == [1, 2, None]
    assert report.hit_at_1 == pytest.approx(1 / 3)
    assert report.hit_at_3 == pytest.approx(2 / 3)
    assert report.mrr_at_10 == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert [r.question.expect_any for r in report.misses] == [("MOUNT   etna",), ("not in any passage",)]
    second = report.results[1]
    assert [(p.rank, p.hit) for p in second.returned] == [(1, False), (2, True)]
    assert second.returned[1].article_id == "etna"
    payload = report.to_json()
    assert payload["questions"] == 3
    assert [m["first_hit_rank"] for m in payload["misses"]] == [2, None]
    assert payload["misses"][0]["returned"][1]["text"].startswith("Mount Etna")


def test_a_question_with_no_results_is_a_miss(tiny_service: SearchService) -> None:
    report = evaluate_questions(tiny_service, [DevQuestion("quantum chromodynamics", ("quark",))])
    assert report.results[0].first_hit_rank is None
    assert report.results[0].returned == ()
    assert report.hit_at_1 == report.hit_at_3 == report.mrr_at_10 == 0.0


@pytest.mark.parametrize(
    ("text", "phrases", "expected"),
    [
        ("Japan’s military equipment", ["Japan's military equipment"], True),  # curly vs straight apostrophe
        ("next\n  Monday", ["next Monday"], True),  # line break inside the phrase
        ("TREASURY Secretary", ["treasury secretary"], True),
        ("ﬁnancial", ["financial"], True),  # NFKC ligature
        ("six month", ["six months"], False),
        ("", ["anything"], False),
        ("main topic", ["nope", "main topic"], True),
    ],
)
def test_phrase_matching(text: str, phrases: list[str], expected: bool) -> None:
    assert contains_any(text, phrases) is expected


def test_dev_questions_meet_the_issue_targets(sample_service: SearchService) -> None:
    questions = load_questions(DEV_QUESTIONS)
    assert len(questions) == 12
    report = evaluate_questions(sample_service, questions)
    assert report.hit_at_3 == 1.0, [r.to_json() for r in report.misses]
    assert report.hit_at_1 >= 11 / 12, [r.to_json() for r in report.misses]


def test_progress_wraps_the_questions(sample_service: SearchService) -> None:
    seen: list[tuple[int, str]] = []

    def progress(items, length, label):
        seen.append((length, label))
        yield from items

    evaluate_questions(sample_service, load_questions(DEV_QUESTIONS)[:2], progress=progress)
    assert seen == [(2, "Questions")]


def test_expect_any_may_be_a_single_string(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_text(json.dumps([{"q": " rare earth ", "expect_any": "six months"}]), encoding="utf-8")
    assert load_questions(path) == [DevQuestion("rare earth", ("six months",))]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No questions file"),
        ("[{", "is not valid JSON (line 1"),
        ("{}", "non-empty JSON list"),
        ("[]", "non-empty JSON list"),
        ('[{"expect_any": ["x"]}]', 'question 1 has no "q"'),
        ('[{"q": "a", "expect_any": ["x"]}, {"q": "b"}]', "question 2 ('b') needs \"expect_any\""),
        ('[{"q": "a", "expect_any": []}]', 'needs "expect_any"'),
        ('[{"q": "a", "expect_any": [1]}]', 'needs "expect_any"'),
        ('["just a string"]', 'has no "q"'),
    ],
)
def test_bad_question_files_explain_the_fix(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "questions.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusbotError) as raised:
        load_questions(path)
    assert message in str(raised.value)
    assert "expect_any" in str(raised.value)  # every message shows the expected format
