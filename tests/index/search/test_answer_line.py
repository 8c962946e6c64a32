"""Who/when/where/how-many: answers found in passages, answer-holding passages first, the direct answer line."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.search.answer_line import find_answer, shown_as_line
from corpusbot.index.search.rerank import answer_spans
from corpusbot.index.text.tokenizer import Tokenizer, default_tokenizer

NEWS2 = Path(__file__).resolve().parents[2] / "data" / "news2" / "articles.jsonl"


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return default_tokenizer()


@pytest.mark.parametrize(
    ("answer_type", "sentence", "answers"),
    [
        (
            "date",
            "On June 6, Trump announced talks in London next Monday, June 9.",
            ["June 6", "next Monday, June 9"],
        ),
        ("date", "The river should peak on Friday night; it sank in 1887.", ["Friday night", "1887"]),
        ("date", "They may meet again.", []),
        (
            "person",
            "The delegation: Treasury Secretary Becente, Commerce Secretary Lutnik and Trade Representative Greer.",
            ["Treasury Secretary Becente, Commerce Secretary Lutnik and Trade Representative Greer"],
        ),
        ("person", "Trump's senior trade adviser Peter Navarro spoke.", ["Peter Navarro"]),
        ("person", "The President said nothing to the minister.", []),
        ("place", "The trial ran in Burkina Faso, Mali and Kenya.", ["Burkina Faso, Mali and Kenya"]),
        ("place", "Evacuees are at the Cedar Ridge high school gym.", []),  # names a school, not the place
        ("place", "He wants to talk to China.", []),  # a destination is no "where"
        ("place", "Others stay at a fairground in nearby Pine Hollow.", ["Pine Hollow"]),
        ("place", "The market moves to the old rail yard on Depot Street from June 6.", ["Depot Street"]),
        ("place", "They met on Monday, on Trump's request.", []),  # after "on", only a street is a place
        ("person", "Westfield General Hospital and Dr. Samuel Adeyemi", ["Dr. Samuel Adeyemi"]),  # not the hospital
        ("place", "Delegations from China arrived.", []),
        ("number", "Repairs will cost 4.2 million dollars and take six months.", ["4.2 million dollars", "six months"]),
        ("number", "The comet C/2026 C1 is named after her.", []),  # parts of a designation are no count
    ],
)
def test_answer_spans_are_whole_expressions(answer_type: str, sentence: str, answers: list[str]) -> None:
    assert [sentence[start:end] for start, end in answer_spans(answer_type, sentence)] == answers


def weights_of(tokenizer: Tokenizer, words: str, heavy: str = "") -> dict[str, float]:
    weights = dict.fromkeys(tokenizer.terms(words), 1.0)
    weights.update(dict.fromkeys(tokenizer.terms(heavy), 2.0))
    return weights


def test_the_answer_nearest_the_question_words_wins(tokenizer: Tokenizer) -> None:
    text = "On June 6, Trump announced that talks will start in London next Monday, June 9."
    found = find_answer("date", text, weights_of(tokenizer, "talks London"), tokenizer)
    assert found is not None
    assert text[found.span.start : found.span.end] == "next Monday, June 9"


def test_an_answer_needs_a_question_word_in_its_sentence(tokenizer: Tokenizer) -> None:
    text = "The delegation arrived late. Minister Anna Berg was not there."
    assert find_answer("person", text, weights_of(tokenizer, "delegation"), tokenizer) is None


def test_the_question_words_themselves_are_no_answer(tokenizer: Tokenizer) -> None:
    text = "The talks will be held in London."
    assert find_answer("place", text, weights_of(tokenizer, "London talks"), tokenizer) is None


def test_how_many_is_a_count_next_to_a_question_word_never_money(tokenizer: Tokenizer) -> None:
    text = "Brightline will buy Quillstack for 1.3 billion dollars. Quillstack employs about 900 people."
    weights = weights_of(tokenizer, "employs Quillstack")
    found = find_answer("number", text, weights, tokenizer, "how many people does Quillstack employ?")
    assert found is not None and text[found.span.start : found.span.end] == "900 people"
    # "how much" may be money
    found = find_answer("number", text, weights_of(tokenizer, "buy Quillstack"), tokenizer, "how much?")
    assert found is not None and text[found.span.start : found.span.end] == "1.3 billion dollars"
    far = "Quillstack said on a long day that it had 900 people."
    assert find_answer("number", far, weights_of(tokenizer, "Quillstack"), tokenizer, "how many?") is None


def test_an_untitled_name_counts_only_next_to_a_question_word(tokenizer: Tokenizer) -> None:
    text = "Carla Mendes won the election, defeating the incumbent mayor, Peter Lindqvist."
    found = find_answer("person", text, weights_of(tokenizer, "won election"), tokenizer)
    assert found is not None and text[found.span.start : found.span.end] == "Carla Mendes"
    assert (
        find_answer("person", "Carla Mendes spoke. The election was won.", weights_of(tokenizer, "won"), tokenizer)
        is None
    )


def test_an_untitled_name_of_a_street_or_an_organisation_is_no_person(tokenizer: Tokenizer) -> None:
    weights = weights_of(tokenizer, "repairing bridge")
    assert find_answer("person", "The Harbor Street bridge will close for repairs.", weights, tokenizer) is None
    assert find_answer("person", "Westfield General Hospital is repairing the bridge.", weights, tokenizer) is None
    found = find_answer("person", "Dana Whitcombe repaired the bridge.", weights, tokenizer)
    assert found is not None and (found.span.start, found.span.end) == (0, len("Dana Whitcombe"))


def test_the_line_needs_the_heaviest_word_the_passage_has_in_the_answers_sentence(tokenizer: Tokenizer) -> None:
    text = "Trump spoke after a phone call. Talks will be held in London next Monday."
    weights = weights_of(tokenizer, "Trump talk", heavy="phone")
    found = find_answer("date", text, weights, tokenizer)
    assert found is not None and text[found.span.start : found.span.end] == "next Monday"
    assert not shown_as_line(found, text, weights, tokenizer)  # "phone" is elsewhere: about something else
    weights = weights_of(tokenizer, "Trump phone", heavy="talk")
    found = find_answer("date", text, weights, tokenizer)
    assert found is not None and shown_as_line(found, text, weights, tokenizer)


# -- in the service -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def news2(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("news2") / "news2.db"
    index_corpus(db, [str(NEWS2)])
    service = SearchService(db)
    yield service
    service.close()


def test_a_passage_holding_the_answer_beats_one_repeating_the_question(sample_service: SearchService) -> None:
    # Three passages repeat "phone call"; the one with the date says only "the call … on June 5".
    answer = sample_service.ask("When did the leaders have their phone call?", explain=True)
    assert "June 5" in answer.hits[0].passage.text
    assert any(boost.startswith("holds an answer") for boost in answer.hits[0].boosts)
    scores = [hit.score for hit in answer.hits]
    assert scores == sorted(scores, reverse=True)  # lifted, not reordered against the scores
    plain = sample_service.ask("leaders have their phone call?")  # the same words, no "when"
    assert "June 5" not in plain.hits[0].passage.text


@pytest.mark.parametrize(
    ("question", "line"),
    [
        (
            "who is on the US delegation?",
            "Treasury Secretary Becente, Commerce Secretary Lutnik and Trade Representative Greer",
        ),
        ("when are the london talks?", "next Monday"),
        ("where will the talks be held?", "London"),
        ("how long are the rare earth licenses valid?", "six months"),
    ],
)
def test_the_answer_line_is_text_of_the_best_passage(sample_service: SearchService, question: str, line: str) -> None:
    answer = sample_service.ask(question)
    assert answer.answer is not None
    assert answer.answer.text == line
    assert answer.answer.hit == answer.hits[0]
    span = answer.answer.span
    assert answer.hits[0].passage.text[span.start : span.end] == line
    payload = answer.to_json()["answer"]
    assert payload["text"] == line and payload["rank"] == 1
    assert payload["article"]["id"] == answer.hits[0].article.id
    assert payload["passage"] == answer.hits[0].passage.ordinal


@pytest.mark.parametrize(
    "question",
    [
        "who's the us ambassador",  # the passage names no one
        "what did the US suspend for China?",  # not a who/when/where/how-many question
        "when was the iphone released",  # nothing about it
        "who won the world cup?",
    ],
)
def test_no_line_when_unsure(sample_service: SearchService, question: str) -> None:
    answer = sample_service.ask(question)
    assert answer.answer is None
    assert answer.to_json()["answer"] is None


def test_no_line_on_later_pages(sample_service: SearchService) -> None:
    assert sample_service.ask("who is on the US delegation?").answer is not None
    assert sample_service.ask("who is on the US delegation?", offset=3).answer is None


def test_lines_over_a_second_corpus(news2: SearchService) -> None:
    expected = {
        "when does the harbor street bridge close?": "March 16",
        "how much did the museum renovation cost?": "58 million dollars",
        "how much will the bridge repairs cost": None,  # "bridge" (as rare as "repairs") is in another sentence
        "who won the ashford mayoral election?": "Carla Mendes",
        "how many homes lost power in the storm": "40,000 homes",
        "where was the malaria trial run": None,  # the sentence lacks "malaria": not shown
    }
    got = {question: (a.answer.text if (a := news2.ask(question)).answer else None) for question in expected}
    assert got == expected


def test_an_organisation_named_like_a_titled_person_is_not_the_answer(news2: SearchService) -> None:
    # "Westfield General Hospital" has the title "General" in it; "boss" reaches "chief executive" (a synonym)
    answer = news2.ask("who is the hospital boss")
    assert answer.answer is not None and answer.answer.text == "Dr. Samuel Adeyemi"


def test_the_questions_synonyms_count_when_finding_the_answer(news2: SearchService) -> None:
    # "start" reaches "begin": the sentence "Work will begin in August" matches the question as well as the one
    # saying the council voted "on Wednesday" to rebuild the footbridge, so neither is sure enough for a line
    answer = news2.ask("when does work on the footbridge start")
    assert "Work will begin in August" in answer.hits[0].passage.text
    assert answer.answer is None or answer.answer.text == "August"


def test_a_huge_sentence_of_names_and_question_words_is_handled(tokenizer: Tokenizer) -> None:
    # every word a candidate name and a key term: distances come from binary searches, not a scan per pair
    text = "Secretary " + " ".join(["Aaa"] * 20_000) + " spoke."
    found = find_answer("person", text, {"aaa": 1.0}, tokenizer)
    assert found is not None and found.span.start == 0 and found.distance == 0
    assert shown_as_line(found, text, {"aaa": 1.0}, tokenizer)
    numbers = "Aaa 12 " * 20_000
    found = find_answer("number", numbers, {"aaa": 1.0}, tokenizer, "how many?")
    assert found is not None and numbers[found.span.start : found.span.end] == "12"
