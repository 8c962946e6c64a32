"""End to end in HTTP mode: signed Slack requests to the real app, replies checked at a fake Slack API."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from corpusbot.bot.cli import cli
from corpusbot.bot.slack import blocks
from corpusbot.bot.slack.mrkdwn import escape
from corpusbot.index import SearchService, index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.engine import store
from tests.support.fake_slack import BOT_ID, BOT_USER_ID, FakeSlack
from tests.support.slack_harness import Bot, running_bot

DELEGATION = "who is on the US delegation?"
SAMPLE_1 = "000-6b3987004aa82828"
SAMPLE_2 = "001-6346928b0b16da65"
EVIL_TEXT = (
    "Alert <!channel> and <!here>: <@U0VICTIM> says the magnesium smelter story is fake, "
    "click <https://evil.example/steal|the official page> & see for yourself."
)


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def db(tmp_path: Path, corpus_dir: Path) -> Path:
    """The bundled sample plus an article full of Slack markup."""
    record = {
        "id": "evil-1",
        "title": "Ping <!channel> & <@U0VICTIM>",
        "url": "https://example.com/a",
        "text": EVIL_TEXT,
    }
    (corpus_dir / "evil.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    path = tmp_path / "bot.db"
    index_corpus(path, [BUNDLED, str(corpus_dir)])
    return path


@pytest.fixture
def bot(slack: FakeSlack, db: Path):
    with running_bot(slack, db) as running:
        yield running


def texts(payload: dict) -> list[str]:
    """Every mrkdwn/plain text in a message payload, in order."""
    found = [payload.get("text") or ""]
    for block in payload.get("blocks", []):
        if "text" in block:
            found.append(block["text"]["text"])
        for element in block.get("elements", []):
            if "text" in element:
                found.append(element["text"] if isinstance(element["text"], str) else element["text"]["text"])
        if "accessory" in block:
            found.append(block["accessory"]["text"]["text"])
    return found


def buttons(payload: dict) -> dict[str, str]:
    """action_id -> value of every button in a payload."""
    found = {}
    for block in payload.get("blocks", []):
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if element.get("type") == "button":
                found[element["action_id"]] = element["value"]
    return found


def mention(text: str, ts: str = "1700000100.000200", channel: str = "C0GENERAL", **extra: str) -> dict:
    return {
        "type": "app_mention",
        "user": "U0ALICE1",
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        **extra,
    }


def dm(text: str, ts: str = "1700000200.000300", **extra: str) -> dict:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": "D0ALICE1",
        "user": "U0ALICE1",
        "text": text,
        "ts": ts,
        "event_ts": ts,
        **extra,
    }


def no_problems(slack: FakeSlack) -> None:
    assert [(call.method, call.problems) for call in slack.calls if call.problems] == []


# -- /ask ----------------------------------------------------------------------------


def test_ask_answers_only_the_asker_with_citations_and_buttons(bot: Bot, slack: FakeSlack) -> None:
    assert bot.command("/ask", DELEGATION).status == 200
    [reply] = slack.wait_for("response_url")
    payload = reply.body
    assert payload["response_type"] == "ephemeral"
    assert payload["replace_original"] is False
    assert payload["blocks"][0]["text"]["text"] == f"*Question:* {DELEGATION}"
    # a "who" question: the answer line and its citation come first (issue 15), then the passages
    answer_line = payload["blocks"][1]["text"]["text"]
    assert answer_line == (
        "*Answer:* Treasury Secretary Becente, Commerce Secretary Lutnik and Trade Representative Greer"
    )
    assert payload["blocks"][2]["elements"][0]["text"].startswith("from [1] ")
    first = payload["blocks"][3]["text"]["text"]
    assert first.startswith("*[1]* ")
    assert "Treasury Secretary Becente" in first
    # matched terms in bold; "Washington" too, the bundled synonym of "US" (adjacent bold words share one run)
    assert "*Washington delegation*" in first
    assert re.search(r"_Trump also told reporters[^_]*_", first)  # best sentence in italics
    citation = payload["blocks"][4]["elements"][0]["text"]
    assert citation.startswith("[1] ")
    assert "¶2" in citation and f"id `{SAMPLE_2}`" in citation
    assert list(buttons(payload)) == [blocks.MORE, blocks.HELPFUL, blocks.NOT_HELPFUL, blocks.SHARE]
    generation = bot.runtime.service.generation
    assert json.loads(buttons(payload)[blocks.MORE]) == {"q": DELEGATION, "o": 3, "g": generation}
    no_problems(slack)


def test_ask_links_citations_only_to_article_urls(bot: Bot, slack: FakeSlack) -> None:
    bot.command("/ask", "rare earth elements magnets Reuters")
    payload = slack.wait_for("response_url")[0].body
    citations = [t for t in texts(payload) if re.match(r"\[\d\] ", t)]
    linked = [c for c in citations if "<" in c]
    assert linked, citations
    for text in linked:  # the sample's first article has a URL, the second has none
        assert "<https://www.toutiao.com/article/7513089098832298534/|" in text
        assert SAMPLE_1 in text
    assert all(SAMPLE_2 not in c or "<" not in c for c in citations)


@pytest.mark.parametrize("text", ["", "help", "  HELP "])
def test_ask_alone_or_help_shows_usage_with_example_questions(bot: Bot, slack: FakeSlack, db: Path, text: str) -> None:
    bot.command("/ask", text)
    payload = slack.wait_for("response_url")[0].body
    service = SearchService(db)
    examples = service.example_questions()
    service.close()
    assert examples
    body = "\n".join(texts(payload))
    assert "/ask QUESTION" in body
    for example in examples:
        assert f"/ask {escape(example)}" in body
    assert payload["response_type"] == "ephemeral"


def test_no_match_says_so_and_lists_unknown_words(bot: Bot, slack: FakeSlack) -> None:
    bot.command("/ask", "zyxwvut qwertzuiop")
    payload = slack.wait_for("response_url")[0].body
    text = payload["blocks"][0]["text"]["text"]
    assert "I found no passage that matches *zyxwvut qwertzuiop*" in text
    assert "`zyxwvut`" in text and "`qwertzuiop`" in text
    assert "Try other words" in text
    assert payload["text"]


# -- escaping ------------------------------------------------------------------------


def test_slack_markup_inside_a_corpus_passage_is_escaped(bot: Bot, slack: FakeSlack) -> None:
    bot.command("/ask", "magnesium smelter")
    payload = slack.wait_for("response_url")[0].body
    everything = json.dumps(payload)
    for raw in ("<!channel>", "<!here>", "<@U0VICTIM>", "<https://evil.example"):
        assert raw not in everything
    passage = payload["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt;" in passage and "&lt;@U0VICTIM&gt;" in passage
    assert "&lt;https://evil.example/steal|the official page&gt; &amp; see" in passage
    citation = payload["blocks"][2]["elements"][0]["text"]
    assert "<https://example.com/a|Ping &lt;!channel&gt; &amp; &lt;@U0VICTIM&gt;>" in citation
    for text in texts(payload):
        assert set(re.findall(r"<[^>]*>", text)) <= {
            "<https://example.com/a|Ping &lt;!channel&gt; &amp; &lt;@U0VICTIM&gt;>"
        }


def test_user_text_is_escaped_when_echoed(bot: Bot, slack: FakeSlack) -> None:
    # Slack sends what the user typed with &, <, > as entities; markup it created itself stays markup.
    bot.command("/ask", "&lt;!channel&gt; <!here> rare earth &amp; <@U0BOB|bob>")
    payload = slack.wait_for("response_url")[0].body
    question = payload["blocks"][0]["text"]["text"]
    assert question == "*Question:* &lt;!channel&gt; rare earth &amp; @bob"
    shown = "\n".join(texts(payload))  # button values are data, never rendered
    assert "<!" not in shown and "<@" not in shown


# -- mentions and DMs -------------------------------------------------------------------


def test_mention_is_answered_in_its_thread(bot: Bot, slack: FakeSlack) -> None:
    assert bot.event(mention(DELEGATION, ts="1700000100.000200")).status == 200
    [call] = slack.wait_for("chat.postMessage")
    assert call.authorization == f"Bearer {bot.runtime.settings.bot_token}"
    assert call.body["channel"] == "C0GENERAL"
    assert call.body["thread_ts"] == "1700000100.000200"
    assert call.body["unfurl_links"] is False
    assert "Treasury Secretary Becente" in call.body["blocks"][1]["text"]["text"]
    assert f"<@{BOT_USER_ID}>" not in call.body["blocks"][0]["text"]["text"]
    no_problems(slack)


def test_mention_inside_a_thread_answers_in_that_thread(bot: Bot, slack: FakeSlack) -> None:
    bot.event(mention("rare earth", ts="1700000300.000001", thread_ts="1700000299.000001"))
    assert slack.wait_for("chat.postMessage")[0].body["thread_ts"] == "1700000299.000001"


def test_bare_mention_gets_usage(bot: Bot, slack: FakeSlack) -> None:
    bot.event(mention(""))
    assert "/ask QUESTION" in slack.wait_for("chat.postMessage")[0].body["blocks"][0]["text"]["text"]


def test_direct_message_is_answered_in_the_dm(bot: Bot, slack: FakeSlack) -> None:
    bot.event(dm("rare earth export licenses"))
    [call] = slack.wait_for("chat.postMessage")
    assert call.body["channel"] == "D0ALICE1"
    assert "thread_ts" not in call.body
    assert call.body["blocks"][0]["text"]["text"] == "*Question:* rare earth export licenses"


def test_bot_messages_subtypes_and_own_messages_are_ignored(bot: Bot, slack: FakeSlack) -> None:
    ignored = [
        dm("rare earth", bot_id="B0OTHER1"),
        dm("rare earth", subtype="message_changed"),
        {**dm("rare earth"), "user": BOT_USER_ID, "bot_id": BOT_ID},
        mention("rare earth", bot_id="B0OTHER1"),
        {"type": "reaction_added", "user": "U0ALICE1", "reaction": "+1", "event_ts": "1.2"},
    ]
    for event in ignored:
        assert bot.event(event).status == 200
    bot.settle()
    assert slack.replies() == []
    bot.event(dm("rare earth"))  # the same DM from a person is answered
    bot.settle()
    assert [call.method for call in slack.replies()] == ["chat.postMessage"]


def test_retried_event_is_answered_once_even_after_a_restart(slack: FakeSlack, db: Path) -> None:
    event = mention(DELEGATION)
    with running_bot(slack, db) as first:
        first.event(event, event_id="Ev0RETRY1")
        slack.wait_for("chat.postMessage")
        assert first.event(event, event_id="Ev0RETRY1", retry=1).status == 200
        first.settle()
    with running_bot(slack, db) as restarted:
        assert restarted.event(event, event_id="Ev0RETRY1", retry=2).status == 200
        restarted.settle()
        assert len(slack.calls_to("chat.postMessage")) == 1
        restarted.event(event, event_id="Ev0OTHER1")  # a new event with the same text is a new question
        restarted.settle()
    answered = [call.body["thread_ts"] for call in slack.calls_to("chat.postMessage")]
    assert answered == [event["ts"], event["ts"]]


# -- buttons -------------------------------------------------------------------------


def test_more_results_edits_the_message_in_place(bot: Bot, slack: FakeSlack) -> None:
    bot.event(mention(DELEGATION))
    [posted] = slack.wait_for("chat.postMessage")
    more = buttons(posted.body)[blocks.MORE]
    bot.click(blocks.MORE, more, message_ts=posted.response["ts"])
    [update] = slack.wait_for("chat.update")
    assert update.body["channel"] == "C0GENERAL"
    assert update.body["ts"] == posted.response["ts"]
    assert update.body["blocks"][1]["text"]["text"].startswith("*[4]* ")
    assert json.loads(buttons(update.body)[blocks.HELPFUL])["o"] == 3
    assert slack.calls_to("response_url") == []
    no_problems(slack)


def test_more_results_on_an_ephemeral_answer_replaces_it_through_the_response_url(bot: Bot, slack: FakeSlack) -> None:
    bot.command("/ask", DELEGATION)
    first = slack.wait_for("response_url")[0].body
    bot.click(blocks.MORE, buttons(first)[blocks.MORE], ephemeral=True)
    second = slack.wait_for("response_url", 2)[1].body
    assert second["replace_original"] is True
    assert second["blocks"][1]["text"]["text"].startswith("*[4]* ")
    assert blocks.SHARE in buttons(second)
    assert slack.calls_to("chat.update") == []


def test_more_results_falls_back_to_the_response_url_when_chat_update_fails(bot: Bot, slack: FakeSlack) -> None:
    value = blocks.AnswerRef(DELEGATION, 3).to_value()
    bot.click(blocks.MORE, value, message_ts="1699999999.000000")  # a message chat.update does not know
    slack.wait_for("chat.update")
    [replaced] = slack.wait_for("response_url")
    assert replaced.body["replace_original"] is True
    assert replaced.body["blocks"][1]["text"]["text"].startswith("*[4]* ")


INDEX_CHANGED = re.compile(
    r"^The index was updated since this answer \(generation (\d+) → (\d+)\); these results come from the current one\.$"
)


def changed_note(payload: dict) -> tuple[int, int] | None:
    """(shown, current) from the index-changed line of a reply, None when it has none."""
    notes = [INDEX_CHANGED.match(text) for text in texts(payload)]
    found = [(int(m[1]), int(m[2])) for m in notes if m]
    assert len(found) <= 1
    return found[0] if found else None


def test_more_results_after_a_reindex_answers_from_the_current_index_and_says_so(
    bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path
) -> None:
    bot.event(mention(DELEGATION))
    [posted] = slack.wait_for("chat.postMessage")
    shown = bot.runtime.service.generation
    more = buttons(posted.body)[blocks.MORE]
    assert json.loads(more)["g"] == shown
    bot.click(blocks.MORE, more, message_ts=posted.response["ts"], hook="same")
    [same] = slack.wait_for("chat.update")
    assert changed_note(same.body) is None  # the same index: nothing to say
    (corpus_dir / "wombat.txt").write_text("A wombat crossing was painted near Canberra.\n", encoding="utf-8")
    index_corpus(db)  # another replica's index moved on, or a reindex ran
    bot.click(blocks.MORE, more, message_ts=posted.response["ts"], hook="changed")
    changed = slack.wait_for("chat.update", 2)[1].body
    current = bot.runtime.service.generation
    assert current == shown + 1
    assert changed_note(changed) == (shown, current)
    assert changed["blocks"][0]["type"] == "context"
    assert changed["blocks"][2]["text"]["text"].startswith("*[4]* ")  # still the next page, from the current index
    assert {json.loads(value)["g"] for value in buttons(changed).values()} == {current}
    no_problems(slack)


def test_more_results_from_a_button_posted_before_generations_says_nothing_about_them(
    bot: Bot, slack: FakeSlack
) -> None:
    old = json.dumps({"q": DELEGATION, "o": 3}, separators=(",", ":"))  # as buttons already in Slack carry it
    bot.click(blocks.MORE, old, message_ts="1699999999.000000")
    [replaced] = slack.wait_for("response_url")
    assert replaced.body["blocks"][1]["text"]["text"].startswith("*[4]* ")
    assert changed_note(replaced.body) is None
    assert json.loads(buttons(replaced.body)[blocks.HELPFUL])["g"] == bot.runtime.service.generation


def test_feedback_is_stored_and_listed_by_the_cli(bot: Bot, slack: FakeSlack, db: Path, runner) -> None:
    bot.event(mention(DELEGATION))
    posted = slack.wait_for("chat.postMessage")[0].body
    bot.click(blocks.HELPFUL, buttons(posted)[blocks.HELPFUL], user="U0CAROL1", hook="helpful")
    bot.click(blocks.NOT_HELPFUL, buttons(posted)[blocks.NOT_HELPFUL], user="U0DAVE01", hook="unhelpful")
    thanks = {call.path: call.body for call in slack.wait_for("response_url", 2)}
    assert "was helpful" in thanks["/response/helpful"]["text"]
    assert "was not helpful" in thanks["/response/unhelpful"]["text"]
    assert thanks["/response/helpful"]["response_type"] == "ephemeral"
    stored = {record.user_id: record for record in bot.runtime.state.feedback()}
    assert stored["U0CAROL1"].verdict == "helpful" and stored["U0DAVE01"].verdict == "not_helpful"
    assert stored["U0CAROL1"].question == DELEGATION
    assert stored["U0CAROL1"].passages[0] == f"{SAMPLE_2} ¶2"
    assert stored["U0CAROL1"].channel_id == "C0GENERAL"
    generation = bot.runtime.service.generation
    assert stored["U0CAROL1"].generation == generation == stored["U0DAVE01"].generation
    # A button posted before generations were carried still records the vote, with no generation.
    old = json.dumps({"q": DELEGATION, "o": 0, "p": [f"{SAMPLE_2} ¶2"]}, separators=(",", ":"))
    bot.click(blocks.HELPFUL, old, user="U0ERIN01", hook="old")
    assert "was helpful" in slack.wait_for("response_url", 3)[2].body["text"]
    assert [record.generation for record in bot.runtime.state.feedback() if record.user_id == "U0ERIN01"] == [None]
    result = runner.invoke(cli, ["feedback", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert {(item["user_id"], item["verdict"], item["generation"]) for item in listed} == {
        ("U0CAROL1", "helpful", generation),
        ("U0DAVE01", "not_helpful", generation),
        ("U0ERIN01", "helpful", None),
    }
    assert all(item["question"] == DELEGATION and item["created_at"] for item in listed)
    text = runner.invoke(cli, ["feedback", "--db", str(db)])
    assert "3 feedback: 2 helpful, 1 not helpful" in text.output
    assert text.output.count(f"    index generation: {generation}\n") == 2


def test_share_posts_the_answer_in_the_channel_and_removes_the_ephemeral(bot: Bot, slack: FakeSlack) -> None:
    bot.command("/ask", DELEGATION)
    ephemeral = slack.wait_for("response_url")[0].body
    bot.click(blocks.SHARE, buttons(ephemeral)[blocks.SHARE], ephemeral=True, hook="share")
    _, public, delete = slack.wait_for("response_url", 3)
    assert public.body["response_type"] == "in_channel"
    assert public.body["blocks"][0]["elements"][0]["text"] == "<@U0ALICE1> shared an answer from /ask"
    assert "Treasury Secretary Becente" in public.body["blocks"][2]["text"]["text"]
    assert blocks.SHARE not in buttons(public.body)
    assert delete.body == {"delete_original": True}


def test_button_values_that_are_not_ours_change_nothing(bot: Bot, slack: FakeSlack) -> None:
    for action_id in (blocks.MORE, blocks.HELPFUL, blocks.SHARE, blocks.PASSAGES):
        assert bot.click(action_id, "not json {").status == 200
    bot.settle()
    assert slack.replies() == []
    assert bot.runtime.state.feedback() == []


# -- /article ------------------------------------------------------------------------


def test_article_by_id_shows_a_card_and_pages_through_passages(bot: Bot, slack: FakeSlack, db: Path) -> None:
    service = SearchService(db)
    info, passages = service.article(SAMPLE_1)
    service.close()
    bot.command("/article", SAMPLE_1)
    card = slack.wait_for("response_url")[0].body
    assert card["response_type"] == "ephemeral"
    assert card["blocks"][0]["text"]["text"] == f"*<{info.url}|{blocks.shorten(info.title, blocks.TITLE_CHARS)}>*"
    assert f"id `{SAMPLE_1}` · {len(passages)} passages" in card["blocks"][1]["elements"][0]["text"]
    assert card["blocks"][2]["text"]["text"].startswith("*¶1* According to Reuters")
    bot.click(blocks.PASSAGES, buttons(card)[blocks.PASSAGES], ephemeral=True)
    page = slack.wait_for("response_url", 2)[1].body
    assert page["replace_original"] is True
    assert f"passages 1–5 of {len(passages)}" in page["blocks"][0]["text"]["text"]
    assert [b["text"]["text"].split(" ")[0] for b in page["blocks"][1:6]] == ["*¶1*", "*¶2*", "*¶3*", "*¶4*", "*¶5*"]
    next_value = buttons(page)[f"{blocks.PASSAGES}_1"]
    bot.click(f"{blocks.PASSAGES}_1", next_value, ephemeral=True)
    following = slack.wait_for("response_url", 3)[2].body
    assert following["blocks"][1]["text"]["text"].startswith("*¶6*")
    assert blocks.PASSAGES in buttons(following)  # Previous
    no_problems(slack)


def test_article_with_an_unknown_id_suggests_the_closest_ids(bot: Bot, slack: FakeSlack) -> None:
    bot.command("/article", "000-6b39870")
    text = slack.wait_for("response_url")[0].body["blocks"][0]["text"]["text"]
    assert "No article has the id or words `000-6b39870`" in text
    assert f"`{SAMPLE_1}`" in text


def test_article_words_list_matching_articles(bot: Bot, slack: FakeSlack) -> None:
    bot.command("/article", "rare earth")
    payload = slack.wait_for("response_url")[0].body
    assert payload["blocks"][0]["text"]["text"] == "Articles matching *rare earth*:"
    listed = payload["blocks"][1:]
    assert {SAMPLE_1, SAMPLE_2} <= {json.loads(b["accessory"]["value"])["a"] for b in listed}
    assert all(b["accessory"]["text"]["text"] == "Show passages" for b in listed)
    assert len({b["accessory"]["action_id"] for b in listed}) == len(listed)


# -- App Home ------------------------------------------------------------------------


def test_app_home_shows_what_the_bot_knows(bot: Bot, slack: FakeSlack, db: Path) -> None:
    bot.event({"type": "app_home_opened", "user": "U0ALICE1", "channel": "D0ALICE1", "tab": "home", "event_ts": "1.1"})
    [call] = slack.wait_for("views.publish")
    assert call.body["user_id"] == "U0ALICE1"
    view = call.body["view"]
    assert view["type"] == "home"
    service = SearchService(db)
    stats, examples = service.stats(), service.example_questions()
    service.close()
    body = "\n".join(texts(view))
    assert f"I know *{stats.articles}* articles ({stats.passages} passages). Last reindex: {stats.built_at}." in body
    assert "/ask QUESTION" in body
    assert all(escape(example) in body for example in examples)
    assert "admin reindex" not in body
    no_problems(slack)


def test_messages_tab_opened_is_acknowledged_and_ignored(bot: Bot, slack: FakeSlack) -> None:
    assert (
        bot.event({"type": "app_home_opened", "user": "U0ALICE1", "tab": "messages", "event_ts": "1.1"}).status == 200
    )
    bot.settle()
    assert slack.replies() == []


# -- reindex, admins, allow-list, rate limit, 429s ------------------------------------


def test_a_cli_reindex_is_picked_up_without_a_restart(bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path) -> None:
    bot.command("/ask", "quokka sanctuary", hook="before")
    assert "I found no passage" in slack.wait_for("response_url")[0].body["blocks"][0]["text"]["text"]
    (corpus_dir / "quokka.txt").write_text(
        "The quokka sanctuary on Rottnest Island reopened on Monday.\n", encoding="utf-8"
    )
    index_corpus(db)  # what `corpusbot index` does, from another connection
    bot.command("/ask", "quokka sanctuary", hook="after")
    after = slack.wait_for("response_url", 2)[1].body
    assert (
        "*quokka* *sanctuary*" in after["blocks"][1]["text"]["text"]
        or "*quokka sanctuary*" in after["blocks"][1]["text"]["text"]
    )


def test_admin_commands_are_refused_politely_to_others(slack: FakeSlack, db: Path) -> None:
    with running_bot(slack, db, CORPUSBOT_ADMINS="U0ADMIN1") as bot:
        bot.command("/ask", "admin reindex", user="U0ALICE1")
        bot.command("/ask", "admin feedback", user="U0ALICE1", hook="second")
        bot.settle()
    replies = slack.calls_to("response_url")
    assert len(replies) == 2
    for reply in replies:
        text = reply.body["text"]
        assert text.startswith("Sorry, `admin ") and "only for corpusbot admins" in text
    assert not any(call.method.startswith("chat.") for call in slack.calls)


def test_admin_reindex_runs_for_an_admin_and_the_bot_uses_the_new_index(
    slack: FakeSlack, db: Path, corpus_dir: Path
) -> None:
    with running_bot(slack, db, CORPUSBOT_ADMINS="U0ADMIN1,U0ADMIN2") as bot:
        generation = bot.runtime.service.generation
        (corpus_dir / "wombat.txt").write_text("A wombat crossing was painted near Canberra.\n", encoding="utf-8")
        bot.command("/ask", "admin reindex", user="U0ADMIN2")
        started, done = slack.wait_for("response_url", 2)
        assert started.body["text"].startswith("Reindexing the corpus")
        assert done.body["text"].startswith("Reindexed: 1 added, 0 updated, 0 removed")
        assert bot.runtime.service.generation == generation + 1
        bot.command("/ask", "wombat crossing", hook="after")
        answer = slack.wait_for("response_url", 3)[2].body
        assert "Canberra" in answer["blocks"][1]["text"]["text"]
        bot.command("/ask", "admin feedback", user="U0ADMIN1", hook="feedback")
        assert slack.wait_for("response_url", 4)[3].body["text"] == "No feedback yet."


def test_outside_the_channel_allow_list_the_bot_says_it_is_not_enabled(slack: FakeSlack, db: Path) -> None:
    with running_bot(slack, db, CORPUSBOT_CHANNELS="C0ALLOWED") as bot:
        bot.event(mention("rare earth", channel="C0OTHER1"))
        refusal = slack.wait_for("chat.postMessage")[0].body
        assert "not enabled in this channel" in refusal["text"] and refusal["thread_ts"]
        bot.command("/ask", "rare earth", channel="C0OTHER1", hook="elsewhere")
        assert "not enabled in this channel" in slack.wait_for("response_url")[0].body["text"]
        bot.command("/ask", "rare earth", channel="C0ALLOWED", hook="allowed")
        bot.event(dm("rare earth"))
        allowed = slack.wait_for("response_url", 2)[1].body
        dm_answer = slack.wait_for("chat.postMessage", 2)[1].body
    assert allowed["blocks"][0]["text"]["text"] == "*Question:* rare earth"
    assert dm_answer["channel"] == "D0ALICE1" and dm_answer["blocks"][0]["text"]["text"] == "*Question:* rare earth"


def test_a_flooding_user_gets_one_slow_down_notice_and_others_are_unaffected(slack: FakeSlack, db: Path) -> None:
    with running_bot(slack, db, CORPUSBOT_RATE_LIMIT="2/60") as bot:
        for number in range(6):
            bot.command("/ask", "rare earth", user="U0FLOOD1", hook=f"flood{number}")
        bot.command("/ask", "rare earth", user="U0CALM01", hook="calm")
        bot.settle()
    by_hook = {call.path.rsplit("/", 1)[1]: call.body["text"] for call in slack.calls_to("response_url")}
    flood = [text for hook, text in by_hook.items() if hook.startswith("flood")]
    assert len(flood) == 3
    assert sum("slow down" in text for text in flood) == 1
    assert "slow down" not in by_hook["calm"]


def test_a_rate_limited_slack_api_call_is_retried_and_the_reply_arrives(bot: Bot, slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after="0")
    slack.fail_next("response_url", status=429, retry_after="0")
    bot.event(mention("rare earth"))
    bot.command("/ask", "rare earth")
    assert slack.wait_for("chat.postMessage")[0].body["thread_ts"]
    assert slack.wait_for("response_url")[0].body["response_type"] == "ephemeral"
    assert len(slack.calls_to("chat.postMessage (failed)")) == 1
    assert len(slack.calls_to("response_url (failed)")) == 1


def test_feedback_and_seen_events_live_in_the_state_database_beside_the_index(bot: Bot, db: Path) -> None:
    index = store.connect(db)
    tables = set(index.table_names())
    index.conn.close()
    assert {"articles", "passages", "terms"} <= tables
    assert not {"bot_feedback", "bot_seen_events"} & tables  # a reindex's write lock never delays an ack
    state = sqlite3.connect(db.with_name(db.stem + "-state.db"))
    try:
        names = {row[0] for row in state.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        state.close()
    assert {"bot_feedback", "bot_seen_events"} <= names
