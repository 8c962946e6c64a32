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
from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet

ANSWER_TYPE_BOOST = 0.10
NEAR_DUPLICATE_JACCARD = 0.8


def _led(first: str, pattern: str, not_after: str = "") -> re.Pattern[str]:
    """``pattern`` led by a class ``first`` of the characters its matches start with, the match in group "m".

    Python's re skips quickly to a possible first character only when a pattern starts with a class (or a
    literal); a pattern starting with a lookaround or ``\\b`` is tried at every position. This one consumes that
    first character, rejects it when it follows ``not_after`` (a quick test the pattern makes too), then steps
    back over it and matches ``pattern`` from there in a lookahead. Walk the matches with ``_led_matches``.
    """
    guard = rf"(?<!{not_after}{first})" if not_after else ""
    return re.compile(rf"{first}{guard}(?<=(?=(?P<m>{pattern})){first})")


def _led_matches(led: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """The matches of a ``_led`` pattern, one for each match ``finditer`` of its pattern gives (none is empty)."""
    position = 0
    while (match := led.search(text, position)) is not None:
        yield match
        position = match.end("m")


def _words(*words: str) -> str:
    """The alternation of ``words`` grouped by first letter, in the given order within a group.

    The engine tries an alternation's branches one by one: grouped, a place where none of the words starts is left
    after one test per letter, not one per word. Words of different first letters never match at the same place, so
    the matches are those of the plain alternation.
    """
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[0], []).append(re.escape(word[1:]))
    return "(?:" + "|".join(f"{re.escape(first)}(?:{'|'.join(rests)})" for first, rests in groups.items()) + ")"


