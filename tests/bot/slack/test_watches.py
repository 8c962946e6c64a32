"""Watches and "what's new" end to end: signed /ask commands to the real app, posts checked at a fake Slack API.

A reindex is a real ``index_corpus`` run on the bot's index; the watch check is the one the bot's
background thread runs (:meth:`WatchPoster.poll`), called here at chosen moments.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusbot.bot.cli import cli
from corpusbot.bot.slack.watches import (
    MAX_NEW_ARTICLES,
    MAX_PASSAGES,
    MORE,
    WatchPoster,
    new_articles_message,
    parse_since,
    subcommand,
    watch_message,
)
from corpusbot.bot.state import StateUnavailable
from corpusbot.bot.state import watches as state_watches
from corpusbot.bot.state.watches import MAX_WATCHES_PER_CHANNEL as MAX_WATCHES
from corpusbot.bot.state.watches import Watch
from corpusbot.index import index_corpus
from corpusbot.index.models import ArticleInfo, Passage
from corpusbot.index.search.watch import IndexedArticle, WatchMatch
from tests.support.fake_slack import FakeSlack, block_kit_problems
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.support.slack_harness import Bot, running_bot

FILLER = (
    "The ministry said the figures would be published later in the month. Analysts expected little change in the "
    "weeks ahead, and markets were calm on the news. Officials declined to comment further on the timetable."
)
WATCHED = "rare earth export licences"
ADMIN = "U0ADMIN01"
BACKGROUND = (
    "Fishing quotas were cut in the bay.",
    "A new bridge opened over the river.",
    "Coffee prices climbed at auction.",
    "The film festival announced its jury.",
    "Rail fares will rise in January.",
    "A museum returned stolen paintings.",
    "Tourism recovered on the islands.",
    "The central bank held interest rates.",
    "A storm closed schools on the coast.",
    "Vaccine trials began in the capital.",
    "Shipping costs eased in the autumn.",
    "The football league changed its rules.",
)
BACKGROUND_ARTICLES = 2 * len(BACKGROUND)


def write_article(folder: Path, article_id: str, text: str, title: str = "", published: str | None = None) -> None:
    record = {"id": article_id, "title": title or article_id, "text": text, "url": f"https://news.example/{article_id}"}
    if published:
        record["published"] = published
    (folder / f"{article_id}.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")


def reindex(db: Path, corpus_dir: Path) -> None:
    time.sleep(1.05)  # files.indexed_at has one-second resolution: this run is later than the last
    index_corpus(db, [str(corpus_dir)])


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def db(tmp_path: Path, corpus_dir: Path) -> Path:
    for number in range(BACKGROUND_ARTICLES):  # enough articles for the watched words to be informative
        write_article(corpus_dir, f"bg-{number:02d}", f"{BACKGROUND[number % len(BACKGROUND)]} {FILLER}")
    write_article(corpus_dir, "steel-1", f"Steel output rose in the north. {FILLER}")
    write_article(corpus_dir, "rare-old", f"Rare earth export licences were discussed last year. {FILLER}")
    path = tmp_path / "bot.db"
    index_corpus(path, [str(corpus_dir)])
    return path


@pytest.fixture
def bot(slack: FakeSlack, db: Path) -> Iterator[Bot]:
    with running_bot(slack, db, CORPUSBOT_ADMINS=ADMIN) as running:
        yield running


def ask(bot: Bot, slack: FakeSlack, text: str, **options: str) -> str:
    """Send ``/ask text``; the text of its (ephemeral) reply."""
    before = len(slack.calls_to("response_url"))
    assert bot.command("/ask", text, **options).status == 200
    reply = slack.wait_for("response_url", before + 1)[-1].body
    assert reply["response_type"] == "ephemeral"
    return json.dumps(reply, ensure_ascii=False)


def posts(slack: FakeSlack) -> list[dict]:
    return [call.body for call in slack.calls_to("chat.postMessage")]


def more_button(message: dict) -> dict:
    """A posted watch message's one More button."""
    [button] = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == MORE]
    return button


def watch_id(reply: str) -> int:
    return int(reply.split("(#", 1)[1].split(")", 1)[0])


