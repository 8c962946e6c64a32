"""From a request to a reply: one call into the search service, one Block Kit message.

The listeners only parse Slack payloads and send what these functions return.
Any error while computing a reply — a database problem, or a bug — becomes the
polite "not available" reply and one log line (:func:`report_failure`), never
a silent failure; each outcome is recorded in ``rt.health`` for ``/readyz``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from corpusbot.bot.ops.requestctx import current_request_id
from corpusbot.bot.slack import blocks, metadata
from corpusbot.bot.slack.blocks import Message, PageRef
from corpusbot.bot.slack.mrkdwn import code, escape, shorten
from corpusbot.bot.slack.runtime import Runtime
from corpusbot.index import CorpusbotError, index_corpus
from corpusbot.index.models import Answer

log = logging.getLogger("corpusbot.slack")
T = TypeVar("T")

ADMIN_REINDEX = "admin reindex"
ADMIN_FEEDBACK = "admin feedback"
ADMIN_COMMANDS = (ADMIN_REINDEX, ADMIN_FEEDBACK)


def guarded(fallback: Callable[[], T], *, question: bool = False) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn any error of ``func(rt, ...)`` into ``fallback()`` plus one log line.

    With ``question`` (a search for an answer) the outcome is recorded in ``rt.health``, which ``/readyz`` reads.
    """

    def decorate(func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def wrapper(rt: Runtime, /, *args: Any, **kwargs: Any) -> T:
            try:
                result = func(rt, *args, **kwargs)
            except Exception as error:
                report_failure(rt, func.__name__, error, question=question)
                return fallback()
            if question:
                rt.health.succeeded()
            return result

        return wrapper

    return decorate


def report_failure(rt: Runtime, where: str, error: Exception, *, question: bool = False) -> None:
    """One log line for an error while answering (with the request id); the traceback once per kind of error.

    An unusable index or database is expected to happen (a missing index, a reindex holding the database) and is
    logged without a traceback; anything else is a bug, whose traceback is worth having once.
    """
    if question:
        rt.health.failed(error)
    first = rt.health.first_of_its_kind(where, error)
    expected = isinstance(error, CorpusbotError | sqlite3.Error)
    log.error(
        "%s failed: %s; replying that the index is not available",
        where,
        error if expected else repr(error),
        exc_info=error if first and not expected else None,
        extra={"request_id": current_request_id()},
    )


@guarded(blocks.unavailable, question=True)
def answer(
    rt: Runtime,
    question: str,
    offset: int = 0,
    *,
    shareable: bool = False,
    show_question: bool = True,
    since: int | None = None,
    context: str | None = None,
) -> Message:
    """The answer from the current index; with ``since`` (the generation a More results click came from), a
    first line saying so when the index changed since then; ``context``: the earlier question it follows up on.

    Answers posted as messages carry message metadata (:mod:`.metadata`); ephemeral ones (the shareable ones)
    cannot."""
    with rt.metrics.answer_timer() as answered:
        result, generation = _ask(rt, question, offset, context)
        examples = rt.service.example_questions() if not result.hits else []
        message = blocks.answer_message(
            result, shareable=shareable, show_question=show_question, examples=examples, generation=generation
        )
        answered(result)
    if since is not None and generation is not None and since != generation:
        message = blocks.index_changed(message, since, generation)
    if not shareable and rt.settings.surface_on("metadata") and result.hits:
        message = dataclasses.replace(message, metadata=metadata.answer_metadata(result, generation))
    return message


@guarded(blocks.unavailable, question=True)
def shared(rt: Runtime, user_id: str, question: str, offset: int) -> Message:
    result, generation = _ask(rt, question, offset)
    return blocks.shared_answer(user_id, result, generation)


def _ask(rt: Runtime, question: str, offset: int, context: str | None = None) -> tuple[Answer, int | None]:
    """The answer and the index generation it came from (None when a reindex landed while asking)."""
    before = rt.service.generation
    result = rt.service.ask(question, k=rt.k, offset=offset, context=context)
    return result, before if rt.service.generation == before else None


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
    except Exception as error:
        report_failure(rt, "home", error)
        stats, examples = None, []
    view = blocks.home_view(stats, examples, is_admin=rt.is_admin(user_id))
    failing = _failing_sources(rt) if stats is not None else []
    if failing:  # after what the bot knows, within Slack's block limit
        lines = [_failing_line(row) for row in failing[:5]]
        more = f"\n…and {len(failing) - 5} more: `corpusbot stats` on the server." if len(failing) > 5 else ""
        note = blocks.section("*Sources failing* (their earlier articles stay)\n" + "\n".join(lines) + more)
        view["blocks"] = view["blocks"][: blocks.MAX_HOME_BLOCKS - 1]
        view["blocks"].insert(2, note)
    return view


def _failing_line(row: Any) -> str:
    reason = escape(shorten(row.last_error or "", 200))
    return f"• {escape(shorten(row.url, 200))}: {reason} (since {escape(row.failing_since or '?')})"


def _failing_sources(rt: Runtime) -> list[Any]:
    from corpusbot.index.sources.registry import failing_sources

    try:
        return failing_sources(rt.service.db_path)
    except Exception as error:  # the home tab shows without them rather than not at all
        report_failure(rt, "home: failing sources", error)
        return []


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
            summary = index_corpus(rt.service.db_path, fetch=_fetch_options())
        except Exception as error:
            expected = isinstance(error, CorpusbotError | sqlite3.Error)
            log.error("Reindex from Slack failed: %s", error if expected else repr(error), exc_info=not expected)
            send(blocks.notice("The reindex failed; the previous index is still in use. The server log says why."))
            return
        send(
            blocks.notice(
                f"Reindexed: {len(summary.added)} added, {len(summary.updated)} updated, "
                f"{len(summary.removed)} removed, {len(summary.skipped)} skipped → "
                f"{summary.articles} articles, {summary.passages} passages ({summary.seconds:.1f} s)."
                + (f" {len(summary.failed_sources)} web source(s) failed: App Home." if summary.failed_sources else "")
            )
        )
    finally:
        rt.reindex_lock.release()


def _fetch_options() -> Any:
    """How web sources are fetched: with the intranet allow-list of the configuration (CORPUSBOT_FETCH_ALLOW)."""
    from corpusbot.bot import config
    from corpusbot.index.sources.fetch import FetchOptions

    return FetchOptions(allow=config.fetch_allow())
