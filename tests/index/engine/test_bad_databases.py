"""A database that is from another schema, missing, locked, read-only, unreadable or corrupt: a clear error.

Every failure must be one readable message and a non-zero exit, never a
traceback (CliRunner keeps an unhandled exception in ``result.exception``, so
that is checked too, not only the output).
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import corpusbot.index.engine.store as store
from corpusbot.bot.cli import cli
from corpusbot.index import index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.engine import migrations

CORPUSBOT = Path(sys.executable).with_name("corpusbot")
READ_COMMANDS = (["ask", "who is on the US delegation?"], ["stats"], ["check"], ["article", "rare earth"])


def assert_clean_error(result: Result, *phrases: str) -> None:
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), f"unhandled {result.exception!r}"
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in result.output, result.output


def set_meta(db: Path, key: str, value: object) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(value), key))
    conn.close()


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Locked databases fail after the busy timeout; 30 s in production, a blink here."""
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 100)


# -- schema versions --------------------------------------------------------------


@pytest.mark.parametrize("args", READ_COMMANDS)
def test_another_schema_version_is_rejected_naming_the_fix(sample_db: Path, runner: CliRunner, args: list[str]) -> None:
    set_meta(sample_db, "schema_version", store.SCHEMA_VERSION - 1)
    result = runner.invoke(cli, [*args, "--db", str(sample_db)])
    assert_clean_error(result, "schema version", "corpusbot index --full")


def test_index_without_full_refuses_an_old_schema_and_full_rebuilds_it(sample_db: Path, runner: CliRunner) -> None:
    set_meta(sample_db, "schema_version", store.SCHEMA_VERSION + 1)
    refused = runner.invoke(cli, ["index", "--db", str(sample_db)])
    assert_clean_error(refused, "corpusbot index --full")
    rebuilt = runner.invoke(cli, ["index", "--full", "--check", "--db", str(sample_db)])
    assert rebuilt.exit_code == 0, rebuilt.output
    answer = runner.invoke(cli, ["ask", "--json", "--db", str(sample_db), "who is on the US delegation?"])
    assert answer.exit_code == 0 and json.loads(answer.stdout)["results"]


def dump(db: Path) -> list[str]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def as_first_release(db: Path) -> None:
    """Make ``db`` an index as the first release left it: schema version 1, no line hashes, no migrations."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        conn.execute("DROP TABLE _migrations")
        conn.execute(f"ALTER TABLE articles DROP COLUMN {store.SOURCE_HASH_COLUMN}")
    conn.close()


def test_an_index_of_the_first_release_is_rebuilt_never_migrated(sample_db: Path, runner: CliRunner) -> None:
    as_first_release(sample_db)
    before = dump(sample_db)
    for args in [*READ_COMMANDS, ["index"]]:
        assert_clean_error(runner.invoke(cli, [*args, "--db", str(sample_db)]), "corpusbot index --full")
    assert dump(sample_db) == before  # refused before any migration touched it
    rebuilt = runner.invoke(cli, ["index", "--full", "--check", "--db", str(sample_db)])
    assert rebuilt.exit_code == 0, rebuilt.output
    reader = store.connect_reader(sample_db)
    try:
        assert migrations.applied(reader) == [fn.__name__ for fn in migrations.MIGRATIONS]
        assert store.has_source_hashes(reader)
    finally:
        reader.conn.close()


def test_a_full_rebuild_of_a_newer_schema_forgets_the_newer_migrations(sample_db: Path, runner: CliRunner) -> None:
    """Its _migrations table goes with its other tables: this corpusbot's migrations then make them anew."""
    set_meta(sample_db, "schema_version", store.SCHEMA_VERSION + 1)
    conn = sqlite3.connect(sample_db)
    with conn:
        conn.execute("INSERT INTO _migrations VALUES ('m900_newer_layout', '2031-01-01T00:00:00+00:00')")
    conn.close()
    rebuilt = runner.invoke(cli, ["index", "--full", "--check", "--db", str(sample_db)])
    assert rebuilt.exit_code == 0, rebuilt.output
    reader = store.connect_reader(sample_db)
    try:
        assert migrations.applied(reader) == [fn.__name__ for fn in migrations.MIGRATIONS]
    finally:
        reader.conn.close()


@pytest.mark.parametrize("args", READ_COMMANDS)
def test_damaged_index_metadata_is_a_clear_error(sample_db: Path, runner: CliRunner, args: list[str]) -> None:
    conn = sqlite3.connect(sample_db)
    with conn:
        conn.execute("UPDATE meta SET value = '{not json' WHERE key = 'generation'")
    conn.close()
    assert_clean_error(runner.invoke(cli, [*args, "--db", str(sample_db)]), "damaged", "corpusbot index --full")


