"""Follow-ups: an earlier question as ``context`` (its words at CONTEXT_WEIGHT), and telling follow-ups apart."""

from __future__ import annotations

import pytest

from corpusbot.index import SearchService
from corpusbot.index.search.query import (
    CONTEXT_WEIGHT,
    SYNONYM_WEIGHT,
    Synonyms,
    WeightedTerm,
    is_follow_up,
    parse_query,
)
from corpusbot.index.text.tokenizer import Tokenizer, default_tokenizer

DELEGATION = "who is on the US delegation?"


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return default_tokenizer()


def test_the_earlier_questions_other_words_join_at_the_context_weight(tokenizer: Tokenizer) -> None:
    parsed = parse_query("and what did they want from China?", tokenizer, context=DELEGATION)
    assert parsed.query_terms == ("want", "china")
    assert [t for t in parsed.terms if t.origin == "context"] == [
        WeightedTerm("u_s", CONTEXT_WEIGHT, "context", DELEGATION),
        WeightedTerm("deleg", CONTEXT_WEIGHT, "context", DELEGATION),
    ]
    assert CONTEXT_WEIGHT == 0.3
    assert parsed.context == DELEGATION
    assert parsed.asked_terms == ("want", "china")  # confidence is judged on the follow-up's own words


def test_the_earlier_questions_synonyms_join_at_their_share_of_its_weight(tokenizer: Tokenizer) -> None:
    synonyms = Synonyms([[("held",), ("hold",)], [("talk",), ("negoti",)]])
    parsed = parse_query("when?", tokenizer, synonyms, context="where will the talks be held?")
    assert [(t.term, t.weight, t.origin) for t in parsed.terms] == [
        ("talk", 1.0, "context"),
        ("held", 1.0, "context"),
        ("negoti", SYNONYM_WEIGHT, "synonym"),
        ("hold", SYNONYM_WEIGHT, "synonym"),
    ]
    assert parsed.asked_terms == ("talk", "held")
    parsed = parse_query("and who paid?", tokenizer, synonyms, context="held talks")  # a word of its own: 0.3 ×
    assert [(t.term, t.weight) for t in parsed.terms if t.origin == "synonym"] == [
        ("hold", CONTEXT_WEIGHT * SYNONYM_WEIGHT),
        ("negoti", CONTEXT_WEIGHT * SYNONYM_WEIGHT),
    ]


def test_an_earlier_question_drops_take_place_like_a_question(tokenizer: Tokenizer) -> None:
    parsed = parse_query("when?", tokenizer, context="where are the talks taking place?")
    assert parsed.asked_terms == ("talk",)


def test_an_earlier_question_drops_the_askers_own_wanting(tokenizer: Tokenizer) -> None:
    parsed = parse_query("when?", tokenizer, context="I want to know about the steel tariffs")
    assert parsed.asked_terms == ("steel", "tariff")


def test_words_of_both_questions_count_once_at_full_weight(tokenizer: Tokenizer) -> None:
    parsed = parse_query("what did the delegation want?", tokenizer, context=DELEGATION)
    assert [(t.term, t.weight, t.origin) for t in parsed.terms] == [
        ("deleg", 1.0, "query"),
        ("want", 1.0, "query"),
        ("u_s", CONTEXT_WEIGHT, "context"),
    ]


def test_a_follow_up_without_words_of_its_own_is_asked_with_the_earlier_ones_in_full(tokenizer: Tokenizer) -> None:
    parsed = parse_query("when?", tokenizer, context="where will the trade talks be held?")
    assert parsed.query_terms == ()
    assert {t.weight for t in parsed.terms} == {1.0}
    assert parsed.asked_terms == ("trade", "talk", "held")
    assert parsed.answer_type == "date"  # the follow-up's question word decides the answer type


