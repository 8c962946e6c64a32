"""A consistent copy of the index database while it is in use (``corpusbot backup PATH``).

SQLite's online backup copies the pages of one read snapshot: in WAL mode a
reindex keeps writing meanwhile and the copy is still exactly one committed
index. The copy is written to a temporary file next to the target and renamed
into place when complete, so a failed or killed backup never leaves a
half-written file under the target's name.

Overwriting (``--force``) a file that is a SQLite database, or that has
``-wal``/``-shm`` files beside it, is different: renaming over it would leave
those journal files behind and SQLite would replay them into the new copy.
There the copy is written into the existing database through SQLite itself
(``write_into``), one transaction, as ``corpusbot restore`` does.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from corpusbot.index.engine import store
from corpusbot.index.errors import CorpusbotError, IndexMissing


@dataclass(frozen=True)
class BackupResult:
    source: str
    target: str
    articles: int
    passages: int
    generation: int | None
    bytes: int
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "target": self.target,
            "articles": self.articles,
            "passages": self.passages,
            "generation": self.generation,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }


def backup_database(
    source: str | os.PathLike[str], target: str | os.PathLike[str], *, force: bool = False
) -> BackupResult:
    """Copy the index at ``source`` to ``target`` (owner-only permissions); ``force`` overwrites."""
    started = time.perf_counter()
    source, target = Path(source), Path(target)
    if not source.exists():
        raise IndexMissing(
            f"No index database at {source}; nothing to back up. Give it with --db, or build one with `corpusbot index`."
        )
    _check_target(source, target, force)
    db = store.connect(source, readonly=True)
    src = db.conn
    partial = target.parent / f".{target.name}.{os.getpid()}.partial"
    try:
        if store.read_meta(db).get("schema_version") is None:
            raise CorpusbotError(f"{source} holds no corpusbot index; nothing to back up.")
        fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        try:
            counts = _copy(src, partial)
            if _has_journal_or_database(target):
                write_into(partial, target)
                partial.unlink()
            else:
                os.replace(partial, target)
        except BaseException:
            for leftover in (partial, Path(f"{partial}-journal")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            raise
    except OSError as error:
        raise CorpusbotError(f"Cannot write the backup {target}: {error.strerror or error}.") from None
    finally:
        src.close()
    sync_folder(target.parent)
    return BackupResult(
        source=str(source),
        target=str(target),
        articles=counts[0],
        passages=counts[1],
        generation=counts[2],
        bytes=target.stat().st_size,
        seconds=time.perf_counter() - started,
    )


def _check_target(source: Path, target: Path, force: bool) -> None:
    if target.is_dir():
        raise CorpusbotError(
            f"{target} is a folder; give the backup a file name, e.g. {target / 'corpusbot-backup.db'}."
        )
    if not target.parent.is_dir():
        raise CorpusbotError(f"Cannot write {target}: folder {target.parent} does not exist.")
    if target.exists() or target.is_symlink():
        if target.exists() and os.path.samefile(source, target):
            raise CorpusbotError(f"{target} is the database itself; give the backup another name.")
        if not force:
            raise CorpusbotError(f"{target} already exists; give another name, or add --force to overwrite it.")


def copy_database(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> int:
    """A consistent copy of any SQLite database (one read snapshot), written like an index backup; its bytes.

    For files beside the index that are not an index (the bot's state database): no index checks.
    """
    source, target = Path(source), Path(target)
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    partial = target.parent / f".{target.name}.{os.getpid()}.partial"
    try:
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode = DELETE")
            dst.commit()
        finally:
            dst.close()
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        if _has_journal_or_database(target):
            write_into(partial, target)
            partial.unlink()
        else:
            os.replace(partial, target)
    except sqlite3.DatabaseError as error:
        raise CorpusbotError(f"Cannot copy {source} to {target}: {error}.") from None
    except OSError as error:
        raise CorpusbotError(f"Cannot write {target}: {error.strerror or error}.") from None
    finally:
        src.close()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    sync_folder(target.parent)
    return target.stat().st_size


def _has_journal_or_database(target: Path) -> bool:
    if any(Path(f"{target}{suffix}").exists() for suffix in ("-wal", "-shm", "-journal")):
        return True
    try:
        with open(target, "rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except FileNotFoundError:
        return False


def write_into(copy: Path, target: Path) -> None:
    """Replace the database at ``target`` by the one in ``copy``, through SQLite: one write transaction.

    SQLite's backup API writes the pages under the target's own locks and journal, so its readers see the
    old database or the new one, and a killed copy leaves the old one. Raises ``CorpusbotError`` with the
    fix when ``target`` is no database or is locked.
    """
    source = sqlite3.connect(copy)
    try:
        try:
            live = sqlite3.connect(target, timeout=30)
            source.backup(live)
        except sqlite3.OperationalError as error:
            raise CorpusbotError(
                f"Cannot write into {target} ({error}): a reindex may hold it; try again when it finishes."
            ) from None
        except sqlite3.DatabaseError as error:
            raise CorpusbotError(
                f"{target} is not a SQLite database ({error}); move it aside, then try again."
            ) from None
        finally:
            with contextlib.suppress(UnboundLocalError):
                live.close()
    finally:
        source.close()


def _copy(src: sqlite3.Connection, path: Path) -> tuple[int, int, int | None]:
    """Back up into ``path``; returns the copy's (articles, passages, generation)."""
    dst = sqlite3.connect(path)
    try:
        # pages=-1: the whole database in one step, from one read snapshot of the source.
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
        verdict = dst.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise CorpusbotError(f"The backup copy failed SQLite's quick_check ({verdict}); the source may be damaged.")
        articles, passages = dst.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages)"
        ).fetchone()
        row = dst.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        dst.commit()
    finally:
        dst.close()
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
    return int(articles), int(passages), int(row[0]) if row else None


def sync_folder(folder: Path) -> None:
    """Make the rename durable (best effort: not every file system lets a folder be fsynced)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
