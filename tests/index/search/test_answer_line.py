"""Who/when/where/how-many: answers found in passages, answer-holding passages first, the direct answer line."""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.corpus.discover import bundled_corpus_dir
from corpusbot.index.models import Span
from corpusbot.index.search import answer_line
from corpusbot.index.search.answer_line import FoundAnswer, find_answer, shown_as_line
from corpusbot.index.search.rerank import answer_spans, name_spans
from corpusbot.index.text.passages import sentence_spans, split_passages
from corpusbot.index.text.tokenizer import Tokenizer, default_tokenizer

NEWS2 = Path(__file__).resolve().parents[2] / "data" / "news2" / "articles.jsonl"
TYPES = ("date", "person", "place", "number")


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return default_tokenizer()


@pytest.mark.parametrize(
    ("answer_type", "sentence", "answers"),
    [
        (
            "date",
            "On June 6, Trump announced talks in London next Monday, June 9.",
            ["June 6", "next Monday, June 9"],
        ),
        ("date", "The river should peak on Friday night; it sank in 1887.", ["Friday night", "1887"]),
        ("date", "They may meet again.", []),
        (
            "person",
            "The delegation: Treasury Secretary Becente, Commerce Secretary Lutnik and Trade Representative Greer.",
            ["Treasury Secretary Becente, Commerce Secretary Lutnik and Trade Representative Greer"],
        ),
        ("person", "Trump's senior trade adviser Peter Navarro spoke.", ["Peter Navarro"]),
        ("person", "The President said nothing to the minister.", []),
        ("place", "The trial ran in Burkina Faso, Mali and Kenya.", ["Burkina Faso, Mali and Kenya"]),
        ("place", "Evacuees are at the Cedar Ridge high school gym.", []),  # names a school, not the place
        ("place", "He wants to talk to China.", []),  # a destination is no "where"
        ("place", "Others stay at a fairground in nearby Pine Hollow.", ["Pine Hollow"]),
        ("place", "The market moves to the old rail yard on Depot Street from June 6.", ["Depot Street"]),
        ("place", "They met on Monday, on Trump's request.", []),  # after "on", only a street is a place
        ("person", "Westfield General Hospital and Dr. Samuel Adeyemi", ["Dr. Samuel Adeyemi"]),  # not the hospital
        ("place", "Delegations from China arrived.", []),
        ("number", "Repairs will cost 4.2 million dollars and take six months.", ["4.2 million dollars", "six months"]),
        ("number", "The comet C/2026 C1 is named after her.", []),  # parts of a designation are no count
    ],
)
def test_answer_spans_are_whole_expressions(answer_type: str, sentence: str, answers: list[str]) -> None:
    assert [sentence[start:end] for start, end in answer_spans(answer_type, sentence)] == answers


def weights_of(tokenizer: Tokenizer, words: str, heavy: str = "") -> dict[str, float]:
    weights = dict.fromkeys(tokenizer.terms(words), 1.0)
    weights.update(dict.fromkeys(tokenizer.terms(heavy), 2.0))
    return weights


def test_the_answer_nearest_the_question_words_wins(tokenizer: Tokenizer) -> None:
    text = "On June 6, Trump announced that talks will start in London next Monday, June 9."
    found = find_answer("date", text, weights_of(tokenizer, "talks London"), tokenizer)
    assert found is not None
    assert text[found.span.start : found.span.end] == "next Monday, June 9"


def test_an_answer_needs_a_question_word_in_its_sentence(tokenizer: Tokenizer) -> None:
    text = "The delegation arrived late. Minister Anna Berg was not there."
    assert find_answer("person", text, weights_of(tokenizer, "delegation"), tokenizer) is None


def test_the_question_words_themselves_are_no_answer(tokenizer: Tokenizer) -> None:
    text = "The talks will be held in London."
    assert find_answer("place", text, weights_of(tokenizer, "London talks"), tokenizer) is None


def test_how_many_is_a_count_next_to_a_question_word_never_money(tokenizer: Tokenizer) -> None:
    text = "Brightline will buy Quillstack for 1.3 billion dollars. Quillstack employs about 900 people."
    weights = weights_of(tokenizer, "employs Quillstack")
    found = find_answer("number", text, weights, tokenizer, "how many people does Quillstack employ?")
    assert found is not None and text[found.span.start : found.span.end] == "900 people"
    # "how much" may be money
    found = find_answer("number", text, weights_of(tokenizer, "buy Quillstack"), tokenizer, "how much?")
    assert found is not None and text[found.span.start : found.span.end] == "1.3 billion dollars"
    far = "Quillstack said on a long day that it had 900 people."
    assert find_answer("number", far, weights_of(tokenizer, "Quillstack"), tokenizer, "how many?") is None