def test_a_follow_up_of_filler_only_is_asked_with_the_earlier_words_in_full(tokenizer: Tokenizer) -> None:
    parsed = parse_query("and who's going?", tokenizer, context="when are the london talks?")
    assert parsed.query_terms == ()
    assert parsed.asked_terms == ("london", "talk")
    assert {t.weight for t in parsed.terms} == {1.0}
    assert parsed.answer_type == "person"  # "and" before the question word
    # without an earlier question the filler is all there is, so it is kept
    assert parse_query("and who's going?", tokenizer).query_terms == ("go",)


@pytest.mark.parametrize(
    ("question", "answer_type"),
    [
        ("and when?", "date"),
        ("so who's going?", "person"),
        ("And how much will it cost?", "number"),
        ("but where?", "place"),
        ("sandwich where?", None),
        ("band who?", None),
    ],
)
def test_a_follow_ups_opening_word_does_not_hide_the_answer_type(
    tokenizer: Tokenizer, question: str, answer_type: str | None
) -> None:
    assert parse_query(question, tokenizer).answer_type == answer_type


def test_excluded_words_stay_excluded_and_blank_context_is_none(tokenizer: Tokenizer) -> None:
    parsed = parse_query("rare earth -magnets", tokenizer, context="magnets and licences -steel")
    assert "magnet" not in {t.term for t in parsed.terms}
    assert "steel" not in {t.term for t in parsed.terms}  # an earlier exclusion is not a word to look for
    assert parse_query("rare earth", tokenizer, context="   ").context is None
    assert parse_query("rare earth", tokenizer).context is None


@pytest.mark.parametrize(
    ("question", "follow_up"),
    [
        ("and what did they want from China?", True),
        ("what about nuclear?", True),
        ("how long are they valid?", True),
        ("who wrote it?", True),
        ("when?", True),
        ("the price?", True),
        ("who is on the US delegation?", False),
        ("When did the leaders have their phone call?", False),
        ("how many automakers got licenses?", False),
        ('rare earth "that" licences', False),  # a quoted word is searched for, not pointed back with
    ],
)
def test_follow_ups_are_told_apart(tokenizer: Tokenizer, question: str, follow_up: bool) -> None:
    assert is_follow_up(question, tokenizer) is follow_up


def test_context_moves_a_follow_up_to_what_the_thread_is_about(sample_service: SearchService) -> None:
    alone = sample_service.ask("and who's going?")
    followed = sample_service.ask("and who's going?", context="when are the london talks?", explain=True)
    assert "Treasury Secretary Becente" not in " ".join(hit.passage.text for hit in alone.hits)
    assert "Treasury Secretary Becente" in " ".join(hit.passage.text for hit in followed.hits)
    assert followed.context == "when are the london talks?"
    assert followed.to_json()["context"] == "when are the london talks?"
    assert alone.to_json()["context"] is None
    # "who's going" is filler only: the earlier question's words carry it in full, "go" is left out
    parts = {part.term: part for part in followed.hits[0].explanation}
    assert parts["london"].origin == "context" and parts["london"].weight == 1.0
    assert "go" not in parts
    assert parts["london"].to_json()["origin"] == "context"
    assert followed.answer is not None and "Treasury Secretary Becente" in followed.answer.text
    # with a word of its own ("delegation"), the earlier question's words join at CONTEXT_WEIGHT
    own = sample_service.ask("and who's in the delegation?", context="when are the london talks?", explain=True)
    parts = {part.term: part for part in own.hits[0].explanation}
    assert parts["london"].origin == "context" and parts["london"].weight == CONTEXT_WEIGHT
    assert parts["deleg"].origin == "query" and parts["deleg"].weight == 1.0


def test_context_is_cleaned_like_a_question(sample_service: SearchService) -> None:
    answer = sample_service.ask("when?", context="where will\x00 the\n trade talks be held?" + " x" * 2000)
    assert answer.context is not None and len(answer.context) <= 1000
    assert "\x00" not in answer.context and "\n" not in answer.context
