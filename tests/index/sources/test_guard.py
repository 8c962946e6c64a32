"""The SSRF guard: which addresses are refused, decided before any connection.

No test here connects anywhere: names resolve through stub resolvers, and the transport under the
guard is a recorder that answers without a network. A refused request must never reach it.
"""

from __future__ import annotations

import httpx
import pytest

from corpusbot.index.sources.fetch import Fetcher, FetchError, FetchOptions, GuardedTransport
from corpusbot.index.sources.guard import AllowList, Guard, Refused, is_public

NOT_PUBLIC = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1: not global
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


def stub(answers: dict[str, list[str]]):
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        name = host.lower().rstrip(".")
        if name not in answers:
            raise Refused(f"{host} does not resolve")
        return answers[name]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


class Recorder(httpx.BaseTransport):
    """Stands where the network would be: records what reaches it, answers 200 without connecting."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, headers={"content-type": "text/plain"}, content=b"ok", request=request)


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused(address: str) -> None:
    import ipaddress

    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(Refused, match="not a public address"):
        Guard(resolve=stub({"news.test": [address]})).vet("news.test", 443)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    import ipaddress

    vetted = Guard(resolve=stub({"news.test": [address]})).vet("news.test", 443)
    assert ipaddress.ip_address(vetted) == ipaddress.ip_address(address)


def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    with pytest.raises(Refused, match=r"10\.0\.0\.7"):
        Guard(resolve=stub({"news.test": ["93.184.216.34", "10.0.0.7"]})).vet("news.test", 80)


def test_ip_literals_are_checked_without_resolving() -> None:
    resolve = stub({})
    guard = Guard(resolve=resolve)
    with pytest.raises(Refused):
        guard.vet("127.0.0.1", 80)
    with pytest.raises(Refused):
        guard.vet("[::1]", 80)
    assert guard.vet("8.8.8.8", 80) == "8.8.8.8"
    assert resolve.calls == []  # type: ignore[attr-defined]


def test_allow_list_by_name_suffix_and_network() -> None:
    allow = AllowList.parse(["wiki.corp.test", ".intra.test", "10.20.0.0/16", "192.168.7.7"])
    guard = Guard(
        allow,
        stub(
            {
                "wiki.corp.test": ["10.9.9.9"],
                "docs.intra.test": ["172.16.5.5"],
                "build.test": ["10.20.3.4"],
                "printer.test": ["192.168.7.7"],
                "other.test": ["10.21.0.1"],
                "intra.test.evil": ["10.0.0.1"],
            }
        ),
    )
    assert guard.vet("wiki.corp.test", 80) == "10.9.9.9"
    assert guard.vet("WIKI.corp.test.", 80) == "10.9.9.9"
    assert guard.vet("docs.intra.test", 80) == "172.16.5.5"
    assert guard.vet("build.test", 80) == "10.20.3.4"
    assert guard.vet("printer.test", 80) == "192.168.7.7"
    for host in ("other.test", "intra.test.evil"):
        with pytest.raises(Refused):
            guard.vet(host, 80)


@pytest.mark.parametrize("entry", ["http://wiki.test", "wiki test", "a..b", "10.0.0.0/33", "[::1]"])
def test_allow_list_refuses_what_is_no_host_or_network(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a host name nor"):
        AllowList.parse([entry])


def test_a_refused_host_is_never_connected_to() -> None:
    recorder = Recorder()
    options = FetchOptions(resolve=stub({"metadata.test": ["169.254.169.254"]}), transport=recorder)
    with Fetcher(options) as fetcher, pytest.raises(FetchError, match=r"refused: .*169\.254\.169\.254"):
        fetcher.fetch("http://metadata.test/latest/meta-data/")
    assert recorder.requests == []  # not even robots.txt: the guard refused before any connection


def test_the_connection_goes_to_the_vetted_address_with_the_original_host_name() -> None:
    """DNS rebinding: the name is resolved once, by the guard, and the request is pinned to that address."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # a second lookup would get loopback

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    recorder = Recorder()
    transport = GuardedTransport(Guard(resolve=rebinding), recorder)
    with httpx.Client(transport=transport) as client:
        client.get("https://news.test/story")
    (sent,) = recorder.requests
    assert sent.url.host == "93.184.216.34" and sent.url.path == "/story"
    assert sent.headers["host"] == "news.test"
    assert sent.extensions["sni_hostname"] == "news.test"  # TLS checks the certificate of the name


def test_every_redirect_hop_is_vetted_before_connecting() -> None:
    """A public page redirecting to an internal one: the hop is refused, nothing reaches the internal address."""
    sent: list[str] = []

    class Redirector(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(str(request.url.host))
            if request.url.path == "/robots.txt":
                return httpx.Response(404, request=request)
            return httpx.Response(302, headers={"location": "http://internal.test/admin"}, request=request)

    resolve = stub({"news.test": ["93.184.216.34"], "internal.test": ["10.0.0.5"]})
    refused = r"refused: internal\.test resolves to 10\.0\.0\.5"
    with (
        Fetcher(FetchOptions(resolve=resolve, transport=Redirector())) as fetcher,
        pytest.raises(FetchError, match=refused),
    ):
        fetcher.fetch("http://news.test/story")
    assert sent == ["93.184.216.34", "93.184.216.34"]  # robots.txt and the page; never 10.0.0.5
    assert resolve.calls.count("internal.test") == 1  # type: ignore[attr-defined]


def test_only_http_and_https_are_fetched() -> None:
    recorder = Recorder()
    with Fetcher(FetchOptions(resolve=stub({}), transport=recorder)) as fetcher:
        for url in ("file:///etc/passwd", "ftp://news.test/a", "gopher://news.test/"):
            with pytest.raises(FetchError, match="unsupported URL"):
                fetcher.fetch(url)
    assert recorder.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0x7f.1/",  # hex and short form
        "http://017700000001/",  # octal
        "http://127.1/",
        "http://0/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::1]:8080/",
        "http://0.0.0.0/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://public.example@127.0.0.1/",  # the host is what follows the @
        "http://[::ffff:a9fe:a9fe]/",  # 169.254.169.254, IPv4-mapped
    ],
)
def test_numeric_and_disguised_hosts_are_refused_by_what_they_resolve_to(url: str) -> None:
    """The system resolver reads these numeric forms itself (no DNS query); the guard judges the address."""
    recorder = Recorder()
    with Fetcher(FetchOptions(transport=recorder)) as fetcher, pytest.raises(FetchError, match="not a public address"):
        fetcher.fetch(url)
    assert recorder.requests == []


def test_a_followed_redirect_ends_at_the_host_name_not_the_pinned_address() -> None:
    paths: list[str] = []

    class Moved(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            paths.append(request.url.path)
            if request.url.path == "/old":
                return httpx.Response(301, headers={"location": "/new"}, request=request)
            return httpx.Response(200, headers={"content-type": "text/plain"}, content=b"ok", request=request)

    options = FetchOptions(resolve=stub({"news.test": ["93.184.216.34"]}), transport=Moved())
    with Fetcher(options) as fetcher:
        fetched = fetcher.fetch("http://news.test/old")
    assert (fetched.url, fetched.body) == ("http://news.test/new", b"ok")
    assert paths == ["/robots.txt", "/old", "/new"]
