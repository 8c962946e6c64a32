"""Property-based tests (hypothesis) for the tokenizer and the passage splitter."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corpusbot.index.text.passages import _word_before, sentence_spans, split_passages
from corpusbot.index.text.tokenizer import _ASCII_WORD, _WORD, Tokenizer, default_tokenizer

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like news as well as anything unicode can hold.
WORDS = ["US", "U.S.", "U.S.A.", "us", "Mr.", "Dr.", "China's", "don't", "won’t", "co-operate", "3.5", "1,000",
         "2025-06-09", "ﬁnance", "Ⅻ", "①", "ﷺ", "ＵＳ", "İstanbul", "straße", "中国", "مرحبا", "🦀", "e.g.", "..."]  # fmt: skip
SPACES = [" ", "  ", "\n", "\n\n", "\r\n", "\t", "\xa0", "\u2028", "\u3000", "\n \n", " \n\n\n "]
PUNCTUATION = [".", "!", "?", ",", ";", ":", "—", "\"", "“", "”", "(", ")", "'", "’", "…"]  # fmt: skip

newsy_text = st.lists(
    st.one_of(
        st.sampled_from(WORDS),
        st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=10),
        st.sampled_from(SPACES),
        st.sampled_from(PUNCTUATION),
    ),
    max_size=200,
).map("".join)
any_text = st.one_of(newsy_text, st.text(max_size=300))


# -- tokenizer ------------------------------------------------------------------


@SETTINGS
@given(any_text)
@example("ﷺ and ﷻ expand to several words under NFKC")
@example("ＵＳ delegation")
def test_tokens_index_the_original_text_and_terms_hold_no_whitespace(text: str) -> None:
    tokenizer = default_tokenizer()
    tokens = tokenizer.tokens(text)
    previous_end = 0
    for token in tokens:
        assert previous_end <= token.start < token.end <= len(text)  # in order, not overlapping
        previous_end = token.end
        assert token.term and not any(ch.isspace() for ch in token.term)
        # A token is a function of its own span of the original text.
        assert tokenizer.tokens(text[token.start : token.end]) == [(token.term, 0, token.end - token.start)]
    assert [token.term for token in tokens] == tokenizer.terms(text)


@SETTINGS
@given(any_text)
def test_the_tokenizer_is_deterministic(text: str) -> None:
    first = default_tokenizer().terms(text)
    assert default_tokenizer().terms(text) == first
    assert Tokenizer().terms(text) == first  # a fresh instance (as a new process would build) agrees


ascii_text = st.one_of(
    newsy_text.map(lambda text: text.encode("ascii", "ignore").decode("ascii")),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=300),
)


@SETTINGS
@given(ascii_text)
@example("U.S.A. and U.S. vs US's don't 3.5 1,000 2025.06 IL6 IL-6 o'clock '90s rock'n'roll _x_ a__b")
def test_ascii_text_finds_the_same_words_with_the_ascii_pattern(text: str) -> None:
    assert [m.span() for m in _ASCII_WORD.finditer(text)] == [m.span() for m in _WORD.finditer(text)]


# -- passage splitter ---------------------------------------------------------------


def _check_passages(text: str, spans: list, max_words: int) -> None:
    covered = [0] * len(text)
    previous_end = 0
    for span in spans:
        assert previous_end <= span.start < span.end <= len(text)  # ordered, non-overlapping
        previous_end = span.end
        passage = text[span.start : span.end]
        assert not passage[0].isspace() and not passage[-1].isspace()  # tight around the text
        assert len(passage.split()) <= max_words
        for index in range(span.start, span.end):
            covered[index] += 1
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and covered[i] != 1]
    assert missing == [], f"non-blank characters not covered exactly once: {missing[:10]}"


@SETTINGS
@given(newsy_text)
def test_passages_cover_all_text_in_order_with_exact_offsets(text: str) -> None:
    spans = split_passages(text)
    _check_passages(text, spans, max_words=120)
    assert split_passages(text) == spans  # deterministic


@SETTINGS
@given(newsy_text, st.integers(1, 12), st.integers(1, 20))
def test_small_word_limits_still_cover_everything(text: str, min_words: int, extra: int) -> None:
    """Tiny limits force every merge and split path on short generated texts."""
    max_words = min_words + extra
    _check_passages(text, split_passages(text, min_words=min_words, max_words=max_words), max_words)


@SETTINGS
@given(any_text)
def test_any_unicode_text_is_covered(text: str) -> None:
    _check_passages(text, split_passages(text), max_words=120)


@SETTINGS
@given(newsy_text)
def test_sentences_cover_their_passage(text: str) -> None:
    spans = sentence_spans(text)
    _check_passages(text, spans, max_words=len(text) + 1)


@SETTINGS
@given(any_text, st.data())
def test_word_before_is_the_last_word_of_the_range(text: str, data: st.DataObject) -> None:
    """The linear scan that replaced ``text[a:b].split()[-1]`` in the sentence splitter gives the same word."""
    floor = data.draw(st.integers(0, len(text)))
    position = data.draw(st.integers(floor, len(text)))
    assert _word_before(text, floor, position) == (text[floor:position].split() or [""])[-1]


@SETTINGS
@given(st.one_of(newsy_text, any_text))
def test_a_passage_of_one_line_has_the_sentences_the_line_scan_finds(text: str) -> None:
    """One line skips the scan for lines; a newline after it takes the scan, and must change nothing."""
    line = text.replace("\n", " ")
    assert sentence_spans(line) == sentence_spans(line + "\n")
