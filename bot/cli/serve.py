"""``corpusbot serve``: the Slack bot, in one process or as supervised pre-forked workers."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import replace
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
    from corpusbot.bot.slack.pending import Sweeper
    from corpusbot.bot.slack.runtime import Runtime
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

    --workers N (HTTP mode): N processes share the port, each with its own
    index connection, metrics and per-user rate limit; a worker that dies
    is restarted. One process computes one answer at a time; N up to the
    number of CPU cores answers more questions per second. A worker that
    stops answering (no heartbeat for 10 s) is killed and replaced.

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
    status = _serve_forked(settings, host, port, count)
    if status:
        raise click.exceptions.Exit(status)


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
    """The bot's state (seen events, feedback) in its own database; with ``--workers N`` also the ids all workers saw."""
    from corpusbot.bot.serving.balance import current_seat
    from corpusbot.bot.state import BotState

    seat = current_seat()
    return BotState(
        service.db_path,
        state_db=settings.state_db_path,
        url=settings.state_url,
        shared=seat.board.events if seat is not None else None,
    )


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
        executor.shutdown(wait=False, cancel_futures=True)
        if follower is not None:
            follower.stop(timeout=5)


def _serve_forked(settings: config.Settings, host: str, port: int, count: int) -> int:
    """Bind the port, check everything once here, then fork ``count`` workers and supervise them (exit status)."""
    from corpusbot.bot.serving.prefork import Supervisor, bind
    from corpusbot.bot.serving.server import EVENTS_PATH

    try:
        listener = bind(host, port)
    except OSError as error:
        raise click.ClickException(_cannot_listen(host, port, error)) from None
    try:
        # Fail here, once and cleanly, on a bad token or database; nothing of it may cross the fork.
        started = _start(settings)
        started.executor.shutdown(wait=False)
        _close(started.runtime)
        del started
        log.info("corpusbot listening on http://%s:%s%s (HTTP mode, %d workers)", host, port, EVENTS_PATH, count)
        return Supervisor(listener, count, functools.partial(_worker, settings)).run()
    finally:
        listener.close()


def _worker(settings: config.Settings, listener: socket.socket) -> int:
    """One worker process: its own index, state and app (opened after the fork), serving ``listener``."""
    from corpusbot.bot.serving.server import SlackWSGI, serve_http

    assert settings.signing_secret is not None  # check_slack made sure
    with _stop_on_signals():
        try:
            app, runtime, executor = _start(settings)
        except click.ClickException as error:
            log.error("Worker could not start: %s", error.format_message())
            return 1
        except KeyboardInterrupt:
            return 0
        follower = _follow(settings, first_timeout=None)
        sweeper = _sweep(app, runtime)
        try:
            serve_http(SlackWSGI(app, runtime, settings.signing_secret), listener=listener)
        except KeyboardInterrupt:
            pass
        finally:
            if sweeper is not None:
                sweeper.stop()
            if follower is not None:
                follower.stop(timeout=5)
            executor.shutdown(wait=True, cancel_futures=True)
            _close(runtime)
    return 0


def _sweep(app: App, runtime: Runtime) -> Sweeper | None:
    """With CORPUSBOT_STATE_URL: the thread answering the questions another replica left unanswered."""
    if runtime.state.pending is None:
        return None
    from corpusbot.bot.slack.pending import Sweeper

    return Sweeper(runtime, app.client).start()


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
