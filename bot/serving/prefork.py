"""HTTP mode in several processes: the parent binds the port, forks workers that serve it, and supervises them.

One Python process answers one question at a time (the GIL), so concurrent
questions queue behind each other. ``corpusbot serve --workers N`` forks N
processes that accept connections from the one listening socket and each open
their own index and database connections after the fork. With two or more, the
workers share how busy each is on a :class:`corpusbot.bot.serving.balance.Board`
made before the fork, and the least busy accepts the next connection
(:mod:`corpusbot.bot.serving.balance`).

The parent starts no threads and holds no database connection, so forking is
safe, and it only watches its workers:

- SIGTERM or SIGINT: every worker gets SIGTERM (then SIGKILL after
  ``STOP_TIMEOUT_SECONDS``), is reaped, and the parent exits 0.
- A worker that exits by itself is logged and replaced, unless workers died
  more than ``MAX_RESTARTS`` times within ``RESTART_WINDOW_SECONDS`` (a crash
  loop): then everything stops and the parent exits 1, for systemd or docker to
  restart the whole service.
- A worker that stopped answering (SIGSTOP, hung, swapped out for good) is
  killed with SIGKILL once its heartbeat on the board is older than
  ``stuck_timeout`` (``STUCK_TIMEOUT_SECONDS``), and replaced like a worker
  that died. Workers beat from a thread, so one busy computing answers is not
  taken for stuck; until it is killed, the others stop waiting for it to be
  less busy after ``balance.STALE_SECONDS``.
- A worker whose parent is gone (killed with SIGKILL) stops by itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from corpusbot.bot.serving.balance import Board, take_seat

log = logging.getLogger("corpusbot.http")

STOP_TIMEOUT_SECONDS = 10.0
STUCK_TIMEOUT_SECONDS = 10.0  # no heartbeat for this long: the worker is killed and replaced
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
PARENT_CHECK_SECONDS = 1.0
WATCH_SECONDS = 0.5  # the supervisor looks at its workers at least this often
BACKLOG = 1024
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
WATCHED = {*STOP_SIGNALS, signal.SIGCHLD}

Worker = Callable[[socket.socket], int]  # serves the socket until stopped; returns the exit status
SignalMask = set[int | signal.Signals]  # what signal.pthread_sigmask returns
Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None  # what signal.signal returns


def bind(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6, as the address says); OSError when it is taken."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(backlog)
    except BaseException:
        listener.close()
        raise
    return listener


@dataclass
class Supervisor:
    """Forks ``count`` workers running ``worker(listener)`` and keeps them running until told to stop."""

    listener: socket.socket
    count: int
    worker: Worker
    max_restarts: int = MAX_RESTARTS
    restart_window: float = RESTART_WINDOW_SECONDS
    stop_timeout: float = STOP_TIMEOUT_SECONDS
    stuck_timeout: float = STUCK_TIMEOUT_SECONDS
    children: dict[int, int] = field(default_factory=dict)  # pid -> worker number
    _deaths: deque[float] = field(default_factory=deque)
    _killed: set[int] = field(default_factory=set)  # stuck workers killed, not reaped yet
    board: Board | None = None  # how busy each worker is and its heartbeat (two or more workers)

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (exit status 0) or a crash loop (1). Call from the main thread."""
        if threading.active_count() > 1:
            log.warning("Forking workers from a process that runs %d threads", threading.active_count())
        # The watched signals are blocked and taken with sigtimedwait: no handler runs between a fork and
        # recording its pid. Real handlers first, so that a SIGINT ignored by the shell is still delivered.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
        previous = {sig: signal.signal(sig, _ignore) for sig in WATCHED}
        self.board = Board(self.count) if self.count > 1 else None
        try:
            for number in range(self.count):
                self._spawn(number, old_mask, previous)
            return self._watch(old_mask, previous)
        finally:
            self._stop_all()
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.board is not None:
                self.board.close()
                self.board = None

    def _watch(self, old_mask: SignalMask, previous: dict[signal.Signals, Handler]) -> int:
        while True:
            info = signal.sigtimedwait(WATCHED, WATCH_SECONDS)
            if info is not None and info.si_signo in STOP_SIGNALS:
                return self._stopping(info.si_signo)
            self._kill_stuck()
            dead = self._reap()
            if not dead:
                continue
            # systemd signals every process of the service: workers stopped by the same SIGTERM as this one
            # exit 0, maybe before the parent's own signal is pending. Such an exit is not a crash.
            clean = any(os.waitstatus_to_exitcode(status) == 0 for _, status, _ in dead)
            info = signal.sigtimedwait(set(STOP_SIGNALS), 0.5 if clean else 0)
            if info is not None:
                return self._stopping(info.si_signo)
            for pid, status, number in dead:
                log.error("Worker %d (pid %d) %s; restarting it", number, pid, _describe(status))
                if self._crash_loop():
                    log.critical(
                        "Workers died %d times within %.0f s; stopping the server",
                        len(self._deaths),
                        self.restart_window,
                    )
                    return 1
                self._spawn(number, old_mask, previous)

    def _kill_stuck(self) -> None:
        """SIGKILL every worker whose heartbeat is older than ``stuck_timeout``; it is then reaped and replaced."""
        if self.board is None:
            return
        now = time.monotonic()
        for pid, number in self.children.items():
            silent = self.board.silent_for(number, now)
            if silent > self.stuck_timeout and pid not in self._killed:
                log.error(
                    "Worker %d (pid %d) sent no heartbeat for %.0f s (stopped or hung); killing it", number, pid, silent
                )
                _signal(pid, signal.SIGKILL)
                self._killed.add(pid)

    def _stopping(self, signum: int) -> int:
        log.info("Stopping %d workers (%s)", len(self.children), signal.Signals(signum).name)
        return 0

    def _crash_loop(self) -> bool:
        now = time.monotonic()
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > self.restart_window:
            self._deaths.popleft()
        return len(self._deaths) > self.max_restarts

    def _spawn(self, number: int, old_mask: SignalMask, previous: dict[signal.Signals, Handler]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()  # before the fork: a child asking later could already see its new parent (init)
        if self.board is not None:
            self.board.beat(number)  # the new worker's heartbeat thread takes over right after the fork
        pid = os.fork()
        if pid:
            self.children[pid] = number
            return
        status = 1
        try:
            for sig, handler in previous.items():
                signal.signal(sig, handler)  # the worker installs its own stop handlers
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            _stop_when_orphaned(parent)
            if self.board is not None:
                take_seat(self.board, number)
            status = self.worker(self.listener)
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
        except KeyboardInterrupt:  # a second stop signal (Ctrl-C reaches the whole group, then the parent's SIGTERM)
            status = 0
        except BaseException:
            log.exception("Worker %d failed", number)
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)  # never return into the parent's code (click, atexit handlers)

    def _reap(self) -> list[tuple[int, int, int]]:
        """Workers that exited since the last look: (pid, wait status, worker number)."""
        dead = []
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            self._killed.discard(pid)
            if pid in self.children:
                number = self.children.pop(pid)
                if self.board is not None:
                    self.board.leave(number)
                dead.append((pid, status, number))
        return dead

    def _stop_all(self) -> None:
        for pid in self.children:
            _signal(pid, signal.SIGTERM)
            _signal(pid, signal.SIGCONT)  # a stopped worker (SIGSTOP) handles the SIGTERM too
        deadline = time.monotonic() + self.stop_timeout
        while self.children and time.monotonic() < deadline:
            for pid, status, number in self._reap():
                if os.waitstatus_to_exitcode(status) != 0:
                    log.warning("Worker %d (pid %d) %s while stopping", number, pid, _describe(status))
            if self.children:
                time.sleep(0.02)
        for pid in list(self.children):
            log.warning(
                "Worker %d (pid %d) did not stop within %.0f s; killing it", self.children[pid], pid, self.stop_timeout
            )
            _signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            del self.children[pid]


def _ignore(signum: int, frame: object) -> None:
    """Stands in for SIG_IGN while the signal is blocked and taken by sigtimedwait."""


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"


def _stop_when_orphaned(parent: int) -> None:
    """A worker whose parent died (SIGKILL, OOM) sends itself SIGTERM instead of serving on unsupervised."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        log.warning("The supervising process is gone; stopping")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="corpusbot-parent-watch", daemon=True).start()
