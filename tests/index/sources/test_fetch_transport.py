"""The fetcher's own transport: HTTPS to the vetted address checked against the name, and no socket left open.

Servers are FeedServers on 127.0.0.1; for HTTPS, its socket is wrapped with a certificate from a CA made here
(``openssl``) and trusted through ``SSL_CERT_FILE``, as httpx's default TLS context reads it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpusbot.index.sources.fetch import Fetcher, FetchError
from tests.index.sources.conftest import options
from tests.support.feed_server import FeedServer


def sockets_to(port: int) -> int:
    """This process's open TCP sockets connected to ``port`` on loopback (from /proc: no dependency)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == port:  # the remote address
            inodes.add(f"socket:[{fields[9]}]")
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor, closed by now
            found += os.readlink(f"/proc/self/fd/{fd}") in inodes
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads open sockets from /proc")
def test_closing_the_fetcher_closes_its_connections(web: FeedServer) -> None:
    web.set("other.xml", b"<rss/>", "application/rss+xml")
    port = web.httpd.server_address[1]
    fetcher = Fetcher(options())
    fetcher.fetch(web.url("feeds/rss.xml"))
    fetcher.fetch(web.url("other.xml"))
    assert sockets_to(port) >= 1  # kept alive for the next request
    fetcher.close()
    assert sockets_to(port) == 0


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ca.pem`` and, signed by it, ``news.pem`` / ``news.key`` for the name ``news.test``."""
    if shutil.which("openssl") is None:
        pytest.skip("makes its certificates with the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req", "-x509", *curve, "-keyout", folder / "ca.key", "-out", folder / "ca.pem", "-days", "2",
        "-subj", "/CN=corpusbot test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl(
        "req", "-new", *curve, "-keyout", folder / "news.key", "-out", folder / "news.csr", "-subj", "/CN=news.test"
    )
    (folder / "news.ext").write_text("subjectAltName = DNS:news.test\nbasicConstraints = CA:FALSE\n")
    openssl(
        "x509", "-req", "-in", folder / "news.csr", "-CA", folder / "ca.pem", "-CAkey", folder / "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", folder / "news.ext", "-out", folder / "news.pem",
    )  # fmt: skip
    return folder


@pytest.fixture
def tls_web(certificates: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedServer]:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "news.pem", certificates / "news.key")
    server = FeedServer()
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    with server:
        yield server


def news(server: FeedServer, path: str) -> str:
    return f"https://news.test:{server.httpd.server_address[1]}/{path}"


def test_https_goes_to_the_vetted_address_and_checks_the_certificate_for_the_name(tls_web: FeedServer) -> None:
    resolved: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    with Fetcher(options(resolve=resolve)) as fetcher:
        fetched = fetcher.fetch(news(tls_web, "feeds/rss.xml"))
    assert b"<rss" in fetched.body and fetched.url == news(tls_web, "feeds/rss.xml")
    assert set(resolved) == {"news.test"}
    assert tls_web.hits("feeds/rss.xml")[0].headers["host"] == f"news.test:{tls_web.httpd.server_address[1]}"


def test_a_certificate_for_another_name_is_refused(tls_web: FeedServer) -> None:
    with (
        Fetcher(options(resolve=lambda host, port: ["127.0.0.1"])) as fetcher,
        pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        fetcher.fetch(f"https://elsewhere.test:{tls_web.httpd.server_address[1]}/feeds/rss.xml")
    assert tls_web.requests == []
