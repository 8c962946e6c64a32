"""The HTTP client against a real server on loopback: conditional requests, limits, politeness, robots.txt."""

from __future__ import annotations

import re
import time

import pytest

from corpusbot.index.sources.fetch import Fetcher, FetchError, user_agent
from corpusbot.index.sources.guard import AllowList, Refused
from tests.index.sources.conftest import options
from tests.support.feed_server import FeedServer


def test_a_second_request_with_the_validators_costs_one_304(web: FeedServer) -> None:
    with Fetcher(options()) as fetcher:
        first = fetcher.fetch(web.url("feeds/rss.xml"))
        assert not first.not_modified and b"<rss" in first.body and first.etag and first.last_modified
        again = fetcher.fetch(web.url("feeds/rss.xml"), etag=first.etag, last_modified=first.last_modified)
    assert again.not_modified and again.body == b""
    conditional = web.hits("feeds/rss.xml")[-1].headers
    assert conditional["if-none-match"] == first.etag
    assert conditional["if-modified-since"] == first.last_modified


def test_requests_say_who_is_fetching(web: FeedServer) -> None:
    with Fetcher(options()) as fetcher:
        fetcher.fetch(web.url("feeds/rss.xml"))
    agent = web.hits("feeds/rss.xml")[0].headers["user-agent"]
    assert agent == user_agent() and agent.startswith("corpusbot/") and "(+http" in agent


def test_a_redirect_loop_stops_at_the_limit(web: FeedServer) -> None:
    with Fetcher(options(max_redirects=3)) as fetcher, pytest.raises(FetchError, match="too many redirects"):
        fetcher.fetch(web.url("loop/a"))
    assert len(web.hits("loop/a")) + len(web.hits("loop/b")) == 4  # the request and 3 redirects


def test_a_50_mb_response_is_cut_at_the_cap(web: FeedServer) -> None:
    started = time.monotonic()
    with Fetcher(options(max_bytes=256 * 1024)) as fetcher, pytest.raises(FetchError, match="too large"):
        fetcher.fetch(web.url("huge.xml"))
    assert time.monotonic() - started < 10  # stopped reading, not downloaded whole


def test_a_declared_size_over_the_cap_is_refused_before_reading(web: FeedServer) -> None:
    web.set("big.html", b"x" * 300_000)
    with Fetcher(options(max_bytes=100_000)) as fetcher, pytest.raises(FetchError, match=r"too large \(0.3 MB"):
        fetcher.fetch(web.url("big.html"))


def test_a_server_that_never_answers_times_out(web: FeedServer) -> None:
    with Fetcher(options(read_timeout=0.3)) as fetcher, pytest.raises(FetchError, match="timed out"):
        fetcher.fetch(web.url("hang"))


def test_http_errors_are_reasons(web: FeedServer) -> None:
    web.set("gone.html", b"gone", status=410)
    with Fetcher(options()) as fetcher:
        with pytest.raises(FetchError, match="HTTP 404"):
            fetcher.fetch(web.url("missing.html"))
        with pytest.raises(FetchError, match="HTTP 410"):
            fetcher.fetch(web.url("gone.html"))


def test_retry_after_is_honoured_then_the_request_is_tried_again(web: FeedServer) -> None:
    started = time.monotonic()
    with Fetcher(options(retry_after_cap=2.0)) as fetcher:
        fetched = fetcher.fetch(web.url("busy"))
    assert b"<rss" in fetched.body
    assert time.monotonic() - started >= 0.9  # waited the second Retry-After asked for
    assert len(web.hits("busy")) == 2


def test_retry_after_above_the_cap_leaves_the_host_alone_for_the_run(web: FeedServer) -> None:
    with Fetcher(options(retry_after_cap=2.0)) as fetcher:
        with pytest.raises(FetchError, match="Retry-After 3600s"):
            fetcher.fetch(web.url("closed"))
        with pytest.raises(FetchError, match="asked to wait"):
            fetcher.fetch(web.url("feeds/rss.xml"))  # same host: not asked again in this run
    assert web.hits("feeds/rss.xml") == []


def test_robots_txt_is_obeyed_and_read_once(web: FeedServer) -> None:
    with Fetcher(options()) as fetcher:
        with pytest.raises(FetchError, match=r"robots\.txt .* disallows"):
            fetcher.fetch(web.url("private/memo.html"))
        fetcher.fetch(web.url("feeds/rss.xml"))
    assert web.hits("private/memo.html") == []
    assert len(web.hits("robots.txt")) == 1


def test_at_most_per_host_requests_in_flight(web: FeedServer) -> None:
    """Four slow requests to one host with per_host=2 take two rounds."""
    from concurrent.futures import ThreadPoolExecutor

    with Fetcher(options(per_host=2, read_timeout=0.4)) as fetcher:
        fetcher.fetch(web.url("feeds/rss.xml"))  # robots.txt read before the clock starts

        def slow(_: int) -> str:
            try:
                fetcher.fetch(web.url("hang"))
            except FetchError as error:
                return str(error)
            return "answered"

        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            reasons = list(pool.map(slow, range(4)))
        elapsed = time.monotonic() - started
    assert all("timed out" in reason for reason in reasons)
    assert elapsed >= 0.75  # two rounds of 0.4 s; with four in flight it would be one


def test_without_the_allow_list_loopback_is_refused_and_never_connected(web: FeedServer) -> None:
    with Fetcher(options(allow=AllowList())) as fetcher, pytest.raises(FetchError, match="not a public address"):
        fetcher.fetch(web.url("feeds/rss.xml"))
    assert web.requests == []


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(404, "fetched"), (410, "fetched"), (401, "disallows"), (403, "disallows"), (500, "could not be read")],
)
def test_robots_txt_answers_other_than_200(web: FeedServer, status: int, outcome: str) -> None:
    web.set("robots.txt", b"nope", "text/plain", status=status)
    with Fetcher(options()) as fetcher:
        if outcome == "fetched":
            assert b"<rss" in fetcher.fetch(web.url("feeds/rss.xml")).body
        else:
            with pytest.raises(FetchError, match=outcome):
                fetcher.fetch(web.url("feeds/rss.xml"))
            assert web.hits("feeds/rss.xml") == []


@pytest.mark.parametrize("url", ["http://[::1", "http://exa mple.test/", "https://", "http://:80/"])
def test_malformed_urls_are_reasons(url: str) -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise Refused(f"{host} does not resolve")  # (no lookup leaves the machine in tests)

    with Fetcher(options(resolve=no_dns)) as fetcher, pytest.raises(FetchError) as failure:
        fetcher.fetch(url)
    assert re.search("invalid URL|unsupported URL|no host|does not resolve", str(failure.value))
