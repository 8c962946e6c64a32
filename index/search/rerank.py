"""Second-stage signals applied to the BM25 top candidates.

- Phrases: a passage must contain each quoted phrase as adjacent terms.
- Answer type: a passage with a sentence that both matches the question and
  holds the kind of thing asked for (a titled person for "who", a date for
  "when", a place for "where", a number for "how many") gets a mild boost.
- Near-duplicates (syndicated copies) are collapsed into the first one, which
  records how many copies it stands for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

ANSWER_TYPE_BOOST = 0.10
NEAR_DUPLICATE_JACCARD = 0.8

_CAPITALISED = r"[A-Z][\w'’-]+"
_ANSWER_PATTERNS = {
    "person": re.compile(
        r"\b(?:President|Vice President|Secretary|Minister|Representative|Ambassador|Senator|Governor|Chancellor|"
        r"Premier|Director|Chairman|Chairwoman|Chair|Spokesman|Spokeswoman|Spokesperson|Adviser|Advisor|CEO|"
        r"Commissioner|Mayor|King|Queen|Prince|Princess|General|Judge|Justice|Professor|Prof\.|Mr\.|Mrs\.|Ms\.|Dr\.)"
        rf"\s+(?:{_CAPITALISED}\s+)*{_CAPITALISED}"
    ),
    "date": re.compile(
        r"\b(?:January|February|March|April|May|June|July|August|September|October|November|December|"
        r"Jan\.|Feb\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|"
        r"tomorrow|yesterday|tonight|(?:next|last|this|coming)\s+(?:week|month|year|weekend)|(?:1[89]|20)\d\d)\b"
        r"|\b\d{1,4}[-/]\d{1,2}[-/]\d{1,4}\b"
    ),
    "place": re.compile(rf"\b(?:in|at|from|near|to)\s+(?:the\s+)?{_CAPITALISED}"),
    "number": re.compile(
        r"\b\d[\d,.]*\b|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
        r"hundred|thousand|million|billion|trillion|dozen|dozens|hundreds|thousands|millions|billions)\b",
        re.IGNORECASE,
    ),
}


def contains_phrase(terms: Sequence[str], phrase: Sequence[str]) -> bool:
    size = len(phrase)
    first = phrase[0]
    return any(terms[i] == first and tuple(terms[i : i + size]) == tuple(phrase) for i in range(len(terms) - size + 1))


def answer_type_matches(answer_type: str | None, sentences: Sequence[str]) -> bool:
    """Whether any of ``sentences`` (those that match the question) holds the expected kind of answer."""
    if answer_type is None:
        return False
    pattern = _ANSWER_PATTERNS[answer_type]
    return any(pattern.search(sentence) for sentence in sentences)


def jaccard(a: AbstractSet[str], b: AbstractSet[str]) -> float:
    if not a and not b:
        return 1.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)
