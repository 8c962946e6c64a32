"""``serve --index-from SOURCE``: keep the local index database on the snapshot SOURCE publishes.

A thread (:class:`IndexFollower`) reads SOURCE's ``current.json`` when it starts and every
``interval`` seconds after. When the pointer names a snapshot the local database does not hold yet,
:func:`corpusbot.index.maintenance.snapshots.install_current` downloads it next to the database, checks
its size, SHA-256 and that it is a sound corpusbot index, and writes it into the live database through
SQLite in one transaction (``restore_database``). The search services open on the database keep
answering from the old index until that commits and from the new one afterwards (a new generation):
no restart. A refused snapshot or an unreachable source is one log line (logger
``corpusbot.snapshots``, repeated only when the problem changes) and the index in use is kept; the
next poll tries again.

Several processes serving one database (``serve --workers N``) each run a follower; an exclusive
``flock`` on ``.<db name>.follower.lock`` beside the database elects the one that polls, and when it
dies another takes over at its next poll.

With no local database yet, :meth:`IndexFollower.start` blocks until the first snapshot is in
(``first_timeout``), so no answer is given from an empty or sample index. The pre-fork parent starts
no threads, so it installs the first one in a child process (:func:`install_first_snapshot`),
``python -m corpusbot.bot.serving.index_follower --once``.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from corpusbot.index.errors import CorpusbotError
from corpusbot.index.maintenance import snapshots

log = logging.getLogger("corpusbot.snapshots")

DEFAULT_INTERVAL = 30.0  # seconds between two reads of the pointer
FIRST_TIMEOUT = 300.0  # seconds to wait for the first snapshot when there is no local database
FIRST_RETRY = 5.0  # seconds between tries while there is no local database yet

INSTALLED = "installed"  # a new snapshot was written into the local database
CURRENT = "current"  # the local database holds the snapshot the pointer names
FAILED = "failed"  # the source could not be read or the snapshot was refused (logged)
BUSY = "busy"  # another process follows the source for this database


class IndexFollower:
    """Polls ``source`` and installs the snapshot it points at into ``db_path`` (see the module's docstring)."""

    def __init__(self, source: str, db_path: str | os.PathLike[str], *, interval: float = DEFAULT_INTERVAL) -> None:
        self.source = source
        self.db_path = Path(db_path)
        self.interval = interval
        self.installed = threading.Event()  # the local database holds the current snapshot (set once)
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file: IO[bytes] | None = None  # held open (and flocked) while this follower is the elected one
        self._poll_lock = threading.Lock()

    def poll(self) -> str:
        """Check once and install a new snapshot if there is one: INSTALLED, CURRENT, FAILED or BUSY. Never raises."""
        with self._poll_lock:
            if not self._elected():
                if snapshots.installed_sha256(self.db_path) is not None:
                    self.installed.set()  # the elected process installed one
                return BUSY
            try:
                result = snapshots.install_current(self.source, self.db_path)
            except Exception as error:  # one line and keep serving, whatever the backend raised
                self._failed(error)
                return FAILED
            if self.last_error is not None:
                log.info("Index snapshots from %s: working again", snapshots.display(self.source))
                self.last_error = None
            self.installed.set()
            if not result.installed:
                return CURRENT
            log.info(
                "Installed index snapshot %s (generation %d, %.1f MB) from %s in %.1f s; now index generation %s",
                result.pointer.snapshot,
                result.pointer.generation,
                result.pointer.bytes / 1e6,
                snapshots.display(self.source),
                result.seconds,
                result.generation,
            )
            return INSTALLED

    def _failed(self, error: Exception) -> None:
        message = str(error) if isinstance(error, CorpusbotError) else f"{type(error).__name__}: {error}"
        if message == self.last_error:
            log.debug("Index snapshots: still %s", message)
            return
        self.last_error = message
        log.warning("%s. Keeping the index in use; trying again in %.0f s.", message.rstrip("."), self.interval)

    def _elected(self) -> bool:
        """Whether this follower holds the lock that makes it the one polling for this database."""
        if self._lock_file is not None:
            return True
        lock = self.db_path.parent / f".{self.db_path.name}.follower.lock"
        try:
            handle = os.fdopen(os.open(lock, os.O_CREAT | os.O_RDWR, 0o600), "r+b")
        except OSError as error:
            self._failed(CorpusbotError(f"Cannot open {lock}: {error.strerror or error}."))
            return False
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle  # closing it (stop, or the follower garbage-collected) releases the lock
        return True

    def start(self, *, first_timeout: float | None = FIRST_TIMEOUT) -> IndexFollower:
        """Start polling in a daemon thread (now, then every ``interval`` seconds).

        With no local database yet and ``first_timeout`` given, block until the first snapshot is
        installed; after ``first_timeout`` seconds stop and raise ``CorpusbotError`` with the last problem.
        """
        waiting = not self.db_path.exists()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="corpusbot-index-follower", daemon=True)
        self._thread.start()
        if first_timeout is not None and waiting and not self.installed.wait(first_timeout):
            self.stop(timeout=1.0)
            raise CorpusbotError(_not_installed(self.source, first_timeout, self.last_error or "still downloading"))
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.poll()
                waiting_for_first = not self.installed.is_set() and not self.db_path.exists()
                self._stop.wait(min(self.interval, FIRST_RETRY) if waiting_for_first else self.interval)
        finally:
            self._release()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop polling (an install in progress finishes first, up to ``timeout`` seconds) and give up the lock."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._release()  # else the thread gives it up when its install is done

    def _release(self) -> None:
        with self._poll_lock:
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock
                self._lock_file = None


