"""Web source URLs: telling them from file paths, and the one form an article's URL key takes."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

_HTTP_URL = re.compile(r"^https?://[^\s<>|\x00-\x1f\x7f-\x9f]+$", re.IGNORECASE)  # no controls (terminal escapes)
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")  # a host name's label, once IDNA-encoded


def is_web_url(value: str) -> bool:
    """An http(s) URL (a corpus path that is fetched, not read from disk)."""
    return bool(_HTTP_URL.match(value.strip()))


def normalize_url(url: str) -> str:
    """The URL as a key: scheme and host lower-case, a path (at least ``/``), no fragment."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def has_credentials(url: str) -> bool:
    """A URL carrying a user name or password (``https://user:secret@host/``)."""
    parts = urlsplit(url.strip())
    return parts.username is not None or parts.password is not None


def looks_like_web_url(value: str) -> bool:
    """Meant as an http(s) URL, valid or not (so a mistyped URL is not taken for a file path)."""
    return value.strip().lower().startswith(("http://", "https://"))


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a web source (None: it can): checked when it is given, before it is remembered."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises ValueError for a port out of range or not a number)
    except ValueError as error:
        return f"it is not a valid URL ({error})"
    if parts.scheme.lower() not in ("http", "https") or not is_web_url(url):
        return "only http:// and https:// URLs without spaces can be fetched"
    if has_credentials(url):
        return (
            "URLs with a user name or password are not supported: sources are stored and shown in "
            "`corpusbot stats` and the App Home"
        )
    host = parts.hostname
    if not host:
        return "the URL has no host name"
    if not _valid_host(host):
        return f"{host!r} is not a valid host name or IP address"
    return None


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 literal may carry a zone ("fe80::1%eth0")
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return 0 < len(ascii_host) <= 253 and all(_LABEL.match(label) for label in ascii_host.split("."))
