"""Web sources: feeds and pages fetched over HTTP become articles for the indexer.

``guard`` decides which addresses may be fetched (no loopback, private or other non-public
addresses unless allow-listed; checked after DNS resolution, before connecting, on every
redirect); ``fetch`` is the HTTP client (conditional requests, redirects, timeouts, per-host
politeness, robots.txt, a size cap); ``feeds`` parses RSS/Atom (feedparser) and JSON Feed;
``pages`` extracts an article page's main text and metadata (trafilatura); ``registry`` is
what the index database remembers of each source (validators, failures, the articles it
gave); ``refresh`` fetches the remembered sources for one indexing run.

May import `corpus`, `engine`, `errors` and `models`; never `indexing`, `search` or `maintenance`.
"""
