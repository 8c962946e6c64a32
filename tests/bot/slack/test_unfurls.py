"""Link unfurls end to end: signed ``link_shared`` events to the real app, ``chat.unfurl`` checked at the fake."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from corpusbot.bot import config
from corpusbot.bot.serving.server import socket_mode_handler
from corpusbot.bot.slack.app import build_app
from corpusbot.bot.slack.links import normalise, unfurl_domains
from corpusbot.bot.slack.runtime import make_runtime
from corpusbot.index import SearchService, index_corpus
from tests.bot.slack.surface_helpers import (
    EVIL_URL,
    SAMPLE_1,
    SAMPLE_1_URL,
    build_corpus,
    markup,
    no_problems,
    rendered,
)
from tests.support.fake_slack import APP_TOKEN, FakeSlack
from tests.support.fake_socket_mode import SocketModeSlack
from tests.support.slack_harness import Bot, TrackedExecutor, environment, running_bot


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


def link_shared(*urls: str, composer: bool = False) -> dict[str, Any]:
    """Shaped as Slack sends it: a posted message's links carry an ``unfurl_id`` and ``source`` too."""
    event: dict[str, Any] = {
        "type": "link_shared",
        "user": "U0ALICE1",
        "is_bot_user_member": True,
        "links": [{"domain": "example", "url": url} for url in urls],
        "event_ts": "1700002000.000100",
    }
    if composer:
        event.update(channel="COMPOSER", message_ts="U0ALICE1-909b5454-75f8-4ac4-b325", source="composer")
        event["unfurl_id"] = "U0ALICE1-909b5454-75f8-4ac4-b325-1b40e230bbd8"
    else:
        event.update(channel="C0GENERAL", message_ts="1700002000.000100", source="conversations_history")
        event["unfurl_id"] = (
            "C0GENERAL.1700002000.000100.1b90fa1278528ce6e2f6c5c2bfa1abc9a41d57d02b29d173f40399c9ffdecf4b"
        )
    return event


@pytest.mark.parametrize(
    "posted",
    [
        SAMPLE_1_URL,
        "http://www.toutiao.com/article/7513089098832298534",
        "https://TOUTIAO.com:443/article/7513089098832298534/?utm_source=slack&utm_medium=x&fbclid=abc",
        "https://www.toutiao.com/article/7513089098832298534/#comments",
    ],
)
def test_a_link_to_an_article_is_unfurled_with_its_card(bot: Bot, slack: FakeSlack, posted: str) -> None:
    assert bot.event(link_shared(posted)).status == 200
    bot.settle()
    [unfurl] = slack.calls_to("chat.unfurl")
    assert unfurl.body["channel"] == "C0GENERAL" and unfurl.body["ts"] == "1700002000.000100"
    assert list(unfurl.body["unfurls"]) == [posted]  # keyed by the URL exactly as posted
    card = rendered(unfurl.body["unfurls"][posted])
    info, passages = bot.runtime.service.article(SAMPLE_1)  # type: ignore[misc]
    assert info.title[:40] in card
    assert f"`{SAMPLE_1}`" in card
    assert f"{len(passages)} passages" in card
    assert "*¶1*" in card
    assert passages[0].text.split()[0] in card
    no_problems(slack)


def test_a_link_to_something_else_gets_nothing(bot: Bot, slack: FakeSlack) -> None:
    for url in (
        "https://www.toutiao.com/article/999/",
        "https://news.example.com/smelter/story-1/comments",
        "https://news.example.com/smelter/story-1?page=2",
        "ftp://news.example.com/smelter/story-1",
        "javascript:alert(1)",
    ):
        bot.event(link_shared(url))
    bot.settle()
    assert slack.calls_to("chat.unfurl") == []


def test_only_the_articles_among_several_links_are_unfurled(bot: Bot, slack: FakeSlack) -> None:
    bot.event(link_shared("https://elsewhere.example/x", EVIL_URL + "/", "https://www.toutiao.com/nope"))
    bot.settle()
    [unfurl] = slack.calls_to("chat.unfurl")
    assert list(unfurl.body["unfurls"]) == [EVIL_URL + "/"]


def test_links_in_the_composer_are_unfurled_by_their_unfurl_id(bot: Bot, slack: FakeSlack) -> None:
    bot.event(link_shared(SAMPLE_1_URL, composer=True))
    bot.settle()
    [unfurl] = slack.calls_to("chat.unfurl")
    assert unfurl.body["unfurl_id"].startswith("U0ALICE1-909b5454") and unfurl.body["source"] == "composer"
    assert "channel" not in unfurl.body and "ts" not in unfurl.body
    no_problems(slack)


