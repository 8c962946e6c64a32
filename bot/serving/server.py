"""Running the app: HTTP mode (a WSGI app served by waitress) or Socket Mode.

HTTP mode serves Slack's requests at ``/slack/events`` plus ``GET /healthz``
(the process is up), ``GET /readyz`` (questions can be answered:
:func:`readiness`) and ``GET /metrics`` (Prometheus). Before bolt sees a
request it is checked here, so that a bad or hostile request gets a 4xx and
one warning, never a traceback or a reply: body size, UTF-8, Slack's signature
and timestamp (at most 5 minutes old), and a body of the shape of a Slack
payload (:mod:`corpusbot.bot.slack.payloads`). waitress is set so that many
slow clients do not keep Slack's requests out (:func:`waitress_options`).

Every HTTP request and Socket Mode envelope gets a request id (echoed in the
``X-Request-Id`` response header) that every log line written while handling
it carries, and each Slack request ends with one access line and is counted
in the metrics. ``X-Corpusbot-Worker`` (and ``pid`` in ``/healthz``) names the
process that answered: with ``serve --workers N``
(:mod:`corpusbot.bot.serving.workers`, gunicorn) each worker process has its own
per-user rate limit (without ``CORPUSBOT_STATE_URL``), and ``/metrics`` sums the
counters of all of them.

One process (``serve`` without ``--workers``) serves with waitress
(:func:`serve_http`); with ``--workers N`` gunicorn serves the same WSGI app.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from corpusbot.bot.config import Settings
from corpusbot.bot.ops.metrics import INVALID, BotMetrics, request_kind
from corpusbot.bot.ops.requestctx import current_request_id, request_scope
from corpusbot.bot.slack import payloads
from corpusbot.bot.slack.runtime import Runtime

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1 << 20  # Slack's payloads are a few KB; an interactive message with 50 full blocks stays well under
DEFAULT_PORT = 3000
DEFAULT_HOST = "127.0.0.1"
# waitress (HTTP mode): see waitress_options().
CONNECTION_LIMIT = 4000  # open connections at once (waitress: 100); past it new ones wait in the listen backlog
MIN_CONNECTION_LIMIT = 100  # even when the open files limit is low (waitress's own default)
RESERVED_FILES = 256  # open files left for the rest: the database, connections to Slack, pipes, logs
MAX_HEADER_BYTES = 32 * 1024  # Slack's request headers are ~1 KB (waitress: 256 KiB)
CHANNEL_TIMEOUT_SECONDS = 30  # a connection that sends and receives nothing this long is closed (waitress: 120)
CLEANUP_INTERVAL_SECONDS = 5  # how often idle connections are looked for (waitress: 30)
PROBE_QUESTION = "news"  # asked by /readyz after an answer failed, to see whether answering works again

log = logging.getLogger("corpusbot.http")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _text(status: int, text: str) -> Reply:
    return Reply(status, (text + "\n").encode())


def _json(status: int, data: dict[str, Any]) -> Reply:
    return Reply(status, json.dumps(data).encode(), "application/json")


STATUS_LINES = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    411: "411 Length Required",
    413: "413 Content Too Large",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


class SlackWSGI:
    """The WSGI application for HTTP mode."""

    def __init__(self, app: App, runtime: Runtime, signing_secret: str, *, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.runtime = runtime
        self.verifier = SignatureVerifier(signing_secret)
        self.max_body = max_body

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        with request_scope() as request_id:
            method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
            if path == EVENTS_PATH and method == "POST":
                reply = self.slack_request(environ)
            else:
                try:
                    reply = self.route(method, path)
                except Exception:
                    log.exception("Unexpected error serving %s %s", method, path)
                    reply = _text(500, "internal error")
            status = STATUS_LINES.get(reply.status, f"{reply.status} Status")
            headers = [
                ("Content-Type", reply.content_type),
                ("Content-Length", str(len(reply.body))),
                ("X-Request-Id", request_id),
                ("X-Corpusbot-Worker", str(os.getpid())),
                *reply.headers,
            ]
            start_response(status, headers)
            return [reply.body]

    def route(self, method: str, path: str) -> Reply:
        """Everything but ``POST /slack/events``."""
        readers = {"/healthz": _healthy, "/readyz": self.ready, "/metrics": self.metrics}
        if path in readers:
            return readers[path]() if method in ("GET", "HEAD") else _text(405, "method not allowed")
        if path == EVENTS_PATH:
            return _text(405, "method not allowed")
        return _text(404, "not found")

    def ready(self) -> Reply:
        """200 when questions can be answered; 503 with the reason otherwise (see :func:`readiness`)."""
        problem, generation = readiness(self.runtime)
        if problem is not None:
            return _json(503, {"status": "unavailable", "reason": problem})
        return _json(200, {"status": "ready", "generation": generation})

    def metrics(self) -> Reply:
        body, content_type = self.runtime.metrics.exposition()
        return Reply(200, body, content_type)

    def slack_request(self, environ: dict[str, Any]) -> Reply:
        """Check, dispatch, count and log one request from Slack."""
        started = time.perf_counter()
        kind = INVALID
        with self.runtime.in_progress.working():
            try:
                checked = self.check(environ)
                if isinstance(checked, Reply):
                    reply = checked
                else:
                    kind = request_kind(checked.body)
                    reply = _from_bolt(self.app.dispatch(checked))
            except Exception:
                log.exception("Unexpected error handling a Slack %s request", kind)
                reply = _text(500, "internal error")
        _account(self.runtime.metrics, kind, reply.status, time.perf_counter() - started)
        return reply

    def check(self, environ: dict[str, Any]) -> BoltRequest | Reply:
        """The request for bolt, or the 4xx reply when it is not a well-formed, correctly signed Slack request."""
        raw = environ.get("CONTENT_LENGTH") or ""
        # "²" is a digit int() refuses; so is a number of over 4,300 digits, and 18 is already far over any limit
        if not (raw.isascii() and raw.isdigit()):
            return self._reject(411, "a Content-Length is required")
        length = int(raw) if len(raw) <= 18 else self.max_body + 1
        if length > self.max_body:
            return self._reject(413, f"body over {self.max_body} bytes")
        data = environ["wsgi.input"].read(length)
        headers = _headers(environ)
        timestamp, signature = headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
        if not timestamp or not signature:
            return self._reject(401, "missing Slack signature headers")
        if not timestamp.isascii() or not timestamp.isdigit():
            return self._reject(401, "malformed Slack timestamp")
        try:
            body = data.decode("utf-8")  # Slack always sends UTF-8
        except UnicodeDecodeError:
            return self._reject(400, "body is not UTF-8")
        if not self.verifier.is_valid(body, timestamp, signature):
            return self._reject(401, "bad signature or stale timestamp")
        bolt_headers: dict[str, str | Sequence[str]] = dict(headers)  # bolt's type: one value or several per name
        try:
            request = BoltRequest(body=body, query=environ.get("QUERY_STRING", ""), headers=bolt_headers)
        except Exception as error:  # untrusted input: whatever fails to parse is the sender's problem
            return self._reject(400, f"malformed body ({type(error).__name__})")
        try:
            envelope = payloads.envelope(request.body)
        except payloads.PayloadError as error:
            return self._reject(400, f"not a Slack payload ({error})")
        if envelope.kind not in payloads.HANDLED_KINDS:  # modals, shortcuts…: bolt would answer 404 as well
            return self._reject(404, "a kind of Slack request the bot does not handle")
        return request

    @staticmethod
    def _reject(status: int, why: str) -> Reply:
        log.warning("Rejected a Slack request: HTTP %s, %s", status, why)
        return _text(status, why)


def readiness(runtime: Runtime) -> tuple[str | None, int | None]:
    """(why the bot cannot answer now, or None; the index generation).

    In order: the search service's own check (``SearchService.check_ready()``:
    None, or why not; skipped for a service without one), the index (its
    generation can be read and it is not empty), the bot's state database (the SQLite file, or PostgreSQL with
    ``CORPUSBOT_STATE_URL``: reachable; the reason names it without credentials), and the answers:
    not ready when the last :data:`~corpusbot.bot.ops.health.FAILING_STREAK`
    answers failed within a minute, or when an answer failed since the last one
    that worked and a question asked here (:data:`PROBE_QUESTION`, a few ms)
    fails too. One answer that works, or a minute without failures, makes it
    ready again.
    """
    service = runtime.service
    check_ready = getattr(service, "check_ready", None)
    if callable(check_ready):
        try:
            verdict = check_ready()
        except Exception as error:  # any failure to check means: not ready
            return f"index: {_describe(error)}", None
        if isinstance(verdict, str) and verdict.strip():  # SearchService.check_ready: None, or why not
            return f"index: {_first_line(verdict)}", None
        if verdict is False:
            return "index: not ready", None
    try:
        generation = service.generation
    except Exception as error:
        return f"index: {type(error).__name__}", None
    if generation is None:
        return "index: empty", None
    state_problem = runtime.state.problem()
    if state_problem is not None:
        return f"state database: {state_problem}", generation
    failing = runtime.health.failing()
    if failing is not None:
        return failing.reason(), generation
    if runtime.health.suspect():
        try:
            service.ask(PROBE_QUESTION, k=1)
        except Exception as error:
            return f"answers: a probe question failed too ({type(error).__name__})", generation
    return None, generation


def _describe(error: Exception) -> str:
    """``ErrorType: first line of the message`` (a reason for /readyz, never a traceback)."""
    message = _first_line(str(error))
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _first_line(text: str, limit: int = 200) -> str:
    lines = text.strip().splitlines()
    return lines[0][:limit] if lines else ""


def _healthy() -> Reply:
    return _json(200, {"status": "ok", "pid": os.getpid()})


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {key[5:].lower().replace("_", "-"): value for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


def _from_bolt(response: BoltResponse) -> Reply:
    content_type = (response.headers.get("content-type") or ["text/plain; charset=utf-8"])[0]
    body = response.body if isinstance(response.body, str) else json.dumps(response.body or "")
    if response.status >= 400:
        log.warning("Slack request not handled: HTTP %s %s", response.status, body[:200])
    return Reply(response.status, body.encode("utf-8"), content_type)


def serve_http(wsgi: SlackWSGI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, threads: int = 8) -> None:
    """Serve until interrupted, with waitress (a production WSGI server)."""
    server = http_server(wsgi, host, port, threads)
    server.run()  # returns on KeyboardInterrupt, after waiting (at most 5 s) for requests being answered


def http_server(wsgi: SlackWSGI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, threads: int = 8) -> Any:
    """The waitress server for ``wsgi`` (not running yet), with the limits of :func:`waitress_options`."""
    from waitress import create_server

    options = waitress_options(threads, raise_open_files_limit(CONNECTION_LIMIT + RESERVED_FILES))
    server = create_server(wsgi, host=host, port=port, **options)
    log.info("corpusbot listening on http://%s:%s%s (HTTP mode)", host, port, EVENTS_PATH)
    return server


def waitress_server(wsgi: Any, sockets: list[Any], threads: int = 8) -> Any:
    """The waitress server for ``wsgi`` on listening ``sockets`` (not running yet), with :func:`waitress_options`."""
    from waitress import create_server

    options = waitress_options(threads, raise_open_files_limit(CONNECTION_LIMIT + RESERVED_FILES))
    return create_server(wsgi, sockets=sockets, **options)


def waitress_options(threads: int, open_files: int) -> dict[str, Any]:
    """waitress's settings: many slow connections must not stop it from acknowledging Slack.

    waitress reads request headers and bodies in its main loop and gives a
    request to a thread only once it is complete, so a client that sends its
    headers one byte a second costs a connection, not a thread. What ran out was
    connections (``connection_limit``, 100 by default: ~100 such clients and no
    new connection was accepted), and ``select()``, which cannot watch more than
    1,024 sockets; ``poll()`` can. ``open_files`` is the process's open-file
    limit: the connection limit leaves :data:`RESERVED_FILES` of it for the rest.
    """
    connection_limit = max(MIN_CONNECTION_LIMIT, min(CONNECTION_LIMIT, open_files - RESERVED_FILES))
    return {
        "threads": threads,
        "ident": "corpusbot",
        "max_request_body_size": MAX_BODY_BYTES,
        "max_request_header_size": MAX_HEADER_BYTES,
        "connection_limit": connection_limit,
        "asyncore_use_poll": True,
        "channel_timeout": CHANNEL_TIMEOUT_SECONDS,
        "cleanup_interval": CLEANUP_INTERVAL_SECONDS,
    }


def raise_open_files_limit(wanted: int, resource_module: Any = None) -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit when it is below ``wanted``; the soft limit now."""
    import resource

    rlimit = resource_module or resource
    soft, hard = rlimit.getrlimit(rlimit.RLIMIT_NOFILE)
    if soft == rlimit.RLIM_INFINITY or soft >= wanted:
        return wanted if soft == rlimit.RLIM_INFINITY else soft
    target = wanted if hard == rlimit.RLIM_INFINITY else hard
    try:
        rlimit.setrlimit(rlimit.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as error:
        log.warning("Could not raise the open files limit from %d to %d (%s)", soft, target, error)
        return soft
    if target < wanted:
        log.warning(
            "The open files limit is %d (its hard limit), below the %d that %d connections at once need: fewer are "
            "accepted. Raise it (systemd LimitNOFILE=, docker --ulimit nofile=) or keep slow clients out at the "
            "reverse proxy.",
            target,
            wanted,
            CONNECTION_LIMIT,
        )
    return target


def _account(metrics: BotMetrics, kind: str, status: int, seconds: float) -> None:
    """Count the request and write its access line."""
    metrics.request_handled(kind, status, seconds)
    milliseconds = round(seconds * 1000, 3)
    log.info(
        "Slack %s request: %s in %.1f ms",
        kind,
        status,
        milliseconds,
        extra={"kind": kind, "status": status, "duration_ms": milliseconds, "request_id": current_request_id()},
    )


class TracedSocketModeHandler(SocketModeHandler):
    """bolt's Socket Mode handler, with a request id, an access line and metrics for each envelope."""

    def __init__(self, app: App, app_token: str, metrics: BotMetrics) -> None:
        super().__init__(app, app_token=app_token, web_client=app.client)
        self.metrics = metrics

    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        with request_scope():
            started, wall_clock = time.perf_counter(), time.time()
            try:
                payloads.envelope(req.payload)
            except payloads.PayloadError as error:
                # Acknowledged (or Slack sends it again) and dropped, as HTTP mode answers 400.
                log.warning("Rejected a Slack envelope: not a Slack payload (%s)", error)
                client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
                _account(self.metrics, INVALID, 400, time.perf_counter() - started)
                return
            kind = request_kind(req.payload)
            response: BoltResponse = run_bolt_app(self.app, req)
            send_response(client, req, response, wall_clock)
            _account(self.metrics, kind, response.status, time.perf_counter() - started)


def socket_mode_handler(app: App, settings: Settings, metrics: BotMetrics | None = None) -> SocketModeHandler:
    """The Socket Mode handler for ``app`` (connects only when started)."""
    if settings.app_token is None:
        raise ValueError("Socket Mode needs SLACK_APP_TOKEN")
    return TracedSocketModeHandler(app, settings.app_token, metrics or BotMetrics())
