"""``corpusbot serve`` (the Slack bot) and ``corpusbot feedback`` (what users said about answers)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import signal
from collections.abc import Iterator
from dataclasses import replace
from urllib.error import URLError

import click
from slack_bolt.error import BoltError

from index import store

from .. import config, logsafe
from ..state import read_feedback

TOKEN_ADVICE = (
    "Copy the Bot User OAuth Token (xoxb-…) again from OAuth & Permissions; reinstall the app if it was revoked."
)


def register(cli: click.Group) -> None:
    from ..cli import db_option, json_option

    cli.add_command(db_option(serve_command()))
    cli.add_command(db_option(json_option(feedback_command())))


def serve_command() -> click.Command:
    @click.command("serve")
    @click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True, help="HTTP mode port.")
    @click.option("--host", default="127.0.0.1", show_default=True, help="HTTP mode address (0.0.0.0: all).")
    @click.option(
        "--log-format",
        type=click.Choice(logsafe.LOG_FORMATS),
        default="text",
        show_default=True,
        help="Readable text, or one JSON object per line (for log collectors).",
    )
    def serve(port: int, host: str, log_format: str, db_path: str) -> None:
        """Run the Slack bot.

        Socket Mode when SLACK_APP_TOKEN (xapp-…) is set: no public URL needed.
        Otherwise HTTP mode: Slack's requests at http://HOST:PORT/slack/events
        (checked with SLACK_SIGNING_SECRET), GET /healthz, GET /readyz and
        GET /metrics (Prometheus). SLACK_BOT_TOKEN (xoxb-…) is always needed;
        CORPUSBOT_LOG_LEVEL sets the log level (default INFO). See .env.example.

        Example: corpusbot serve --port 3000
        """
        from ..app import LISTENER_THREADS, build_app
        from ..cli import open_service
        from ..requestctx import ContextThreadPoolExecutor
        from ..runtime import make_runtime
        from ..server import SlackWSGI, serve_http, socket_mode_handler

        settings = replace(config.settings_from_env(), db_path=db_path)
        config.check_slack(settings)
        logsafe.configure(
            config.log_level(),
            secrets=(settings.bot_token, settings.app_token, settings.signing_secret),
            fmt=log_format,
        )
        service = open_service(db_path)
        runtime = make_runtime(settings, service)
        executor = ContextThreadPoolExecutor(max_workers=LISTENER_THREADS)
        try:
            app = build_app(settings, service, runtime=runtime, executor=executor)
        except BoltError as error:
            code = re.search(r"'error': '([a-z_]+)'", str(error))
            raise click.ClickException(
                f"Slack rejected SLACK_BOT_TOKEN ({code.group(1) if code else 'auth.test failed'}). {TOKEN_ADVICE}"
            ) from None
        except (URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise click.ClickException(
                f"Cannot reach the Slack API at {settings.api_url} ({reason}). Check the network, or SLACK_API_URL."
            ) from None
        try:
            with _stop_on_signals():
                if settings.socket_mode:
                    logging.getLogger("corpusbot").info("Connecting to Slack in Socket Mode (Ctrl-C stops)")
                    socket_mode_handler(app, settings, runtime.metrics).start()
                else:
                    assert settings.signing_secret is not None  # check_slack made sure
                    serve_http(SlackWSGI(app, runtime, settings.signing_secret), host=host, port=port)
        except KeyboardInterrupt:
            logging.getLogger("corpusbot").info("Stopping (interrupted)")
        finally:
            # Replies not started yet are dropped; Slack retries unanswered events.
            executor.shutdown(wait=False, cancel_futures=True)

    return serve


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


def feedback_command() -> click.Command:
    @click.command("feedback")
    @click.option("--limit", type=click.IntRange(1), default=None, help="Only the newest N.")
    def feedback(limit: int | None, db_path: str, as_json: bool) -> None:
        """List the Helpful / Not helpful feedback given in Slack, newest first.

        Each entry: when, who (Slack user ID), the verdict, the question and
        the passages shown (article id ¶n).

        Example: corpusbot feedback --json
        """
        db = store.connect(db_path)
        try:
            records = read_feedback(db, limit)
        finally:
            db.conn.close()
        if as_json:
            click.echo(json.dumps([record.to_json() for record in records]))
            return
        if not records:
            click.echo("No feedback yet.")
            return
        helpful = sum(1 for record in records if record.verdict == "helpful")
        click.echo(f"{len(records)} feedback: {helpful} helpful, {len(records) - helpful} not helpful")
        for record in records:
            verdict = "helpful    " if record.verdict == "helpful" else "not helpful"
            click.echo(f"{record.created_at}  {record.user_id}  {verdict}  {record.question}")
            if record.passages:
                click.echo("    shown: " + "; ".join(record.passages))

    return feedback
