"""Question analysis (`corpusbot.index.search.query`): what a question asks for, before any scoring.

Expected terms are Snowball stems written out ("tariffs" -> "tariff", "United States" -> "unit state",
"US" -> the country term "u_s"); the weights follow the module's rules: the user's words 1.0, a synonym
``SYNONYM_WEIGHT`` (half), an alternative of n words ``SYNONYM_WEIGHT / n`` for each of its words.
"""

from __future__ import annotations

import json
import re
import string
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corpusbot.index.errors import CorpusbotError
from corpusbot.index.search.query import (
    CONTEXT_WEIGHT,
    SYNONYM_WEIGHT,
    ParsedQuery,
    Synonyms,
    WeightedTerm,
    _expansions,
    hint_words,
    parse_query,
)
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


# -- the fast paths give what reading every pattern gave -------------------------------------------------------------
# The reference: the patterns and functions of query.py at c79fdf5, before the analysis looked for each optional part
# only when its characters or words are there (copied as they were, comments and docstrings left out; they must not
# be edited). ``parse_query`` must give the same ParsedQuery, field for field and in the same order, for any text.

REFERENCE_QUOTED = re.compile(r"[\"“”]([^\"“”]+)[\"“”]")
REFERENCE_EXCLUDED = re.compile(r"(?:(?<=\s)|^)-([^\W_][\w'’.]*)")
REFERENCE_FILLER_WORDS = (
    "tell please know explain describe information info anything something thing things wonder anyone "
    "somebody anybody give show find many much happen occur go going"
)
REFERENCE_TAKE_PLACE = re.compile(r"\b(?:take|takes|taking|took|taken)\s+place\b", re.IGNORECASE)
REFERENCE_ASKER_WANTS = re.compile(
    r"\b(?:i|we)(?:['’]d)?(?:\s+(?:just|really|also|would|do|did))*\s+(?:want|wanted|wanna|like)\b", re.IGNORECASE
)
REFERENCE_IDLE = (REFERENCE_TAKE_PLACE, REFERENCE_ASKER_WANTS)
REFERENCE_LEAD = r"^\W*(?:(?:and|but|so|also|then|ok|okay)\W+)*"
REFERENCE_PEOPLE = (
    r"(?:members|officials|leaders|names|personnel|participants|delegates|negotiators|executives|ministers|"
    r"representatives|candidates|winners|speakers)\b"
)
REFERENCE_ASKING = r"(?:what|which|why|how|when|where|who|whom|whose|did|does|do|is|are|was|were|can|could|will|would)"
REFERENCE_ANSWER_TYPES = (
    ("person", re.compile(REFERENCE_LEAD + r"(?:who|whom|whose)\b", re.IGNORECASE)),
    ("number", re.compile(REFERENCE_LEAD + r"how\s+(?:many|much|long|far|old|big|large)\b", re.IGNORECASE)),
    (
        "date",
        re.compile(
            REFERENCE_LEAD + r"(?:when\b|what\s+(?:time|date|day|year|month)\b|which\s+(?:day|date|year|month)\b)",
            re.IGNORECASE,
        ),
    ),
    ("place", re.compile(REFERENCE_LEAD + r"where\b", re.IGNORECASE)),
    (
        "person",
        re.compile(
            rf"{REFERENCE_LEAD}(?:which|what)\s+(?:(?!{REFERENCE_ASKING}\b)\w+\s+)?{REFERENCE_PEOPLE}"
            rf"|^(?!.*\b{REFERENCE_ASKING}\b).*\b{REFERENCE_PEOPLE}",
            re.IGNORECASE,
        ),
    ),
)


def reference_parse_query(
    text: str, tokenizer: Tokenizer, synonyms: Synonyms | None = None, context: str | None = None
) -> ParsedQuery:
    phrases = []
    for match in REFERENCE_QUOTED.finditer(text):
        phrase = tuple(tokenizer.terms(match.group(1)))
        if len(phrase) > 1:
            phrases.append(phrase)
    excluded = frozenset(
        term for match in REFERENCE_EXCLUDED.finditer(text) for term in tokenizer.terms(match.group(1))
    )
    positive_text = REFERENCE_EXCLUDED.sub(" ", text)
    tokens = tokenizer.tokens(positive_text)
    surface = {t.term: positive_text[t.start : t.end] for t in tokens}
    words = [t.term for t in tokens if t.term not in excluded]
    filler = frozenset(tokenizer.terms(REFERENCE_FILLER_WORDS))
    idle = {
        start
        for pattern in REFERENCE_IDLE
        for match in pattern.finditer(positive_text)
        for start in range(*match.span())
    }
    content = [t.term for t in tokens if t.term not in excluded and t.term not in filler and t.start not in idle]
    context_text = " ".join(context.split()) if context else ""
    if content:
        words = content
    elif context_text and tokenizer.terms(context_text):
        words = []
    terms = [WeightedTerm(w, 1.0, "query") for w in words]
    if synonyms is not None:
        terms.extend(reference_expansions(words, synonyms))
    if context_text:
        weight = CONTEXT_WEIGHT if words else 1.0
        earlier = reference_context_terms(context_text, {t.term for t in terms} | excluded, tokenizer, weight)
        terms.extend(earlier)
        if synonyms is not None:
            present = {t.term for t in terms} | excluded
            extra = reference_expansions([t.term for t in earlier], synonyms)
            terms.extend(
                WeightedTerm(t.term, t.weight * weight, t.origin, t.source) for t in extra if t.term not in present
            )
    answer_type = next((name for name, pattern in REFERENCE_ANSWER_TYPES if pattern.search(text)), None)
    return ParsedQuery(text, tuple(terms), tuple(phrases), excluded, answer_type, surface, context_text or None)