def test_a_reindex_posts_one_grouped_message_per_watch_and_nothing_twice(
    bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path
) -> None:
    first = watch_id(ask(bot, slack, f"watch {WATCHED}"))
    second = watch_id(ask(bot, slack, "watch steel output", channel="D0ALICE1"))  # a DM works too
    poster = WatchPoster(bot.runtime, bot.app.client)
    assert poster.poll() == 0  # a new watch does not post what was indexed before it
    write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted to three firms. {FILLER}", "Licences")
    write_article(
        corpus_dir, "rare-2", f"China tightened rare earth export licences again. {FILLER}", published="2025-06-02"
    )
    write_article(corpus_dir, "wheat-1", f"The wheat harvest was early. {FILLER}")
    reindex(db, corpus_dir)
    assert poster.poll() == 1
    [message] = posts(slack)
    assert message["channel"] == "C0GENERAL"
    text = json.dumps(message)
    assert f"#{first}" in text and "rare-1" in text and "rare-2" in text and "published 2025-06-02" in text
    assert "rare-old" not in text and "wheat-1" not in text and "steel" not in text
    assert "*rare earth export licences*" in text.lower()  # the watched words are bold
    assert not [call.problems for call in slack.calls if call.problems]

    assert poster.poll() == 0  # the same generation: not even looked at
    reindex(db, corpus_dir)  # nothing changed
    assert poster.poll() == 0 and len(posts(slack)) == 1

    write_article(corpus_dir, "steel-2", f"Steel output fell in the south. {FILLER}")
    reindex(db, corpus_dir)
    assert poster.poll() == 1
    latest = posts(slack)[-1]
    assert latest["channel"] == "D0ALICE1" and f"#{second}" in json.dumps(latest) and "steel-2" in json.dumps(latest)


def test_a_restarted_bot_does_not_post_again(slack: FakeSlack, db: Path, corpus_dir: Path) -> None:
    with running_bot(slack, db) as bot:
        ask(bot, slack, f"watch {WATCHED}")
        write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted. {FILLER}")
        reindex(db, corpus_dir)
        assert WatchPoster(bot.runtime, bot.app.client).poll() == 1
    with running_bot(slack, db) as bot:  # the same state file beside the index
        assert WatchPoster(bot.runtime, bot.app.client).poll() == 0
    assert len(posts(slack)) == 1


def test_an_edited_article_posts_only_its_changed_passage(
    bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path
) -> None:
    ask(bot, slack, f"watch {WATCHED}")
    poster = WatchPoster(bot.runtime, bot.app.client)
    write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted. {FILLER}")
    reindex(db, corpus_dir)
    assert poster.poll() == 1
    paragraph = "Rare earth export licences were later revoked for one firm, officials said on Friday."
    write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted. {FILLER}\n\n{paragraph} {FILLER}")
    reindex(db, corpus_dir)
    assert poster.poll() == 1
    latest = json.dumps(posts(slack)[-1])
    assert "revoked" in latest and "were granted" not in latest


def test_more_matches_than_fit_are_counted(bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path) -> None:
    ask(bot, slack, f"watch {WATCHED}")
    poster = WatchPoster(bot.runtime, bot.app.client)
    for number in range(MAX_PASSAGES + 4):
        write_article(corpus_dir, f"rare-{number:02d}", f"Rare earth export licences, report {number}. {FILLER}")
    reindex(db, corpus_dir)
    assert poster.poll() == 1
    [message] = posts(slack)
    assert "and 4 more passages (4 more articles)" in json.dumps(message)
    assert not [call.problems for call in slack.calls if call.problems]
    shown = set(re.findall(r"report (\d+)", json.dumps(message)))
    assert len(shown) == MAX_PASSAGES
    more = more_button(message)
    assert more["text"]["text"] == "More (4)"
    before = len(slack.calls_to("response_url"))
    assert bot.click(MORE, more["value"], user="U0BOB0001", hook="watch-more").status == 200
    reply = slack.wait_for("response_url", before + 1)[-1]
    assert reply.path.endswith("/watch-more") and reply.body["response_type"] == "ephemeral"
    rest = set(re.findall(r"report (\d+)", json.dumps(reply.body)))
    assert rest == {str(n) for n in range(MAX_PASSAGES + 4)} - shown, "exactly the passages the post left out"
    assert "More (" not in json.dumps(reply.body), "nothing more after them"
    assert len(posts(slack)) == 1, "the rest is shown to the one who clicked, not posted"
    assert not [call.problems for call in slack.calls if call.problems]


