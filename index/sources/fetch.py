"""The HTTP client of web sources: httpx behind the address guard, with manners and limits.

- Every connection goes to an address ``guard.Guard`` vetted just before (redirect hops
  included): the request is sent to that IP with the original ``Host`` header and TLS server
  name, so the name is resolved once, by the guard.
- Conditional requests: an ETag / Last-Modified from the last run makes an unchanged
  resource cost one 304.
- Redirects are followed up to ``max_redirects``; timeouts for connecting and each read,
  and a deadline for the whole response; bodies are streamed and cut at ``max_bytes``.
- Politeness: at most ``per_host`` requests in flight per host; a 429 or 503 with
  ``Retry-After`` waits that long when it is at most ``retry_after_cap`` seconds (and then
  tries once more), else the host is left alone for the rest of the run; ``robots.txt`` is
  read once per host and run and obeyed for our User-Agent, for the URL asked for and for
  every redirect hop (a page allowed may redirect into what robots.txt forbids).
- Redirects are followed here, one request at a time, not by httpx: each hop takes its own
  host's slot and is checked against robots.txt before it is requested.
- Bodies are decompressed here (gzip, deflate; nothing else is asked for) piece by piece, never
  past ``max_bytes``: a small compressed response cannot expand into gigabytes in memory.
"""

from __future__ import annotations

import contextlib
import email.utils
import threading
import time
import urllib.robotparser
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpcore  # the connections under httpx: their reads are bounded by the deadline (``_DeadlineTransport``)
import httpx  # this module is imported only when web sources are fetched

from corpusbot.index.sources.guard import AllowList, Guard, Refused, Resolver

PROJECT_URL = "https://pypi.org/project/corpusbot/"
MB = 1 << 20
ACCEPT_ENCODING = "gzip, deflate"
_GZIP = 16 + zlib.MAX_WBITS  # zlib's wbits for a gzip stream
_PIECE = 256 * 1024  # decoded bytes made at a time (zlib holds about twice that while making them)


def user_agent() -> str:
    """``corpusbot/<version> (+<url>)``: who is fetching, and where to read about it."""
    try:
        release = version("corpusbot")
    except PackageNotFoundError:
        release = "dev"
    return f"corpusbot/{release} (+{PROJECT_URL})"


@dataclass(frozen=True, kw_only=True)
class FetchOptions:
    """How web sources are fetched. The defaults suit a news corpus; tests inject small limits."""

    allow: AllowList = field(default_factory=AllowList)
    resolve: Resolver | None = None  # None: the system resolver
    connect_timeout: float = 10.0
    read_timeout: float = 20.0  # between two pieces of the response
    deadline: float = 60.0  # the whole response, however slowly it trickles in
    max_bytes: int = 10 * MB
    max_redirects: int = 5
    per_host: int = 2  # requests in flight per host
    workers: int = 8  # requests in flight in all
    retry_after_cap: float = 60.0
    max_entries: int = 200  # a feed's entries fetched per run (the first ones, usually the newest)
    robots_max_bytes: int = 512 * 1024
    user_agent: str = field(default_factory=user_agent)
    transport: Any = None  # an httpx transport under the guard (tests); None: ``_DeadlineTransport``


class FetchError(Exception):
    """A request that gave nothing usable; the message is the reason shown for the source."""


@dataclass(frozen=True)
class Fetched:
    """A response: 304 (``not_modified``, no body) or 200 with the body read whole."""

    url: str  # after redirects
    not_modified: bool
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None


