"""Escaping for Slack mrkdwn, and decoding what users type."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from corpusbot.bot.slack.mrkdwn import code, decode_incoming, escape, link, safe_url, shorten

ENTITY = re.compile(r"&(amp|lt|gt);")
SLACKY = st.lists(st.sampled_from([*"<>&|!@#:/ abc", "<!channel>", "<@U1>", "&amp;", "&lt;", "https://"])).map("".join)
ANY_TEXT = st.one_of(st.text(), SLACKY)


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@given(ANY_TEXT)
def test_escaped_text_has_no_raw_angle_brackets_and_only_entity_ampersands(text: str) -> None:
    escaped = escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert "&" not in ENTITY.sub("", escaped)
    assert unescape(escaped) == text


@given(ANY_TEXT)
def test_inline_code_is_escaped_and_cannot_be_closed_early(text: str) -> None:
    rendered = code(text)
    assert rendered.startswith("`") and rendered.endswith("`") and rendered.count("`") == 2
    assert "<" not in rendered and ">" not in rendered


@given(
    st.one_of(
        st.none(), st.text(), SLACKY, st.from_regex(r"https?://[a-z]{1,5}\.example/[\x21-\x7e]{0,30}", fullmatch=True)
    ),
    ANY_TEXT,
)
def test_a_link_is_one_well_formed_http_link_or_plain_escaped_text(url: str | None, label: str) -> None:
    rendered = link(url, label)
    if rendered.startswith("<"):
        match = re.fullmatch(r"<(https?://[^<>|\s]+)\|([^<>|]*)>", rendered)
        assert match, rendered
        assert "&" not in ENTITY.sub("", match.group(1))
    else:
        assert rendered == escape(label.replace("|", "¦"))


def test_only_http_urls_become_links() -> None:
    assert link("https://example.com/a?b=1&c=2", "T") == "<https://example.com/a?b=1&amp;c=2|T>"
    assert link("http://example.com/x|y>z", "T") == "<http://example.com/x%7Cy%3Ez|T>"
    for bad in (
        "javascript:alert(1)",
        "ftp://example.com/",
        "//example.com",
        "https://",
        "https://exa mple.com",
        "mailto:a@b.c",
        None,
        "",
    ):
        assert link(bad, "<T>") == "&lt;T&gt;"
    assert safe_url("https://example.com/\n<!channel>") is None


def test_shorten_adds_an_ellipsis_only_when_it_cuts() -> None:
    assert shorten("short", 10) == "short"
    cut = shorten("one two three four five six", 12)
    assert cut.endswith("…") and len(cut) <= 12 and cut == "one two…"
    assert len(shorten("x" * 100, 10)) == 10


def test_decoding_what_users_type() -> None:
    assert decode_incoming("<@UBOT> who is <@U123|bob>?", "UBOT") == "who is @bob?"
    assert decode_incoming("&lt;!channel&gt; &amp;amp; A &amp; B", None) == "<!channel> &amp; A & B"
    assert (
        decode_incoming("see <https://x.example/a|the page> and <https://y.example>")
        == "see the page and https://y.example"
    )
    assert decode_incoming("<!here> in <#C123|general>") == "in #general"
    assert decode_incoming("  spaced \n out  ") == "spaced out"
