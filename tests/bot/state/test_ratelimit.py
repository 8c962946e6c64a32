"""The per-user rate limiter: a sliding window, one notice per flood, and off when the limit is 0."""

from __future__ import annotations

from corpusbot.bot.config import RateLimit
from corpusbot.bot.state.ratelimit import RateLimiter, Verdict
from tests.bot.state.conftest import Clock


def test_rate_limiter_allows_then_notices_once_then_drops(clock: Clock) -> None:
    limiter = RateLimiter(RateLimit(3, 60), clock=clock)
    verdicts = [limiter.check("U1") for _ in range(6)]
    assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.NOTICE, Verdict.DROP, Verdict.DROP]
    assert limiter.check("U2") is Verdict.ALLOW
    assert limiter.retry_after("U1") == 60
    clock.now += 30
    assert limiter.retry_after("U1") == 30
    clock.now += 30
    assert limiter.check("U1") is Verdict.ALLOW  # the window slid past the first three
    assert [limiter.check("U1") for _ in range(3)] == [Verdict.ALLOW, Verdict.ALLOW, Verdict.NOTICE]


def test_rate_limiter_off() -> None:
    limiter = RateLimiter(RateLimit(0, 60))
    assert all(limiter.check("U1") is Verdict.ALLOW for _ in range(1000))


def test_a_user_who_never_asked_may_ask_now() -> None:
    assert RateLimiter(RateLimit(3, 60)).retry_after("U1") == 0
