"""The compiled per-token loop of ``Tokenizer.tokens_of`` (index/text/_token_scan.c) gives exactly what the Python
loop gives: the same tokens, spans and order, whatever the whitespace, cache state or kind of ``wanted``; and it
refuses damaged caches with an error (TypeError, ValueError) instead of crashing."""

from __future__ import annotations

import gc
import itertools
import random
import string
import sys
import tracemalloc
from collections.abc import Container
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corpusbot.index.corpus.discover import bundled_corpus_dir
from corpusbot.index.models import Token
from corpusbot.index.text import tokenizer as tokenizer_module
from corpusbot.index.text.passages import split_passages
from corpusbot.index.text.spelling import _STEMS, FIRST_LETTERS_CHANGED
from corpusbot.index.text.tokenizer import _ASCII_WORD, COUNTRY_US, Tokenizer

scan = tokenizer_module._token_scan

PIECES = ["US", "U.S.", "U.S.A.", "us", "ＵＳ", "CEOs", "China's", "China’s", "O'Neil's", "don't", "rock/paper",
          "IL-6", "CO₂", "x²", "3.5%", "1,000.25", "2025.06.01", "ﬁne", "ﷺ", "licences", "हिन्दी", "\u0301abc",
          "e\u0301te\u0301", "日本語", "🙂", "—", "...", "the", "said", "said,", "a_b", "\u00ad", "Mr.", "e.g.", "U.S.-made",
          "\u200b", "\ufeff", "\ud800", "oestrogen", "Oesophagus", "estrogen", "dying", "Lying", "yes", "Yacht",
          "6th", "IL6", "x2y", "(China", "don't-stop", "café"]  # fmt: skip
# Every kind of whitespace str.split() cuts at (the information separators \x1c-\x1f, NEL, NBSP, the Unicode
# spaces and line/paragraph separators) and none (glued pieces); PIECES has look-alikes it does not cut at (zero-width
# space, BOM).
SEPARATORS = [" ", "  ", "\n", "\r\n", "\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0",
              "\u1680", "\u2000", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "", "-", "'", "."]  # fmt: skip
CONTAINERS = [dict.fromkeys, set, frozenset, list]

texts = st.one_of(
    st.lists(st.one_of(st.sampled_from(PIECES), st.sampled_from(SEPARATORS)), max_size=80).map("".join),
    st.text(max_size=200),
    st.text(alphabet=st.sampled_from("ab' \xa0\x1c\u3000é\u0301"), max_size=40),
)


def reference(text: str, wanted: Container[str]) -> list[Token]:
    return Tokenizer()._tokens_of_python(text, wanted)


