"""Index snapshots: build once, serve everywhere (``corpusbot publish DEST``, ``serve --index-from SOURCE``).

A published store (a folder, or a ``file://``, ``s3://``, ``gs://`` URL; ``https://`` to read only) holds:

- ``index-<generation>-<sha256[:16]>.db``: immutable snapshots, each one consistent copy of the index made
  with SQLite's backup API (one read snapshot, ``journal_mode`` DELETE: a single self-contained file),
  without the bot's old ``bot_`` tables (feedback names Slack users; it stays on the host that has it);
- ``index-<generation>-<sha256[:16]>.db.json``: each snapshot's manifest, the pointer written when it was
  published (what ``--rollback`` goes back to);
- ``current.json``: the pointer, ``{"snapshot", "sha256", "bytes", "generation", "published_at",
  "previous"}``, ``previous`` naming the snapshot it replaced (or null).

Writing: the snapshot first, then its manifest, then the pointer, so a reader never finds a pointer to a
snapshot that is not complete. Into a folder each file is written under a temporary name and renamed into
place; an object store (S3, GCS) makes an uploaded object visible whole or not at all, so it is put under
its name directly. One publisher at a time: the pointer is read, then replaced.

Reading (the serve-side follower): the pointer is read, and when it names a snapshot the local database
does not hold (``meta.snapshot_sha256``), the snapshot is downloaded next to the local database (never into
it), its size and SHA-256 checked against the pointer, opened (quick_check, a corpusbot index of this schema),
marked with its name and checksum, and written into the live database by :func:`restore_database`: one
SQLite transaction, the old index answered from until it commits, a new generation afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from corpusbot.index.engine import store as index_store
from corpusbot.index.errors import CorpusbotError, IndexMissing
from corpusbot.index.maintenance.backup import sync_folder
from corpusbot.index.maintenance.restore import restore_database

POINTER = "current.json"
MANIFEST_SUFFIX = ".json"
SNAPSHOT_NAME = re.compile(r"index-(\d+)-([0-9a-f]{16})\.db")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
META_SHA256 = "snapshot_sha256"  # in the local database's meta: the snapshot it holds
META_NAME = "snapshot_name"
CLOUD_INSTALL = "pip install 'corpusbot[cloud]'"
CLOUD_SCHEMES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}
READ_ONLY_SCHEMES = {"http", "https"}
OBJECT_STORES = {"s3", "s3a", "gs", "gcs"}  # an object appears whole or not at all: no rename needed
CHUNK = 1 << 20
PUBLISHED_MODE = 0o644  # published for other hosts to read (over HTTP, say); the bot tables are not in it
HTTP_CONNECT_TIMEOUT = 10.0  # seconds: an unreachable source is reported instead of waited for
HTTP_READ_TIMEOUT = 60.0


JSONBytes = bytes  # (Pointer has a field named bytes)


class SnapshotError(CorpusbotError):
    """A store that cannot be used, or a snapshot refused; the message says which and what to do."""


# -- the pointer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pointer:
    """What ``current.json`` (and each snapshot's manifest) says."""

    snapshot: str
    sha256: str
    bytes: int
    generation: int
    published_at: str
    previous: str | None = None
    rolled_back_from: str | None = None

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "snapshot": self.snapshot,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "generation": self.generation,
            "published_at": self.published_at,
            "previous": self.previous,
        }
        if self.rolled_back_from is not None:
            data["rolled_back_from"] = self.rolled_back_from
        return data

    @classmethod
    def from_json(cls, raw: JSONBytes, where: str) -> Pointer:
        """Parse and check a pointer; ``SnapshotError`` naming ``where`` when it is not one."""
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            pointer = cls(
                snapshot=_field(data, "snapshot", str),
                sha256=_field(data, "sha256", str),
                bytes=_field(data, "bytes", int),
                generation=_field(data, "generation", int),
                published_at=_field(data, "published_at", str),
                previous=_optional(data, "previous"),
                rolled_back_from=_optional(data, "rolled_back_from"),
            )
        except (ValueError, TypeError, KeyError) as error:
            raise SnapshotError(
                f"{where} is not a snapshot pointer ({error}); publish again with `corpusbot publish`."
            ) from None
        name = SNAPSHOT_NAME.fullmatch(pointer.snapshot)
        if name is None or not SHA256_HEX.fullmatch(pointer.sha256) or pointer.bytes <= 0:
            raise SnapshotError(f"{where} is not a snapshot pointer (bad snapshot name, sha256 or bytes).")
        if name.group(2) != pointer.sha256[:16]:
            raise SnapshotError(f"{where} names {pointer.snapshot} with another checksum ({pointer.sha256[:16]}…).")
        for other in (pointer.previous, pointer.rolled_back_from):
            if other is not None and SNAPSHOT_NAME.fullmatch(other) is None:
                raise SnapshotError(f"{where} names a previous snapshot {other!r} that is no snapshot name.")
        return pointer