# fmt: off
_MONTH = _words(
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December", "Jan.", "Feb.", "Aug.", "Sept.", "Sep.", "Oct.", "Nov.", "Dec.",
)
# fmt: on
_WEEKDAY = _words("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]|20)\d\d"
_RELATIVE = r"(?:(?:next|last|this|coming)\s+)"
_PART_OF_DAY = r"(?:\s+(?:morning|afternoon|evening|night))?"
_DATE = (
    rf"\b(?=[A-Z\dnltcy])(?:{_RELATIVE}?{_WEEKDAY}{_PART_OF_DAY}(?:,?\s+{_MONTH}\s+{_DAY}\b(?:,\s*{_YEAR})?)?"
    rf"|{_MONTH}\s+{_DAY}\b(?:,\s*{_YEAR})?|{_DAY}\s+{_MONTH}(?:\s+{_YEAR})?|{_MONTH}(?:\s+{_YEAR})?"
    rf"|{_RELATIVE}(?:week|month|year|weekend)|tomorrow|yesterday|tonight|{_YEAR}\b"
    r"|\d{4}-\d{1,2}-\d{1,2}\b|\d{1,2}/\d{1,2}/\d{2,4}\b)"
    r"(?<!\bMay)"  # "may" alone is the verb far more often than the month
)
# fmt: off
_TITLES = _words(
    "President", "Vice President", "Secretary", "Minister", "Representative", "Ambassador", "Senator", "Governor",
    "Chancellor", "Premier", "Director", "Chairman", "Chairwoman", "Chair", "Spokesman", "Spokeswoman", "Spokesperson",
    "Adviser", "Advisor", "CEO", "Commissioner", "Mayor", "King", "Queen", "Prince", "Princess", "General", "Judge",
    "Justice", "Professor", "Prof.", "Mr.", "Mrs.", "Ms.", "Dr.", "Chief", "Councillor", "Councilor", "Coach",
    "Captain",
)
# fmt: on
# Roles written in lower case ("senior trade adviser Peter Navarro") count before a full name of two or more words.
# fmt: off
_ROLES = _words(
    "adviser", "advisor", "secretary", "minister", "president", "director", "officer", "executive", "chief", "leader",
    "commissioner", "councillor", "councilor", "spokesman", "spokeswoman", "spokesperson", "founder", "co-founder",
    "coach", "keeper", "manager", "librarian", "researcher", "scientist", "biologist", "astronomer", "forecaster",
    "conductor", "runner", "player", "champion", "governor", "mayor", "chairman", "chairwoman", "head", "editor",
    "reporter", "analyst", "professor", "engineer", "doctor", "nurse", "judge", "grandmaster",
)
# fmt: on
_NAME = r"[A-Z][\w'’-]+"
_NOT_A_NAME = r"(?!(?:The|A|An|And|But|On|In|At|Of|For|To|By|With|From|As|It|He|She|They|We|This|That)\b)"
_PERSON = (
    rf"\b(?=[A-Z])(?:{_NOT_A_NAME}{_NAME}\s+)?{_TITLES}\s+(?:{_NAME}\s+)*{_NAME}"
    rf"|\b(?=[a-z]){_ROLES},?\s+(?P<name>{_NAME}\s+(?:{_NAME}\s+)*{_NAME})"
)
# A capital, or the first letter of one of _ROLES.
_PERSON_SPAN = _led("[A-Zabcdefghjklmnoprs]", _PERSON, not_after=r"\w")
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
_PLACE = rf"\b(?:(?:in|at|near)\s+(?:the\s+)?{_NEAR}(?P<name>{_PLACE_WORDS})|on\s+(?P<street>{_STREET}))"
_DESTINATION = rf"\b(?:(?:in|at|near|to)\s+(?:the\s+)?{_NEAR}(?P<name>{_PLACE_WORDS})|on\s+(?P<street>{_STREET}))"
_PLACE_SPAN = _led("[aino]", _PLACE, not_after=r"\w")  # in, at, near, on
_DESTINATION_SPAN = _led("[ainot]", _DESTINATION, not_after=r"\w")  # … and to
# "the Cedar Ridge high school gym": capitalised words before a lower-case noun name a thing, not the place itself.
_MODIFIER = re.compile(
    r"\s+(?!(?:next|last|this|on|in|at|and|or|to|for|with|from|by|of|the|a|an|is|was|were|are)\b)[a-z]"
)
# fmt: off
_NUMBER_WORD = _words(
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty",
    "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million", "billion", "trillion", "dozen", "dozens",
    "hundreds", "thousands", "millions", "billions",
)
# fmt: on
_UNITS = (
    r"(?:percent|per\s+cent|dollars|euros|pounds|yuan|yen|kilometres|kilometers|km|metres|meters|miles|hectares|"
    r"acres|tonnes|tons|grams|kilograms|kg|degrees(?:\s+Celsius|\s+Fahrenheit)?|seconds|minutes|hours|days|weeks|"
    r"months|years|times|people|residents|workers|jobs|homes|children|members|votes)"
)
_NUMBER = (  # matched ignoring case
    rf"(?<![\w./-])(?=[\dotfsenhmbd])(?:\d[\d,.]*\d|\d|{_NUMBER_WORD}(?:[\s-]+{_NUMBER_WORD})*)"
    rf"(?:\s+(?:hundred|thousand|million|billion|trillion))?(?:\s+{_UNITS})?\b(?![/-]\w)"
)
# Dates start with a month, a weekday, a digit, next/last/this/coming, tomorrow/tonight or yesterday.
_DATE_SPAN = _led(r"[ADFJMNOSTW\dnltcy]", _DATE, not_after=r"\w")
# On ASCII text \d is [0-9], which the engine tests much faster (\d is a lookup in the Unicode tables).
_ASCII_DATE_SPAN = _led("[ADFJMNOSTW0-9nltcy]", _DATE, not_after=r"\w")
# The leading class is case-sensitive (only the pattern behind it ignores case) so that the engine can skip with it;
# ſ, the long s, is an s when case is ignored.
_NUMBER_SPAN = _led(r"[\dotfsenhmbdOTFSENHMBDſ]", f"(?i:{_NUMBER})", not_after=r"[\w./-]")
# On ASCII text, matching ignoring case is matching the lower-case pattern on the lower-cased text (a character for a
# character: the same spans), which the engine does much faster. (_NUMBER has no escape such as \S that lower()
# would change.)
_LOWER_CASE_NUMBER_SPAN = _led("[0-9otfsenhmbd]", _NUMBER.lower(), not_after=r"[\w./-]")
# Every match of the person, place and name patterns has a capital after a space: most sentences of a passage
# without one are done after this quick scan.
_CAPITAL_AFTER_SPACE = re.compile(r"[A-Z](?<=\s[A-Z])")


def _has_capital_after_space(sentence: str) -> bool:
    """Whether ``_CAPITAL_AFTER_SPACE`` matches; a text with no capital after its first character is done after
    ``str.lower`` (a tenth of the pattern's scan)."""
    rest = sentence[1:]
    return rest.lower() != rest and _CAPITAL_AFTER_SPACE.search(sentence) is not None


# Every date holds a digit, a month's or a weekday's name, "tomorrow", "yesterday", "tonight" or "next week" (month,
# year, …): a sentence without any is done after these quick scans (see _may_hold_date).
# (Only at a word's start, as every date starts there: a long run of capitals is then one test, not one a letter.)
_DATE_CUE = _led(r"[\dADFJMNOSTW]", rf"\d|{_MONTH}|{_WEEKDAY}", not_after=r"\w")
_ASCII_DATE_CUE = _led("[0-9ADFJMNOSTW]", rf"\d|{_MONTH}|{_WEEKDAY}", not_after=r"\w")
_RELATIVE_PERIOD = re.compile(rf"{_RELATIVE}(?:week|month|year)")
_LIST_GLUE = re.compile(r"^(?:,\s*(?:and\s+)?|\s+and\s+)$")


def answer_spans(answer_type: str, sentence: str, loose: bool = False) -> list[tuple[int, int]]:
    """``(start, end)`` in ``sentence`` of each answer of ``answer_type``; a list ("A, B and C") is one answer.

    ``loose``: also places after "to" and before a lower-case noun (enough to say a sentence is about a place,
    not to name it as the answer).
    """
    is_ascii = sentence.isascii()
    if answer_type == "date":
        if not _may_hold_date(sentence, is_ascii):
            return []
        found = [m.span("m") for m in _led_matches(_ASCII_DATE_SPAN if is_ascii else _DATE_SPAN, sentence)]
    elif answer_type == "person":
        if not _has_capital_after_space(sentence):
            return []
        matches = _led_matches(_PERSON_SPAN, sentence)
        found = [(m.start("name"), m.end("m")) if m.group("name") else m.span("m") for m in matches]
        found = [(start, end) for start, end in found if not _ORGANISATION_END.search(sentence, start, end)]
    elif answer_type == "place":
        if not _has_capital_after_space(sentence):
            return []
        matches = _led_matches(_DESTINATION_SPAN if loose else _PLACE_SPAN, sentence)
        found = [m.span("name") if m.group("name") else m.span("street") for m in matches]
        # "Burkina Faso, Mali and Kenya": names joined to a place found by its preposition
        found = _extend_place_lists(sentence, found)
        if not loose:
            found = [(start, end) for start, end in found if not _MODIFIER.match(sentence, end)]
    elif answer_type == "number":
        if is_ascii:
            matches = _led_matches(_LOWER_CASE_NUMBER_SPAN, sentence.lower())
        else:
            matches = _led_matches(_NUMBER_SPAN, sentence)
        found = [m.span("m") for m in matches]
    else:
        return []
    return _join_lists(sentence, found) if answer_type != "number" else found


def _may_hold_date(sentence: str, is_ascii: bool) -> bool:
    return (
        _has_date_cue(sentence, is_ascii)
        or "tomorrow" in sentence
        or "yesterday" in sentence
        or "tonight" in sentence
        or (
            ("week" in sentence or "month" in sentence or "year" in sentence)
            and _RELATIVE_PERIOD.search(sentence) is not None
        )
    )


def _has_ascii_digit(text: str) -> bool:
    # A memchr a digit: several times quicker than a pattern's scan, or than a loop over the digits.
    return (
        "0" in text
        or "1" in text
        or "2" in text
        or "3" in text
        or "4" in text
        or "5" in text
        or "6" in text
        or "7" in text
        or "8" in text
        or "9" in text
    )


def _has_date_cue(sentence: str, is_ascii: bool) -> bool:
    """Whether the date cue pattern matches. It starts at a digit or a capital: in ASCII text with neither after
    its first character (found by ``str.lower`` and ``str.find``, a fraction of the pattern's scan), only there."""
    if not is_ascii:
        return _DATE_CUE.search(sentence) is not None
    rest = sentence[1:]
    if rest.lower() == rest and not _has_ascii_digit(rest):
        return _ASCII_DATE_CUE.match(sentence) is not None
    return _ASCII_DATE_CUE.search(sentence) is not None


# (?<![\w'’-]){_NOT_A_NAME}{_NAME}(?:\s+{_NAME}){1,2}\b with the name's capital first, so that the engine skips
# to the capitals (see _led); the lookbehinds test what came before it and that it starts no _NOT_A_NAME word.
_NAME_SPAN = re.compile(rf"[A-Z](?<![\w'’-][A-Z])(?<={_NOT_A_NAME}[A-Z])[\w'’-]+(?:\s+{_NAME}){{1,2}}\b")


def name_spans(sentence: str) -> list[tuple[int, int]]:
    """Runs of two or three capitalised words ("Carla Mendes"): a name, or a place, or a firm — context decides.

    A run ending in a word of a place or an organisation ("Harbor Street", "Westfield General Hospital") is left
    out: whatever the context, it is not a person.
    """
    if not _has_capital_after_space(sentence):  # a run's second word is one
        return []
    spans = (match.span() for match in _NAME_SPAN.finditer(sentence))
    return [(start, end) for start, end in spans if not _ORGANISATION_END.search(sentence, start, end)]


_MORE_PLACES = re.compile(rf"(?:,\s*(?:and\s+)?|\s+and\s+)({_PLACE_WORDS})")


def _extend_place_lists(sentence: str, found: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans = []
    for start, end in found:
        while match := _MORE_PLACES.match(sentence, end):
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