def reference_context_terms(context: str, present: set[str], tokenizer: Tokenizer, weight: float) -> list[WeightedTerm]:
    text = REFERENCE_EXCLUDED.sub(" ", context)
    for pattern in REFERENCE_IDLE:
        text = pattern.sub(" ", text)
    words = tokenizer.terms(text)
    filler = frozenset(tokenizer.terms(REFERENCE_FILLER_WORDS))
    content = [w for w in words if w not in filler] or words
    return [WeightedTerm(w, weight, "context", context) for w in dict.fromkeys(content) if w not in present]


def reference_expansions(words: list[str], synonyms: Synonyms) -> list[WeightedTerm]:
    present = set(words)
    best: dict[str, WeightedTerm] = {}
    seen: set[tuple[str, ...]] = set()
    for size in range(1, synonyms.longest + 1):
        for start in range(len(words) - size + 1):
            form = tuple(words[start : start + size])
            for alternative in sorted(synonyms.alternatives(form)):
                if alternative in seen or set(alternative) <= present:
                    continue
                seen.add(alternative)
                weight = SYNONYM_WEIGHT / len(alternative)
                for term in alternative:
                    if term not in present and (term not in best or best[term].weight < weight):
                        best[term] = WeightedTerm(term, weight, "synonym", " ".join(form))
    return list(best.values())


def assert_parsed_as_the_reference(
    question: str, tokenizer: Tokenizer, synonyms: Synonyms | None, context: str | None
) -> None:
    parsed = parse_query(question, tokenizer, synonyms, context)
    expected = reference_parse_query(question, tokenizer, synonyms, context)
    assert parsed == expected
    assert repr(parsed) == repr(expected)  # also the order of `surface`, and 1.0 is not 1
    assert [vars(term) for term in parsed.terms] == [vars(term) for term in expected.terms]
    assert vars(parsed) == vars(expected)


def bundled_synonym_forms() -> list[str]:
    """Every alternative of the bundled synonyms file as written ("United States", "talk on the phone")."""
    text = (files("corpusbot.index.search") / "synonyms.txt").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [form.strip() for line in lines for form in line.replace("=>", ",").split(",") if form.strip()]


# What the optional parts look for (quotes, minus words, question words and openings, people nouns, filler and
# idle phrases, synonyms), in several cases, with the characters a case-insensitive pattern also reads as a letter
# (İ ı ſ and the Kelvin sign), combining marks, curly quotes and apostrophes, and full-width letters.
QUESTION_PIECES = [
    *bundled_synonym_forms(),
    *"who Who WHO whom whose when When where how many How much how long what time what year which day which what".split(),
    *"why did is are do will and And so But ok okay also then what about".split(),
    *"members officials Leaders names negotiators speakers delegation members? senior".split(),
    "tell me", "please", "explain", "information", "going", "go", "happened", "taking place", "take place",
    "took  place", "TAKES\tplace", "I want", "we'd like", "i just wanted", "We’d really like", "i wanna", "want",
    "like", "place", '"', "“", "”", "-", "-steel", "- ", "--x", "-U.S.", "-’s", "tariffs", "steel", "China's",
    "China’s", "rare-earth", "the", "of", "İ", "ı", "ſ", "\u212a", "WHİCH", "offıcials", "ſpeakers", "taKe",
    "\u0307", "e\u0301", "ＷＨＯ", "日本", "_", "2", "link", "author", "wrote", "published", "article", "it",
]  # fmt: skip
SEPARATORS = [" ", " ", "  ", ", ", "? ", "\t", "\n", "", "-", "'", "’", ".", "(", "_", "\xa0"]
questions = st.one_of(
    st.lists(st.one_of(st.sampled_from(QUESTION_PIECES), st.sampled_from(SEPARATORS)), max_size=24).map("".join),
    st.text(max_size=80),
    st.text(alphabet=st.sampled_from("whoplacekmbrsİıſ\u212a -\"“”’'?\u0307"), max_size=30),
)
EXACT = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EXACT
@given(questions, st.one_of(st.none(), questions), st.booleans())
@example("and who's going?", "who is on the US delegation?", True)
@example("where are the -US talks taking place", "I want the phone call date", True)
@example("WHİCH offıcials ſpeak", None, False)
@example("so, and then whom", None, False)
@example("”rare earth” magnets", None, False)
@example("and when?", "-steel tariffs, we'd like the take place", True)
@example('“steel tariffs" -iron', None, False)
def test_parse_query_gives_what_the_reference_gives(
    tokenizer: Tokenizer, bundled_synonyms: Synonyms, question: str, context: str | None, with_synonyms: bool
) -> None:
    assert_parsed_as_the_reference(question, tokenizer, bundled_synonyms if with_synonyms else None, context)