def _field(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{key} is not a {kind.__name__}")
    return value


def _optional(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} is not a string or null")
    return value


def _pointer_bytes(pointer: Pointer) -> bytes:
    return (json.dumps(pointer.to_json(), indent=2) + "\n").encode()


# -- stores --------------------------------------------------------------------------------------


def display(url: str) -> str:
    """``url`` without a user name, password or query string (a token may hide there), for messages and logs."""
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1 or parts.hostname is None:  # a plain path (or C:\…)
        return url
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class Store:
    """A folder or bucket prefix holding snapshots, through fsspec (``open_store``)."""

    def __init__(self, url: str, fs: Any, root: str) -> None:
        self.url = url
        self.fs = fs
        self.root = root.rstrip("/")
        protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
        self.protocols = set(protocols)
        self.is_local = "file" in self.protocols

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def where(self, name: str) -> str:
        return f"{display(self.url).rstrip('/')}/{name}"

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None when there is none."""
        try:
            return bytes(self.fs.cat_file(self.path(name)))
        except FileNotFoundError:
            return None

    def size(self, name: str) -> int | None:
        """The file's size, or None when there is none (or the store cannot tell)."""
        try:
            size = self.fs.size(self.path(name))
        except FileNotFoundError:
            return None
        return int(size) if size is not None else None

    def download(self, name: str, local: Path) -> None:
        self.fs.get_file(self.path(name), str(local))

    def write(self, name: str, data: bytes) -> None:
        """Write ``data`` as ``name``, whole or not at all."""
        if self.protocols & OBJECT_STORES:
            self.fs.pipe_file(self.path(name), data)
            return
        partial = self.path(f".{name}.{os.getpid()}.partial")
        self.fs.pipe_file(partial, data)
        self._move_into_place(partial, name)

    def upload(self, local: Path, name: str) -> None:
        """Put the local file ``local`` as ``name``, whole or not at all."""
        if self.protocols & OBJECT_STORES:
            self.fs.put_file(str(local), self.path(name))
            return
        if self.is_local and local.parent == Path(self.root):  # made in place: only the rename is left
            os.chmod(local, PUBLISHED_MODE)
            self._move_into_place(str(local), name)
            return
        partial = self.path(f".{name}.{os.getpid()}.partial")
        self.fs.put_file(str(local), partial)
        self._move_into_place(partial, name)

    def _move_into_place(self, partial: str, name: str) -> None:
        try:
            if self.is_local:
                with open(partial, "rb+") as handle:
                    os.fsync(handle.fileno())
                os.replace(partial, self.path(name))
                sync_folder(Path(self.root))
            else:
                self.fs.mv(partial, self.path(name))
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(partial)
            raise


def open_store(url: str, *, write: bool = False) -> Store:
    """The store at ``url`` (a folder, ``file://``, ``s3://``, ``gs://``; ``https://`` only to read)."""
    import fsspec.core  # only the commands that use a store pay for importing it

    scheme = urlsplit(url).scheme.lower() if "://" in url else "file"
    if write and scheme in READ_ONLY_SCHEMES:
        raise SnapshotError(
            f"{display(url)} is read-only ({scheme}:// serves snapshots, it cannot take them); publish to a "
            "folder or an s3:// or gs:// URL, and serve that folder over HTTP."
        )
    options: dict[str, Any] = {}
    if scheme in READ_ONLY_SCHEMES:
        import aiohttp  # fsspec's HTTP backend; a dependency of corpusbot (fsspec[http])

        options["client_kwargs"] = {
            "timeout": aiohttp.ClientTimeout(sock_connect=HTTP_CONNECT_TIMEOUT, sock_read=HTTP_READ_TIMEOUT)
        }
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as error:
        if scheme in CLOUD_SCHEMES:
            raise SnapshotError(
                f"{scheme}:// needs {CLOUD_SCHEMES[scheme]}, which is not installed: {CLOUD_INSTALL}."
            ) from None
        raise SnapshotError(f"{scheme}:// needs a package that is not installed: {error}.") from None
    except ValueError as error:
        raise SnapshotError(
            f"Cannot use {display(url)} ({error}); give a folder, or a file://, s3://, gs:// or https:// URL."
        ) from None
    result = Store(url, fs, root)
    if write and result.is_local:
        folder = Path(result.root)
        if folder.exists() and not folder.is_dir():
            raise SnapshotError(f"{folder} is a file; publish to a folder.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SnapshotError(f"Cannot make the folder {folder}: {error.strerror or error}.") from None
    return result


def _fresh(store: Store) -> Store:
    """Forget listings the store may have cached (s3fs, gcsfs): a pointer is read anew at every poll."""
    with contextlib.suppress(Exception):
        store.fs.invalidate_cache()
    return store


def read_pointer(source: str | Store) -> Pointer:
    """The pointer ``current.json`` at ``source``; ``SnapshotError`` when it is missing or unreadable."""
    store = _fresh(source if isinstance(source, Store) else open_store(source))
    where = store.where(POINTER)
    try:
        raw = store.read(POINTER)
    except SnapshotError:
        raise
    except Exception as error:  # fsspec backends raise their own errors (aiohttp's, botocore's, OSError)
        raise SnapshotError(f"Cannot read {where} ({_describe(error)}).") from None
    if raw is None:
        raise SnapshotError(
            f"No snapshot published at {display(store.url)} (no {POINTER}); publish one with "
            f"`corpusbot publish {display(store.url)}`."
        )
    return Pointer.from_json(raw, where)


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# -- publishing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    destination: str
    pointer: Pointer
    changed: bool  # False: the pointer already named this snapshot
    uploaded: bool  # False: the snapshot was there already (same name, same size)
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "destination": self.destination,
            **self.pointer.to_json(),
            "changed": self.changed,
            "uploaded": self.uploaded,
            "seconds": round(self.seconds, 3),
        }


def publish_snapshot(db_path: str | os.PathLike[str], destination: str) -> PublishResult:
    """Publish the index at ``db_path`` to ``destination`` and point ``current.json`` at it."""
    started = time.perf_counter()
    source = Path(db_path)
    if not source.is_file():
        raise IndexMissing(
            f"No index database at {source}; nothing to publish. Give it with --db, or build one with `corpusbot index`."
        )
    target = open_store(destination, write=True)
    old = _current_or_none(target)
    workdir = Path(target.root) if target.is_local else source.resolve().parent
    try:
        handle, name = tempfile.mkstemp(prefix=".corpusbot-publish-", suffix=".partial", dir=workdir)
    except OSError as error:
        raise SnapshotError(f"Cannot write a copy in {workdir}: {error.strerror or error}.") from None
    os.close(handle)
    copy = Path(name)
    try:
        generation = _consistent_copy(source, copy)
        digest, size = _sha256(copy)
        snapshot = f"index-{generation}-{digest[:16]}.db"
        if old is not None and old.snapshot == snapshot:
            return PublishResult(display(destination), old, False, False, time.perf_counter() - started)
        pointer = Pointer(
            snapshot=snapshot,
            sha256=digest,
            bytes=size,
            generation=generation,
            published_at=datetime.now(UTC).isoformat(timespec="seconds"),
            previous=old.snapshot if old is not None else None,
        )
        uploaded = _store_call(target, "write to", lambda: _upload_snapshot(target, copy, pointer))
        _store_call(target, "write to", lambda: target.write(snapshot + MANIFEST_SUFFIX, _pointer_bytes(pointer)))
        _store_call(target, "write to", lambda: target.write(POINTER, _pointer_bytes(pointer)))
    finally:
        for leftover in (copy, Path(f"{copy}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return PublishResult(display(destination), pointer, True, uploaded, time.perf_counter() - started)


def _store_call(store: Store, verb: str, call: Any) -> Any:
    try:
        return call()
    except SnapshotError:
        raise
    except Exception as error:
        raise SnapshotError(f"Cannot {verb} {display(store.url)} ({_describe(error)}).") from None


def _current_or_none(target: Store) -> Pointer | None:
    try:
        return read_pointer(target)
    except SnapshotError:
        if _store_call(target, "read", lambda: target.size(POINTER)) is None:
            return None  # nothing published yet
        raise


def _upload_snapshot(target: Store, copy: Path, pointer: Pointer) -> bool:
    """Put the snapshot in place unless it is there already (a name is one content); whether it was put."""
    if target.size(pointer.snapshot) == pointer.bytes:
        return False
    target.upload(copy, pointer.snapshot)
    return True


def _consistent_copy(source: Path, copy: Path) -> int:
    """One read snapshot of ``source`` into ``copy``, checked and without the bot's tables; its generation."""
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise SnapshotError(f"Cannot open {source}: {error}; nothing was published.") from None
    try:
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst, pages=-1)  # the whole database in one step, from one read snapshot
        except sqlite3.DatabaseError as error:
            raise SnapshotError(f"{source} is not a usable SQLite database ({error}); nothing was published.") from None
        finally:
            src.close()
        try:
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            verdict = _quick_check(dst)
            if verdict != "ok":
                raise SnapshotError(
                    f"{source} fails SQLite's quick_check ({verdict}); nothing was published. Rebuild it with "
                    "`corpusbot index --full`, then `corpusbot check`."
                )
            generation = _check_index(dst, source, "nothing was published")
            dropped = _strip_host_state(dst)
            if dropped:
                dst.execute("VACUUM")
        finally:
            dst.close()
    except OSError as error:
        raise SnapshotError(f"Cannot write the snapshot copy {copy}: {error.strerror or error}.") from None
    with open(copy, "rb+") as handle:
        os.fsync(handle.fileno())
    return generation


def _quick_check(conn: sqlite3.Connection) -> str:
    """SQLite's quick_check verdict on one line ("ok" when sound), at most ~200 characters."""
    try:
        verdict = "; ".join(row[0] for row in conn.execute("PRAGMA quick_check(10)"))
    except sqlite3.DatabaseError as error:
        verdict = str(error)
    verdict = " ".join(verdict.split())
    return verdict if len(verdict) <= 200 else verdict[:199] + "…"


def _check_index(conn: sqlite3.Connection, where: Path | str, consequence: str) -> int:
    """That ``conn`` holds a corpusbot index of this schema version; its generation."""
    try:
        meta = index_store.read_meta(index_store.Reader(conn))
    except (sqlite3.DatabaseError, CorpusbotError):
        meta = {}
    generation = meta.get("generation")
    if meta.get("schema_version") is None or not isinstance(generation, int):
        raise SnapshotError(f"{where} holds no corpusbot index; {consequence}.")
    if meta["schema_version"] != index_store.SCHEMA_VERSION:
        raise SnapshotError(
            f"{where} holds an index of schema version {meta['schema_version']}; this corpusbot reads version "
            f"{index_store.SCHEMA_VERSION}; {consequence}. Run the same corpusbot version where it is built and served."
        )
    return generation


def _strip_host_state(conn: sqlite3.Connection) -> bool:
    """Drop the ``bot_`` tables (the bot's old state, Slack user ids) and our snapshot marks; whether any went."""
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'bot\\_%' ESCAPE '\\'"
        )
    ]
    with conn:
        for table in tables:
            conn.execute(f'DROP TABLE "{table}"')
        conn.execute("DELETE FROM meta WHERE key IN (?, ?)", (META_SHA256, META_NAME))
    return bool(tables)


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def rollback(destination: str) -> PublishResult:
    """Point ``current.json`` at ``destination`` back to the snapshot it replaced."""
    started = time.perf_counter()
    target = open_store(destination, write=True)
    current = read_pointer(target)
    if current.previous is None:
        raise SnapshotError(
            f"{current.snapshot} at {display(destination)} has no previous snapshot to roll back to; publish "
            f"the index you want instead, with `corpusbot publish {display(destination)} --db FILE`."
        )
    manifest = _store_call(target, "read", lambda: target.read(current.previous + MANIFEST_SUFFIX))
    if manifest is None:
        raise SnapshotError(
            f"The previous snapshot {current.previous} has no manifest at {display(destination)} "
            f"({current.previous}{MANIFEST_SUFFIX}); publish the index you want instead."
        )
    earlier = Pointer.from_json(manifest, target.where(current.previous + MANIFEST_SUFFIX))
    if earlier.snapshot != current.previous:
        raise SnapshotError(f"The manifest of {current.previous} names {earlier.snapshot}; publish again instead.")
    size = _store_call(target, "read", lambda: target.size(earlier.snapshot))
    if size is None:
        raise SnapshotError(
            f"The previous snapshot {earlier.snapshot} is gone from {display(destination)}; publish the index "
            "you want instead."
        )
    if size != earlier.bytes:
        raise SnapshotError(
            f"The previous snapshot {earlier.snapshot} is {size} bytes, its manifest says {earlier.bytes}; "
            "publish the index you want instead."
        )
    pointer = Pointer(
        snapshot=earlier.snapshot,
        sha256=earlier.sha256,
        bytes=earlier.bytes,
        generation=earlier.generation,
        published_at=earlier.published_at,
        previous=earlier.previous,
        rolled_back_from=current.snapshot,
    )
    _store_call(target, "write to", lambda: target.write(POINTER, _pointer_bytes(pointer)))
    return PublishResult(display(destination), pointer, True, False, time.perf_counter() - started)


