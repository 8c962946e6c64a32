"""The passage splitter: coverage, exact offsets, the 40-120 word target, sentence awareness."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusbot.index.corpus.discover import bundled_corpus_dir
from corpusbot.index.corpus.readers import read_file
from corpusbot.index.text.passages import MAX_WORDS, MIN_WORDS, sentence_spans, split_passages


def words(text: str) -> int:
    return len(text.split())


def passages(text: str, **limits) -> list[str]:
    return [text[s.start : s.end] for s in split_passages(text, **limits)]


def assert_covers(text: str) -> None:
    spans = split_passages(text)
    covered = set()
    previous_end = 0
    for span in spans:
        assert previous_end <= span.start < span.end
        previous_end = span.end
        covered.update(range(span.start, span.end))
    assert {i for i, ch in enumerate(text) if not ch.isspace()} <= covered


def sentence(n: int, word: str = "word") -> str:
    return " ".join([word.capitalize()] + [word] * (n - 1)) + "."


@pytest.mark.parametrize("path", sorted(bundled_corpus_dir().glob("*.txt")), ids=lambda p: p.name)
def test_bundled_articles_split_into_40_to_120_word_passages_covering_everything(path: Path) -> None:
    article = read_file(path, path.read_bytes(), "x").articles[0]
    spans = split_passages(article.text)
    assert_covers(article.text)
    counts = [words(article.text[s.start : s.end]) for s in spans]
    assert all(MIN_WORDS <= n <= MAX_WORDS for n in counts), counts
    # The passages are the text, exactly: rejoined with what lies between them they give it back.
    rebuilt, cursor = [], 0
    for span in spans:
        assert article.text[cursor : span.start].strip() == ""
        rebuilt.append(article.text[cursor : span.end])
        cursor = span.end
    assert "".join(rebuilt) + article.text[cursor:] == article.text


def test_paragraphs_of_a_good_size_are_passages_as_they_are() -> None:
    first, second = sentence(50, "alpha"), sentence(60, "beta")
    assert passages(f"{first}\n\n{second}\n") == [first, second]


def test_a_caption_is_merged_with_the_next_paragraph_and_a_short_ending_with_the_previous() -> None:
    body, closing = sentence(70, "body"), sentence(8, "closing")
    text = f"Harbour Photo\n\n{body}\n\n{closing}\n"
    assert passages(text) == [f"Harbour Photo\n\n{body}\n\n{closing}"]
    long_body = " ".join(sentence(25, f"body{i}") for i in range(5))  # 125 words: must be split
    split = passages(f"Harbour Photo\n\n{long_body}\n\n{closing}\n")
    assert len(split) == 2 and split[0].startswith("Harbour Photo\n\nBody0")  # the caption never stands alone
    # The tail (last sentence + closing, 33 words) stays short: joining it to the first would pass 120.
    assert split[1].endswith(closing) and [words(p) for p in split] == [102, 33]


def test_long_paragraphs_are_cut_at_sentence_ends() -> None:
    text = " ".join(sentence(25, f"s{i}") for i in range(12))  # 300 words, one paragraph
    parts = passages(text)
    assert len(parts) >= 3
    assert all(part.endswith(".") and words(part) <= MAX_WORDS for part in parts)
    assert " ".join(parts) == text


def test_a_sentence_longer_than_the_maximum_is_cut_between_words() -> None:
    text = " ".join(["word"] * 300) + "."
    parts = passages(text)
    assert [words(p) for p in parts] == [120, 120, 60]
    assert " ".join(parts) == text


def test_abbreviations_and_initials_do_not_end_sentences() -> None:
    text = "Mr. Smith met U.S. officials in Washington. J. Doe said so. Prices rose 3.5 percent. It ended."
    assert [text[s.start : s.end] for s in sentence_spans(text)] == [
        "Mr. Smith met U.S. officials in Washington.",
        "J. Doe said so.",
        "Prices rose 3.5 percent.",
        "It ended.",
    ]


def test_hard_wrapped_prose_is_one_paragraph() -> None:
    text = "The delegation met\nofficials from the ministry\nof trade on Monday.\n\n" + sentence(60, "next")
    parts = passages(text, min_words=5)
    assert parts[0] == "The delegation met\nofficials from the ministry\nof trade on Monday."


def test_abbreviation_heavy_text_is_split_in_one_pass() -> None:
    """300 kB of "Mr. Smith Dr. Jones ...": no sentence ends for the splitter, which re-split the whole line
    for every candidate and took minutes; every character is still covered."""
    text = "Mr. Smith Dr. Jones " * 15_000
    parts = split_passages(text)
    assert len(parts) == 500 and all(words(text[s.start : s.end]) == MAX_WORDS for s in parts)
    assert_covers(text)


@pytest.mark.parametrize("text", ["", "   \n\n\t ", "\u2028\u3000"])
def test_blank_text_has_no_passages(text: str) -> None:
    assert split_passages(text) == []


def test_unusual_line_breaks_and_spaces_are_covered() -> None:
    text = "First part\r\nsecond part.\u2028Third\x0bfourth\x0cfifth\u2029sixth\xa0seventh\u3000eighth."
    assert_covers(text)
