"""Event ids the workers of one ``serve --workers N`` saw lately, in memory they all share.

The ``bot_seen_events`` table of the bot's state database already keeps a
retried event from being answered twice by any process. But while that
database is busy (a stuck worker holding its write lock, say), a worker cannot
record an id there and remembers it in its own memory only, so a retry that
reaches another worker in that window would be answered again. This table,
made by the parent before the fork, closes that window: each worker checks and
records an id here too.

It is a fixed-size open-addressing table of 64-bit hashes of event ids with
the time each was seen; a full neighbourhood overwrites its oldest entry (the
database still remembers it, unless it was busy at the time).

The table is locked with a POSIX record lock on a file made before the fork
(``lockf``), which the kernel releases when its holder dies: a worker killed
while holding it (the supervisor kills stuck workers) cannot leave it locked
for ever, as a semaphore would. A worker that stops while holding it (SIGSTOP,
swapped out) makes the others wait at most ``LOCK_TIMEOUT_SECONDS``; they then
answer "not seen here" and leave the table alone for ``SKIP_SECONDS``, so the
acknowledgements never wait for a stuck worker.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import tempfile
import threading
import time
from collections.abc import Iterator

SLOTS = 16_384  # twice the ids of the busiest hour a workspace bot sees, roughly
PROBES = 16  # slots looked at from an id's home slot
LOCK_TIMEOUT_SECONDS = 0.05  # the lock is held for microseconds; longer means its holder is stuck
SKIP_SECONDS = 1.0  # after a lock timeout this process does without the table for this long


class SharedEvents:
    """A table of recently seen event ids in anonymous shared memory; safe across forked processes and threads."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots = slots
        self._memory = mmap.mmap(-1, 16 * slots)  # MAP_SHARED: forked workers see each other's writes
        self._cells = memoryview(self._memory).cast("Q")  # per slot: hash (0 = empty), seen at (ms since the epoch)
        self._lock_fd = _lock_file()  # its record lock locks out the other processes
        self._threads = threading.Lock()  # a record lock belongs to a whole process: its threads take turns first
        self._skip_until = 0.0  # this process's own (monotonic)

    def first_time(self, event_id: str, ttl: float, now: float | None = None) -> bool:
        """Record ``event_id``; False when a worker recorded it less than ``ttl`` seconds ago.

        True also when the table could not be locked in time (see the module): the caller's database decides.
        """
        key = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little") or 1
        now_ms = int((time.time() if now is None else now) * 1000)
        horizon = now_ms - int(ttl * 1000)
        cells, home = self._cells, key % self.slots
        with self._locked() as locked:
            if not locked:
                return True
            target, oldest = -1, None
            for probe in range(PROBES):
                slot = (home + probe) % self.slots
                stored, seen = cells[2 * slot], cells[2 * slot + 1]
                if stored == key and seen > horizon:
                    return False
                if stored == key or stored == 0 or seen <= horizon:
                    target = slot if target < 0 else target
                elif oldest is None or seen < cells[2 * oldest + 1]:
                    oldest = slot
            chosen = target if target >= 0 else oldest
            assert chosen is not None  # without a free slot, every probed slot competed for the oldest
            cells[2 * chosen], cells[2 * chosen + 1] = key, now_ms
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[bool]:
        """Hold the table (True), or give up after LOCK_TIMEOUT_SECONDS (False)."""
        started = time.monotonic()
        if started < self._skip_until or not self._threads.acquire(timeout=LOCK_TIMEOUT_SECONDS):
            yield False
            return
        try:
            while not _try_lock(self._lock_fd):
                if time.monotonic() - started >= LOCK_TIMEOUT_SECONDS:
                    self._skip_until = time.monotonic() + SKIP_SECONDS
                    break
                time.sleep(0.001)
            else:
                try:
                    yield True
                finally:
                    fcntl.lockf(self._lock_fd, fcntl.LOCK_UN, 1, 0)
                return
        finally:
            self._threads.release()
        yield False

    def close(self) -> None:
        self._cells.release()
        self._memory.close()
        os.close(self._lock_fd)


def _lock_file() -> int:
    """A file descriptor of an anonymous file (memfd, or an unlinked temporary file) to take record locks on."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("corpusbot-shared-events", os.MFD_CLOEXEC)
    handle, path = tempfile.mkstemp(prefix="corpusbot-shared-events-")
    os.unlink(path)
    return handle


def _try_lock(fd: int) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
    except OSError:  # EAGAIN or EACCES: another process holds it
        return False
    return True