def wanted_terms(tokenizer: Tokenizer, text: str, pick: random.Random) -> list[str]:
    """Some of the text's terms and some it does not have."""
    terms = sorted(set(tokenizer.terms(text)))
    return [*pick.sample(terms, len(terms) // 2), "unrelated", COUNTRY_US]


def test_the_compiled_scan_is_built() -> None:
    assert scan is not None, "index/text/_token_scan.c was not compiled: reinstall with `pip install -e '.[dev]'`"


def test_tokens_of_uses_the_compiled_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    def python_loop(*args: object) -> list[Token]:
        raise AssertionError("tokens_of ran the Python loop although the compiled scan is built")

    monkeypatch.setattr(Tokenizer, "_tokens_of_python", python_loop)
    tokenizer = Tokenizer()
    text = "The U.S. delegation met us"
    for _ in range(2):  # cold caches (tokens handed back to Python), then warm ones
        assert tokenizer.tokens_of(text, {COUNTRY_US, "deleg"}) == [(COUNTRY_US, 4, 8), ("deleg", 9, 19)]


def test_without_the_compiled_scan_tokens_of_runs_the_python_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizer_module, "_token_scan", None)
    assert Tokenizer().tokens_of("The U.S. delegation", {"deleg"}) == [("deleg", 9, 19)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.randoms(use_true_random=False), st.sampled_from(CONTAINERS), st.booleans())
@example("U.S. U.S.\x1cU.S.\xa0us U.S.", random.Random(0), set, False)
@example("said said, said\u3000said\x85said", random.Random(0), dict.fromkeys, True)
def test_the_compiled_scan_gives_the_python_loops_tokens(
    text: str, pick: random.Random, container: type, want_stopwords: bool
) -> None:
    tokenizer = Tokenizer()  # fresh: the first call finds nothing cached, the second everything
    terms = wanted_terms(tokenizer, text, pick)
    if want_stopwords:  # a word whose term is "" (a stopword) counts when "" is wanted (and its token has a term)
        terms.append("")
    wanted = container(terms)
    expected = reference(text, wanted)
    assert tokenizer.tokens_of(text, wanted) == expected
    assert tokenizer.tokens_of(text, wanted) == expected
    if not want_stopwords:
        assert expected == [token for token in Tokenizer().tokens(text) if token.term in wanted]


def test_the_sample_corpus_passages_give_the_python_loops_tokens() -> None:
    tokenizer = Tokenizer()
    pick = random.Random(15)
    passages = []
    for path in sorted(bundled_corpus_dir().glob("*.txt")):
        body = path.read_text(encoding="utf-8")
        passages += [body[span.start : span.end] for span in split_passages(body)]
    assert len(passages) > 10
    found = 0
    for _ in range(2):  # cold, then warm caches
        for passage in passages:
            wanted = dict.fromkeys(wanted_terms(tokenizer, passage, pick), 1.0)
            expected = reference(passage, wanted)
            assert tokenizer.tokens_of(passage, wanted) == expected
            found += len(expected)
    assert found > 100


def test_caches_emptied_mid_text_give_the_same_tokens() -> None:
    tokenizer = Tokenizer()
    tokenizer.MAX_CACHED_WORDS = tokenizer.MAX_CACHED_TOKENS = tokenizer.MAX_CACHED_TOKEN_WORDS = 3  # type: ignore[misc]
    text = "The U.S. delegation’s ﬁnance chief said: “IL6/IL-10” us; China's 1,000 CEOs. Said, said said U.S."
    wanted = {COUNTRY_US, "deleg", "financ", "said", "6", "ceo"}
    for _ in range(3):
        assert tokenizer.tokens_of(text, wanted) == reference(text, wanted)
        assert len(tokenizer._token_cache) <= 3 and len(tokenizer._token_words_cache) <= 3


class ClearingContainer:
    """A ``wanted`` whose ``in`` empties the tokenizer's caches: the compiled loop must hold what it reads."""

    def __init__(self, tokenizer: Tokenizer, terms: set[str]) -> None:
        self.tokenizer, self.terms = tokenizer, terms

    def __contains__(self, term: object) -> bool:
        self.tokenizer._token_cache.clear()
        self.tokenizer._token_words_cache.clear()
        return term in self.terms


def test_a_container_that_empties_the_caches_does_not_crash_the_scan() -> None:
    tokenizer = Tokenizer()
    text = "U.S. delegation said the delegation met the U.S. delegation"
    terms = {COUNTRY_US, "deleg"}
    tokenizer.tokens_of(text, terms)  # fills the caches
    assert tokenizer.tokens_of(text, ClearingContainer(tokenizer, terms)) == reference(text, terms)


def test_bad_input_is_a_type_error() -> None:
    tokenizer = Tokenizer()
    with pytest.raises(TypeError):
        tokenizer.tokens_of(b"U.S. delegation", {"deleg"})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tokenizer._tokens_of_python(b"U.S. delegation", {"deleg"})  # type: ignore[arg-type]
    tokenizer.tokens_of("U.S. delegation", {"deleg"})  # cached: the scan itself would ask `in`
    for tokens_of in (tokenizer.tokens_of, tokenizer._tokens_of_python):
        with pytest.raises(AttributeError):
            tokens_of("U.S. delegation", object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("terms", "words"),
    [
        ({"delegation": ["deleg"]}, {}),  # terms not a tuple
        ({"delegation": ("deleg",)}, {"delegation": [("deleg", 0, 10)]}),  # words not a tuple
        ({"delegation": ("deleg",)}, {"delegation": (("deleg", 0),)}),  # a word not a triple
        ({"delegation": ("deleg",)}, {"delegation": ("deleg",)}),
        ({"delegation": ("deleg",)}, {"delegation": (("deleg", "0", 10),)}),  # an offset not an int
        ({"delegation": ("deleg",)}, {"delegation": (("deleg", 0, 2**70),)}),
        ({"delegation": ("deleg",)}, {"delegation": (("deleg", 0, 11),)}),  # past the token's end
        ({"delegation": ("deleg",)}, {"delegation": (("deleg", 2**62, 2**63 - 1),)}),
        ({"delegation": ("deleg",)}, {"delegation": (("deleg", 5, 4),)}),
        ({"delegation": ("deleg",)}, {"delegation": (("deleg", -1, 4),)}),
        ({"delegation": (["unhashable"], "deleg")}, {}),  # a term `in` a set refuses
        ([("delegation", ("deleg",))], {}),  # a cache not a dict
    ],
)
def test_damaged_caches_are_an_error_not_a_crash(terms: object, words: object) -> None:
    assert scan is not None
    with pytest.raises((TypeError, ValueError, OverflowError)):
        scan.tokens_of("the delegation", terms, words, {"deleg"}, Token)  # type: ignore[arg-type]


def test_errors_of_wanted_and_make_are_raised() -> None:
    assert scan is not None
    terms: dict[str, tuple[str, ...]] = {"delegation": ("deleg",)}
    words: dict[str, tuple[tuple[str, int, int], ...]] = {"delegation": (("deleg", 0, 10),)}

    class Refusing:
        def __contains__(self, term: object) -> bool:
            raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        scan.tokens_of("a delegation", terms, words, Refusing(), Token)  # type: ignore[arg-type]
    with pytest.raises(ZeroDivisionError):
        scan.tokens_of("a delegation", terms, words, {"deleg"}, lambda *_: 1 / 0)
    with pytest.raises(TypeError):
        scan.tokens_of("a delegation", terms, words, {"deleg"})  # type: ignore[call-arg]


def test_the_scan_keeps_no_references_and_no_memory() -> None:
    """Every call, the failing ones too, releases what it made: the inputs' reference counts and the memory in
    use are what they were (a token string or tuple kept per call would show after thousands of calls)."""
    assert scan is not None
    tokenizer = Tokenizer()
    text = "The U.S. delegation’s ﬁnance chief met the delegation in 日本 " * 5
    wanted = {COUNTRY_US, "deleg", "日本"}
    tokenizer.tokens_of(text, wanted)
    cached = [*tokenizer._token_cache.values(), *tokenizer._token_words_cache.values()]
    watched = [text, wanted, Token, *filter(None, cached)]  # (not the empty tuple, which the interpreter shares)
    bad_words: dict[str, Any] = {"delegation": (("deleg", "0", 10),)}

    def calls() -> None:
        for _ in range(2_000):
            tokenizer.tokens_of(text, wanted)
            scan.tokens_of("new tokens here", {}, {}, wanted, Token)  # handed back as missing
            with pytest.raises(TypeError):
                scan.tokens_of("a delegation", {"delegation": ("deleg",)}, bad_words, wanted, Token)

    calls()
    counts = [sys.getrefcount(item) for item in watched]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        calls()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert [sys.getrefcount(item) for item in watched] == counts
    assert grown < 20_000, f"{grown} bytes more after 6,000 calls"


# -- the look-ups the compiled scan leaves out ------------------------------------------------------------------------


def _starts_hold(word: str, term: str) -> bool:
    """What ``tokenizer._word_starts_of`` relies on: an ASCII word's term starts with its first letter (lower
    case), or with a letter a listed British spelling changes it to; the country is ``u_s``."""
    first = word[0].lower()
    return not term or term[0] == first or first in FIRST_LETTERS_CHANGED.get(term[0], ())


def test_every_short_ascii_word_and_the_corpora_words_keep_their_first_letter() -> None:
    tokenizer = Tokenizer()
    short = [
        "".join(letters) for size in (1, 2, 3) for letters in itertools.product(string.ascii_lowercase, repeat=size)
    ]
    spelled = [british + ending for british in _STEMS for ending in ("", "e", "es", "ed", "ing", "s", "ation", "ally")]
    corpus = [
        word
        for path in sorted(bundled_corpus_dir().glob("*.txt"))
        for word in _ASCII_WORD.findall(path.read_text(encoding="utf-8"))
    ]
    words = {*short, *spelled, *corpus, "dying", "lying", "tying", "skis", "skies", "idly", "gently", "early", "only"}
    words |= {case(word) for word in list(words) for case in (str.capitalize, str.upper)}
    broken = [(word, term) for word in sorted(words) if not _starts_hold(word, term := tokenizer._term_of(word))]
    assert broken == []
    assert tokenizer._term_of("oestrogen") == "estrogen" and "o" in FIRST_LETTERS_CHANGED["e"]


def test_a_word_whose_term_starts_with_another_letter_is_still_found() -> None:
    tokenizer = Tokenizer()
    text = "Oestrogen and oestrogens, U.S. estrogen"
    for _ in range(2):  # cold caches, then warm ones
        assert [token.start for token in tokenizer.tokens_of(text, {"estrogen"})] == [0, 14, 31]
        assert [token.term for token in tokenizer.tokens_of(text, {COUNTRY_US})] == [COUNTRY_US]


def test_tokens_that_cannot_hold_a_wanted_term_are_not_looked_up() -> None:
    tokenizer = Tokenizer()
    text = "the delegation met the traders in london"
    found = tokenizer.tokens_of(text, {"deleg": 1.0, "london": 2.0})
    assert [token.term for token in found] == ["deleg", "london"]
    # Only the tokens looked up and not found were worked out (and cached): not "met" or "traders", whose words
    # start with no letter a wanted term starts with.
    assert set(tokenizer._token_cache) == {"delegation", "london"}
    tokenizer._token_cache.clear()

    class Wider(dict):  # type: ignore[type-arg]
        """A container whose `in` accepts more than it lists: every token is looked up for it."""

        def __contains__(self, term: object) -> bool:
            return str(term).startswith("m") or super().__contains__(term)

    assert [token.term for token in tokenizer.tokens_of(text, Wider.fromkeys(["deleg"]))] == ["deleg", "met"]


@pytest.mark.parametrize("starts", [b"\x01" * 127, b"\x01" * 129, bytearray(128), "x" * 128, 7])
def test_starts_that_are_not_128_bytes_are_a_type_error(starts: object) -> None:
    assert scan is not None
    with pytest.raises(TypeError, match="starts"):
        scan.tokens_of("a delegation", {}, {}, {"deleg"}, Token, starts)  # type: ignore[arg-type]