# -- missing --------------------------------------------------------------------


@pytest.mark.parametrize("args", [["check"], ["backup", "copy.db"]])
def test_a_missing_database_is_named_with_the_fix(
    tmp_path: Path, runner: CliRunner, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, [*args, "--db", "nowhere.db"])
    assert_clean_error(result, "No index database at nowhere.db", "corpusbot index")
    assert not Path("nowhere.db").exists() and not Path("copy.db").exists()


def test_a_database_in_a_missing_folder_is_a_clear_error(tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["ask", "--db", str(tmp_path / "no" / "such" / "x.db"), "trade talks"])
    assert_clean_error(result, "does not exist")


def test_an_empty_database_file_holds_no_index(tmp_path: Path, runner: CliRunner) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    for args in READ_COMMANDS:
        assert_clean_error(runner.invoke(cli, [*args, "--db", str(db)]), "corpusbot index")


# -- locked ---------------------------------------------------------------------


def test_reindex_while_another_writer_holds_the_lock(sample_db: Path, runner: CliRunner, short_busy_timeout) -> None:
    holder = sqlite3.connect(sample_db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO meta(key, value) VALUES ('held', '1')")
        result = runner.invoke(cli, ["index", "--full", "--db", str(sample_db)])
        assert_clean_error(result, "locked by another process", "Try again")
        # Readers are not blocked by a writer (WAL): questions keep being answered meanwhile.
        ask = runner.invoke(cli, ["ask", "--db", str(sample_db), "who is on the US delegation?"])
        assert ask.exit_code == 0 and "Becente" in ask.output
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_an_exclusively_locked_database_is_a_clear_error(tmp_path: Path, runner: CliRunner, short_busy_timeout) -> None:
    db = tmp_path / "locked.db"
    index_corpus(db, [BUNDLED])
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO meta(key, value) VALUES ('held', '1')")
        holder.execute("COMMIT")  # exclusive locking mode keeps the lock after the commit
        for args in [*READ_COMMANDS, ["index"], ["backup", str(tmp_path / "copy.db")]]:
            result = runner.invoke(cli, [*args, "--db", str(db)])
            assert_clean_error(result, "locked by another process")
            assert "damaged" not in result.output
    finally:
        holder.close()


# -- corrupt --------------------------------------------------------------------


def _corrupt(kind: str, sample_db: Path) -> Path:
    bad = sample_db.with_name(f"{kind}.db")
    data = sample_db.read_bytes()
    if kind == "random-bytes":
        bad.write_bytes(random.Random(7).randbytes(len(data)))
    elif kind == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    else:  # a valid header, garbage pages after it
        bad.write_bytes(data[:4096] + random.Random(8).randbytes(len(data) - 4096))
    return bad


@pytest.mark.parametrize("kind", ["random-bytes", "truncated", "garbage-pages"])
def test_a_corrupt_database_is_a_clear_error(sample_db: Path, runner: CliRunner, kind: str) -> None:
    bad = _corrupt(kind, sample_db)
    before = bad.read_bytes()
    for args in [*READ_COMMANDS, ["index"], ["backup", str(sample_db.with_name("copy.db"))]]:
        result = runner.invoke(cli, [*args, "--db", str(bad)])
        assert_clean_error(result)
        assert any(word in result.output for word in ("damaged", "malformed", "not a database", "problem")), (
            args,
            result.output,
        )
    assert not sample_db.with_name("copy.db").exists()
    assert bad.read_bytes()[:4096] == before[:4096]  # nothing "repaired" a file we could not read


def test_a_damaged_page_inside_a_valid_file_fails_check(tmp_path: Path, runner: CliRunner) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = random.Random(3)
    for number in range(60):
        words = " ".join(rng.choice(["trade", "talks", "london", "export", "license", "tariff"]) for _ in range(300))
        (corpus / f"{number}.txt").write_text(f"Article {number}.\n\n{words}.\n")
    db = tmp_path / "big.db"
    index_corpus(db, [str(corpus)])
    data = bytearray(db.read_bytes())
    page = len(data) // 4096 // 2 * 4096  # a page in the middle of the file
    data[page + 100 : page + 3000] = rng.randbytes(2900)
    db.write_bytes(bytes(data))
    result = runner.invoke(cli, ["check", "--db", str(db)])
    assert_clean_error(result)


# -- read-only and unreadable (file permissions) ------------------------------------


def _drop_file_permission_override() -> None:
    """In the child: give up root's power to ignore file permissions (CAP_DAC_OVERRIDE/READ_SEARCH)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_bound_by_permissions(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real CLI so that file permissions apply, also when the tests run as root."""
    preexec = None
    if os.geteuid() == 0:
        try:
            probe = subprocess.run(["true"], preexec_fn=_drop_file_permission_override, check=False)
        except (OSError, subprocess.SubprocessError) as error:
            pytest.skip(f"running as root without a way to drop CAP_DAC_OVERRIDE ({error}): permissions not testable")
        assert probe.returncode == 0
        preexec = _drop_file_permission_override
    return subprocess.run(
        [str(CORPUSBOT), *args], cwd=cwd, capture_output=True, text=True, preexec_fn=preexec, timeout=120
    )


def test_a_read_only_database_answers_but_refuses_to_reindex_cleanly(sample_db: Path, tmp_path: Path) -> None:
    sample_db.chmod(0o444)
    ask = run_bound_by_permissions(["ask", "--db", str(sample_db), "who is on the US delegation?"], tmp_path)
    assert ask.returncode == 0, ask.stderr
    assert "Becente" in ask.stdout
    reindex = run_bound_by_permissions(["index", "--full", "--db", str(sample_db)], tmp_path)
    assert reindex.returncode == 1
    assert "read-only" in reindex.stderr and "Traceback" not in reindex.stderr
    check = run_bound_by_permissions(["check", "--db", str(sample_db)], tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


def test_an_unreadable_database_is_a_clear_error(sample_db: Path, tmp_path: Path) -> None:
    sample_db.chmod(0)
    result = run_bound_by_permissions(["ask", "--db", str(sample_db), "trade talks"], tmp_path)
    assert result.returncode != 0
    assert "not readable" in result.stderr and "Traceback" not in result.stderr


# -- permissions and secrets ------------------------------------------------------------


def test_a_new_database_is_owner_only_even_with_a_permissive_umask(fresh_db: Path, runner: CliRunner) -> None:
    previous = os.umask(0)
    try:
        result = runner.invoke(cli, ["index", "--db", str(fresh_db)])
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(fresh_db.stat().st_mode) == 0o600
    for sidecar in (Path(f"{fresh_db}-wal"), Path(f"{fresh_db}-shm")):
        if sidecar.exists():  # SQLite gives its side files the database file's permissions
            assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600


SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-000000000000-secret-bot-token",
    "SLACK_APP_TOKEN": "xapp-1-secret-app-token",
    "SLACK_SIGNING_SECRET": "8f14e45fceea167a5a36dedd4bea2543",
}


@pytest.mark.parametrize("args", [["stats"], ["stats", "--json"], ["check"], ["check", "--json"]])
def test_secrets_never_appear_in_stats_or_check(
    sample_db: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(cli, [*args, "--db", str(sample_db)])
    assert result.exit_code == 0, result.output
    for value in SECRETS.values():
        assert value not in result.output
        assert value[-12:] not in result.output


def test_secrets_never_appear_in_database_errors(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all" * 100)
    result = runner.invoke(cli, ["stats", "--db", str(bad)])
    assert_clean_error(result)
    for value in SECRETS.values():
        assert value not in result.output


def test_a_database_in_a_read_only_folder_is_read_and_a_reindex_says_read_only(tmp_path: Path) -> None:
    # A read-only mount or a snapshot: SQLite cannot create the -shm a WAL database needs even for reading.
    folder = tmp_path / "readonly"
    folder.mkdir()
    db = folder / "corpusbot.db"
    index_corpus(db, [BUNDLED])
    assert not Path(f"{db}-wal").exists()  # a clean close leaves no log behind
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        for args in (["ask", "who is on the US delegation?"], ["stats"], ["article", "trade"], ["check"], ["feedback"]):
            result = run_bound_by_permissions([*args, "--db", str(db)], tmp_path)
            assert result.returncode == 0, (args, result.stderr)
        ask = run_bound_by_permissions(["ask", "--db", str(db), "who is on the US delegation?"], tmp_path)
        assert "Becente" in ask.stdout
        copy = run_bound_by_permissions(["backup", str(tmp_path / "copy.db"), "--db", str(db)], tmp_path)
        assert copy.returncode == 0, copy.stderr
        reindex = run_bound_by_permissions(["index", "--db", str(db)], tmp_path)
        assert reindex.returncode == 1
        assert "read-only" in reindex.stderr and "Traceback" not in reindex.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["corpusbot.db"]  # nothing written beside it
    finally:
        folder.chmod(0o755)