def test_a_posted_link_is_unfurled_by_channel_and_ts_even_with_an_unfurl_id(bot: Bot, slack: FakeSlack) -> None:
    bot.event(link_shared(SAMPLE_1_URL))
    bot.settle()
    [unfurl] = slack.calls_to("chat.unfurl")
    assert (unfurl.body["channel"], unfurl.body["ts"]) == ("C0GENERAL", "1700002000.000100")
    assert "unfurl_id" not in unfurl.body and "source" not in unfurl.body  # one pair only, as chat.unfurl wants


def test_a_hostile_article_card_is_escaped(bot: Bot, slack: FakeSlack) -> None:
    bot.event(link_shared(EVIL_URL))
    bot.settle()
    [unfurl] = slack.calls_to("chat.unfurl")
    card = rendered(unfurl.body["unfurls"][EVIL_URL])
    assert markup(card) == {f"<{EVIL_URL}|Ping &lt;!channel&gt; &amp; &lt;@U0VICTIM&gt;>"}
    assert "&lt;!here&gt; Daily" in card and "2025-06-07" in card
    assert "1 passage" in card
    no_problems(slack)


def test_a_huge_article_still_gives_a_card_within_block_kit_limits(
    slack: FakeSlack, tmp_path: Path, corpus_dir: Path
) -> None:
    text = "\n\n".join(("<!channel> & " + "word " * 150) for _ in range(60))
    record = f'{{"id": "big", "title": "{"T" * 5000}", "url": "https://big.example/a", "text": "{text}"}}'
    (corpus_dir / "big.jsonl").write_text(record.replace("\n", "\\n") + "\n", encoding="utf-8")
    db = tmp_path / "big.db"
    index_corpus(db, [str(corpus_dir)])
    with running_bot(slack, db) as bot:
        bot.event(link_shared("https://big.example/a"))
        bot.settle()
    [unfurl] = slack.calls_to("chat.unfurl")
    assert "<!channel>" not in rendered(unfurl.body)
    no_problems(slack)


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ({"type": "link_shared", "channel": "C0GENERAL", "message_ts": "1.2", "links": "https://x"}, 200),
        ({"type": "link_shared", "channel": "C0GENERAL", "message_ts": "1.2", "links": [{"url": 5}, "x", None]}, 200),
        ({"type": "link_shared", "channel": "C0GENERAL", "message_ts": 1.2, "links": [{"url": SAMPLE_1_URL}]}, 200),
        ({"type": "link_shared", "channel": "C0GENERAL", "message_ts": "1.2", "links": [{"url": "x" * 9000}]}, 200),
        ({"type": "link_shared", "channel": 5, "message_ts": "1.2", "links": [{"url": SAMPLE_1_URL}]}, 400),  # bolt
    ],
)
def test_link_shared_events_of_the_wrong_shape_are_logged_in_one_line_and_not_unfurled(
    bot: Bot, slack: FakeSlack, event: dict, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert bot.event(event).status == status
    bot.settle()
    assert slack.calls_to("chat.unfurl") == []
    assert not [record for record in caplog.records if record.exc_info]


def test_links_in_a_channel_outside_the_allow_list_are_not_unfurled(slack: FakeSlack, db: Path) -> None:
    with running_bot(slack, db, CORPUSBOT_CHANNELS="C0ALLOWED") as bot:
        bot.event(link_shared(SAMPLE_1_URL))  # in C0GENERAL
        allowed = link_shared(SAMPLE_1_URL)
        allowed["channel"] = "C0ALLOWED"
        bot.event(allowed)
        bot.settle()
    [unfurl] = slack.calls_to("chat.unfurl")
    assert unfurl.body["channel"] == "C0ALLOWED"


def test_unfurls_can_be_turned_off(slack: FakeSlack, db: Path) -> None:
    with running_bot(slack, db, CORPUSBOT_SURFACES_OFF="unfurls, metadata") as bot:
        bot.event(link_shared(SAMPLE_1_URL))
        bot.settle()
    assert slack.calls_to("chat.unfurl") == []


def test_a_reindex_that_adds_an_article_makes_its_link_unfurl(bot: Bot, slack: FakeSlack, corpus_dir: Path) -> None:
    bot.event(link_shared("https://later.example/new"))
    bot.settle()
    assert slack.calls_to("chat.unfurl") == []
    (corpus_dir / "later.jsonl").write_text(
        '{"id": "later-1", "title": "Later", "url": "https://later.example/new", "text": "A later story."}\n'
    )
    from corpusbot.index.corpus.discover import BUNDLED

    index_corpus(bot.runtime.service.db_path, [BUNDLED, str(corpus_dir)])
    bot.event(link_shared("https://later.example/new"))
    bot.settle()
    [unfurl] = slack.calls_to("chat.unfurl")
    assert "Later" in rendered(unfurl.body)


def test_over_a_real_socket_mode_connection_a_link_is_unfurled_once_also_when_redelivered(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with SocketModeSlack(ping_interval=0.1) as slack:
        env = environment(slack, db, SLACK_APP_TOKEN=APP_TOKEN)
        del env["SLACK_SIGNING_SECRET"]
        settings = config.settings_from_env(env)
        service = SearchService(db)
        runtime = make_runtime(settings, service)
        executor = TrackedExecutor()
        handler = socket_mode_handler(build_app(settings, service, runtime=runtime, executor=executor), settings)
        handler.connect()
        try:
            socket_mode = slack.socket_mode
            [connection] = socket_mode.wait_for_connections(1)
            shared = socket_mode.deliver_event(link_shared(SAMPLE_1_URL, "https://elsewhere.example/x"))
            socket_mode.wait_for_acks(1)
            socket_mode.redeliver(shared.envelope_id, to=connection)
            socket_mode.wait_for_acks(2)
            slack.wait_for("chat.unfurl", 1)
            executor.wait_idle()
        finally:
            handler.close()
            executor.shutdown(wait=True)
            runtime.state.close()
            service.close()
        [unfurl] = slack.calls_to("chat.unfurl")
        assert list(unfurl.body["unfurls"]) == [SAMPLE_1_URL]
        assert (unfurl.body["channel"], unfurl.body["ts"]) == ("C0GENERAL", "1700002000.000100")
        no_problems(slack)


# -- normalisation -------------------------------------------------------------------------------------------------


def test_normalisation_keeps_what_identifies_the_page() -> None:
    assert normalise("https://Example.com/a/?b=2&a=1&utm_campaign=x") == normalise("http://example.com/a?a=1&b=2")
    assert normalise("https://example.com/a?id=1") != normalise("https://example.com/a?id=2")
    assert normalise("https://example.com/a") != normalise("https://example.com/b")
    assert normalise("https://example.com:8443/a") != normalise("https://example.com/a")
    assert normalise("https://example.com/a?x=1&amp;y=2") == normalise("https://example.com/a?y=2&x=1")
    for bad in ("", "mailto:a@example.com", "https://", "https://exa mple.com/", "http://[::1/x", "x" * 5000):
        assert normalise(bad) is None


def test_a_percent_encoded_path_matches_the_same_path_typed_plainly() -> None:
    """Slack clients and browsers percent-encode non-ASCII paths; an article's URL may be stored either way."""
    plain = normalise("https://news.example/politique/café-été/")
    assert plain is not None
    assert normalise("https://news.example/politique/caf%C3%A9-%C3%A9t%C3%A9") == plain
    assert normalise("https://news.example/politique/caf%c3%a9-%c3%a9t%c3%a9") == plain
    assert normalise("https://news.example/politique/cafe-ete") != plain


def test_unfurl_domains_are_the_five_most_common_hosts_valid_for_a_manifest() -> None:
    urls = [f"https://www.d{n}.example/a{i}" for n in range(7) for i in range(n + 1)]
    urls += ["https://UPPER.Example/x", "https://bücher.example/y", "not a url", "https://-bad.example/"]
    kept, left = unfurl_domains(urls)
    assert kept == ["d6.example", "d5.example", "d4.example", "d3.example", "d2.example"]
    assert "xn--bcher-kva.example" in left and "upper.example" in left
    assert all(not host.startswith("-") for host in kept + left)


def test_a_subdomain_of_a_listed_domain_takes_no_slot_of_its_own() -> None:
    """Slack unfurls a registered domain's subdomains too: of the five slots, none goes to news.site.example."""
    urls = ["https://news.site.example/a", "https://live.news.site.example/b", "https://www.site.example/c"]
    urls += [f"https://d{n}.example/{n}" for n in range(5)]
    kept, left = unfurl_domains(urls)
    assert kept[0] == "site.example"  # three articles: its own and its subdomains'
    assert "news.site.example" not in kept + left and "live.news.site.example" not in kept + left
    assert len(kept) == 5 and left == ["d4.example"]