def test_more_of_a_removed_watch_or_a_forged_value_says_so_or_is_ignored(
    bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path
) -> None:
    number = watch_id(ask(bot, slack, f"watch {WATCHED}"))
    poster = WatchPoster(bot.runtime, bot.app.client)
    for n in range(MAX_PASSAGES + 1):
        write_article(corpus_dir, f"rare-{n:02d}", f"Rare earth export licences, report {n}. {FILLER}")
    reindex(db, corpus_dir)
    assert poster.poll() == 1
    [message] = posts(slack)
    more = more_button(message)
    ask(bot, slack, f"unwatch {number}")
    before = len(slack.calls_to("response_url"))
    assert bot.click(MORE, more["value"], hook="gone").status == 200
    reply = slack.wait_for("response_url", before + 1)[-1]
    assert "That watch was removed" in json.dumps(reply.body)
    for forged in ("{}", "[]", "not json", '{"w": -1, "t": "x", "o": 0}', '{"w": true, "t": "x", "o": 0}'):
        assert bot.click(MORE, forged, hook="forged").status == 200
    bot.settle()
    assert slack.calls_to("response_url")[before + 1 :] == []


def test_a_rate_limited_post_is_retried_and_a_refused_one_is_not_repeated(
    bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path
) -> None:
    ask(bot, slack, f"watch {WATCHED}")
    poster = WatchPoster(bot.runtime, bot.app.client)
    write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted. {FILLER}")
    reindex(db, corpus_dir)
    slack.fail_next("chat.postMessage", status=429, retry_after="0")
    assert poster.poll() == 1
    assert len(slack.calls_to("chat.postMessage (failed)")) == 1 and len(posts(slack)) == 1
    write_article(corpus_dir, "rare-2", f"China tightened rare earth export licences. {FILLER}")
    reindex(db, corpus_dir)
    slack.fail_next("chat.postMessage", status=200, error="not_in_channel")
    assert poster.poll() == 0  # refused: logged, and its passages stay claimed
    reindex(db, corpus_dir)
    assert WatchPoster(bot.runtime, bot.app.client).poll() == 0 and len(posts(slack)) == 1


def test_watch_queries_and_passages_are_escaped(bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path) -> None:
    reply = ask(bot, slack, f"watch &lt;!channel&gt; {WATCHED} &amp; &lt;@U0VICTIM&gt;")
    assert "<!channel>" not in reply and "&lt;!channel&gt;" in reply
    poster = WatchPoster(bot.runtime, bot.app.client)
    write_article(
        corpus_dir,
        "evil-1",
        f"Rare earth export licences <!here> for <@U0VICTIM>, see <https://evil.example|this>. {FILLER}",
        title="<!channel> licences",
    )
    reindex(db, corpus_dir)
    assert poster.poll() == 1
    text = json.dumps(posts(slack)[0])
    for markup in ("<!channel>", "<!here>", "<@U0VICTIM>", "<https://evil.example"):
        assert markup not in text
    assert "&lt;!here&gt;" in text
    listed = ask(bot, slack, "watches")
    assert "<!channel>" not in listed and "&lt;!channel&gt;" in listed


