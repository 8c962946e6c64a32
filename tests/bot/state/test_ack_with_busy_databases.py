"""The real app over HTTP acknowledges events promptly and answers each once, while a reindex holds the index's
write lock, and while the bot's own state database is busy (another worker writing, a stuck one holding it)."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from corpusbot.bot.state import database
from tests.support.fake_slack import BOT_USER_ID, FakeSlack
from tests.support.slack_harness import Bot, running_bot

IN_FLIGHT = 8
PROMPT_SECONDS = 1.0  # generous; Checks waiting for each other took up to 2 s here.
SLACK_SECONDS = 3.0  # Slack's limit, for the whole round trip (the test server's small backlog may add 1 s)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def mention(thread: str) -> dict[str, str]:
    return {
        "type": "app_mention",
        "user": "U0ALICE1",
        "text": f"<@{BOT_USER_ID}> rare earth",
        "ts": thread,
        "channel": "C0GENERAL",
    }


def send_together(bot: Bot, name: str, retry: int | None = None) -> list[tuple[int, float]]:
    """Each of IN_FLIGHT events sent at once: (status, seconds until acknowledged)."""

    def send(number: int) -> tuple[int, float]:
        began = time.monotonic()
        response = bot.event(mention(f"1700000000.{number:06d}"), event_id=f"Ev{name}{number}", retry=retry)
        return response.status, time.monotonic() - began

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        return list(pool.map(send, range(IN_FLIGHT)))


def ack_seconds(caplog: pytest.LogCaptureFixture) -> list[float]:
    """From each request's access line: receiving it → acknowledging it, in the server."""
    return [record.duration_ms / 1000 for record in caplog.records if hasattr(record, "duration_ms")]


def hold_write_lock(path: Path) -> sqlite3.Connection:
    blocker = sqlite3.connect(path)
    blocker.execute("BEGIN IMMEDIATE")  # and keep it, as a long reindex (or a frozen writer) does
    return blocker


@pytest.mark.parametrize("busy", ["index", "state"])
def test_events_are_acknowledged_promptly_and_answered_once_while_a_database_is_busy(
    slack: FakeSlack, sample_db: Path, busy: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corpusbot.http")
    with running_bot(slack, sample_db, CORPUSBOT_RATE_LIMIT="off") as bot:
        blocker = hold_write_lock(sample_db if busy == "index" else database.state_path(sample_db))
        try:
            first = send_together(bot, busy)
            slack.wait_for("chat.postMessage", IN_FLIGHT, timeout=20)  # answered from the index meanwhile
            retried = send_together(bot, busy, retry=1)
            bot.settle()
        finally:
            blocker.rollback()
            blocker.close()
    acks = ack_seconds(caplog)
    round_trip = max(seconds for _, seconds in first + retried)
    print(f"{busy} database busy: slowest of {len(acks)} acks {max(acks) * 1000:.0f} ms ({round_trip * 1000:.0f} ms)")
    assert [status for status, _ in first + retried] == [200] * (2 * IN_FLIGHT)
    assert len(acks) == 2 * IN_FLIGHT and max(acks) < PROMPT_SECONDS
    assert round_trip < SLACK_SECONDS
    threads = Counter(call.body.get("thread_ts") for call in slack.calls_to("chat.postMessage"))
    assert threads == {f"1700000000.{number:06d}": 1 for number in range(IN_FLIGHT)}  # no retry answered twice


def test_events_seen_while_the_index_was_busy_are_remembered_after_a_restart(slack: FakeSlack, sample_db: Path) -> None:
    with running_bot(slack, sample_db, CORPUSBOT_RATE_LIMIT="off") as bot:
        blocker = hold_write_lock(sample_db)
        try:
            send_together(bot, "Restart")
            slack.wait_for("chat.postMessage", IN_FLIGHT, timeout=20)
            bot.settle()
            with running_bot(slack, sample_db, CORPUSBOT_RATE_LIMIT="off") as restarted:
                send_together(restarted, "Restart", retry=2)  # recorded in a database, not in memory only
                restarted.settle()
        finally:
            blocker.rollback()
            blocker.close()
    assert len(slack.calls_to("chat.postMessage")) == IN_FLIGHT
