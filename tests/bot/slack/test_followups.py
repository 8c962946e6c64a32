"""Follow-ups in Slack: a thread reply or a DM soon after is asked with the conversation's last question."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from corpusbot.bot.state.thread_questions import DM_SECONDS, DM_THREAD, ThreadQuestions
from corpusbot.index import index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from tests.support.fake_slack import BOT_USER_ID, FakeSlack
from tests.support.slack_harness import Bot, running_bot

DELEGATION = "who is on the US delegation?"
ROOT_TS = "1700000100.000200"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bot(slack: FakeSlack, tmp_path: Path, clock: Clock):
    db = tmp_path / "bot.db"
    index_corpus(db, [BUNDLED])
    with running_bot(slack, db) as running:
        state = running.runtime.state
        state.thread_questions.close()
        state.thread_questions = ThreadQuestions(state.path, state.store, clock=clock)
        yield running


def mention(text: str, ts: str, **extra: str) -> dict:
    return {
        "type": "app_mention",
        "user": "U0ALICE1",
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "channel": "C0GENERAL",
        "event_ts": ts,
        **extra,
    }


def dm(text: str, ts: str) -> dict:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": "D0ALICE1",
        "user": "U0ALICE1",
        "text": text,
        "ts": ts,
        "event_ts": ts,
    }


def reply_text(slack: FakeSlack, count: int) -> str:
    """Every text of the ``count``-th chat.postMessage so far (waiting for it)."""
    body = slack.wait_for("chat.postMessage", count=count)[count - 1].body
    parts = [body.get("text", "")]
    for block in body["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(element.get("text", "") for element in block.get("elements", []) if block["type"] == "context")
    return "\n".join(parts)


def test_a_reply_in_the_thread_is_read_with_the_threads_question(bot: Bot, slack: FakeSlack) -> None:
    bot.event(mention(DELEGATION, ROOT_TS))
    first = reply_text(slack, 1)
    assert "follow-up" not in first
    bot.event(mention("and what did they want from China?", "1700000101.000001", thread_ts=ROOT_TS))
    second = reply_text(slack, 2)
    assert f"Read as a follow-up to: {DELEGATION}" in second
    chain = bot.runtime.state.thread_questions.earlier("C0GENERAL", ROOT_TS)
    assert chain == f"{DELEGATION} and what did they want from China?"


def test_a_question_of_its_own_in_the_thread_is_asked_alone(bot: Bot, slack: FakeSlack) -> None:
    bot.event(mention(DELEGATION, ROOT_TS))
    reply_text(slack, 1)
    bot.event(mention("how many automakers got licenses?", "1700000101.000001", thread_ts=ROOT_TS))
    assert "follow-up" not in reply_text(slack, 2)


def test_another_thread_knows_nothing_of_it(bot: Bot, slack: FakeSlack) -> None:
    bot.event(mention(DELEGATION, ROOT_TS))
    reply_text(slack, 1)
    bot.event(mention("and what did they want?", "1700000201.000001", thread_ts="1700000200.000001"))
    assert "follow-up" not in reply_text(slack, 2)


def test_a_dm_follow_up_counts_for_ten_minutes(bot: Bot, slack: FakeSlack, clock: Clock) -> None:
    bot.event(dm("when are the london talks?", "1700000300.000001"))
    reply_text(slack, 1)
    clock.now += DM_SECONDS - 5
    bot.event(dm("and who's going?", "1700000300.000002"))
    soon = reply_text(slack, 2)
    assert "Read as a follow-up to: when are the london talks?" in soon
    assert "Treasury Secretary" in soon
    clock.now += DM_SECONDS + 5
    bot.event(dm("and who's going?", "1700000300.000003"))
    assert "follow-up" not in reply_text(slack, 3)
    assert bot.runtime.state.thread_questions.earlier("D0ALICE1", DM_THREAD) is not None  # the newest one


class BrokenStore:
    def earlier(self, channel_id: str, thread_ts: str) -> str | None:
        raise sqlite3.OperationalError("disk I/O error")

    def remember(self, channel_id: str, thread_ts: str, question: str) -> None:
        raise sqlite3.OperationalError("database is locked")

    def close(self) -> None:
        return None


def test_a_failing_state_still_answers_without_the_context(bot: Bot, slack: FakeSlack) -> None:
    bot.runtime.state.thread_questions.close()
    bot.runtime.state.thread_questions = BrokenStore()  # type: ignore[assignment]
    bot.event(mention("and what did they want from China?", "1700000101.000001", thread_ts=ROOT_TS))
    text = reply_text(slack, 1)
    assert "follow-up" not in text
    assert "China" in text


# -- what goes above the passages: lines about an article, the answer line -------------------------------------------


def test_metadata_and_answer_lines_escape_what_the_corpus_says() -> None:
    from corpusbot.bot.slack.blocks import answer_message
    from corpusbot.index.models import AboutArticle, Answer, ArticleInfo, DirectAnswer, Hit, Passage, Span

    info = ArticleInfo("a-1", "Title <!here>", "javascript:alert(1)", "Daily <@U0BOSS>", None)
    text = "Minister <!channel> Smith met them on June 5."
    hit = Hit(1, 1.0, Passage(7, "a-1", 1, 0, len(text), text), info)
    answer = Answer(
        "who wrote it?",
        (hit,),
        ("wrote",),
        answer=DirectAnswer("<!channel> Smith", "person", hit, Span(9, 25)),
        about=(AboutArticle(info, "*Eve* <!everyone>", ("url", "source", "author", "published")),),
        context="earlier <!here> question",
    )
    message = answer_message(answer)
    rendered = "\n".join(
        block["text"]["text"] if "text" in block else " ".join(e.get("text", "") for e in block.get("elements", []))
        for block in message.blocks
        if block["type"] in ("section", "context")
    )
    for raw in ("<!channel>", "<!here>", "<!everyone>", "<@U0BOSS>", "<javascript"):
        assert raw not in rendered and raw not in message.text
    assert "*Original article:* javascript:alert(1)" in rendered  # not an http(s) URL: text, never a link
    assert "*Published:* _not recorded for this article_" in rendered
    assert "*Answer:* &lt;!channel&gt; Smith" in rendered
    assert "Read as a follow-up to: earlier &lt;!here&gt; question" in rendered


def test_a_metadata_answer_without_passages_is_still_a_reply(tmp_path: Path) -> None:
    from corpusbot.bot.slack.blocks import answer_message
    from corpusbot.index import SearchService

    db = tmp_path / "sample.db"
    index_corpus(db, [BUNDLED])
    service = SearchService(db)
    try:
        answer = service.ask("link to the original article")  # names no article: no passages, one article's link
    finally:
        service.close()
    assert answer.hits == () and len(answer.about) == 1
    message = answer_message(answer)
    texts = [block["text"]["text"] for block in message.blocks if block["type"] == "section"]
    assert texts[1] == (
        "*Original article:* <https://www.toutiao.com/article/7513089098832298534/"
        "|https://www.toutiao.com/article/7513089098832298534/>"
    )
    assert "No confident match" not in message.text and "No passage" not in message.text
