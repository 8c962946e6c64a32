"""Servers that attack the fetcher: compression bombs, redirects around robots.txt, slow drips, odd Retry-After.

Every request goes to a FeedServer on 127.0.0.1 (allowed by the test options) or is refused by the guard
before any connection (the recording transport proves it).
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import socket
import threading
import time
import tracemalloc
import zlib

import httpx
import pytest

from corpusbot.index.sources.fetch import Fetcher, FetchError, _retry_after
from tests.index.sources.conftest import options
from tests.support.feed_server import FeedServer

MB = 1 << 20


def gzip_of_zeros(size: int) -> bytes:
    """``size`` zero bytes, gzip'd a megabyte at a time (never held whole): about a thousandth of the size."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MB)
    return b"".join([*(packer.compress(block) for _ in range(size // MB)), packer.flush()])


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_of_zeros(256 * MB)  # ~250 KB on the wire


class RecordingTransport(httpx.BaseTransport):
    """httpx's own transport, recording the (pinned) address of every request that reaches the network."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport(retries=0)
        self.hosts: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_a_gzip_bomb_is_refused_without_inflating_it(web: FeedServer, bomb: bytes) -> None:
    """256 MB of zeros in ~250 KB of gzip: decompression stops at the cap; what is held stays near the cap."""
    web.set("bomb.html", bomb, headers={"Content-Encoding": "gzip"})
    cap = 2 * MB
    with Fetcher(options(max_bytes=cap)) as fetcher:
        fetcher.fetch(web.url("feeds/rss.xml"))  # robots.txt and the connection pool, before measuring
        tracemalloc.start()
        try:
            with pytest.raises(FetchError, match=r"too large \(more than 2 MB"):
                fetcher.fetch(web.url("bomb.html"))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 2 * cap, f"{peak / MB:.1f} MB held at once"  # httpx's own decoding held over 60 MB


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate", "two gzip members"])
def test_compressed_bodies_are_decoded(web: FeedServer, encoding: str) -> None:
    page = b"<html><body><p>" + b"Dock workers accepted the offer. " * 200 + b"</p></body></html>"
    half = len(page) // 2
    body, header = {
        "gzip": (gzip.compress(page), "gzip"),
        "deflate": (zlib.compress(page), "deflate"),
        "raw deflate": (zlib.compress(page, wbits=-zlib.MAX_WBITS), "deflate"),
        "two gzip members": (gzip.compress(page[:half]) + gzip.compress(page[half:]), "gzip"),
    }[encoding]
    web.set("page.html", body, headers={"Content-Encoding": header})
    with Fetcher(options()) as fetcher:
        assert fetcher.fetch(web.url("page.html")).body == page
    assert web.hits("page.html")[0].headers["accept-encoding"] == "gzip, deflate"


def test_a_corrupt_or_unasked_for_encoding_is_a_reason(web: FeedServer) -> None:
    web.set("corrupt.html", b"\x1f\x8bnot gzip at all", headers={"Content-Encoding": "gzip"})
    web.set("brotli.html", b"\x0b\x02\x80hello\x03", headers={"Content-Encoding": "br"})
    with Fetcher(options()) as fetcher:
        with pytest.raises(FetchError, match="gzip body is corrupt"):
            fetcher.fetch(web.url("corrupt.html"))
        with pytest.raises(FetchError, match="unsupported Content-Encoding 'br'"):
            fetcher.fetch(web.url("brotli.html"))


def test_a_redirect_into_what_robots_txt_disallows_is_not_followed(web: FeedServer) -> None:
    web.set("story.html", b"", status=302, headers={"Location": "/private/memo.html"})
    with Fetcher(options()) as fetcher, pytest.raises(FetchError, match=r"robots\.txt .* disallows"):
        fetcher.fetch(web.url("story.html"))
    assert len(web.hits("story.html")) == 1
    assert web.hits("private/memo.html") == []


def test_a_redirect_to_another_host_obeys_that_hosts_robots_txt(web: FeedServer, other_web: FeedServer) -> None:
    other_web.set("robots.txt", b"User-agent: *\nDisallow: /\n", "text/plain")
    web.set("story.html", b"", status=301, headers={"Location": other_web.url("feeds/rss.xml")})
    with Fetcher(options()) as fetcher, pytest.raises(FetchError, match=rf"robots\.txt of {other_web.base} disallows"):
        fetcher.fetch(web.url("story.html"))
    assert other_web.hits("feeds/rss.xml") == [] and len(other_web.hits("robots.txt")) == 1


def test_redirects_allowed_by_robots_txt_are_followed_to_the_end(web: FeedServer) -> None:
    web.set("old.xml", b"", status=301, headers={"Location": "/moved.xml"})
    web.set("moved.xml", b"", status=307, headers={"Location": web.url("feeds/rss.xml")})
    with Fetcher(options()) as fetcher:
        fetched = fetcher.fetch(web.url("old.xml"))
    assert fetched.url == web.url("feeds/rss.xml") and b"<rss" in fetched.body
    assert len(web.hits("robots.txt")) == 1  # one origin, read once


@pytest.mark.parametrize(
    "location",
    ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/", "http://10.0.0.1/admin", "http://[::1]/"],
)
def test_a_redirect_out_of_bounds_is_refused_before_connecting(web: FeedServer, location: str) -> None:
    web.set("story.html", b"", status=302, headers={"Location": location})
    transport = RecordingTransport()
    with Fetcher(options(transport=transport)) as fetcher, pytest.raises(FetchError) as failure:
        fetcher.fetch(web.url("story.html"))
    assert "unsupported URL" in str(failure.value) or "not a public address" in str(failure.value)
    assert set(transport.hosts) == {"127.0.0.1"}  # the loopback server only: never 10.0.0.1 or ::1


class DripServer:
    """A raw TCP server on loopback: sends ``start`` at once, then ``rest`` a byte every ``pause`` seconds."""

    def __init__(self, start: bytes, rest: bytes, pause: float) -> None:
        self.start = start
        self.rest = rest
        self.pause = pause
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            if b"/robots.txt" in conn.recv(65536):
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            conn.sendall(self.start)
            for byte in self.rest:
                if self.stop.wait(self.pause):
                    return
                conn.sendall(bytes([byte]))


HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n"


@pytest.mark.parametrize(
    ("start", "rest"),
    [(HEADERS, b"<p>" * 30000), (b"HTTP/1.1 200 OK\r\n", b"X-Drip: y\r\n" * 9999)],
    ids=["body", "headers"],
)
def test_a_slow_drip_is_cut_at_the_whole_response_deadline(start: bytes, rest: bytes) -> None:
    """A byte every 50 ms never trips the read timeout (0.5 s); the deadline (1 s) still ends the request."""
    server = DripServer(start, rest, 0.05)
    try:
        started = time.monotonic()
        with (
            Fetcher(options(deadline=1.0, read_timeout=0.5)) as fetcher,
            pytest.raises(FetchError, match=r"timed out \(the response took more than 1s\)"),
        ):
            fetcher.fetch(server.base + "/story.html")
        assert time.monotonic() - started < 2.0
    finally:
        server.close()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", r"^RemoteProtocolError: illegal status line"),
        (HEADERS + b"<p>cut", r"^RemoteProtocolError: peer closed connection without sending complete message body"),
        (b"", r"^RemoteProtocolError: Server disconnected without sending a response"),
    ],
    ids=["not http", "body cut short", "hang up"],
)
def test_a_broken_response_is_a_reason_naming_what_broke(reply: bytes, reason: str) -> None:
    server = DripServer(reply, b"", 0)
    try:
        with Fetcher(options()) as fetcher, pytest.raises(FetchError, match=reason):
            fetcher.fetch(server.base + "/story.html")
    finally:
        server.close()


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("0", 0, 0),
        ("2", 2, 2),
        ("999999999999999999999999", 1e20, float("inf")),  # huge: more than any cap, left for the next run
        ("{an hour ago}", 0, 0),  # a date in the past: now
        ("{in 30 s}", 20, 31),
        ("-5", 60, 60),  # unreadable: a minute
        ("soon", 60, 60),
        ("²", 60, 60),  # a digit to str.isdigit, not to float()
        ("Fri, 99 Foo 2025 99:99:99 GMT", 60, 60),
    ],
)
def test_retry_after_values(value: str, low: float, high: float) -> None:
    dates = {"{an hour ago}": time.time() - 3600, "{in 30 s}": time.time() + 30}
    if value in dates:
        value = email.utils.formatdate(dates[value], usegmt=True)
    assert low <= _retry_after(value) <= high


def test_a_huge_retry_after_leaves_the_host_alone_without_waiting(web: FeedServer) -> None:
    web.set("busy.xml", b"busy", "text/plain", status=429, headers={"Retry-After": "9" * 30})
    started = time.monotonic()
    with Fetcher(options(retry_after_cap=2.0)) as fetcher, pytest.raises(FetchError, match="left for the next run"):
        fetcher.fetch(web.url("busy.xml"))
    assert time.monotonic() - started < 1.5 and len(web.hits("busy.xml")) == 1


def test_a_retry_after_date_in_the_past_retries_at_once(web: FeedServer) -> None:
    past = email.utils.formatdate(time.time() - 86400, usegmt=True)
    web.set("busy.xml", b"busy", "text/plain", status=503, headers={"Retry-After": past})
    started = time.monotonic()
    with Fetcher(options(retry_after_cap=2.0)) as fetcher, pytest.raises(FetchError, match="HTTP 503 again"):
        fetcher.fetch(web.url("busy.xml"))
    assert time.monotonic() - started < 1.5 and len(web.hits("busy.xml")) == 2


def test_waiting_as_retry_after_asks_does_not_eat_the_response_deadline(web: FeedServer) -> None:
    """/busy answers 429 with Retry-After: 1 once; a 0.8 s deadline still leaves the retry its time."""
    with Fetcher(options(deadline=0.8, retry_after_cap=2.0)) as fetcher:
        fetched = fetcher.fetch(web.url("busy"))
    assert b"<rss" in fetched.body and len(web.hits("busy")) == 2
