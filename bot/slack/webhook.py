"""Posting to ``response_url``: slack_sdk's ``WebhookClient`` over kept-alive connections.

slack_sdk's ``WebhookClient`` sends each post with ``urllib``, which opens a new
connection and closes it after one request (``Connection: close``). Slack's
``response_url`` hosts are few (``hooks.slack.com``), so a bot answering many
questions paid a TCP (and in production a TLS) handshake per answer. Here the
client is the same (its body building, 429 and connection-error retry handlers
and response object) with only the transport swapped: a small pool of
``http.client`` connections per origin, each used by one thread at a time.

An idle connection the server has closed (readable at the moment it would be
reused) is dropped; one that fails anyway on its next use, before any answer,
has that post sent once more on a fresh connection.
Errors on a fresh connection surface as ``urllib`` would raise them, so the
retry handlers treat them the same. With a proxy configured the client falls
back to slack_sdk's own ``urllib`` path.
"""

from __future__ import annotations

import http.client
import io
import select
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from slack_sdk.webhook import WebhookClient, WebhookResponse

IDLE_SECONDS = 30.0  # an idle connection older than this is closed rather than reused (load balancers drop them)
MAX_IDLE_PER_ORIGIN = 32  # about the listener pool's size: more idle connections than posters are never needed
TIMEOUT_SECONDS = 30  # slack_sdk's default
STALE_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)

Origin = tuple[str, str, int]  # scheme, host, port


@dataclass
class _Idle:
    connection: http.client.HTTPConnection
    since: float


@dataclass
class ConnectionPool:
    """Idle connections by origin; the most recently used is taken first. Thread-safe."""

    timeout: float = TIMEOUT_SECONDS
    ssl_context: ssl.SSLContext | None = None
    idle_seconds: float = IDLE_SECONDS
    max_idle: int = MAX_IDLE_PER_ORIGIN
    _idle: dict[Origin, list[_Idle]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, origin: Origin) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to ``origin`` and whether it was used before (False: new, not connected yet)."""
        stale: list[_Idle] = []
        found: _Idle | None = None
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(origin, [])
            while idle:
                candidate = idle.pop()
                if now - candidate.since <= self.idle_seconds and not _dropped(candidate.connection):
                    found = candidate
                    break
                stale.append(candidate)
        for old in stale:
            old.connection.close()
        if found is not None:
            return found.connection, True
        return self._connection(origin), False

    def give_back(self, origin: Origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self.max_idle:
                idle.append(_Idle(connection, time.monotonic()))
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for item in connections:
                item.connection.close()

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(connections) for connections in self._idle.values())

    def _connection(self, origin: Origin) -> http.client.HTTPConnection:
        scheme, host, port = origin
        if scheme == "https":
            context = self.ssl_context or ssl.create_default_context()
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """An idle connection with something to read has been closed by the server (or is out of step): not reusable."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class PooledWebhookClient(WebhookClient):
    """``WebhookClient`` whose requests go over ``pool``'s kept-alive connections."""

    def __init__(self, url: str, pool: ConnectionPool, **kwargs: Any) -> None:
        super().__init__(url, timeout=int(pool.timeout), ssl=pool.ssl_context, **kwargs)
        self.pool = pool

    def _perform_http_request_internal(self, url: str, req: Request) -> WebhookResponse:
        if self.proxy:
            return super()._perform_http_request_internal(url, req)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return super()._perform_http_request_internal(url, req)  # slack_sdk raises its own error for these
        origin = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = dict(req.header_items())
        body = req.data if isinstance(req.data, bytes) else None
        while True:
            connection, reused = self.pool.take(origin)
            try:
                try:
                    connection.request(req.get_method(), target, body=body, headers=headers)
                except OSError as error:
                    if reused and isinstance(error, STALE_ERRORS):
                        raise
                    raise URLError(error) from error  # as urllib reports a failed send
                response = connection.getresponse()
                data = response.read()
            except Exception as error:
                connection.close()
                if reused and isinstance(error, STALE_ERRORS):
                    continue  # closed by the server while idle: send it on a new connection
                raise
            if response.will_close:
                connection.close()
            else:
                self.pool.give_back(origin, connection)
            return _response(url, response, data)


def _response(url: str, response: http.client.HTTPResponse, data: bytes) -> WebhookResponse:
    """What ``urllib`` gives slack_sdk: the response for 2xx, an ``HTTPError`` (read by the retry handlers) otherwise."""
    if not 200 <= response.status < 300:
        raise HTTPError(url, response.status, response.reason, response.msg, io.BytesIO(data))
    charset = response.msg.get_content_charset() or "utf-8"
    return WebhookResponse(
        url=url,
        status_code=response.status,
        body=data.decode(charset),
        # Annotated as a dict, but slack_sdk's own urllib path passes the response's HTTPMessage too (same ignore).
        headers=response.msg,  # type: ignore[arg-type]
    )
