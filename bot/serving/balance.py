"""Sharing connections among ``serve --workers N`` processes: the least busy worker accepts the next one.

Every worker accepts from the one listening socket. Left alone, the kernel
wakes them all and the first to call ``accept()`` wins, busy or not, so one
worker could hold most of the questions in flight while another sat idle.
Here each worker publishes how many requests it is working on (being checked
and acknowledged, or answered after the ack:
:class:`corpusbot.bot.slack.runtime.InProgress`) on a :class:`Board`, a few
bytes of memory shared by the workers (made before the fork), and its waitress
server listens for new connections only while no other worker has fewer.
Workers with equal counts all listen, so some worker always accepts: a
connection never waits for a worker to become idle, and acks stay immediate.

A worker stops listening until its own count falls or another's rises, so each
change that lets a worker listen again wakes it through its pipe on the board.
A missed wake-up (counts read while another worker writes) is caught by the
server loop's timeout, ``RECHECK_SECONDS``.

A worker that stopped (SIGSTOP, swapped out, hung) must not hold the others
back: every worker's heartbeat thread writes the time on the board each
``HEARTBEAT_SECONDS`` (a thread, so a worker busy computing answers still
beats), and a worker whose beat is older than ``STALE_SECONDS`` is left out
when the others decide whether to listen. The supervisor kills and replaces a
worker whose beat is older than its ``stuck_timeout``
(:mod:`corpusbot.bot.serving.prefork`).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from waitress import wasyncore

from corpusbot.bot.serving.shared_events import SharedEvents

ABSENT = -1  # a worker not serving (not started yet, or dead): ignored
RECHECK_SECONDS = 0.05  # the waitress loop's timeout: the longest a missed wake-up delays an accept
HEARTBEAT_SECONDS = 0.25  # how often each worker writes the time on the board
STALE_SECONDS = 1.0  # a worker that has not beaten for this long is not waited for (its count is ignored)


class Board:
    """How busy each worker is and when it last beat, in memory every forked worker shares; a wake-up pipe each."""

    def __init__(self, count: int, stale_after: float = STALE_SECONDS) -> None:
        self.count = count
        self.stale_after = stale_after
        self._memory = mmap.mmap(-1, 16 * count)  # anonymous and MAP_SHARED: the workers see each other's writes
        self.loads = memoryview(self._memory)[: 8 * count].cast("q")
        self.beats = memoryview(self._memory)[8 * count :].cast("d")  # time.monotonic() (one clock for all processes)
        self._pipes = [os.pipe() for _ in range(count)]
        for read_end, write_end in self._pipes:
            os.set_blocking(read_end, False)
            os.set_blocking(write_end, False)
        for number in range(count):
            self.loads[number] = ABSENT
        self.events = SharedEvents()  # event ids any worker saw lately (state.events.SeenEvents checks them)

    def beat(self, number: int) -> None:
        """Worker ``number`` is alive now."""
        self.beats[number] = time.monotonic()

    def silent_for(self, number: int, now: float | None = None) -> float:
        """Seconds since worker ``number`` last beat."""
        return (time.monotonic() if now is None else now) - self.beats[number]

    def wake_fd(self, number: int) -> int:
        return self._pipes[number][0]

    def wake(self, number: int) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe: that worker has wake-ups waiting already
            os.write(self._pipes[number][1], b"\0")

    def leave(self, number: int) -> None:
        """Worker ``number`` stopped (the parent saw it exit): the others stop waiting for it to be less busy."""
        self.loads[number] = ABSENT
        for other in range(self.count):
            self.wake(other)

    def close(self) -> None:
        self.events.close()
        self.loads.release()
        self.beats.release()
        self._memory.close()
        for read_end, write_end in self._pipes:
            os.close(read_end)
            os.close(write_end)


class Seat:
    """One worker's place on the board: publishes its count and says whether it may accept."""

    def __init__(self, board: Board, number: int) -> None:
        self.board = board
        self.number = number
        self._siblings = [other for other in range(board.count) if other != number]

    def join(self) -> None:
        """Start serving with nothing in progress; the others re-check (one of them may have waited for this)."""
        self.board.beat(self.number)
        self.board.loads[self.number] = 0
        for other in self._siblings:
            self.board.wake(other)

    def may_accept(self) -> bool:
        """Whether no other worker that is serving, and alive, has fewer requests in progress."""
        mine = self.board.loads[self.number]
        return all(mine <= load for _, load in self._serving())

    def report(self, old: int, new: int) -> None:
        """This worker's count went from ``old`` to ``new``; wake whoever may listen now but did not before."""
        self.board.beat(self.number)
        self.board.loads[self.number] = new
        present = self._serving()
        floor = min((load for _, load in present), default=new)
        if new < old:
            if old > floor >= new:  # this worker was above another and no longer is
                self.board.wake(self.number)
            return
        least_before, least_after = min(old, floor), min(new, floor)
        for other, load in present:
            if least_before < load <= least_after:
                self.board.wake(other)

    def start_heartbeat(self, interval: float = HEARTBEAT_SECONDS) -> None:
        """Beat from a thread of this worker until the process ends."""

        def beat() -> None:
            while True:
                try:
                    self.board.beat(self.number)
                except ValueError:  # the board was closed (its memory released): nothing left to beat for
                    return
                time.sleep(interval)

        self.board.beat(self.number)
        threading.Thread(target=beat, name="corpusbot-heartbeat", daemon=True).start()

    def _serving(self) -> list[tuple[int, int]]:
        """(number, count) of the other workers that serve and beat lately: the ones worth waiting for."""
        board, now = self.board, time.monotonic()
        serving = []
        for other in self._siblings:
            load = board.loads[other]
            if load >= 0 and now - board.beats[other] < board.stale_after:
                serving.append((other, load))
        return serving


class _WakeUp(wasyncore.file_dispatcher):
    """Reads the wake-up bytes of this worker's pipe; being woken is all it is for (the loop re-checks)."""

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.recv(512)


def share_connections(server: Any, socket_map: dict[int, Any], seat: Seat) -> None:
    """Make the waitress ``server`` (created with ``map=socket_map``) accept only while ``seat`` is least busy."""
    accepting: Callable[[], bool] = server.readable  # waitress's own check (connection limit, maintenance) first

    def readable() -> bool:
        return accepting() and seat.may_accept()

    server.readable = readable
    server.adj.asyncore_loop_timeout = RECHECK_SECONDS  # read by server.run(); the setting itself takes whole seconds
    _WakeUp(seat.board.wake_fd(seat.number), socket_map)
    seat.join()


_seat: Seat | None = None


def take_seat(board: Board, number: int) -> None:
    """Called in a forked worker before it serves: this process is worker ``number`` on ``board``; it beats from now."""
    global _seat
    _seat = Seat(board, number)
    _seat.start_heartbeat()


def current_seat() -> Seat | None:
    """This worker's seat, or None (one process, or a worker of a single-worker server)."""
    return _seat
