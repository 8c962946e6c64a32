"""The assistant panel's thread memory: in the SQLite state file, and with CORPUSBOT_STATE_URL in PostgreSQL,
where two replicas see the same thread context and last question."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from corpusbot.bot.state import BotState
from corpusbot.bot.state.assistant_contexts import KEEP_SECONDS, ThreadContexts
from corpusbot.bot.state.database import ASSISTANT_CONTEXTS_TABLE, MIGRATIONS_TABLE, THREAD_QUESTIONS_TABLE
from tests.bot.slack.surface_helpers import DELEGATION, context_changed, panel_message, rendered, thread_started
from tests.support.fake_slack import FakeSlack
from tests.support.slack_harness import Bot, running_bot


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def test_contexts_are_kept_per_thread_in_the_state_file(tmp_path: Path) -> None:
    now = [1_000_000.0]
    state = BotState(tmp_path / "index.db")
    contexts = ThreadContexts(state, clock=lambda: now[0])
    try:
        assert contexts.find("D1", "1.1") is None
        contexts.save("D1", "1.1", {"channel_id": "C1", "team_id": "T1", "extra": {"nested": True}, "n": 5})
        contexts.save("D1", "2.2", {"channel_id": "C2"})
        assert contexts.find("D1", "1.1") == {"channel_id": "C1", "team_id": "T1"}  # string ids only
        assert contexts.find("D1", "2.2") == {"channel_id": "C2"}
        for hostile in ("C1", None, ["C1"], {"channel_id": 5}, {"channel_id": "C" * 5000}):
            contexts.save("D1", "3.3", hostile)
            assert contexts.find("D1", "3.3") is None
        now[0] += KEEP_SECONDS + 7200  # an hour past the next purge
        contexts.save("D9", "9.9", {"channel_id": "C9"})
        assert contexts.find("D1", "1.1") is None and contexts.find("D9", "9.9") == {"channel_id": "C9"}
    finally:
        contexts.close()
        state.close()
    assert state.path is not None
    with sqlite3.connect(state.path) as conn:
        migrations = {row[0] for row in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}
    assert "m004_assistant_contexts" in migrations


def test_closing_the_state_closes_the_contexts_connection_too(tmp_path: Path) -> None:
    state = BotState(tmp_path / "index.db")
    contexts = ThreadContexts(state)
    contexts.save("D1", "1.1", {"channel_id": "C1"})
    state.close()  # the bot's shutdown closes the state, not each listener's store
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        contexts.find("D1", "1.1")
    contexts.close()  # and closing it again is harmless


def test_a_state_file_replaced_under_the_bot_gets_the_table_again(tmp_path: Path) -> None:
    state = BotState(tmp_path / "index.db")
    assert state.path is not None
    with sqlite3.connect(state.path) as conn:
        conn.execute(f"DROP TABLE {ASSISTANT_CONTEXTS_TABLE}")
    contexts = ThreadContexts(state)
    try:
        contexts.save("D1", "1.1", {"channel_id": "C1"})
        assert contexts.find("D1", "1.1") == {"channel_id": "C1"}
    finally:
        contexts.close()
        state.close()


@pytest.fixture
def two_bots(slack: FakeSlack, sample_db: Path, postgres_url: str) -> Iterator[tuple[Bot, Bot]]:
    with ExitStack() as stack:
        env = {"CORPUSBOT_STATE_URL": postgres_url, "CORPUSBOT_STATE_DB": "", "CORPUSBOT_RATE_LIMIT": "off"}
        one = stack.enter_context(running_bot(slack, sample_db, **env))
        two = stack.enter_context(running_bot(slack, sample_db, **env))
        yield one, two


def test_with_shared_state_every_replica_sees_the_threads_context_and_question(
    two_bots: tuple[Bot, Bot], slack: FakeSlack, postgres_url: str
) -> None:
    one, two = two_bots
    one.event(thread_started("C0VIEWED1"))
    one.settle()
    two.event(context_changed("C0OTHER02"))
    two.settle()
    one.event(panel_message(DELEGATION, ts="1700000901.000100"))
    one.settle()
    asked: list[str | None] = []
    original = two.runtime.service.ask

    def recording(question: str, *args, context: str | None = None, **kwargs):
        asked.append(context)
        return original(question, *args, context=context, **kwargs)

    two.runtime.service.ask = recording  # type: ignore[method-assign]
    two.event(panel_message("and who leads it?", ts="1700000902.000100"))
    two.settle()
    greeting, first, follow_up = (call.body for call in slack.calls_to("chat.postMessage"))
    assert "viewing <#C0VIEWED1>" in rendered(greeting)
    assert "Asked while viewing <#C0OTHER02>" in rendered(first)  # changed on the other replica
    assert "Asked while viewing <#C0OTHER02>" in rendered(follow_up)
    assert asked == [DELEGATION]  # the earlier question, asked on the other replica
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        contexts = conn.execute(f"SELECT context ->> 'channel_id' FROM {ASSISTANT_CONTEXTS_TABLE}").fetchall()
        questions = conn.execute(f"SELECT question FROM {THREAD_QUESTIONS_TABLE}").fetchall()
        applied = {row[0] for row in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}
    assert contexts == [("C0OTHER02",)]
    assert questions == [(f"{DELEGATION} and who leads it?",)]
    assert "m005_assistant_contexts" in applied


def test_a_panel_question_retried_to_another_replica_is_answered_once(
    two_bots: tuple[Bot, Bot], slack: FakeSlack
) -> None:
    one, two = two_bots
    question = panel_message(DELEGATION, ts="1700000901.000100")
    assert one.event(question, event_id="Ev0PANELR1").status == 200
    assert two.event(question, event_id="Ev0PANELR1", retry=1).status == 200
    assert two.event(question, event_id="Ev0PANELR1", retry=2).status == 200
    one.settle()
    two.settle()
    [answer] = slack.calls_to("chat.postMessage")
    assert "Treasury Secretary Becente" in rendered(answer.body)
    assert len(slack.calls_to("assistant.threads.setTitle")) == 1
