"""Running the app: HTTP mode (a WSGI app served by waitress) or Socket Mode.

HTTP mode serves Slack's requests at ``/slack/events`` plus ``GET /healthz``
(the process is up), ``GET /readyz`` (the index and database answer) and
``GET /metrics`` (Prometheus). Before bolt sees a request it is checked here,
so that a bad or hostile request gets a 4xx and one warning, never a traceback
or a reply: body size, UTF-8, Slack's signature and timestamp (at most 5
minutes old), and a body that parses as a Slack payload.

Every HTTP request and Socket Mode envelope gets a request id (echoed in the
``X-Request-Id`` response header) that every log line written while handling
it carries, and each Slack request ends with one access line and is counted
in the metrics. ``X-Corpusbot-Worker`` (and ``pid`` in ``/healthz``) names the
process that answered: with ``serve --workers N``
(:mod:`corpusbot.bot.serving.prefork`) each worker process has its own metrics
and its own per-user rate limit, and takes new connections only while no other
worker is less busy (:mod:`corpusbot.bot.serving.balance`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
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

from corpusbot.bot.config import Settings
from corpusbot.bot.ops.metrics import INVALID, BotMetrics, request_kind
from corpusbot.bot.ops.requestctx import current_request_id, request_scope
from corpusbot.bot.serving import balance
from corpusbot.bot.slack.runtime import Runtime

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1 << 20  # Slack's payloads are a few KB; an interactive message with 50 full blocks stays well under
DEFAULT_PORT = 3000
DEFAULT_HOST = "127.0.0.1"

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
        try:
            generation = self.runtime.service.generation
        except Exception as error:  # any failure to read the index means: not ready
            return _json(503, {"status": "unavailable", "reason": f"index: {type(error).__name__}"})
        if generation is None:
            return _json(503, {"status": "unavailable", "reason": "index: empty"})
        if not self.runtime.state.ping():
            return _json(503, {"status": "unavailable", "reason": "database"})
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
        if not raw.isdigit():
            return self._reject(411, "a Content-Length is required")
        length = int(raw)
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
        if not isinstance(request.body, dict) or not request.body:
            return self._reject(400, "not a Slack payload")
        return request

    @staticmethod
    def _reject(status: int, why: str) -> Reply:
        log.warning("Rejected a Slack request: HTTP %s, %s", status, why)
        return _text(status, why)


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


def serve_http(
    wsgi: SlackWSGI,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    threads: int = 8,
    *,
    listener: socket.socket | None = None,
) -> None:
    """Serve until interrupted, with waitress (a production WSGI server); on ``listener`` when given (bound already)."""
    from waitress import create_server

    options: dict[str, Any] = {"threads": threads, "max_request_body_size": MAX_BODY_BYTES, "ident": "corpusbot"}
    if listener is None:
        server = create_server(wsgi, host=host, port=port, **options)
        log.info("corpusbot listening on http://%s:%s%s (HTTP mode)", host, port, EVENTS_PATH)
    else:
        socket_map: dict[int, Any] = {}
        server = create_server(wsgi, map=socket_map, sockets=[listener], **options)
        seat = balance.current_seat()
        if seat is not None:  # one of several workers: take connections only while no other worker is less busy
            balance.share_connections(server, socket_map, seat)
            wsgi.runtime.in_progress.report_to(seat.report)
        log.info("Worker %d serving (HTTP mode)", os.getpid())
    server.run()  # returns on KeyboardInterrupt, after waiting (at most 5 s) for requests being answered


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
            kind = request_kind(req.payload) if isinstance(req.payload, dict) else INVALID
            response: BoltResponse = run_bolt_app(self.app, req)
            send_response(client, req, response, wall_clock)
            _account(self.metrics, kind, response.status, time.perf_counter() - started)


def socket_mode_handler(app: App, settings: Settings, metrics: BotMetrics | None = None) -> SocketModeHandler:
    """The Socket Mode handler for ``app`` (connects only when started)."""
    if settings.app_token is None:
        raise ValueError("Socket Mode needs SLACK_APP_TOKEN")
    return TracedSocketModeHandler(app, settings.app_token, metrics or BotMetrics())
