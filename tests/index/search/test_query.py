"""Question analysis (`corpusbot.index.search.query`): what a question asks for, before any scoring.

Expected terms are Snowball stems written out ("tariffs" -> "tariff", "United States" -> "unit state",
"US" -> the country term "u_s"); the weights follow the module's rules: the user's words 1.0, a synonym
``SYNONYM_WEIGHT`` (half), an alternative of n words ``SYNONYM_WEIGHT / n`` for each of its words.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusbot.index.errors import CorpusbotError
from corpusbot.index.search.query import SYNONYM_WEIGHT, ParsedQuery, Synonyms, WeightedTerm, parse_query
from corpusbot.index.text.tokenizer import Tokenizer


def asked(*terms: str) -> tuple[WeightedTerm, ...]:
    """The user's own words, each at weight 1."""
    return tuple(WeightedTerm(term, 1.0, "query") for term in terms)


def synonym(term: str, weight: float, source: str) -> WeightedTerm:
    return WeightedTerm(term, weight, "synonym", source)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    """A tokenizer of its own (the filler terms are cached per tokenizer)."""
    return Tokenizer()


@pytest.fixture(scope="module")
def bundled_synonyms(tokenizer: Tokenizer) -> Synonyms:
    """The synonyms shipped with the package, without a user file."""
    return Synonyms.load(tokenizer)


@pytest.fixture
def steel_synonyms() -> Synonyms:
    """Hand-made groups, as token sequences: steel = iron ore, and metal = iron."""
    return Synonyms([[("steel",), ("iron", "ore")], [("metal",), ("iron",)]])


def test_the_half_weight_of_a_synonym() -> None:
    assert SYNONYM_WEIGHT == 0.5


# -- stopwords and filler ------------------------------------------------------


def test_stopwords_and_question_words_are_dropped(tokenizer: Tokenizer) -> None:
    parsed = parse_query("What are the tariffs on steel?", tokenizer)
    assert parsed.terms == asked("tariff", "steel")
    assert parsed.query_terms == ("tariff", "steel")
    assert parsed.text == "What are the tariffs on steel?"


@pytest.mark.parametrize(
    ("question", "terms"),
    [
        ("Tell me about tariffs", ("tariff",)),
        ("Please explain the steel tariffs", ("steel", "tariff")),
        ("Can you show me anything on exports?", ("export",)),
        ("How many tariffs?", ("tariff",)),
        ("I want information about rare earth magnets", ("rare", "earth", "magnet")),
        ("We'd like to know about the steel tariffs", ("steel", "tariff")),
        ("i just wanted info on exports", ("export",)),
        ("we'd really like to know the tariffs", ("tariff",)),
        ("What does China want from the US?", ("china", "want", "u_s")),  # what others want is asked
        ("where are the trade talks taking place", ("trade", "talk")),  # "take place": only that it happens
        ("What happened to the steel tariffs?", ("steel", "tariff")),
        ("Will they take action on the place names?", ("take", "action", "place", "name")),  # not the idiom
    ],
)
def test_filler_is_dropped_when_other_words_remain(tokenizer: Tokenizer, question: str, terms: tuple[str, ...]) -> None:
    assert parse_query(question, tokenizer).terms == asked(*terms)


@pytest.mark.parametrize(
    ("question", "terms"),
    [
        ("Tell me, please", ("tell", "pleas")),
        ("Explain", ("explain",)),
        ("show me", ("show",)),
        ("where did it take place?", ("take", "place")),
    ],
)
def test_a_question_of_filler_only_keeps_it(tokenizer: Tokenizer, question: str, terms: tuple[str, ...]) -> None:
    assert parse_query(question, tokenizer).terms == asked(*terms)


def test_a_repeated_word_stays_in_the_terms_each_time(tokenizer: Tokenizer) -> None:
    assert parse_query("tariffs, tariffs and more tariffs", tokenizer).terms == asked("tariff", "tariff", "tariff")


def test_surface_maps_each_term_to_the_word_typed(tokenizer: Tokenizer) -> None:
    parsed = parse_query("Tariffs on US steel", tokenizer)
    assert parsed.surface == {"tariff": "Tariffs", "u_s": "US", "steel": "steel"}


