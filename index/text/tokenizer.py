"""The one tokenizer, used for passages and questions alike.

Pipeline: NFKC-normalise, find word-like runs (letters with inner apostrophes,
numbers, decimal numbers; letters and digits make separate runs, so "IL6", "IL-6"
and "IL 6" give the same terms), map the country "US"/"U.S." to its own term before
lowercasing so it does not vanish with the stopword "us", casefold, drop English
stopwords, use American spelling for listed word families (licence -> license), then
Snowball-stem (PyStemmer).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container, Iterable
from functools import lru_cache
from itertools import chain
from typing import cast

import Stemmer

from corpusbot.index.models import Token
from corpusbot.index.text.spelling import FIRST_LETTERS_CHANGED, americanise

try:  # the compiled per-token loop of ``tokens_of`` (setup.py builds it when a C compiler is there)
    from corpusbot.index.text import _token_scan
except ImportError:  # pragma: no cover - depends on the install
    # mypy types `_token_scan` as the module (from _token_scan.pyi); the code still checks it for None.
    _token_scan = None  # type: ignore[assignment]

TOKENIZER_NAME = (
    "corpusbot-v4 (nfkc, casefold, en-stopwords, letter-digit-split, combining-marks, acronym-plurals, us-spelling, "
    "snowball-english)"
)

# The term the country abbreviation becomes. It cannot collide with a stemmed
# English word because stems never contain an underscore.
COUNTRY_US = "u_s"

# Digits, including the superscript and subscript ones NFKC turns into digits (CO₂ is CO2 is CO 2).
_DIGIT = r"[\d\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089]"
_LETTER = r"[^\W\d\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089_]"


def _mark_class() -> str:
    """A character class of the combining marks (Mn, Mc, Me) of the Basic Multilingual Plane.

    Python's ``\\w`` has no marks, so without them a Devanagari word such as हिन्दी would fall apart at its vowel
    signs; a mark continues the word it follows (it never starts one).
    """
    ranges: list[list[int]] = []
    for code in range(0x0300, 0x10000):
        if unicodedata.category(chr(code)) in ("Mn", "Mc", "Me"):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "[" + "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges) + "]"


_MARK = _mark_class()
_LETTERS = rf"{_LETTER}+(?:{_MARK}+{_LETTER}*)*"  # letters, with combining marks inside or at the end
# Letters and digits make separate runs, as Lucene's WordDelimiterFilter splits on numerics: product and
# gene names are written joined, hyphenated or spaced (IL6 / IL-6 / IL 6, COVID19 / COVID-19, F35 / F-35,
# 400mg / 400 mg) and should match each other; the adjacent-word bonus still favours the pair kept together.
_WORD = re.compile(
    rf"""
    U\.S\.(?:A\.)?                          # U.S. / U.S.A. (kept whole, see COUNTRY_US)
    | \d+(?:[.,]\d+)+                       # 3.5  1,000  2025.06
    | {_LETTERS}(?:['’]{_LETTERS})*        # words, with inner apostrophes (China's, don't)
    | {_DIGIT}+                             # numbers (IL6 -> IL 6, 1990s -> 1990 s)
    """,
    re.VERBOSE,
)
# _WORD restricted to ASCII text, where it finds the same words faster (no mark or Unicode classes to test);
# most passages of English news are ASCII.
_ASCII_WORD = re.compile(r"U\.S\.(?:A\.)?|\d+(?:[.,]\d+)+|[A-Za-z]+(?:'[A-Za-z]+)*|\d+")
_COUNTRY_FORMS = frozenset({"US", "USA", "U.S.", "U.S.A."})
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
_ACRONYM_PLURAL = re.compile(r"^[A-Z]{2,}s$")

# English function words. "us" is here as the pronoun; the country survives as COUNTRY_US.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because
    been before being below between both but by can can't cannot could couldn't did
    didn't do does doesn't doing don't down during each few for from further had
    hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
    herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's
    its itself let's me more most mustn't my myself no nor not of off on once only or
    other ought our ours ourselves out over own same shan't she she'd she'll she's
    should shouldn't so some such than that that's the their theirs them themselves
    then there there's these they they'd they'll they're they've this those through
    to too under until up very was wasn't we we'd we'll we're we've were weren't what
    what's when when's where where's which while who who's whom why why's will with
    won't would wouldn't you you'd you'll you're you've your yours yourself
    yourselves us also just may might must shall s t
    """.split()
)


def _words_pattern(text: str) -> re.Pattern[str]:
    return _ASCII_WORD if text.isascii() else _WORD


class Tokenizer:
    """Turns text into BM25 terms; ``tokens`` also reports where each came from."""

    name = TOKENIZER_NAME

    MAX_CACHED_WORDS = 500_000
    MAX_CACHED_TOKENS = 200_000  # ~100 bytes each: at most ~20 MB more than the word cache alone
    MAX_CACHED_TOKEN_WORDS = 50_000  # tokens_of's hits with their words: ~200 bytes each, at most ~10 MB more

    def __init__(self) -> None:
        # No PyStemmer cache: its default 10,000-word LRU thrashes on a corpus vocabulary.
        # Our own cache maps each raw word to its final term ("" for a stopword) instead.
        self._stemmer = Stemmer.Stemmer("english", 0)
        self._cache: dict[str, str] = {}
        self._token_cache: dict[str, tuple[str, ...]] = {}  # whitespace-separated token -> its terms (``terms``)
        # Token -> its words (``_token_words``); only for the tokens ``tokens_of`` found a wanted term in.
        self._token_words_cache: dict[str, tuple[tuple[str, int, int], ...]] = {}

    def tokens(self, text: str) -> list[Token]:
        """Terms with their character spans in ``text`` (spans index the original string)."""
        cached = self._cache.get
        found = []
        for match in _words_pattern(text).finditer(text):
            raw = match.group()
            term = cached(raw)
            if term is None:
                term = self._term_of(raw)
            if term:
                found.append(Token(term, *match.span()))
        return found

    def spans(self, text: str, wanted: Container[str]) -> list[tuple[int, int]]:
        """Where the words whose terms are in ``wanted`` are (``tokens_of`` without the terms)."""
        return [(token.start, token.end) for token in self.tokens_of(text, wanted)]

    def tokens_of(self, text: str, wanted: Container[str]) -> list[Token]:
        """``tokens(text)`` whose terms are in ``wanted``.

        By whitespace-separated token, as ``terms`` reads a text: each token's terms come from the token cache,
        and only the tokens with a wanted term have their words (from the words cache) looked at. The compiled
        loop (``_token_scan.c``) does that for the cached tokens and hands back the others; without it,
        ``_tokens_of_python`` does the same. The compiled loop does not even look up an ASCII token none of whose
        words starts with a letter a wanted term can start with (``_word_starts_of``): most tokens of a passage.
        """
        if _token_scan is None:
            return self._tokens_of_python(text, wanted)
        wanted_has = wanted.__contains__  # (first: a `wanted` without it fails as in the Python loop)
        found, missing = _token_scan.tokens_of(
            text, self._token_cache, self._token_words_cache, wanted, Token, _word_starts_of(wanted)
        )
        if missing:
            for at, token in missing:
                terms = self._token_cache.get(token)
                if any(map(wanted_has, self._token_terms(token) if terms is None else terms)):
                    words = self._token_words_cache.get(token)
                    if words is None:
                        words = self._token_words(token)
                    found.extend(Token(term, at + start, at + end) for term, start, end in words if wanted_has(term))
            found.sort(key=lambda token: token.start)
        return found

    def _token_words(self, token: str) -> tuple[tuple[str, int, int], ...]:
        """Each word of one whitespace-free token as (term, start, end) in it ("" for a stopword), remembered."""
        words = tuple(
            (self._term_of(match.group()), match.start(), match.end())
            for match in _words_pattern(token).finditer(token)
        )
        if len(self._token_words_cache) >= self.MAX_CACHED_TOKEN_WORDS:
            self._token_words_cache.clear()
        self._token_words_cache[token] = words
        return words

    def _tokens_of_python(self, text: str, wanted: Container[str]) -> list[Token]:
        """``tokens_of`` without the compiled scan: each distinct token's terms, and the wanted tokens looked for
        (``str.find``) whole."""
        cache = self._token_cache
        wanted_has = wanted.__contains__
        found: list[Token] = []
        for token in set(text.split()):
            terms = cache.get(token)
            if terms is None:
                terms = self._token_terms(token)
            if not any(map(wanted_has, terms)):
                continue
            words = [
                (term, match.start(), match.end())
                for match in _words_pattern(token).finditer(token)
                if wanted_has(term := self._term_of(match.group()))
            ]
            at = text.find(token)
            while at >= 0:
                end = at + len(token)
                if (at == 0 or text[at - 1].isspace()) and (end == len(text) or text[end].isspace()):
                    found.extend(Token(term, at + start, at + stop) for term, start, stop in words)
                at = text.find(token, at + 1)
        found.sort(key=lambda token: token.start)
        return found

    def terms(self, text: str) -> list[str]:
        """Just the terms, in order (duplicates kept: BM25 counts them).

        By whitespace-separated token, each looked up whole ("said," "China's" "June"): the words of a text are
        the words of its ``text.split()`` tokens (see ``terms_per_token``), and a token seen before costs one
        C-level lookup instead of the word pattern's scan and a lookup per word.
        """
        tokens = text.split()
        found = list(map(self._token_cache.get, tokens))
        if None in found:
            terms = (self._token_terms(token) if got is None else got for got, token in zip(found, tokens, strict=True))
            return list(chain.from_iterable(terms))
        return list(chain.from_iterable(cast("list[tuple[str, ...]]", found)))

    def _token_terms(self, token: str) -> tuple[str, ...]:
        """The terms of one whitespace-free token (none for a stopword or punctuation), remembered."""
        terms = tuple(filter(None, (self._term_of(word) for word in _words_pattern(token).findall(token))))
        if len(self._token_cache) >= self.MAX_CACHED_TOKENS:
            self._token_cache.clear()
        self._token_cache[token] = terms
        return terms

    def terms_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.terms(text) for text in texts]

    def terms_per_token(self, tokens: Iterable[str]) -> list[list[str]]:
        """The terms of each whitespace-separated token, in order; the words of all of them are stemmed in one call.

        A token gives no term (a stopword, punctuation), one, or several ("rock/paper"). The word pattern never
        matches whitespace and looks neither behind nor ahead, so the words of a text are the words of its
        ``text.split()`` tokens, and each word becomes its term on its own: joining the lists this returns for
        ``text.split()`` gives exactly ``terms(text)``. Meant for callers that keep their own cache per token
        (the indexer's ``PassageTerms``); it does not use or fill this tokenizer's word cache.
        """
        words = [[_normalise(word) for word in _WORD.findall(token)] for token in tokens]
        stems = iter(self._stem([word for found in words for word in found if word]))
        return [[next(stems) for word in found if word] for found in words]

    def _stem(self, words: list[str]) -> list[str]:
        """Stem already-normalised words, all in one call (the country marker stays as it is)."""
        stems: list[str] = self._stemmer.stemWords(words)
        return [COUNTRY_US if word == COUNTRY_US else stem for word, stem in zip(words, stems, strict=True)]

    def _term_of(self, raw: str) -> str:
        term = self._cache.get(raw)
        if term is None:
            word = _normalise(raw)
            # The country marker must not be touched by the stemmer.
            term = word if word in ("", COUNTRY_US) else self._stemmer.stemWord(word)
            if len(self._cache) >= self.MAX_CACHED_WORDS:
                self._cache.clear()
            self._cache[raw] = term
        return term


