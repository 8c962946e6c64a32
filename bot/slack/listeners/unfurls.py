"""Link unfurls: a posted link to an article of the corpus gets the article's card under it.

Slack sends ``link_shared`` for links to the domains the manifest lists in
``unfurl_domains`` (``corpusbot manifest``). Each link that normalises to an
article's URL (:mod:`corpusbot.bot.slack.links`) gets the card (title, source,
date, passage count, first passage) through ``chat.unfurl``; a link to
anything else gets nothing, and no call is made when none matched; nor in a
channel outside the ``CORPUSBOT_CHANNELS`` allow-list. Links in a posted
message are unfurled by its channel and ts (:func:`target`), links typed in
the message composer (``source: composer``, no channel known) by their
``unfurl_id``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from corpusbot.bot.slack import surface_blocks, surface_payloads
from corpusbot.bot.slack.links import ArticleLinks
from corpusbot.bot.slack.listeners import after_ack, note_problems
from corpusbot.bot.slack.replies import report_failure
from corpusbot.bot.slack.runtime import Runtime, runtime_of
from corpusbot.bot.slack.surface_payloads import LinkShared

LINKS_KEY = "corpusbot_article_links"
COMPOSER = "composer"  # link_shared's source for a link still being typed (no channel known)

log = logging.getLogger("corpusbot.slack")


def register(app: App) -> None:
    """``link_shared``, with the map of the index's article URLs every listener call shares."""
    known = _KnownLinks()

    def attach_links(context: BoltContext, next: Any) -> Any:
        context[LINKS_KEY] = known
        return next()

    app.middleware(attach_links)
    app.event("link_shared")(on_link_shared)


@after_ack
def on_link_shared(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """Unfurl the links that are articles of the corpus with their cards, in one ``chat.unfurl`` call."""
    rt = runtime_of(context)
    shared = surface_payloads.link_shared(event)
    note_problems("link_shared", shared.problems)
    where = target(shared)
    if not shared.urls or where is None:
        return
    if shared.source != COMPOSER and not rt.channel_enabled(shared.channel):  # CORPUSBOT_CHANNELS: quiet elsewhere
        return
    try:
        unfurls = cards(rt, context[LINKS_KEY].of(rt), shared.urls)
    except Exception as error:  # the index: no unfurl is no harm
        report_failure(rt, "link unfurl", error)
        return
    if not unfurls:
        return
    try:
        client.chat_unfurl(unfurls=unfurls, **where)
    except SlackApiError as error:
        log.warning("chat.unfurl refused (%s)", error.response.get("error"))


def target(shared: LinkShared) -> dict[str, Any] | None:
    """Which message ``chat.unfurl`` adds the cards to: one pair of arguments, or None when the event names none.

    Slack sends ``unfurl_id`` and ``source`` with every ``link_shared`` event; a link typed in the composer
    (``source: composer``, channel ``COMPOSER``) has only those, a posted one its real channel and ts too.
    """
    if shared.source != COMPOSER and shared.channel and shared.message_ts:
        return {"channel": shared.channel, "ts": shared.message_ts}
    if shared.unfurl_id and shared.source:
        return {"unfurl_id": shared.unfurl_id, "source": shared.source}
    return None


def cards(rt: Runtime, links: ArticleLinks, urls: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The article card of each URL that is an article of the corpus, keyed by the URL as posted."""
    found: dict[str, dict[str, Any]] = {}
    for url in urls:
        article_id = links.article_id(url)
        article = rt.service.article(article_id) if article_id else None
        if article is not None:
            info, passages = article
            found[url] = surface_blocks.unfurl_card(info, len(passages), passages[0] if passages else None)
    return found


class _KnownLinks:
    """The article URLs of the app's search service (one map, which rebuilds itself after a reindex)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._links: ArticleLinks | None = None

    def of(self, rt: Runtime) -> ArticleLinks:
        with self._lock:
            if self._links is None or self._links.service is not rt.service:
                self._links = ArticleLinks(rt.service)
            return self._links
