"""The SQLite database: opening, metadata, schema version; the ranking core's reads.

One file holds the articles, their passages, the BM25 postings and the index
metadata. It runs in WAL mode so readers keep answering from the last
committed index while a reindex writes the next one in a single transaction.
The tables themselves are made and upgraded by the migrations (migrations.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from corpusbot.index.engine.bm25 import Postings, QueryTerm, decode
from corpusbot.index.errors import CorpusbotError, IndexMissing, SchemaMismatch

if TYPE_CHECKING:  # sqlite_utils pulls in pandas when installed: keep it off the query path
    import sqlite_utils

# The format of what the tables hold (the postings encoding, what a passage is): an index of another
# version cannot be upgraded by SQL, so readers refuse it and `corpusbot index --full` rebuilds it. Changes
# to the tables and columns alone are migrations instead (migrations.py), and keep this number.
SCHEMA_VERSION = 2  # 2: compact postings with bound pairs; title terms in passages
DEFAULT_DB = "corpusbot.db"
# articles.source_sha256: SHA-256 of the JSONL line the article was read from, so a reindex knows the
# unchanged lines of an edited file without parsing them; NULL = unknown (another format, or a row
# written before the column existed). Older (still version 2) databases get it from migration m002.
SOURCE_HASH_COLUMN = "source_sha256"
FIRST_INDEXED_COLUMN = "first_indexed_at"  # articles: when the article first entered the index (m004)
BUSY_TIMEOUT_MS = 30_000


def has_source_hashes(db: sqlite_utils.Database | Connection) -> bool:
    """Whether the articles table has the ``source_sha256`` column (databases written before it do not)."""
    return any(row[1] == SOURCE_HASH_COLUMN for row in db.execute("PRAGMA table_info(articles)"))


def has_first_indexed(db: sqlite_utils.Database | Reader) -> bool:
    """Whether the articles table has the ``first_indexed_at`` column (m004; an index not reindexed since has not)."""
    return any(row[1] == FIRST_INDEXED_COLUMN for row in db.execute("PRAGMA table_info(articles)"))


def connect(path: str | os.PathLike[str], *, create: bool = False, readonly: bool = False) -> sqlite_utils.Database:
    """Open the database; ``create`` makes a new file (owner-only permissions)."""
    import sqlite_utils

    return sqlite_utils.Database(_open(path, create=create, readonly=readonly, only_reads=readonly))


def connect_reader(path: str | os.PathLike[str]) -> Reader:
    """Open the database for the search service (plain sqlite3, fast to import).

    ``Reader.opened`` records which file the connection has open (see :class:`FileState`): the path is
    looked at before and after opening, and opened again when it named another file in between.
    """
    for _ in range(_OPEN_ATTEMPTS):
        before = _file_state(path)
        reader = Reader(_open(path, create=False, readonly=False, only_reads=True))
        after = _file_state(path)
        if after.same_file(before):
            # The state from before opening: a change while the connection opened counts as a change next time.
            reader.opened = FileState(before.db, after.shm)
            return reader
        reader.conn.close()
    raise CorpusbotError(f"{path} was replaced again while being opened, {_OPEN_ATTEMPTS} times. Try again.")


_OPEN_ATTEMPTS = 3


class FileState(NamedTuple):
    """What a database path names now: its file, and the file of its ``-shm`` (WAL index).

    ``db`` is the file's device, inode, size and modification time: another inode is another file (renamed
    over the path, or deleted and built again); another size or time on the same inode means it was written,
    by SQLite (a checkpoint: :func:`wal_index_header` changed too) or by something else (a copy over it in
    place), and then the pages a connection cached are not to be trusted. ``shm`` is the ``-shm`` file's
    device and inode, None when there is none. While a connection is open, SQLite never deletes the
    ``-shm``; when it is deleted anyway and made again by another process, a connection that still maps
    the deleted one never sees that process's commits.
    """

    db: tuple[int, int, int, int]
    shm: tuple[int, int] | None

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> FileState:
        """The state of ``path`` now (two ``stat`` calls); raises ``FileNotFoundError`` when nothing is there."""
        found = os.stat(path)
        try:
            shm = os.stat(f"{os.fspath(path)}-shm")
        except FileNotFoundError:
            return cls((found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns), None)
        return cls((found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns), (shm.st_dev, shm.st_ino))

    def same_file(self, other: FileState) -> bool:
        """Whether both name the same database file (device and inode), whatever was written to it."""
        return self.db[:2] == other.db[:2]


def wal_index_header(path: str | os.PathLike[str]) -> bytes | None:
    """The parts of the ``-shm`` file that SQLite changes on a commit or a checkpoint, None when it has none.

    Its first 48 bytes (the WAL index header: change counter, frames in the log, checksums, salts) and
    the checkpoint's progress (``nBackfill``, bytes 96-99); not the readers' marks, which readers change.
    The database file written while these stayed the same was written by something other than SQLite.
    """
    try:
        fd = os.open(f"{os.fspath(path)}-shm", os.O_RDONLY)
    except OSError:
        return None
    try:
        head = os.pread(fd, 100, 0)
    except OSError:
        return None
    finally:
        os.close(fd)
    return head[:48] + head[96:100] if len(head) == 100 else None


def _file_state(path: str | os.PathLike[str]) -> FileState:
    try:
        return FileState.of(path)
    except FileNotFoundError:
        raise IndexMissing(f"No index database at {path}. Run `corpusbot index` to build one.") from None
    except OSError as error:
        raise CorpusbotError(f"Cannot read {path}: {error.strerror or error}.") from None


def new_build_id() -> str:
    """A random id for one index build (``meta.build_id``): tells two builds of the same generation apart."""
    return os.urandom(8).hex()


def connect_plain(path: str | os.PathLike[str], *, create: bool = False) -> Connection:
    """Open the database for writing with plain sqlite3 (the indexer: sqlite-utils is slow to import)."""
    return Connection(_open(path, create=create, readonly=False))


def _open(
    path: str | os.PathLike[str], *, create: bool, readonly: bool, only_reads: bool = False
) -> sqlite3.Connection:
    """A connection to ``path``; ``only_reads``: the caller never writes, so a read-only place may do.

    In WAL mode even a reader needs the ``-shm`` file beside the database; in a folder it may not write
    (a read-only mount, a snapshot, a file owned by another user) SQLite cannot make it. A reader then
    opens the file as immutable when no write-ahead log holds data the file lacks; otherwise the error
    says "read-only" and what to do.
    """
    db_path = Path(path)
    if not db_path.exists():
        if not create:
            raise IndexMissing(f"No index database at {db_path}. Run `corpusbot index` to build one.")
        if not db_path.parent.exists():
            raise CorpusbotError(f"Cannot create {db_path}: folder {db_path.parent} does not exist.")
        try:
            fd = os.open(db_path, os.O_CREAT | os.O_WRONLY, 0o600)
        except OSError as error:
            raise CorpusbotError(f"Cannot create {db_path}: {error.strerror}.") from None
        os.close(fd)
    conn: sqlite3.Connection | None = None
    try:
        if readonly:
            conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        else:
            conn = sqlite3.connect(db_path, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as error:
        if conn is not None:  # closed now, not when the traceback is collected: it may hold the file's -shm mapped
            conn.close()
        if _read_only_place(error, db_path):
            if only_reads and not _log_holds_data(db_path):
                return _open_immutable(db_path)
            raise CorpusbotError(_read_only_advice(db_path, only_reads)) from None
        if "locked" in str(error) or "busy" in str(error):  # in use, not damaged
            raise CorpusbotError(
                f"{db_path} is locked by another process ({error}). Try again when it finishes."
            ) from None
        raise CorpusbotError(
            f"Cannot open {db_path} as a corpusbot database ({error}). "
            "If the file is damaged, move it aside and run `corpusbot index --full`, or restore a backup."
        ) from None
    return conn


def _read_only_place(error: sqlite3.DatabaseError, db_path: Path) -> bool:
    message = str(error)
    if "readonly" not in message and "read-only" not in message and "unable to open" not in message:
        return False
    return not os.access(db_path.parent, os.W_OK) or not os.access(db_path, os.W_OK)


def _log_holds_data(db_path: Path) -> bool:
    try:
        return os.stat(f"{db_path}-wal").st_size > 0
    except FileNotFoundError:
        return False


def _open_immutable(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as error:
        conn.close()
        raise CorpusbotError(
            f"Cannot open {db_path} as a corpusbot database ({error}). "
            "If the file is damaged, move it aside and run `corpusbot index --full`, or restore a backup."
        ) from None
    return conn


def _read_only_advice(db_path: Path, only_reads: bool) -> str:
    if not only_reads:
        return (
            f"The database {db_path} is read-only here (the file or its folder {db_path.parent} is not writable). "
            "Check their permissions, or set CORPUSBOT_DB to a writable place."
        )
    return (
        f"The database {db_path} is in a read-only place and its write-ahead log ({db_path}-wal) holds changes "
        "that SQLite can only read with a -shm file it cannot create there. Make the folder writable, "
        "or run `corpusbot backup COPY` where it is writable and use the copy."
    )


class Reader:
    """The search service's connection: what it uses of ``sqlite_utils.Database``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.opened: FileState | None = None  # set by connect_reader: the file this connection has open

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, parameters)  # type: ignore[arg-type]

    def table_names(self) -> list[str]:
        return [row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


class Connection(Reader):
    """The indexer's writing connection: plain sqlite3 with the same few methods (``connect_plain``)."""


def read_meta(db: sqlite_utils.Database | Reader) -> dict[str, Any]:
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
        return {}
    meta = {}
    for key, value in db.execute("SELECT key, value FROM meta"):
        try:
            meta[key] = json.loads(value)
        except (TypeError, ValueError):
            raise CorpusbotError(
                f"The index metadata is damaged ({key!r} is not valid). "
                "Rebuild it with `corpusbot index --full`, or restore a backup."
            ) from None
    return meta


def write_meta(db: sqlite_utils.Database | Connection, values: dict[str, Any]) -> None:
    db.conn.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(key, json.dumps(value)) for key, value in values.items()],
    )


