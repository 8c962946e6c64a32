"""The Slack app manifest for corpusbot: every surface that is on, with the scopes and events each needs.

:func:`build` makes it for Socket Mode or HTTP mode (the request URL in every
place Slack posts to); ``corpusbot manifest`` prints it for the current corpus,
whose article URLs give ``unfurl_domains``, and ``deploy/manifest.yml`` is its
Socket Mode form for the bundled sample. Each surface adds only what it needs:

=================  ==========================================  ==============================================
surface            scopes                                      events / features
=================  ==========================================  ==============================================
(always)           app_mentions:read, chat:write, commands,     app_mention, message.im, app_home_opened;
                   im:history                                  /ask, /article, App Home, interactivity
assistant          assistant:write                             assistant_thread_started,
                                                               assistant_thread_context_changed; assistant_view
shortcut           (commands)                                  a message shortcut
unfurls            links:read, links:write                     link_shared; unfurl_domains
metadata           (chat:write)                                answers carry message metadata
=================  ==========================================  ==============================================
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Literal

from corpusbot.bot.config import SURFACES
from corpusbot.bot.slack import surface_blocks

Mode = Literal["socket", "http"]
NAME = "corpusbot"
DESCRIPTION = "Cited answers from your news-article corpus."
ASSISTANT_DESCRIPTION = "Ask about the news articles corpusbot has indexed; every answer cites its passages."
SHORTCUT_NAME = "Ask corpusbot about this"  # at most 24 characters
SHORTCUT_DESCRIPTION = "Ask the articles about this message; only you see the answer"

BASE_SCOPES = ("app_mentions:read", "chat:write", "commands", "im:history")
BASE_EVENTS = ("app_mention", "message.im", "app_home_opened")
SURFACE_SCOPES: dict[str, tuple[str, ...]] = {
    "assistant": ("assistant:write",),
    "unfurls": ("links:read", "links:write"),
}
SURFACE_EVENTS: dict[str, tuple[str, ...]] = {
    "assistant": ("assistant_thread_started", "assistant_thread_context_changed"),
    "unfurls": ("link_shared",),
}
SCOPE_PURPOSES = {
    "app_mentions:read": "app_mention events: questions that mention the bot in a channel",
    "chat:write": "answers, greetings and edits (More results); message metadata rides on them",
    "commands": "/ask, /article and the message shortcut",
    "im:history": "message.im events: direct messages and questions in the assistant panel",
    "assistant:write": "the assistant panel: its events, thread titles, status line and suggested prompts",
    "links:read": "link_shared events for the unfurl domains",
    "links:write": "chat.unfurl: the article card under a posted link",
}


def build(
    mode: Mode = "socket",
    url: str | None = None,
    *,
    off: Collection[str] = (),
    domains: Sequence[str] = (),
) -> dict[str, Any]:
    """The manifest as a dict. ``url``: where Slack posts in HTTP mode (required there, unused in Socket Mode);
    ``off``: surfaces left out (of :data:`SURFACES`); ``domains``: unfurl domains (unfurls need at least one).

    The assistant panel's suggested prompts are not in it: the bot sets them on each new thread from the
    index it answers from, so they follow every reindex."""
    if mode == "http" and not url:
        raise ValueError("HTTP mode needs the request URL")
    request_url = url if mode == "http" else None
    on = [surface for surface in SURFACES if surface not in off and (surface != "unfurls" or domains)]
    scopes = [*BASE_SCOPES, *(scope for surface in on for scope in SURFACE_SCOPES.get(surface, ()))]
    events = [*BASE_EVENTS, *(event for surface in on for event in SURFACE_EVENTS.get(surface, ()))]
    return {
        "display_information": {"name": NAME, "description": DESCRIPTION, "background_color": "#2c3e50"},
        "features": _features(on, domains, request_url),
        "oauth_config": {"scopes": {"bot": scopes}},
        "settings": _settings(events, request_url),
    }


def _features(on: Collection[str], domains: Sequence[str], request_url: str | None) -> dict[str, Any]:
    """The app's features: App Home, the bot user, the slash commands, and each surface that is on."""
    where = {"url": request_url} if request_url else {}
    features: dict[str, Any] = {
        "app_home": {"home_tab_enabled": True, "messages_tab_enabled": True, "messages_tab_read_only_enabled": False},
        "bot_user": {"display_name": NAME, "always_online": True},
        "slash_commands": [
            {
                "command": "/ask",
                "description": "Ask the articles a question (only you see the answer)",
                "usage_hint": "who is on the US delegation?",
                "should_escape": False,
                **where,
            },
            {
                "command": "/article",
                "description": "Show an article by id, or find articles by words",
                "usage_hint": "ID or words from its title",
                "should_escape": False,
                **where,
            },
        ],
    }
    if "shortcut" in on:
        features["shortcuts"] = [
            {
                "name": SHORTCUT_NAME,
                "type": "message",
                "callback_id": surface_blocks.SHORTCUT_CALLBACK,
                "description": SHORTCUT_DESCRIPTION,
            }
        ]
    if "unfurls" in on:
        features["unfurl_domains"] = list(domains)
    if "assistant" in on:
        features["assistant_view"] = {"assistant_description": ASSISTANT_DESCRIPTION}
    return features


def _settings(events: list[str], request_url: str | None) -> dict[str, Any]:
    """Events, interactivity and the connection: Socket Mode, or HTTP mode with ``request_url`` everywhere."""
    subscriptions: dict[str, Any] = {"bot_events": events}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if request_url:
        subscriptions = {"request_url": request_url, **subscriptions}
        interactivity["request_url"] = request_url
    return {
        "event_subscriptions": subscriptions,
        "interactivity": interactivity,
        "org_deploy_enabled": False,
        "socket_mode_enabled": request_url is None,
        "token_rotation_enabled": False,
    }
