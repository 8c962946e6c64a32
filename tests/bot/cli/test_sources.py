"""`corpusbot sources`, `corpusbot index URL`, `--every` and the failing sources in `corpusbot stats`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from corpusbot.bot.cli import cli
from corpusbot.bot.cli import index as index_command
from corpusbot.bot.cli.index import parse_duration, run_every
from corpusbot.index.errors import CorpusbotError
from tests.support.feed_server import WEB, FeedServer


@pytest.fixture
def web() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture(autouse=True)
def no_allow_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORPUSBOT_FETCH_ALLOW", raising=False)


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args))


def test_index_a_feed_with_the_allow_option(tmp_path: Path, runner: CliRunner, web: FeedServer) -> None:
    db = str(tmp_path / "web.db")
    result = run(runner, "index", web.url("feeds/atom.xml"), "--allow", "127.0.0.1", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["failed_sources"] == [] and summary["articles"] == 2
    assert summary["corpus_paths"] == [web.url("feeds/atom.xml")]
    answer = json.loads(run(runner, "ask", "war-risk premiums grain corridor", "--db", db, "--json").stdout)
    article = answer["results"][0]["article"]
    assert article["url"] == web.url("news/2025/06/grain-corridor.html")
    assert article["published"] == "2025-06-12T02:45:00Z"


def test_the_allow_list_from_the_environment(
    tmp_path: Path, runner: CliRunner, web: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORPUSBOT_FETCH_ALLOW", "wiki.corp.test, 127.0.0.0/8")
    result = run(runner, "index", web.url("feeds/rss.xml"), "--db", str(tmp_path / "web.db"))
    assert result.exit_code == 0, result.output
    assert "2 added" in result.output and "failed" not in result.output


def test_a_bad_allow_list_is_a_clear_error(tmp_path: Path, runner: CliRunner, monkeypatch) -> None:
    monkeypatch.setenv("CORPUSBOT_FETCH_ALLOW", "http://wiki.test/")
    result = run(runner, "index", "https://news.test/rss.xml", "--db", str(tmp_path / "web.db"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "CORPUSBOT_FETCH_ALLOW" in result.output and "neither a host name" in result.output


def test_without_the_allow_list_loopback_is_refused_and_reported(
    tmp_path: Path, runner: CliRunner, web: FeedServer
) -> None:
    db = str(tmp_path / "web.db")
    result = run(runner, "index", web.url("feeds/rss.xml"), "--db", db)
    assert result.exit_code == 0, result.output  # a failing source never fails the run
    assert f"failed {web.url('feeds/rss.xml')}: refused:" in result.output
    assert "not a public address" in result.output and "CORPUSBOT_FETCH_ALLOW" in result.output
    assert web.requests == []
    stats = run(runner, "stats", "--db", db)
    assert "failing:      1 web source(s)" in stats.output and web.url("feeds/rss.xml") in stats.output
    info = json.loads(run(runner, "stats", "--db", db, "--json").stdout)
    (failing,) = info["failing_sources"]
    assert failing["url"] == web.url("feeds/rss.xml") and failing["kind"] == "page"  # never read: kind unknown
    assert "not a public address" in failing["error"] and failing["failing_since"]
    assert info["articles"] == 0 and "corpus_paths" in info  # the old keys are all still there


def test_sources_add_list_remove(tmp_path: Path, runner: CliRunner, web: FeedServer, corpus_dir: Path) -> None:
    db = str(tmp_path / "web.db")
    (corpus_dir / "a.txt").write_text("Cranes on the quay.\n", encoding="utf-8")
    assert run(runner, "sources", "list", "--db", db).output.startswith("No sources remembered yet")
    added = run(runner, "sources", "add", web.url("feeds/rss.xml"), str(corpus_dir), "--db", db)
    assert added.exit_code == 0, added.output
    assert "2 added; 2 remembered" in added.output
    listed = json.loads(run(runner, "sources", "list", "--db", db, "--json").stdout)["sources"]
    assert [(s["source"], s["kind"]) for s in listed] == [
        (web.url("feeds/rss.xml"), "web (not fetched yet)"),
        (str(corpus_dir), "folder"),
    ]
    result = run(runner, "index", "--allow", "127.0.0.1", "--db", db)
    assert "3 added" in result.output, result.output
    listed = json.loads(run(runner, "sources", "list", "--db", db, "--json").stdout)["sources"]
    assert listed[0]["kind"] == "feed" and listed[0]["last_ok_at"] and listed[0]["error"] is None
    assert "[feed]  ok at" in run(runner, "sources", "list", "--db", db).output
    removed = run(runner, "sources", "remove", web.url("feeds/rss.xml"), "--db", db, "--json")
    assert json.loads(removed.stdout) == {"sources": [str(corpus_dir)]}
    result = run(runner, "index", "--allow", "127.0.0.1", "--db", db)
    assert "2 removed" in result.output and "-> 1 articles" in result.output


def test_adding_to_the_bundled_sample_replaces_it(sample_db: Path, runner: CliRunner) -> None:
    result = run(runner, "sources", "add", "https://news.test/rss.xml", "--db", str(sample_db), "--json")
    assert json.loads(result.stdout) == {"sources": ["https://news.test/rss.xml"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "ftp://news.test/feed"], "only http:// and https:// URLs"),
        (["add", "no/such/folder"], "neither an http(s) URL nor an existing folder or file"),
        (["add"], "Give the SOURCES to add"),
        (["remove", "https://never.test/added"], "Not a remembered source: https://never.test/added"),
        (["list", "https://news.test/"], "takes no SOURCES"),
        (["rename"], "'rename' is not one of"),
    ],
)
def test_sources_mistakes_are_one_line_errors(tmp_path: Path, runner: CliRunner, args: list[str], message: str):
    result = run(runner, "sources", *args, "--db", str(tmp_path / "web.db"))
    assert result.exit_code in (1, 2) and message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://[::1", "not a valid URL (Invalid IPv6 URL)"),
        ("http://", "only http:// and https:// URLs without spaces"),
        ("http://exa mple.test/feed", "only http:// and https:// URLs without spaces"),
        ("http://news.test:99999/feed", "not a valid URL (Port out of range"),
        ("http://news.test:http/feed", "not a valid URL"),
        ("http:///feed.xml", "the URL has no host name"),
        ("http://%zz/", "'%zz' is not a valid host name"),
        ("http://a..b/x", "'a..b' is not a valid host name"),
        ("https://-news.test/", "is not a valid host name"),
        ("https://" + "x" * 64 + ".test/", "is not a valid host name"),
    ],
)
@pytest.mark.parametrize("command", ["index", "sources add"])
def test_garbage_urls_are_refused_before_anything_is_remembered(
    tmp_path: Path, runner: CliRunner, command: str, url: str, message: str
) -> None:
    db = tmp_path / "web.db"
    result = run(runner, *command.split(), url, "--db", str(db))
    assert result.exit_code == 2 and message in result.output, result.output
    assert isinstance(result.exception, SystemExit)  # a usage error, not a crash
    assert "Give a URL like https://" in result.output
    assert not db.exists()


@pytest.mark.parametrize(
    "url", ["https://nouvelles.example/flux", "http://xn--bcher-kva.example/", "http://[::1]:8080/"]
)
def test_valid_urls_are_remembered(tmp_path: Path, runner: CliRunner, url: str) -> None:
    result = run(runner, "sources", "add", url, "--db", str(tmp_path / "web.db"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sources"] == [url]


# -- --every ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("1h", 3600), ("90s", 90), ("1h30m", 5400), ("2.5m", 150)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15", "m", "15x", "0s", "-5m", "1h 30", "soon", ""])
def test_bad_durations_are_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(click.BadParameter, match="such as 15m, 1h, 90s"):
        parse_duration(text)


def test_every_with_a_bad_duration_indexes_nothing(tmp_path: Path, runner: CliRunner) -> None:
    result = run(runner, "index", "--every", "often", "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 2 and "Invalid value for '--every'" in result.output
    assert not (tmp_path / "x.db").exists()


def test_run_every_keeps_the_schedule_reports_errors_and_stops_on_ctrl_c() -> None:
    now = [0.0]
    runs: list[tuple[bool, float]] = []
    sleeps: list[float] = []

    def run_once(first: bool) -> bool:
        runs.append((first, now[0]))
        now[0] += 2.0  # each run takes 2 s
        if len(runs) == 2:
            raise CorpusbotError("Another `corpusbot index` updated the database meanwhile")
        return True

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt
        now[0] += seconds

    run_every(10.0, run_once, sleep=sleep, clock=lambda: now[0])
    assert runs == [(True, 0.0), (False, 10.0), (False, 20.0)]  # an error in the second run did not stop it
    assert sleeps == [8.0, 8.0, 8.0]  # start to start


def test_run_every_stops_on_an_error_of_the_first_run() -> None:
    def run_once(first: bool) -> bool:
        raise CorpusbotError("No such folder or file: /nowhere")

    with pytest.raises(CorpusbotError):
        run_every(10.0, run_once, sleep=lambda s: None)


def test_index_every_runs_until_ctrl_c(
    tmp_path: Path, runner: CliRunner, web: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(index_command, "_sleep", sleep)
    db = str(tmp_path / "web.db")
    result = run(runner, "index", web.url("feeds/rss.xml"), "--every", "1s", "--allow", "127.0.0.1", "--db", db)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    summaries = [line for line in lines if " added, " in line]
    assert len(summaries) == 2 and " UTC: 2 added" in summaries[0] and " UTC: 0 added" in summaries[1]
    assert "2 unchanged" in summaries[1] and "Stopped." in result.stderr
    assert len(web.hits("feeds/rss.xml")) == 2 and "if-none-match" in web.hits("feeds/rss.xml")[1].headers


# -- the App Home -----------------------------------------------------------------------------------


def test_the_app_home_lists_failing_sources(tmp_path: Path, web: FeedServer) -> None:
    """Through the real app over HTTP: the home tab names each failing source, why, and since when."""
    from corpusbot.index import index_corpus
    from corpusbot.index.sources.fetch import FetchOptions
    from corpusbot.index.sources.guard import AllowList
    from tests.support.fake_slack import FakeSlack
    from tests.support.slack_harness import running_bot

    db = tmp_path / "web.db"
    allowed = FetchOptions(allow=AllowList.parse(["127.0.0.1"]), read_timeout=0.5)
    index_corpus(db, [web.url("feeds/rss.xml"), web.url("missing.xml")], fetch=allowed)
    with FakeSlack() as slack, running_bot(slack, db) as bot:
        bot.event(
            {"type": "app_home_opened", "user": "U0ALICE1", "channel": "D0ALICE1", "tab": "home", "event_ts": "1"}
        )
        [call] = slack.wait_for("views.publish")
    sections = [b["text"]["text"] for b in call.body["view"]["blocks"] if b["type"] == "section"]
    (failing,) = [text for text in sections if text.startswith("*Sources failing*")]
    assert web.url("missing.xml") in failing and "HTTP 404" in failing and "(since 20" in failing
    assert web.url("feeds/rss.xml") not in failing
    assert call.problems == []


@pytest.mark.parametrize("command", ["index", "sources add"])
def test_urls_with_credentials_are_refused(tmp_path: Path, runner: CliRunner, command: str) -> None:
    db = tmp_path / "web.db"
    result = run(runner, *command.split(), "https://editor:s3cret@news.test/rss.xml", "--db", str(db))
    assert result.exit_code == 2 and "user name or password are not supported" in result.output
    assert not db.exists() or b"s3cret" not in db.read_bytes()


def test_admin_reindex_from_slack_fetches_with_the_configured_allow_list(
    tmp_path: Path, web: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corpusbot.index import index_corpus
    from corpusbot.index.sources.fetch import FetchOptions
    from corpusbot.index.sources.guard import AllowList
    from tests.support.fake_slack import FakeSlack
    from tests.support.slack_harness import running_bot

    db = tmp_path / "web.db"
    index_corpus(
        db, [web.url("feeds/rss.xml"), web.url("missing.xml")], fetch=FetchOptions(allow=AllowList.parse(["127.0.0.1"]))
    )
    web.set("feeds/rss.xml", (WEB / "feeds/atom.xml").read_bytes(), "application/atom+xml")  # one new entry
    monkeypatch.setenv("CORPUSBOT_FETCH_ALLOW", "127.0.0.1")
    with FakeSlack() as slack, running_bot(slack, db, CORPUSBOT_ADMINS="U0ADMIN1") as bot:
        bot.command("/ask", "admin reindex", user="U0ADMIN1")
        _, done = slack.wait_for("response_url", 2)
    assert done.body["text"].startswith("Reindexed: 1 added, 0 updated, 0 removed")
    assert done.body["text"].endswith("1 web source(s) failed: App Home.")


def test_ctrl_c_during_a_fetch_stops_index_every_at_once(tmp_path: Path, web: FeedServer) -> None:
    """A real SIGINT while a request hangs (read timeout 20 s): the command stops within seconds, cleanly."""
    import os
    import signal
    import subprocess
    import sys
    import time

    db = tmp_path / "web.db"
    args = ["index", web.url("hang"), "--every", "1m", "--allow", "127.0.0.1", "--db", str(db)]
    process = subprocess.Popen(
        [sys.executable, "-c", "from corpusbot.bot.cli import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CORPUSBOT_FETCH_ALLOW": ""},
    )
    try:
        deadline = time.monotonic() + 30
        while not web.hits("hang") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert web.hits("hang"), "the command never fetched"
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert time.monotonic() - interrupted < 5
    assert process.returncode == 0 and "Stopped." in err and "Traceback" not in err
    assert out == ""  # the interrupted run reported nothing and wrote nothing


def test_index_killed_mid_fetch_loses_nothing_and_the_next_run_is_right(tmp_path: Path, web: FeedServer) -> None:
    """SIGKILL while `corpusbot index` waits on an entry's page: the index is as before; the next run completes it."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    db = tmp_path / "web.db"
    feed = web.url("feeds/rss.xml")
    command = [sys.executable, "-c", "from corpusbot.bot.cli import main; main()", "index"]
    env = {**os.environ, "CORPUSBOT_FETCH_ALLOW": "127.0.0.1"}
    first = subprocess.run([*command, feed, "--db", str(db)], capture_output=True, text=True, env=env, timeout=60)
    assert first.returncode == 0, first.stderr

    def indexed() -> tuple[list[tuple[str, str]], list[tuple[str, str | None]], str]:
        conn = sqlite3.connect(db)
        try:
            return (
                conn.execute("SELECT url, text FROM articles ORDER BY url").fetchall(),
                conn.execute("SELECT url, etag FROM sources ORDER BY url").fetchall(),
                conn.execute("PRAGMA integrity_check").fetchone()[0],
            )
        finally:
            conn.close()

    before = indexed()
    assert len(before[0]) == 2 and before[2] == "ok"
    grown = (
        (WEB / "feeds/rss.xml")
        .read_text(encoding="utf-8")
        .replace(
            "</channel>",
            "<item><title>Grain</title><link>{base}/news/2025/06/grain-corridor.html</link></item>"
            "<item><title>Slow</title><link>{base}/hang</link></item></channel>",
        )
    )
    web.set("feeds/rss.xml", grown, "application/rss+xml")
    process = subprocess.Popen([*command, "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        while not web.hits("hang") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert web.hits("hang"), "the command never fetched the entry's page"
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL
    assert indexed() == before  # nothing written, nothing lost, the database whole

    web.set("feeds/rss.xml", grown.replace("<item><title>Slow</title><link>{base}/hang</link></item>", ""))
    again = subprocess.run([*command, "--db", str(db), "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["added"] == [web.url("news/2025/06/grain-corridor.html")] and summary["failed_sources"] == []
    after = indexed()
    assert set(before[0]) < set(after[0]) and len(after[0]) == 3 and after[2] == "ok"
