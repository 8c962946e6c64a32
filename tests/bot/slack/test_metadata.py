"""Message metadata on answers: present on posted answers, in the shape and size Slack takes, absent elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from corpusbot.bot.slack.metadata import EVENT_TYPE, MAX_PAYLOAD_BYTES, answer_metadata, size
from corpusbot.index.models import Answer, ArticleInfo, Hit, Passage
from tests.bot.slack.surface_helpers import DELEGATION, build_corpus, panel_message, rendered, thread_started
from tests.support.fake_slack import BOT_USER_ID, FakeSlack
from tests.support.slack_harness import Bot, running_bot

MAX_EVENT_TYPE = 255


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def db(tmp_path: Path, corpus_dir: Path) -> Path:
    return build_corpus(tmp_path, corpus_dir)


@pytest.fixture
def bot(slack: FakeSlack, db: Path):
    with running_bot(slack, db) as running:
        yield running


def slack_shaped(payload: dict[str, Any]) -> bool:
    """Values Slack takes in metadata: strings, numbers, booleans, flat objects of those, lists of flat objects."""
    scalar = (str, int, float, bool)

    def flat(value: Any) -> bool:
        return isinstance(value, dict) and all(isinstance(v, scalar) for v in value.values())

    return all(
        isinstance(value, scalar) or flat(value) or (isinstance(value, list) and all(flat(item) for item in value))
        for value in payload.values()
    )


def within_limits(metadata: dict[str, Any]) -> None:
    assert set(metadata) == {"event_type", "event_payload"}
    assert metadata["event_type"] == EVENT_TYPE and len(metadata["event_type"]) <= MAX_EVENT_TYPE
    assert slack_shaped(metadata["event_payload"])
    assert size(metadata["event_payload"]) <= MAX_PAYLOAD_BYTES


def test_a_mention_answer_carries_what_it_cited(bot: Bot, slack: FakeSlack) -> None:
    bot.event({"type": "app_mention", "user": "U0ALICE1", "text": f"<@{BOT_USER_ID}> {DELEGATION}",
               "ts": "1700003000.000100", "channel": "C0GENERAL"})  # fmt: skip
    bot.settle()
    [answer] = slack.calls_to("chat.postMessage")
    metadata = answer.body["metadata"]
    within_limits(metadata)
    payload = metadata["event_payload"]
    assert payload["question"] == DELEGATION
    assert payload["generation"] == bot.runtime.service.generation
    shown = [block["elements"][0]["text"] for block in answer.body["blocks"] if block["type"] == "context"]
    cited = [(p["rank"], p["article_id"], p["passage"]) for p in payload["passages"]]
    assert len(cited) == len([text for text in shown if text.startswith("[")])
    for rank, article_id, ordinal in cited:
        assert any(text.startswith(f"[{rank}] ") and f"¶{ordinal}" in text and article_id in text for text in shown)
    assert [a["id"] for a in payload["articles"]] == list(dict.fromkeys(p["article_id"] for p in payload["passages"]))


def test_panel_and_dm_answers_carry_metadata_but_ephemeral_ones_do_not(bot: Bot, slack: FakeSlack) -> None:
    bot.event(thread_started(None))
    bot.event(panel_message(DELEGATION))
    bot.event({"type": "message", "channel_type": "im", "channel": "D0ALICE1", "user": "U0ALICE1",
               "text": DELEGATION, "ts": "1700003001.000100"})  # fmt: skip
    bot.command("/ask", DELEGATION)
    bot.settle()
    posted = slack.calls_to("chat.postMessage")
    [greeting] = [call for call in posted if "Hi!" in rendered(call.body)]  # the listeners run side by side
    assert "metadata" not in greeting.body
    answers = [call for call in posted if call is not greeting]
    assert len(answers) == 2
    for answer in answers:
        within_limits(answer.body["metadata"])
    [ephemeral] = slack.calls_to("response_url")
    assert "metadata" not in ephemeral.body


def test_metadata_can_be_turned_off(slack: FakeSlack, db: Path) -> None:
    with running_bot(slack, db, CORPUSBOT_SURFACES_OFF="metadata") as bot:
        bot.event({"type": "message", "channel_type": "im", "channel": "D0ALICE1", "user": "U0ALICE1",
                   "text": DELEGATION, "ts": "1700003001.000100"})  # fmt: skip
        bot.settle()
    [answer] = slack.calls_to("chat.postMessage")
    assert "metadata" not in answer.body and answer.body["blocks"]


def _answer(question: str, hits: int, id_chars: int, title_chars: int) -> Answer:
    found = tuple(
        Hit(
            rank=n,
            score=1.0,
            passage=Passage(n, f"{'é' * id_chars}{n}", n, 0, 1, "x"),
            article=ArticleInfo(f"{'é' * id_chars}{n}", "<!channel> " + "t" * title_chars, None, None, None),
        )
        for n in range(1, hits + 1)
    )
    return Answer(question, found, ("x",), ())


@pytest.mark.parametrize(
    ("question", "hits", "id_chars", "title_chars"),
    [("q", 3, 10, 10), ("q" * 50_000, 3, 10, 10), ("ü" * 50_000, 50, 5_000, 5_000), ("", 200, 300, 300)],
)
def test_metadata_stays_within_limits_for_any_answer(question: str, hits: int, id_chars: int, title_chars: int) -> None:
    metadata = answer_metadata(_answer(question, hits, id_chars, title_chars), 7)
    within_limits(metadata)
    payload = metadata["event_payload"]
    assert payload["generation"] == 7
    assert payload["passages"], "at least the best passage is kept"
    if len(payload["passages"]) < hits:
        assert payload["truncated"] is True
    json.dumps(metadata)


def test_an_unknown_generation_is_left_out_not_null() -> None:
    payload = answer_metadata(_answer("q", 1, 3, 3), None)["event_payload"]
    assert "generation" not in payload and None not in payload.values()
