"""``corpusbot serve --workers N``: gunicorn runs N worker processes on one port and supervises them.

One Python process answers one question at a time (the GIL), so concurrent
questions queue behind each other; N processes answer N at once. gunicorn's
master (its ``Arbiter``, started through its documented custom-application
API, :class:`WorkerApplication`) forks the workers, replaces one that dies,
kills one that stopped sending heartbeats for ``STUCK_TIMEOUT_SECONDS``
(SIGSTOP, hung) and stops them all on a signal. Each worker builds its own
index connection, state and bolt app after the fork (``load``), and serves
:class:`corpusbot.bot.serving.server.SlackWSGI`.

Two worker classes (``serve --worker-class``, measured in benchmarks/README.md,
"gunicorn"): gunicorn's ``sync`` (the default: with the wait below, the
fastest at 8 questions in flight; ``gthread`` was slower), and
:class:`WaitressWorker`, waitress inside a gunicorn worker, for hosts where
slow clients reach the bot directly: ``sync`` reads a request's headers in
the worker itself, so a few hundred slow clients hold every worker.

What corpusbot adds to gunicorn, through its hooks:

- **busy workers do not accept** (:func:`after_answers`, ``sync``): a ``sync`` worker
  accepts the next connection only after its previous request returned, and
  corpusbot's answers run after the ack on a thread pool; so each Slack
  request returns only once the answers this worker has in progress are
  posted, or after ``BUSY_WAIT_SECONDS`` at most. The idle worker takes the
  next connection, as the hand-built least-busy board did.
- **drain on SIGTERM** (``worker_exit``): a worker told to stop finishes the
  request it is serving (gunicorn), then the answers already acknowledged
  (:meth:`WorkerServices.close`), within ``STOP_TIMEOUT_SECONDS``; after that
  the master kills it.
- **metrics of every worker** (``child_exit``): Prometheus's multiprocess mode
  (:mod:`corpusbot.bot.ops.metrics`) keeps each worker's counters in a folder
  shared by the workers; a worker that exits is marked dead there.
- **a crash loop stops the server**: workers lost (dead with no replacement
  running yet) more than ``MAX_RESTARTS`` times within
  ``RESTART_WINDOW_SECONDS`` halt the master with status 1, for systemd or
  Kubernetes to restart the whole service; a reload (SIGHUP), which starts the
  new workers before it retires the old ones, is not one.
- one log: gunicorn's lines go through corpusbot's logging (text or JSON),
  and gunicorn's own access log is off (corpusbot writes one line per request).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.workers.base import Worker

from corpusbot.bot.config import WORKER_CLASSES

log = logging.getLogger("corpusbot.http")

STOP_TIMEOUT_SECONDS = 10  # gunicorn's graceful_timeout: a stopping worker's drain, then SIGKILL
STUCK_TIMEOUT_SECONDS = 10  # gunicorn's timeout: no heartbeat for this long and the worker is killed and replaced
BUSY_WAIT_SECONDS = 0.1  # a request returns at most this long after its ack while this worker's answers run
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
BACKLOG = 1024

PROMETHEUS_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's switch, read when it is first imported

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def count_metrics_in(folder: str) -> None:
    """Make every process started from here count its Prometheus metrics in ``folder`` (multiprocess mode).

    prometheus_client chooses its mode once, when it is first imported: call this before anything imports it.
    """
    if "prometheus_client" in sys.modules and os.environ.get(PROMETHEUS_MULTIPROC_DIR) != folder:
        raise RuntimeError("count_metrics_in() must run before prometheus_client is imported")
    os.environ[PROMETHEUS_MULTIPROC_DIR] = folder


class WorkerServices(Protocol):
    """What a worker runs: the WSGI app, its answers in progress, and how to stop."""

    @property
    def wsgi(self) -> WSGIApp: ...

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no answer is in progress in this process, at most ``timeout`` seconds; whether none is."""
        ...

    def close(self, timeout: float) -> None:
        """Finish the answers already acknowledged (at most ``timeout`` seconds), then close everything."""
        ...


