"""The readers of the assistant panel's, the shortcut's and link_shared payloads never raise, whatever the JSON."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from corpusbot.bot.slack import surface_payloads
from corpusbot.bot.slack.surface_payloads import Origin

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
FIELDS = ["assistant_thread", "context", "channel_id", "thread_ts", "user_id", "links", "url", "channel",
          "message_ts", "unfurl_id", "source", "callback_id", "user", "id", "message", "text", "trigger_id",
          "response_url", "view", "state", "values", "private_metadata"]  # fmt: skip
SHAPED = st.recursive(
    JSON,
    lambda children: st.dictionaries(st.sampled_from(FIELDS), children, max_size=6) | st.lists(children, max_size=3),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(payload=SHAPED)
def test_readers_never_raise_and_give_strings_or_none(payload: Any) -> None:
    thread = surface_payloads.assistant_thread(payload)
    for value in (thread.user_id, thread.channel_id, thread.thread_ts):
        assert value is None or isinstance(value, str)
    shortcut = surface_payloads.message_shortcut(payload)
    assert isinstance(shortcut.text, str) and isinstance(shortcut.callback_id, str)
    submitted = surface_payloads.question_submitted(payload)
    assert isinstance(submitted.question, str) and isinstance(submitted.origin, Origin)
    shared = surface_payloads.link_shared(payload)
    assert all(isinstance(url, str) for url in shared.urls)
    assert len(shared.urls) <= surface_payloads.MAX_LINKS


@given(value=st.none() | st.text(max_size=200))
def test_an_origin_survives_the_modal_or_is_empty(value: str | None) -> None:
    origin = Origin.from_value(value)
    assert origin.channel_id is None or isinstance(origin.channel_id, str)
    assert Origin.from_value(Origin("C1", "https://hooks.slack.com/x").to_value()) == Origin(
        "C1", "https://hooks.slack.com/x"
    )