# -- installing (the serve side) -----------------------------------------------------------------


@dataclass(frozen=True)
class InstallResult:
    pointer: Pointer
    installed: bool  # False: the local database held this snapshot already
    generation: int | None  # the local index generation after installing
    seconds: float


def installed_sha256(db_path: str | os.PathLike[str]) -> str | None:
    """The SHA-256 of the snapshot the local database holds, None when none (or no database)."""
    path = Path(db_path)
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_SHA256,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    try:
        value = json.loads(row[0]) if row else None
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, str) else None


def install_current(source: str, db_path: str | os.PathLike[str]) -> InstallResult:
    """Install the snapshot ``source``'s pointer names into ``db_path``, unless the database holds it already.

    Raises ``SnapshotError`` (the source cannot be read, the snapshot is refused) with the live database as
    it was; what may have been downloaded is removed.
    """
    started = time.perf_counter()
    store = open_store(source)
    pointer = read_pointer(store)
    db = Path(db_path)
    if installed_sha256(db) == pointer.sha256:
        return InstallResult(pointer, False, None, time.perf_counter() - started)
    if not db.parent.is_dir():
        raise SnapshotError(f"Cannot install into {db}: folder {db.parent} does not exist.")
    remove_stale_downloads(db)
    partial = db.parent / f".{db.name}.snapshot-{os.getpid()}.partial"
    try:
        _fetch(store, pointer, partial)
        _mark(partial, pointer, store)
        result = restore_database(partial, db)
    finally:
        for leftover in (partial, Path(f"{partial}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return InstallResult(pointer, True, result.generation, time.perf_counter() - started)


def _fetch(store: Store, pointer: Pointer, partial: Path) -> None:
    """Download the snapshot to ``partial`` and check its size and SHA-256 against the pointer."""
    where = store.where(pointer.snapshot)
    try:
        size = store.size(pointer.snapshot)
        if size is None and not store.protocols & READ_ONLY_SCHEMES:
            raise SnapshotError(f"Refused snapshot {where}: it is not there, though {POINTER} names it.")
        if size is not None and size != pointer.bytes:
            raise SnapshotError(_wrong_size(where, size, pointer))
        fd = os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        os.close(fd)
        store.download(pointer.snapshot, partial)
    except SnapshotError:
        raise
    except FileNotFoundError:
        raise SnapshotError(f"Refused snapshot {where}: it is not there, though {POINTER} names it.") from None
    except Exception as error:  # the backend's own errors (aiohttp's, botocore's), or the local disk's
        raise SnapshotError(f"Cannot download {where} ({_describe(error)}).") from None
    digest, size = _sha256(partial)
    if size != pointer.bytes:
        raise SnapshotError(_wrong_size(where, size, pointer))
    if digest != pointer.sha256:
        raise SnapshotError(
            f"Refused snapshot {where}: its SHA-256 is {digest[:16]}…, {POINTER} says {pointer.sha256[:16]}… "
            "(damaged in storage or in transit)."
        )


def _wrong_size(where: str, size: int, pointer: Pointer) -> str:
    return (
        f"Refused snapshot {where}: {size} bytes, {POINTER} says {pointer.bytes} (truncated, or not the file "
        "that was published)."
    )


def _mark(partial: Path, pointer: Pointer, store: Store) -> None:
    """Check the downloaded snapshot as an index, and record in it which snapshot it is."""
    where = store.where(pointer.snapshot)
    try:
        conn = sqlite3.connect(partial)
    except sqlite3.Error as error:
        raise SnapshotError(f"Refused snapshot {where}: {error}.") from None
    try:
        verdict = _quick_check(conn)
        if verdict != "ok":
            raise SnapshotError(f"Refused snapshot {where}: it fails SQLite's quick_check ({verdict}).")
        _check_index(conn, f"Snapshot {where}", "it was refused")
        with conn:
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(META_SHA256, json.dumps(pointer.sha256)), (META_NAME, json.dumps(pointer.snapshot))],
            )
    except sqlite3.DatabaseError as error:
        raise SnapshotError(f"Refused snapshot {where}: {error}.") from None
    finally:
        conn.close()


def remove_stale_downloads(db_path: str | os.PathLike[str]) -> None:
    """Remove snapshot downloads next to the database left by processes that are gone (killed mid-download)."""
    db = Path(db_path)
    for path in db.parent.glob(f".{db.name}.snapshot-*.partial*"):
        match = re.fullmatch(rf"\.{re.escape(db.name)}\.snapshot-(\d+)\.partial(-journal)?", path.name)
        if match is None or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
