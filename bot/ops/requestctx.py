"""The id of the Slack request being handled, carried to every thread that works on it.

A new id is made for each incoming HTTP request and each Socket Mode
envelope (:func:`request_scope`). It lives in a ``contextvars`` variable, so
the log filter in :mod:`corpusbot.bot.ops.logsafe` can put it on every line.
bolt runs listeners on a thread pool after the ack;
:class:`ContextThreadPoolExecutor` hands each task the context of the thread
that submitted it, so lines logged by a listener carry the id of the request
that started it.
"""

from __future__ import annotations

import contextvars
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("corpusbot_request_id", default=None)


def new_request_id() -> str:
    """12 hex characters: unique enough to find one request's lines, short enough to read."""
    return secrets.token_hex(6)


def current_request_id() -> str | None:
    return REQUEST_ID.get()


@contextmanager
def request_scope(request_id: str | None = None) -> Iterator[str]:
    """Everything logged inside (and in tasks submitted from inside) carries ``request_id`` (a new one by default)."""
    token = REQUEST_ID.set(request_id or new_request_id())
    try:
        yield REQUEST_ID.get() or ""
    finally:
        REQUEST_ID.reset(token)


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks run in a copy of the submitter's context (and so keep its request id)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)
