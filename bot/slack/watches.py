"""Watches and "what's new" in Slack: ``/ask watch|watches|unwatch|new``, and posting what a reindex brought.

``/ask watch WORDS`` stores a watch for the channel (or DM) it was typed in (:mod:`corpusbot.bot.state.watches`);
``/ask watches`` lists the channel's watches by number (the watch's id, which stays the same when others are
removed); ``/ask unwatch N`` removes one, for the user who made it or an admin (``CORPUSBOT_ADMINS``).
``/ask new [SINCE]`` lists the articles indexed since SINCE (``24h``, ``3d``, ``2w``, ``90m`` or a
``YYYY-MM-DD`` day, UTC; default the last 24 hours), newest first.

:class:`WatchPoster` runs in every bot process: every ``every`` seconds it reads the index generation
(cheap), and when it changed (or at start) it checks every watch (:meth:`WatchPoster.check`): the
passages of articles indexed since the watch was last checked that match it confidently
(:meth:`corpusbot.index.SearchService.watch_matches`) are claimed in the state database, and whoever
claims them posts one message per watch to its channel, grouped by article and capped at
:data:`MAX_PASSAGES` passages with a count of the rest. With several processes or replicas on one
state database the claim picks one poster for each watch (see :mod:`corpusbot.bot.state.watches`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeGuard

from corpusbot.bot.slack import blocks
from corpusbot.bot.slack.blocks import Block, Message, actions, button, context, passage_mrkdwn, section
from corpusbot.bot.slack.mrkdwn import code, escape, link, shorten
from corpusbot.bot.slack.runtime import Runtime
from corpusbot.bot.state import StateUnavailable
from corpusbot.bot.state.watches import MAX_QUERY_CHARS, MAX_WATCHES_PER_CHANNEL, Watch, WatchRefused, same_query
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.search import dates
from corpusbot.index.search.query import parse_query
from corpusbot.index.search.watch import IndexedArticle, WatchMatch

if TYPE_CHECKING:
    from slack_sdk import WebClient

log = logging.getLogger("corpusbot.slack")

WATCH = "watch"
WATCHES = "watches"
UNWATCH = "unwatch"
NEW = "new"
SUBCOMMANDS = (WATCH, WATCHES, UNWATCH, NEW)

POLL_SECONDS = 30.0  # how often each process looks at the index generation
MAX_PASSAGES = 8  # passages shown in one watch message; the rest are counted, with a More button
MORE = "corpusbot_watch_more"  # the action id of that button
WATCH_PASSAGE_CHARS = 500
MAX_NEW_ARTICLES = 15  # articles /ask new lists; the rest are counted
DEFAULT_NEW_SINCE = timedelta(hours=24)


def subcommand(text: str) -> tuple[str, str] | None:
    """(subcommand, the rest) when ``text`` is ``watch …``, ``watches``, ``unwatch …`` or ``new [SINCE]``; else None.

    ``watches`` and ``new`` followed by other words are questions ("new sanctions on China?").
    """
    word, _, rest = text.strip().partition(" ")
    word = word.lower()
    if word not in SUBCOMMANDS:
        return None
    if word == WATCHES and rest.strip():
        return None  # "watches of the Swiss market" is a question
    if word == NEW and rest.strip() and not _DATE_LIKE.fullmatch(rest.strip().lower()):
        try:
            parse_since(rest)
        except ValueError:
            return None  # "new sanctions on China?" is a question
    return word, rest.strip()  # a malformed date ("new 2025-13-45") gets an error that shows the forms


_DATE_LIKE = re.compile(r"(since\s+)?\d[\d:/.tz+-]*[-:/][\d:/.tz+-]*")  # one token of digits with - : or /


def run(rt: Runtime, name: str, rest: str, user_id: str | None, channel_id: str | None) -> Message:
    """The reply to ``/ask watch|watches|unwatch|new``."""
    if name == NEW:
        return whats_new(rt, rest)
    if not channel_id:
        return blocks.notice("I can't tell which channel this is; try again from a channel or a direct message.")
    try:
        if name == WATCH:
            return add_watch(rt, rest, user_id or "?", channel_id)
        if name == WATCHES:
            return list_watches(rt, channel_id)
        return remove_watch(rt, rest, user_id, channel_id)
    except StateUnavailable as error:
        log.warning("/ask %s: the state database is unavailable (%s)", name, error.reason)
        return blocks.notice(
            "Sorry, I can't reach my own database right now, so watches can't change. Try again later."
        )


def add_watch(rt: Runtime, query: str, user_id: str, channel_id: str) -> Message:
    """``/ask watch WORDS``: store the watch (within the channel's cap), or say why not."""
    words = " ".join(query.split())
    if not words:
        return blocks.notice("Say what to watch for, e.g. `/ask watch rare earth export licences`.")
    if len(words) > MAX_QUERY_CHARS:
        return blocks.notice(f"A watch can be at most {MAX_QUERY_CHARS} characters long; use fewer words.")
    if not parse_query(words, rt.service.tokenizer, rt.service.synonyms).query_terms:  # stopwords, -excluded
        return blocks.notice(f"{code(shorten(words, 100))} has no words I can search for; use other words.")
    store = rt.state.watches
    refusal = _no_room(store.of_channel(channel_id), words)
    if refusal is not None:
        return refusal
    # What matches already is recorded as seen: only passages indexed later are posted.
    present = rt.service.watch_matches([words], None)
    try:
        watch = store.add(channel_id, words, user_id, present.checked_through, [m.key for m in present.matches[0]])
    except WatchRefused as refused:  # another add in this channel came first
        return _no_room(refused.existing, words) or blocks.notice("This channel can't take that watch now.")
    log.info("Watch #%d added in %s by %s", watch.id, channel_id, user_id)
    return blocks.notice(
        f"Watching {code(shorten(watch.query, 200))} here (#{watch.id}). After each reindex I'll post the new "
        f"passages that match it confidently. `/ask watches` lists this channel's watches; "
        f"`/ask unwatch {watch.id}` stops this one."
    )


def _no_room(existing: list[Watch], words: str) -> Message | None:
    """Why ``words`` cannot be watched in a channel with the watches ``existing``; None when it can."""
    if len(existing) >= MAX_WATCHES_PER_CHANNEL:
        return blocks.notice(
            f"This channel has {len(existing)} watches, the most it can have. Remove one with `/ask unwatch N` "
            "(`/ask watches` lists them)."
        )
    same = same_query(existing, words)
    if same is not None:
        return blocks.notice(f"This channel already watches {code(shorten(same.query, 200))} (#{same.id}).")
    return None


def list_watches(rt: Runtime, channel_id: str) -> Message:
    """``/ask watches``: the channel's watches by number, oldest first."""
    found = rt.state.watches.of_channel(channel_id)
    if not found:
        return blocks.notice("This channel has no watches. Add one with `/ask watch WORDS`.")
    lines = [f"*Watches in this channel* ({len(found)}):"]
    for watch in found:
        lines.append(
            f"*#{watch.id}* {code(shorten(watch.query, 200))} · by {_user(watch.user_id)} · {watch.created_at}"
        )
    lines.append("`/ask unwatch N` removes watch #N (its creator or an admin).")
    return Message(lines[0], [section(text) for text in _sections_of(lines)][: blocks.MAX_BLOCKS])


def _sections_of(lines: Sequence[str]) -> list[str]:
    """``lines`` joined into as few texts as hold them within a section's limit (each line is far shorter)."""
    texts = [""]
    for line in lines:
        joined = f"{texts[-1]}\n{line}" if texts[-1] else line
        if len(joined) > blocks.MAX_SECTION_TEXT:
            texts.append(line)
        else:
            texts[-1] = joined
    return texts


def remove_watch(rt: Runtime, rest: str, user_id: str | None, channel_id: str) -> Message:
    """``/ask unwatch N``: remove this channel's watch #N, for the user who made it or an admin."""
    number = rest.strip().lstrip("#")
    if not re.fullmatch(r"[0-9]{1,18}", number):  # not str.isdigit: "²" is a digit that int() refuses
        return blocks.notice(
            "Say which watch to remove by its number, e.g. `/ask unwatch 3` (`/ask watches` lists them)."
        )
    store = rt.state.watches
    watch = store.get(int(number))
    if watch is None or watch.channel_id != channel_id:
        return blocks.notice(f"This channel has no watch #{int(number)}. `/ask watches` lists its watches.")
    if user_id != watch.user_id and not rt.is_admin(user_id):
        return blocks.notice(
            f"Only {_user(watch.user_id)}, who made watch #{watch.id}, or a corpusbot admin can remove it."
        )
    store.remove(watch.id)
    log.info("Watch #%d removed from %s by %s", watch.id, channel_id, user_id)
    return blocks.notice(f"Stopped watching {code(shorten(watch.query, 200))} (#{watch.id}).")


def _user(user_id: str) -> str:
    return f"<@{user_id}>" if re.fullmatch(r"[UW][A-Z0-9]{1,20}", user_id) else code(shorten(user_id, 40))


# -- what's new ----------------------------------------------------------------------------------------------


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """When ``/ask new SINCE`` starts: ``24h``/``3d``/``2w``/``90m`` ago, or a ``YYYY-MM-DD`` day (UTC).

    ValueError, with the forms that work, for anything else.
    """
    try:
        return dates.parse_since(text, now or datetime.now(UTC), DEFAULT_NEW_SINCE)
    except ValueError:
        raise ValueError(
            f"{code(shorten(text, 40))} is not a time I understand. Try `/ask new`, `/ask new 3d`, `/ask new 12h` "
            "or `/ask new 2025-06-01`."
        ) from None


def whats_new(rt: Runtime, rest: str, now: datetime | None = None) -> Message:
    """``/ask new [SINCE]``: the articles indexed since then, newest first (or how to write SINCE)."""
    try:
        since = parse_since(rest, now)
    except ValueError as error:
        return blocks.notice(str(error))
    stamp = since.astimezone(UTC).isoformat(timespec="seconds")
    articles, total = rt.service.indexed_since(stamp, MAX_NEW_ARTICLES)
    return new_articles_message(stamp, articles, total)


def new_articles_message(since: str, articles: Sequence[IndexedArticle], total: int) -> Message:
    """The articles indexed since ``since`` (at most :data:`MAX_NEW_ARTICLES` shown, the rest counted)."""
    when = escape(since.replace("T", " ").replace("+00:00", " UTC"))
    if not articles:
        return blocks.notice(f"Nothing was indexed since {when}.")
    plural = "s" if total != 1 else ""
    out: list[Block] = [section(f"*{total} article{plural} indexed since {when}*, newest first:")]
    for item in articles:
        info = item.article
        facts = [escape(shorten(value, 100)) for value in (info.source, _published(info.published)) if value]
        facts.append(f"indexed {escape(item.indexed_at.replace('T', ' ').replace('+00:00', ' UTC'))}")
        facts.append(f"id {code(shorten(info.id, blocks.ID_CHARS))}")
        out.append(section(f"*{link(info.url, shorten(info.title or info.id, blocks.TITLE_CHARS))}*"))
        out.append(context(" · ".join(facts)))
    if total > len(articles):
        out.append(context(f"…and {total - len(articles)} more. `corpusbot new` on the server lists all of them."))
    return Message(f"{total} article{plural} indexed since {when}", out[: blocks.MAX_BLOCKS])


def _published(value: str | None) -> str | None:
    return f"published {value}" if value else None


# -- posting what a reindex brought --------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchPage:
    """Which passages a watch message's More button shows: the watch, the reindex it reported, the first one."""

    watch_id: int
    since: str | None  # the watch's checked_through before that reindex (None: everything)
    through: str  # the index's latest indexed_at when it was checked
    offset: int

    def to_value(self) -> str:
        return json.dumps(
            {"w": self.watch_id, "s": self.since, "t": self.through, "o": self.offset}, separators=(",", ":")
        )

    @classmethod
    def from_value(cls, value: str | None) -> WatchPage | None:
        try:
            data = json.loads(value or "")
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        watch_id, since, through, offset = data.get("w"), data.get("s"), data.get("t"), data.get("o")
        if not (_count(watch_id) and _count(offset)) or not isinstance(through, str):
            return None
        if not (since is None or isinstance(since, str)):
            return None
        return cls(watch_id, since, through, offset)


def _count(value: object) -> TypeGuard[int]:
    """A whole number of zero or more, as JSON gives it (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def more_of_a_watch(rt: Runtime, page: WatchPage) -> Message:
    """The next passages of the reindex a watch message reported (as the index holds them now), for the More button."""
    watch = rt.state.watches.get(page.watch_id)
    if watch is None:
        return blocks.notice("That watch was removed, so I can't show more of it.")
    found = rt.service.watch_matches([watch.query], page.since)
    matches = [match for match in found.matches[0] if match.indexed_at <= page.through]
    if page.offset >= len(matches):
        return blocks.notice("Those passages are no longer in the index; it was updated since.")
    following = WatchPage(watch.id, page.since, page.through, page.offset + MAX_PASSAGES)
    return watch_message(watch, matches, start=page.offset, more=following)


def watch_message(
    watch: Watch, matches: Sequence[WatchMatch], *, start: int = 0, more: WatchPage | None = None
) -> Message:
    """One message for ``watch``: its new passages grouped by article (at most :data:`MAX_PASSAGES`), cited.

    The passages from ``start`` on; when more follow them, they are counted, and with ``more`` a More button
    shows them (:func:`more_of_a_watch`).
    """
    query = code(shorten(watch.query, 200))
    articles = list(dict.fromkeys(m.article.id for m in matches))
    shown = list(matches[start : start + MAX_PASSAGES])
    plural = "s" if len(matches) != 1 else ""
    heading = "New for the watch" if start == 0 else f"More for the watch (from passage {start + 1})"
    out: list[Block] = [
        section(
            f"*{heading} {query}* (#{watch.id}): {len(matches)} passage{plural} in "
            f"{len(articles)} article{'s' if len(articles) != 1 else ''}"
        )
    ]
    for article_id in dict.fromkeys(m.article.id for m in shown):
        group = [m for m in shown if m.article.id == article_id]
        info = group[0].article
        facts = [escape(shorten(value, 100)) for value in (info.source, _published(info.published)) if value]
        facts.append(f"id {code(shorten(info.id, blocks.ID_CHARS))}")
        out.append(section(f"*{link(info.url, shorten(info.title or info.id, blocks.TITLE_CHARS))}*"))
        for match in group:
            text = passage_mrkdwn(match.passage.text, match.matches, limit=WATCH_PASSAGE_CHARS)
            out.append(section(f"*¶{match.passage.ordinal}* {text}"))
        out.append(context(" · ".join(facts)))
    rest = len(matches) - start - len(shown)
    if rest > 0:
        later = {m.article.id for m in matches[start + len(shown) :]}
        more_articles = len(later - {m.article.id for m in matches[: start + len(shown)]})
        out.append(
            context(
                f"…and {rest} more passage{'s' if rest != 1 else ''}"
                + (f" ({more_articles} more article{'s' if more_articles != 1 else ''})" if more_articles else "")
            )
        )
        if more is not None:
            out.append(actions(button(f"More ({rest})", MORE, more.to_value())))
    out.append(context(f"Watch #{watch.id} by {_user(watch.user_id)} · `/ask unwatch {watch.id}` stops it"))
    text = f"New for the watch {escape(shorten(watch.query, 200))}: {len(matches)} passage{plural}"
    return Message(text, [*out[: blocks.MAX_BLOCKS - 2], *out[-2:]] if len(out) > blocks.MAX_BLOCKS else out)


def _more_after(
    watch: Watch, since: str | None, through: str, matches: Sequence[WatchMatch], new: Sequence[WatchMatch]
) -> WatchPage | None:
    """The More button's page for a watch message showing ``new`` (what was claimed of ``matches``).

    :func:`more_of_a_watch` finds ``matches`` again, not knowing what was claimed before, so the page starts in
    ``matches`` right after the last passage shown: nothing new is skipped (a passage seen before may show again
    there, to the one who clicked; it is never posted again).
    """
    if len(new) <= MAX_PASSAGES:
        return None
    last_shown = new[MAX_PASSAGES - 1].key
    position = next(number for number, match in enumerate(matches) if match.key == last_shown)
    return WatchPage(watch.id, since, through, position + 1)


class WatchPoster:
    """Checks the watches after every reindex and posts what they found (one per process; see the docstring)."""

    def __init__(self, rt: Runtime, client: WebClient, *, every: float = POLL_SECONDS) -> None:
        self.rt = rt
        self.client = client
        self.every = every
        self._seen: object = None  # the generation checked last (None: not yet)
        self._checked_once = False
        self._lock = threading.Lock()  # one check at a time in this process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="corpusbot-watches", daemon=True)

    def start(self) -> WatchPoster:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        last_problem = None
        while True:
            try:
                self.poll()
                last_problem = None
            except Exception as error:  # never let the thread die; the next poll tries again
                problem = str(error) if isinstance(error, CorpusbotError) else repr(error)
                if problem != last_problem:  # one line per problem, not one every poll
                    log.error("Checking the watches failed (trying again every %.0f s): %s", self.every, problem)
                last_problem = problem
            if self._stop.wait(self.every):
                return

    def poll(self) -> int:
        """Check the watches when the index generation changed since the last check (or at the first); messages posted."""
        generation = self.rt.service.generation
        if self._checked_once and generation == self._seen:
            return 0
        posted = self.check()
        self._seen, self._checked_once = generation, True
        return posted

    def check(self) -> int:
        """Check every watch against what was indexed since it was last checked; how many messages were posted."""
        with self._lock:
            store = self.rt.state.watches
            watches = store.all()
            if not watches:
                return 0
            posted = 0
            by_since: dict[str | None, list[Watch]] = {}
            for watch in watches:
                by_since.setdefault(watch.checked_through, []).append(watch)
            for since, group in by_since.items():
                found = self.rt.service.watch_matches([w.query for w in group], since)
                if found.checked_through is None:
                    continue  # nothing indexed at all
                for watch, matches in zip(group, found.matches, strict=True):
                    if found.checked_through == since and not matches:
                        continue  # nothing indexed since
                    claimed = store.claim(watch, found.checked_through, [m.key for m in matches])
                    if not claimed:
                        continue  # nothing new for it, or another process took this step
                    fresh = set(claimed)
                    new = [m for m in matches if m.key in fresh]
                    more = _more_after(watch, since, found.checked_through, matches, new)
                    if self._post(watch, watch_message(watch, new, more=more)):
                        posted += 1
            return posted

    def _post(self, watch: Watch, message: Message) -> bool:
        try:
            response = self.client.chat_postMessage(
                channel=watch.channel_id, text=message.text, blocks=message.blocks, unfurl_links=False
            )
        except Exception as error:  # the passages stay claimed: never posted twice, at the cost of this message
            log.warning("Could not post watch #%d to %s: %s", watch.id, watch.channel_id, error)
            return False
        log.info("Posted watch #%d to %s", watch.id, watch.channel_id)
        return bool(response.get("ok"))
