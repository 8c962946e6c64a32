"""Second-stage signals (`corpusbot.index.search.rerank`) and how the search service applies them.

Answer types: a titled person for "who", a date for "when", a place for "where", a number for
"how many". Phrases: adjacent terms. Near-duplicates: Jaccard similarity of the passages' term sets
of at least ``NEAR_DUPLICATE_JACCARD``; an answer-type match multiplies a score by
``1 + ANSWER_TYPE_BOOST``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.search.rerank import (
    ANSWER_TYPE_BOOST,
    NEAR_DUPLICATE_JACCARD,
    answer_type_matches,
    contains_phrase,
    jaccard,
)
from corpusbot.index.search.service import _Candidate, _collapse_near_duplicates

# -- phrases -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terms", "phrase", "contained"),
    [
        (["rare", "earth", "magnet"], ("rare", "earth"), True),
        (["magnet", "rare", "earth"], ("rare", "earth"), True),  # at the very end
        (["rare", "earth"], ("rare", "earth"), True),  # the whole passage
        (["earth", "rare", "magnet"], ("rare", "earth"), False),  # both words, wrong order
        (["rare", "magnet", "earth"], ("rare", "earth"), False),  # both words, not adjacent
        (["rare", "rare", "earth"], ("rare", "earth"), True),  # a false start first
        (["rare"], ("rare", "earth"), False),  # shorter than the phrase
        (["rare", "earth", "china"], ["rare", "earth", "china"], True),  # a list is a phrase too
        (("steel", "rare", "earth", "china"), ("rare", "earth", "magnet"), False),
    ],
)
def test_contains_phrase_needs_the_terms_adjacent_and_in_order(
    terms: list[str], phrase: tuple[str, ...], contained: bool
) -> None:
    assert contains_phrase(terms, phrase) is contained


# -- answer types --------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer_type", "sentence", "matches"),
    [
        ("person", "The talks were led by Foreign Minister Anna Berg.", True),
        ("person", "Mr. Smith declined to comment.", True),
        ("person", "CEO Tim Cook was not there.", True),
        ("person", "Treasury Secretary Becente arrived.", True),
        ("person", "the minister arrived late.", False),  # a title needs its capital
        ("person", "The President said nothing.", False),  # and a capitalised name after it
        ("person", "Anna Berg arrived.", False),  # a name without a title
        ("person", "Westfield General Hospital opened a wing.", False),  # a title word in an organisation's name
        ("person", "General Motors cut jobs.", False),
        ("person", "Hospital chief executive Dr. Samuel Adeyemi said so.", True),
        ("person", "General Mark Milley spoke.", True),
        ("date", "The tariffs start on Monday.", True),
        ("date", "They met in March.", True),
        ("date", "Talks resume next week.", True),
        ("date", "The treaty dates from 1998.", True),
        ("date", "The deal was filed on 2025-04-09.", True),
        ("date", "The deal was filed on 9/4/2025.", True),
        ("date", "They may meet again.", False),  # the verb, not the month
        ("date", "A fleet of 1750 ships.", False),  # not a year of 1800-2099
        ("date", "It happened the other week.", False),
        ("place", "The talks were held in Geneva.", True),
        ("place", "They flew to the Netherlands.", True),
        ("place", "They arrived from abroad.", False),
        ("place", "Geneva hosted the talks.", False),  # a place name needs its preposition
        ("place", "Evacuees are staying in nearby Pine Hollow.", True),  # a word of nearness may come between
        ("place", "The fire spread to the nearby hills.", False),
        ("number", "Tariffs rose to 145 percent.", True),
        ("number", "Exports fell by 1,200 tonnes.", True),
        ("number", "Twelve ships docked.", True),
        ("number", "Hundreds of workers left.", True),
        ("number", "Several ships docked.", False),
        ("number", "The tenth round of talks.", False),
    ],
)
def test_answer_type_patterns(answer_type: str, sentence: str, matches: bool) -> None:
    assert answer_type_matches(answer_type, [sentence]) is matches


def test_no_answer_type_never_matches() -> None:
    assert not answer_type_matches(None, ["Minister Anna Berg arrived in Geneva on Monday with 12 aides."])


def test_any_one_sentence_is_enough() -> None:
    assert answer_type_matches("place", ["The talks ended.", "They were held in Geneva."])
    assert not answer_type_matches("place", ["The talks ended.", "Nobody said where."])
    assert not answer_type_matches("place", [])


# -- near-duplicates -------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "similarity"),
    [
        (set(), set(), 1.0),  # two empty passages are the same
        ({"port"}, set(), 0.0),
        ({"port", "open"}, {"port", "open"}, 1.0),
        ({"port", "open"}, {"ship", "dock"}, 0.0),
        ({"port", "open"}, {"open", "march"}, 1 / 3),  # 1 shared of 3
        (set("abcde"), set("abcd"), 4 / 5),
        (frozenset("abcd"), frozenset("abce"), 3 / 5),
    ],
)
def test_jaccard_is_shared_over_all(a: set[str], b: set[str], similarity: float) -> None:
    assert jaccard(a, b) == similarity
    assert jaccard(b, a) == similarity


def test_the_near_duplicate_threshold() -> None:
    assert NEAR_DUPLICATE_JACCARD == 0.8


def candidate(passage_id: int, score: float, terms: str) -> _Candidate:
    """A ranked candidate whose passage has one term per letter of ``terms``."""
    return _Candidate(passage_id, score, score, term_set=frozenset(terms))


def test_a_candidate_at_the_threshold_is_counted_on_the_better_one() -> None:
    best, twin, other = candidate(1, 3.0, "abcde"), candidate(2, 2.0, "abcd"), candidate(3, 1.0, "abcfg")
    assert jaccard(best.term_set, twin.term_set) == NEAR_DUPLICATE_JACCARD
    assert _collapse_near_duplicates([best, twin, other]) == [best, other]
    assert (best.duplicates, other.duplicates) == (1, 0)


def test_a_candidate_below_the_threshold_is_kept() -> None:
    first, second = candidate(1, 3.0, "abcde"), candidate(2, 2.0, "abcdf")  # 4 shared of 6
    assert _collapse_near_duplicates([first, second]) == [first, second]
    assert first.duplicates == second.duplicates == 0


def test_each_duplicate_counts_on_the_first_kept_candidate_like_it() -> None:
    a, b = candidate(1, 4.0, "abcde"), candidate(2, 3.0, "vwxyz")
    a_copy, b_copy, b_copy2 = candidate(3, 2.0, "abcde"), candidate(4, 1.5, "vwxyz"), candidate(5, 1.0, "wxyzv")
    assert _collapse_near_duplicates([a, b, a_copy, b_copy, b_copy2]) == [a, b]
    assert (a.duplicates, b.duplicates) == (1, 2)


# -- the answer-type boost in the service ----------------------------------------

FILLER = "Officials met on Tuesday to discuss shipping schedules, harbour fees and several other routine matters. " * 2


@pytest.fixture
def delegation_service(tmp_path: Path):
    """An index of two delegation stories, one naming a titled person, among unrelated ones."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    articles = {
        "named.txt": "The delegation is led by Foreign Minister Anna Berg, who arrived after a long flight. " + FILLER,
        "unnamed.txt": "The delegation arrived in the capital on a rainy morning after a long flight. " + FILLER,
        **{f"other{i}.txt": f"Story {i}. " + FILLER for i in range(4)},
    }
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    db = tmp_path / "delegation.db"
    index_corpus(db, [str(folder)])
    service = SearchService(db)
    yield service
    service.close()


def test_an_answer_type_match_multiplies_the_score_by_one_plus_the_boost(delegation_service: SearchService) -> None:
    # "who" is a stopword: both questions have the same terms, so only the answer type differs.
    with_type = {hit.article.id: hit for hit in delegation_service.ask("Who leads the delegation?", k=2).hits}
    without = {hit.article.id: hit for hit in delegation_service.ask("Leads the delegation?", k=2).hits}
    assert set(with_type) == set(without) == {"named", "unnamed"}

    named, plain = with_type["named"], without["named"]
    assert named.bm25 == plain.bm25
    assert named.score == pytest.approx(plain.score * (1 + ANSWER_TYPE_BOOST), rel=1e-12)
    assert "answer type person ×1.1" in named.boosts
    assert not any(boost.startswith("answer type") for boost in plain.boosts)

    # No titled person in the other story: no boost, the same score either way.
    assert with_type["unnamed"].score == without["unnamed"].score
    assert not any(boost.startswith("answer type") for boost in with_type["unnamed"].boosts)


def test_the_answer_type_boost_is_a_tenth() -> None:
    assert ANSWER_TYPE_BOOST == 0.10