class Fetcher:
    """A pooled, guarded HTTP client for one indexing run. Thread-safe; use as a context manager."""

    def __init__(self, options: FetchOptions | None = None) -> None:
        self.options = options or FetchOptions()
        self.guard = Guard(self.options.allow, self.options.resolve)
        inner = self.options.transport or _DeadlineTransport()
        self.client = httpx.Client(
            transport=GuardedTransport(self.guard, inner),
            follow_redirects=False,  # followed by ``_follow``: robots.txt and the host's slot for each hop
            timeout=httpx.Timeout(
                self.options.read_timeout, connect=self.options.connect_timeout, pool=self.options.connect_timeout
            ),
            # only what ``_Decoder`` undoes with a bounded output (httpx would ask for br/zstd when installed)
            headers={"User-Agent": self.options.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            trust_env=False,  # a proxy from the environment would connect to what the guard never saw
        )
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | FetchError] = {}
        self._robots_locks: dict[str, threading.Lock] = {}

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        """GET ``url`` (conditionally when validators are given); raises ``FetchError`` with the reason."""
        try:
            httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as error:
            raise FetchError(f"invalid URL: {error}") from None
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return self._follow(url, headers, self.options.max_bytes, obey_robots=True)

    def _follow(self, url: str, headers: dict[str, str], max_bytes: int, *, obey_robots: bool) -> Fetched:
        """GET ``url``, following up to ``max_redirects`` redirects, all within one deadline."""
        deadline = time.monotonic() + self.options.deadline
        for _ in range(self.options.max_redirects + 1):
            if obey_robots:
                self._check_robots(url)
            outcome = self._get(url, headers, max_bytes, deadline)
            if isinstance(outcome, Fetched):
                return outcome
            url = outcome.location
        raise FetchError(f"too many redirects (more than {self.options.max_redirects}; a redirect loop?)")

    def _get(self, url: str, headers: dict[str, str], max_bytes: int, deadline: float) -> Fetched | _Redirect:
        parsed = httpx.URL(url)
        host = self._host(f"{parsed.host}:{parsed.port or parsed.scheme}")  # a host is a server: name and port
        for attempt in range(2):
            deadline += host.wait_turn(self.options.retry_after_cap)  # waiting as asked is not the response's time
            with host.slot:
                try:
                    return self._get_once(url, headers, max_bytes, deadline)
                except _RetryAfter as wait:
                    host.pause(wait.seconds)
                    if attempt or wait.seconds > self.options.retry_after_cap:
                        raise FetchError(wait.reason(self.options.retry_after_cap)) from None
        raise AssertionError("unreachable")

    def _get_once(self, url: str, headers: dict[str, str], max_bytes: int, deadline: float) -> Fetched | _Redirect:
        _deadline.at = deadline  # every read and write of this request, headers included, ends by then
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                if response.next_request is not None:
                    return _Redirect(str(response.next_request.url))
                if response.status_code == 304:
                    return Fetched(str(response.url), True, etag=headers.get("If-None-Match"))
                if response.status_code in (429, 503) and "retry-after" in response.headers:
                    raise _RetryAfter(response.status_code, _retry_after(response.headers["retry-after"]))
                if response.status_code >= 400:
                    raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
                declared = response.headers.get("content-length", "")
                if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(f"response too large ({int(declared) / MB:.1f} MB; the limit is {_mb(max_bytes)})")
                body = bytearray()
                if response.is_stream_consumed:  # an in-memory response (a transport in tests): read and decoded
                    decoder, chunks = _Decoder("", max_bytes), iter([response.content])
                else:  # as it comes from the network: decompressed by ``_Decoder``, within the cap
                    decoder, chunks = (
                        _Decoder(response.headers.get("content-encoding", ""), max_bytes),
                        response.iter_raw(),
                    )
                for chunk in chunks:
                    decoder.decode(chunk, body)
                    if time.monotonic() > deadline:
                        raise FetchError(f"timed out (the response took more than {self.options.deadline:g}s)")
                decoder.flush(body)
                return Fetched(
                    str(response.url),
                    False,
                    bytes(body),
                    response.headers.get("content-type", ""),
                    response.headers.get("etag"),
                    response.headers.get("last-modified"),
                )
        except Refused as error:
            raise FetchError(f"refused: {error}") from None
        except httpx.TimeoutException as error:
            if time.monotonic() >= deadline:
                raise FetchError(f"timed out (the response took more than {self.options.deadline:g}s)") from None
            raise FetchError(f"timed out ({type(error).__name__})") from None
        except httpx.InvalidURL as error:
            raise FetchError(f"invalid URL: {error}") from None
        except httpx.UnsupportedProtocol as error:
            raise FetchError(f"unsupported URL: {error}") from None
        except httpx.HTTPError as error:
            raise FetchError(f"{type(error).__name__}: {str(error)[:200] or 'connection failed'}") from None
        finally:
            _deadline.at = None

    def _host(self, name: str) -> _Host:
        with self._lock:
            host = self._hosts.get(name)
            if host is None:
                host = self._hosts[name] = _Host(threading.BoundedSemaphore(self.options.per_host))
            return host

    def _check_robots(self, url: str) -> None:
        """Raise ``FetchError`` when robots.txt of the URL's host forbids our User-Agent to fetch it."""
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https"):
            raise FetchError(f"unsupported URL scheme {parsed.scheme or '(none)'!r}: give an http(s):// URL")
        origin = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
        with self._lock:
            origin_lock = self._robots_locks.setdefault(origin, threading.Lock())
        with origin_lock:  # one read of robots.txt per host and run, however many threads ask
            rules = self._robots.get(origin)
            if rules is None:
                rules = self._robots[origin] = self._read_robots(origin)
        if isinstance(rules, FetchError):
            raise rules
        if not rules.can_fetch(self.options.user_agent, url):
            raise FetchError(f"robots.txt of {origin} disallows fetching it")

    def _read_robots(self, origin: str) -> urllib.robotparser.RobotFileParser | FetchError:
        """The host's rules: none (a 4xx) allows all, a 401/403 disallows all; an unreachable one (a 5xx, 429,
        a timeout) is an error for every request to the host in this run, tried again the next run."""
        rules = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
        try:
            fetched = self._follow(origin + "/robots.txt", {}, self.options.robots_max_bytes, obey_robots=False)
        except FetchError as error:
            reason = str(error)
            if reason.startswith("HTTP 401") or reason.startswith("HTTP 403"):
                rules.parse(["User-agent: *", "Disallow: /"])
            elif reason.startswith("HTTP 4") and not reason.startswith("HTTP 429"):
                rules.parse([])  # no robots.txt: everything is allowed
            elif reason.startswith("refused:"):
                return error  # the host itself is refused: say so, not that its robots.txt was unreadable
            else:
                return FetchError(f"robots.txt of {origin} could not be read: {reason}")
            return rules
        rules.parse(fetched.body.decode("utf-8", errors="replace").splitlines())
        return rules


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that sends each request to the address the guard vetted for its host.

    The URL's host is replaced by that address; the ``Host`` header (set by httpx from the
    original URL) and, for HTTPS, the TLS server name (``sni_hostname``, also what the
    certificate is checked against) stay the original name.
    """

    def __init__(self, guard: Guard, inner: httpx.BaseTransport) -> None:
        self.guard = guard
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"{url.scheme or '(none)'}:// URLs are not fetched")
        port = url.port or (443 if url.scheme == "https" else 80)
        address = self.guard.vet(url.host, port)  # raises Refused: nothing is connected
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = url.host
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=address),
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )
        return self.inner.handle_request(pinned)

    def close(self) -> None:
        self.inner.close()


class _Deadline(threading.local):
    at: float | None = None  # time.monotonic() by which the request of this thread must be over


_deadline = _Deadline()


def _within(timeout: float | None) -> float | None:
    """``timeout`` shortened to what is left of this thread's request deadline (none left: a timeout now)."""
    if _deadline.at is None:
        return timeout
    left = _deadline.at - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the whole-response deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most until the request's deadline.

    httpx's timeouts are per read: a server sending a byte just before each read timeout (headers
    included, before any of our code sees the response) would otherwise hold a request forever.
    """

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _within(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _within(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self.inner.start_tls(ssl_context, server_hostname, _within(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self.inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self.inner.connect_tcp(host, port, _within(timeout), local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("web sources are fetched over TCP only")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _DeadlineTransport(httpx.BaseTransport):
    """httpx's transport interface over an httpcore pool whose connections end at the request's deadline.

    httpx has no option for the network backend of its own transport; httpcore's pool takes one, so
    this sends the request through that pool. The pool is configured as ``httpx.HTTPTransport()``
    configures its own by default: httpx's default TLS context and pool limits, HTTP/1.1, no retries.
    """

    def __init__(self) -> None:
        self.pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,  # httpx's default limits
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            retries=0,
            network_backend=_DeadlineBackend(httpcore.SyncBackend()),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("a synchronous transport needs a synchronous request body")
        url = request.url
        sent = httpcore.Request(
            request.method,
            httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,  # timeouts, and the TLS server name ``GuardedTransport`` keeps
        )
        with _as_httpx_errors():
            response = self.pool.handle_request(sent)
        return httpx.Response(
            response.status,
            headers=response.headers,
            stream=_ResponseBody(response),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.pool.close()


class _ResponseBody(httpx.SyncByteStream):
    """An httpcore response's body as httpx streams it; closing it gives the connection back to the pool."""

    def __init__(self, response: httpcore.Response) -> None:
        self.response = response

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self.response.iter_stream()

    def close(self) -> None:
        with _as_httpx_errors():
            self.response.close()