def check_schema(meta: dict[str, Any], db_path: str | os.PathLike[str]) -> None:
    version = meta.get("schema_version")
    if version is None:
        raise IndexMissing(f"{db_path} holds no corpusbot index yet. Run `corpusbot index` to build one.")
    if version != SCHEMA_VERSION:
        raise SchemaMismatch(
            f"{db_path} was written with index schema version {version}; this corpusbot uses "
            f"version {SCHEMA_VERSION}. Run `corpusbot index --full` to rebuild it."
        )


_TERMS_PER_SELECT = 500  # well under SQLite's limit of bound parameters


# Decoded postings (ids counted) kept between questions. The 200 benchmark questions at 1M passages need 54 MB: the
# earlier 48 MB had every question read and decode some of its postings again (docs/operations.md, "Memory").
DEFAULT_POSTINGS_CACHE_BYTES = 128 << 20


class PostingsCache:
    """Decoded postings by term for one index generation, least recently used dropped first.

    Common terms' postings are long and come back in many questions; keeping
    them decoded saves reading and decoding them again. ``clear`` on a new
    generation. Not thread-safe (the search service locks).
    """

    def __init__(self, max_bytes: int = DEFAULT_POSTINGS_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[int, Postings]] = OrderedDict()
        self._bytes = 0

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def get(self, db: sqlite_utils.Database | Reader, terms: Iterable[str]) -> dict[str, tuple[int, Postings]]:
        """``term -> (df, postings)`` for the terms the index knows."""
        found: dict[str, tuple[int, Postings]] = {}
        missing: list[str] = []
        for term in dict.fromkeys(terms):
            entry = self._entries.get(term)
            if entry is None:
                missing.append(term)
            else:
                self._entries.move_to_end(term)
                found[term] = entry
        for at in range(0, len(missing), _TERMS_PER_SELECT):
            batch = missing[at : at + _TERMS_PER_SELECT]
            marks = ",".join("?" * len(batch))
            for term, df, blob in db.execute(f"SELECT term, df, postings FROM terms WHERE term IN ({marks})", batch):
                entry = (int(df), decode(blob))
                found[term] = entry
                self._remember(term, entry)
        return found

    def _remember(self, term: str, entry: tuple[int, Postings]) -> None:
        size = entry[1].nbytes
        if size > self.max_bytes // 4:
            return
        self._entries[term] = entry
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, old) = self._entries.popitem(last=False)
            self._bytes -= old.nbytes


