"""Block Kit builders: citations, emphasis, shortening, and Slack's limits for any passage text.

Limits are checked with the fake Slack API's own checker, which is written
independently of the builders' clamps.
"""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from corpusbot.bot.slack import blocks
from corpusbot.bot.slack.blocks import AnswerRef, PageRef, passage_mrkdwn
from corpusbot.index.models import Answer, ArticleInfo, ArticleMatch, Hit, Passage, Span, Stats
from tests.support.fake_slack import HOME_BLOCKS, block_kit_problems

LINK = re.compile(r"<(https?://[^<>|\s]+)\|([^<>|]*)>")
MARKUP = [*"<>&|*_~`!@\n ", "<!channel>", "<@U123>", "<https://evil|click>", "&amp;", "\u202e", "😀"]


def article(
    url: str | None = "https://example.com/a", title: str = "A title", article_id: str = "art-1"
) -> ArticleInfo:
    return ArticleInfo(article_id, title, url, "Reuters", "2025-06-07")


def hit(
    text: str,
    rank: int = 1,
    matches: tuple[Span, ...] = (),
    highlight: Span | None = None,
    info: ArticleInfo | None = None,
) -> Hit:
    info = info or article()
    return Hit(rank, 1.0, Passage(rank, info.id, rank, 0, len(text), text), info, matches, highlight)


def answer(*hits: Hit, query: str = "question", **fields: object) -> Answer:
    return Answer(query, hits, ("question",), **fields)  # type: ignore[arg-type]


def rendered_texts(payload: dict) -> list[str]:
    found = [payload.get("text", "")]
    for block in payload["blocks"]:
        if "text" in block:
            found.append(block["text"]["text"])
        found.extend(e["text"] for e in block.get("elements", []) if block["type"] == "context")
    return found


def assert_safe(payload: dict, allowed_links: set[str] = frozenset(), mentions: set[str] = frozenset()) -> None:
    """Only the bot's own links (to the given URLs) and mentions: nothing from the text can ping or link."""
    for text in rendered_texts(payload):
        without = LINK.sub(lambda m: "" if m.group(1) in allowed_links else m.group(0), text)
        for mention in mentions:
            without = without.replace(mention, "")
        assert "<" not in without and ">" not in without, text
        assert "&" not in re.sub(r"&(amp|lt|gt);", "", without), text


# -- properties ------------------------------------------------------------------------

passage_texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from([*MARKUP, "word", "rare", "earth", ". ", "\n\n"]), max_size=600).map("".join),
    st.integers(1, 8000).map(lambda n: "&" * n),
    st.integers(1, 3000).map(lambda n: "<!channel> " * n),
    st.integers(1, 20000).map(lambda n: ("Long sentence about rare earth. " * (n // 30 + 1))[:n]),
)


@st.composite
def hits_for(draw: st.DrawFn, rank: int) -> Hit:
    text = draw(passage_texts)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=40)))
    matches = tuple(Span(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if a < b)
    highlight = None
    if text and draw(st.booleans()):
        start = draw(st.integers(0, len(text) - 1))
        highlight = Span(start, draw(st.integers(start + 1, len(text))))
    url = draw(
        st.sampled_from(
            [None, "https://example.com/x?a=1&b=<2>|3", "javascript:alert(1)", "http://e.example/" + "p" * 3000]
        )
    )
    title = draw(st.one_of(st.text(max_size=400), st.sampled_from(["<!channel> & co", "t|i|t|l|e"])))
    article_id = draw(st.one_of(st.text(min_size=1, max_size=300), st.just("id`with`ticks<>")))
    return hit(text, rank, matches, highlight, article(url, title, article_id))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=1, max_size=5).flatmap(
        lambda ranks: st.tuples(*(hits_for(r) for r in range(1, len(ranks) + 1)))
    ),
    st.one_of(st.text(max_size=2000), st.lists(st.sampled_from(MARKUP), max_size=500).map("".join)),
    st.booleans(),
    st.booleans(),
    st.lists(st.text(max_size=30), max_size=30),
)
def test_any_answer_stays_within_slacks_limits_and_is_safe(
    found: tuple[Hit, ...], question: str, confident: bool, has_more: bool, unknown: list[str]
) -> None:
    result = Answer(
        question,
        found,
        (),
        tuple(unknown),
        confident=confident,
        has_more=has_more,
        notices=("The question was shortened.",),
    )
    for message in (blocks.answer_message(result, shareable=True), blocks.shared_answer("U0ALICE1", result)):
        payload = message.payload()
        assert block_kit_problems(payload) == []
        urls = {
            blocks.link(h.article.url, "x")[1:].split("|")[0]
            for h in found
            if blocks.link(h.article.url, "x").startswith("<")
        }
        assert_safe(payload, urls, {"<@U0ALICE1>"})
    for button in message.blocks[-1]["elements"]:
        ref = AnswerRef.from_value(button["value"])
        assert ref is not None and question.startswith(ref.question)


