"""`serve --index-from SOURCE`: the follower installs the published snapshot into the local database while a
search service keeps answering, from a folder and over HTTP (a real server on 127.0.0.1 serving that folder)."""

from __future__ import annotations

import functools
import http.server
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpusbot.bot.serving.index_follower import (
    BUSY,
    CURRENT,
    FAILED,
    INSTALLED,
    IndexFollower,
    install_first_snapshot,
)
from corpusbot.index import SearchService, index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.maintenance.check import check_database
from corpusbot.index.maintenance.snapshots import installed_sha256, publish_snapshot

ZEBRA = (
    "Zebra crossing repainted\n\nThe zebra crossing on Main Street was repainted by the council yesterday after "
    "complaints from parents and teachers about safety near the school gates and the park entrance.\n"
)
LOGGER = "corpusbot.snapshots"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class FolderServer:
    """A real HTTP server on 127.0.0.1 serving ``folder`` (GET and HEAD, like a static file host)."""

    def __init__(self, folder: Path) -> None:
        handler = functools.partial(QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def published(tmp_path: Path) -> Path:
    folder = tmp_path / "site" / "snapshots"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(params=["folder", "http"])
def source(request: pytest.FixtureRequest, published: Path) -> Iterator[str]:
    """SOURCE for the follower: the published folder itself, or a URL of an HTTP server serving it."""
    if request.param == "folder":
        yield str(published)
        return
    server = FolderServer(published.parent)
    try:
        yield f"{server.url}/snapshots"
    finally:
        server.close()


@pytest.fixture
def local(tmp_path: Path) -> Path:
    folder = tmp_path / "host"
    folder.mkdir()
    return folder / "corpusbot.db"


def add_zebra(db: Path, corpus_dir: Path) -> None:
    (corpus_dir / "zebra.txt").write_text(ZEBRA, encoding="utf-8")
    index_corpus(db, [BUNDLED, str(corpus_dir)])


def knows_zebra(service: SearchService) -> bool:
    return any(hit.article.title.startswith("Zebra") for hit in service.ask("zebra crossing").hits)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


def test_the_new_snapshot_is_swapped_in_while_questions_are_answered(
    sample_db: Path, corpus_dir: Path, published: Path, source: str, local: Path
) -> None:
    publish_snapshot(sample_db, str(published))
    follower = IndexFollower(source, local, interval=3600)
    follower.start(first_timeout=30)  # no local database yet: blocks until the first snapshot is in
    service = SearchService(local)
    inode = local.stat().st_ino
    try:
        assert not knows_zebra(service)
        seen: list[bool] = []
        failures: list[BaseException] = []
        stop = threading.Event()

        def keep_asking() -> None:
            while not stop.is_set():
                try:
                    seen.append(knows_zebra(service))
                except BaseException as error:
                    failures.append(error)

        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            add_zebra(sample_db, corpus_dir)
            new = publish_snapshot(sample_db, str(published)).pointer
            while len(seen) < 20:
                time.sleep(0.01)
            assert follower.poll() == INSTALLED  # one poll, same process, no restart
            answered = len(seen)
            deadline = time.monotonic() + 30
            while len(seen) < answered + 20 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop.set()
            asker.join(30)
        assert failures == []
        assert seen[0] is False and seen[-1] is True
        first_new = seen.index(True)
        assert all(seen[first_new:]), "an answer from the old index after one from the new"
        assert knows_zebra(service)
        assert installed_sha256(local) == new.sha256
        assert follower.poll() == CURRENT
        assert check_database(local).ok
        # Written into the live database through SQLite, never renamed over it (a stale -wal would be replayed).
        assert local.stat().st_ino == inode
        conn = sqlite3.connect(local)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()
    finally:
        follower.stop()
        service.close()


def test_the_polling_thread_installs_a_newer_snapshot_by_itself(
    sample_db: Path, corpus_dir: Path, published: Path, source: str, local: Path
) -> None:
    publish_snapshot(sample_db, str(published))
    follower = IndexFollower(source, local, interval=0.1).start(first_timeout=30)
    service = SearchService(local)
    try:
        assert not knows_zebra(service)
        add_zebra(sample_db, corpus_dir)
        publish_snapshot(sample_db, str(published))
        deadline = time.monotonic() + 30
        while not knows_zebra(service) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert knows_zebra(service)
    finally:
        follower.stop()
        service.close()


@pytest.mark.parametrize("damage", ["wrong checksum", "truncated"])
def test_a_damaged_snapshot_is_refused_logged_once_and_retried(
    sample_db: Path,
    corpus_dir: Path,
    published: Path,
    source: str,
    local: Path,
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    first = publish_snapshot(sample_db, str(published)).pointer
    follower = IndexFollower(source, local, interval=3600)
    assert follower.poll() == INSTALLED
    service = SearchService(local)
    try:
        add_zebra(sample_db, corpus_dir)
        second = publish_snapshot(sample_db, str(published)).pointer
        snapshot = published / second.snapshot
        good = snapshot.read_bytes()
        if damage == "wrong checksum":
            snapshot.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
        else:
            snapshot.write_bytes(good[: len(good) // 3])
        caplog.set_level(logging.DEBUG, logger=LOGGER)

        assert follower.poll() == FAILED
        assert follower.poll() == FAILED  # retried at the next poll; the same problem is not logged again

        lines = warnings(caplog)
        assert len(lines) == 1, lines
        expected = "SHA-256 is" if damage == "wrong checksum" else f"{len(good) // 3} bytes, current.json says"
        assert f"Refused snapshot {source}/{second.snapshot}" in lines[0]
        assert expected in lines[0] and "Keeping the index in use" in lines[0]
        assert installed_sha256(local) == first.sha256
        assert not knows_zebra(service) and service.ask("who is on the US delegation?").hits
        assert sorted(p.name for p in local.parent.iterdir() if "snapshot-" in p.name) == []

        snapshot.write_bytes(good)  # repaired: the next poll installs it
        assert follower.poll() == INSTALLED
        assert knows_zebra(service)
        assert any("working again" in r.getMessage() for r in caplog.records if r.name == LOGGER)
    finally:
        follower.stop()
        service.close()


def test_an_unreachable_source_is_one_log_line_and_the_bot_keeps_serving(
    sample_db: Path, published: Path, local: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publish_snapshot(sample_db, str(published))
    server = FolderServer(published)
    follower = IndexFollower(server.url, local, interval=3600)
    try:
        assert follower.poll() == INSTALLED
        server.close()  # the source goes away
        service = SearchService(local)
        try:
            caplog.set_level(logging.INFO, logger=LOGGER)
            assert follower.poll() == FAILED
            assert follower.poll() == FAILED
            lines = warnings(caplog)
            assert len(lines) == 1, lines
            assert lines[0].startswith(f"Cannot read {server.url}/current.json (")
            assert "Keeping the index in use; trying again in 3600 s." in lines[0]
            assert service.ask("who is on the US delegation?").hits
        finally:
            service.close()
    finally:
        follower.stop()


def test_a_restart_does_not_download_the_installed_snapshot_again(
    sample_db: Path, published: Path, local: Path
) -> None:
    pointer = publish_snapshot(sample_db, str(published)).pointer
    first = IndexFollower(str(published), local)
    assert first.poll() == INSTALLED
    first.stop()  # the bot stops
    (published / pointer.snapshot).unlink()  # a download would fail now
    restarted = IndexFollower(str(published), local)
    try:
        assert restarted.poll() == CURRENT
        assert restarted.installed.is_set()
    finally:
        restarted.stop()


def test_with_no_local_database_start_waits_for_the_first_snapshot_then_gives_a_clear_error(
    published: Path, local: Path
) -> None:
    follower = IndexFollower(str(published), local, interval=0.05)
    started = time.monotonic()
    with pytest.raises(CorpusbotError, match=r"No index snapshot installed from .* within 0.5 s \(No snapshot publ"):
        follower.start(first_timeout=0.5)
    assert time.monotonic() - started < 10
    assert not local.exists()


def test_with_a_local_database_start_does_not_wait(sample_db: Path, tmp_path: Path) -> None:
    follower = IndexFollower(str(tmp_path / "nothing-published"), sample_db, interval=3600)
    started = time.monotonic()
    try:
        follower.start(first_timeout=30)
        assert time.monotonic() - started < 5
    finally:
        follower.stop()


def test_one_follower_per_database_polls(sample_db: Path, published: Path, local: Path) -> None:
    publish_snapshot(sample_db, str(published))
    first, second = IndexFollower(str(published), local), IndexFollower(str(published), local)
    try:
        assert first.poll() == INSTALLED
        assert second.poll() == BUSY  # e.g. another worker process: the lock holder polls
        assert second.installed.is_set()
        first.stop()
        assert second.poll() == CURRENT  # and takes over when the first is gone
    finally:
        first.stop()
        second.stop()


def test_the_prefork_parent_installs_the_first_snapshot_in_a_child_process(
    sample_db: Path, published: Path, local: Path, tmp_path: Path
) -> None:
    with pytest.raises(CorpusbotError, match="No snapshot published"):
        install_first_snapshot(str(published), local, timeout=1)
    pointer = publish_snapshot(sample_db, str(published)).pointer
    before = threading.active_count()
    install_first_snapshot(str(published), local, timeout=60)
    assert threading.active_count() == before  # no thread here (the parent forks workers afterwards)
    assert installed_sha256(local) == pointer.sha256
    conn = sqlite3.connect(local)
    try:
        assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] > 0
    finally:
        conn.close()
    install_first_snapshot(str(tmp_path / "gone"), local, timeout=1)  # a database is there: nothing to do
