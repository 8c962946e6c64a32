"""Putting a backup back (``corpusbot restore BACKUP``), safe while a bot uses the database.

The rules:

- The backup is never renamed over the live file. Renaming leaves the old
  file's ``-wal`` and ``-shm`` beside the new one, and SQLite would replay that
  stale journal into it. Instead the backup's pages are written into the live
  database through SQLite's online backup API, as one write transaction: the
  journal files stay SQLite's own business, and a killed restore changes nothing.
- A running bot keeps answering from the index it has until the restore
  commits, then switches to the restored one without a restart: the restored
  copy gets a generation above both the backup's and the live database's, the
  change every reader checks before each question.
- The bot's own tables (feedback, seen Slack events) are the live database's,
  not the backup's: feedback given since the backup is kept.
- The backup is checked first (SQLite's quick_check, a corpusbot index of a
  schema this version reads); the live database is not touched when it fails.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from corpusbot.index.engine import store
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.maintenance.backup import write_into

BOT_TABLE_PREFIX = "bot_"


@dataclass(frozen=True)
class RestoreResult:
    backup: str
    target: str
    articles: int
    passages: int
    generation: int
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "backup": self.backup,
            "target": self.target,
            "articles": self.articles,
            "passages": self.passages,
            "generation": self.generation,
            "seconds": round(self.seconds, 3),
        }


def restore_database(backup: str | os.PathLike[str], target: str | os.PathLike[str]) -> RestoreResult:
    """Replace the index at ``target`` with the one in ``backup`` (see the module's rules)."""
    started = time.perf_counter()
    backup, target = Path(backup), Path(target)
    if not backup.is_file():
        raise CorpusbotError(f"No backup at {backup}; give the file `corpusbot backup` wrote.")
    if target.is_dir():
        raise CorpusbotError(f"{target} is a folder; give the database file with --db.")
    if not target.parent.is_dir():
        raise CorpusbotError(f"Cannot restore into {target}: folder {target.parent} does not exist.")
    if target.exists() and os.path.samefile(backup, target):
        raise CorpusbotError(f"{backup} is the database itself; give the backup file.")
    staged = target.parent / f".{target.name}.{os.getpid()}.restore"
    try:
        _stage(backup, target, staged)
        counts = _write_into(staged, target)
    finally:
        for leftover in (staged, Path(f"{staged}-journal"), Path(f"{staged}-wal"), Path(f"{staged}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return RestoreResult(str(backup), str(target), *counts, seconds=time.perf_counter() - started)


def _stage(backup: Path, target: Path, staged: Path) -> None:
    """A private copy of the backup, checked, with the live bot tables and a generation above both."""
    try:
        source = sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise CorpusbotError(f"Cannot open the backup {backup}: {error}.") from None
    try:
        copy = sqlite3.connect(staged)
        try:
            source.backup(copy)
        except sqlite3.DatabaseError as error:
            raise CorpusbotError(f"{backup} is not a usable SQLite database ({error}); nothing was restored.") from None
        finally:
            source.close()
        try:
            copy.execute("PRAGMA journal_mode = DELETE")
            _check_backup(copy, backup)
            live_generation = _live_generation(target)
            with copy:
                generation = max(_generation(copy) or 0, live_generation or 0) + 1
                copy.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
                store.write_meta(store.Connection(copy), {"build_id": store.new_build_id()})
                if target.exists():
                    _carry_bot_tables(copy, target)
        finally:
            copy.close()
    except OSError as error:
        raise CorpusbotError(f"Cannot write next to {target}: {error.strerror or error}.") from None


def _check_backup(copy: sqlite3.Connection, backup: Path) -> None:
    try:
        verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as error:
        verdict = str(error)
    if verdict != "ok":
        raise CorpusbotError(f"The backup {backup} is damaged (quick_check: {verdict}); nothing was restored.")
    try:
        meta = store.read_meta(store.Reader(copy))
    except sqlite3.DatabaseError:
        meta = {}
    if meta.get("schema_version") is None or _generation(copy) is None:
        raise CorpusbotError(f"{backup} holds no corpusbot index; nothing was restored.")
    store.check_schema(meta, backup)


def _generation(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    return int(row[0]) if row else None


def _live_generation(target: Path) -> int | None:
    if not target.exists():
        return None
    try:
        live = sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return _generation(live)
        finally:
            live.close()
    except sqlite3.DatabaseError:
        return None  # not an index (yet): nothing to stay above


def _carry_bot_tables(copy: sqlite3.Connection, target: Path) -> None:
    """Replace the copy's bot_* tables by the live database's (feedback since the backup is kept)."""
    try:
        copy.execute("ATTACH DATABASE ? AS live", (f"{target.resolve().as_uri()}?mode=ro",))
        schema = copy.execute(
            "SELECT type, name, tbl_name, sql FROM live.sqlite_master WHERE sql IS NOT NULL"
        ).fetchall()
    except sqlite3.DatabaseError:
        return  # the live file is no database at all: nothing of the bot's to keep
    try:
        tables = [(name, sql) for kind, name, _, sql in schema if kind == "table" and name.startswith(BOT_TABLE_PREFIX)]
        for name, sql in tables:
            copy.execute(f'DROP TABLE IF EXISTS main."{name}"')
            copy.execute(sql)
            copy.execute(f'INSERT INTO main."{name}" SELECT * FROM live."{name}"')
        names = {name for name, _ in tables}
        for kind, _, table, sql in schema:
            if kind == "index" and table in names:
                copy.execute(sql)
        copy.commit()
    finally:
        copy.execute("DETACH DATABASE live")


def _write_into(staged: Path, target: Path) -> tuple[int, int, int]:
    """Write the staged copy into ``target`` in one transaction; its (articles, passages, generation)."""
    new = not target.exists()
    if new:
        store.connect_plain(target, create=True).conn.close()  # owner-only permissions, WAL mode
    write_into(staged, target)
    live = sqlite3.connect(target)
    try:
        articles, passages = live.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages)"
        ).fetchone()
        generation = _generation(live)
    finally:
        live.close()
    assert generation is not None
    return int(articles), int(passages), generation