@settings(max_examples=100, deadline=None)
@given(passage_texts, st.text(max_size=400), st.integers(0, 500))
def test_any_article_card_and_passage_page_stay_within_limits(text: str, title: str, count: int) -> None:
    info = article("https://example.com/a", title, "art-1")
    passages = [Passage(i, "art-1", i + 1, 0, len(text), text) for i in range(5)]
    for message in (blocks.article_card(info, count, passages[0]), blocks.passages_page(info, passages, 5, count + 10)):
        assert block_kit_problems(message.payload()) == []
        assert_safe(message.payload(), {"https://example.com/a"})


@settings(max_examples=100, deadline=None)
@given(passage_texts, st.lists(st.integers(0, 10_000), max_size=20), st.integers(1, 3000))
def test_passage_mrkdwn_respects_its_budget(text: str, cuts: list[int], budget: int) -> None:
    cuts = sorted(c % (len(text) + 1) for c in cuts)
    matches = [Span(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False)]
    out = passage_mrkdwn(text, matches, Span(0, len(text)) if text else None, budget=budget)
    assert len(out) <= max(budget, 1)
    assert "<" not in out and ">" not in out


# -- examples ------------------------------------------------------------------------


def test_matched_terms_are_bold_and_the_best_sentence_italic() -> None:
    text = "Trade talks begin. The US delegation includes Greer. Weather was fine."
    start = text.index("The US")
    matches = (
        Span(text.index("US"), text.index("US") + 2),
        Span(text.index("delegation"), text.index("delegation") + 10),
    )
    out = passage_mrkdwn(text, matches, Span(start, text.index(" Weather")))
    assert out == "Trade talks begin. _The *US delegation* includes Greer._ Weather was fine."


def test_italics_never_span_a_line_break() -> None:
    text = "Heading line\nSecond line here"
    assert passage_mrkdwn(text, (), Span(0, len(text))) == "_Heading line_\n_Second line here_"


def test_a_long_passage_is_shortened_around_its_best_sentence() -> None:
    filler = "Nothing to see here at all. " * 100
    best = "The delegation met in London on Monday."
    text = filler + best + " " + filler
    start = text.index(best)
    out = passage_mrkdwn(text, (), Span(start, start + len(best)), limit=300)
    assert out.startswith("…") and out.endswith("…")
    assert f"_{best}_" in out
    assert len(out) < 320


def test_escaping_cannot_push_a_passage_over_the_section_limit() -> None:
    message = blocks.answer_message(answer(hit("<&>" * 5000)))
    assert block_kit_problems(message.payload()) == []
    assert len(message.blocks[1]["text"]["text"]) <= 3000


def test_citation_has_number_title_paragraph_date_link_and_id() -> None:
    assert (
        blocks.citation(hit("text", rank=2))
        == "[2] <https://example.com/a|A title> · ¶2 · published 2025-06-07 · id `art-1`"
    )
    unlinked = hit("text", info=article(url="javascript:alert(1)", title="<b>Bold</b>"))
    assert blocks.citation(unlinked) == "[1] &lt;b&gt;Bold&lt;/b&gt; · ¶1 · published 2025-06-07 · id `art-1`"
    undated = hit("text", info=ArticleInfo("art-2", "T", None, None, None))
    assert blocks.citation(undated) == "[1] T · ¶1 · id `art-2`"
    hostile = hit("text", info=ArticleInfo("art-3", "T", None, None, "<!channel> 2025"))
    assert "<!channel>" not in blocks.citation(hostile) and "&lt;!channel&gt; 2025" in blocks.citation(hostile)


def test_not_confident_says_so_before_the_closest_passages() -> None:
    message = blocks.answer_message(answer(hit("some text"), confident=False))
    assert message.blocks[1]["text"]["text"] == "No confident match; closest passages:"
    assert message.text.startswith("No confident match; closest passages:")


def test_unknown_terms_are_listed_even_when_something_matched() -> None:
    message = blocks.answer_message(answer(hit("some text"), unknown_terms=("zyxw",)))
    assert any("Not in the corpus: `zyxw`" in t for t in rendered_texts(message.payload()))


def test_no_match_is_never_empty_and_suggests_a_rephrase() -> None:
    message = blocks.answer_message(
        answer(query="<!channel> zyxw", unknown_terms=("zyxw",)), examples=["What about X?"]
    )
    text = message.blocks[0]["text"]["text"]
    assert "I found no passage that matches *&lt;!channel&gt; zyxw*." in text
    assert "The corpus never mentions: `zyxw`." in text and "Try other words" in text
    assert message.text and "What about X?" in message.blocks[1]["elements"][0]["text"]
    empty = blocks.answer_message(answer(query=""))
    assert empty.text and empty.blocks[0]["text"]["text"]


def test_paging_past_the_end_says_no_more_results() -> None:
    assert (
        blocks.answer_message(answer(query="rare", offset=9)).blocks[0]["text"]["text"] == "No more results for *rare*."
    )


