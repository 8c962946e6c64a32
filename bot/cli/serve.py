"""``corpusbot serve``: the Slack bot, in one process (waitress) or as gunicorn workers (``--workers N``)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple
from urllib.error import URLError

import click
from slack_bolt.error import BoltError

from corpusbot.bot import config
from corpusbot.bot.cli.options import db_option, state_db_option
from corpusbot.bot.cli.service import open_service
from corpusbot.bot.ops import logsafe

if TYPE_CHECKING:
    from slack_bolt import App

    from corpusbot.bot.serving.index_follower import IndexFollower
    from corpusbot.bot.serving.server import SlackWSGI
    from corpusbot.bot.slack.pending import Sweeper
    from corpusbot.bot.slack.runtime import Runtime
    from corpusbot.bot.slack.watches import WatchPoster
    from corpusbot.bot.state import BotState
    from corpusbot.index import SearchService

log = logging.getLogger("corpusbot")

FIRST_SNAPSHOT_TIMEOUT = 300.0  # seconds serve waits for the first snapshot when it has no index yet

TOKEN_ADVICE = (
    "Copy the Bot User OAuth Token (xoxb-…) again from OAuth & Permissions; reinstall the app if it was revoked."
)


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True, help="HTTP mode port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP mode address (0.0.0.0: all).")
@click.option(
    "--workers",
    type=click.IntRange(1, config.MAX_WORKERS),
    default=None,
    help="HTTP mode processes answering in parallel (default: CORPUSBOT_WORKERS, else 1).",
)
@click.option(
    "--worker-class",
    type=click.Choice(config.WORKER_CLASSES),
    default=None,
    help="With --workers: gunicorn's sync workers (fastest; put a buffering proxy in front for slow clients) or "
    "waitress in each worker (slow clients cost a connection, not a worker). Default: CORPUSBOT_WORKER_CLASS, "
    "else sync.",
)
@click.option(
    "--log-format",
    type=click.Choice(logsafe.LOG_FORMATS),
    default="text",
    show_default=True,
    help="Readable text, or one JSON object per line (for log collectors).",
)
@click.option(
    "--index-from",
    "index_from",
    metavar="SOURCE",
    default=None,
    help="Follow the snapshots `corpusbot publish` writes to SOURCE (a folder, file://, s3://, gs:// or https://; "
    "default CORPUSBOT_INDEX_FROM): installed at start, checked every CORPUSBOT_INDEX_POLL seconds (default "
    "30), swapped in without a restart.",
)
@db_option
@state_db_option
def serve(
    port: int,
    host: str,
    workers: int | None,
    worker_class: str | None,
    log_format: str,
    index_from: str | None,
    db_path: str,
    state_db: str | None,
) -> None:
    """Run the Slack bot.

    Socket Mode when SLACK_APP_TOKEN (xapp-…) is set: no public URL needed.
    Otherwise HTTP mode: Slack's requests at http://HOST:PORT/slack/events
    (checked with SLACK_SIGNING_SECRET), GET /healthz, GET /readyz and
    GET /metrics (Prometheus). SLACK_BOT_TOKEN (xoxb-…) is always needed;
    CORPUSBOT_LOG_LEVEL sets the log level (default INFO). See .env.example.

    --workers N (HTTP mode): gunicorn runs N processes on the port, each
    with its own index connection and per-user rate limit; GET /metrics
    sums them all. A worker that dies is restarted; one that stops
    answering (no heartbeat for 10 s) is killed and replaced; SIGTERM lets
    each finish the answers it acknowledged (up to 10 s). One process
    computes one answer at a time; N up to the number of CPU cores answers
    more questions per second.

    The bot keeps the Slack events it handled and the feedback in its own
    database beside the index (corpusbot-state.db for corpusbot.db), so
    a reindex never delays it; its first start copies them over from an
    index that held them.

    --index-from SOURCE: answer from the index snapshots `corpusbot publish`
    writes to SOURCE instead of indexing here (build once, serve on every host).

    Example: corpusbot serve --port 3000 --workers 2
    """
    base = config.settings_from_env()
    settings = replace(base, db_path=db_path, state_db_path=state_db, index_from=index_from or base.index_from)
    config.check_slack(settings)
    count = workers if workers is not None else config.serve_workers()
    worker_class = worker_class or config.serve_worker_class()
    logsafe.configure(
        config.log_level(),
        secrets=(
            settings.bot_token,
            settings.app_token,
            settings.signing_secret,
            settings.state_url.password if settings.state_url else None,
        ),
        fmt=log_format,
    )
    if count > 1 and settings.socket_mode:
        log.warning("Socket Mode runs in one process; ignoring %d workers", count)
        count = 1
    if count == 1:
        _serve_in_this_process(settings, host, port)
        return
    if settings.index_from:
        from corpusbot.bot.serving.index_follower import install_first_snapshot

        install_first_snapshot(settings.index_from, settings.db_path, log_format=log_format)  # no thread before fork
    _serve_workers(settings, host, port, count, worker_class)


class _Started(NamedTuple):
    app: App
    runtime: Runtime
    executor: Executor


def _start(settings: config.Settings) -> _Started:
    """The index, the bot's state and the bolt app (which checks the token with Slack) for this process."""
    from corpusbot.bot.ops.requestctx import ContextThreadPoolExecutor
    from corpusbot.bot.slack.app import LISTENER_THREADS, build_app
    from corpusbot.bot.slack.runtime import make_runtime

    service = open_service(settings.db_path)
    try:
        state = _open_state(settings, service)
    except BaseException:
        service.close()
        raise
    runtime = make_runtime(settings, service, state=state)
    executor = ContextThreadPoolExecutor(max_workers=LISTENER_THREADS)
    try:
        app = build_app(settings, service, runtime=runtime, executor=executor)
    except BoltError as error:
        _close(runtime)
        code = re.search(r"'error': '([a-z_]+)'", str(error))
        raise click.ClickException(
            f"Slack rejected SLACK_BOT_TOKEN ({code.group(1) if code else 'auth.test failed'}). {TOKEN_ADVICE}"
        ) from None
    except (URLError, OSError) as error:
        _close(runtime)
        reason = getattr(error, "reason", error)
        raise click.ClickException(
            f"Cannot reach the Slack API at {settings.api_url} ({reason}). Check the network, or SLACK_API_URL."
        ) from None
    return _Started(app, runtime, executor)


