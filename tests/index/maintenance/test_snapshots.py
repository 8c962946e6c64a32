"""Index snapshots: `publish` writes an immutable, checksummed copy plus a pointer; `install_current` puts the
pointed-at snapshot into a local database, refusing anything that does not match the pointer."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
from pathlib import Path

import pytest

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.maintenance.backup import backup_database
from corpusbot.index.maintenance.check import check_database
from corpusbot.index.maintenance.snapshots import (
    POINTER,
    Pointer,
    SnapshotError,
    display,
    install_current,
    installed_sha256,
    publish_snapshot,
    read_pointer,
    remove_stale_downloads,
    rollback,
)
from tests.support import write_not_an_index

ZEBRA = (
    "Zebra crossing repainted\n\nThe zebra crossing on Main Street was repainted by the council yesterday after "
    "complaints from parents and teachers about safety near the school gates and the park entrance.\n"
)


def pointer_at(dest: Path) -> dict[str, object]:
    return json.loads((dest / POINTER).read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def generation(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
    finally:
        conn.close()


def tables(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def add_zebra(db: Path, corpus_dir: Path) -> None:
    (corpus_dir / "zebra.txt").write_text(ZEBRA, encoding="utf-8")
    index_corpus(db, [BUNDLED, str(corpus_dir)])


def test_publish_writes_a_checksummed_snapshot_its_manifest_and_the_pointer(sample_db: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(sample_db)  # the bot's old tables (Slack user ids) must not travel
    conn.execute("CREATE TABLE bot_feedback (user TEXT, verdict TEXT)")
    conn.execute("INSERT INTO bot_feedback VALUES ('U123', 'helpful')")
    conn.commit()
    conn.close()
    dest = tmp_path / "published"  # made when missing

    result = publish_snapshot(sample_db, str(dest))

    pointer = pointer_at(dest)
    name = pointer["snapshot"]
    assert isinstance(name, str)
    snapshot = dest / name
    assert sorted(path.name for path in dest.iterdir()) == sorted([POINTER, name, f"{name}.json"])  # no leftovers
    assert pointer["sha256"] == sha256(snapshot)
    assert pointer["bytes"] == snapshot.stat().st_size
    assert pointer["generation"] == generation(sample_db)
    assert name == f"index-{generation(sample_db)}-{sha256(snapshot)[:16]}.db"
    assert pointer["previous"] is None
    assert isinstance(pointer["published_at"], str) and pointer["published_at"].endswith("+00:00")
    assert json.loads((dest / f"{name}.json").read_text()) == pointer
    assert result.changed and result.uploaded and result.pointer.to_json() == pointer
    assert check_database(snapshot).ok
    conn = sqlite3.connect(snapshot)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    finally:
        conn.close()
    assert "bot_feedback" not in tables(snapshot)
    assert "bot_feedback" in tables(sample_db)  # the source is not touched


def test_publishing_the_same_index_again_changes_nothing(sample_db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "published"
    first = publish_snapshot(sample_db, f"file://{dest}")
    again = publish_snapshot(sample_db, str(dest))
    assert not again.changed and not again.uploaded
    assert again.pointer == first.pointer
    assert pointer_at(dest)["previous"] is None


def test_publish_twice_then_rollback_points_back(sample_db: Path, tmp_path: Path, corpus_dir: Path) -> None:
    dest = tmp_path / "published"
    first = publish_snapshot(sample_db, str(dest)).pointer
    add_zebra(sample_db, corpus_dir)
    second = publish_snapshot(sample_db, str(dest)).pointer
    assert second.snapshot != first.snapshot
    assert pointer_at(dest)["snapshot"] == second.snapshot
    assert pointer_at(dest)["previous"] == first.snapshot
    assert (dest / first.snapshot).exists()  # snapshots are kept: they are what a rollback goes back to

    result = rollback(str(dest))

    pointer = pointer_at(dest)
    assert pointer["snapshot"] == first.snapshot
    assert pointer["sha256"] == first.sha256 == sha256(dest / first.snapshot)
    assert pointer["bytes"] == first.bytes
    assert pointer["previous"] is None
    assert pointer["rolled_back_from"] == second.snapshot
    assert result.pointer.snapshot == first.snapshot
    with pytest.raises(SnapshotError, match="no previous snapshot to roll back to"):
        rollback(str(dest))  # the first one has none before it


def test_rollback_with_no_previous_snapshot_says_what_to_do(sample_db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "published"
    with pytest.raises(SnapshotError, match=r"No snapshot published at .*publish one with `corpusbot publish"):
        rollback(str(dest))
    publish_snapshot(sample_db, str(dest))
    before = (dest / POINTER).read_bytes()
    with pytest.raises(SnapshotError, match="no previous snapshot to roll back to; publish the index you want"):
        rollback(str(dest))
    assert (dest / POINTER).read_bytes() == before


def test_an_index_failing_quick_check_is_not_published(sample_db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    backup_database(sample_db, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(bytes(data))
    dest = tmp_path / "published"
    with pytest.raises(SnapshotError, match=r"fails SQLite's quick_check \(.*\); nothing was published") as raised:
        publish_snapshot(damaged, str(dest))
    assert "\n" not in str(raised.value)  # one line
    assert not (dest / POINTER).exists()
    assert [path.name for path in dest.iterdir()] == []  # the partial copy is gone too


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"just some text\n" * 500, "not a usable SQLite database"), (None, "holds no corpusbot index")],
)
def test_what_is_not_a_corpusbot_index_is_not_published(tmp_path: Path, content: bytes | None, message: str) -> None:
    other = write_not_an_index(tmp_path / "other.db", content)
    dest = tmp_path / "published"
    with pytest.raises(SnapshotError, match=message):
        publish_snapshot(other, str(dest))
    assert not (dest / POINTER).exists()


def test_https_is_read_only_and_a_missing_cloud_backend_names_the_extra(sample_db: Path) -> None:
    with pytest.raises(SnapshotError, match=r"read-only .*publish to a folder"):
        publish_snapshot(sample_db, "https://example.invalid/corpusbot")
    if importlib.util.find_spec("s3fs") is None:
        with pytest.raises(SnapshotError, match=r"s3fs.*pip install 'corpusbot\[cloud\]'"):
            publish_snapshot(sample_db, "s3://bucket/corpusbot")
    if importlib.util.find_spec("gcsfs") is None:
        with pytest.raises(SnapshotError, match=r"gcsfs.*pip install 'corpusbot\[cloud\]'"):
            read_pointer("gs://bucket/corpusbot")


def test_display_hides_credentials_in_urls() -> None:
    assert display("https://user:secret@host:8443/snap?token=abc") == "https://host:8443/snap"
    assert display("/srv/snapshots") == "/srv/snapshots"


def test_a_damaged_pointer_is_reported(tmp_path: Path) -> None:
    (tmp_path / POINTER).write_text('{"snapshot": "../../etc/passwd", "sha256": "00", "bytes": 1}')
    with pytest.raises(SnapshotError, match="not a snapshot pointer"):
        read_pointer(str(tmp_path))
    good = Pointer("index-3-0123456789abcdef.db", "0123456789abcdef" * 4, 10, 3, "2025-01-01T00:00:00+00:00")
    other = Pointer("index-3-ffffffffffffffff.db", "0123456789abcdef" * 4, 10, 3, "2025-01-01T00:00:00+00:00")
    assert Pointer.from_json(json.dumps(good.to_json()).encode(), "x") == good
    with pytest.raises(SnapshotError, match="another checksum"):
        Pointer.from_json(json.dumps(other.to_json()).encode(), "x")


# -- installing ---------------------------------------------------------------------------------


def test_install_current_into_a_new_database_then_nothing_to_do(sample_db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "published"
    pointer = publish_snapshot(sample_db, str(dest)).pointer
    local = tmp_path / "host" / "corpusbot.db"
    local.parent.mkdir()

    result = install_current(str(dest), local)

    assert result.installed and installed_sha256(local) == pointer.sha256
    assert check_database(local).ok
    service = SearchService(local)
    try:
        assert service.ask("who is on the US delegation?").hits
    finally:
        service.close()
    (dest / pointer.snapshot).unlink()  # a restart finds it installed: nothing is downloaded again
    again = install_current(str(dest), local)
    assert not again.installed
    assert sorted(path.name for path in local.parent.iterdir() if path.name.startswith(".")) == []


@pytest.mark.parametrize("damage", ["flipped", "truncated", "missing"])
def test_a_snapshot_not_matching_its_pointer_is_refused_and_the_local_index_kept(
    sample_db: Path, tmp_path: Path, corpus_dir: Path, damage: str
) -> None:
    dest = tmp_path / "published"
    first = publish_snapshot(sample_db, str(dest)).pointer
    local = tmp_path / "local.db"
    install_current(str(dest), local)
    add_zebra(sample_db, corpus_dir)
    second = publish_snapshot(sample_db, str(dest)).pointer
    snapshot = dest / second.snapshot
    data = bytearray(snapshot.read_bytes())
    if damage == "flipped":
        data[len(data) // 2] ^= 0xFF
        snapshot.write_bytes(bytes(data))
        message = r"SHA-256 is [0-9a-f]{16}…, current.json says"
    elif damage == "truncated":
        snapshot.write_bytes(bytes(data[: len(data) // 2]))
        message = rf"{len(data) // 2} bytes, current.json says {len(data)} \(truncated"
    else:
        snapshot.unlink()
        message = "it is not there"
    with pytest.raises(SnapshotError, match=f"Refused snapshot .*{second.snapshot}.*{message}"):
        install_current(str(dest), local)
    assert installed_sha256(local) == first.sha256
    assert check_database(local).ok
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []  # no download left


def test_a_snapshot_that_is_no_index_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "published"
    dest.mkdir()
    other = write_not_an_index(tmp_path / "other.db", None)
    digest = sha256(other)
    name = f"index-1-{digest[:16]}.db"
    (dest / name).write_bytes(other.read_bytes())
    pointer = Pointer(name, digest, other.stat().st_size, 1, "2025-01-01T00:00:00+00:00")
    (dest / POINTER).write_text(json.dumps(pointer.to_json()))
    with pytest.raises(CorpusbotError, match="holds no corpusbot index; it was refused"):
        install_current(str(dest), tmp_path / "local.db")
    assert not (tmp_path / "local.db").exists()


def test_downloads_left_by_a_killed_process_are_removed(tmp_path: Path) -> None:
    db = tmp_path / "corpusbot.db"
    dead = tmp_path / ".corpusbot.db.snapshot-999999999.partial"  # beyond pid_max: no such process
    mine = tmp_path / f".corpusbot.db.snapshot-{os.getpid()}.partial"
    other = tmp_path / ".other.db.snapshot-999999999.partial"
    for path in (dead, Path(f"{dead}-journal"), mine, other):
        path.write_bytes(b"x")
    remove_stale_downloads(db)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([mine.name, other.name])