def bind(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6, as the address says); OSError when it is taken.

    Bound here, before gunicorn starts (it is given the descriptor), so that a taken port is one clean error.
    """
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


class PassThroughLogger(Logger):
    """gunicorn's logger, writing through corpusbot's handlers (text or JSON, its level) instead of its own.

    No access log: corpusbot writes one line per Slack request itself, with its request id.
    """

    def setup(self, cfg: Any) -> None:
        self.cfg = cfg
        self._access_log_enabled = False
        for logger in (self.error_log, self.access_log):
            logger.handlers.clear()
            logger.setLevel(logging.NOTSET)
            logger.propagate = True

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None

    def reopen_files(self) -> None:
        return None

    def close_on_exec(self) -> None:
        return None


class WaitressWorker(Worker):  # type: ignore[misc]  # gunicorn has no type hints
    """A gunicorn worker serving with waitress, which reads requests in its event loop: slow clients cost a
    connection each, not the worker (:func:`corpusbot.bot.serving.server.waitress_options`).

    Its heartbeat to gunicorn's master comes from a thread, so a worker busy computing answers is not taken for stuck;
    a stopped one (SIGSTOP, swapped out) is.
    """

    alive: bool  # gunicorn's: False once the worker was told to stop

    def run(self) -> None:
        from corpusbot.bot.serving.server import waitress_server

        server = waitress_server(self.wsgi, [listener.sock for listener in self.sockets])
        threading.Thread(target=self._beat, name="corpusbot-heartbeat", daemon=True).start()
        server.run()  # returns on KeyboardInterrupt or SystemExit, after the requests being answered (at most 5 s)

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.alive:
            self.alive = False
            raise KeyboardInterrupt  # stops waitress's loop: it stops accepting and finishes the requests it has

    def _beat(self) -> None:
        while self.alive:
            self.notify()
            if os.getppid() != self.ppid:
                log.warning("The gunicorn master is gone; stopping")
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(1.0)


@dataclass
class CrashLoop:
    """Worker deaths within ``window`` seconds; more than ``limit`` of them is a crash loop."""

    limit: int = MAX_RESTARTS
    window: float = RESTART_WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _deaths: deque[float] = field(default_factory=deque)

    def died(self) -> bool:
        """Count one death; True when that makes a crash loop."""
        now = self.clock()
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > self.window:
            self._deaths.popleft()
        return len(self._deaths) > self.limit


class WorkerApplication(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's custom application: ``count`` workers serving ``listener`` (the descriptor of a listening socket,
    which gunicorn closes when it stops), each running the app ``start()`` makes."""

    def __init__(
        self,
        listener: int,
        count: int,
        start: Callable[[], WorkerServices],
        *,
        worker_class: str = WORKER_CLASSES[0],
        metrics_dir: str | None = None,
        stop_timeout: int = STOP_TIMEOUT_SECONDS,
        stuck_timeout: int = STUCK_TIMEOUT_SECONDS,
        crash_loop: CrashLoop | None = None,
    ) -> None:
        self.listener = listener
        self.count = count
        self.start = start
        self.worker_class = worker_class
        self.metrics_dir = metrics_dir
        self.stop_timeout = stop_timeout
        self.stuck_timeout = stuck_timeout
        self.crash_loop = crash_loop or CrashLoop()
        self.services: WorkerServices | None = None  # in a worker, once loaded
        super().__init__()

    def load_config(self) -> None:
        settings = {
            "bind": [f"fd://{self.listener}"],
            "workers": self.count,
            "worker_class": WaitressWorker if self.worker_class == "waitress" else "sync",
            "timeout": self.stuck_timeout,
            "graceful_timeout": self.stop_timeout,
            "keepalive": 0,
            "logger_class": PassThroughLogger,
            "proc_name": "corpusbot",
            "control_socket_disable": True,
            "child_exit": self._child_exit,
            "worker_exit": self._worker_exit,
            "on_exit": self._on_exit,
            "worker_int": self._stop_requested,
        }
        for key, value in settings.items():
            if key in self.cfg.settings:  # settings a gunicorn release lacks are left out
                self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        """In each worker, after the fork: its own index, state and app."""
        if self.metrics_dir is not None:
            from corpusbot.bot.ops import metrics  # prometheus_client, imported after count_metrics_in()

            metrics.sum_over_processes()
        self.services = self.start()
        log.info("Worker %d serving (HTTP mode)", os.getpid())
        if self.worker_class == "waitress":  # many requests at once in each worker: no waiting for answers
            return self.services.wsgi
        return after_answers(self.services.wsgi, self.services.wait_idle)

    def _worker_exit(self, server: Any, worker: Any) -> None:
        if self.services is not None:
            self.services.close(self.stop_timeout)
            self.services = None

    def _stop_requested(self, worker: Any) -> None:
        log.info("Worker %d stopping (interrupted)", os.getpid())

    def _child_exit(self, server: Any, worker: Any) -> None:
        if self.metrics_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid, self.metrics_dir)
        stopping = not server.LISTENERS  # the arbiter closes its listeners first when it stops
        # A worker retired by a reload (SIGHUP: its replacement runs already) or by SIGTTOU leaves as many as wanted.
        lost = len(server.WORKERS) < server.num_workers
        if lost and not stopping and self.crash_loop.died():
            log.critical(
                "Workers died %d times within %.0f s; stopping the server",
                self.crash_loop.limit + 1,
                self.crash_loop.window,
            )
            server.halt(exit_status=1)

    def _on_exit(self, server: Any) -> None:
        log.info("Stopped all workers")


def after_answers(wsgi: WSGIApp, wait_idle: Callable[[float], object], busy_wait: float = BUSY_WAIT_SECONDS) -> WSGIApp:
    """``wsgi``, whose responses end (after being sent) once ``wait_idle`` says this process's answers are done.

    WSGI servers call a response's ``close()`` after its last byte is sent; a ``sync`` worker accepts its next
    connection only after that. ``wait_idle(busy_wait)`` (:meth:`corpusbot.bot.slack.runtime.InProgress.wait_idle`)
    returns when nothing is in progress, or after ``busy_wait`` seconds: a slow Slack never holds acks back longer.
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return _WaitOnClose(wsgi(environ, start_response), lambda: wait_idle(busy_wait))

    return app


class _WaitOnClose:
    """A WSGI response iterable whose ``close()`` runs ``wait`` (after the server sent the body)."""

    def __init__(self, body: Iterable[bytes], wait: Callable[[], object]) -> None:
        self.body = body
        self.wait = wait

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self.wait()
