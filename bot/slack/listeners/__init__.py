"""Slack listeners: each acknowledges at once, then does its work on the listener pool (:func:`after_ack`).

The app runs with bolt's ``process_before_response``: bolt calls a listener
in the request's own thread and answers Slack when it returns. Every listener
that searches, posts or writes is wrapped in :func:`after_ack`, so the answer
to Slack leaves as soon as the request is checked. (Otherwise bolt runs
listeners on its pool and polls for their ``ack()``, which delays every
acknowledgement.)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from slack_bolt import BoltContext

from corpusbot.bot.slack.runtime import InProgress, runtime_of

EXECUTOR_KEY = "corpusbot_executor"

log = logging.getLogger("corpusbot.slack")


def after_ack(listener: Callable[..., None]) -> Callable[..., None]:
    """``listener`` (which must take ``context``), run on the pool after the request is acknowledged.

    bolt passes the arguments the original listener names (it reads them
    through ``functools.wraps``); the listener gets them unchanged, minus ``ack``.
    """

    @functools.wraps(listener)
    def acknowledge_then_submit(**kwargs: Any) -> None:
        context: BoltContext = kwargs["context"]
        context.ack()
        executor: Executor = context[EXECUTOR_KEY]
        work = runtime_of(context).in_progress
        work.started()  # counted from now (the request is still in progress) until the listener ends
        try:
            executor.submit(_run, listener, kwargs, work)
        except BaseException:
            work.finished()
            raise

    return acknowledge_then_submit


def _run(listener: Callable[..., None], kwargs: dict[str, Any], work: InProgress) -> None:
    try:
        listener(**kwargs)
    except Exception as error:  # the request was acknowledged already: log it, as bolt's error handler would
        log.error("Unexpected error in the Slack listener %s: %r", listener.__name__, error, exc_info=error)
    finally:
        work.finished()
