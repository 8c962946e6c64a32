"""The panel's, the shortcut's and the unfurls' Block Kit for arbitrary text: within Slack's limits, escaped."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from corpusbot.bot.slack import blocks, surface_blocks
from corpusbot.bot.slack.surface_payloads import Origin
from corpusbot.index.models import ArticleInfo, Passage
from tests.bot.slack.surface_helpers import markup, rendered
from tests.support.fake_slack import block_kit_problems

MARKUP = ["<!channel>", "<!here>", "<@U0VICTIM>", "<#C0SECRET>", "<https://evil.example|x>", "&", "*", "_", "`"]
TEXT = st.one_of(st.text(max_size=3000), st.lists(st.sampled_from(MARKUP), max_size=600).map("".join))


@settings(max_examples=60, deadline=None)
@given(title=TEXT, source=st.none() | TEXT, published=st.none() | TEXT, first=TEXT, count=st.integers(0, 10**6))
def test_an_unfurl_card_is_within_limits_and_parses_no_markup_from_the_article(
    title: str, source: str | None, published: str | None, first: str, count: int
) -> None:
    info = ArticleInfo("id<!channel>", title, "https://news.example/a", source, published)
    card = surface_blocks.unfurl_card(info, count, Passage(1, info.id, 1, 0, len(first), first) if first else None)
    assert block_kit_problems(card) == []
    assert all(block["type"] != "actions" for block in card["blocks"])
    assert {m for m in markup(rendered(card)) if not m.startswith("<https://news.example/a|")} == set()


@settings(max_examples=60, deadline=None)
@given(text=TEXT, channel=st.none() | TEXT, url=st.none() | st.text(max_size=4000))
def test_the_question_modal_is_within_limits_whatever_the_message(
    text: str, channel: str | None, url: str | None
) -> None:
    view = surface_blocks.question_modal(text, Origin(channel, url))
    assert block_kit_problems(view, 100) == []
    assert len(view["title"]["text"]) <= 24 and len(view["private_metadata"]) <= 3000
    assert len(view["blocks"][0]["element"].get("initial_value", "")) <= surface_blocks.MODAL_INPUT_CHARS


@settings(max_examples=60, deadline=None)
@given(examples=st.lists(TEXT, max_size=10), question=TEXT, articles=st.none() | st.integers(0, 10**9))
def test_panel_texts_are_bounded(examples: list[str], question: str, articles: int | None) -> None:
    prompts = surface_blocks.prompts(examples)
    assert len(prompts) <= surface_blocks.MAX_PROMPTS
    for prompt in prompts:
        assert 0 < len(prompt["title"]) <= surface_blocks.PROMPT_TITLE_CHARS
        assert len(prompt["message"]) <= surface_blocks.PROMPT_MESSAGE_CHARS
    assert 0 < len(surface_blocks.thread_title(question)) <= surface_blocks.THREAD_TITLE_CHARS
    assert len(surface_blocks.searching(articles)) <= surface_blocks.STATUS_CHARS


@given(channel=st.none() | TEXT)
def test_only_a_channel_id_becomes_a_channel_mention(channel: str | None) -> None:
    greeting = surface_blocks.greeting(153_389, channel)
    assert block_kit_problems(greeting.payload()) == []
    found = markup(rendered(greeting.payload()))
    assert found <= {f"<#{channel}>"}
    assert not found or re.fullmatch(r"[CGD][A-Z0-9]{2,30}", channel or "")
    assert "*153,389*" in rendered(greeting.payload())


def test_the_viewed_channel_goes_before_the_buttons_and_never_past_fifty_blocks() -> None:
    buttons = blocks.actions(blocks.button("More results", blocks.MORE, "{}"))
    message = blocks.Message("t", [blocks.section("a"), buttons])
    noted = surface_blocks.with_viewing(message, "C0VIEWED1")
    assert [block["type"] for block in noted.blocks] == ["section", "context", "actions"]
    full = blocks.Message("t", [blocks.section(str(n)) for n in range(blocks.MAX_BLOCKS)])
    assert surface_blocks.with_viewing(full, "C0VIEWED1") == full
    assert surface_blocks.with_viewing(message, "<!channel>") == message


def test_a_direct_message_answer_loses_only_the_share_button() -> None:
    row = blocks.actions(blocks.button("Helpful", blocks.HELPFUL, "{}"), blocks.button("Share", blocks.SHARE, "{}"))
    only_share = blocks.actions(blocks.button("Share", blocks.SHARE, "{}"))
    assert surface_blocks.without_share(blocks.Message("t", [row])).blocks[0]["elements"][0]["action_id"] == (
        blocks.HELPFUL
    )
    assert surface_blocks.without_share(blocks.Message("t", [blocks.section("a"), only_share])).blocks == [
        blocks.section("a")
    ]


def test_the_greeting_only_points_at_suggestions_when_there_are_some() -> None:
    assert "pick a suggestion" in rendered(surface_blocks.greeting(3, suggestions=True).payload())
    without = rendered(surface_blocks.greeting(None, suggestions=False).payload())
    assert "suggestion" not in without and "from news articles" in without