def test_watches_lists_the_channel_and_unwatch_is_for_the_creator_or_an_admin(bot: Bot, slack: FakeSlack) -> None:
    mine = watch_id(ask(bot, slack, f"watch {WATCHED}"))
    theirs = watch_id(ask(bot, slack, "watch steel output", user="U0BOB001"))
    elsewhere = watch_id(ask(bot, slack, "watch wheat harvest", channel="C0OTHER1"))
    listed = ask(bot, slack, "watches")
    assert f"*#{mine}*" in listed and f"*#{theirs}*" in listed and f"#{elsewhere}" not in listed
    assert "<@U0BOB001>" in listed
    assert "already watches" in ask(bot, slack, f"watch {WATCHED.upper()}")

    assert "Only <@U0BOB001>" in ask(bot, slack, f"unwatch {theirs}")  # Alice did not make it
    assert f"no watch #{elsewhere}" in ask(bot, slack, f"unwatch {elsewhere}")  # another channel's
    assert "by its number" in ask(bot, slack, "unwatch steel")
    assert "Stopped watching" in ask(bot, slack, f"unwatch #{mine}")
    assert "Stopped watching" in ask(bot, slack, f"unwatch {theirs}", user=ADMIN)
    assert "no watches" in ask(bot, slack, "watches")
    assert [w.id for w in bot.runtime.state.watches.all()] == [elsewhere]
    assert "Say what to watch for" in ask(bot, slack, "watch   ")
    assert "no words I can search for" in ask(bot, slack, "watch the of and")
    assert "no words I can search for" in ask(bot, slack, "watch -ministry -officials")  # would never match
    assert "at most" in ask(bot, slack, "watch " + "word " * 100)


def test_new_lists_what_was_indexed_since_newest_first(bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path) -> None:
    assert f"{BACKGROUND_ARTICLES + 2} articles indexed since" in ask(bot, slack, "new")
    write_article(corpus_dir, "wheat-1", f"The wheat harvest was early. {FILLER}", published="2025-06-02")
    reindex(db, corpus_dir)
    listed = ask(bot, slack, "new 24h")
    assert f"{BACKGROUND_ARTICLES + 3} articles indexed since" in listed and "published 2025-06-02" in listed
    assert listed.index("wheat-1") < listed.index("bg-00")  # newest first
    assert f"and {BACKGROUND_ARTICLES + 3 - 15} more" in listed  # capped, the rest counted
    assert "Nothing was indexed since" in ask(bot, slack, "new 2999-01-01")
    answer = ask(bot, slack, "new wheat harvest?")  # a question that starts with "new"
    assert "indexed since" not in answer and "wheat" in answer


def test_new_lists_an_article_once_when_it_first_came_not_again_after_a_full_rebuild_or_an_appended_line(
    bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path
) -> None:
    daily = corpus_dir / "daily.jsonl"
    write_lines(daily, [("daily-1", f"Grain exports rose. {FILLER}")])
    reindex(db, corpus_dir)
    since = datetime.now(UTC).strftime("%Y-%m-%d")  # today: everything so far, as a baseline
    everything = ask(bot, slack, f"new {since}")
    assert f"{BACKGROUND_ARTICLES + 3} articles indexed since" in everything
    time.sleep(1.05)
    after_first = datetime.now(UTC)
    write_lines(daily, [("daily-1", f"Grain exports rose. {FILLER}"), ("daily-2", f"Grain prices fell. {FILLER}")])
    reindex(db, corpus_dir)
    result = CliRunner().invoke(cli, ["index", str(corpus_dir), "--full", "--db", str(db)])
    assert result.exit_code == 0, result.output
    found, total = bot.runtime.service.indexed_since(after_first.isoformat(timespec="seconds"))
    assert [item.article.id for item in found] == ["daily-2"] and total == 1
    listed = ask(bot, slack, "new 24h")  # the order users see: by when each article first came
    assert listed.index("daily-2") < listed.index("daily-1") < listed.index("bg-00")


def test_parse_since_and_subcommands() -> None:
    now = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
    assert parse_since("", now) == datetime(2025, 6, 9, 12, 0, tzinfo=UTC)
    assert parse_since("3d", now) == datetime(2025, 6, 7, 12, 0, tzinfo=UTC)
    assert parse_since("since 90 minutes", now) == datetime(2025, 6, 10, 10, 30, tzinfo=UTC)
    assert parse_since("2025-06-01", now) == datetime(2025, 6, 1, tzinfo=UTC)
    for bad in ("2025-02-30", "soon", "3 fortnights"):
        with pytest.raises(ValueError, match="/ask new 3d"):
            parse_since(bad, now)
    assert subcommand("watch rare earth") == ("watch", "rare earth")
    assert subcommand("Watches") == ("watches", "")
    assert subcommand("watches of the Swiss market") is None
    assert subcommand("new sanctions on China?") is None
    assert subcommand("new 2w") == ("new", "2w")
    assert subcommand("who is new?") is None


