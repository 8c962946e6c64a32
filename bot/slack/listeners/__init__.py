"""Slack listeners: each acknowledges at once, then does its work on the listener pool (:func:`after_ack`).

The app runs with bolt's ``process_before_response``: bolt calls a listener
in the request's own thread and answers Slack when it returns. Every listener
that searches, posts or writes is wrapped in :func:`after_ack`, so the answer
to Slack leaves as soon as the request is checked. (Otherwise bolt runs
listeners on its pool and polls for their ``ack()``, which delays every
acknowledgement.)

A request that was acknowledged is never left without a reply: the part of a
listener that answers runs inside :func:`replying`, and any error there gets
the polite "not available" reply and one log line. Listeners read payloads
through :mod:`corpusbot.bot.slack.payloads` (clean ``str`` values); a field
Slack would never send is noted in one log line (:func:`note_problems`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any

from slack_bolt import BoltContext

from corpusbot.bot.ops.requestctx import current_request_id
from corpusbot.bot.slack import blocks, pending
from corpusbot.bot.slack.blocks import Message
from corpusbot.bot.slack.replies import report_failure
from corpusbot.bot.slack.runtime import Runtime, runtime_of

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
        rt = runtime_of(context)
        work = rt.in_progress
        work.started()  # counted from now (the request is still in progress) until the listener ends
        try:
            executor.submit(_run, listener, kwargs, rt, context)
        except BaseException:
            work.finished()
            raise

    return acknowledge_then_submit


def _run(listener: Callable[..., None], kwargs: dict[str, Any], rt: Runtime, context: BoltContext) -> None:
    try:
        listener(**kwargs)
        pending.finish(rt, context)  # its reply was posted (or it failed, and the polite one was)
    except Exception as error:  # acknowledged already, and outside replying(): nobody to tell but the log
        first = rt.health.first_of_its_kind(listener.__name__, error)
        log.error(
            "Unexpected error in the Slack listener %s: %r",
            listener.__name__,
            error,
            exc_info=error if first else None,
            extra={"request_id": current_request_id()},
        )
    finally:
        rt.in_progress.finished()


@contextmanager
def replying(rt: Runtime, where: str, send: Callable[[Message], object]) -> Iterator[None]:
    """Answer a request inside this block: if anything in it fails, ``send`` the polite "not available" reply.

    The error gets one log line (its traceback the first time its kind is seen) and counts as a failed answer for
    ``/readyz``, unless it is the network failing on the way to Slack (then the reply most likely fails too, and
    that is one more log line).
    """
    try:
        yield
    except Exception as error:
        report_failure(rt, where, error, question=not isinstance(error, OSError))
        try:
            send(blocks.unavailable())
        except Exception as send_error:
            log.error(
                "Could not send the 'not available' reply either: %r",
                send_error,
                extra={"request_id": current_request_id()},
            )


def note_problems(kind: str, problems: tuple[str, ...]) -> None:
    """One line naming the fields of a payload that Slack would never send (they were ignored)."""
    if problems:
        log.warning(
            "Odd Slack %s payload (fields ignored): %s",
            kind,
            "; ".join(problems),
            extra={"request_id": current_request_id()},
        )