# -- quoted phrases ------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "phrases"),
    [
        ('"rare earth" magnets', (("rare", "earth"),)),
        ("“rare earth” magnets", (("rare", "earth"),)),
        ('"rare earths of China" and "steel tariffs"', (("rare", "earth", "china"), ("steel", "tariff"))),
        ('"tariffs" on steel', ()),  # one word is not a phrase
        ('"the tariffs" on steel', ()),  # nor is one word among stopwords
        ('"rare earth magnets', ()),  # an unclosed quote is no phrase, and no error
    ],
)
def test_quoted_phrases(tokenizer: Tokenizer, question: str, phrases: tuple[tuple[str, ...], ...]) -> None:
    assert parse_query(question, tokenizer).phrases == phrases


def test_the_words_of_a_phrase_are_also_ordinary_terms(tokenizer: Tokenizer) -> None:
    assert parse_query('"rare earth" magnets', tokenizer).terms == asked("rare", "earth", "magnet")


# -- exclusions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "terms", "excluded"),
    [
        ("tariffs -steel", ("tariff",), {"steel"}),
        ("-steel tariffs", ("tariff",), {"steel"}),
        ("tariffs\t-steel", ("tariff",), {"steel"}),
        ("steel tariffs -steel", ("tariff",), {"steel"}),  # an excluded word is not asked for anywhere
        ("tariffs -U.S.", ("tariff",), {"u_s"}),
        ("exports -IL6", ("export",), {"il", "6"}),  # every term of the excluded word
        ("tariffs -the", ("tariff",), set()),  # a stopword excludes nothing
        ("rare-earth magnets", ("rare", "earth", "magnet"), set()),  # a hyphen inside a word is no exclusion
        ("tariffs - steel", ("tariff", "steel"), set()),  # nor is a dash on its own
        ("--steel", ("steel",), set()),
        ("-steel", (), {"steel"}),
    ],
)
def test_minus_word_exclusions(tokenizer: Tokenizer, question: str, terms: tuple[str, ...], excluded: set[str]) -> None:
    parsed = parse_query(question, tokenizer)
    assert parsed.terms == asked(*terms)
    assert parsed.excluded == frozenset(excluded)


def test_an_excluded_word_has_no_surface_form(tokenizer: Tokenizer) -> None:
    assert parse_query("tariffs -steel", tokenizer).surface == {"tariff": "tariffs"}


# -- synonyms ------------------------------------------------------------------


def test_a_one_word_question_gains_its_synonyms_at_half_and_a_quarter_weight(
    tokenizer: Tokenizer, bundled_synonyms: Synonyms
) -> None:
    # The bundled group "US, U.S., USA, United States, America": one-word "america" at half weight,
    # the two-word "united states" at a quarter for each word; and "Washington, U.S." (the capital for the
    # government) adds "washington" at half weight.
    parsed = parse_query("US tariffs", tokenizer, bundled_synonyms)
    assert parsed.terms == (
        *asked("u_s", "tariff"),
        synonym("america", 0.5, "u_s"),
        synonym("unit", 0.25, "u_s"),
        synonym("state", 0.25, "u_s"),
        synonym("washington", 0.5, "u_s"),
    )
    assert parsed.query_terms == ("u_s", "tariff")


def test_a_two_word_form_in_the_question_is_expanded_too(tokenizer: Tokenizer, bundled_synonyms: Synonyms) -> None:
    parsed = parse_query("United States tariffs", tokenizer, bundled_synonyms)
    assert parsed.terms == (
        *asked("unit", "state", "tariff"),
        synonym("america", 0.5, "unit state"),
        synonym("u_s", 0.5, "unit state"),
    )


def test_an_alternative_of_four_words_gives_each_an_eighth(tokenizer: Tokenizer, bundled_synonyms: Synonyms) -> None:
    parsed = parse_query("NATO", tokenizer, bundled_synonyms)
    assert parsed.terms == (
        *asked("nato"),
        *(synonym(term, 0.125, "nato") for term in ("north", "atlant", "treati", "organiz")),
    )


def test_an_alternative_already_in_the_question_adds_nothing(tokenizer: Tokenizer, bundled_synonyms: Synonyms) -> None:
    parsed = parse_query("US and Washington and America", tokenizer, bundled_synonyms)
    assert parsed.terms == (
        *asked("u_s", "washington", "america"),
        synonym("unit", 0.25, "u_s"),
        synonym("state", 0.25, "u_s"),
    )


def test_excluded_words_bring_no_synonyms(tokenizer: Tokenizer, bundled_synonyms: Synonyms) -> None:
    assert parse_query("tariffs -US", tokenizer, bundled_synonyms).terms == asked("tariff")


def test_without_synonyms_nothing_is_added(tokenizer: Tokenizer) -> None:
    assert parse_query("US tariffs", tokenizer).terms == asked("u_s", "tariff")


