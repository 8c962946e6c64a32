"""Posting to ``response_url``: urllib3's connection pool and its ``Retry``, both public API.

Slack's ``response_url`` hosts are few (``hooks.slack.com``), so a bot
answering many questions keeps its connections to them open: one
``urllib3.PoolManager`` per process (thread-safe) reuses them, and checks that
an idle connection is still open before it reuses it. slack_sdk's
``WebhookClient`` (``urllib``) opens a new connection for every post; with
gunicorn's workers that cost the ``/ask`` path at 1M passages a p95 of 63 ms
instead of 43 ms (benchmarks/README.md, "gunicorn").

What fails is sent again by urllib3's ``Retry``, as slack_sdk's retry handlers
did: a connection that could not be made or was dropped before an answer,
once; an HTTP 429 after the ``Retry-After`` it names, an HTTP 500 or 503 after
a short back-off, three times in all. Any other status comes back as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.util.retry import Retry

TIMEOUT_SECONDS = 30.0  # slack_sdk's default
CONNECT_TIMEOUT_SECONDS = 10.0
CONNECTION_RETRIES = 1  # could not connect, or the connection dropped before an answer
STATUS_RETRIES = 3  # 429 (after its Retry-After), 500 and 503
RETRIED_STATUSES = frozenset({429, 500, 503})
BACKOFF_SECONDS = 0.25  # before a retried 500/503: 0.25 s, then 0.5 s, ...
CONNECTIONS_PER_HOST = 32  # about the listener pool's size: one per thread that posts at once
HOSTS = 8  # origins whose connections are kept (Slack uses one or two)


def retries() -> Retry:
    """When a post is sent again (see the module); POST included, which urllib3 leaves out by default."""
    return Retry(
        total=CONNECTION_RETRIES + STATUS_RETRIES,
        connect=CONNECTION_RETRIES,
        read=CONNECTION_RETRIES,
        other=0,
        redirect=0,
        status=STATUS_RETRIES,
        status_forcelist=RETRIED_STATUSES,
        allowed_methods=None,  # every method: Slack sends each response_url post to the channel at most once
        backoff_factor=BACKOFF_SECONDS,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer comes back, whatever its status
        raise_on_redirect=False,
    )


def pool() -> urllib3.PoolManager:
    """A pool of kept-alive connections for one process (make it after a fork: connections must not be shared)."""
    return urllib3.PoolManager(
        num_pools=HOSTS,
        maxsize=CONNECTIONS_PER_HOST,
        retries=retries(),
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=TIMEOUT_SECONDS),
    )


@dataclass(frozen=True)
class Posted:
    """Slack's answer to a post: its status and body (``ok``, or the reason it was refused)."""

    status: int
    body: str


def post(connections: urllib3.PoolManager, url: str, payload: dict[str, Any]) -> Posted:
    """POST ``payload`` as JSON to ``url`` over ``connections``, retrying as :func:`retries` says.

    Raises ``urllib3.exceptions.HTTPError`` (``MaxRetryError``) when no connection could be made or kept.
    """
    response = connections.request(
        "POST",
        url,
        body=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json;charset=utf-8"},
    )
    return Posted(response.status, response.data.decode("utf-8", "replace"))
