"""Article URLs: which posted link is an article of the corpus (link unfurls), and the domains to unfurl.

A link matches an article when both normalise to the same key
(:func:`normalise`): the scheme (http or https) does not matter, nor the
host's case, a ``www.`` prefix, a default port, a trailing slash, how the
path is percent-encoded, the fragment, the order of the query's parameters
or tracking parameters (``utm_*``, ``fbclid``…). The map from keys to article ids is built from the
index once per index generation (:class:`ArticleLinks`).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Collection
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from corpusbot.index import SearchService

MAX_URL_CHARS = 3000
TRACKING_PREFIXES = ("utm_",)
TRACKING_PARAMETERS = frozenset(
    {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_ga", "_gl"}
)
PATH_SAFE = "/:@!$&'()*+,;=-._~"  # what stays as typed in a path (RFC 3986); everything else percent-encoded
MAX_UNFURL_DOMAINS = 5  # Slack's limit in a manifest
# What Slack's manifest schema accepts as an unfurl domain.
DOMAIN = re.compile(r"^(?![.\-])[-a-z0-9.]+[a-z0-9]$")


def normalise(url: str) -> str | None:
    """The key two URLs of the same article share, or None when ``url`` is not an http(s) URL."""
    url = url.strip().replace("&amp;", "&")
    if not url or len(url) > MAX_URL_CHARS or any(char.isspace() for char in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = host_of(url)
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    default = {"http": 80, "https": 443}[parts.scheme.lower()]
    netloc = host if port in (None, default) else f"{host}:{port}"
    path = quote(unquote(parts.path), safe=PATH_SAFE).rstrip("/")  # café and caf%C3%A9 alike
    query = sorted(
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not name.lower().startswith(TRACKING_PREFIXES) and name.lower() not in TRACKING_PARAMETERS
    )
    return netloc + path + ("?" + urlencode(query) if query else "")


def host_of(url: str) -> str | None:
    """The URL's host in lower case without ``www.``, IDNA-encoded; None when it has none."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.lower().removeprefix("www.")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


class ArticleLinks:
    """Normalised article URLs → article ids of the service's current index (rebuilt after a reindex)."""

    def __init__(self, service: SearchService) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._keys: dict[str, str] = {}

    def article_id(self, url: str) -> str | None:
        """The id of the article ``url`` points at, or None."""
        key = normalise(url)
        return self._map().get(key) if key else None

    def _map(self) -> dict[str, str]:
        generation = self.service.generation
        with self._lock:
            if generation is None or generation != self._generation:
                keys: dict[str, str] = {}
                for article_id, url in self.service.article_urls():
                    key = normalise(url)
                    if key is not None:
                        keys.setdefault(key, article_id)
                self._keys, self._generation = keys, generation
            return self._keys


def unfurl_domains(urls: list[str], limit: int = MAX_UNFURL_DOMAINS) -> tuple[list[str], list[str]]:
    """(the ``limit`` domains with the most article URLs, the domains left out), valid for a manifest.

    Slack unfurls links of a registered domain's subdomains too, so ``www.`` is dropped, and a host whose parent
    domain is among the hosts counts for the parent (``news.site.example`` for ``site.example``).
    """
    hosts = Counter(host for url in urls if (host := host_of(url)) and DOMAIN.match(host) and len(host) <= 255)
    counts: Counter[str] = Counter()
    for host, count in hosts.items():
        counts[_listed_parent(host, hosts) or host] += count
    ordered = [host for host, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
    return ordered[:limit], ordered[limit:]


def _listed_parent(host: str, hosts: Collection[str]) -> str | None:
    """The shortest parent domain of ``host`` that is itself in ``hosts`` (``site.example`` of ``a.b.site.example``)."""
    labels = host.split(".")
    return next((parent for n in range(len(labels) - 1, 0, -1) if (parent := ".".join(labels[n:])) in hosts), None)