def evaluation_questions() -> list[dict[str, Any]]:
    """Every question of the evaluation sets in tests/data, with its earlier question ("after") when it has one."""
    data = Path(__file__).resolve().parents[2] / "data"
    paths = [*sorted(data.glob("*.json")), data / "news2" / "questions.json"]
    return [question for path in paths for question in json.loads(path.read_text(encoding="utf-8"))]


def test_every_evaluation_question_parses_as_the_reference(tokenizer: Tokenizer, bundled_synonyms: Synonyms) -> None:
    asked = evaluation_questions()
    assert len(asked) > 200
    previous = None
    for question in asked:
        for context in (None, question.get("after"), previous):
            for synonyms in (bundled_synonyms, None):
                assert_parsed_as_the_reference(question["q"], tokenizer, synonyms, context)
        previous = question["q"]


# Hand-made synonyms over a few words, so that forms of one, two and three words overlap, repeat and nest.
synonym_words = st.sampled_from("a b c d".split())
synonym_forms = st.lists(synonym_words, min_size=1, max_size=3).map(tuple)


@EXACT
@given(
    st.lists(st.lists(synonym_forms, min_size=1, max_size=4), max_size=4),
    st.lists(st.tuples(st.lists(synonym_forms, max_size=3), st.lists(synonym_forms, max_size=3)), max_size=2),
    st.lists(synonym_words, max_size=12),
)
def test_synonyms_are_found_as_reading_every_run_of_words_finds_them(
    groups: list[list[tuple[str, ...]]],
    one_way: list[tuple[list[tuple[str, ...]], list[tuple[str, ...]]]],
    words: list[str],
) -> None:
    synonyms = Synonyms(groups, one_way)
    every_run = [
        (form, tuple(sorted(synonyms.alternatives(form))))
        for size in range(1, synonyms.longest + 1)
        for start in range(len(words) - size + 1)
        if synonyms.alternatives(form := tuple(words[start : start + size]))
    ]
    assert synonyms.found_in(words) == every_run
    assert _expansions(words, synonyms) == reference_expansions(words, synonyms)


# -- hint words --------------------------------------------------------------------------------------------------


EVERY_CHARACTER = "".join(chr(code) for code in range(sys.maxunicode + 1) if not 0xD800 <= code <= 0xDFFF)


def test_a_letter_of_a_case_insensitive_pattern_matches_only_characters_hint_words_read_as_it() -> None:
    for letter in string.ascii_lowercase:
        matched = set(re.compile(letter, re.IGNORECASE).findall(EVERY_CHARACTER))
        assert {character: hint_words(character) for character in matched} == {
            character: [letter] for character in matched
        }


def test_no_character_outside_a_word_becomes_a_hint_letter() -> None:
    # so a pattern's word between \b's is a whole run of hint letters (str.lower maps each character on its own)
    outside = "".join(re.findall(r"\W", EVERY_CHARACTER))
    assert hint_words(outside) == []
    assert hint_words(outside.translate(str.maketrans({"İ": "i", "ı": "i", "ſ": "s"}))) == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Who's taking PLACE?", ["who", "s", "taking", "place"]),
        ("WHİCH offıcials ſpeak \u212aing", ["which", "officials", "speak", "king"]),
        ("e\u0301te\u0301 x_y 2b", ["e", "te", "x", "y", "b"]),
        ("", []),
    ],
)
def test_hint_words(text: str, words: list[str]) -> None:
    assert hint_words(text) == words


PEOPLE_NOUNS = (
    "members officials leaders names personnel participants delegates negotiators executives ministers "
    "representatives candidates winners speakers"
).split()


@pytest.mark.parametrize("piece", [*QUESTION_PIECES, *PEOPLE_NOUNS, "wanted"])
def test_each_piece_parses_as_the_reference(tokenizer: Tokenizer, bundled_synonyms: Synonyms, piece: str) -> None:
    for question in (piece, f"delegation {piece}?", f"which senior {piece.upper()}", f"we'd {piece}", f"took {piece}"):
        assert_parsed_as_the_reference(question, tokenizer, bundled_synonyms, None)