def _not_installed(source: str, timeout: float, reason: str) -> str:
    return (
        f"No index snapshot installed from {snapshots.display(source)} within {timeout:g} s ({reason.rstrip('.')}). "
        "Check that the source is reachable and that `corpusbot publish` has written to it, or unset "
        "--index-from / CORPUSBOT_INDEX_FROM."
    )


def install_first_snapshot(
    source: str, db_path: str | os.PathLike[str], *, timeout: float = FIRST_TIMEOUT, log_format: str = "text"
) -> None:
    """When there is no local database yet, install the first snapshot in a child process (no thread here).

    For the pre-fork parent, which must not start threads (fsspec's HTTP backend runs one). Raises
    ``CorpusbotError`` with the child's reason when it could not within ``timeout`` seconds.
    """
    if Path(db_path).exists():
        return
    command = [
        sys.executable,
        "-m",
        __name__,
        "--once",
        "--timeout",
        str(timeout),
        "--db",
        str(db_path),
        "--log-format",
        log_format,
        source,
    ]
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout + 30, check=False)
    except subprocess.TimeoutExpired:
        raise CorpusbotError(_not_installed(source, timeout, "timed out")) from None
    if done.returncode != 0:
        reason = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else f"exit status {done.returncode}"
        raise CorpusbotError(reason)


def main(argv: list[str] | None = None) -> int:
    """``python -m corpusbot.bot.serving.index_follower [--once] --db FILE SOURCE``: follow SOURCE in this process."""
    from corpusbot.bot import config
    from corpusbot.bot.ops import logsafe

    parser = argparse.ArgumentParser(prog="python -m corpusbot.bot.serving.index_follower")
    parser.add_argument("source")
    parser.add_argument("--db", required=True)
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL)
    parser.add_argument("--timeout", type=float, default=FIRST_TIMEOUT)
    parser.add_argument("--once", action="store_true", help="install the current snapshot if there is none, then exit")
    parser.add_argument("--log-format", default="text", choices=logsafe.LOG_FORMATS)
    args = parser.parse_args(argv)
    logsafe.configure(config.log_level(), fmt=args.log_format)
    follower = IndexFollower(args.source, args.db, interval=args.interval)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stopping.set())
    if args.once:  # no thread: poll here until the database holds a snapshot, or the time is up
        deadline = time.monotonic() + args.timeout
        try:
            while follower.poll() not in (INSTALLED, CURRENT):
                if time.monotonic() >= deadline or stopping.wait(min(FIRST_RETRY, args.interval)):
                    print(_not_installed(args.source, args.timeout, follower.last_error or "stopped"), flush=True)
                    return 1
            return 0
        finally:
            follower.stop()
    try:
        follower.start(first_timeout=args.timeout)
    except CorpusbotError as error:
        print(error, flush=True)
        return 1
    try:
        parent = os.getppid()
        while not stopping.wait(1.0) and os.getppid() == parent:  # a follower whose parent is gone stops
            pass
        return 0
    finally:
        follower.stop()


if __name__ == "__main__":
    raise SystemExit(main())