def test_a_term_reached_twice_keeps_its_highest_weight(tokenizer: Tokenizer, steel_synonyms: Synonyms) -> None:
    # "steel" gives iron and ore at a quarter; "metal" gives iron alone at a half, which wins.
    parsed = parse_query("steel metal", tokenizer, steel_synonyms)
    assert parsed.terms == (*asked("steel", "metal"), synonym("iron", 0.5, "metal"), synonym("ore", 0.25, "steel"))


def test_a_multi_word_form_in_the_question_is_the_source(tokenizer: Tokenizer, steel_synonyms: Synonyms) -> None:
    parsed = parse_query("iron ore prices", tokenizer, steel_synonyms)
    # One-word forms are looked up before two-word ones.
    assert parsed.terms == (
        *asked("iron", "ore", "price"),
        synonym("metal", 0.5, "iron"),
        synonym("steel", 0.5, "iron ore"),
    )


def test_a_word_already_asked_is_not_added_again_from_a_longer_alternative(tokenizer: Tokenizer) -> None:
    synonyms = Synonyms([[("steel",), ("steel", "plate")]])
    assert parse_query("steel", tokenizer, synonyms).terms == (*asked("steel"), synonym("plate", 0.25, "steel"))
    assert parse_query("steel plate", tokenizer, synonyms).terms == asked("steel", "plate")


def test_bundled_groups(bundled_synonyms: Synonyms) -> None:
    # US, U.S. and USA are all the country term: one form, not three.
    assert bundled_synonyms.alternatives(("u_s",)) == {("america",), ("unit", "state"), ("washington",)}
    assert bundled_synonyms.alternatives(("eu",)) == {("european", "union"), ("brussel",)}
    assert bundled_synonyms.alternatives(("european", "union")) == {("eu",)}
    assert bundled_synonyms.alternatives(("tariff",)) == set()
    assert bundled_synonyms.longest == 4  # "North Atlantic Treaty Organization"
    # One way: "talk on the phone" also matches "call"; "call" does not bring "talk" (talks are not calls).
    assert bundled_synonyms.alternatives(("talk", "phone")) == {("call",)}
    assert bundled_synonyms.alternatives(("call",)) == set()
    # One way: a post makes something known ("posted on social media"); an announcement need not be a post.
    assert bundled_synonyms.alternatives(("post",)) == {("publish",), ("announc",), ("declar",)}
    assert ("post",) not in bundled_synonyms.alternatives(("announc",))


def test_hand_made_groups() -> None:
    synonyms = Synonyms([[("a",), ("b", "c")], [("a",), ("d",)]])
    assert synonyms.alternatives(("a",)) == {("b", "c"), ("d",)}
    assert synonyms.alternatives(("d",)) == {("a",)}  # groups are joined per form, not transitively
    assert synonyms.longest == 2
    assert Synonyms().longest == 0
    assert Synonyms().alternatives(("a",)) == set()


def test_a_one_way_pair_matches_from_its_forms_only() -> None:
    synonyms = Synonyms([[("a",), ("b",)]], one_way=[([("talk", "phone"), ("speak", "phone")], [("call",)])])
    assert synonyms.alternatives(("talk", "phone")) == {("call",)}
    assert synonyms.alternatives(("speak", "phone")) == {("call",)}
    assert synonyms.alternatives(("call",)) == set()
    assert synonyms.longest == 2