class TermRanker:
    """Exact BM25Okapi top-k for a list of terms, straight from the database.

    No query analysis, reranking or passage text: the ranking core that the
    search service builds on, used by the parity tests and the benchmark.
    Reopen (or ``refresh``) to see a newer index.
    """

    def __init__(self, path: str | os.PathLike[str], cache: PostingsCache | None = None) -> None:
        from corpusbot.index.engine.bm25 import BM25Params, Collection, Scorer

        self.reader = connect_reader(path)
        self.reader.conn.isolation_level = None
        self.cache = cache or PostingsCache()
        self.reader.execute("BEGIN")
        try:
            meta = read_meta(self.reader)
            check_schema(meta, path)
            row = self.reader.execute("SELECT data FROM blobs WHERE name = 'doc_len'").fetchone()
        finally:
            self.reader.execute("COMMIT")
        doc_len = np.frombuffer(row[0], dtype="<u4") if row else np.zeros(1, dtype="<u4")
        n_docs = int(meta.get("n_docs", 0))
        self.meta = meta
        self.collection = Collection(
            n_docs=n_docs,
            avgdl=(meta.get("total_tokens", 0) / n_docs) if n_docs else 0.0,
            mean_idf=float(meta.get("average_idf", 0.0)),
            doc_len=doc_len,
            params=BM25Params(**meta.get("bm25", {})),
        )
        self.scorer = Scorer(self.collection)

    def query_terms(self, terms: list[str]) -> list[QueryTerm]:
        """One weighted term per query token the index knows (repeats kept: BM25Okapi counts them)."""
        from corpusbot.index.engine.bm25 import idf

        c = self.collection
        found = self.cache.get(self.reader, terms)
        return [QueryTerm(idf(c.n_docs, found[t][0], c.mean_idf, c.params), found[t][1]) for t in terms if t in found]

    def top(self, terms: list[str], k: int = 10) -> list[tuple[int, float]]:
        return self.scorer.top(self.query_terms(terms), k)

    def close(self) -> None:
        self.reader.conn.close()