def _open_state(settings: config.Settings, service: SearchService) -> BotState:
    """The bot's state (seen events, feedback) in its own database, or in PostgreSQL with ``CORPUSBOT_STATE_URL``."""
    from corpusbot.bot.state import BotState

    return BotState(service.db_path, state_db=settings.state_db_path, url=settings.state_url)


def _close(runtime: Runtime) -> None:
    runtime.state.close()
    runtime.service.close()


def _serve_in_this_process(settings: config.Settings, host: str, port: int) -> None:
    from corpusbot.bot.serving.server import SlackWSGI, serve_http, socket_mode_handler

    follower = _follow(settings, first_timeout=FIRST_SNAPSHOT_TIMEOUT)  # before open_service indexes the sample
    try:
        app, runtime, executor = _start(settings)
    except BaseException:
        if follower is not None:
            follower.stop(timeout=5)
        raise
    sweeper = _sweep(app, runtime)
    poster = _post_watches(app, runtime)
    try:
        with _stop_on_signals():
            if settings.socket_mode:
                log.info("Connecting to Slack in Socket Mode (Ctrl-C stops)")
                socket_mode_handler(app, settings, runtime.metrics).start()
            else:
                assert settings.signing_secret is not None  # check_slack made sure
                try:
                    serve_http(SlackWSGI(app, runtime, settings.signing_secret), host=host, port=port)
                except OSError as error:
                    raise click.ClickException(_cannot_listen(host, port, error)) from None
    except KeyboardInterrupt:
        log.info("Stopping (interrupted)")
    finally:
        # Answers in progress finish (the pool's threads are joined at exit); queued ones are dropped, and as
        # Slack already has their ack it will not retry them (only possible with more than the pool in flight).
        if sweeper is not None:
            sweeper.stop()
        poster.stop()
        executor.shutdown(wait=False, cancel_futures=True)
        if follower is not None:
            follower.stop(timeout=5)