def test_a_one_way_line_with_an_empty_side_adds_nothing(tokenizer: Tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "synonyms.txt"
    path.write_text("=> steel\nrebar =>\nthe => steel\n", encoding="utf-8")
    synonyms = Synonyms.load(tokenizer, path)
    assert synonyms.alternatives(("rebar",)) == set()
    assert synonyms.alternatives(()) == set()


# -- the user's synonyms file --------------------------------------------------


@pytest.fixture
def user_synonyms_file(tmp_path: Path) -> Path:
    """A user file: two commented-out groups, a blank line, two groups, a group whose other form is a stopword
    and a one-way line."""
    path = tmp_path / "synonyms.txt"
    path.write_text(
        "# steel, wheat\n   # steel, grain\n\nUS, Stateside\nsteel, iron ore\nthe, steel\nrebar, steel bars => steel\n",
        encoding="utf-8",
    )
    return path


def test_a_user_file_adds_to_the_bundled_groups(tokenizer: Tokenizer, user_synonyms_file: Path) -> None:
    synonyms = Synonyms.load(tokenizer, user_synonyms_file)
    assert synonyms.alternatives(("u_s",)) == {("america",), ("unit", "state"), ("washington",), ("statesid",)}
    assert synonyms.alternatives(("statesid",)) == {("u_s",)}
    # Neither the commented-out groups, the stopword form "the" (no terms) nor the one-way line give steel another
    # alternative; the one-way line gives its left forms steel.
    assert synonyms.alternatives(("steel",)) == {("iron", "ore")}
    assert synonyms.alternatives(("rebar",)) == {("steel",)}
    assert synonyms.alternatives(("steel", "bar")) == {("steel",)}
    assert parse_query("Stateside tariffs", tokenizer, synonyms).terms == (
        *asked("statesid", "tariff"),
        synonym("u_s", 0.5, "statesid"),
    )
    assert parse_query("rebar prices", tokenizer, synonyms).terms == (
        *asked("rebar", "price"),
        synonym("steel", 0.5, "rebar"),
    )


@pytest.mark.parametrize("extra", [None, ""])
def test_no_user_file_means_the_bundled_groups_only(
    tokenizer: Tokenizer, bundled_synonyms: Synonyms, extra: str | None
) -> None:
    synonyms = Synonyms.load(tokenizer, extra)
    assert synonyms.alternatives(("u_s",)) == bundled_synonyms.alternatives(("u_s",))
    assert synonyms.longest == bundled_synonyms.longest


def test_an_empty_user_file_changes_nothing(tokenizer: Tokenizer, bundled_synonyms: Synonyms, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    assert Synonyms.load(tokenizer, empty).alternatives(("u_s",)) == bundled_synonyms.alternatives(("u_s",))


@pytest.mark.parametrize("kind", ["missing", "folder", "not utf-8"])
def test_an_unreadable_user_file_is_a_user_error_naming_the_file(
    tokenizer: Tokenizer, tmp_path: Path, kind: str
) -> None:
    path = {"missing": tmp_path / "nowhere.txt", "folder": tmp_path, "not utf-8": tmp_path / "latin1.txt"}[kind]
    if kind == "not utf-8":
        path.write_bytes(b"US, \xe9tats-unis\n")
    with pytest.raises(CorpusbotError) as caught:
        Synonyms.load(tokenizer, path)
    message = str(caught.value)
    assert f"Cannot read the synonyms file {path} (" in message
    assert "CORPUSBOT_SYNONYMS" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# -- the expected answer type --------------------------------------------------


@pytest.mark.parametrize(
    ("question", "answer_type"),
    [
        ("Who leads the delegation?", "person"),
        ("whom did the minister meet?", "person"),
        ("Whose plan was adopted?", "person"),
        ("  WHO signed the accord?", "person"),
        ("How many tariffs were raised?", "number"),
        ("how much steel is exported?", "number"),
        ("How long did the talks last?", "number"),
        ("How far is the port?", "number"),
        ("How old is the treaty?", "number"),
        ("How big is the market?", "number"),
        ("How large is the deficit?", "number"),
        ("When do the tariffs start?", "date"),
        ("What year was the treaty signed?", "date"),
        ("What time do the talks begin?", "date"),
        ("what date was set?", "date"),
        ("What day is the vote?", "date"),
        ("What month is the vote?", "date"),
        ("Which day is the vote?", "date"),
        ("Which year was it signed?", "date"),
        ("Where were the talks held?", "place"),
        ("Why were tariffs raised?", None),
        ("What are the tariffs?", None),
        ("How did the talks go?", None),
        ("Which country exports steel?", None),
        ("Tell me who leads the delegation", None),  # the question word must open the question
        ("Whoever wins, tariffs stay", None),
        ("Somewhere a port opens", None),
        # people named by a noun: after which/what, or in a fragment without a question word
        ("Which officials attended the talks?", "person"),
        ("what senior negotiators are going", "person"),
        ("delegation members?", "person"),
        ("names of the negotiators", "person"),
        ("How many members voted?", "number"),
        ("What did the officials say?", None),
        ("what do members get?", None),  # "do" is no kind of member
        ("Did the leaders meet?", None),
    ],
)
def test_the_question_word_sets_the_expected_answer_type(
    tokenizer: Tokenizer, question: str, answer_type: str | None
) -> None:
    assert parse_query(question, tokenizer).answer_type == answer_type


# -- odd input -----------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   ", '"', '""', "“", "-", "- -", "?!", "the of and"])
def test_a_question_without_words_parses_to_nothing(tokenizer: Tokenizer, question: str) -> None:
    assert parse_query(question, tokenizer) == ParsedQuery(question, ())