@lru_cache(maxsize=200_000)
def _normalise(raw: str) -> str:
    """One raw match -> its unstemmed term, or "" when it is a stopword."""
    word = unicodedata.normalize("NFKC", raw)
    if word in _COUNTRY_FORMS:  # after NFKC, so the fullwidth "ＵＳ" is the country too
        return COUNTRY_US
    if _ACRONYM_PLURAL.match(word):  # "CEOs", "NGOs", "RXRs": the plural of an acronym is the acronym
        word = word[:-1]
    # Some compatibility characters expand to several words (U+FDFA); a term never holds whitespace.
    word = "".join(word.casefold().replace("’", "'").split())
    if word in STOPWORDS:
        return ""
    word = _POSSESSIVE.sub("", word)
    if word in STOPWORDS:
        return ""
    word = word.replace("'", "")
    if word in STOPWORDS or not word:
        return ""
    return americanise(word)


def _word_starts_of(wanted: object) -> bytes | None:
    """For ``tokens_of``'s compiled loop: by ASCII character, whether a word starting with it can have a term in
    ``wanted`` (None unless ``wanted`` is a plain dict or set, whose terms are exactly those it lists).

    An ASCII word's term, when it has one, starts with the word's first letter in lower case: NFKC, the country
    ("U.S." is ``u_s``), acronym plurals, case folding, possessives and Snowball's English stemmer all leave a
    word's first letter as it is (tested on every short word and the corpora's vocabularies); only a few British
    spellings change it (oestrogen is estrogen), and those letters count too.
    """
    if type(wanted) not in (dict, set, frozenset):  # (a subclass's `in` may accept more than it lists)
        return None
    return _word_starts(frozenset(cast("Iterable[object]", wanted)))


@lru_cache(maxsize=256)
def _word_starts(wanted: frozenset[object]) -> bytes:
    table = bytearray(128)
    for term in wanted:
        first = term[:1] if isinstance(term, str) else ""
        for letter in (first, *FIRST_LETTERS_CHANGED.get(first, ())):
            if letter.isascii() and letter:
                table[ord(letter.lower())] = table[ord(letter.upper())] = 1
    return bytes(table)


_default: Tokenizer | None = None


def default_tokenizer() -> Tokenizer:
    global _default
    if _default is None:
        _default = Tokenizer()
    return _default