def test_an_untitled_name_counts_only_next_to_a_question_word(tokenizer: Tokenizer) -> None:
    text = "Carla Mendes won the election, defeating the incumbent mayor, Peter Lindqvist."
    found = find_answer("person", text, weights_of(tokenizer, "won election"), tokenizer)
    assert found is not None and text[found.span.start : found.span.end] == "Carla Mendes"
    assert (
        find_answer("person", "Carla Mendes spoke. The election was won.", weights_of(tokenizer, "won"), tokenizer)
        is None
    )


def test_an_untitled_name_of_a_street_or_an_organisation_is_no_person(tokenizer: Tokenizer) -> None:
    weights = weights_of(tokenizer, "repairing bridge")
    assert find_answer("person", "The Harbor Street bridge will close for repairs.", weights, tokenizer) is None
    assert find_answer("person", "Westfield General Hospital is repairing the bridge.", weights, tokenizer) is None
    found = find_answer("person", "Dana Whitcombe repaired the bridge.", weights, tokenizer)
    assert found is not None and (found.span.start, found.span.end) == (0, len("Dana Whitcombe"))


def test_the_line_needs_the_heaviest_word_the_passage_has_in_the_answers_sentence(tokenizer: Tokenizer) -> None:
    text = "Trump spoke after a phone call. Talks will be held in London next Monday."
    weights = weights_of(tokenizer, "Trump talk", heavy="phone")
    found = find_answer("date", text, weights, tokenizer)
    assert found is not None and text[found.span.start : found.span.end] == "next Monday"
    assert not shown_as_line(found, text, weights, tokenizer)  # "phone" is elsewhere: about something else
    weights = weights_of(tokenizer, "Trump phone", heavy="talk")
    found = find_answer("date", text, weights, tokenizer)
    assert found is not None and shown_as_line(found, text, weights, tokenizer)


# -- in the service -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def news2(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("news2") / "news2.db"
    index_corpus(db, [str(NEWS2)])
    service = SearchService(db)
    yield service
    service.close()


def test_a_passage_holding_the_answer_beats_one_repeating_the_question(sample_service: SearchService) -> None:
    # Three passages repeat "phone call"; the one with the date says only "the call … on June 5".
    answer = sample_service.ask("When did the leaders have their phone call?", explain=True)
    assert "June 5" in answer.hits[0].passage.text
    assert any(boost.startswith("holds an answer") for boost in answer.hits[0].boosts)
    scores = [hit.score for hit in answer.hits]
    assert scores == sorted(scores, reverse=True)  # lifted, not reordered against the scores
    plain = sample_service.ask("leaders have their phone call?")  # the same words, no "when"
    assert "June 5" not in plain.hits[0].passage.text


@pytest.mark.parametrize(
    ("question", "line"),
    [
        (
            "who is on the US delegation?",
            "Treasury Secretary Becente, Commerce Secretary Lutnik and Trade Representative Greer",
        ),
        ("when are the london talks?", "next Monday"),
        ("where will the talks be held?", "London"),
        ("how long are the rare earth licenses valid?", "six months"),
    ],
)
def test_the_answer_line_is_text_of_the_best_passage(sample_service: SearchService, question: str, line: str) -> None:
    answer = sample_service.ask(question)
    assert answer.answer is not None
    assert answer.answer.text == line
    assert answer.answer.hit == answer.hits[0]
    span = answer.answer.span
    assert answer.hits[0].passage.text[span.start : span.end] == line
    payload = answer.to_json()["answer"]
    assert payload["text"] == line and payload["rank"] == 1
    assert payload["article"]["id"] == answer.hits[0].article.id
    assert payload["passage"] == answer.hits[0].passage.ordinal


@pytest.mark.parametrize(
    "question",
    [
        "who's the us ambassador",  # the passage names no one
        "what did the US suspend for China?",  # not a who/when/where/how-many question
        "when was the iphone released",  # nothing about it
        "who won the world cup?",
    ],
)
def test_no_line_when_unsure(sample_service: SearchService, question: str) -> None:
    answer = sample_service.ask(question)
    assert answer.answer is None
    assert answer.to_json()["answer"] is None