def test_buttons_carry_question_page_and_shown_passages() -> None:
    message = blocks.answer_message(answer(hit("a"), hit("b", rank=2), has_more=True, offset=0), shareable=True)
    values = {b["action_id"]: json.loads(b["value"]) for b in message.blocks[-1]["elements"]}
    assert values[blocks.MORE] == {"q": "question", "o": 2}
    assert values[blocks.HELPFUL] == {"q": "question", "o": 0, "p": ["art-1 ¶1", "art-1 ¶2"]}
    assert values[blocks.SHARE] == {"q": "question", "o": 0}
    without_more = blocks.answer_message(answer(hit("a")))
    assert [b["action_id"] for b in without_more.blocks[-1]["elements"]] == [blocks.HELPFUL, blocks.NOT_HELPFUL]


def test_button_values_fit_however_the_question_escapes() -> None:
    question = '"\\\x01' * 2000
    ref = AnswerRef(question, 3, tuple("x" * 500 for _ in range(10)))
    value = ref.to_value()
    assert len(value) <= 2000
    back = AnswerRef.from_value(value)
    assert back is not None and back.offset == 3 and question.startswith(back.question) and len(back.question) > 100


def test_the_index_generation_rides_in_the_answer_buttons_compactly() -> None:
    message = blocks.answer_message(answer(hit("a"), hit("b"), has_more=True), shareable=True, generation=42)
    values = {b["action_id"]: json.loads(b["value"]) for b in message.blocks[-1]["elements"]}
    assert {action: value.get("g") for action, value in values.items()} == {
        blocks.MORE: 42,
        blocks.HELPFUL: 42,
        blocks.NOT_HELPFUL: 42,
        blocks.SHARE: 42,
    }
    assert values[blocks.MORE] == {"q": "question", "o": 2, "g": 42}
    ref = AnswerRef("q", 3, ("a ¶1",), 42)
    assert ref.to_value() == '{"q":"q","o":3,"p":["a ¶1"],"g":42}'
    assert AnswerRef.from_value(ref.to_value()) == ref


def test_button_values_posted_before_generations_still_decode() -> None:
    assert AnswerRef.from_value('{"q":"q","o":3,"p":["a ¶1"]}') == AnswerRef("q", 3, ("a ¶1",), None)
    assert AnswerRef.from_value('{"q":"q","o":3}') == AnswerRef("q", 3)
    for odd in ('"5"', "true", "1.5", "null"):  # a generation that is not a whole number is not known
        assert AnswerRef.from_value(f'{{"q":"q","o":3,"g":{odd}}}') == AnswerRef("q", 3)


def test_button_values_with_a_generation_fit_too() -> None:
    question = '"\\\x01' * 2000
    value = AnswerRef(question, 3, tuple("x" * 500 for _ in range(10)), 2**62).to_value()
    assert len(value) <= 2000
    back = AnswerRef.from_value(value)
    assert back is not None and back.generation == 2**62 and question.startswith(back.question)


def test_an_index_changed_note_comes_first_and_keeps_the_buttons() -> None:
    message = blocks.answer_message(answer(*[hit(str(n)) for n in range(30)], has_more=True), generation=5)
    noted = blocks.index_changed(message, 4, 5)
    assert noted.blocks[0] == blocks.context(
        "The index was updated since this answer (generation 4 → 5); these results come from the current one."
    )
    assert len(noted.blocks) <= blocks.MAX_BLOCKS and noted.blocks[-1] == message.blocks[-1]
    assert noted.text == message.text


def test_values_that_are_not_ours_are_rejected() -> None:
    for value in (None, "", "not json", "[]", '{"q": 3}', '{"q": "x", "o": -1}', '{"q": "x", "p": "no"}'):
        assert AnswerRef.from_value(value) is None
    for value in (None, "{}", '{"a": 1}', '{"a": "x", "o": "1"}'):
        assert PageRef.from_value(value) is None
    assert PageRef.from_value(PageRef("art-1", 5).to_value()) == PageRef("art-1", 5)


def test_a_long_article_list_stays_under_50_blocks_with_unique_action_ids() -> None:
    matches = [ArticleMatch(article(article_id=f"a{i}"), 1.0, False, 3) for i in range(80)]
    message = blocks.article_list("words", matches, closest=["a1", "a2"])
    assert block_kit_problems(message.payload()) == []
    ids = [b["accessory"]["action_id"] for b in message.blocks[1:]]
    assert len(ids) == len(set(ids)) and all(blocks.PASSAGES_PATTERN.match(i) for i in ids)
    assert "closest ids: `a1`, `a2`" in message.blocks[0]["text"]["text"]


def test_home_view_shows_counts_examples_and_admin_help_only_to_admins() -> None:
    stats = Stats(12, 340, 5000, "2025-06-08T10:00:00+00:00", 1.5, "/x.db", 1, (), 1, "t", {})
    view = blocks.home_view(stats, ["What about <!here>?"], is_admin=False)
    assert view["type"] == "home"
    assert block_kit_problems(view, HOME_BLOCKS) == []
    body = "\n".join(b["text"]["text"] for b in view["blocks"] if "text" in b)
    assert "*12* articles (340 passages). Last reindex: 2025-06-08T10:00:00+00:00" in body
    assert "What about &lt;!here&gt;?" in body and "admin" not in json.dumps(view)
    assert "admin reindex" in json.dumps(blocks.home_view(stats, [], is_admin=True))
    assert "not available" in json.dumps(blocks.home_view(None, []))