@pytest.mark.parametrize("state", ["postgres", "sqlite"])
def test_two_bots_on_one_state_database_post_once(
    slack: FakeSlack, db: Path, corpus_dir: Path, request: pytest.FixtureRequest, state: str
) -> None:
    if state == "sqlite":
        env = {"CORPUSBOT_STATE_URL": "", "CORPUSBOT_STATE_DB": str(db.parent / "shared-state.db")}
    else:
        env = {"CORPUSBOT_STATE_URL": request.getfixturevalue("postgres_url"), "CORPUSBOT_STATE_DB": ""}
    with ExitStack() as stack:
        one = stack.enter_context(running_bot(slack, db, **env))
        two = stack.enter_context(running_bot(slack, db, **env))
        ask(one, slack, f"watch {WATCHED}")
        ask(two, slack, "watch steel output")
        posters = [WatchPoster(bot.runtime, bot.app.client) for bot in (one, two)]
        for poster in posters:
            poster.poll()
        write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted. {FILLER}")
        write_article(corpus_dir, "steel-2", f"Steel output fell in the south. {FILLER}")
        reindex(db, corpus_dir)
        results: list[int] = []
        threads = [threading.Thread(target=lambda p=p: results.append(p.poll())) for p in posters]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(results) == 2
        channels = sorted(json.dumps(body) for body in posts(slack))
        assert (
            len(channels) == 2
            and sum("rare-1" in c for c in channels) == 1
            and sum("steel-2" in c for c in channels) == 1
        )


def test_the_background_thread_notices_a_reindex_by_itself(
    bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path
) -> None:
    ask(bot, slack, f"watch {WATCHED}")
    poster = WatchPoster(bot.runtime, bot.app.client, every=0.1).start()
    try:
        write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted. {FILLER}")
        reindex(db, corpus_dir)
        [message] = slack.wait_for("chat.postMessage", timeout=10)
        assert "rare-1" in json.dumps(message.body)
    finally:
        poster.stop()
    assert not poster.is_alive()


