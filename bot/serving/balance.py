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
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable
from typing import Any

from waitress import wasyncore

from corpusbot.bot.serving.shared_events import SharedEvents

ABSENT = -1  # a worker not serving (not started yet, or dead): ignored
RECHECK_SECONDS = 0.05  # the waitress loop's timeout: the longest a missed wake-up delays an accept


class Board:
    """How busy each worker is, in memory every forked worker shares, and one wake-up pipe per worker."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._memory = mmap.mmap(-1, 8 * count)  # anonymous and MAP_SHARED: the workers see each other's writes
        self.loads = memoryview(self._memory).cast("q")
        self._pipes = [os.pipe() for _ in range(count)]
        for read_end, write_end in self._pipes:
            os.set_blocking(read_end, False)
            os.set_blocking(write_end, False)
        for number in range(count):
            self.loads[number] = ABSENT
        self.events = SharedEvents()  # event ids any worker saw lately (state.events.SeenEvents checks them)

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
        self.board.loads[self.number] = 0
        for other in self._others():
            self.board.wake(other)

    def may_accept(self) -> bool:
        loads = self.board.loads
        mine = loads[self.number]
        return all(loads[other] < 0 or mine <= loads[other] for other in self._others())

    def report(self, old: int, new: int) -> None:
        """This worker's count went from ``old`` to ``new``; wake whoever may listen now but did not before."""
        loads = self.board.loads
        loads[self.number] = new
        present = [(other, loads[other]) for other in self._others() if loads[other] >= 0]
        floor = min((load for _, load in present), default=new)
        if new < old:
            if old > floor >= new:  # this worker was above another and no longer is
                self.board.wake(self.number)
            return
        least_before, least_after = min(old, floor), min(new, floor)
        for other, load in present:
            if least_before < load <= least_after:
                self.board.wake(other)

    def _others(self) -> list[int]:
        return self._siblings


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
    """Called in a forked worker before it serves: this process is worker ``number`` on ``board``."""
    global _seat
    _seat = Seat(board, number)


def current_seat() -> Seat | None:
    """This worker's seat, or None (one process, or a worker of a single-worker server)."""
    return _seat