def _serve_workers(settings: config.Settings, host: str, port: int, count: int, worker_class: str) -> None:
    """Bind the port, check everything once here, then run ``count`` gunicorn workers until stopped.

    gunicorn ends with ``SystemExit``: status 0 when stopped by a signal, 1 after a crash loop, 3 when a worker
    could not start. The workers, forked inside it, leave through the same ``SystemExit``; only this process
    removes the metrics folder.
    """
    from corpusbot.bot.serving import workers

    try:
        listener = workers.bind(host, port)
    except OSError as error:
        raise click.ClickException(_cannot_listen(host, port, error)) from None
    master = os.getpid()
    try:
        metrics_dir = tempfile.mkdtemp(prefix="corpusbot-metrics-")
    except OSError as error:
        listener.close()
        raise click.ClickException(
            f"Cannot make a folder for the workers' metrics ({error}). Set TMPDIR to a writable folder."
        ) from None
    try:
        workers.count_metrics_in(metrics_dir)  # before anything imports prometheus_client (_start does)
        from corpusbot.bot.serving.server import EVENTS_PATH

        # Fail here, once and cleanly, on a bad token or database; nothing of it may cross the fork.
        started = _start(settings)
        started.executor.shutdown(wait=False)
        _close(started.runtime)
        del started
        log.info(
            "corpusbot listening on http://%s:%s%s (HTTP mode, %d workers, %s)",
            host,
            port,
            EVENTS_PATH,
            count,
            worker_class,
        )
        application = workers.WorkerApplication(
            listener.fileno(),
            count,
            functools.partial(_worker, settings),
            worker_class=worker_class,
            metrics_dir=metrics_dir,
        )
        listener.detach()  # gunicorn closes the descriptor itself
        application.run()
    finally:
        if os.getpid() == master:
            listener.close()  # when gunicorn never took it
            shutil.rmtree(metrics_dir, ignore_errors=True)


@dataclass
class _WorkerServices:
    """One gunicorn worker's index, state, app and threads (made after the fork)."""

    wsgi: SlackWSGI
    executor: Executor
    follower: IndexFollower | None
    sweeper: Sweeper | None
    poster: WatchPoster | None = None

    def wait_idle(self, timeout: float) -> bool:
        return self.wsgi.runtime.in_progress.wait_idle(timeout)

    def close(self, timeout: float) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
        if self.poster is not None:
            self.poster.stop()
        if not self.wait_idle(timeout):
            log.warning("Worker %d stopping with answers still in progress after %.0f s", os.getpid(), timeout)
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.follower is not None:
            self.follower.stop(timeout=5)
        _close(self.wsgi.runtime)


def _worker(settings: config.Settings) -> _WorkerServices:
    """One worker process: its own index, state and app (opened after the fork); exit status 3 when it cannot."""
    from corpusbot.bot.serving.server import SlackWSGI

    assert settings.signing_secret is not None  # check_slack made sure
    try:
        app, runtime, executor = _start(settings)
    except click.ClickException as error:
        log.error("Worker could not start: %s", error.format_message())
        raise SystemExit(3) from None  # gunicorn's "worker failed to boot": it stops the server
    follower = _follow(settings, first_timeout=None)
    sweeper = _sweep(app, runtime)
    poster = _post_watches(app, runtime)
    return _WorkerServices(SlackWSGI(app, runtime, settings.signing_secret), executor, follower, sweeper, poster)


def _sweep(app: App, runtime: Runtime) -> Sweeper | None:
    """With CORPUSBOT_STATE_URL: the thread answering the questions another replica left unanswered."""
    if runtime.state.pending is None:
        return None
    from corpusbot.bot.slack.pending import Sweeper

    return Sweeper(runtime, app.client).start()


def _post_watches(app: App, runtime: Runtime) -> WatchPoster:
    """The thread that posts, after each reindex, what the channels' watches found (/ask watch)."""
    from corpusbot.bot.slack.watches import WatchPoster

    return WatchPoster(runtime, app.client).start()


def _follow(settings: config.Settings, first_timeout: float | None) -> IndexFollower | None:
    """With --index-from: the thread that installs new snapshots (one per database across workers, by lock)."""
    if not settings.index_from:
        return None
    from corpusbot.bot.serving.index_follower import IndexFollower

    follower = IndexFollower(settings.index_from, settings.db_path, interval=settings.index_poll)
    return follower.start(first_timeout=first_timeout)


def _cannot_listen(host: str, port: int, error: OSError) -> str:
    return f"Cannot listen on {host}:{port} ({error.strerror or error}). Stop what uses the port, or pick --port."


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM (systemd, docker stop) and SIGINT (Ctrl-C) stop the server.

    Installed explicitly: a process started in the background by a shell
    inherits SIGINT ignored, and Python then never raises KeyboardInterrupt.
    """

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