# httpcore's errors and the httpx errors of the same meaning (what ``Fetcher`` catches); subclasses first
_HTTPX_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        for httpcore_error, httpx_error in _HTTPX_ERRORS:
            if isinstance(error, httpcore_error):
                raise httpx_error(str(error)) from error
        raise


@dataclass(frozen=True)
class _Redirect:
    location: str  # absolute


class _Decoder:
    """Undoes a response's Content-Encoding piece by piece, never producing more than ``limit`` bytes in all.

    A gzip body of zeros shrinks about a thousand times: decompressing a whole 64 KB piece at once
    (as httpx does) would hold 64 MB before any cap could look at it.
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding.strip().lower()
        self.limit = limit
        self.produced = 0
        wbits: int | None
        if self.encoding in ("", "identity"):
            wbits = None
        elif self.encoding in ("gzip", "x-gzip"):
            wbits = _GZIP
        elif self.encoding == "deflate":
            wbits = zlib.MAX_WBITS  # zlib-wrapped, as the standard says; raw deflate is tried on failure
        else:
            raise FetchError(
                f"unsupported Content-Encoding {encoding.strip()!r} (only {ACCEPT_ENCODING} are asked for)"
            )
        self.inflater = zlib.decompressobj(wbits) if wbits is not None else None
        self.started = False

    def decode(self, data: bytes, out: bytearray) -> None:
        """Append what ``data`` decodes to onto ``out`` (no copy of the body on the way: memory stays near the cap)."""
        if self.inflater is None:
            self._count(len(data))
            out += data
            return
        pending = data
        while pending and not self.inflater.eof:
            try:
                piece = self.inflater.decompress(pending, min(self.limit - self.produced + 1, _PIECE))
            except zlib.error:
                if self.encoding == "deflate" and not self.started:  # raw deflate, as some servers send
                    self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    self.started = True
                    continue
                raise FetchError(f"the response's {self.encoding} body is corrupt") from None
            self.started = True
            self._count(len(piece))
            out += piece
            pending = self.inflater.unconsumed_tail
            if self.inflater.eof and self.inflater.unused_data[:2] == b"\x1f\x8b" and self.encoding != "deflate":
                pending = self.inflater.unused_data  # another gzip member follows
                self.inflater = zlib.decompressobj(_GZIP)

    def flush(self, out: bytearray) -> None:
        if self.inflater is not None:
            rest = self.inflater.flush()
            self._count(len(rest))
            out += rest

    def _count(self, size: int) -> None:
        self.produced += size
        if self.produced > self.limit:
            raise FetchError(f"response too large (more than {_mb(self.limit)}; stopped reading)")


class _RetryAfter(Exception):
    def __init__(self, status: int, seconds: float) -> None:
        super().__init__(status, seconds)
        self.status = status
        self.seconds = seconds

    def reason(self, cap: float) -> str:
        if self.seconds > cap:
            return f"HTTP {self.status} with Retry-After {self.seconds:g}s (more than {cap:g}s); left for the next run"
        return f"HTTP {self.status} again after waiting {self.seconds:g}s (Retry-After)"


@dataclass
class _Host:
    """One host's politeness: a slot per request in flight, and when it may be asked again."""

    slot: threading.BoundedSemaphore
    not_before: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.not_before = max(self.not_before, time.monotonic() + seconds)

    def wait_turn(self, cap: float) -> float:
        """Wait until the host may be asked again; the seconds waited."""
        with self.lock:
            wait = self.not_before - time.monotonic()
        if wait > cap:
            raise FetchError(
                f"the host asked to wait {wait:.0f}s (Retry-After, more than {cap:g}s); left for the next run"
            )
        if wait <= 0:
            return 0.0
        time.sleep(wait)
        return wait


def _retry_after(value: str) -> float:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date (unreadable: 60)."""
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 60.0
    return max(0.0, when.timestamp() - time.time())


def _mb(size: int) -> str:
    return f"{size / MB:g} MB" if size >= MB else f"{size} bytes"