def test_no_line_on_later_pages(sample_service: SearchService) -> None:
    assert sample_service.ask("who is on the US delegation?").answer is not None
    assert sample_service.ask("who is on the US delegation?", offset=3).answer is None


def test_lines_over_a_second_corpus(news2: SearchService) -> None:
    expected = {
        "when does the harbor street bridge close?": "March 16",
        "how much did the museum renovation cost?": "58 million dollars",
        "how much will the bridge repairs cost": None,  # "bridge" (as rare as "repairs") is in another sentence
        "who won the ashford mayoral election?": "Carla Mendes",
        "how many homes lost power in the storm": "40,000 homes",
        "where was the malaria trial run": None,  # the sentence lacks "malaria": not shown
    }
    got = {question: (a.answer.text if (a := news2.ask(question)).answer else None) for question in expected}
    assert got == expected


def test_an_organisation_named_like_a_titled_person_is_not_the_answer(news2: SearchService) -> None:
    # "Westfield General Hospital" has the title "General" in it; "boss" reaches "chief executive" (a synonym)
    answer = news2.ask("who is the hospital boss")
    assert answer.answer is not None and answer.answer.text == "Dr. Samuel Adeyemi"


def test_the_questions_synonyms_count_when_finding_the_answer(news2: SearchService) -> None:
    # "start" reaches "begin": the sentence "Work will begin in August" matches the question as well as the one
    # saying the council voted "on Wednesday" to rebuild the footbridge, so neither is sure enough for a line
    answer = news2.ask("when does work on the footbridge start")
    assert "Work will begin in August" in answer.hits[0].passage.text
    assert answer.answer is None or answer.answer.text == "August"


def test_a_huge_sentence_of_names_and_question_words_is_handled(tokenizer: Tokenizer) -> None:
    # every word a candidate name and a key term: distances come from binary searches, not a scan per pair
    text = "Secretary " + " ".join(["Aaa"] * 20_000) + " spoke."
    found = find_answer("person", text, {"aaa": 1.0}, tokenizer)
    assert found is not None and found.span.start == 0 and found.distance == 0
    assert shown_as_line(found, text, {"aaa": 1.0}, tokenizer)
    numbers = "Aaa 12 " * 20_000
    found = find_answer("number", numbers, {"aaa": 1.0}, tokenizer, "how many?")
    assert found is not None and numbers[found.span.start : found.span.end] == "12"


# -- the same answers as the plain search, sentence by sentence ----------------------------------------------------
# find_answer looks for the question's words before the answers in passages of several sentences and searches the
# best-covered sentences first. The reference is find_answer as it was before (copied unchanged, with the module's
# patterns and constants): every sentence, in order, its answers first. The answers must be the same, bit for bit.


def _reference_find_answer(
    answer_type: str, text: str, weights: Mapping[str, float], tokenizer: Tokenizer, question: str = ""
) -> FoundAnswer | None:
    total = answer_line._total(weights)
    if total <= 0:
        return None
    counting = answer_type == "number" and answer_line._HOW_MANY.search(question) is not None
    best: FoundAnswer | None = None
    for sentence_span in sentence_spans(text):
        sentence = text[sentence_span.start : sentence_span.end]
        candidates = [(start, end, 10**6) for start, end in answer_spans(answer_type, sentence)]
        if answer_type == "person":
            candidates += [(start, end, 1) for start, end in name_spans(sentence)]
        if not candidates:
            continue
        keys = tokenizer.spans(sentence, weights)
        if not keys:
            continue
        words = [match.start() for match in answer_line._WORD.finditer(sentence)]
        found_terms = frozenset(term for s, e in keys for term in tokenizer.terms(sentence[s:e]) if term in weights)
        coverage = math.fsum(weights[term] for term in found_terms) / total
        for start, end, reach in candidates:
            inside = tokenizer.terms(sentence[start:end])
            if inside and all(term in weights for term in inside):
                continue
            if counting and answer_line._MONEY.search(sentence, start, end):
                continue
            distance = _reference_words_between(words, start, end, keys)
            if distance > (answer_line.NUMBER_REACH if answer_type == "number" else reach) or (
                reach == 1 and distance == 0
            ):
                continue
            span = Span(sentence_span.start + start, sentence_span.start + end)
            found = FoundAnswer(span, coverage, distance, found_terms)
            if best is None or (found.coverage, -found.distance, -span.start) > (
                best.coverage,
                -best.distance,
                -best.span.start,
            ):
                best = found
    return best


