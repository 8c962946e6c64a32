"""Split an article's text into passages of roughly 40-120 words.

Paragraph-based and sentence-aware: paragraphs of a good size are passages as
they are, short ones (captions, one-line paragraphs) are merged with the next
paragraph (the last one with the previous), and long ones are cut at sentence
boundaries (a sentence longer than the maximum is cut between words). The
passages of an article cover every non-blank character of its text, and each
passage is exactly ``text[start:end]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corpusbot.index.models import Span

MIN_WORDS = 40
MAX_WORDS = 120

_PARAGRAPH, _LINE, _SENTENCE, _WORD = 3, 2, 1, 0

_LINE_RE = re.compile(r"[^\n]+")
_WORD_RE = re.compile(r"\S+")
# [.!?…] once before [.!?…]*, not [.!?…]+: Python's re skips quickly to a pattern's possible first characters only
# when the pattern starts with a class (or a literal), not with a repeat.
_SENTENCE_END = re.compile(r"""[.!?…][.!?…]*["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9])""")
_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof st jr sr inc ltd co corp gen gov sen rep no vs etc fig
    jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k u.n e.g i.e
    """.split()
)
_TERMINAL = re.compile(r"""[.!?…:;"'”’)]\s*$""")


@dataclass(frozen=True)
class _Segment:
    start: int
    end: int
    words: int
    boundary: int  # strength of the break before this segment


def split_passages(text: str, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> list[Span]:
    """Passage spans over ``text``, in order, covering all its non-blank text."""
    groups: list[list[_Segment]] = []
    current: list[_Segment] = []
    words = 0
    for segment in _segments(text, max_words):
        if current and ((segment.boundary >= _LINE and words >= min_words) or words + segment.words > max_words):
            groups.append(current)
            current, words = [], 0
        current.append(segment)
        words += segment.words
    if current:
        last_words = sum(s.words for s in current)
        if groups and last_words < min_words and sum(s.words for s in groups[-1]) + last_words <= max_words:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return [Span(group[0].start, group[-1].end) for group in groups]


def _segments(text: str, max_words: int) -> list[_Segment]:
    segments: list[_Segment] = []
    previous_line_end = 0
    previous_line_text = ""
    for line in _LINE_RE.finditer(text):
        stripped = line.group().strip()
        if not stripped:
            continue
        start = line.start() + (len(line.group()) - len(line.group().lstrip()))
        end = line.start() + len(line.group().rstrip())
        gap = text[previous_line_end : line.start()]
        if not segments or gap.count("\n") >= 2:
            boundary = _PARAGRAPH
        elif _is_soft_wrap(previous_line_text, stripped):
            boundary = _WORD
        else:
            boundary = _LINE
        for index, (s_start, s_end) in enumerate(_sentences(text, start, end)):
            for w_index, (c_start, c_end, count) in enumerate(_word_chunks(text, s_start, s_end, max_words)):
                strength = boundary if index == 0 and w_index == 0 else (_SENTENCE if w_index == 0 else _WORD)
                segments.append(_Segment(c_start, c_end, count, strength))
        previous_line_end = line.end()
        previous_line_text = stripped
    return segments


def _is_soft_wrap(previous: str, line: str) -> bool:
    """A line that continues the previous one's sentence (hard-wrapped prose)."""
    return bool(previous) and not _TERMINAL.search(previous) and line[:1].islower()


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    last = end - 1
    # No sentence ends before the last character: str.find of each mark _SENTENCE_END starts with is far quicker than
    # its scan (written out, not a loop: this runs for every candidate passage of a who/when/where question).
    if (
        text.find(".", start, last) < 0
        and text.find("!", start, last) < 0
        and text.find("?", start, last) < 0
        and text.find("…", start, last) < 0
    ):
        return [(start, end)] if start < end else []
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _SENTENCE_END.finditer(text, start, end):
        last_word = _word_before(text, cursor, match.start()).lower().rstrip(".")
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue
        spans.append((cursor, match.end()))
        cursor = match.end()
        while cursor < end and text[cursor].isspace():
            cursor += 1
    if cursor < end:
        spans.append((cursor, end))
    return spans


def _word_before(text: str, floor: int, position: int) -> str:
    """The last whitespace-separated word of ``text[floor:position]``.

    Scans back from ``position`` instead of splitting the whole range: after
    many skipped abbreviations ("Mr. Smith Mr. Jones ...") the range can be the
    whole line, and splitting it for every candidate was quadratic.
    """
    end = position
    while end > floor and text[end - 1].isspace():
        end -= 1
    begin = end
    while begin > floor and not text[begin - 1].isspace():
        begin -= 1
    return text[begin:end]


def _word_chunks(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int, int]]:
    count = len(text[start:end].split())  # str.split and \S+ agree on whitespace; no match objects
    if count <= max_words:
        return [(start, end, count)]
    matches = list(_WORD_RE.finditer(text, start, end))
    chunks = []
    for index in range(0, len(matches), max_words):
        piece = matches[index : index + max_words]
        chunks.append((piece[0].start(), piece[-1].end(), len(piece)))
    return chunks


def sentence_spans(text: str) -> list[Span]:
    """Sentences of a passage (used to pick the sentence to highlight)."""
    if "\n" not in text:  # one line (most passages): no scan for lines
        return _line_sentences(text, 0, text) if text else []
    spans: list[Span] = []
    for line in _LINE_RE.finditer(text):
        spans.extend(_line_sentences(text, line.start(), line.group()))
    return spans


def _line_sentences(text: str, at: int, content: str) -> list[Span]:
    """The sentences of the line ``content``, found at ``at`` in ``text`` (none when it is blank)."""
    end = at + len(content.rstrip())
    if end == at:
        return []
    start = at + (len(content) - len(content.lstrip()))
    return [Span(s, e) for s, e in _sentences(text, start, end)]