def write_lines(path: Path, records: list[tuple[str, str]]) -> None:
    """One JSONL file of several articles (a feed export that grows by appending)."""
    lines = [json.dumps({"id": article_id, "title": article_id, "text": text}) for article_id, text in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_grown_jsonl_file_posts_only_its_new_lines(slack: FakeSlack, db: Path, corpus_dir: Path) -> None:
    daily = corpus_dir / "daily.jsonl"
    old = [("daily-1", f"Rare earth export licences were debated in parliament. {FILLER}")]
    write_lines(daily, old)
    reindex(db, corpus_dir)
    with running_bot(slack, db) as bot:
        ask(bot, slack, f"watch {WATCHED}")
        poster = WatchPoster(bot.runtime, bot.app.client)
        assert poster.poll() == 0
        write_lines(daily, [*old, ("daily-2", f"Rare earth export licences were suspended today. {FILLER}")])
        reindex(db, corpus_dir)  # the whole file counts as indexed again
        assert poster.poll() == 1
    text = json.dumps(posts(slack))
    assert "daily-2" in text and "daily-1" not in text and "debated" not in text


def test_a_full_rebuild_posts_nothing_that_was_there_before(slack: FakeSlack, db: Path, corpus_dir: Path) -> None:
    with running_bot(slack, db) as bot:
        ask(bot, slack, f"watch {WATCHED}")  # rare-old matches, and was indexed before the watch
        poster = WatchPoster(bot.runtime, bot.app.client)
        time.sleep(1.05)
        result = CliRunner().invoke(cli, ["index", str(corpus_dir), "--full", "--db", str(db)])
        assert result.exit_code == 0, result.output
        assert poster.poll() == 0
    assert posts(slack) == []


def test_a_reindex_in_the_second_of_the_last_check_is_not_missed(
    bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path
) -> None:
    ask(bot, slack, f"watch {WATCHED}")
    [watch] = bot.runtime.state.watches.all()
    poster = WatchPoster(bot.runtime, bot.app.client)
    assert poster.poll() == 0
    write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted. {FILLER}")
    index_corpus(db, [str(corpus_dir)])
    with sqlite3.connect(db) as conn:  # indexed_at has one-second resolution: as if run in the checked second
        conn.execute("UPDATE files SET indexed_at = ? WHERE path LIKE ?", (watch.checked_through, "%rare-1.jsonl"))
    assert poster.poll() == 1 and "rare-1" in json.dumps(posts(slack))


def test_a_full_channel_lists_every_watch_and_refuses_one_more(bot: Bot, slack: FakeSlack) -> None:
    store = bot.runtime.state.watches
    made = [store.add("C0GENERAL", f"topic {n} " + "word " * 60, "U0ALICE1", None).id for n in range(MAX_WATCHES)]
    listed = json.loads(ask(bot, slack, "watches"))
    assert all(len(block["text"]["text"]) <= 3000 for block in listed["blocks"] if block["type"] == "section")
    shown = json.dumps(listed)
    assert all(f"*#{number}*" in shown for number in made) and "`/ask unwatch N` removes" in shown
    assert "the most it can have" in ask(bot, slack, f"watch {WATCHED}")


def test_unwatch_takes_only_a_plain_number(bot: Bot, slack: FakeSlack) -> None:
    mine = watch_id(ask(bot, slack, f"watch {WATCHED}"))
    for bad in ("²", "-1", "1.5", "1e3", "9" * 40, "three"):
        assert "by its number" in ask(bot, slack, f"unwatch {bad}")
    assert "no watch #0" in ask(bot, slack, "unwatch 0")
    assert [w.id for w in bot.runtime.state.watches.all()] == [mine]


def test_a_locked_state_database_delays_the_post_and_never_doubles_it(
    bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_watches, "WATCH_BUSY_TIMEOUT_MS", 50)
    ask(bot, slack, f"watch {WATCHED}")
    poster = WatchPoster(bot.runtime, bot.app.client, every=0.05)
    assert poster.poll() == 0
    write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted. {FILLER}")
    reindex(db, corpus_dir)
    state_path = bot.runtime.state.path
    assert state_path is not None
    writer = sqlite3.connect(state_path, isolation_level=None)  # another process holding the write lock
    writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            poster.poll()
        poster.start()
        time.sleep(0.5)  # several polls fail meanwhile
        assert poster.is_alive() and posts(slack) == []
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    try:
        [message] = slack.wait_for("chat.postMessage", timeout=10)
        assert "rare-1" in json.dumps(message.body)
        time.sleep(0.3)  # more polls: nothing again
    finally:
        poster.stop()
    assert len(posts(slack)) == 1 and WatchPoster(bot.runtime, bot.app.client).poll() == 0


def poll_until_reachable(poster: WatchPoster, timeout: float = 20.0) -> int:
    """``poster.poll()`` once the state database answers again (the store waits out a backoff after a failure)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return poster.poll()
        except StateUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_postgres_down_during_the_check_posts_once_it_is_back(
    slack: FakeSlack, db: Path, corpus_dir: Path, request: pytest.FixtureRequest
) -> None:
    env = {"CORPUSBOT_STATE_URL": request.getfixturevalue("postgres_url"), "CORPUSBOT_STATE_DB": ""}
    server = request.getfixturevalue("postgres_server")
    with running_bot(slack, db, **env) as bot:
        ask(bot, slack, f"watch {WATCHED}")
        poster = WatchPoster(bot.runtime, bot.app.client)
        assert poster.poll() == 0
        write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted. {FILLER}")
        reindex(db, corpus_dir)
        server.stop()
        try:
            with pytest.raises(StateUnavailable):
                poster.poll()
        finally:
            server.start()
        assert poll_until_reachable(poster) == 1 and poster.poll() == 0
        reindex(db, corpus_dir)
        assert WatchPoster(bot.runtime, bot.app.client).poll() == 0
    assert len(posts(slack)) == 1 and "rare-1" in json.dumps(posts(slack))


hostile = st.one_of(
    st.text(max_size=200),
    st.integers(1, 12_000).map(lambda n: ("<!channel> &amp; <@U0VICTIM> | " * (n // 30 + 1))[:n]),
    st.integers(1, 12_000).map(lambda n: "&" * n),
)


@st.composite
def hostile_matches(draw: st.DrawFn) -> list[WatchMatch]:
    found = []
    for number in range(draw(st.integers(1, 3 * MAX_PASSAGES))):
        article_id = draw(st.sampled_from(["a", "b", draw(hostile) or "c"]))
        url = draw(st.one_of(st.none(), st.just("https://news.example/" + "x" * 1990), st.just("javascript:x")))
        info = ArticleInfo(article_id, draw(hostile), url, draw(hostile), draw(hostile))
        text = draw(hostile) or "text"
        found.append(WatchMatch(Passage(number, article_id, number, 0, len(text), text), info, "t", str(number), 1.0))
    return found


@settings(max_examples=60, deadline=None)
@given(query=hostile, matches=hostile_matches())
def test_any_watch_message_stays_within_slacks_limits_and_is_safe(query: str, matches: list[WatchMatch]) -> None:
    message = watch_message(Watch(7, "C1", query, "U0ALICE1", "t", None), matches)
    payload = {"text": message.text, "blocks": message.blocks}
    assert block_kit_problems(payload) == []
    texts = [message.text] + [
        element["text"]
        for block in message.blocks
        for element in ([block["text"]] if "text" in block else block.get("elements", []))
    ]
    assert sum(len(text) for text in texts) <= 40_000
    for text in texts:
        bare = re.sub(r"<https://news\.example/x+\|", "", text).replace("<@U0ALICE1>", "")
        assert "<!" not in bare and "<@" not in bare and "<http" not in bare, text


def test_a_removed_article_coming_back_is_not_posted_again(
    bot: Bot, slack: FakeSlack, db: Path, corpus_dir: Path
) -> None:
    ask(bot, slack, f"watch {WATCHED}")
    poster = WatchPoster(bot.runtime, bot.app.client)
    write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted. {FILLER}")
    reindex(db, corpus_dir)
    assert poster.poll() == 1
    (corpus_dir / "rare-1.jsonl").unlink()
    reindex(db, corpus_dir)
    assert poster.poll() == 0
    write_article(corpus_dir, "rare-1", f"Rare earth export licences were granted. {FILLER}")
    reindex(db, corpus_dir)
    assert poster.poll() == 0 and len(posts(slack)) == 1


def test_new_with_a_malformed_date_says_so(bot: Bot, slack: FakeSlack) -> None:
    for bad in ("2025-13-45", "2025-06-01T10:00Z", "since 2025-02-30"):
        assert "not a time I understand" in ask(bot, slack, f"new {bad}")
    assert subcommand("new 5G rules?") is None and subcommand("new 24-hour rules") is None


@settings(max_examples=40, deadline=None)
@given(matches=hostile_matches(), total=st.integers(0, 10**6))
def test_any_list_of_new_articles_stays_within_slacks_limits(matches: list[WatchMatch], total: int) -> None:
    articles = [IndexedArticle(m.article, "2025-06-01T00:00:00+00:00", 3) for m in matches[:MAX_NEW_ARTICLES]]
    message = new_articles_message("2025-06-01T00:00:00+00:00", articles, max(total, len(articles)))
    assert block_kit_problems({"text": message.text, "blocks": message.blocks}) == []
    assert "<!" not in json.dumps(message.blocks) and "<@" not in json.dumps(message.blocks)


def test_a_watch_added_meanwhile_elsewhere_is_refused_with_the_reason(
    bot: Bot, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = watch_id(ask(bot, slack, f"watch {WATCHED}"))
    monkeypatch.setattr(bot.runtime.state.watches, "of_channel", lambda channel_id: [])  # read before it was made
    assert f"already watches `{WATCHED}` (#{first})" in ask(bot, slack, f"watch {WATCHED.upper()}")
    assert len(bot.runtime.state.watches.all()) == 1