def _reference_words_between(words: list[int], start: int, end: int, keys: list[tuple[int, int]]) -> int:
    after = bisect.bisect_left(keys, (end, -1))
    before = after - 1
    while before >= 0 and keys[before][1] > start:
        if keys[before][0] < end:
            return 0
        before -= 1
    gaps = []
    if before >= 0:
        gaps.append(bisect.bisect_left(words, start) - bisect.bisect_left(words, keys[before][1]))
    if after < len(keys):
        gaps.append(bisect.bisect_left(words, keys[after][0]) - bisect.bisect_left(words, end))
    return min(gaps) + 1 if gaps else 10**6


def _reference_shown_as_line(found: FoundAnswer, text: str, weights: Mapping[str, float], tokenizer: Tokenizer) -> bool:
    total = answer_line._total(weights)
    if total <= 0 or found.coverage < answer_line.LINE_COVERAGE:
        return False
    best = max(
        math.fsum(weights[term] for term in {t for t in tokenizer.terms(text[s.start : s.end]) if t in weights}) / total
        for s in sentence_spans(text)
    )
    if found.coverage < answer_line.LINE_RELATIVE * best:
        return False
    present = {term for term in tokenizer.terms(text) if term in weights}
    top = max(weights[term] for term in present)
    heaviest = {term for term in present if weights[term] >= top * (1 - 1e-9)}
    return heaviest <= found.keys


def _outcome(find: Callable[[], object]) -> object:
    """What a call gave, to compare bit for bit (``hex``: a NaN coverage equals itself; an error by its type)."""
    try:
        found = find()
    except (ValueError, OverflowError) as error:
        return type(error).__name__
    if isinstance(found, FoundAnswer):
        return (found.span, found.coverage.hex(), found.distance, found.keys)
    return found


def _same_as_reference(text: str, weights: Mapping[str, float], question: str) -> int:
    """Asserts find_answer (and shown_as_line of what it finds) and the reference agree for every answer type; how
    many answers they found."""
    tokenizer = default_tokenizer()
    found = 0
    for answer_type in TYPES:
        now = _outcome(lambda: find_answer(answer_type, text, weights, tokenizer, question))  # noqa: B023
        reference = _outcome(lambda: _reference_find_answer(answer_type, text, weights, tokenizer, question))  # noqa: B023
        assert now == reference, (answer_type, text, weights, question)
        answer = find_answer(answer_type, text, weights, tokenizer, question) if isinstance(now, tuple) else None
        if answer is not None:
            found += 1
            shown = _outcome(lambda: shown_as_line(answer, text, weights, tokenizer))  # noqa: B023
            assert shown == _outcome(lambda: _reference_shown_as_line(answer, text, weights, tokenizer))  # noqa: B023
    return found


def _shown_as_reference(found: FoundAnswer, text: str, weights: Mapping[str, float]) -> None:
    tokenizer = default_tokenizer()
    now = _outcome(lambda: shown_as_line(found, text, weights, tokenizer))
    assert now == _outcome(lambda: _reference_shown_as_line(found, text, weights, tokenizer))


