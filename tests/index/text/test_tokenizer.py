"""The tokenizer: the country "US" vs the pronoun "us", hyphens, apostrophes, numbers and dates, unicode,
letters and digits as separate runs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corpusbot.index.indexing.term_cache import PassageTerms
from corpusbot.index.text.tokenizer import COUNTRY_US, Tokenizer, default_tokenizer

terms = default_tokenizer().terms


@pytest.mark.parametrize(
    "text", ["US delegation", "U.S. delegation", "U.S.A. delegation", "USA delegation", "ＵＳ delegation"]
)
def test_the_country_us_is_kept(text: str) -> None:
    assert terms(text) == [COUNTRY_US, "deleg"]


@pytest.mark.parametrize("text", ["tell us", "Let us go", "us", "Us and them", "between us"])
def test_the_pronoun_us_is_a_stopword(text: str) -> None:
    assert COUNTRY_US not in terms(text)


def test_a_question_about_the_us_matches_a_passage_naming_the_us() -> None:
    question = set(terms("Who is on the US delegation?"))
    passage = set(terms("Delegations from China and the U.S. will hold talks; he told us so."))
    assert {COUNTRY_US, "deleg"} <= question & passage


def test_country_marker_cannot_come_from_a_word() -> None:
    assert COUNTRY_US not in terms("u_s u s U S us_ u-s")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sino-US talks", ["sino", COUNTRY_US, "talk"]),
        ("plant-related products", ["plant", "relat", "product"]),
        ("COVID-19", ["covid", "19"]),
        ("co-operate", ["co", "oper"]),
    ],
)
def test_hyphens_separate_words(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("China's exports", ["china", "export"]),
        ("China’s exports", ["china", "export"]),  # typographic apostrophe
        ("don't won’t can't", []),  # stopwords, either apostrophe
        ("rock'n'roll", ["rocknrol"]),
        ("'quoted'", ["quot"]),
    ],
)
def test_apostrophes(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("June 9", ["june", "9"]),
        ("2025-06-09", ["2025", "06", "09"]),
        ("3.5% growth", ["3.5", "growth"]),
        ("$1,000,000", ["1,000,000"]),
        ("20:30", ["20", "30"]),
        ("9/11", ["9", "11"]),
        ("1st 2nd", ["1", "st", "2", "nd"]),
    ],
)
def test_numbers_and_dates(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("CAFÉ", "café"),  # case
        ("STRASSE", "straße"),  # casefold
        ("ﬁnance", "finance"),  # NFKC ligature
        ("ｔｒａｄｅ", "trade"),  # fullwidth
        ("negotiations", "negotiating"),  # stemming
        ("licence", "license"),  # one spelling
    ],
)
def test_unicode_forms_of_one_word_are_one_term(a: str, b: str) -> None:
    assert terms(a) == terms(b) and terms(a)


def test_other_scripts_are_words_and_emoji_are_not() -> None:
    assert terms("中国 日本") == ["中国", "日本"]
    assert terms("محادثات لندن") == ["محادثات", "لندن"]
    assert terms("🦀 🚀 😀 ❤️") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("हिन्दी भाषा में समाचार", ["हिन्दी", "भाषा", "में", "समाचार"]),  # vowel signs and virama are marks (Mn/Mc)
        ("বাংলা ভাষা", ["বাংলা", "ভাষা"]),
        ("ภาษาไทย", ["ภาษาไทย"]),
        ("\u0301abc", ["abc"]),  # a mark never starts a word
    ],
)
def test_combining_marks_stay_inside_their_word(text: str, expected: list[str]) -> None:
    assert terms(text) == expected
    assert PassageTerms()(text) == expected  # the indexer's word cache splits the same way
    spans = [text[t.start : t.end] for t in default_tokenizer().tokens(text)]
    assert spans == expected


def test_compatibility_characters_never_make_terms_with_spaces() -> None:
    # U+FDFA is one letter whose NFKC form is four words.
    assert all(" " not in term for term in terms("ﷺ ﷻ"))
    assert len(terms("ﷺ")) == 1


def test_token_spans_point_into_the_original_text() -> None:
    text = "The U.S. delegation’s ﬁnance chief"
    tokens = default_tokenizer().tokens(text)
    assert [(t.term, text[t.start : t.end]) for t in tokens] == [
        (COUNTRY_US, "U.S."),
        ("deleg", "delegation’s"),
        ("financ", "ﬁnance"),
        ("chief", "chief"),
    ]


def test_stopwords_only_give_no_terms() -> None:
    assert terms("the of and is it was to be who what") == []


@pytest.mark.parametrize(
    ("forms", "expected"),
    [
        (["IL6", "IL-6", "IL 6", "il6"], ["il", "6"]),
        (["COVID19", "COVID-19", "Covid 19"], ["covid", "19"]),
        (["F35", "F-35"], ["f", "35"]),
        (["400mg", "400 mg"], ["400", "mg"]),
        (["CO2", "CO₂", "CO 2"], ["co", "2"]),  # NFKC makes the subscript a digit
        (["km²", "km2"], ["km", "2"]),
        (["3.5mg", "3.5 mg"], ["3.5", "mg"]),
    ],
)
def test_letters_and_digits_are_separate_terms(forms: list[str], expected: list[str]) -> None:
    assert [terms(form) for form in forms] == [expected] * len(forms)


def test_digit_runs_keep_their_spans() -> None:
    text = "Serum IL6 and CO₂ rose"
    tokens = default_tokenizer().tokens(text)
    assert [(t.term, text[t.start : t.end]) for t in tokens] == [
        ("serum", "Serum"),
        ("il", "IL"),
        ("6", "6"),
        ("co", "CO"),
        ("2", "₂"),
        ("rose", "rose"),
    ]


def test_acronym_plurals_next_to_numbers() -> None:
    assert terms("CEOs of G7 NGOs") == ["ceo", "g", "7", "ngo"]


@pytest.mark.parametrize("text", ["IL6/IL-10 p53-null CO₂-rich 1990s H3K4me3 miR7a x²+y² 10am–5pm U.S.-made"])
def test_the_indexer_word_cache_agrees_on_letter_digit_runs(text: str) -> None:
    assert PassageTerms()(text) == terms(text)


def test_spans_are_the_tokens_of_the_wanted_terms() -> None:
    text = "The U.S. delegation met China's IL-6 researchers; the delegations' हिन्दी notes."
    tokenizer = default_tokenizer()
    wanted = {COUNTRY_US, "deleg", "6", "हिन्दी"}
    expected = [(t.start, t.end) for t in tokenizer.tokens(text) if t.term in wanted]
    assert tokenizer.spans(text, wanted) == expected
    assert [text[a:b] for a, b in expected] == ["U.S.", "delegation", "6", "delegations", "हिन्दी"]


TOKEN_PIECES = ["US", "U.S.", "U.S.A.", "us", "ＵＳ", "CEOs", "China's", "China’s", "O'Neil's", "don't", "rock/paper",
                "IL-6", "CO₂", "x²", "3.5%", "1,000.25", "2025.06.01", "ﬁne", "ﷺ", "licences", "हिन्दी", "\u0301abc",
                "日本語", "🙂", "—", "...", "the", "a_b", "__init__", "\u00ad", "Mr.", "e.g."]  # fmt: skip
SEPARATORS = [" ", "\n\n", "\t", "\u00a0", "\u3000", "-", "/", "", "'", "."]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.lists(st.one_of(st.sampled_from(TOKEN_PIECES), st.sampled_from(SEPARATORS)), max_size=60).map("".join),
        st.text(max_size=200),
    )
)
@example("The U.S. delegation’s ﬁnance chief met us; IL6/IL-10 rock/paper CEOs of G7 NGOs")
def test_terms_per_token_agrees_with_terms(text: str) -> None:
    """The public per-token API (what the indexer's token cache uses) gives exactly ``terms``, token by token."""
    tokenizer = Tokenizer()  # a fresh one: its word cache must not be what makes them agree
    tokens = text.split()
    per_token = tokenizer.terms_per_token(tokens)
    assert per_token == [tokenizer.terms(token) for token in tokens]
    assert [term for terms in per_token for term in terms] == tokenizer.terms(text)


def test_terms_remembered_by_token_are_the_terms_of_the_words_and_the_memory_is_bounded() -> None:
    """``terms`` looks a whole token up once seen; the answer must be what the word pattern gives, every time."""
    tokenizer = Tokenizer()
    tokenizer.MAX_CACHED_WORDS = tokenizer.MAX_CACHED_TOKENS = 5  # type: ignore[misc]  # tiny: emptied mid-text
    text = "The U.S. delegation’s ﬁnance chief, said: “IL6/IL-10” us; China's 1,000 CEOs. Said, said said"
    expected = [token.term for token in tokenizer.tokens(text)]  # found by the word pattern over the whole text
    for _ in range(3):  # first seen, then remembered (and the memory emptied when full)
        assert tokenizer.terms(text) == expected
        assert len(tokenizer._token_cache) <= 5
    assert expected[:3] == [COUNTRY_US, "deleg", "financ"]
