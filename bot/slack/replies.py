"""From a request to a reply: one call into the search service, one Block Kit message.

The listeners only parse Slack payloads and send what these functions return.
A database problem becomes a polite "not available" reply and a log line,
never a silent failure.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from corpusbot.bot.slack import blocks
from corpusbot.bot.slack.blocks import Message, PageRef
from corpusbot.bot.slack.mrkdwn import code, escape, shorten
from corpusbot.bot.slack.runtime import Runtime
from corpusbot.index import CorpusbotError, index_corpus

log = logging.getLogger("corpusbot.slack")
T = TypeVar("T")

ADMIN_REINDEX = "admin reindex"
ADMIN_FEEDBACK = "admin feedback"
ADMIN_COMMANDS = (ADMIN_REINDEX, ADMIN_FEEDBACK)


def guarded(fallback: Callable[[], T]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn an unusable index or database into ``fallback()`` plus one log line."""

    def decorate(func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return func(*args, **kwargs)
            except (CorpusbotError, sqlite3.Error) as error:
                log.error("%s failed: %s", func.__name__, error)
                return fallback()

        return wrapper

    return decorate


@guarded(blocks.unavailable)
def answer(
    rt: Runtime, question: str, offset: int = 0, *, shareable: bool = False, show_question: bool = True
) -> Message:
    with rt.metrics.answer_timer() as answered:
        result = rt.service.ask(question, k=rt.k, offset=offset)
        examples = rt.service.example_questions() if not result.hits else []
        message = blocks.answer_message(result, shareable=shareable, show_question=show_question, examples=examples)
        answered(result)
    return message


@guarded(blocks.unavailable)
def shared(rt: Runtime, user_id: str, question: str, offset: int) -> Message:
    return blocks.shared_answer(user_id, rt.service.ask(question, k=rt.k, offset=offset))


@guarded(blocks.unavailable)
def usage(rt: Runtime) -> Message:
    return blocks.help_message(rt.service.example_questions())


@guarded(blocks.unavailable)
def article(rt: Runtime, query: str) -> Message:
    """An article card for an id; otherwise the articles matching the words, or the closest ids."""
    if not query:
        return blocks.notice("Give an article id or some words from its title, e.g. `/article rare earth licenses`.")
    found = rt.service.article(query)
    if found is not None:
        info, passages = found
        return blocks.article_card(info, len(passages), passages[0] if passages else None)
    closest = rt.service.closest_ids(query) if " " not in query else []
    matches = rt.service.find_articles(query)
    if matches:
        return blocks.article_list(query, matches, closest)
    return blocks.article_not_found(query, closest)


@guarded(blocks.unavailable)
def passages(rt: Runtime, ref: PageRef) -> Message:
    found = rt.service.article(ref.article_id)
    if found is None:
        return blocks.article_not_found(ref.article_id, rt.service.closest_ids(ref.article_id))
    page, total = rt.service.passages_of(ref.article_id, offset=ref.offset, limit=blocks.PASSAGES_PER_PAGE)
    return blocks.passages_page(found[0], page, ref.offset, total)


def home(rt: Runtime, user_id: str | None) -> dict[str, Any]:
    try:
        stats, examples = rt.service.stats(), rt.service.example_questions()
    except (CorpusbotError, sqlite3.Error) as error:
        log.error("App Home: %s", error)
        stats, examples = None, []
    return blocks.home_view(stats, examples, is_admin=rt.is_admin(user_id))


def admin(rt: Runtime, user_id: str | None, command: str, send: Callable[[Message], object]) -> None:
    """Run an admin command for an admin; politely refuse everyone else."""
    if not rt.is_admin(user_id):
        log.info("Refused %r to non-admin %s", command, user_id)
        send(blocks.admin_only(command))
    elif command == ADMIN_FEEDBACK:
        send(feedback_summary(rt))
    elif command == ADMIN_REINDEX:
        reindex(rt, send)


@guarded(blocks.unavailable)
def feedback_summary(rt: Runtime, last: int = 10) -> Message:
    records = rt.state.feedback()
    if not records:
        return blocks.notice("No feedback yet.")
    helpful = sum(1 for r in records if r.verdict == "helpful")
    lines = [f"*Feedback:* {helpful} helpful, {len(records) - helpful} not helpful. Latest:"]
    for record in records[:last]:
        mark = "+" if record.verdict == "helpful" else "−"
        lines.append(
            f"{mark} {escape(record.created_at)} {code(record.user_id)}: {escape(shorten(record.question, 200))}"
        )
    lines.append("All of it: `corpusbot feedback --json` on the server.")
    return blocks.notice("\n".join(lines))


def reindex(rt: Runtime, send: Callable[[Message], object]) -> None:
    if not rt.reindex_lock.acquire(blocking=False):
        send(blocks.notice("A reindex is already running; I'll post its result when it finishes."))
        return
    try:
        send(blocks.notice("Reindexing the corpus… I'll tell you when it's done."))
        try:
            summary = index_corpus(rt.service.db_path)
        except (CorpusbotError, sqlite3.Error) as error:
            log.error("Reindex from Slack failed: %s", error)
            send(blocks.notice("The reindex failed; the previous index is still in use. The server log says why."))
            return
        send(
            blocks.notice(
                f"Reindexed: {len(summary.added)} added, {len(summary.updated)} updated, "
                f"{len(summary.removed)} removed, {len(summary.skipped)} skipped → "
                f"{summary.articles} articles, {summary.passages} passages ({summary.seconds:.1f} s)."
            )
        )
    finally:
        rt.reindex_lock.release()