def _weightings(terms: list[str]) -> list[dict[str, float]]:
    """Question weights over some of ``terms``: a few, many, equal ones (ties of coverage between sentences), uneven
    ones, and words the text lacks."""
    return [
        {term: 1.0 + index % 3 for index, term in enumerate(terms[::7])},
        {term: 1.0 for term in terms[1::5]},
        {term: 0.5 + (index * 0.37) % 2 for index, term in enumerate(terms[2::11])} | {"zzzabsent": 3.0},
        dict.fromkeys(terms[3::2], 2.0),
        {term: 1.0 + len(term) / 10 for term in terms[::13]},
        *({term: 1.0 + index for index, term in enumerate(terms[start :: len(terms) // 2 or 1])} for start in (0, 1)),
        dict.fromkeys(terms[2 :: len(terms) // 3 or 1], 1.0),
    ]


def _news_passages() -> list[str]:
    articles = [json.loads(line)["text"] for line in NEWS2.read_text(encoding="utf-8").splitlines() if line.strip()]
    articles += [path.read_text(encoding="utf-8") for path in sorted(bundled_corpus_dir().glob("*.txt"))]
    return [text[span.start : span.end] for text in articles for span in split_passages(text)]


def test_answers_are_those_of_the_plain_search_on_news() -> None:
    tokenizer = default_tokenizer()
    passages = _news_passages()
    assert len(passages) > 50
    found = 0
    for number, text in enumerate(passages):
        terms = sorted(set(tokenizer.terms(text)))
        for weights in _weightings(terms):
            found += _same_as_reference(text, weights, ("how many people", "when", "how much", "")[number % 4])
    assert found > 200  # the comparison covers passages that hold answers, not only ones that hold none


# Tokens of news text for the patterns and the question's words (the words of WEIGHED), sentence ends and
# abbreviations ("Dr.", "Jan."), money, and separators including the odd whitespace str.split and \s agree on.
WEIGHED = ["bridge", "council", "repairs", "Harbor", "homes", "Mendes", "IL6", "café", "Lakeport", "said"]
TOKENS = [
    *WEIGHED, "Bridge's", "(bridge", "bridge.", "REPAIRS", "repaired", "IL-6", "cafe", "Café,", "Zoë", "council’s",
    "Secretary", "Mayor", "Dr.", "Mr.", "General", "Hospital", "Street", "adviser", "chief", "Carla", "Dana",
    "Whitcombe", "Peter", "The", "A", "In", "in", "at", "on", "near", "to", "the", "of", "and", "was", "nearby",
    "Pine", "Hollow", "Kenya", "March", "May", "Jan.", "Monday", "next", "week", "tomorrow", "2026", "16", "5th",
    "4.2", "1,200", "40,000", "six", "Two", "million", "dollars", "percent", "$", "%", "people", "years",
    "“Yes.”", "(No.)", "U.S.", "e.g.", ".", ",", "!", "?", "…", "-", "'", "’s",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", ", ", ". ", "! ", "? ", "\n", "\n\n", "\t", "\xa0", "\x85", "\u2028", "\x1c", "\u3000"]
news_like = st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(SEPARATORS)), max_size=50).map(
    lambda pairs: "".join(token + separator for token, separator in pairs)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(news_like, st.data())
@example("Mayor Carla Mendes won. Bridge repairs: Dr. Dana Whitcombe. The council met Dr.\nPeter said.", None)
def test_answers_are_those_of_the_plain_search_on_generated_text(text: str, data: st.DataObject | None) -> None:
    tokenizer = default_tokenizer()
    terms = sorted({term for word in WEIGHED for term in tokenizer.terms(word)} | set(tokenizer.terms(text)))
    if data is None:
        weights = {term: 1.0 for term in terms}
        question = "how many"
    else:
        asked = data.draw(st.lists(st.sampled_from(terms), min_size=1, max_size=6, unique=True))
        values = st.one_of(st.sampled_from([1.0, 2.0, 0.5]), st.floats(0.01, 10.0), st.floats(-2.0, 0.0))
        weights = {term: data.draw(values) for term in asked}
        question = data.draw(st.sampled_from(["how many people came?", "how much", "when?", ""]))
    _same_as_reference(text, weights, question)


HOSTILE_TEXT = (
    "The council met on Monday. Repairs to the bridge will cost 4.2 million dollars, Mayor Carla Mendes said. "
    "The bridge in Lakeport closes on March 16 for 40,000 homes; the council agreed."
)


@pytest.mark.parametrize(
    ("text", "weights"),
    [
        (HOSTILE_TEXT, {"bridg": math.nan, "council": 1.0}),
        (HOSTILE_TEXT, {"bridg": math.inf, "council": 1.0}),
        (HOSTILE_TEXT, {"bridg": math.inf, "council": -math.inf}),
        (HOSTILE_TEXT, {"bridg": 1e308, "council": 1e308, "repair": 1e308}),
        (HOSTILE_TEXT, {"bridg": 0.0, "council": -1.0}),
        (HOSTILE_TEXT, {}),
        # coverages 0.5, 0.25, NaN, 1: a NaN compares false, so the sentences are searched in the text's order
        (
            "Secretary Ann Lee saw repairs. Secretary Bo Tan saw the bridge. Secretary Cy Poe saw the harbor. "
            "Secretary Di Roe saw bridge council repairs.",
            {"bridg": 1.0, "council": 1.0, "repair": 2.0, "harbor": math.nan},
        ),
    ],
)
def test_answers_for_weights_no_question_has_are_those_of_the_plain_search(
    text: str, weights: dict[str, float]
) -> None:
    _same_as_reference(text, weights, "how many homes")


@pytest.mark.parametrize(
    "text", ["", "  \n ", "Nothing of it here.", "The bridge. The bridge council.\nBridge!", HOSTILE_TEXT]
)
@pytest.mark.parametrize(
    "weights",
    [
        {"bridg": 1.0, "council": 2.0},
        {"bridg": 1.0, "council": 1.0},
        {"bridg": math.nan, "council": 1.0},
        {"bridg": math.inf},
        {"council": 1e308, "bridg": 1e308},
    ],
)
def test_the_line_decision_for_any_answer_is_that_of_the_plain_search(text: str, weights: dict[str, float]) -> None:
    # also answers found elsewhere (a caller's mistake): the same result or the same error
    for keys in ({"bridg"}, {"council"}, {"bridg", "council"}):
        _shown_as_reference(FoundAnswer(Span(0, 3), 0.9, 1, frozenset(keys)), text, weights)


def test_of_answers_as_good_in_one_sentence_the_first_found_wins(tokenizer: Tokenizer) -> None:
    # the titled name and the untitled run of capitals start at the same place, one word from "council"
    text = "The council Mayor Carla Ann Mendes said."
    found = find_answer("person", text, weights_of(tokenizer, "council"), tokenizer)
    assert found is not None and text[found.span.start : found.span.end] == "Mayor Carla Ann Mendes"
    assert _outcome(lambda: found) == _outcome(
        lambda: _reference_find_answer("person", text, weights_of(tokenizer, "council"), tokenizer)
    )


def test_sentences_without_the_questions_words_are_not_searched_for_names_or_numbers(tokenizer: Tokenizer) -> None:
    text = (
        "Dr. Ann Lee said 40 people came. Mayor Bo Tan counted 12 cars. The bridge closes, said Secretary Dana Roe. "
        "Chief Al Poe saw 7 boats."
    )
    weights = weights_of(tokenizer, "bridge")
    for answer_type, answer in (("person", "Secretary Dana Roe"), ("number", None)):
        with mock.patch.object(answer_line, "answer_spans", wraps=answer_spans) as spans:
            found = find_answer(answer_type, text, weights, tokenizer)
        assert [call.args[1] for call in spans.call_args_list] == ["The bridge closes, said Secretary Dana Roe."]
        assert (found and text[found.span.start : found.span.end]) == answer
        assert _outcome(lambda: found) == _outcome(  # noqa: B023
            lambda: _reference_find_answer(answer_type, text, weights, tokenizer)  # noqa: B023
        )


def test_a_sentence_holding_less_of_the_question_is_not_searched_once_one_holding_more_answers(
    tokenizer: Tokenizer,
) -> None:
    text = "Secretary Ann Lee saw the bridge. The bridge repairs were led by Secretary Dana Roe."
    weights = weights_of(tokenizer, "bridge repairs")
    with mock.patch.object(answer_line, "answer_spans", wraps=answer_spans) as spans:
        found = find_answer("person", text, weights, tokenizer)
    assert found is not None and text[found.span.start : found.span.end] == "Secretary Dana Roe"
    assert [call.args[1] for call in spans.call_args_list] == ["The bridge repairs were led by Secretary Dana Roe."]


def test_no_line_from_a_sentence_holding_much_less_of_the_question_than_another(tokenizer: Tokenizer) -> None:
    text = "Trump spoke about the phone call and the talks in London. Talks begin next Monday."
    weights = weights_of(tokenizer, "Trump phone London", heavy="talks")
    found = find_answer("date", text, weights, tokenizer)
    assert found is not None and text[found.span.start : found.span.end] == "next Monday"
    assert found.coverage == 0.4 and found.keys == {"talk"}  # the heaviest word: only the first sentence holds more
    assert not shown_as_line(found, text, weights, tokenizer)
    _shown_as_reference(found, text, weights)
    alone = text[text.index("Talks") :]  # without the sentence holding more, the same answer is shown
    found = find_answer("date", alone, weights, tokenizer)
    assert found is not None and found.coverage == 0.4 and shown_as_line(found, alone, weights, tokenizer)
