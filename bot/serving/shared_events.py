"""Event ids the workers of one ``serve --workers N`` saw lately, in memory they all share.

The ``bot_seen_events`` table already keeps a retried event from being
answered twice by any process. But while a reindex holds the database's write
lock, a worker cannot record an id there and remembers it in its own memory
only, so a retry that reaches another worker in that window would be answered
again. This table, made by the parent before the fork, closes that window:
each worker checks and records an id here too.

It is a fixed-size open-addressing table of 64-bit hashes of event ids with
the time each was seen; a full neighbourhood overwrites its oldest entry (the
database still remembers it, unless it was busy at the time).
"""

from __future__ import annotations

import hashlib
import mmap
import multiprocessing
import time

SLOTS = 16_384  # twice the ids of the busiest hour a workspace bot sees, roughly
PROBES = 16  # slots looked at from an id's home slot


class SharedEvents:
    """A table of recently seen event ids in anonymous shared memory; safe across forked processes and threads."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots = slots
        self._memory = mmap.mmap(-1, 16 * slots)  # MAP_SHARED: forked workers see each other's writes
        self._cells = memoryview(self._memory).cast("Q")  # per slot: hash (0 = empty), seen at (ms since the epoch)
        self._lock = multiprocessing.Lock()  # a semaphore in shared memory: also locks out the other processes

    def first_time(self, event_id: str, ttl: float, now: float | None = None) -> bool:
        """Record ``event_id``; False when a worker recorded it less than ``ttl`` seconds ago."""
        key = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little") or 1
        now_ms = int((time.time() if now is None else now) * 1000)
        horizon = now_ms - int(ttl * 1000)
        cells, home = self._cells, key % self.slots
        with self._lock:
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

    def close(self) -> None:
        self._cells.release()
        self._memory.close()
