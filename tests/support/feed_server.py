"""A web server on 127.0.0.1 serving the feeds and news pages of ``tests/data/web``, and misbehaving on demand.

Files are served with an ETag and a Last-Modified and answer a matching conditional request
with 304; ``{base}`` in a file is replaced by the server's own ``http://127.0.0.1:PORT``, so
feeds link to pages on the same server. Besides the files:

- ``/robots.txt`` disallows ``/private/`` for every agent;
- ``/loop/a`` and ``/loop/b`` redirect to each other forever;
- ``/huge.xml`` streams 50 MB (generated as it is sent, never stored);
- ``/hang`` accepts the request and never answers (until the server stops);
- ``/busy`` answers 429 with ``Retry-After: 1`` the first time, then serves ``feeds/rss.xml``;
- ``/closed`` answers 429 with ``Retry-After: 3600`` every time.

``set(path, body, ...)`` adds or replaces a route; ``requests`` records (method, path, headers)
of every request, so tests can count them and see the conditional headers.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support import DATA

WEB = DATA / "web"
HUGE_BYTES = 50 * 1024 * 1024
LAST_MODIFIED = formatdate(1_750_000_000, usegmt=True)
ROBOTS = b"User-agent: *\nDisallow: /private/\n"
_TYPES = {".xml": "application/xml", ".json": "application/feed+json", ".html": "text/html; charset=utf-8"}


@dataclass
class Route:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]


class FeedServer:
    """Use as a context manager; ``base`` is ``http://127.0.0.1:PORT``, ``url(path)`` a URL on it."""

    def __init__(self, root: Path = WEB) -> None:
        self.root = root
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self.busy_hits = 0
        self._lock = threading.Lock()
        self.httpd = _QuietServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def url(self, path: str) -> str:
        return self.base + "/" + path.lstrip("/")

    def set(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8", **kw: Any) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes["/" + path.lstrip("/")] = Route(data.replace(b"{base}", self.base.encode()), content_type, **kw)

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == "/" + path.lstrip("/")]

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def file_route(self, path: str) -> Route | None:
        relative = path.lstrip("/")
        if ".." in relative.split("/"):
            return None
        file = self.root / relative
        if not file.is_file():
            return None
        data = file.read_bytes().replace(b"{base}", self.base.encode())
        content_type = _TYPES.get(file.suffix, "application/octet-stream")
        if file.name.endswith(".latin1.xml"):
            content_type = "application/xml"  # no charset: the (wrong) XML declaration is all there is
        return Route(data, content_type)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-response (the size cap, a timeout) is what the tests want


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            server.record(Request("GET", path, {k.lower(): v for k, v in self.headers.items()}))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._answer(path)

        def _answer(self, path: str) -> None:
            if path == "/robots.txt" and path not in server.routes:
                return self._send(Route(ROBOTS, "text/plain"))
            if path in ("/loop/a", "/loop/b"):
                other = "/loop/b" if path == "/loop/a" else "/loop/a"
                return self._send(Route(b"", status=302, headers={"Location": other}))
            if path == "/huge.xml":
                return self._huge()
            if path == "/hang":
                server.stopping.wait(30)
                return
            if path == "/busy":
                server.busy_hits += 1
                if server.busy_hits == 1:
                    return self._send(Route(b"slow down", "text/plain", 429, {"Retry-After": "1"}))
                path = "/feeds/rss.xml"
            if path == "/closed":
                return self._send(Route(b"closed", "text/plain", 429, {"Retry-After": "3600"}))
            route = server.routes.get(path) or server.file_route(path)
            if route is None:
                return self._send(Route(b"not found", "text/plain", 404))
            etag = '"' + hashlib.sha256(route.body).hexdigest()[:16] + '"'
            headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED, **route.headers}
            if route.status == 200 and self.headers.get("If-None-Match") == etag:
                return self._send(Route(b"", status=304, headers=headers))
            self._send(Route(route.body, route.content_type, route.status, headers))

        def _send(self, route: Route) -> None:
            self.send_response(route.status)
            if route.status != 304:
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if route.status != 304:
                self.wfile.write(route.body)

        def _huge(self) -> None:
            """50 MB of feed, without a Content-Length (so only the reader's cap stops it), made as it is sent."""
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            block = b"<item><title>padding</title></item>" * 1000
            self.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>')
            for _ in _blocks(HUGE_BYTES, len(block)):
                if server.stopping.is_set():
                    return
                self.wfile.write(block)

    return Handler


def _blocks(total: int, size: int) -> Iterator[int]:
    sent = 0
    while sent < total:
        yield sent
        sent += size
