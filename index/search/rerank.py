"""Second-stage signals applied to the BM25 top candidates.

- Phrases: a passage must contain each quoted phrase as adjacent terms.
- Answer type: a passage with a sentence that both matches the question and
  holds the kind of thing asked for (a titled person for "who", a date for
  "when", a place for "where", a number for "how many") gets a mild boost.
  ``answer_spans`` finds those answers themselves (whole expressions: "June 5",
  "next Monday, June 9", "Treasury Secretary Becente, Commerce Secretary Lutnik
  and Trade Representative Greer", "4.2 million dollars"), for the ranking of
  typed questions and the direct answer line (``answer_line.py``).
- Near-duplicates (syndicated copies) are collapsed into the first one, which
  records how many copies it stands for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

ANSWER_TYPE_BOOST = 0.10
NEAR_DUPLICATE_JACCARD = 0.8

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan\.|Feb\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.)"
)
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]|20)\d\d"
_RELATIVE = r"(?:(?:next|last|this|coming)\s+)"
_PART_OF_DAY = r"(?:\s+(?:morning|afternoon|evening|night))?"
_DATE_SPAN = re.compile(
    rf"\b(?=[A-Z\dnltcy])(?:{_RELATIVE}?{_WEEKDAY}{_PART_OF_DAY}(?:,?\s+{_MONTH}\s+{_DAY}\b(?:,\s*{_YEAR})?)?"
    rf"|{_MONTH}\s+{_DAY}\b(?:,\s*{_YEAR})?|{_DAY}\s+{_MONTH}(?:\s+{_YEAR})?|{_MONTH}(?:\s+{_YEAR})?"
    rf"|{_RELATIVE}(?:week|month|year|weekend)|tomorrow|yesterday|tonight|{_YEAR}\b"
    r"|\d{4}-\d{1,2}-\d{1,2}\b|\d{1,2}/\d{1,2}/\d{2,4}\b)"
    r"(?<!\bMay)"  # "may" alone is the verb far more often than the month
)
_TITLES = (
    r"(?:President|Vice President|Secretary|Minister|Representative|Ambassador|Senator|Governor|Chancellor|Premier|"
    r"Director|Chairman|Chairwoman|Chair|Spokesman|Spokeswoman|Spokesperson|Adviser|Advisor|CEO|Commissioner|"
    r"Mayor|King|Queen|Prince|Princess|General|Judge|Justice|Professor|Prof\.|Mr\.|Mrs\.|Ms\.|Dr\.|Chief|"
    r"Councillor|Councilor|Coach|Captain)"
)
# Roles written in lower case ("senior trade adviser Peter Navarro") count before a full name of two or more words.
_ROLES = (
    r"(?:adviser|advisor|secretary|minister|president|director|officer|executive|chief|leader|commissioner|"
    r"councillor|councilor|spokesman|spokeswoman|spokesperson|founder|co-founder|coach|keeper|manager|librarian|"
    r"researcher|scientist|biologist|astronomer|forecaster|conductor|runner|player|champion|governor|mayor|"
    r"chairman|chairwoman|head|editor|reporter|analyst|professor|engineer|doctor|nurse|judge|grandmaster)"
)
_NAME = r"[A-Z][\w'’-]+"
_NOT_A_NAME = r"(?!(?:The|A|An|And|But|On|In|At|Of|For|To|By|With|From|As|It|He|She|They|We|This|That)\b)"
_PERSON_SPAN = re.compile(
    rf"\b(?=[A-Z])(?:{_NOT_A_NAME}{_NAME}\s+)?{_TITLES}\s+(?:{_NAME}\s+)*{_NAME}"
    rf"|\b(?=[a-z]){_ROLES},?\s+(?P<name>{_NAME}\s+(?:{_NAME}\s+)*{_NAME})"
)
# A titled "name" ending in one of these names an organisation or a place, not a person: "Westfield General
# Hospital", "General Motors", "Supreme Court".
_ORGANISATION_END = re.compile(
    r"\s(?:Hospital|Clinic|University|College|School|Academy|Institute|Museum|Library|Orchestra|Theatre|Theater|"
    r"Zoo|Company|Corporation|Corp\.?|Inc\.?|Ltd\.?|Group|Partners|Holdings|Motors|Electric|Bank|Fund|Council|"
    r"Committee|Commission|Assembly|Parliament|Congress|Senate|Court|Department|Ministry|Office|Agency|Service|"
    r"Services|Authority|Board|Party|Union|Association|Federation|Foundation|Society|Centre|Center|Airport|"
    r"Station|Port|Street|Road|Avenue|Square|Bridge|Park|Hall|Church|Cathedral|Stadium|Hotel|Prize|Award|Act)$"
)
_PLACE_WORDS = rf"(?!{_MONTH}|{_WEEKDAY}){_NOT_A_NAME}{_NAME}(?:\s+{_NAME})*"
# Where something is: "in", "at", "near". "to" (a destination: "talk to China") counts only for the ranking boost,
# "from" ("delegations from China") not at all.
# "in nearby Pine Hollow", "in neighbouring Kenya": a word of nearness may stand before the name.
_NEAR = r"(?:(?:nearby|neighbouring|neighboring|northern|southern|eastern|western|central)\s+)?"
# "on Depot Street": after "on", only a street's name is a place ("on Monday", "on Trump's request" are not).
_STREET = rf"{_NOT_A_NAME}{_NAME}(?:\s+{_NAME})*\s+(?:Street|Road|Avenue|Boulevard|Lane|Square|Drive)\b"
_PLACE_SPAN = re.compile(
    rf"\b(?:(?:in|at|near)\s+(?:the\s+)?{_NEAR}(?P<name>{_PLACE_WORDS})|on\s+(?P<street>{_STREET}))"
)
_DESTINATION_SPAN = re.compile(
    rf"\b(?:(?:in|at|near|to)\s+(?:the\s+)?{_NEAR}(?P<name>{_PLACE_WORDS})|on\s+(?P<street>{_STREET}))"
)
# "the Cedar Ridge high school gym": capitalised words before a lower-case noun name a thing, not the place itself.
_MODIFIER = re.compile(
    r"\s+(?!(?:next|last|this|on|in|at|and|or|to|for|with|from|by|of|the|a|an|is|was|were|are)\b)[a-z]"
)
_NUMBER_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|"
    r"million|billion|trillion|dozen|dozens|hundreds|thousands|millions|billions)"
)
_UNITS = (
    r"(?:percent|per\s+cent|dollars|euros|pounds|yuan|yen|kilometres|kilometers|km|metres|meters|miles|hectares|"
    r"acres|tonnes|tons|grams|kilograms|kg|degrees(?:\s+Celsius|\s+Fahrenheit)?|seconds|minutes|hours|days|weeks|"
    r"months|years|times|people|residents|workers|jobs|homes|children|members|votes)"
)
_NUMBER_SPAN = re.compile(
    # the lookahead lets the engine skip, at one character's cost, every place no number can start
    rf"(?<![\w./-])(?=[\dotfsenhmbd])(?:\d[\d,.]*\d|\d|{_NUMBER_WORD}(?:[\s-]+{_NUMBER_WORD})*)"
    rf"(?:\s+(?:hundred|thousand|million|billion|trillion))?(?:\s+{_UNITS})?\b(?![/-]\w)",
    re.IGNORECASE,
)
_LIST_GLUE = re.compile(r"^(?:,\s*(?:and\s+)?|\s+and\s+)$")


def answer_spans(answer_type: str, sentence: str, loose: bool = False) -> list[tuple[int, int]]:
    """``(start, end)`` in ``sentence`` of each answer of ``answer_type``; a list ("A, B and C") is one answer.

    ``loose``: also places after "to" and before a lower-case noun (enough to say a sentence is about a place,
    not to name it as the answer).
    """
    if answer_type == "date":
        found = [(m.start(), m.end()) for m in _DATE_SPAN.finditer(sentence)]
    elif answer_type == "person":
        found = [(m.start("name"), m.end()) if m.group("name") else m.span() for m in _PERSON_SPAN.finditer(sentence)]
        found = [(start, end) for start, end in found if not _ORGANISATION_END.search(sentence, start, end)]
    elif answer_type == "place":
        pattern = _DESTINATION_SPAN if loose else _PLACE_SPAN
        found = [m.span("name") if m.group("name") else m.span("street") for m in pattern.finditer(sentence)]
        # "Burkina Faso, Mali and Kenya": names joined to a place found by its preposition
        found = _extend_place_lists(sentence, found)
        if not loose:
            found = [(start, end) for start, end in found if not _MODIFIER.match(sentence, end)]
    elif answer_type == "number":
        found = [m.span() for m in _NUMBER_SPAN.finditer(sentence)]
    else:
        return []
    return _join_lists(sentence, found) if answer_type != "number" else found


_NAME_SPAN = re.compile(rf"(?<![\w'’-]){_NOT_A_NAME}{_NAME}(?:\s+{_NAME}){{1,2}}\b")


def name_spans(sentence: str) -> list[tuple[int, int]]:
    """Runs of two or three capitalised words ("Carla Mendes"): a name, or a place, or a firm — context decides.

    A run ending in a word of a place or an organisation ("Harbor Street", "Westfield General Hospital") is left
    out: whatever the context, it is not a person.
    """
    spans = (match.span() for match in _NAME_SPAN.finditer(sentence))
    return [(start, end) for start, end in spans if not _ORGANISATION_END.search(sentence, start, end)]


def _extend_place_lists(sentence: str, found: list[tuple[int, int]]) -> list[tuple[int, int]]:
    extra = re.compile(rf"(?:,\s*(?:and\s+)?|\s+and\s+)({_PLACE_WORDS})")
    spans = []
    for start, end in found:
        while match := extra.match(sentence, end):
            end = match.end(1)
        spans.append((start, end))
    return spans


def _join_lists(sentence: str, found: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Answers separated only by ", " or " and " become one (the three members of a delegation, not the first)."""
    joined: list[tuple[int, int]] = []
    for start, end in found:
        if joined and _LIST_GLUE.match(sentence[joined[-1][1] : start]):
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


def contains_phrase(terms: Sequence[str], phrase: Sequence[str]) -> bool:
    size = len(phrase)
    first = phrase[0]
    return any(terms[i] == first and tuple(terms[i : i + size]) == tuple(phrase) for i in range(len(terms) - size + 1))


def answer_type_matches(answer_type: str | None, sentences: Sequence[str]) -> bool:
    """Whether any of ``sentences`` (those that match the question) holds the expected kind of answer."""
    if answer_type is None:
        return False
    return any(answer_spans(answer_type, sentence, loose=True) for sentence in sentences)


def jaccard(a: AbstractSet[str], b: AbstractSet[str]) -> float:
    if not a and not b:
        return 1.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)
