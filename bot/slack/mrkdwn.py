"""Slack mrkdwn in and out: escaping for everything we send, decoding for what users type.

Slack reads ``<...>`` as mentions (``<!channel>``, ``<@U123>``) and links
(``<https://x|click>``), so every piece of corpus or user text goes through
:func:`escape` before it reaches a message. The only ``<...>`` the bot ever
emits are links it builds itself from http(s) article URLs (:func:`link`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

ELLIPSIS = "…"
MAX_URL_CHARS = 2000

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_URL_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")
# Characters that would end or split a <url|label> link; percent-encoded in URLs we emit.
_URL_SPLITTERS = "<>|\"'`"


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as HTML entities: Slack shows them literally and parses nothing."""
    return text.translate(_ESCAPES)


def code(text: str) -> str:
    """Inline code: escaped, and without backticks that would end the code span early."""
    return "`" + escape(text.replace("`", "'")) + "`"


def safe_url(url: str | None) -> str | None:
    """``url`` ready to put in a Slack link, or None unless it is a plain http(s) URL."""
    if not url:
        return None
    candidate = url.strip()
    if len(candidate) > MAX_URL_CHARS or _URL_UNSAFE.search(candidate):
        return None
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    encoded = "".join(f"%{ord(char):02X}" if char in _URL_SPLITTERS else char for char in candidate)
    return escape(encoded)


def link(url: str | None, label: str) -> str:
    """A link to ``url`` labelled ``label``, or just the escaped label when the URL is not http(s)."""
    target = safe_url(url)
    text = escape(label.replace("|", "¦"))
    return f"<{target}|{text}>" if target else text


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


# -- what users type ------------------------------------------------------

_MARKUP = re.compile(r"<([^<>]*)>")


def decode_incoming(text: str, bot_user_id: str | None = None) -> str:
    """The plain text a user typed: Slack's ``<...>`` markup resolved and entities decoded.

    Mentions of the bot disappear, other mentions become ``@name``, links their
    label (or URL), and ``&amp;``/``&lt;``/``&gt;`` the characters they stand for.
    """

    def plain(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            if bot_user_id and target[1:] == bot_user_id:
                return ""
            return "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return label or ""
        return label or target

    resolved = _MARKUP.sub(plain, text)
    resolved = resolved.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(resolved.split())
