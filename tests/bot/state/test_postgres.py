"""The state in PostgreSQL (CORPUSBOT_STATE_URL), on a real server: shared by replicas, exact, and riding out an outage.

Each ``BotState`` below stands for one replica (or one worker): two of them on
one database must answer an event once, store feedback in one table, and
count one rate limit. With the server stopped in the middle of a test, the
event check stays prompt, /readyz says why, writes fail with a clear error,
and everything works again once the server is back, with the same objects.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from corpusbot.bot.cli import cli
from corpusbot.bot.config import RateLimit, Settings, StateUrl
from corpusbot.bot.serving.server import readiness
from corpusbot.bot.slack import blocks
from corpusbot.bot.slack.runtime import make_runtime
from corpusbot.bot.state import BotState, Feedback, PgSeenEvents, RateLimiter, StateUnavailable, Verdict, postgres
from corpusbot.bot.state.database import EVENTS_TABLE, FEEDBACK_TABLE, MIGRATIONS_TABLE
from corpusbot.index import SearchService
from corpusbot.index.errors import CorpusbotError
from tests.bot.state.conftest import Clock
from tests.support.postgres import PASSWORD, PostgresServer

PROMPT_SECONDS = 2.5  # an event check while the database is down or stuck: its deadline is 1 s
RECOVERY_SECONDS = 30.0  # the backoff between tries is at most 15 s


def query(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params or None).fetchall()


@pytest.fixture
def replicas(postgres_url: str, tmp_path: Path):
    """Two BotStates on one database, as two replicas (or two workers) of the bot."""
    states = [BotState(tmp_path / "corpusbot.db", url=postgres_url) for _ in range(2)]
    yield states
    for state in states:
        state.close()


def note(user: str = "U0ALICE1", question: str = "q") -> Feedback:
    return Feedback(user, "C0GENERAL", "helpful", question, ("000-a ¶1", "001-b ¶2"), 3, generation=12)


# -- the schema -----------------------------------------------------------------------------------------------


def test_the_schema_is_made_once_and_each_migration_recorded(postgres_url: str, tmp_path: Path) -> None:
    first = BotState(tmp_path / "corpusbot.db", url=postgres_url)
    second = BotState(tmp_path / "corpusbot.db", url=postgres_url)
    first.close()
    second.close()
    names = [row[0] for row in query(postgres_url, f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY name")]
    assert names == [name for name, _ in postgres.MIGRATIONS]
    tables = {row[0] for row in query(postgres_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {EVENTS_TABLE, FEEDBACK_TABLE, postgres.RATE_LIMITS_TABLE, MIGRATIONS_TABLE} <= tables
    assert not list(tmp_path.iterdir()), "no SQLite state file beside the index"


def test_replicas_starting_together_make_the_schema_once(postgres_url: str, tmp_path: Path) -> None:
    barrier = threading.Barrier(6)
    states: list[BotState] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            states.append(BotState(tmp_path / "corpusbot.db", url=postgres_url))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for state in states:
        state.close()
    assert not errors
    assert query(postgres_url, f"SELECT count(*) FROM {MIGRATIONS_TABLE}") == [(len(postgres.MIGRATIONS),)]


# -- events -----------------------------------------------------------------------------------------------------


def test_an_event_is_answered_once_whichever_replica_gets_it(replicas: list[BotState]) -> None:
    one, two = replicas
    assert one.first_time("Ev1") is True
    assert two.first_time("Ev1") is False  # the retry reached the other replica
    assert one.first_time("Ev1") is False
    assert two.first_time("Ev2") is True
    assert one.first_time("Ev2") is False


def test_an_id_sent_as_a_number_or_a_string_is_the_same_event(replicas: list[BotState]) -> None:
    one, two = replicas
    assert one.first_time(12345) is True  # type: ignore[arg-type]
    assert two.first_time("12345") is False
    assert one.first_time("12345") is False
    assert two.first_time(678) is True  # type: ignore[arg-type]
    assert one.first_time(678) is False  # type: ignore[arg-type]


def test_many_threads_of_two_replicas_racing_for_the_same_ids_answer_each_once(replicas: list[BotState]) -> None:
    ids = [f"EvRace{number}" for number in range(25)]
    threads_per_replica = 8
    barrier = threading.Barrier(threads_per_replica * len(replicas))
    won: Counter[str] = Counter()
    lock = threading.Lock()

    def race(state: BotState) -> None:
        barrier.wait()
        for event_id in ids:
            if state.first_time(event_id):
                with lock:
                    won[event_id] += 1

    threads = [threading.Thread(target=race, args=(state,)) for state in replicas for _ in range(threads_per_replica)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert won == dict.fromkeys(ids, 1)


def test_ids_are_kept_for_the_ttl_then_forgotten(postgres_url: str, tmp_path: Path, clock: Clock) -> None:
    one = BotState(tmp_path / "c.db", url=postgres_url, event_ttl=3600, clock=clock)
    two = BotState(tmp_path / "c.db", url=postgres_url, event_ttl=3600, clock=clock)
    assert one.first_time("Ev1")
    clock.now += 3599
    assert not two.first_time("Ev1")  # 59 min 59 s later: still known to every replica
    clock.now += 3601
    assert one.first_time("Ev1")  # an hour after it was last seen: new again
    one.close()
    two.close()


def test_ids_older_than_the_ttl_are_purged_and_younger_ones_kept(
    postgres_url: str, tmp_path: Path, clock: Clock
) -> None:
    state = BotState(tmp_path / "c.db", url=postgres_url, clock=clock)  # the default ttl: one hour
    assert state.events.ttl >= 3600
    for number in range(5):
        state.first_time(f"EvOld{number}")
    clock.now += 1800
    state.first_time("EvHalfAnHour")
    clock.now += 1801  # the first five are over an hour old, the sixth half an hour
    state.first_time("EvNew")
    state.close()
    kept = {row[0] for row in query(postgres_url, f"SELECT event_id FROM {EVENTS_TABLE}")}
    assert kept == {"EvHalfAnHour", "EvNew"}


# -- feedback ---------------------------------------------------------------------------------------------------


def test_feedback_from_every_replica_lands_in_one_table(replicas: list[BotState]) -> None:
    one, two = replicas
    first = one.add_feedback(note("U0ALICE1", "first"))
    second = two.add_feedback(Feedback("U0BOB001", None, "not_helpful", "second", ()))
    assert first.id is not None and second.id is not None and second.id > first.id
    for state in replicas:
        stored = state.feedback()
        assert [record.question for record in stored] == ["second", "first"]  # newest first
        assert stored[1] == first and stored[0] == second
        assert stored[1].passages == ("000-a ¶1", "001-b ¶2") and stored[1].offset == 3
        assert stored[1].generation == 12 and stored[0].generation is None
    assert [record.question for record in one.feedback(limit=1)] == ["second"]
    assert first.created_at.endswith("+00:00") and len(first.created_at) == len("2025-01-01T00:00:00+00:00")
    with pytest.raises(ValueError, match="verdict"):
        one.add_feedback(Feedback("U1", None, "meh", "q", ()))


def test_corpusbot_feedback_reads_every_replicas_feedback_from_postgresql(
    replicas: list[BotState], postgres_url: str, runner: CliRunner, tmp_path: Path
) -> None:
    one, two = replicas
    one.add_feedback(note("U0ALICE1", "from replica one"))
    two.add_feedback(Feedback("U0BOB001", None, "not_helpful", "from replica two", ()))
    env = {"CORPUSBOT_STATE_URL": postgres_url, "CORPUSBOT_STATE_DB": None}
    index = str(tmp_path / "no-index-here.db")  # with PostgreSQL, no local file is needed
    listed = runner.invoke(cli, ["feedback", "--json", "--db", index], env=env)
    assert listed.exit_code == 0, listed.output
    assert [(item["question"], item["generation"]) for item in json.loads(listed.output)] == [
        ("from replica two", None),
        ("from replica one", 12),
    ]
    text = runner.invoke(cli, ["feedback", "--db", index], env=env)
    assert text.exit_code == 0, text.output
    assert "2 feedback: 1 helpful, 1 not helpful" in text.output and "shown: 000-a ¶1; 001-b ¶2" in text.output
    assert text.output.count("index generation: 12") == 1
    # --state-db FILE still reads that file (e.g. the feedback kept before the move to PostgreSQL).
    local = tmp_path / "local-state.db"
    BotState(tmp_path / "corpusbot.db", state_db=local).close()
    from_file = runner.invoke(cli, ["feedback", "--json", "--db", index, "--state-db", str(local)], env=env)
    assert from_file.exit_code == 0, from_file.output
    assert json.loads(from_file.output) == []


def test_a_database_of_an_earlier_release_is_read_as_it_is_and_then_given_the_generation_column(
    postgres_url: str, runner: CliRunner, tmp_path: Path
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # the schema before generations were stored
        conn.execute(f"CREATE TABLE {MIGRATIONS_TABLE} (name text PRIMARY KEY, applied_at timestamptz DEFAULT now())")
        for name, sql in postgres.MIGRATIONS[:3]:
            conn.execute(sql)
            conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (%s)", (name,))
        conn.execute(
            f"INSERT INTO {FEEDBACK_TABLE} (created_at, user_id, verdict, question) "
            "VALUES (now(), 'U0OLD001', 'helpful', 'before generations')"
        )
    env = {"CORPUSBOT_STATE_URL": postgres_url, "CORPUSBOT_STATE_DB": None}
    listed = runner.invoke(cli, ["feedback", "--json", "--db", str(tmp_path / "x.db")], env=env)
    assert listed.exit_code == 0, listed.output
    assert [(item["question"], item["generation"]) for item in json.loads(listed.output)] == [
        ("before generations", None)
    ]
    assert query(postgres_url, f"SELECT count(*) FROM {MIGRATIONS_TABLE}") == [(3,)]  # reading migrated nothing
    state = BotState(tmp_path / "corpusbot.db", url=postgres_url)
    state.add_feedback(note("U0NEW001", "after"))
    assert [(record.question, record.generation) for record in state.feedback()] == [
        ("after", 12),
        ("before generations", None),
    ]
    state.close()


def test_corpusbot_feedback_on_a_database_the_bot_never_used_writes_nothing(
    postgres_url: str, runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(
        cli,
        ["feedback", "--db", str(tmp_path / "x.db")],
        env={"CORPUSBOT_STATE_URL": postgres_url, "CORPUSBOT_STATE_DB": None},
    )
    assert result.exit_code == 0, result.output
    assert "No feedback yet." in result.output
    assert query(postgres_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


# -- the rate limit ---------------------------------------------------------------------------------------------


def test_the_rate_limit_is_counted_once_for_all_replicas(replicas: list[BotState]) -> None:
    one, two = (state.limiter(RateLimit(5, 60)) for state in replicas)
    verdicts = [(one if number % 2 else two).check("U0ALICE1") for number in range(9)]
    assert verdicts == [Verdict.ALLOW] * 5 + [Verdict.NOTICE] + [Verdict.DROP] * 3  # 5 in total, not 5 each
    assert one.check("U0BOB001") is Verdict.ALLOW  # per user
    assert 59 <= two.retry_after("U0ALICE1") <= 60
    assert one.retry_after("U0NOBODY") == 0


def test_the_rate_limit_is_exact_with_many_threads_on_two_replicas(replicas: list[BotState]) -> None:
    limiters = [state.limiter(RateLimit(30, 60)) for state in replicas]
    barrier = threading.Barrier(16)
    verdicts: list[Verdict] = []
    lock = threading.Lock()

    def flood(limiter) -> None:
        barrier.wait()
        for _ in range(10):
            verdict = limiter.check("U0FLOOD1")
            with lock:
                verdicts.append(verdict)

    threads = [threading.Thread(target=flood, args=(limiter,)) for limiter in limiters for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(verdicts) == {Verdict.ALLOW: 30, Verdict.NOTICE: 1, Verdict.DROP: 129}


@pytest.mark.parametrize("where", ["memory", "postgresql"])
def test_both_limiters_slide_the_same_window(where: str, postgres_url: str, tmp_path: Path, clock: Clock) -> None:
    state = BotState(tmp_path / "c.db", url=postgres_url, clock=clock) if where == "postgresql" else None
    limit = RateLimit(3, 60)
    limiter = state.limiter(limit) if state is not None else RateLimiter(limit, clock=clock)
    assert [limiter.check("U1") for _ in range(6)] == [Verdict.ALLOW] * 3 + [Verdict.NOTICE] + [Verdict.DROP] * 2
    assert limiter.check("U2") is Verdict.ALLOW
    assert limiter.retry_after("U1") == 60
    clock.now += 30
    assert limiter.retry_after("U1") == 30
    clock.now += 30
    assert limiter.check("U1") is Verdict.ALLOW  # the window slid past the first three
    assert [limiter.check("U1") for _ in range(3)] == [Verdict.ALLOW, Verdict.ALLOW, Verdict.NOTICE]
    if state is not None:
        state.close()


def test_a_limit_turned_off_never_asks_the_database(postgres_url: str, tmp_path: Path) -> None:
    state = BotState(tmp_path / "c.db", url=postgres_url)
    limiter = state.limiter(RateLimit(0, 60))
    state.close()  # closed: any use of the database would fail
    assert all(limiter.check("U1") is Verdict.ALLOW for _ in range(100))


def test_rows_of_users_whose_window_is_empty_are_purged(postgres_url: str, tmp_path: Path, clock: Clock) -> None:
    state = BotState(tmp_path / "c.db", url=postgres_url, clock=clock)
    limiter = state.limiter(RateLimit(3, 60))
    limiter.check("U0OLD001")
    clock.now += 30
    limiter.check("U0RECENT")
    clock.now += 301  # past the purge interval: the next check purges
    limiter._next_purge = 0.0  # type: ignore[attr-defined]
    limiter.check("U0NEW001")
    state.close()
    users = {row[0] for row in query(postgres_url, f"SELECT user_id FROM {postgres.RATE_LIMITS_TABLE}")}
    assert users == {"U0NEW001"}


# -- outages ----------------------------------------------------------------------------------------------------


def wait_until(condition, timeout: float = RECOVERY_SECONDS):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.1)


def timed(call, *args):
    began = time.monotonic()
    result = call(*args)
    return result, time.monotonic() - began


def test_a_stopped_database_neither_delays_acks_nor_crashes_and_recovery_needs_no_restart(
    postgres_server: PostgresServer, postgres_url: str, sample_service: SearchService, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, psycopg's too: the password must not be in any line
    url = StateUrl(postgres_url)
    settings = Settings(db_path=str(sample_service.db_path), state_url=url, rate_limit=RateLimit(100, 60))
    runtime = make_runtime(settings, sample_service)  # as `corpusbot serve` builds it: the state from the settings
    state = runtime.state
    assert state.store is not None
    generation = sample_service.generation
    assert state.first_time("EvBefore") is True
    assert state.add_feedback(note(question="before")).id is not None
    assert runtime.admit("U0ALICE1", "C0GENERAL").allowed
    assert readiness(runtime) == (None, generation)

    postgres_server.stop()  # ends every session, as a restart or a failover does
    try:
        # The event check before an ack: prompt, and the id is remembered in this process meanwhile.
        first, took = timed(state.first_time, "EvDuring")
        assert first is True and took < PROMPT_SECONDS
        again, took_again = timed(state.first_time, "EvDuring")
        assert again is False and took_again < 0.1
        later, took_later = timed(state.first_time, "EvDuring2")
        assert later is True and took_later < 0.1  # while the backoff lasts, memory alone: no wait at all
        # /readyz: 503 with the reason, naming the database without credentials.
        problem, at = readiness(runtime)
        assert at == generation and problem is not None
        assert problem.startswith("state database: ") and url.display in problem and "unavailable" in problem
        # A feedback write fails with a clear error (the Slack layer replies politely with it).
        with pytest.raises(StateUnavailable, match=r"state database postgresql://127\.0\.0\.1:\d+/\w+ is unavailable"):
            state.add_feedback(note(question="during"))
        # The rate limit cannot be counted: the user gets the polite "not available" reply, nothing raises.
        gate = runtime.admit("U0ALICE1", "C0GENERAL")
        assert not gate.allowed and gate.reply == blocks.unavailable()
        outage_lines = [r for r in caplog.records if "is unavailable (" in r.getMessage()]
        assert len(outage_lines) == 1, "one line per outage, not one per request"
        assert "checked in this process only" in outage_lines[0].getMessage()
    finally:
        postgres_server.start()

    # Back without a restart: the same objects work again.
    wait_until(lambda: readiness(runtime) == (None, generation))
    assert wait_until(lambda: state.first_time("EvAfter"))
    assert not state.first_time("EvAfter")
    assert state.add_feedback(note(question="after")).id is not None
    assert [record.question for record in state.feedback()] == ["after", "before"]
    assert runtime.admit("U0ALICE1", "C0GENERAL").allowed
    assert any("is back" in r.getMessage() for r in caplog.records)
    # Another replica: the ids recorded while the database was up are known to it...
    other = BotState(tmp_path / "c.db", url=postgres_url)
    assert other.first_time("EvBefore") is False and other.first_time("EvAfter") is False
    # ...and the one first seen during the outage is not: the documented window where a retry reaching
    # another replica is answered twice.
    assert other.first_time("EvDuring") is True
    other.close()
    state.close()
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(settings) and PASSWORD not in str(url) and PASSWORD not in repr(url)


def test_a_stuck_database_holds_an_event_check_no_longer_than_its_deadline(postgres_url: str, tmp_path: Path) -> None:
    state = BotState(tmp_path / "c.db", url=postgres_url)
    assert state.store is not None
    events = PgSeenEvents(state.store, deadline=0.3)
    blocker = psycopg.connect(postgres_url)
    blocker.execute(f"LOCK TABLE {EVENTS_TABLE} IN ACCESS EXCLUSIVE MODE")  # held until rollback: every insert waits
    try:
        first, took = timed(events.first_time, "EvStuck")
        assert first is True and 0.25 < took < 1.0  # cut at the deadline, not at the statement timeout (1 s)
        second, took_second = timed(events.first_time, "EvStuck2")
        assert second is True and took_second < 0.1  # the backoff: no second wait
        problem = state.problem()
        assert problem is not None and "no answer within 0.3 s" in problem
    finally:
        blocker.rollback()
        blocker.close()
    wait_until(lambda: state.problem() is None)  # the next try after the backoff finds it working
    assert events.first_time("EvUnstuck") is True
    assert not state.first_time("EvUnstuck")  # recorded in the database, not only in the memory of `events`
    events.close()
    state.close()


def test_a_database_that_cannot_be_used_at_start_is_one_clear_error_without_the_password(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    wrong = postgres_server.url(database, password="Not-The-Right-Pw-1234")
    with pytest.raises(CorpusbotError) as refused:
        BotState(tmp_path / "c.db", url=wrong)
    message = str(refused.value)
    assert "password authentication failed" in message and "CORPUSBOT_STATE_URL" in message
    assert "Not-The-Right-Pw-1234" not in message and f"postgresql://127.0.0.1:{postgres_server.port}/" in message
    closed_port = postgres_url.replace(f":{postgres_server.port}/", ":1/")
    with pytest.raises(CorpusbotError, match="Connection refused") as unreachable:
        BotState(tmp_path / "c.db", url=closed_port)
    assert PASSWORD not in str(unreachable.value)
    result = CliRunner().invoke(
        cli,
        ["feedback", "--db", str(tmp_path / "x.db")],
        env={"CORPUSBOT_STATE_URL": wrong, "CORPUSBOT_STATE_DB": None},
    )
    assert result.exit_code == 1 and "password authentication failed" in result.output
    assert "Traceback" not in result.output and "Not-The-Right-Pw-1234" not in result.output


# -- connections ------------------------------------------------------------------------------------------------


def test_connections_carry_the_timeouts_and_the_urls_own_settings_win(postgres_url: str, tmp_path: Path) -> None:
    state = BotState(tmp_path / "c.db", url=postgres_url)
    assert state.store is not None
    show = "SELECT current_setting('statement_timeout'), current_setting('application_name')"
    with state.store.events.borrow() as conn:
        assert conn.execute(show).fetchone() == ("1s", "corpusbot")
    with state.store.general.borrow() as conn:
        assert conn.execute(show).fetchone() == ("5s", "corpusbot")
    state.close()
    own = BotState(tmp_path / "c.db", url=postgres_url + "?application_name=mybot&options=-c%20statement_timeout%3D7s")
    assert own.store is not None
    with own.store.general.borrow() as conn:
        assert conn.execute(show).fetchone() == ("7s", "mybot")
    own.close()


def test_a_connection_the_server_closed_is_dropped_before_use(postgres_url: str, tmp_path: Path) -> None:
    state = BotState(tmp_path / "c.db", url=postgres_url)
    assert state.store is not None
    with state.store.general.borrow() as conn:
        pid = conn.info.backend_pid
    query(postgres_url, "SELECT pg_terminate_backend(%s)", pid)  # as an idle timeout or a failover does
    time.sleep(0.2)
    with state.store.general.borrow() as conn:  # not the terminated one: no error, no outage
        assert conn.info.backend_pid != pid and conn.execute("SELECT 1").fetchone() == (1,)
    assert state.store.waiting() is None
    state.close()


def test_psycopg_is_imported_only_when_postgresql_is_used() -> None:
    import subprocess
    import sys

    code = "import sys, corpusbot.bot.state, corpusbot.bot.slack.runtime; print('psycopg' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_without_the_postgresql_binaries_the_fixture_says_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support import postgres as support

    monkeypatch.setattr(support.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(support.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"apt-get install -y postgresql"):
        support.find_binaries()
